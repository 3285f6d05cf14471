"""The update-check cache under load: a change makes one snapshot read, however many devices ask at once."""

from __future__ import annotations

import anyio
import pytest
from starlette.testclient import TestClient

from conftest import publish
from overair.app import OverairApp
from overair.releases.devices import DeviceCache


@pytest.mark.parametrize("waiting", [1, 32])
def test_concurrent_misses_share_one_snapshot_read(
    server: OverairApp, api: TestClient, monkeypatch: pytest.MonkeyPatch, waiting: int
) -> None:
    key = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()["deployments"][0]["key"]
    assert publish(api, deployment="Production").status_code == 201
    service = server.state.releases.snapshots
    cache = DeviceCache(service, recheck_seconds=60.0)
    reads: list[str] = []
    original = service.device_snapshot

    def counted(deployment_key: str):  # type: ignore[no-untyped-def]
        reads.append(deployment_key)
        return original(deployment_key)

    monkeypatch.setattr(service, "device_snapshot", counted)

    async def storm() -> list[object]:
        results: list[object] = []

        async def ask() -> None:
            results.append(await cache.get(key, "memo", lambda snapshot: snapshot.generation))

        async with anyio.create_task_group() as group:
            for _ in range(waiting):
                group.start_soon(ask)
        return results

    assert len(set(anyio.run(storm))) == 1
    assert len(reads) == 1
    cache.invalidate(key)  # what every release change (and every finished delta build) does
    anyio.run(storm)
    assert len(reads) == 2
