"""The engine's absolute rule under faults: whatever happens and whenever the power goes, ``start()``
returns a complete, verified bundle (an installed release, file by file as its manifest says, or the
embedded bundle).

* ``test_crash_at_every_file_system_step`` replays an update with a file system that crashes at step N, for
  every N, then restarts the device on the real file system and checks what ``start()`` returns.
* ``test_start_returns_a_verified_bundle_on_a_full_disk``: the state file cannot be written at launch
  (ENOSPC); start() must still return a verified bundle.
* ``test_sigkill_at_random_moments`` runs the engine in a forked child against ``overair serve`` and kills it
  with SIGKILL hundreds of times while it downloads, installs, starts and confirms updates.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import multiprocessing
import os
import random
import shutil
import signal
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers import Proxy, embedded, engine_for, folder_files
from starlette.testclient import TestClient

from overair.client import CheckStatus, FileSystem, UpdateEngine

APP = "CoolApp"
DEPLOYMENT = f"/api/v1/apps/{APP}/deployments/Production"


# -- shared: what a valid answer of start() is ---------------------------------------------------------------


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def release_manifests(http: httpx.Client | TestClient) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(label -> package hash, package hash -> {path: sha256}) of every release of the deployment."""
    history = http.get(f"{DEPLOYMENT}/releases")
    assert history.status_code == 200, history.text
    hashes: dict[str, str] = {}
    manifests: dict[str, dict[str, str]] = {}
    for release in history.json():
        hashes[release["label"]] = release["package_hash"]
        if release["package_hash"] not in manifests:
            entries = http.get(f"{DEPLOYMENT}/releases/{release['label']}/manifest")
            assert entries.status_code == 200, entries.text
            manifests[release["package_hash"]] = {
                e["path"]: e["sha256"] for e in entries.json() if not e["path"].endswith("/")
            }
    return hashes, manifests


class Bundles:
    """The bundles a device may legitimately start: the embedded one and the releases' packages."""

    def __init__(self, embedded_dir: Path, manifests: dict[str, dict[str, str]]) -> None:
        self.embedded_dir = embedded_dir
        self.embedded_files = folder_files(embedded_dir)
        self.manifests = manifests

    def problem(self, folder: Path, data_dir: Path) -> str | None:
        """None when ``folder`` is complete and verified, else what is wrong with it."""
        if folder == self.embedded_dir:
            found = folder_files(folder) if folder.is_dir() else {}
            return None if found == self.embedded_files else f"the embedded bundle changed: {found}"
        if folder.parent != data_dir / "bundles":
            return f"{folder} is neither the embedded bundle nor an installed one"
        expected = self.manifests.get(folder.name)
        if expected is None:
            return f"{folder.name} is the package hash of no release (a half-written or stray folder)"
        if not folder.is_dir():
            return f"{folder} does not exist"
        found = folder_files(folder)
        if found != expected:
            missing = sorted(set(expected) - set(found))
            extra = sorted(set(found) - set(expected))
            changed = sorted(p for p in set(found) & set(expected) if found[p] != expected[p])
            return (
                f"{folder.name[:12]}… differs from its manifest: "
                f"missing {missing}, extra {extra}, changed {changed}"
            )
        return None


# -- 1. a crash at every file-system step ------------------------------------------------------------------


class InjectedCrash(OSError):
    """The power went: raised at the chosen step and at every step after it."""


class CrashingFS(FileSystem):
    """Counts the steps; from step ``crash_at`` on, every step raises (the process is dead)."""

    def __init__(self, root: Path, crash_at: int | None = None) -> None:
        self.root = root
        self.crash_at = crash_at
        self.steps: list[str] = []
        self.crashed: str | None = None

    def step(self, operation: str, path: Path) -> None:
        if self.crashed is not None:
            raise InjectedCrash(f"{operation} {path} after the crash at {self.crashed}")
        where = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
        self.steps.append(f"{operation} {where}")
        if len(self.steps) == self.crash_at:
            self.crashed = f"step {self.crash_at}: {self.steps[-1]}"
            raise InjectedCrash(f"injected crash at {self.crashed}")


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def download_and_install(engine: UpdateEngine) -> None:
    result = engine.check_for_update()
    assert result.status is CheckStatus.UPDATE and result.update is not None, result
    engine.install(engine.download(result.update))


# One thing the app does: (name, whether it starts a new launch of the app, the call).
Phase = tuple[str, bool, Callable[[UpdateEngine], object]]
Outcome = tuple[str | None, tuple[str, ...]]  # (current label, failed labels)
CONFIRMED_V2: Outcome = ("v2", ())
V2_ROLLED_BACK: Outcome = ("v1", ("v2",))


@dataclass(frozen=True)
class Scenario:
    """Phases run from a baseline where the device runs v1 (confirmed) and the server offers v2."""

    name: str
    setup: list[Phase]
    """Run without faults from the baseline: where the scenario starts."""
    phases: list[Phase]
    """The phases whose every file-system step is crashed in turn."""
    may_start: frozenset[str]
    """What the next start() may return after a crash (labels; the rule itself also allows the embedded
    bundle, but a device that had v1 confirmed must never lose it)."""
    may_end: tuple[frozenset[Outcome], ...]
    """Per phase the crash happened in: where the device may be once it recovered and updated normally."""


SCENARIOS = [
    Scenario(
        "update to v2, restart on it, confirm it",
        setup=[],
        phases=[
            ("check + download + install v2", False, download_and_install),
            ("start() applies v2", True, lambda e: e.start()),
            ("notify_app_ready()", False, lambda e: e.notify_app_ready()),
        ],
        may_start=frozenset({"v1", "v2"}),
        # Once start() has launched v2 on trial, a crash before the confirmation is a failed launch.
        may_end=(
            frozenset({CONFIRMED_V2}),
            frozenset({CONFIRMED_V2, V2_ROLLED_BACK}),
            frozenset({CONFIRMED_V2, V2_ROLLED_BACK}),
        ),
    ),
    Scenario(
        "v2 ran on trial and was never confirmed: the next start() rolls back",
        setup=[
            ("check + download + install v2", False, download_and_install),
            ("start() applies v2 on trial", True, lambda e: e.start()),
        ],
        phases=[("start() rolls back unconfirmed v2", True, lambda e: e.start())],
        may_start=frozenset({"v1"}),
        may_end=(frozenset({V2_ROLLED_BACK}),),
    ),
]


class QuietProxy(Proxy):
    """Answers status reports itself: the server's counters are not at stake here, and each report would
    cost the in-process server a database commit (hundreds of them over all the crash points)."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/report":
            self.requests.append(request)
            return httpx.Response(200, json={"ok": True})
        return super().handle(request)


def run_phases(
    phases: list[Phase], launch: Callable[[], UpdateEngine], before: Callable[[int], None] = lambda _i: None
) -> tuple[int, Exception | None]:
    """Run the phases until one raises: (index of the phase that raised or len(phases), the exception)."""
    engine: UpdateEngine | None = None
    try:
        for index, (_name, new_launch, action) in enumerate(phases):
            if engine is None or new_launch:
                if engine is not None:
                    engine.close()
                engine = launch()
            before(index)
            try:
                action(engine)
            except Exception as exc:
                return index, exc
        return len(phases), None
    finally:
        if engine is not None:
            engine.close()


def create_app(api: TestClient) -> str:
    """Create the app; its Production deployment key."""
    app = api.post("/api/v1/apps", json={"name": APP})
    assert app.status_code == 201, app.text
    return str({d["name"]: d["key"] for d in app.json()["deployments"]}["Production"])


def push_small(api: TestClient, text: str) -> None:
    """Publish a small bundle of five files in four folders."""
    files = {
        "index.js": f"showWelcome({text!r});\n".encode(),
        "styles/main.css": f"h1 {{ content: {text!r} }}\n".encode(),
        "assets/logo.png": hashlib.sha256(text.encode()).digest() * 64,
        "assets/fonts/body.woff": hashlib.sha512(text.encode()).digest() * 32,
        "i18n/en.json": json.dumps({"welcome": text}).encode(),
    }
    response = api.post(
        f"{DEPLOYMENT}/releases",
        files={"package": ("b.zip", zip_bytes(files), "application/zip")},
        data={"release": json.dumps({"target_version": "1.0.0"})},
    )
    assert response.status_code == 201, response.text


def device_on_v1(api: TestClient, launch: Callable[[], UpdateEngine]) -> None:
    """Publish v1 and bring the device to it: installed, restarted, confirmed."""
    push_small(api, "v1")
    with launch() as engine:
        engine.start()
        download_and_install(engine)
    with launch() as engine:
        engine.start()
        engine.notify_app_ready()
        assert engine.current_label == "v1"


def test_crash_at_every_file_system_step(api: TestClient, device: TestClient, tmp_path: Path) -> None:
    """For every file-system step of an update (download, install, start, confirm) and of a roll-back: crash
    there, restart the device on the real file system, check what start() returns, then update normally."""
    began = time.perf_counter()
    proxy = QuietProxy(device)
    key = create_app(api)
    embedded_dir = embedded(tmp_path)

    def launch(data_dir: Path, fs: FileSystem) -> UpdateEngine:
        return engine_for(proxy.client(), key, data_dir, embedded_dir, fs=fs)

    # The baseline: the device runs v1, confirmed; the server offers v2.
    baseline = tmp_path / "baseline"
    device_on_v1(api, lambda: launch(baseline, FileSystem()))
    push_small(api, "v2")
    hashes, manifests = release_manifests(api)
    bundles = Bundles(embedded_dir, manifests)
    labels = {h: label for label, h in hashes.items()}
    data = tmp_path / "device"

    violations: list[str] = []

    def crash_every_step(scenario: Scenario) -> int:
        """Crash at each step of the scenario in turn; the number of crash points tried."""
        start_of = tmp_path / "scenario"
        shutil.rmtree(start_of, ignore_errors=True)
        shutil.copytree(baseline, start_of)
        _done, error = run_phases(scenario.setup, lambda: launch(start_of, FileSystem()))
        assert error is None, error

        def fresh_copy() -> None:
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(start_of, data)

        # A run without faults counts the steps and notes which phase each belongs to.
        fresh_copy()
        clean = CrashingFS(data)
        marks: list[int] = []
        done, error = run_phases(
            scenario.phases, lambda: launch(data, clean), lambda _i: marks.append(len(clean.steps))
        )
        assert error is None and done == len(scenario.phases), error
        steps = clean.steps
        marks.append(len(steps))
        phase_of = [i for i in range(len(scenario.phases)) for _ in range(marks[i + 1] - marks[i])]
        outcomes: Counter[str] = Counter()

        for n in range(1, len(steps) + 1):
            fresh_copy()
            fs = CrashingFS(data, crash_at=n)
            _crashed_in, error = run_phases(scenario.phases, lambda fs=fs: launch(data, fs))
            phase = scenario.phases[phase_of[n - 1]][0]
            where = f"[{scenario.name}] crash at step {n}/{len(steps)} ({steps[n - 1]}, in {phase})"
            if fs.crashed is None or fs.steps[n - 1] != steps[n - 1]:
                violations.append(f"{where}: the run did not repeat the steps of the clean run")
                continue
            if error is not None and not caused_by(error, InjectedCrash):
                violations.append(f"{where}: unexpected {type(error).__name__}: {error}")
            # The device restarts on the real file system.
            engine = launch(data, FileSystem())
            if engine.journal_recovery is not None:
                violations.append(
                    f"{where}: the crash looked like a damaged journal: {engine.journal_recovery}"
                )
            try:
                folder = engine.start()
            except Exception as exc:
                violations.append(f"{where}: start() raised {exc!r}")
                continue
            problem = bundles.problem(folder, data)
            if problem is not None:
                violations.append(f"{where}: start() returned {folder}: {problem}")
                continue
            started = "embedded" if folder == embedded_dir else labels[folder.name]
            outcomes[f"{phase} -> starts {started}"] += 1
            if started not in scenario.may_start:
                violations.append(f"{where}: start() returned {started}, not {sorted(scenario.may_start)}")
            # Recovery: the app runs, confirms, and updates normally.
            engine.notify_app_ready()
            for _ in range(3):
                result = engine.check_for_update()
                if result.status is not CheckStatus.UPDATE or result.update is None:
                    break
                engine.install(engine.download(result.update))
                engine.close()
                engine = launch(data, FileSystem())
                folder = engine.start()
                problem = bundles.problem(folder, data)
                if problem is not None:
                    violations.append(f"{where}: after recovery start() returned {folder}: {problem}")
                engine.notify_app_ready()
            engine.close()
            ended = (engine.current_label, engine.failed_labels)
            if ended not in scenario.may_end[phase_of[n - 1]]:
                violations.append(f"{where}: after recovery the device is at {ended}")
        print(f"\n[{scenario.name}] {len(steps)} steps; after the crash: {dict(outcomes)}")
        return len(steps)

    tried = sum(crash_every_step(scenario) for scenario in SCENARIOS)
    print(f"crash points tried: {tried}")
    print(f"test took {time.perf_counter() - began:.1f} s")
    assert tried > 20
    assert not violations, "\n".join(violations)


# -- 1b. a full disk at launch (a bug this test found, fixed in the engine) -------------------------


class FullDisk(FileSystem):
    """A disk with no space left while ``full`` is set: creating or writing any file fails (ENOSPC)."""

    def __init__(self) -> None:
        self.full = False

    def step(self, operation: str, path: Path) -> None:
        if self.full and operation in ("create", "append", "write"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))


def test_start_returns_a_verified_bundle_on_a_full_disk(
    api: TestClient, device: TestClient, tmp_path: Path
) -> None:
    """Not a crash but a disk that is full at launch: the state cannot be recorded. start() must still give
    the app a verified bundle (it has v1, confirmed, intact), and an update that never ran must not be
    counted as failed once the disk has room again."""
    proxy = QuietProxy(device)
    key = create_app(api)
    embedded_dir = embedded(tmp_path)
    data = tmp_path / "device"
    disk = FullDisk()

    def launch() -> UpdateEngine:
        return engine_for(proxy.client(), key, data, embedded_dir, fs=disk)

    device_on_v1(api, launch)
    push_small(api, "v2")
    with launch() as engine:
        download_and_install(engine)  # v2 waits for the next restart
    hashes, manifests = release_manifests(api)
    bundles = Bundles(embedded_dir, manifests)
    labels = {h: label for label, h in hashes.items()}

    started: list[str] = []
    with launch() as engine:
        disk.full = True
        for _launch in range(2):  # the app launches, then tries again
            folder = engine.start()
            assert bundles.problem(folder, data) is None
            started.append("embedded" if folder == embedded_dir else labels[folder.name])
        assert started[0] in ("v1", "v2"), "a device with v1 confirmed fell back to the embedded bundle"
        disk.full = False
        folder = engine.start()
        assert bundles.problem(folder, data) is None
        if "v2" not in started:
            assert "v2" not in engine.failed_labels, "v2 never ran, yet it was rolled back as failed"


# -- 2. SIGKILL at random moments ------------------------------------------------------------------------

KILLS = 240
SEED = 20_240_611
PHASES = ("setup", "check", "publish", "download", "install", "start", "notify_app_ready")
SETUP, CHECK, PUBLISH, DOWNLOAD, INSTALL, START, NOTIFY = range(len(PHASES))
# The last file-system step seen during a download: which part of it the kill interrupted.
DOWNLOAD_PARTS = ("request", "archive", "unpack", "finish")
REQUEST, ARCHIVE, UNPACK, FINISH = range(len(DOWNLOAD_PARTS))


def big_bundle(name: str) -> bytes:
    """About 600 KB of incompressible files in a few folders, different for each ``name``."""
    rng = random.Random(name)
    files = {"index.js": f"showWelcome({name!r});\n".encode()}
    for i in range(48):
        folder = ("assets", "images", "fonts/latin")[i % 3]
        files[f"{folder}/file{i:02}.bin"] = rng.randbytes(8_000 + 180 * i)
    return zip_bytes(files)


class PhaseFS(FileSystem):
    """The child's file system: notes which part of a download the latest step belongs to."""

    def __init__(self, part) -> None:
        self.part = part

    def step(self, operation: str, path: Path) -> None:
        if path.name.endswith(".zip.part") and operation != "remove":
            self.part.value = ARCHIVE
        elif path.name.startswith(".staging-") or ".staging-" in path.parent.as_posix():
            self.part.value = UNPACK
        elif operation != "fsync-dir" and self.part.value != REQUEST:
            self.part.value = FINISH


def publish_next(admin: httpx.Client, base_labels: list[str], rotation) -> None:
    """Make a new label appear: republish the next of the base contents (not the newest one's content)."""
    for _ in base_labels:
        goal = base_labels[rotation.value % len(base_labels)]
        rotation.value += 1
        response = admin.post(f"{DEPLOYMENT}/rollback", json={"label": goal})
        if response.status_code == 201:
            return
        assert response.status_code == 409, response.text  # the newest release already has that content
    raise AssertionError("no base content could be republished")


def device_loop(config: dict, phase, part, rotation, iterations) -> None:
    """The forked child: update after update, until it is killed. Never returns normally."""
    try:
        # Plain HTTP to 127.0.0.1: verify=False spares each child loading the CA bundle (~80 ms).
        http = httpx.Client(timeout=30, verify=False)
        admin = httpx.Client(
            base_url=config["url"],
            headers={"Authorization": f"Bearer {config['admin_key']}"},
            timeout=30,
            verify=False,
        )
        engine = UpdateEngine(
            config["url"],
            config["deployment_key"],
            "1.0.0",
            1,
            embedded_bundle=config["embedded"],
            data_dir=config["data_dir"],
            http=http,
            fs=PhaseFS(part),
        )

        def enter(value: int) -> None:
            part.value = REQUEST
            phase.value = value

        while True:
            enter(CHECK)
            result = engine.check_for_update()
            if result.status is CheckStatus.OFFLINE:
                raise AssertionError(f"the update check failed: {result}")
            if result.update is None:
                enter(PUBLISH)
                publish_next(admin, config["base_labels"], rotation)
                continue
            enter(DOWNLOAD)
            downloaded = engine.download(result.update)
            enter(INSTALL)
            engine.install(downloaded)
            enter(START)  # the app restarts on the update...
            engine.start()
            enter(NOTIFY)  # ...which works
            engine.notify_app_ready()
            iterations.value += 1
    except BaseException:
        Path(config["error_file"]).write_text(traceback.format_exc())
        os._exit(3)


def drain(server) -> str:
    """Read what the server printed so far, without blocking (a full pipe would stall it)."""
    assert server.process.stdout is not None
    fd = server.process.stdout.fileno()
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk.decode(errors="replace"))
    return "".join(chunks)


@pytest.mark.slow
def test_sigkill_at_random_moments(live_server, tmp_path: Path) -> None:
    """A device updates again and again in a forked child and is SIGKILLed at random moments; after each
    kill it boots (in this process): start() must return a verified bundle. The app then runs fine and
    confirms it, and this process makes sure an update is offered, so that the next child goes straight to
    a download (new labels come from the rollback API, rotating over three ~600 KB contents)."""
    began = time.perf_counter()
    rng = random.Random(SEED)
    admin = httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {live_server.key}"}, timeout=30
    )
    http = httpx.Client(timeout=30)
    ctx = multiprocessing.get_context("fork")
    child = None
    server_output: list[str] = []
    try:
        app = admin.post("/api/v1/apps", json={"name": APP})
        assert app.status_code == 201, app.text
        key = {d["name"]: d["key"] for d in app.json()["deployments"]}["Production"]
        for name in ("alpha", "beta", "gamma"):
            response = admin.post(
                f"{DEPLOYMENT}/releases",
                files={"package": ("b.zip", big_bundle(name), "application/zip")},
                data={"release": json.dumps({"target_version": "1.0.0"})},
            )
            assert response.status_code == 201, response.text
        base_labels = ["v1", "v2", "v3"]
        _hashes, manifests = release_manifests(admin)  # every later label republishes one of these
        embedded_dir = embedded(tmp_path)
        bundles = Bundles(embedded_dir, manifests)
        data = tmp_path / "device"
        error_file = tmp_path / "child-error.txt"
        config = {
            "url": live_server.url,
            "admin_key": live_server.key,
            "deployment_key": key,
            "embedded": embedded_dir,
            "data_dir": data,
            "base_labels": base_labels,
            "error_file": str(error_file),
        }
        # Shared memory without locks: a child killed at any moment cannot leave one held.
        phase = ctx.RawValue("i", SETUP)
        part = ctx.RawValue("i", REQUEST)
        rotation = ctx.RawValue("i", 0)
        iterations = ctx.RawValue("i", 0)

        def run_child(delay: float | None) -> tuple[int, int, float]:
            """Fork a device and SIGKILL it ``delay`` seconds after it is set up (None: once it completed an
            update): (its phase, the part of the download it was in, the seconds it ran)."""
            nonlocal child
            phase.value, part.value = SETUP, REQUEST
            updates = iterations.value
            child = ctx.Process(target=device_loop, args=(config, phase, part, rotation, iterations))
            child.start()
            deadline = time.monotonic() + 30
            while phase.value == SETUP and child.is_alive() and time.monotonic() < deadline:
                time.sleep(0.0005)
            ready = time.perf_counter()
            if delay is None:
                while iterations.value == updates and child.is_alive() and time.monotonic() < deadline:
                    time.sleep(0.0005)
            else:
                time.sleep(delay)
            ran = time.perf_counter() - ready
            if child.is_alive():
                os.kill(child.pid, signal.SIGKILL)
            child.join()
            server_output.append(drain(live_server))
            if child.exitcode != -signal.SIGKILL:
                error = error_file.read_text() if error_file.exists() else "(no traceback)"
                output = "".join(server_output)[-3000:]
                pytest.fail(f"the device process ended by itself ({child.exitcode}):\n{error}\n{output}")
            child = None
            return phase.value, part.value, ran

        violations: list[str] = []
        had_a_confirmed_update = False

        def restart_and_verify(where: str) -> bool:
            """The device boots: start() must give a verified bundle; the app then runs fine and confirms.

            Returns whether start() rolled back an update the killed app had not confirmed."""
            nonlocal had_a_confirmed_update
            with UpdateEngine(
                live_server.url, key, "1.0.0", 1, embedded_bundle=embedded_dir, data_dir=data, http=http
            ) as engine:
                failed_before = len(engine.failed_labels)
                if engine.journal_recovery is not None:  # a kill is no damage: old or new generation
                    violations.append(
                        f"{where}: the kill looked like a damaged journal: {engine.journal_recovery}"
                    )
                try:
                    folder = engine.start()
                except Exception as exc:
                    violations.append(f"{where}: start() raised {exc!r}")
                    return False
                problem = bundles.problem(folder, data)
                if problem is not None:
                    violations.append(f"{where}: start() returned {folder}: {problem}")
                elif folder == embedded_dir and had_a_confirmed_update:
                    # Valid, but a device that once confirmed an update always keeps a good one to go back to.
                    violations.append(f"{where}: start() fell back to the embedded bundle")
                engine.notify_app_ready()
                had_a_confirmed_update = had_a_confirmed_update or engine.current_label is not None
                rolled_back = len(engine.failed_labels) > failed_before
                # So that the next child goes straight to a download: offer it an update.
                if engine.check_for_update().update is None:
                    publish_next(admin, base_labels, rotation)
                return rolled_back

        # Calibration: how long a child, once set up, takes to complete an update (check, download, install,
        # start, confirm); the kills are spread over that time.
        samples = []
        for _ in range(5):
            samples.append(run_child(None)[2])
            restart_and_verify("after calibration")
        span = sorted(samples)[len(samples) // 2]
        assert span < 5, f"a child needs {span:.1f} s for one update: is it stuck? {samples}"

        landed: Counter[str] = Counter()
        rollbacks = kills = 0
        killing_began = time.perf_counter()
        for kill in range(1, KILLS + 1):
            delay = rng.uniform(0, span)
            at_phase, at_part, _ran = run_child(delay)
            kills += 1
            where = PHASES[at_phase]
            if at_phase == DOWNLOAD:
                where += f" ({DOWNLOAD_PARTS[at_part]})"
            landed[where] += 1
            rollbacks += restart_and_verify(f"kill {kill} after {delay * 1000:.0f} ms in {where}")
        killing = time.perf_counter() - killing_began

        # Recovery: the device still updates normally.
        with UpdateEngine(
            live_server.url, key, "1.0.0", 1, embedded_bundle=embedded_dir, data_dir=data, http=http
        ) as engine:
            result = engine.check_for_update()
            if result.update is None:
                publish_next(admin, base_labels, rotation)
                result = engine.check_for_update()
            assert result.status is CheckStatus.UPDATE and result.update is not None, result
            engine.install(engine.download(result.update))
            folder = engine.start()
            assert engine.current_label == result.update.label
            assert bundles.problem(folder, data) is None
            engine.notify_app_ready()
        # No debris piled up over the kills: the current and previous bundles, no partial download.
        assert len(list((data / "bundles").iterdir())) <= 2
        assert list((data / "downloads").iterdir()) == []

        downloads = sum(n for name, n in landed.items() if name.startswith("download"))
        elsewhere = kills - downloads - landed["install"]
        ms = [round(sample * 1000) for sample in samples]
        print(f"\nan update takes a child {span * 1000:.0f} ms (median of {ms} ms); the kills spread over it")
        print(
            f"kills: {kills} in {killing:.1f} s: {downloads} during download, {landed['install']} during "
            f"install, {elsewhere} elsewhere; in detail {dict(sorted(landed.items()))}"
        )
        print(f"updates completed by the children: {iterations.value}; rolled back at boot: {rollbacks}")
        print(f"test took {time.perf_counter() - began:.1f} s")
        assert kills >= 200
        assert not violations, "\n".join(violations)
    finally:
        if child is not None and child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
            child.join()
        admin.close()
        http.close()
