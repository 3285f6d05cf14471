"""Device reports per second: one transaction per report against batches, on SQLite and PostgreSQL.

    PYTHONPATH=src .venv/bin/python benchmarks/reports.py [--reports N] [--devices D]

In-process, through ``MetricsService`` (what the report routes call), one thread, a realistic mix: 40%
``downloaded``, 40% ``installed`` (devices moving between three labels: both gauges and hours written), 20%
``running``, from ``--devices`` distinct devices.

- ``one per write``: each report accepted and flushed at once, one transaction per report (what every
  report cost before batching);
- ``batched``: reports accepted as the routes do, written by the flusher (every second or 1,000 reports,
  one transaction per batch); the rate counts until the last report is in the database. ``accept µs`` is
  what the route itself waits per report.

SQLite is a file in a temporary folder (WAL, as ``overair serve`` runs it); PostgreSQL is a server the
script starts with the test suite's ``tests/postgres_server.py`` (skipped when Debian's ``postgresql``
is not installed). Printed, never asserted.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from overair.auth.principal import SYSTEM
from overair.db import make_engine, make_sessionmaker, migrate, precise_now
from overair.jobs import JobQueue, Worker
from overair.metrics.service import DeviceReport, MetricsService
from overair.releases import repository
from overair.releases.domain import ReleaseDomain
from overair.releases.models import Package, Release
from overair.releases.schemas import AppCreate
from overair.storage import open_blob_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

LABELS = ("v1", "v2", "v3")


@contextmanager
def databases() -> Iterator[list[tuple[str, str]]]:
    """(name, SQLAlchemy URL) of each backend to measure."""
    with tempfile.TemporaryDirectory(prefix="overair-bench-") as folder:
        found = [("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}")]
        try:
            from postgres_server import PostgresMissing, PostgresServer
        except ImportError:  # psycopg missing
            yield found
            return
        try:
            server = PostgresServer()
        except PostgresMissing:
            yield found
            return
        try:
            server.start()
            found.append(("PostgreSQL", server.create(template=None)))
            yield found
        finally:
            server.stop()


def reports(key: str, count: int, devices: int, start: int) -> list[DeviceReport]:
    """The mix of the module's description; device i moves to the next label at each install."""
    made = []
    for n in range(start, start + count):
        device = n % devices
        label = LABELS[(n // devices) % len(LABELS)]
        status = ("downloaded", "installed", "downloaded", "installed", "running")[n % 5]
        made.append(DeviceReport(key, label, status, f"device-{device}"))
    return made


def measure(url: str, count: int, devices: int) -> list[tuple[str, int, float, float]]:
    """(mode, reports, reports/s, accept µs per report) for one database."""
    engine = make_engine(url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    jobs = Worker(JobQueue(sessions), precise_now)
    releases = ReleaseDomain.open(sessions, open_blob_store("memory://"), jobs=jobs)
    releases.apps.create_app(SYSTEM, AppCreate(name="BenchApp"))
    with sessions.begin() as session:
        deployment = repository.get_deployment(session, repository.get_app(session, "BenchApp"), "Production")
        key = deployment.key
        session.add(
            Package(package_hash="0" * 64, blob_key="b", manifest_key="m", size=1, total_size=1, file_count=1)
        )
        session.flush()
        for seq, label in enumerate(LABELS, start=1):
            session.add(
                Release(
                    deployment_id=deployment.id,
                    seq=seq,
                    label=label,
                    package_hash="0" * 64,
                    target_version="1.0.0",
                )
            )
    rows = []
    metrics = MetricsService(sessions)
    single = reports(key, count // 10, devices, 0)
    started = time.perf_counter()
    for report in single:
        metrics.record_report(report)
        metrics.flush()
    elapsed = time.perf_counter() - started
    rows.append(("one per write", len(single), len(single) / elapsed, elapsed / len(single) * 1e6))

    batch = reports(key, count, devices, len(single))
    started = time.perf_counter()
    for report in batch:
        metrics.record_report(report)
    accepted = time.perf_counter() - started
    metrics.flush()  # the rest of the last second's batch
    elapsed = time.perf_counter() - started
    rows.append(("batched", len(batch), len(batch) / elapsed, accepted / len(batch) * 1e6))
    metrics.close()
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=50_000, help="batched reports (a tenth one per write)")
    parser.add_argument("--devices", type=int, default=10_000, help="distinct devices")
    args = parser.parse_args()
    results = []
    with databases() as found:
        for name, url in found:
            results.extend((name, *row) for row in measure(url, args.reports, args.devices))
    print(f"{'database':11} {'mode':14} {'reports':>8} {'reports/s':>10} {'accept µs':>10}")
    for name, mode, count, rate, accept in results:
        shown = f"{accept:10.1f}" if mode == "batched" else f"{'(write)':>10}"
        print(f"{name:11} {mode:14} {count:8,} {rate:10,.0f} {shown}")
    print(
        f"\n{args.devices:,} devices; one thread; Python {platform.python_version()}, {platform.machine()}; "
        "PostgreSQL with fsync and synchronous_commit off (the test server's settings)"
    )


if __name__ == "__main__":
    main()
