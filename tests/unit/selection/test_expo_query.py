"""The Expo parameters of the one selection (table-driven): exact runtime versions, platforms, releases
named by update id, never an older createdAt, and buckets over the lower-cased EAS-Client-ID."""

from __future__ import annotations

import pytest

from overair.selection import (
    CurrentMatch,
    DecisionKind,
    DeviceQuery,
    Release,
    RolloutHash,
    in_rollout,
    rollout_bucket,
    select_update,
)


def expo(label: str, platform: str = "ios", runtime: str = "1.0.0", **fields: object) -> Release:
    fields.setdefault("package_hash", f"h-{label}")
    return Release(
        label=label,
        target="*",
        platform=platform,
        runtime_version=runtime,
        update_id=f"id-{label}",
        **fields,  # type: ignore[arg-type]
    )


def query(current: str = "", runtime: str = "1.0.0", platform: str = "ios", **fields: object) -> DeviceQuery:
    return DeviceQuery(
        app_version="0.0.0",
        label=current,
        platform=platform,
        runtime_version=runtime,
        current_match=CurrentMatch.UPDATE_ID,
        rollout_hash=RolloutHash.EXPO,
        newer_only=True,
        **fields,  # type: ignore[arg-type]
    )


HISTORY = [
    expo("v1"),
    expo("v2", platform="android"),
    expo("v3", runtime="2.0.0"),
    Release(label="v4", package_hash="h-v4", target="*"),  # a CodePush release: never for Expo builds
    expo("v5", disabled=True),
]


@pytest.mark.parametrize(
    ("asked", "kind", "label"),
    [
        (query(), DecisionKind.UPDATE, "v1"),
        (query(platform="android"), DecisionKind.UPDATE, "v2"),
        (query(runtime="2.0.0"), DecisionKind.UPDATE, "v3"),
        (query(runtime="1.0"), DecisionKind.RUN_EMBEDDED, None),  # exact strings, no semver
        (query(current="id-v1"), DecisionKind.NO_UPDATE, None),
        (query(current="id-v5"), DecisionKind.NO_UPDATE, None),  # runs a newer (disabled) one: keep it
        (query(excluded_labels=frozenset({"id-v1"})), DecisionKind.RUN_EMBEDDED, None),  # failed there
        (DeviceQuery(app_version="1.0.0"), DecisionKind.UPDATE, "v4"),  # native devices never get Expo ones
    ],
)
def test_expo_parameters_of_the_query(asked: DeviceQuery, kind: DecisionKind, label: str | None) -> None:
    decision = select_update(HISTORY, asked)
    assert decision.kind is kind
    assert (decision.release.label if decision.release else None) == label


def test_same_content_under_a_new_id_is_a_new_update() -> None:
    republished = Release(
        label="v6",
        package_hash="h-v1",
        target="*",
        platform="ios",
        runtime_version="1.0.0",
        update_id="id-v6",
    )
    decision = select_update([*HISTORY, republished], query(current="id-v1"))
    assert decision.kind is DecisionKind.UPDATE and decision.release == republished


@pytest.mark.parametrize("tag", ["v1", "v7", "v12"])
def test_expo_buckets_ignore_the_case_of_the_client_id_and_only_grow(tag: str) -> None:
    clients = [f"6b1f0a9e-2c53-4c8e-9b8a-{n:012x}" for n in range(300)]
    for client in clients:
        assert rollout_bucket(client, tag, RolloutHash.EXPO) == rollout_bucket(
            client.upper(), tag, RolloutHash.EXPO
        )
    shares = [{c for c in clients if in_rollout(c, p, tag, RolloutHash.EXPO)} for p in (10, 40, 70, 100)]
    assert shares[0] <= shares[1] <= shares[2] <= shares[3] == set(clients)
    assert 60 <= len(shares[1]) <= 180
