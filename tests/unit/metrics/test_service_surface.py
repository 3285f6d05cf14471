"""The metrics service's public surface is what its callers use, and nothing more."""

from __future__ import annotations

import inspect

from overair.metrics.service import MetricsService

CALLERS = {
    # device protocols (native and CodePush reports)
    "record_report": "protocols.native, protocols.codepush",
    "accept_report": "protocols.native, protocols.codepush (on the event loop, when no read is needed)",
    "record_binary": "protocols.codepush, protocols.expo",
    "record_touch": "protocols.codepush (an update check named the label a device runs)",
    # the management API, the console, the CodePush management metrics, the CLI through the API
    "deployment_metrics": "metrics.api (reads the deployment's numbers for a principal who may read it)",
    "series": "console (metrics.api through deployment_metrics)",
    "active_devices": "console, protocols.codepush_management (metrics.api through deployment_metrics)",
    "labels": "metrics.api through deployment_metrics",
    "failure_rates": "tests: the rates alone, without the rest of labels()",
    "last_failures": "console",
    "health": "the failure rate's inputs, for the guarded rollouts of the next issue; tests",
    # Prometheus
    "totals": "metrics.prometheus",
    "latest_releases": "metrics.prometheus",
    # rehearsals: what simulated devices reported, and their removal (overair simulate, simulate-cleanup)
    "rehearsal": "metrics.api",
    "clear_rehearsal": "metrics.api",
    # retention: the hourly job the app registers on the job queue (metrics.prune), and tests
    "prune": "app (a periodic job), tests",
    # the app's life cycle
    "close": "app",
    "flush": "app (before a management request reads), tests, benchmarks/reports.py",
}


def test_every_public_method_has_a_caller() -> None:
    """One way in per kind of report: ``record`` (by deployment id) had no caller and is gone."""
    public = {
        name
        for name, member in inspect.getmembers(MetricsService)
        if callable(member) and not name.startswith("_")
    }
    assert public == set(CALLERS)
