"""The device update engine against a real server in-process: the whole life of an installed app."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import httpx
import pytest
from helpers import (
    Proxy,
    embedded,
    engine_for,
    folder_files,
    manifest_files,
    push,
    release_metrics,
)
from starlette.testclient import TestClient

import overair.client
from overair.client import (
    CheckStatus,
    CheckTrigger,
    InstallMode,
    InsufficientSpace,
    SyncStatus,
    UpdateEngine,
    UpdateRefused,
)


@pytest.fixture
def key(api: TestClient) -> str:
    app = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}["Production"]


@pytest.fixture
def proxy(device: TestClient) -> Proxy:
    return Proxy(device)


def new_engine(proxy: Proxy, key: str, tmp_path: Path, **kw: object) -> UpdateEngine:
    return engine_for(proxy.client(), key, tmp_path / "device", embedded(tmp_path), **kw)


def test_public_api_is_small_and_guarded() -> None:
    assert sorted(overair.client.__all__) == sorted(
        [
            "CheckResult",
            "CheckStatus",
            "CheckTrigger",
            "DeltaInfo",
            "DownloadFailed",
            "DownloadedUpdate",
            "FileSystem",
            "InstallMode",
            "InsufficientSpace",
            "JournalRecovery",
            "SyncResult",
            "SyncStatus",
            "TextUI",
            "UpdateEngine",
            "UpdateError",
            "UpdateInfo",
            "UpdateRefused",
            "UpdateUI",
        ]
    )
    for name in overair.client.__all__:
        assert getattr(overair.client, name).__module__.startswith("overair.client._")


def client_modules() -> list[tuple[str, ast.Module]]:
    folder = Path(overair.client.__file__).parent
    return [(p.name, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(folder.glob("*.py"))]


def test_the_engine_reads_time_only_from_its_injected_clocks() -> None:
    """Tests make days pass by moving the engine's clocks: a direct read of the system time escapes them."""
    system_time = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "now", "utcnow", "today"}
    reads = [
        f"{name}:{node.lineno}"
        for name, tree in client_modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) in system_time
    ]
    assert reads == []


def test_no_class_of_the_engine_is_over_400_lines() -> None:
    sizes = {
        f"{name}:{node.name}": (node.end_lineno or node.lineno) - node.lineno + 1
        for name, tree in client_modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    assert {where: size for where, size in sizes.items() if size > 400} == {}


def update_now(engine: UpdateEngine, mode: InstallMode | None = None) -> Path | None:
    result = engine.check_for_update()
    assert result.status is CheckStatus.UPDATE, result
    assert result.update is not None
    return engine.install(engine.download(result.update), mode)


def test_life_of_an_app(api: TestClient, device: TestClient, proxy: Proxy, key: str, tmp_path: Path) -> None:
    engine = new_engine(proxy, key, tmp_path)
    # first launch: the embedded bundle
    assert engine.start() == embedded(tmp_path)
    assert engine.check_for_update().status is CheckStatus.RUN_EMBEDDED

    # push v1: a check downloads it, the next restart runs it
    push(api, "Welcome to CoolApp")
    assert update_now(engine) is None
    assert engine.pending_label == "v1"
    engine = new_engine(proxy, key, tmp_path)  # the app restarts
    folder = engine.start()
    assert engine.current_label == "v1"
    assert "Welcome to CoolApp" in (folder / "index.js").read_text()
    engine.notify_app_ready()
    assert release_metrics(api, "v1")["installs"] == 1

    # push v2 whose app never confirms: next start runs it on trial, the one after goes back to v1
    push(api, "Broken welcome")
    update_now(engine)
    engine = new_engine(proxy, key, tmp_path)
    trial = engine.start()
    assert engine.current_label == "v2" and "Broken" in (trial / "index.js").read_text()
    engine = new_engine(proxy, key, tmp_path)  # crashed: notify_app_ready never called
    back = engine.start()
    assert engine.current_label == "v1" and back == folder
    assert engine.failed_labels == ("v2",)
    engine.flush_reports()
    v2 = release_metrics(api, "v2")
    assert (v2["failures"], v2["rollbacks"], v2["installs"]) == (1, 1, 0)
    # v2 is never offered to this device again (the server is told), nor installed
    assert engine.check_for_update().status is CheckStatus.NO_UPDATE
    v2_info = device.get(
        "/v1/update-check", params={"deployment_key": key, "app_version": "1.0.0", "label": "v1"}
    ).json()["update"]
    with pytest.raises(UpdateRefused, match="failed on this device"):
        engine.download(
            overair.client.UpdateInfo(
                **{
                    k: v2_info[k]
                    for k in (
                        "label",
                        "package_hash",
                        "size",
                        "download_url",
                        "manifest_url",
                        "mandatory",
                        "description",
                    )
                }
            )
        )

    # push v3: installed and confirmed
    push(api, "Welcome to CoolApp, fixed")
    update_now(engine)
    engine = new_engine(proxy, key, tmp_path)
    folder = engine.start()
    engine.notify_app_ready()
    assert engine.current_label == "v3"
    update = device.get("/v1/update-check", params={"deployment_key": key, "app_version": "1.0.0"}).json()
    assert folder_files(folder) == manifest_files(device, update["update"]["manifest_url"])
    assert release_metrics(api, "v3")["installs"] == 1
    # disk hygiene: only the current and the previous good bundle are kept
    assert len(list((tmp_path / "device" / "bundles").iterdir())) == 2


def test_immediate_and_resume_install_modes(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    push(api, "one")
    reload = update_now(engine, InstallMode.IMMEDIATE)
    assert reload is not None and "one" in (reload / "index.js").read_text()
    assert engine.current_label == "v1"
    engine.notify_app_ready()
    push(api, "two")
    assert update_now(engine, InstallMode.ON_NEXT_RESUME) is None
    reload = engine.resume()
    assert reload is not None and "two" in (reload / "index.js").read_text()
    assert engine.resume() is None


def test_rollback_on_the_server_reuses_the_old_folder(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    push(api, "one")
    update_now(engine)
    engine.start()
    engine.notify_app_ready()
    push(api, "two")
    update_now(engine)
    engine.start()
    engine.notify_app_ready()
    api.post("/api/v1/apps/CoolApp/deployments/Production/rollback", json={})
    before = sum(1 for r in proxy.requests if r.url.path.startswith("/v1/blobs/"))
    update_now(engine)
    assert sum(1 for r in proxy.requests if r.url.path.startswith("/v1/blobs/")) == before
    folder = engine.start()
    assert engine.current_label == "v3" and "one" in (folder / "index.js").read_text()


def test_checks_are_throttled_and_never_raise(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    now = [1000.0]
    engine = new_engine(proxy, key, tmp_path, min_check_interval=60.0, clock=lambda: now[0])
    engine.start()
    assert engine.check_for_update(CheckTrigger.START).status is CheckStatus.RUN_EMBEDDED
    for _ in range(50):  # a navigation storm
        assert engine.check_for_update(CheckTrigger.NAVIGATION).status is CheckStatus.THROTTLED
    assert proxy.count("/v1/update-check") == 1
    now[0] += 61
    assert engine.check_for_update(CheckTrigger.SERVER_CALL).status is CheckStatus.RUN_EMBEDDED
    assert proxy.count("/v1/update-check") == 2
    proxy.offline = True
    now[0] += 61
    assert engine.check_for_update(CheckTrigger.RESUME).status is CheckStatus.OFFLINE
    assert engine.sync().status is SyncStatus.FAILED


def test_server_errors_are_not_raised(proxy: Proxy, tmp_path: Path) -> None:
    engine = new_engine(proxy, "unknown-key", tmp_path)
    engine.start()
    assert engine.check_for_update().status is CheckStatus.OFFLINE


def test_reports_wait_until_delivered(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    push(api, "one")
    update_now(engine)
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    proxy.offline = True
    engine.notify_app_ready()
    assert engine.pending_reports == 2  # downloaded + installed
    engine = new_engine(proxy, key, tmp_path)  # the app restarts, still offline
    engine.start()
    assert engine.pending_reports == 2
    proxy.offline = False
    assert engine.flush_reports() == 2 and engine.pending_reports == 0
    metrics = release_metrics(api, "v1")
    assert (metrics["downloads"], metrics["installs"]) == (1, 1)


def test_interrupted_download_resumes_with_range(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    push(
        api,
        "big",
    )
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    update = engine.check_for_update().update
    assert update is not None

    class Broken(httpx.SyncByteStream):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self):
            yield self.data[: len(self.data) // 2]
            raise httpx.ReadError("connection reset")

    def cut(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if (
            request.url.path.startswith("/v1/blobs/")
            and "range" not in request.headers
            and response.content[:2] == b"PK"
        ):
            return httpx.Response(200, headers=response.headers, stream=Broken(response.content))
        return response

    proxy.rewrite = cut
    with pytest.raises(overair.client.DownloadFailed):
        engine.download(update)
    part = tmp_path / "device" / "downloads" / f"{update.package_hash}.zip.part"
    assert 0 < part.stat().st_size < update.size
    downloaded = engine.download(update)
    ranged = [r for r in proxy.requests if "range" in r.headers]
    assert ranged and ranged[-1].headers["range"] == f"bytes={update.size // 2}-"
    assert downloaded.path.is_dir() and not part.exists()


def tampered(kind: str, original: bytes) -> bytes:
    if kind == "truncated":
        return original[: len(original) - 100]
    if kind == "bit flip":
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        return bytes(flipped)
    with zipfile.ZipFile(io.BytesIO(original)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    if kind == "wrong file":
        files["index.js"] = b"stealCredentials();\n"
    elif kind == "extra file":
        files["payload.js"] = b"evil();\n"
    elif kind == "missing file":
        del files["styles/main.css"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["truncated", "bit flip", "wrong file", "extra file", "missing file"])
def test_corrupt_downloads_are_refused(api, proxy: Proxy, key: str, tmp_path: Path, kind: str) -> None:
    """An attacker on the network alters the package (and, for file-level changes, the answer's URL and
    size, so that only the per-file verification against the manifest can catch it)."""
    push(api, "genuine")
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    evil: dict[str, bytes] = {}

    def attack(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check":
            body = response.json()
            genuine = proxy.device.get(body["update"]["download_url"]).content
            evil["zip"] = tampered(kind, genuine)
            if kind in ("wrong file", "extra file", "missing file"):
                body["update"]["download_url"] = "http://testserver/cdn/bundle.zip"
                body["update"]["size"] = len(evil["zip"])
            return httpx.Response(200, json=body)
        if (
            request.url.path.startswith("/v1/blobs/") and response.content[:2] == b"PK"
        ) or request.url.path == "/cdn/bundle.zip":
            return httpx.Response(200, content=evil["zip"])
        return response

    proxy.rewrite = attack
    result = engine.check_for_update()
    assert result.update is not None
    with pytest.raises(UpdateRefused):
        engine.download(result.update)
    assert list((tmp_path / "device" / "bundles").iterdir()) == []
    assert list((tmp_path / "device" / "downloads").iterdir()) == []
    assert engine.start() == embedded(tmp_path)
    proxy.rewrite = None
    engine.flush_reports()
    assert release_metrics(api, "v1")["failures"] == 1


def test_not_enough_space(api, proxy: Proxy, key: str, tmp_path: Path, monkeypatch) -> None:
    import overair.client._download as download_module

    push(api, "one")
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    update = engine.check_for_update().update
    monkeypatch.setattr(download_module.shutil, "disk_usage", lambda _p: type("U", (), {"free": 1000})())
    with pytest.raises(InsufficientSpace, match="MB of free space"):
        engine.download(update)  # type: ignore[arg-type]


class RecordingUI:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.dialogs: list[tuple[str, str, tuple[str, ...]]] = []
        self.progress_calls = 0

    def ask(self, title: str, message: str, choices) -> str:
        self.dialogs.append((title, message, tuple(choices)))
        return self.answer if self.answer in choices else choices[0]

    def inform(self, title: str, message: str) -> None:
        self.dialogs.append((title, message, ()))

    def progress(self, done: int, total: int) -> None:
        self.progress_calls += 1


def test_sync_mandatory_dialogs(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    push(api, "Welcome", mandatory=True)
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    ui = RecordingUI("Confirm")
    result = engine.sync(ui)
    assert result.status is SyncStatus.APPLIED and result.reload_path is not None
    assert ui.dialogs == [
        ("Update available", "An update is available that must be installed.", ("Confirm",)),
        ("Information", "Update is installed.", ()),
    ]
    assert ui.progress_calls >= 1


def test_seamless_updates_install_silently(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    push(api, "Welcome", mandatory=False)
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    ui = RecordingUI("Later")
    assert engine.sync(ui).status is SyncStatus.INSTALLED
    assert ui.dialogs == [] and engine.pending_label == "v1"


def test_sync_optional_install_or_later(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    """With ask_optional (Mendix's optional dialog) the user chooses."""
    push(api, "Welcome", mandatory=False)
    engine = new_engine(proxy, key, tmp_path, ask_optional=True)
    engine.start()
    later = RecordingUI("Later")
    assert engine.sync(later).status is SyncStatus.POSTPONED
    assert later.dialogs[0][2] == ("Install", "Later")
    install = RecordingUI("Install")
    assert engine.sync(install).status is SyncStatus.INSTALLED
    assert install.dialogs[-1][0] == "Information"
    assert engine.pending_label == "v1"
    assert engine.sync(RecordingUI("Install")).status is SyncStatus.INSTALLED  # already waiting for restart


def test_store_update_required(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    push(api, "for 2.0", target_version="2.0.0")
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    ui = RecordingUI("OK")
    assert engine.sync(ui).status is SyncStatus.STORE_UPDATE_REQUIRED
    assert ui.dialogs == [
        ("Update required", "A new version of the app (2.0.0) is available in the store.", ())
    ]


def test_damaged_state_file_falls_back_to_embedded(proxy: Proxy, key: str, tmp_path: Path) -> None:
    """Both generations unreadable: the engine starts over and says why (tests/client/test_journal.py has
    the rest: what survives a flipped byte, the floor proven from signed manifests)."""
    engine = new_engine(proxy, key, tmp_path)
    engine.start()
    for name in ("state.json", "state.json.prev"):
        (tmp_path / "device" / name).write_text("{not json")
    again = new_engine(proxy, key, tmp_path)
    assert again.start() == embedded(tmp_path)
    recovery = again.journal_recovery
    assert recovery is not None and recovery.started_over and "not JSON" in recovery.reason


def test_text_ui(tmp_path: Path) -> None:
    out = io.StringIO()
    ui = overair.client.TextUI(stdin=io.StringIO("maybe\n2\n"), stdout=out)
    assert ui.ask("Update available", "Install?", ["Install", "Later"]) == "Later"
    assert "Please answer Install or Later" in out.getvalue()
    assert overair.client.TextUI(stdin=io.StringIO(""), stdout=out).ask("T", "M", ["Confirm"]) == "Confirm"


def test_client_id_is_stable_across_launches(proxy: Proxy, key: str, tmp_path: Path) -> None:
    first = new_engine(proxy, key, tmp_path)
    first.start()
    second = new_engine(proxy, key, tmp_path)
    second.start()
    assert first.client_id == second.client_id
    (tmp_path / "other").mkdir()
    assert new_engine(proxy, key, tmp_path / "other").client_id != first.client_id


def test_server_values_are_not_trusted_as_file_names(api, proxy: Proxy, key: str, tmp_path: Path) -> None:
    push(api, "one")
    engine = new_engine(proxy, key, tmp_path)
    engine.start()

    def poison(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/v1/update-check":
            body = response.json()
            body["update"]["package_hash"] = "../../victim"
            return httpx.Response(200, json=body)
        return response

    proxy.rewrite = poison
    assert engine.check_for_update().status is CheckStatus.OFFLINE


def test_a_full_disk_while_unpacking_is_a_failed_download_not_a_crash(
    api, proxy: Proxy, key: str, tmp_path: Path
) -> None:
    import errno

    class FullWhileUnpacking(overair.client.FileSystem):
        def step(self, operation: str, path: Path) -> None:
            if operation == "create" and ".staging-" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))

    push(api, "one", mandatory=False)
    engine = new_engine(proxy, key, tmp_path, fs=FullWhileUnpacking())
    engine.start()
    result = engine.sync(RecordingUI("Install"))
    assert result.status is SyncStatus.FAILED and "No space left" in (result.error or "")
    assert [p.name for p in (tmp_path / "device" / "bundles").iterdir()] == []
    assert engine.start() == embedded(tmp_path)


def test_running_is_reported_once_a_day_per_label(
    api: TestClient, proxy: Proxy, key: str, tmp_path: Path
) -> None:
    now = [1_800_000_000.0]

    def device() -> UpdateEngine:  # the days pass on the engine's wall clock, never on the test's
        return new_engine(proxy, key, tmp_path, wall_clock=lambda: now[0])

    engine = device()
    engine.start()
    push(api, "one")
    update_now(engine)
    engine = device()
    engine.start()
    engine.notify_app_ready()  # installed: the device counts on v1, and that is today's report
    assert engine.pending_reports == 0

    def launch() -> int:
        started = device()
        started.start()
        return started.pending_reports

    assert launch() == 0  # same label, same day: nothing to send, nothing written
    now[0] += 25 * 3600
    assert launch() == 1
    assert device().flush_reports() == 1
    proxy.offline = True  # offline for days, launching every day: one running report stays queued
    for _ in range(3):
        now[0] += 25 * 3600
        assert launch() == 1
    proxy.offline = False
    assert device().flush_reports() == 1

    body = api.get("/api/v1/apps/CoolApp/deployments/Production/metrics").json()
    assert body["active_devices"] == {"v1": 1}
    assert sum(p["running"] for p in body["series"] if p["label"] == "v1") == 2
