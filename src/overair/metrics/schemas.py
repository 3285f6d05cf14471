"""The metrics API's response bodies."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class HourlyPointOut(BaseModel):
    """One label of a deployment in one UTC hour."""

    hour: dt.datetime = Field(description="Start of the hour, UTC.")
    label: str
    downloads: int
    installs: int
    failures: int
    rollbacks: int
    running: int = Field(description="App starts reported on this label (at most one a day per device).")
    active: int = Field(description="Active devices on this label at the end of the hour.")


class LabelMetricsOut(BaseModel):
    """A release with its all-time counters and active devices now."""

    label: str
    target_version: str
    rollout: int
    disabled: bool
    downloads: int
    installs: int
    failures: int
    rollbacks: int
    active: int
    failure_rate: float = Field(
        description="failures / (installs + failures), 0 before any install attempt. Rollbacks are not "
        "added: a device that rolls an update back also reports it failed."
    )
    last_failure: str | None = Field(default=None, description="The reason the last failure report gave.")
    last_failure_at: dt.datetime | None = None


class DeploymentMetricsOut(BaseModel):
    """A deployment's metrics: the hourly series and the state of each release now."""

    app: str
    deployment: str
    hours: int
    series: list[HourlyPointOut] = Field(description="Oldest hour first; one point per (hour, label).")
    active_devices: dict[str, int] = Field(description="Label → active devices now (labels with any).")
    failure_rates: dict[str, float] = Field(
        description="Label → failures / (installs + failures), 0 before any install attempt."
    )
    labels: list[LabelMetricsOut] = Field(description="Every release, oldest first.")


class RehearsalReleaseOut(BaseModel):
    """A release as simulated devices saw it (never counted in the release's own numbers)."""

    label: str
    rollout: int
    disabled: bool
    downloads: int
    installs: int
    failures: int
    rollbacks: int
    active: int = Field(description="Simulated devices running this release now.")
    failure_rate: float = Field(description="failures / (installs + failures) of the simulated devices.")


class RehearsalOut(BaseModel):
    """A deployment's rehearsal traces: what simulated devices (overair simulate) reported, kept apart."""

    app: str
    deployment: str
    devices: int = Field(description="Simulated devices running a release now.")
    reports: int = Field(description="Reports received from simulated devices, all statuses together.")
    releases: list[RehearsalReleaseOut] = Field(description="Every release, oldest first.")


class RehearsalClearedOut(BaseModel):
    """What removing a deployment's rehearsal traces removed."""

    app: str
    deployment: str
    devices: int = Field(description="Simulated devices forgotten.")
    reports: int = Field(description="Reports of simulated devices removed.")
