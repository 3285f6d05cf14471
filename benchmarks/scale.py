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
3. publishing a 100 MB bundle through the API to the two hosts, whose blob store is a bucket on a real
   S3-compatible server (Swift with s3api, ``tests/s3_server.py``), against ``sha256sum`` of the same file
   plus a plain upload of it to that bucket with boto3 (the floor any publish has to pay).

The table shows the rates, p50/p99 latency, socket errors and non-200 answers, and ratios against the
SQLite baseline of the same run. Goals (printed, never asserted): reports >= 5,000/s per instance on
PostgreSQL, update checks on PostgreSQL within 10% of SQLite, the mixed load with 0 errors and p99 < 100 ms.
Exit status: 0 when it ran (goals met or not), 1 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

import update_check as uc
from overair.packages import signing

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from nginx_server import NginxServer  # noqa: E402
from postgres_server import PostgresServer  # noqa: E402
from s3_server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, SwiftS3Server  # noqa: E402

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
    pause_ms: int = 0,
) -> uc.Result:
    """wrk_mix.lua against the setup: ``shares`` are checks, downloads and reports out of 100; with
    ``pause_ms`` each connection waits 0 to twice that before each request."""
    label, package_hash = setup.deployment.states[-2].split(":", 1)
    script_args = [
        setup.key, secrets.token_hex(4), label, package_hash, setup.blob_path,
        str(shares[0]), str(shares[1]), str(shares[2]), str(pause_ms),
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


def big_bundle(folder: Path) -> Path:
    """A 100 MB zip of incompressible assets plus a small index.js."""
    import zipfile

    path = folder / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("index.js", "render('big');\n")
        for n in range(BIG_MB // 10):
            zf.writestr(f"assets/blob-{n}.bin", os.urandom(10 * 1024 * 1024))
    return path


def publish_big(url: str, admin_key: str, archive: Path, s3: SwiftS3Server) -> list[tuple[str, float]]:
    """The floor (``sha256sum`` of the file, then one plain upload of it to the same S3 server) against
    publishing it through overair's API to hosts whose blob store is that server."""
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )  # fmt: skip
    timings = []
    started = time.monotonic()
    subprocess.run(["sha256sum", str(archive)], check=True, capture_output=True)
    client.upload_file(str(archive), BUCKET, f"plain-upload-{time.monotonic_ns()}.zip")
    timings.append(("sha256sum + plain S3 upload (boto3)", time.monotonic() - started))
    headers = {"Authorization": f"Bearer {admin_key}"}
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
        timings.append(("overair publish to S3 (API, through nginx)", time.monotonic() - started))
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
    parser.add_argument(
        "--pace",
        type=float,
        default=5.0,
        help="requests per second of each device in the paced run of the mixed load (5)",
    )
    parser.add_argument("--workers", type=int, default=1, help="granian workers per host (1)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="path to wrk")
    parser.add_argument("--skip-big", action="store_true", help="leave out the 100 MB publish")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.mix_duration <= 0 or args.devices < args.threads:
        parser.error("--duration and --mix-duration must be > 0 and --devices >= --threads")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not uc.ready_to_run(args.wrk):
        return 1
    root = Path(tempfile.mkdtemp(prefix="overair-scale-"))
    servers: list[uc.Server] = []
    postgres: PostgresServer | None = None
    s3: SwiftS3Server | None = None
    nginx: NginxServer | None = None
    rates: list[tuple[str, uc.Result, uc.Result]] = []
    try:
        postgres = PostgresServer()
        postgres.start()
        setups: list[tuple[str, dict[str, str], int]] = [
            ("SQLite, 1 host", {}, 1),
            ("PostgreSQL, 1 host", {"OVERAIR_DATABASE_URL": postgres.create(template=None)}, 1),
        ]
        print("starting an S3-compatible server (Swift with s3api) for the hosts behind nginx")
        s3 = SwiftS3Server()
        s3.start()
        import boto3

        boto3.client(
            "s3", endpoint_url=s3.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ).create_bucket(Bucket=BUCKET)  # fmt: skip
        two = {
            "OVERAIR_DATABASE_URL": postgres.create(template=None),
            "OVERAIR_BLOB_URL": f"s3://{BUCKET}/scale",
            "OVERAIR_S3_ENDPOINT": s3.endpoint,
            "OVERAIR_S3_REGION": REGION,
            "OVERAIR_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "OVERAIR_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        setups.append(("PostgreSQL, 2 hosts + nginx", two, 2))
        mixed: uc.Result | None = None
        paced: uc.Result | None = None
        per_device: tuple[int, float] | None = None
        for name, env, count in setups:
            folder = root / name.split(",")[0].lower() / str(count)
            folder.mkdir(parents=True)
            # one server key for the deployment, made by the operator before the hosts start (on PostgreSQL
            # a host never makes one itself)
            key_file = folder / "server-key.pem"
            signing.load_or_create_key_file(key_file)
            env = {**env, "OVERAIR_SERVER_KEY_FILE": str(key_file)}
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
                pause = round(1000 / args.pace) if args.pace else 0
                print(f"the same load paced: each device asks {args.pace:g} times a second on average")
                paced = mix(args, setup, "paced", (90, 5, 5), args.mix_duration, args.devices, pause)
                time.sleep(2)  # the hosts flush the reports they hold
                per_device = device_row_bytes(env["OVERAIR_DATABASE_URL"])
                if not args.skip_big:
                    archive = big_bundle(folder)
                    big = publish_big(url, key, archive, s3)
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
        if mixed is not None and paced is not None:
            print()
            rows = [("mixed load (90% checks, 5% downloads, 5% reports)", "requests/s", "p50 ms", "p99 ms")]
            rows[0] += ("errors", "non-200")
            for what, result in (
                (f"{args.devices} devices asking at once, {args.mix_duration:g}s", mixed),
                (f"{args.devices} devices asking {args.pace:g}/s each, {args.mix_duration:g}s", paced),
            ):
                rows.append(
                    (
                        what,
                        f"{result.rps:,.0f}",
                        f"{result.p50_ms:.1f}",
                        f"{result.p99_ms:.1f}",
                        str(result.errors),
                        str(result.non200),
                    )
                )
            table(rows)
            print("asking at once: every device asks again as soon as it is answered, so the load is as high")
            print("as the machine allows and each request also waits for the ones ahead of it")
            print(f"(p50 is about {args.devices} / requests per second).")
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
        if mixed is not None and paced is not None:
            for what, result in (("asking at once", mixed), ("paced", paced)):
                met = not (result.errors or result.non200) and result.p99_ms < 100
                goals.append((f"mixed load {what}: 0 errors, p99 < 100 ms", met))
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
        if s3 is not None:
            s3.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
