"""Reports per second through the metrics store, against the release-counter UPDATE it replaced.

    .venv/bin/python benchmarks/report_path.py [--reports N] [--devices D]

In-process, on a fresh SQLite file in a temporary folder (WAL, as ``overair serve`` runs it), one thread:

- baseline: what a report cost before the metrics store, one transaction with the release's counter
  UPDATE (``overair.releases.repository.count_report``);
- ``downloaded``: the metrics store's path without a device (hourly upsert, counter, totals);
- ``installed`` (device moves): every report moves a device to another label (both gauges and both hours'
  snapshots written), the most expensive report there is;
- ``running`` (same label): what a daily ``running`` report of a device already counted costs.

Each row's ratio is its reports/s over the baseline's, measured in the same run. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from overair.auth.principal import SYSTEM
from overair.db import make_engine, make_sessionmaker, migrate
from overair.metrics.service import MetricsService
from overair.releases import repository
from overair.releases.domain import ReleaseDomain
from overair.releases.models import Package, Release
from overair.releases.schemas import AppCreate, ReportStatus
from overair.storage import open_blob_store


def timed(count: int, step: Callable[[int], None]) -> float:
    """Reports per second of ``count`` calls of ``step``."""
    started = time.perf_counter()
    for i in range(count):
        step(i)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=3000, help="reports per scenario")
    parser.add_argument("--devices", type=int, default=500, help="distinct devices")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="overair-bench-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        migrate(engine)
        sessions = make_sessionmaker(engine)
        releases = ReleaseDomain.open(sessions, open_blob_store("memory://"))
        releases.apps.create_app(SYSTEM, AppCreate(name="BenchApp"))
        with sessions.begin() as session:
            deployment = repository.get_deployment(
                session, repository.get_app(session, "BenchApp"), "Production"
            )
            deployment_id, key = deployment.id, deployment.key
            session.add(
                Package(
                    package_hash="0" * 64, blob_key="b", manifest_key="m", size=1, total_size=1, file_count=1
                )
            )
            for seq, label in enumerate(("v1", "v2"), start=1):
                session.add(
                    Release(
                        deployment_id=deployment_id,
                        seq=seq,
                        label=label,
                        package_hash="0" * 64,
                        target_version="1.0.0",
                    )
                )
        metrics = MetricsService(sessions)

        def baseline(_i: int) -> None:
            with sessions.begin() as session:
                repository.count_report(session, deployment_id, "v1", ReportStatus.DOWNLOADED)

        def downloaded(i: int) -> None:
            metrics.record_report(key, "v1", "downloaded", f"device-{i % args.devices}")

        def installed(i: int) -> None:
            metrics.record_report(key, ("v1", "v2")[i % 2], "installed", f"device-{(i // 2) % args.devices}")

        def running(i: int) -> None:
            metrics.record_report(key, "v1", "running", f"device-{i % args.devices}")

        for warm in (baseline, downloaded):
            timed(200, warm)
        rows = [("baseline: release counter UPDATE", timed(args.reports, baseline))]
        rows.append(("downloaded", timed(args.reports, downloaded)))
        rows.append(("installed (device moves)", timed(args.reports, installed)))
        timed(args.devices, running)  # every device on v1 first
        rows.append(("running (same label)", timed(args.reports, running)))
        metrics.close()
        releases.close()
        engine.dispose()

    base = rows[0][1]
    print(f"{'scenario':34} {'reports/s':>10} {'ms/report':>10} {'ratio':>7}")
    for name, rate in rows:
        print(f"{name:34} {rate:10,.0f} {1000 / rate:10.3f} {rate / base:7.2f}")
    print(
        f"\n{args.reports} reports per scenario, {args.devices} devices, one thread, "
        f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL), Python {platform.python_version()}, "
        f"{platform.machine()}"
    )


if __name__ == "__main__":
    main()
