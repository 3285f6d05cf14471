"""Prometheus exposition: a collector that reads the metrics store at scrape time.

Everything is computed from the database when ``/metrics`` is scraped, so every granian worker answers the
same numbers (in-process counters would each see only their own worker's share). Label cardinality is
bounded by configuration, never by devices: series are per app and deployment (and report status), plus
per label for only the newest :data:`~overair.metrics.service.LATEST_LABELS` releases of each deployment.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from overair.metrics.service import LATEST_LABELS, MetricsService


class StoreCollector(Collector):
    """Counters and gauges of every app and deployment, read from the metrics store."""

    def __init__(self, metrics: MetricsService) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """One grouped query for the totals and one for the newest releases."""
        reports = CounterMetricFamily(
            "overair_reports",
            "Device status reports received, by deployment and status (never reset by release removal).",
            labels=["app", "deployment", "status"],
        )
        active = GaugeMetricFamily(
            "overair_active_devices",
            "Devices of a deployment that run a released label (see docs/operations.md for 'active').",
            labels=["app", "deployment"],
        )
        for row in self._metrics.totals():
            active.add_metric([row.app, row.deployment], row.active)
            for status, count in row.reports.items():
                reports.add_metric([row.app, row.deployment, status], count)
        label_active = GaugeMetricFamily(
            "overair_release_active_devices",
            f"Active devices on each of the {LATEST_LABELS} newest releases of a deployment.",
            labels=["app", "deployment", "label"],
        )
        label_rollout = GaugeMetricFamily(
            "overair_release_rollout_ratio",
            f"Share of devices (0-1) each of the {LATEST_LABELS} newest releases of a deployment targets.",
            labels=["app", "deployment", "label"],
        )
        label_failures = GaugeMetricFamily(
            "overair_release_failure_ratio",
            f"failed / (installed + failed) reports of the {LATEST_LABELS} newest releases of a deployment.",
            labels=["app", "deployment", "label"],
        )
        for release in self._metrics.latest_releases():
            names = [release.app, release.deployment, release.label]
            label_active.add_metric(names, release.active)
            label_rollout.add_metric(names, release.rollout / 100)
            label_failures.add_metric(names, release.failure_rate)
        # this process's own report buffer (each worker has one; Prometheus sums them by instance)
        dropped = CounterMetricFamily(
            "overair_reports_dropped",
            "Device reports this process accepted and dropped unwritten: the database was unreachable and "
            "more than the buffer's cap waited (see docs/operations.md).",
            value=self._metrics.dropped_reports,
        )
        waiting = GaugeMetricFamily(
            "overair_reports_pending",
            "Device reports this process accepted and has not written yet.",
            value=self._metrics.pending_reports,
        )
        yield from (reports, active, label_active, label_rollout, label_failures, dropped, waiting)


def make_registry(metrics: MetricsService) -> CollectorRegistry:
    """A registry of this app's own (no global state): the store collector plus the process collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(metrics))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
