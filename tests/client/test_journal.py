"""The engine's journal under damage: a flipped byte in ``state.json`` must not reset the device.

What a reset would cost: a new client id (another rollout bucket), the failed labels (a failed release
installed again) and the sequence floor (an old, vulnerable release accepted as a "downgrade"). The journal
carries a checksum and its previous generation; only when both are damaged does the engine start over, and
then it proves the floor from the installed releases' signed manifests and says so.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers import Proxy, embedded, engine_for, make_bundle, signed_release
from starlette.testclient import TestClient

from overair.client import CheckStatus, FileSystem, UpdateEngine
from overair.packages import signing as sig

APP = "CoolApp"
RELEASES = f"/api/v1/apps/{APP}/deployments/Production/releases"
JOURNAL, PREVIOUS = "state.json", "state.json.prev"


@pytest.fixture
def publisher() -> Ed25519PrivateKey:
    return sig.generate_private_key()


@pytest.fixture
def key(api: TestClient, publisher: Ed25519PrivateKey) -> str:
    """CoolApp's Production key; the app installs releases signed by ``publisher`` only."""
    app = api.post("/api/v1/apps", json={"name": APP}).json()
    trusted = api.post(
        f"/api/v1/apps/{APP}/signing-keys", json={"public_key": sig.public_key_text(publisher)}
    )
    assert trusted.status_code == 201, trusted.text
    return str({d["name"]: d["key"] for d in app["deployments"]}["Production"])


@pytest.fixture
def proxy(device: TestClient) -> Proxy:
    return Proxy(device)


@pytest.fixture
def http(proxy: Proxy) -> Iterator[httpx.Client]:
    with proxy.client() as client:
        yield client


class Device:
    """One device's data folder, launched as often as a test likes."""

    def __init__(self, http: httpx.Client, key: str, tmp_path: Path, publisher: Ed25519PrivateKey) -> None:
        self.http, self.key, self.tmp_path, self.publisher = http, key, tmp_path, publisher
        self.data = tmp_path / "device"
        self.embedded = embedded(tmp_path)

    def launch(self, fs: FileSystem | None = None) -> UpdateEngine:
        return engine_for(
            self.http,
            self.key,
            self.data,
            self.embedded,
            public_keys=[sig.public_key_text(self.publisher)],
            app_name=APP,
            deployment_name="Production",
            min_check_interval=0,
            fs=fs,
        )

    def journal(self) -> dict[str, bytes]:
        """The journal files there are."""
        files = (self.data / name for name in (JOURNAL, PREVIOUS))
        return {path.name: path.read_bytes() for path in files if path.exists()}

    def put(self, files: dict[str, bytes | None]) -> None:
        for name, data in files.items():
            if data is None:
                (self.data / name).unlink(missing_ok=True)
            else:
                (self.data / name).write_bytes(data)


@pytest.fixture
def phone(http: httpx.Client, key: str, tmp_path: Path, publisher: Ed25519PrivateKey) -> Device:
    return Device(http, key, tmp_path, publisher)


def publish(api: TestClient, tmp_path: Path, publisher: Ed25519PrivateKey, text: str) -> None:
    content = make_bundle(text)
    signed = signed_release(api, tmp_path, publisher, content, "Production", {})
    response = api.post(
        RELEASES,
        files={"package": ("b.zip", content, "application/zip")},
        data={"release": json.dumps({"target_version": "1.0.0", "signed": signed})},
    )
    assert response.status_code == 201, response.text


def offered_to_a_new_device(proxy: Proxy, key: str) -> dict:
    """The server's answer to a device on the embedded bundle now (to be replayed later)."""
    params = {"deployment_key": key, "app_version": "1.0.0", "build_number": "1"}
    return dict(proxy.device.get("/v1/update-check", params=params).json())


def replay(proxy: Proxy, answer: dict | None) -> None:
    """Hand every update check ``answer``, as an attacker in the network would (None: the real answers)."""

    def handler(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check" and answer is not None:
            return httpx.Response(200, json=answer)
        return response

    proxy.rewrite = handler


def install_latest(phone: Device, *, confirm: bool = True) -> None:
    """Check, download and install the offered release; restart on it; confirm it if ``confirm``."""
    with phone.launch() as engine:
        result = engine.check_for_update()
        assert result.status is CheckStatus.UPDATE and result.update is not None, result
        engine.install(engine.download(result.update))
    with phone.launch() as engine:
        engine.start()
        if confirm:
            engine.notify_app_ready()


def on_v2_with_v1_offered_before(api: TestClient, proxy: Proxy, phone: Device) -> dict:
    """The device runs v2 (sequence 2, confirmed); returns the answer that offered v1 (sequence 1)."""
    publish(api, phone.tmp_path, phone.publisher, "Old and vulnerable")
    old_offer = offered_to_a_new_device(proxy, phone.key)
    publish(api, phone.tmp_path, phone.publisher, "Fixed")
    install_latest(phone)
    with phone.launch() as engine:
        assert engine.current_label == "v2"
    return old_offer


def refuses_the_downgrade(engine: UpdateEngine, proxy: Proxy, old_offer: dict, floor: int | None) -> None:
    """The replayed ``old_offer`` is refused as not newer than ``floor`` (any floor for None)."""
    replay(proxy, old_offer)
    result = engine.check_for_update()
    proxy.rewrite = None
    assert result.status is CheckStatus.REFUSED, result
    assert f"not newer than the installed {floor if floor is not None else ''}" in result.message


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# -- one generation damaged --------------------------------------------------------------------------------


def test_a_flipped_byte_anywhere_in_the_journal_loses_nothing(
    api: TestClient, proxy: Proxy, phone: Device
) -> None:
    """The device runs v2 and v3 failed on it (floor 3). A bit flipped at any place of state.json: the
    previous generation is loaded: the same client id, v3 still failed, v1 still refused; and it is said."""
    old_offer = on_v2_with_v1_offered_before(api, proxy, phone)
    publish(api, phone.tmp_path, phone.publisher, "Broken")
    install_latest(phone, confirm=False)  # v3 runs on trial, the app never confirms it...
    with phone.launch() as engine:
        engine.start()  # ...so this launch goes back to v2
        engine.flush_reports()
        client_id = engine.client_id
        assert (engine.current_label, engine.failed_labels) == ("v2", ("v3",))
    intact = phone.journal()
    data = intact[JOURNAL]
    # every few bytes, and every byte of what a reset would lose
    places = set(range(0, len(data), max(1, len(data) // 100)))
    for value in (client_id.encode(), b'"v3"', b'"sequence_floor": 3'):
        start = data.index(value)
        places |= set(range(start, start + len(value)))

    detected = 0
    for at in sorted(places):
        phone.put({**intact, JOURNAL: flip(data, at)})
        with phone.launch() as engine:
            where = f"bit flipped at byte {at} ({data[max(0, at - 12) : at + 12]!r})"
            assert engine.client_id == client_id, where
            assert engine.failed_labels == ("v3",), where
            recovery = engine.journal_recovery
            if recovery is None:
                # the last of a float's 17 digits: it may parse to the same number, and nothing changed
                assert data[at : at + 1].isdigit() and not data[at + 1 : at + 2].isdigit(), where
                continue
            detected += 1
            assert not recovery.started_over, where
            assert recovery.client_id_kept and recovery.sequence_floor == 3, where
            assert "state.json: " in recovery.reason and "previous generation" in recovery.message
    assert detected >= len(places) - 2

    with phone.launch() as engine:  # the last of them, written back: intact again
        assert engine.journal_recovery is None
        assert engine.start().parent == phone.data / "bundles" and engine.current_label == "v2"
        refuses_the_downgrade(engine, proxy, old_offer, 3)
        assert engine.check_for_update().status is CheckStatus.NO_UPDATE  # v3, failed here


def test_a_damaged_journal_is_logged(
    api: TestClient, proxy: Proxy, phone: Device, caplog: pytest.LogCaptureFixture
) -> None:
    on_v2_with_v1_offered_before(api, proxy, phone)
    intact = phone.journal()
    phone.put({JOURNAL: intact[JOURNAL].replace(b'"v2"', b'"v9"')})
    with caplog.at_level("WARNING", logger="overair.client"), phone.launch() as engine:
        assert engine.current_label == "v2"
    assert "the checksum does not match" in caplog.text and "previous generation" in caplog.text


# -- both generations damaged --------------------------------------------------------------------------------


def flipped_in_both(journal: dict[str, bytes]) -> dict[str, bytes | None]:
    """A bit flipped in each generation, in a value (0 trial launches become 1): the client id is intact."""
    return {name: flip(data, data.index(b'"trial_launches": ') + 18) for name, data in journal.items()}


DAMAGE: list[tuple[str, Callable[[dict[str, bytes]], dict[str, bytes | None]], bool, str]] = [
    ("a bit flipped in each", flipped_in_both, True, "the checksum does not match"),
    ("both zeroed by the storage", lambda j: {n: bytes(len(d)) for n, d in j.items()}, False, "not JSON"),
    (
        "state.json lost, the previous one truncated",
        lambda j: {JOURNAL: None, PREVIOUS: b'{\n "version": 2,\n "sha'},
        False,
        "not JSON",
    ),
    ("both lost", lambda j: {JOURNAL: None, PREVIOUS: None}, False, "are missing"),
]


@pytest.mark.parametrize(
    ("damage", "client_id_kept", "reason"), [row[1:] for row in DAMAGE], ids=[row[0] for row in DAMAGE]
)
def test_with_both_generations_damaged_the_engine_starts_over_keeping_the_floor_it_can_prove(
    api: TestClient,
    proxy: Proxy,
    phone: Device,
    damage: Callable[[dict[str, bytes]], dict[str, bytes | None]],
    client_id_kept: bool,
    reason: str,
) -> None:
    """The device ran v2 (sequence 2). With neither journal file usable it starts over on the embedded
    bundle, but v1 stays refused: v2's signed manifest, kept on disk, proves the floor. It says so, and
    whether it kept its client id. v2 itself may come back (the device no longer runs it)."""
    old_offer = on_v2_with_v1_offered_before(api, proxy, phone)
    with phone.launch() as engine:
        client_id = engine.client_id
    phone.put(damage(phone.journal()))

    with phone.launch() as engine:
        assert engine.start() == phone.embedded and engine.current_label is None
        refuses_the_downgrade(engine, proxy, old_offer, 1)
        assert (engine.client_id == client_id) is client_id_kept
        recovery = engine.journal_recovery
        assert recovery is not None and recovery.started_over
        assert recovery.client_id_kept is client_id_kept and recovery.sequence_floor == 2
        assert reason in recovery.reason and "started over" in recovery.message
        assert ("client id could not be recovered" in recovery.message) is not client_id_kept
        result = engine.check_for_update()
        assert result.status is CheckStatus.UPDATE and result.update is not None
        assert result.update.label == "v2"
        engine.install(engine.download(result.update))
    with phone.launch() as engine:
        assert engine.journal_recovery is None
        engine.start()
        assert engine.current_label == "v2"
        refuses_the_downgrade(engine, proxy, old_offer, 2)


def test_a_planted_or_damaged_manifest_proves_nothing(api: TestClient, proxy: Proxy, phone: Device) -> None:
    """Only manifests that verify with the app's publisher key count towards the floor."""
    on_v2_with_v1_offered_before(api, proxy, phone)
    kept = sorted((phone.data / "manifests").iterdir())
    assert [p.suffix for p in kept] == [".json"]
    stored = json.loads(kept[0].read_bytes())
    genuine = sig.ReleaseManifest.from_bytes(base64.b64decode(stored["manifest"]))
    stranger = sig.generate_private_key()
    data, signature = sig.sign_manifest(dataclasses.replace(genuine, sequence=90), stranger)
    planted = {"manifest": base64.b64encode(data).decode(), "signature": signature}
    (phone.data / "manifests" / ("0" * 64 + ".json")).write_text(json.dumps(planted))
    kept[0].write_bytes(kept[0].read_bytes().replace(b'"manifest": "', b'"manifest": "A'))
    phone.put({JOURNAL: None, PREVIOUS: None})
    with phone.launch() as engine:
        recovery = engine.journal_recovery
        assert recovery is not None and recovery.started_over and recovery.sequence_floor == 0


# -- journals of the previous engine -------------------------------------------------------------------------

LEGACY = {
    "version": 1,
    "client_id": "5c1d0e7e-8d5b-4c55-9d42-0f4a7c1de0b1",
    "current": None,
    "confirmed": True,
    "trial_launches": 0,
    "previous": None,
    "downloaded": None,
    "pending": None,
    "pending_mode": "",
    "failed_labels": ["v7"],
    "reports": [],
    "running_label": "",
    "running_at": 0.0,
    "sequence_floor": 5,
    "fresh_at": 1700000000.0,
    "fresh_issued": 0,
}
OLDEST_KEYS = ("running_label", "running_at", "sequence_floor", "fresh_at", "fresh_issued")


@pytest.mark.parametrize("fields", ["all", "the oldest engine's"])
def test_a_journal_without_checksum_loads_once_and_is_written_back_with_one(
    api: TestClient, proxy: Proxy, phone: Device, fields: str
) -> None:
    legacy = dict(LEGACY)
    if fields != "all":
        for name in OLDEST_KEYS:
            del legacy[name]
    phone.data.mkdir()
    (phone.data / JOURNAL).write_text(json.dumps(legacy, indent=1))
    publish(api, phone.tmp_path, phone.publisher, "Old")  # sequence 1

    with phone.launch() as engine:
        assert engine.client_id == LEGACY["client_id"] and engine.failed_labels == ("v7",)
        if fields == "all":
            result = engine.check_for_update()
            assert result.status is CheckStatus.REFUSED and "not newer than the installed 5" in result.message
    written = phone.journal()
    assert sorted(written) == [JOURNAL, PREVIOUS]
    for name, data in written.items():
        document = json.loads(data)
        assert (document["version"], len(document.get("sha256", ""))) == (2, 64), name
        assert document["state"]["client_id"] == LEGACY["client_id"], name
    with phone.launch() as engine:
        assert engine.journal_recovery is None
    # from now on it is checked: a flipped byte falls back to the (checksummed) previous generation
    phone.put({JOURNAL: written[JOURNAL].replace(b'"v7"', b'"v6"')})
    with phone.launch() as engine:
        assert engine.client_id == LEGACY["client_id"] and engine.failed_labels == ("v7",)
        assert engine.journal_recovery is not None and not engine.journal_recovery.started_over


# -- interrupted writes ------------------------------------------------------------------------------------


class Crash(OSError):
    """The process was killed: raised at the chosen step and at every step after it."""


class CrashingFS(FileSystem):
    """Counts the steps; from step ``crash_at`` (0-based) on, every step raises."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.crash_at = crash_at
        self.steps: list[str] = []
        self.crashed = False

    def step(self, operation: str, path: Path) -> None:
        if self.crash_at is not None and len(self.steps) >= self.crash_at:
            self.crashed = True
            raise Crash(f"killed before {operation} {path.name}")
        self.steps.append(f"{operation} {path.name}")


def test_a_kill_between_any_two_steps_of_a_journal_write_leaves_a_journal_that_loads(
    api: TestClient, proxy: Proxy, phone: Device, tmp_path: Path
) -> None:
    """v3 is installed and the app restarts on it and confirms it: killed before each file-system step in
    turn (each journal write: temporary file, fsync, rotation, rename), the device loads an intact journal
    (the old generation or the new, nothing reported), and even a flipped byte after the kill loses
    nothing."""
    old_offer = on_v2_with_v1_offered_before(api, proxy, phone)
    publish(api, phone.tmp_path, phone.publisher, "Newer")
    with phone.launch() as engine:
        client_id = engine.client_id
        result = engine.check_for_update()
        assert result.update is not None
        engine.install(engine.download(result.update))  # v3 starts at the next restart
    baseline = tmp_path / "baseline"
    shutil.copytree(phone.data, baseline)

    def restart_on_v3_and_confirm(fs: FileSystem) -> None:
        with phone.launch(fs) as engine:
            engine.start()
            engine.notify_app_ready()

    clean = CrashingFS()
    restart_on_v3_and_confirm(clean)
    steps = clean.steps
    assert any(step.startswith("rename state.json") for step in steps)
    for n in range(len(steps)):
        shutil.rmtree(phone.data)
        shutil.copytree(baseline, phone.data)
        fs = CrashingFS(crash_at=n)
        with contextlib.suppress(Crash):  # start() carries on without its journal write (as on a full disk)
            restart_on_v3_and_confirm(fs)
        where = f"killed before step {n + 1}/{len(steps)} ({steps[n]})"
        assert fs.crashed, where
        with phone.launch() as engine:
            assert engine.client_id == client_id, where
            assert engine.journal_recovery is None, where
            engine.start()
            engine.notify_app_ready()
            assert engine.current_label in ("v2", "v3"), where
            refuses_the_downgrade(engine, proxy, old_offer, None)
            label, failed = engine.current_label, engine.failed_labels
        journal = (phone.data / JOURNAL).read_bytes()
        (phone.data / JOURNAL).write_bytes(flip(journal, len(journal) // 2))
        with phone.launch() as engine:
            assert engine.client_id == client_id, where
            engine.start()
            assert (engine.current_label, engine.failed_labels) == (label, failed), where
            assert engine.journal_recovery is not None and not engine.journal_recovery.started_over, where
