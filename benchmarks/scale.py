"""overair at fleet scale: update checks and reports per second on SQLite, PostgreSQL and two hosts behind
nginx, the mixed device load of 1,000 devices, and publishing a 100 MB bundle (issue 15, item 10).

    .venv/bin/python benchmarks/scale.py [--duration S] [--connections C] [--devices N] [--mix-duration S]

Everything runs on 127.0.0.1 with processes this script starts and stops: ``overair serve`` (granian, one
worker each), a PostgreSQL server (``tests/postgres_server.py``: Debian's binaries, initdb into a temporary
folder), Debian's nginx (``tests/nginx_server.py``: round-robin, caching blob downloads as a CDN would) and
``wrk`` as the devices. Each setup gets 50 releases in Production (``update_check.load_deployment``), then:

1. update checks/s (``wrk_mix.lua`` with 100% checks) and reports/s (100% reports) on
   - SQLite, one server;  - PostgreSQL, one server;  - PostgreSQL, two servers behind nginx;
2. the mixed load on PostgreSQL with two servers behind nginx: ``--devices`` connections for
   ``--mix-duration`` seconds, 90% update checks, 5% downloads (answered by nginx's cache) and 5% reports;
3. publishing a 100 MB bundle through the API, against ``sha256sum`` of the same file plus a plain HTTP
   upload of it to a server that only stores it (the floor any publish has to pay).

The table shows the rates, p50/p99 latency, socket errors and non-200 answers, and ratios against the
SQLite baseline of the same run. Goals (printed, never asserted): reports >= 5,000/s per instance on
PostgreSQL, update checks on PostgreSQL within 10% of SQLite, the mixed load with 0 errors and p99 < 100 ms.
Exit status: 0 when it ran (goals met or not), 1 when it could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

import update_check as uc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from nginx_server import NginxServer  # noqa: E402
from postgres_server import PostgresServer  # noqa: E402

MIX = HERE / "wrk_mix.lua"
BIG_MB = 100


@dataclass
class Setup:
    """Servers answering one URL (one host, or nginx in front of several), with a published deployment."""

    name: str
    url: str
    key: str
    deployment: uc.Deployment
    blob_path: str
    servers: list[uc.Server]


def start_hosts(
    name: str, count: int, root: Path, env: dict[str, str], workers: int
) -> tuple[list[uc.Server], str]:
    """``count`` overair hosts sharing ``env`` (database, blob store, server key); the first admin key."""
    servers = []
    for n in range(count):
        port = uc.free_port()
        command = uc.overair_command(port, root / f"host-{n}", workers)
        servers.append(uc.Server.start(f"{name} host {n + 1}", port, command, cwd=root, env=env))
        servers[-1].wait_ready()
    return servers, servers[0].admin_key()


def publish(setup_name: str, url: str, key: str, servers: list[uc.Server]) -> Setup:
    deployment = uc.load_deployment(url, key)
    uc.check_answers(url, deployment, secrets.token_hex(4))  # queues the on-demand delta builds
    for server in servers:
        server.wait_idle()
    answer = httpx.get(
        url + "/v1/update-check",
        params={"deployment_key": deployment.key, "app_version": "1.0.0", "client_id": "bench-blob"},
    ).json()
    blob_path = httpx.URL(answer["update"]["download_url"]).path if answer.get("update") else "/"
    return Setup(setup_name, url, deployment.key, deployment, blob_path, servers)


def mix(
    args: argparse.Namespace,
    setup: Setup,
    name: str,
    shares: tuple[int, int, int],
    seconds: float,
    conns: int,
) -> uc.Result:
    """wrk_mix.lua against the setup: ``shares`` are checks, downloads and reports out of 100."""
    label, package_hash = setup.deployment.states[-2].split(":", 1)
    script_args = [
        setup.key, secrets.token_hex(4), label, package_hash, setup.blob_path,
        str(shares[0]), str(shares[1]), str(shares[2]),
    ]  # fmt: skip
    options = [f"-t{args.threads}", f"-c{conns}", f"-d{seconds:g}s"]
    if args.warmup:
        uc.wrk(args.wrk, [*options[:2], f"-d{args.warmup:g}s"], MIX, setup.url, script_args, name)
    return uc.wrk(args.wrk, options, MIX, setup.url, script_args, name)


def device_row_bytes(database_url: str) -> tuple[int, float]:
    """Devices recorded and the bytes each takes in PostgreSQL (table, TOAST and indexes)."""
    import psycopg

    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE metric_devices")
        count, size = conn.execute(
            "SELECT count(*), pg_total_relation_size('metric_devices') FROM metric_devices"
        ).fetchone() or (0, 0)
    return int(count), (size / count if count else 0.0)


# -- the 100 MB publish ----------------------------------------------------------------------------------


class _Sink(http.server.BaseHTTPRequestHandler):
    """A server that stores an upload and does nothing else: the floor for moving 100 MB over HTTP."""

    folder = Path(tempfile.gettempdir())

    def do_PUT(self) -> None:
        left = int(self.headers["Content-Length"])
        with (self.folder / "sink.bin").open("wb") as out:
            while left:
                piece = self.rfile.read(min(left, 1 << 20))
                out.write(piece)
                left -= len(piece)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@contextlib.contextmanager
def sink(folder: Path) -> Iterator[str]:
    _Sink.folder = folder
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/upload"
    finally:
        server.shutdown()


def big_bundle(folder: Path) -> Path:
    """A 100 MB zip of incompressible assets plus a small index.js."""
    import zipfile

    path = folder / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("index.js", "render('big');\n")
        for n in range(BIG_MB // 10):
            zf.writestr(f"assets/blob-{n}.bin", os.urandom(10 * 1024 * 1024))
    return path


def publish_big(url: str, admin_key: str, archive: Path, sink_url: str) -> list[tuple[str, float]]:
    headers = {"Authorization": f"Bearer {admin_key}"}
    timings = []
    started = time.monotonic()
    subprocess.run(["sha256sum", str(archive)], check=True, capture_output=True)
    with archive.open("rb") as data:
        httpx.put(sink_url, content=data, timeout=300).raise_for_status()
    timings.append(("sha256sum + plain upload", time.monotonic() - started))
    with httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=600) as api:
        api.post("/apps", json={"name": "BigApp"}).raise_for_status()
        started = time.monotonic()
        with archive.open("rb") as data:
            answer = api.post(
                "/apps/BigApp/deployments/Production/releases",
                files={"package": ("big.zip", data, "application/zip")},
                data={"release": '{"target_version": "1.0.0"}'},
            )
        if answer.status_code != 201:
            raise uc.BenchError(f"publishing the 100 MB bundle failed: {answer.status_code} {answer.text}")
        timings.append(("overair publish (API)", time.monotonic() - started))
    return timings


# -- report ----------------------------------------------------------------------------------------------


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print(
            "  ".join(
                [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate measurement (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each (2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections for the rates (64)")
    parser.add_argument(
        "--devices", type=int, default=1000, help="concurrent devices of the mixed load (1000)"
    )
    parser.add_argument("--mix-duration", type=float, default=60.0, help="seconds of the mixed load (60)")
    parser.add_argument("--workers", type=int, default=1, help="granian workers per host (1)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="path to wrk")
    parser.add_argument("--skip-big", action="store_true", help="leave out the 100 MB publish")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.mix_duration <= 0 or args.devices < args.threads:
        parser.error("--duration and --mix-duration must be > 0 and --devices >= --threads")
    return args


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(args.wrk) is None:
        print(f"wrk not found ({args.wrk}): install it (apt-get install wrk) or run `make bench`.")
        return 1
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="overair-scale-"))
    servers: list[uc.Server] = []
    postgres: PostgresServer | None = None
    nginx: NginxServer | None = None
    rates: list[tuple[str, uc.Result, uc.Result]] = []
    try:
        postgres = PostgresServer()
        postgres.start()
        setups: list[tuple[str, dict[str, str], int]] = [
            ("SQLite, 1 host", {}, 1),
            ("PostgreSQL, 1 host", {"OVERAIR_DATABASE_URL": postgres.create(template=None)}, 1),
        ]
        two = {"OVERAIR_DATABASE_URL": postgres.create(template=None)}
        setups.append(("PostgreSQL, 2 hosts + nginx", two, 2))
        mixed: uc.Result | None = None
        per_device: tuple[int, float] | None = None
        for name, env, count in setups:
            folder = root / name.split(",")[0].lower() / str(count)
            folder.mkdir(parents=True)
            env = {**env, "OVERAIR_SERVER_KEY_FILE": str(folder / "server-key.pem")}
            if count > 1:
                env["OVERAIR_BLOB_URL"] = (folder / "bucket").as_uri()
            print(f"starting {name}")
            hosts, key = start_hosts(name, count, folder, env, args.workers)
            servers.extend(hosts)
            url = hosts[0].url
            if count > 1:
                nginx = NginxServer([h.url.removeprefix("http://") for h in hosts])
                url = nginx.url
            setup = publish(name, url, key, hosts)
            print(f"measuring {name}: update checks, then reports")
            checks = mix(args, setup, f"{name}: checks", (100, 0, 0), args.duration, args.connections)
            reports = mix(args, setup, f"{name}: reports", (0, 0, 100), args.duration, args.connections)
            rates.append((name, checks, reports))
            if count > 1:
                print(f"mixed load through nginx: {args.devices} devices for {args.mix_duration:g}s")
                mixed = mix(args, setup, "mixed", (90, 5, 5), args.mix_duration, args.devices)
                time.sleep(2)  # the hosts flush the reports they hold
                per_device = device_row_bytes(env["OVERAIR_DATABASE_URL"])
                if not args.skip_big:
                    archive = big_bundle(folder)
                    with sink(folder) as sink_url:
                        big = publish_big(url, key, archive, sink_url)
            for host in hosts:
                host.stop()

        base_checks, base_reports = rates[0][1].rps, rates[0][2].rps
        print()
        rows: list[tuple[str, ...]] = [
            (
                "setup",
                "checks/s",
                "vs SQLite",
                "p99 ms",
                "reports/s",
                "vs SQLite",
                "p99 ms",
                "errors",
                "non-200",
            )
        ]
        for name, checks, reports in rates:
            rows.append(
                (
                    name,
                    f"{checks.rps:,.0f}",
                    f"{checks.rps / base_checks:.2f}",
                    f"{checks.p99_ms:.1f}",
                    f"{reports.rps:,.0f}",
                    f"{reports.rps / base_reports:.2f}",
                    f"{reports.p99_ms:.1f}",
                    str(checks.errors + reports.errors),
                    str(checks.non200 + reports.non200),
                )
            )
        table(rows)
        if mixed is not None:
            print()
            table(
                [
                    (
                        "mixed load (90% checks, 5% downloads, 5% reports)",
                        "requests/s",
                        "p50 ms",
                        "p99 ms",
                        "errors",
                        "non-200",
                    ),
                    (
                        f"{args.devices} devices, {args.mix_duration:g}s, 2 hosts + nginx",
                        f"{mixed.rps:,.0f}",
                        f"{mixed.p50_ms:.1f}",
                        f"{mixed.p99_ms:.1f}",
                        str(mixed.errors),
                        str(mixed.non200),
                    ),
                ]
            )
        if per_device is not None:
            count, size = per_device
            print(f"\nPostgreSQL: {count:,} devices recorded, {size:,.0f} bytes each with indexes")
        if not args.skip_big:
            print()
            floor = big[0][1]
            table(
                [
                    (f"{BIG_MB} MB bundle", "seconds", "vs floor"),
                    *((n, f"{t:.2f}", f"{t / floor:.2f}") for n, t in big),
                ]
            )
        print()
        pg_checks, pg_reports = rates[1][1].rps, rates[1][2].rps
        goals = [
            ("reports >= 5,000/s per instance on PostgreSQL", pg_reports >= 5000),
            ("update checks on PostgreSQL within 10% of SQLite", pg_checks >= 0.9 * base_checks),
        ]
        if mixed is not None:
            goals.append(
                (
                    "mixed load: 0 errors, p99 < 100 ms",
                    not (mixed.errors or mixed.non200) and mixed.p99_ms < 100,
                )
            )
        for goal, met in goals:
            print(f"goal: {goal}: {'PASS' if met else 'FAIL'}")
        print()
        for fact, value in [
            ("nproc", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {uc.cpu_model()}"),
            (
                "overair",
                f"{uc.version_of('overair')}, granian {uc.version_of('granian')}, "
                f"{args.workers} worker(s) per host",
            ),
            (
                "load",
                f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s after {args.warmup:g}s; "
                "wrk, nginx, PostgreSQL and the hosts share this machine",
            ),
        ]:
            print(f"{fact:>8}: {value}")
        return 0
    except uc.BenchError as exc:
        print(f"benchmark failed: {exc}")
        return 1
    except KeyboardInterrupt:
        print("interrupted; stopping servers")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for server in servers:
            server.stop()
        if nginx is not None:
            nginx.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
