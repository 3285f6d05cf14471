"""Update checks per second: overair (``overair serve``) against a bare ASGI app under granian.

    .venv/bin/python benchmarks/update_check.py [--workers N] [--duration S] [--threads T] [--connections C]

What it does, on 127.0.0.1 only, with processes it starts and stops itself:

1. starts ``python -m overair.main serve`` (granian, ``--workers`` processes) on a free port with a fresh
   temporary data dir and reads the first admin key from its output;
2. creates the app ``BenchApp`` and publishes 50 releases to Production through the management API (mixed
   targets, a few mandatory, the last one a rollout in progress at 40 %);
3. runs ``wrk`` with ``wrk_clients.lua``: every request is an update check with a distinct client id,
   cycling through devices on the embedded bundle and on a few published releases; a warm-up first. Expo
   manifest requests are measured twice: from new devices (each check is also the device's first report,
   a metrics row to write) and from a fleet of returning devices (the warm-up's, checking in again);
4. runs the same wrk settings and URLs against ``bare_asgi.py`` under granian with the same worker count;
5. prints a table (requests/s, p50/p99 latency, errors), the ratio overair/bare against the goal
   ratio >= 0.5, and the machine facts needed to read it.

The result is printed, never asserted: the exit status is 0 whether the goal is met or not, 1 when the
benchmark could not run (no wrk, a server that does not start) and 2 when a server answered anything but
200 during a measurement (the numbers are then not about update checks). Needs ``wrk`` (``make bench``
installs Debian's package).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk_clients.lua"
KEY_PATTERN = re.compile(r"oa_[A-Za-z0-9_-]{43}")
APP = "BenchApp"
RELEASES = 50
GOAL = 0.5
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class BenchError(Exception):
    """The benchmark cannot run (missing tool, server that does not start, API refusing the data)."""


# --------------------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    """The environment for servers: no OVERAIR_*/GRANIAN_* settings leak in from the caller's shell.

    An inherited ``OVERAIR_DATABASE_URL`` would otherwise send 50 benchmark releases to a real database.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OVERAIR_", "GRANIAN_"))}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    return env


@dataclass
class Server:
    """A server process in its own session, its output drained by a thread (so it never blocks on a pipe)."""

    name: str
    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(
        cls, name: str, port: int, command: list[str], cwd: Path, env: dict[str, str] | None = None
    ) -> Server:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**child_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # Ctrl+C reaches only this script, which then stops the server
        )
        server = cls(name, f"http://127.0.0.1:{port}", process)
        server.reader = threading.Thread(target=server._drain, name=f"{name}-output", daemon=True)
        server.reader.start()
        return server

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its worker processes (same session), from /proc."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == self.process.pid or stat.parent.name == str(self.process.pid):
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, timeout: float = 300.0) -> float:
        """Wait until background work (diff and delta builds after publishing) has finished.

        Idle means under 5% of a core for a whole second; returns the seconds waited.
        """
        started = time.monotonic()
        last = self.cpu_seconds()
        while time.monotonic() - started < timeout:
            time.sleep(1.0)
            now = self.cpu_seconds()
            if now - last < 0.05:
                break
            last = now
        return time.monotonic() - started

    def wait_ready(self, path: str = "/", timeout: float = START_TIMEOUT) -> None:
        """Poll ``path`` until it answers 200; fail if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.process.returncode}:\n{self.output}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.output}")

    def admin_key(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := KEY_PATTERN.search(self.output):
                return found.group(0)
            time.sleep(0.05)
        raise BenchError(f"{self.name} printed no admin key:\n{self.output}")

    def stop(self) -> None:
        """SIGTERM (granian stops its workers), then SIGKILL to the server's own process group."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        else:  # the leader is gone; reap workers it may have left in its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


# --------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------


def bundle(i: int) -> bytes:
    """A small bundle zip whose content differs for every ``i``."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.js", f"render('Benchmark release {i}')\n" + "x();\n" * (i % 7))
        zf.writestr("styles/main.css", f"body {{ margin: {i}px }}\n")
        zf.writestr("assets/logo.png", b"\x89PNG fake image " + bytes([i % 256]) * 64)
    return buffer.getvalue()


def release_options(i: int) -> dict[str, object]:
    """Release ``i`` (1-based): mixed targets, every 12th mandatory, the last one rolling out at 40 %."""
    targets = ["1.0.0", "^1.0.0", "1.0.x", ">=1.0.0 <2.0.0", "2.0.0", "~1.0.0"]
    options: dict[str, object] = {
        "target_version": targets[i % len(targets)],
        "rollout": 100,
        "mandatory": i % 12 == 0,
        "description": f"Benchmark release {i}",
    }
    if i == RELEASES:
        options.update(target_version="1.0.0", rollout=40, mandatory=False)
    return options


@dataclass
class Deployment:
    key: str
    states: list[str]  # "label:package_hash" of bundles devices run, for wrk_clients.lua


def load_deployment(url: str, admin_key: str) -> Deployment:
    """Create BenchApp and publish the releases to Production; return its key and device states."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
        created = api.post("/api/v1/apps", json={"name": APP})
        if created.status_code != 201:
            raise BenchError(f"creating {APP} failed: {created.status_code} {created.text}")
        published = []
        for i in range(1, RELEASES + 1):
            answer = api.post(
                f"/api/v1/apps/{APP}/deployments/Production/releases",
                files={"package": (f"bundle-{i}.zip", bundle(i), "application/zip")},
                data={"release": json.dumps(release_options(i))},
            )
            if answer.status_code != 201:
                raise BenchError(f"publishing release {i} failed: {answer.status_code} {answer.text}")
            published.append(answer.json())
        deployments = api.get(f"/api/v1/apps/{APP}/deployments")
        deployments.raise_for_status()
        key = next(d["key"] for d in deployments.json() if d["name"] == "Production")
    by_label = {r["label"]: r for r in published}
    # Devices on the embedded bundle (most of them), on an old release, on the previous and on the newest.
    states = [":", ":", ":", ":"]
    for label in ("v10", f"v{RELEASES - 1}", f"v{RELEASES}"):
        states.append(f"{label}:{by_label[label]['package_hash']}")
    return Deployment(key, states)


EXPO_APP = "BenchExpo"
RETURNING_PER_THREAD = 7000
"""Devices of each wrk thread in the "expo-returning" scenario (``RETURNING`` in wrk_clients.lua)."""
EXPO_RELEASES = 20


def expo_package(i: int) -> bytes:
    """An Expo update's package (as `overair release push-expo` builds it) whose bundle differs per ``i``."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundles/ios.hbc", f"Benchmark Expo update {i}\n" * (1 + i % 5))
        zf.writestr("assets/logo", b"\x89PNG fake image")
        description = {"launchAsset": "bundles/ios.hbc", "assets": [{"path": "assets/logo", "ext": "png"}]}
        zf.writestr("expo.json", json.dumps(description))
    return buffer.getvalue()


def load_expo(url: str, admin_key: str) -> Deployment:
    """Create BenchExpo with iOS updates for runtime 1.0.0 (the last rolling out at 40 %); its key and the
    update ids devices run (embedded, an old one, the previous, the newest)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
        created = api.post("/api/v1/apps", json={"name": EXPO_APP})
        if created.status_code != 201:
            raise BenchError(f"creating {EXPO_APP} failed: {created.status_code} {created.text}")
        key = next(d["key"] for d in created.json()["deployments"] if d["name"] == "Production")
        ids = []
        for i in range(1, EXPO_RELEASES + 1):
            options = {
                "target_version": "*",
                "rollout": 40 if i == EXPO_RELEASES else 100,
                "expo": {"platform": "ios", "runtime_version": "1.0.0"},
            }
            answer = api.post(
                f"/api/v1/apps/{EXPO_APP}/deployments/Production/releases",
                files={"package": (f"expo-{i}.zip", expo_package(i), "application/zip")},
                data={"release": json.dumps(options)},
            )
            if answer.status_code != 201:
                raise BenchError(f"publishing Expo update {i} failed: {answer.status_code} {answer.text}")
            ids.append(answer.json()["update_id"])
    return Deployment(key, ["", "", "", "", ids[4], ids[-2], ids[-1]])


def check_expo_answers(url: str, deployment: Deployment) -> None:
    """Ask as a few Expo devices would; fail on anything but a 200 multipart answer."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for n, current in enumerate(deployment.states):
            headers = {
                "Expo-Platform": "ios",
                "Expo-Protocol-Version": "1",
                "Expo-Runtime-Version": "1.0.0",
                "EAS-Client-ID": f"check-{n}",
                **({"Expo-Current-Update-ID": current} if current else {}),
            }
            answer = client.get(f"/expo/{deployment.key}", headers=headers)
            if answer.status_code != 200 or not answer.headers["content-type"].startswith("multipart/"):
                raise BenchError(f"Expo manifest request answered {answer.status_code}: {answer.text[:200]}")


def check_answers(url: str, deployment: Deployment, salt: str) -> dict[str, object]:
    """Ask as a few devices would (same URLs as the Lua script); fail on anything but 200 + JSON."""
    statuses: dict[str, int] = {}
    inside = 0
    sizes: set[int] = set()
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(200):
            label, package_hash = deployment.states[n % len(deployment.states)].split(":", 1)
            params = {
                "deployment_key": deployment.key,
                "app_version": "1.0.0",
                "label": label,
                "package_hash": package_hash,
                "client_id": f"{salt}-check-{n:010d}",
            }
            answer = client.get("/v1/update-check", params=params)
            if answer.status_code != 200:
                raise BenchError(f"update check answered {answer.status_code}: {answer.text}")
            body = answer.json()
            statuses[body["status"]] = statuses.get(body["status"], 0) + 1
            sizes.add(len(answer.content))
            if not label and body["update"] and body["update"]["label"] == f"v{RELEASES}":
                inside += 1
    embedded = sum(1 for n in range(200) if deployment.states[n % len(deployment.states)] == ":")
    return {"statuses": statuses, "rollout_inside": f"{inside}/{embedded}", "sizes": sorted(sizes)}


# --------------------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect, read, write, timeout)
    non200: int
    raw: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    args: argparse.Namespace,
    url: str,
    deployment: Deployment,
    seconds: float,
    name: str,
    protocol: str,
    salt: str | None = None,
) -> Result:
    salt = salt or secrets.token_hex(4)  # fresh client ids for every run, unless a fleet returns
    options = [f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s"]
    return wrk(args.wrk, options, LUA, url, [protocol, deployment.key, salt, *deployment.states], name)


def wrk(binary: str, options: list[str], script: Path, url: str, script_args: list[str], name: str) -> Result:
    """Run wrk with a Lua script that prints ``WRK_RESULT {json}`` (wrk_clients.lua, wrk_mix.lua)."""
    seconds = float(next(o for o in options if o.startswith("-d"))[2:].rstrip("s"))
    command = [binary, *options, "--timeout", "5s", "--latency", "-s", str(script), url, "--", *script_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = process.communicate(timeout=seconds + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    found = re.search(r"^WRK_RESULT (\{.*\})$", out, re.MULTILINE)
    if process.returncode != 0 or found is None:
        raise BenchError(f"wrk failed (status {process.returncode}):\n{out}")
    data = json.loads(found.group(1))
    return Result(
        scenario=name,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        non200=data["non200"],
        raw=out,
    )


def measure(args: argparse.Namespace, url: str, deployment: Deployment, name: str, protocol: str) -> Result:
    # returning devices are the warm-up's: it is their first check, the measurement their next ones
    salt = secrets.token_hex(4) if protocol == "expo-returning" else None
    if args.warmup > 0:
        warm = run_wrk(args, url, deployment, args.warmup, name, protocol, salt)
        if warm.non200 or warm.errors:
            print(f"  warm-up of {name}: {warm.non200} non-200 answers, {warm.errors} socket errors")
        if salt and warm.requests < RETURNING_PER_THREAD * args.threads:
            print(f"  warm-up of {name} met only part of the fleet: first checks fall in the measurement")
    result = run_wrk(args, url, deployment, args.duration, name, protocol, salt)
    if args.verbose:
        print(result.raw)
    return result


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def facts(args: argparse.Namespace) -> list[tuple[str, str]]:
    wrk_version = subprocess.run([args.wrk, "-v"], capture_output=True, text=True, check=False).stdout
    return [
        ("nproc", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {cpu_model()}"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("granian", f"{version_of('granian')} (ASGI, {args.workers} worker(s), same for both servers)"),
        ("overair", version_of("overair")),
        ("wrk", wrk_version.split(" Copyright")[0].strip() or "?"),
        (
            "load",
            f"-t{args.threads} -c{args.connections} -d{args.duration:g}s after a {args.warmup:g}s warm-up, "
            f"{args.rounds} round(s); client, servers on the same machine",
        ),
        (
            "data",
            f"{RELEASES} releases in Production (last at 40 % rollout); every request a new client_id",
        ),
    ]


def print_report(args: argparse.Namespace, results: list[Result], notes: list[tuple[str, str]]) -> float:
    rows = [("scenario", "requests/s", "p50 ms", "p99 ms", "errors", "non-200")]
    for r in results:
        rows.append(
            (r.scenario, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", str(r.errors), str(r.non200))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    print()
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
        if n == 0:
            print(line)
    overair = statistics.median(r.rps for r in results if r.scenario.startswith("overair native"))
    codepush = statistics.median(r.rps for r in results if r.scenario.startswith("overair CodePush"))
    expo = statistics.median(r.rps for r in results if r.scenario.startswith("overair Expo manifest"))
    returning = statistics.median(r.rps for r in results if r.scenario.startswith("overair Expo, returning"))
    bare = statistics.median(r.rps for r in results if r.scenario.startswith("bare"))
    ratio = overair / bare if bare else 0.0
    print(line)
    of = " (medians of the rounds)" if args.rounds > 1 else ""
    print(f"ratio overair native/bare = {overair:,.0f} / {bare:,.0f} = {ratio:.2f}{of}")
    codepush_ratio = codepush / bare if bare else 0.0
    print(f"ratio overair CodePush v0.1/bare = {codepush:,.0f} / {bare:,.0f} = {codepush_ratio:.2f}")
    expo_ratio = expo / bare if bare else 0.0
    print(f"ratio overair Expo manifest/bare = {expo:,.0f} / {bare:,.0f} = {expo_ratio:.2f} (first checks)")
    returning_ratio = returning / bare if bare else 0.0
    print(
        f"ratio overair Expo, returning devices/bare = {returning:,.0f} / {bare:,.0f} = {returning_ratio:.2f}"
    )
    print(f"goal ratio (Expo, returning devices) >= {GOAL}: {'PASS' if returning_ratio >= GOAL else 'FAIL'}")
    print(f"goal ratio (native) >= {GOAL}: {'PASS' if ratio >= GOAL else 'FAIL'}")
    print("for scale: the CodePush reference server answered ~100 checks/s (Azurite) and ~830 (in-memory)")
    print()
    for name, value in [*facts(args), *notes]:
        print(f"{name:>8}: {value}")
    return ratio


def server_problems(server: Server) -> list[str]:
    """Log lines that look like trouble (tracebacks, errors, warnings)."""
    pattern = re.compile(r"traceback|error|exception|warn|critical", re.IGNORECASE)
    return [line for line in server.lines if pattern.search(line)]


# --------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="granian workers for both servers (1)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each (2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate overair/bare this often (1)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="path to wrk")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output too")
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="measure at once, while the diff and delta builds that publishing started still run",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64 or not 0 < args.duration <= 3600 or not 0 <= args.warmup <= 600:
        parser.error("--workers must be 1-64, --duration 0-3600 s and --warmup 0-600 s")
    if not 1 <= args.rounds <= 20 or args.threads < 1 or args.connections < args.threads:
        parser.error("--rounds must be 1-20, --threads >= 1 and --connections >= --threads")
    return args


def overair_command(port: int, data_dir: Path, workers: int) -> list[str]:
    """``overair serve`` as a user starts it."""
    return [
        *(sys.executable, "-m", "overair.main", "serve"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--data-dir", str(data_dir), "--workers", str(workers)),
    ]


def bare_command(port: int, workers: int) -> list[str]:
    """granian serving ``bare_asgi:app`` (run from this folder) with the same worker count."""
    return [
        *(sys.executable, "-m", "granian", "--interface", "asgi", "--no-access-log"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "bare_asgi:app"),
    ]


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def ready_to_run(wrk: str) -> bool:
    """Whether ``wrk`` is installed (else say how to get it); SIGTERM then stops the run like Ctrl+C, so
    the servers it started are stopped too."""
    if shutil.which(wrk) is None:
        print(f"wrk not found ({wrk}): install it (apt-get install wrk) or run `make bench`.")
        return False
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not ready_to_run(args.wrk):
        return 1
    data_dir = Path(tempfile.mkdtemp(prefix="overair-bench-"))
    servers: list[Server] = []
    try:
        port = free_port()
        print(f"starting overair serve on 127.0.0.1:{port} with {args.workers} worker(s), data in {data_dir}")
        overair = Server.start(
            "overair",
            port,
            overair_command(port, data_dir / "data", args.workers),
            cwd=data_dir,  # no .env from the caller's folder
        )
        servers.append(overair)
        overair.wait_ready()
        key = overair.admin_key()
        print(f"publishing {RELEASES} releases of {APP} to Production")
        started = time.monotonic()
        deployment = load_deployment(overair.url, key)
        expo = load_expo(overair.url, key)
        loaded_in = time.monotonic() - started
        settled_in = 0.0
        if not args.no_settle:
            check_answers(overair.url, deployment, secrets.token_hex(4))  # also queues on-demand deltas
            print("waiting for the background diff and delta builds to finish")
            settled_in = overair.wait_idle()
        check = check_answers(overair.url, deployment, secrets.token_hex(4))
        check_expo_answers(overair.url, expo)

        bare_port = free_port()
        bare = Server.start(
            "bare ASGI",
            bare_port,
            bare_command(bare_port, args.workers),
            cwd=HERE,
        )
        servers.append(bare)
        bare.wait_ready()
        bare_size = len(httpx.get(bare.url + "/v1/update-check", timeout=5).content)

        results: list[Result] = []
        for round_ in range(1, args.rounds + 1):
            suffix = f" #{round_}" if args.rounds > 1 else ""
            for name, server, protocol, measured in (
                ("overair native", overair, "native", deployment),
                ("overair CodePush v0.1", overair, "codepush", deployment),
                ("overair Expo manifest", overair, "expo", expo),
                ("overair Expo, returning devices", overair, "expo-returning", expo),
                ("bare ASGI", bare, "native", deployment),
            ):
                print(f"measuring {name}{suffix}: {args.warmup:g}s warm-up + {args.duration:g}s")
                results.append(measure(args, server.url, measured, name + suffix, protocol))

        notes = [
            ("loaded", f"{RELEASES} releases in {loaded_in:.1f}s, then {settled_in:.0f}s of builds"),
            (
                "answers",
                f"sanity check {check['statuses']}, embedded devices inside rollout "
                f"{check['rollout_inside']} (expect ~40 %)",
            ),
            ("bodies", f"overair {check['sizes']} bytes, bare {bare_size} bytes"),
            (
                "expo",
                f"{EXPO_RELEASES} iOS updates; an Expo check is also its device's report, which native and "
                "CodePush devices send apart: 'Expo manifest' makes every request a new device (each one "
                "a metrics row written, the worst case), 'returning devices' is a fleet of "
                f"{RETURNING_PER_THREAD * args.threads:,} that the warm-up introduced, checking in again "
                "(docs/scaling.md)",
            ),
            (
                "codepush",
                "a check naming the label its device runs is, once a day per device and host, a touch that "
                "keeps the device counted as active (the SDK reports only on package changes): every "
                "request here is a new device, so every check is one",
            ),
        ]
        print_report(args, results, notes)
        for server in servers:
            problems = server_problems(server)
            print(f"{server.name} log: {len(server.lines)} lines, {len(problems)} look like problems")
            for line in problems[:20]:
                print(f"    {line}")
        if any(r.non200 for r in results):
            print("Some answers were not 200: the numbers above are not about update checks.")
            return 2
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}")
        return 1
    except KeyboardInterrupt:
        print("interrupted; stopping servers")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not leave servers behind
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
