"""Table-driven tests of the update decision (overair.selection)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from overair.selection import (
    CurrentMatch,
    DecisionKind,
    DeviceQuery,
    Release,
    RolloutHash,
    choose,
    in_rollout,
    js_rollout_hash,
    plan_update,
    rollout_bucket,
    select_update,
)

U, NO, EMB, STORE = (
    DecisionKind.UPDATE,
    DecisionKind.NO_UPDATE,
    DecisionKind.RUN_EMBEDDED,
    DecisionKind.STORE_UPDATE_REQUIRED,
)


def r(label: str, target: str = "1.0.0", **kw: object) -> Release:
    """A release whose package hash is derived from its label unless given."""
    kw.setdefault("package_hash", f"hash-{label}")
    return Release(label=label, target=target, **kw)  # type: ignore[arg-type]


@dataclass
class Case:
    name: str
    releases: list[Release]
    query: DeviceQuery
    kind: DecisionKind
    label: str | None = None
    mandatory: bool = False
    store_version: str | None = None


def q(version: str = "1.0.0", **kw: object) -> DeviceQuery:
    return DeviceQuery(app_version=version, **kw)  # type: ignore[arg-type]


# The CodePush reference server's own examples (api/test/acquisition.ts), see codepush-protocol.md §2.2.
ANY_BINARY = [
    r("v1", "1.0.0"),
    r("v2", "1.0.0", mandatory=True),
    r("v3", "2.0.0"),
    r("v4", "1.0.0"),
    r("v5", "3.0.0", mandatory=True),
    r("v6", "2.0.0"),
    r("v7", "3.0.0"),
]
RANGES = [r("v1", "*"), r("v2", "^1.0.0", mandatory=True), r("v3", ">=1.1.0 <1.2.0")]

CASES = [
    Case("no releases: embedded bundle", [], q(), EMB),
    Case("exact target, embedded bundle gets the release", [r("v1")], q(), U, "v1"),
    Case("exact target, other version", [r("v1", "1.0.0")], q("1.0.1"), EMB),
    Case("device already runs the release", [r("v1")], q(label="v1", package_hash="hash-v1"), NO),
    Case("device sends only its hash", [r("v1")], q(package_hash="hash-v1"), NO),
    Case("device sends only its label", [r("v1")], q(label="v1"), NO),
    Case("newer release offered", [r("v1"), r("v2")], q(label="v1", package_hash="hash-v1"), U, "v2"),
    Case("caret range", [r("v1", "^1.2.0")], q("1.9.3"), U, "v1"),
    Case("caret range excludes next major", [r("v1", "^1.2.0")], q("2.0.0"), EMB),
    Case("x range", [r("v1", "1.2.x")], q("1.2.7"), U, "v1"),
    Case("hyphenless and-range", [r("v1", ">=1.0.0 <2.0.0")], q("1.5.0"), U, "v1"),
    Case("star", [r("v1", "*")], q("7.1.0"), U, "v1"),
    Case("prerelease binary does not match a plain range", [r("v1", "^1.0.0")], q("1.1.0-beta.1"), EMB),
    Case("range: any binary gets the newest that targets it", RANGES, q("2.0.0"), U, "v1"),
    Case("range: mandatory v2 for 1.0.1", RANGES, q("1.0.1"), U, "v2", mandatory=True),
    Case("range: 1.1.5 gets v3 (mandatory: it skips v2)", RANGES, q("1.1.5"), U, "v3", mandatory=True),
    Case(
        "range: old binary on v1 told a store update exists",
        RANGES,
        q("0.0.1", package_hash="hash-v1"),
        NO,
        store_version=">=1.1.0 <1.2.0",
    ),
    Case("skipped mandatory makes the offer mandatory", ANY_BINARY, q("1.0.0"), U, "v4", mandatory=True),
    Case(
        "on the newest for its binary, newer binaries exist",
        ANY_BINARY,
        q("1.0.0", package_hash="hash-v4"),
        NO,
        store_version="3.0.0",
    ),
    Case("2.0.0 on v3 gets v6, optional", ANY_BINARY, q("2.0.0", package_hash="hash-v3"), U, "v6"),
    Case("3.0.0 on v5 gets v7, optional", ANY_BINARY, q("3.0.0", package_hash="hash-v5"), U, "v7"),
    Case("3.0.0 on v7: nothing", ANY_BINARY, q("3.0.0", package_hash="hash-v7"), NO),
    Case(
        "mandatory older than the device's release does not count",
        [r("v1", mandatory=True), r("v2"), r("v3")],
        q(label="v2", package_hash="hash-v2"),
        U,
        "v3",
    ),
    Case(
        "mandatory skipped between device and offer",
        [r("v1"), r("v2", mandatory=True), r("v3")],
        q(label="v1", package_hash="hash-v1"),
        U,
        "v3",
        mandatory=True,
    ),
    Case("disabled releases are invisible", [r("v1"), r("v2", disabled=True)], q(label="v1"), NO),
    Case(
        "a disabled mandatory release does not convert",
        [r("v1"), r("v2", mandatory=True, disabled=True), r("v3")],
        q(label="v1", package_hash="hash-v1"),
        U,
        "v3",
    ),
    Case("every release disabled: embedded", [r("v1", disabled=True)], q(), EMB),
    Case("build number matches", [r("v1", build_number=1)], q(build_number=1), U, "v1"),
    Case("build-2 binary never gets a build-1 release", [r("v1", build_number=1)], q(build_number=2), EMB),
    Case("binary without build number skips build-bound releases", [r("v1", build_number=1)], q(), EMB),
    Case(
        "build-1 binary told a store update exists for build 2",
        [r("v1", build_number=1), r("v2", build_number=2)],
        q(build_number=1, package_hash="hash-v1"),
        NO,
        store_version="1.0.0",
    ),
    Case("release without build number reaches every build", [r("v1")], q(build_number=9), U, "v1"),
    Case(
        "binary newer than every release runs its embedded bundle",
        [r("v1", "1.0.0"), r("v2", "^1.1.0")],
        q("2.0.0"),
        EMB,
    ),
    Case(
        "binary older than the latest target must update from the store",
        [r("v1", "2.0.0")],
        q("1.0.0"),
        STORE,
        store_version="2.0.0",
    ),
    Case(
        "after a rollback, devices on the bad label get the old content",
        [r("v1"), r("v2"), r("v3", package_hash="hash-v1")],
        q(label="v2", package_hash="hash-v2"),
        U,
        "v3",
    ),
    Case(
        "after a rollback, devices that kept the old content download nothing",
        [r("v1"), r("v2"), r("v3", package_hash="hash-v1")],
        q(label="v1", package_hash="hash-v1"),
        NO,
    ),
    Case(
        "a label that failed on the device is never offered again",
        [r("v1"), r("v2")],
        q(label="v1", package_hash="hash-v1", excluded_labels=frozenset({"v2"})),
        NO,
    ),
    Case(
        "after a failed label, the next release is offered",
        [r("v1"), r("v2"), r("v3")],
        q(label="v1", package_hash="hash-v1", excluded_labels=frozenset({"v2"})),
        U,
        "v3",
    ),
    Case("store-only apps never get a bundle", [r("v1")], q(store_only=True), EMB),
    Case(
        "store-only apps point old binaries to the store",
        [r("v1", "2.0.0")],
        q("1.0.0", store_only=True),
        STORE,
        store_version="2.0.0",
    ),
    Case("companion apps ignore targets", [r("v1", "9.0.0")], q(any_binary=True), U, "v1"),
    Case(
        "CodePush matching: label given, hash ignored for the scan",
        [r("v1"), r("v2", mandatory=True), r("v3")],
        q(label="v9", package_hash="hash-v2", current_match=CurrentMatch.LABEL_ELSE_HASH),
        U,
        "v3",
        mandatory=True,
    ),
    Case(
        "CodePush matching: no label, hash used",
        [r("v1"), r("v2", mandatory=True), r("v3")],
        q(package_hash="hash-v2", current_match=CurrentMatch.LABEL_ELSE_HASH),
        U,
        "v3",
    ),
    Case(
        "outside an unfinished rollout (client bucket 99 > 50): previous full release",
        [r("v1"), r("v2", rollout=50)],
        q(client_id="__bucket__"),
        U,
        "v1",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(case: Case) -> None:
    query = case.query
    if query.client_id == "__bucket__":
        query = DeviceQuery(**{**_fields(query), "client_id": _client_in_bucket(99, "v2")})
    decision = select_update(case.releases, query)
    assert decision.kind is case.kind
    assert (decision.release.label if decision.release else None) == case.label
    assert decision.mandatory is case.mandatory
    assert (decision.latest_target if decision.store_version_newer else None) == case.store_version


def _fields(query: DeviceQuery) -> dict[str, object]:
    return {name: getattr(query, name) for name in DeviceQuery.__slots__}  # type: ignore[attr-defined]


def _client_in_bucket(bucket: int, tag: str) -> str:
    for i in range(100_000):
        if rollout_bucket(f"device-{i}", tag) == bucket:
            return f"device-{i}"
    raise AssertionError("no client id found")


def test_rollout_plan_splits_devices() -> None:
    releases = [r("v1"), r("v2", rollout=25)]
    plan = plan_update(releases, q())
    assert plan.rollout_decision is not None and plan.rollout_decision.release is not None
    assert plan.rollout_decision.release.label == "v2"
    assert plan.decision.release is not None and plan.decision.release.label == "v1"
    assert (plan.rollout_percentage, plan.rollout_tag) == (25, "v2")
    inside = _client_in_bucket(3, "v2")
    outside = _client_in_bucket(80, "v2")
    assert choose(plan, q(client_id=inside)).release.label == "v2"  # type: ignore[union-attr]
    assert choose(plan, q(client_id=outside)).release.label == "v1"  # type: ignore[union-attr]


def test_rollout_outside_with_nothing_else_runs_embedded() -> None:
    releases = [r("v1", rollout=10)]
    outside = _client_in_bucket(50, "v1")
    assert select_update(releases, q(client_id=outside)).kind is EMB


def test_rollout_is_deterministic_and_monotonic() -> None:
    clients = [f"client-{i}" for i in range(2000)]
    previous: set[str] = set()
    for percentage in (1, 5, 25, 50, 75, 99, 100):
        releases = [r("v1"), r("v2", rollout=percentage)]
        chosen = {
            c
            for c in clients
            if (d := select_update(releases, q(client_id=c))).release and d.release.label == "v2"
        }
        again = {
            c
            for c in clients
            if (d := select_update(releases, q(client_id=c))).release and d.release.label == "v2"
        }
        assert chosen == again, "the same device must get the same answer every time"
        assert previous <= chosen, f"raising the rollout to {percentage}% took the release away from devices"
        assert abs(len(chosen) / len(clients) - percentage / 100) < 0.05
        previous = chosen


def test_device_inside_rollout_keeps_release() -> None:
    releases = [r("v1"), r("v2", rollout=30)]
    assert select_update(releases, q(label="v2", package_hash="hash-v2", client_id="anyone")).kind is NO


@pytest.mark.parametrize(
    ("text", "expected"),
    [("undefined-v3", 1102976026), ("abc-v3", -1424438328), ("-v3", 46954), ("device-1-v3", 2703853232)],
)
def test_js_rollout_hash_reference_values(text: str, expected: int) -> None:
    assert js_rollout_hash(text) == expected


def test_codepush_bucketing_uses_js_hash() -> None:
    assert rollout_bucket("device-1", "v3", RolloutHash.CODEPUSH) == 32
    assert in_rollout("device-1", 33, "v3", RolloutHash.CODEPUSH)
    assert not in_rollout("device-1", 32, "v3", RolloutHash.CODEPUSH)


def _literal_js_hash(text: str) -> int:
    """The spec's literal port (codepush-protocol.md §2.5), as the oracle for the optimised one."""

    def to_int32(x: int) -> int:
        x &= 0xFFFFFFFF
        return x - 0x100000000 if x & 0x80000000 else x

    h, b = 0, text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(b), 2):
        h = to_int32(to_int32(h) << 5) - h + (b[i] | (b[i + 1] << 8))
    return h


def test_js_rollout_hash_matches_the_literal_port() -> None:
    import random

    rng = random.Random(7)
    alphabet = "abcXYZ019-_ äé€😀\ud800\u2028" + "".join(chr(c) for c in range(0x20, 0x7F))
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert js_rollout_hash(text) == _literal_js_hash(text), text


def test_no_client_id_means_outside_the_rollout() -> None:
    from overair.selection import takes_rollout

    plan = plan_update([r("v1"), r("v2", rollout=99)], q())
    assert not takes_rollout(plan, "")
    assert choose(plan, q()).release.label == "v1"  # type: ignore[union-attr]
    assert takes_rollout(plan, "undefined", RolloutHash.CODEPUSH)  # CodePush's absent id is a real string
