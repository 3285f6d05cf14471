"""The deployment read model (overair.releases.read_model) over the real release services on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import bundle
from overair.app import OverairApp
from overair.auth.principal import SYSTEM
from overair.releases.errors import AppNotFound, DeploymentNotFound
from overair.releases.read_model import DeploymentReads
from overair.releases.schemas import AppCreate, PublishOptions


class Active:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def active_devices(self, app: str, deployment: str) -> dict[str, int]:
        self.asked.append((app, deployment))
        return {"v2": 3}


@pytest.fixture
def reads(server: OverairApp, tmp_path: Path) -> DeploymentReads:
    releases = server.state.releases
    releases.apps.create_app(SYSTEM, AppCreate(name="Shop"))
    for text in ("one", "two"):
        archive = tmp_path / f"{text}.zip"
        archive.write_bytes(bundle(text))
        releases.releases.publish(SYSTEM, "Shop", "Staging", archive, PublishOptions(target_version="1.0.0"))
    releases.drain()
    return DeploymentReads(releases, Active())


def test_a_deployment_with_its_releases_and_where_they_are_stored(reads: DeploymentReads) -> None:
    detail = reads.detail(SYSTEM, "Shop", "staging")  # names are matched in any case
    assert detail.deployment.name == "Staging"
    assert [r.label for r in detail.history] == ["v1", "v2"]
    assert detail.latest is not None and detail.latest.label == "v2"
    stored = detail.stored_of(detail.latest)
    assert stored is not None and stored.blob_key and stored.package_hash == detail.latest.package_hash
    assert [d for d, _, _ in stored.diffs] == [detail.history[0].package_hash]  # the diff from v1


def test_every_deployment_by_name(reads: DeploymentReads) -> None:
    details = reads.details(SYSTEM, "Shop")
    assert [d.deployment.name for d in details] == ["Production", "Staging"]
    assert details[0].latest is None and details[0].history == []
    assert sorted(reads.deployment_names(SYSTEM, "Shop")) == ["Production", "Staging"]
    assert reads.labels(SYSTEM, "Shop", "Staging") == ["v1", "v2"]


def test_activity_joins_the_release_counters_and_the_active_devices(
    reads: DeploymentReads, server: OverairApp
) -> None:
    activity = reads.activity(SYSTEM, "Shop", "Staging")
    assert [r.label for r in activity.history] == ["v1", "v2"]
    assert activity.active == {"v2": 3}
    without_metrics = DeploymentReads(server.state.releases)
    assert without_metrics.activity(SYSTEM, "Shop", "Staging").active == {}


def test_unknown_names_raise_domain_errors(reads: DeploymentReads) -> None:
    with pytest.raises(AppNotFound):
        reads.detail(SYSTEM, "Nope", "Staging")
    with pytest.raises(DeploymentNotFound):
        reads.detail(SYSTEM, "Shop", "Beta")
    with pytest.raises(DeploymentNotFound):
        reads.activity(SYSTEM, "Shop", "Beta")
