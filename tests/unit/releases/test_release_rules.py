"""The release domain's rules, one table each (overair.releases.rules)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conftest import refusal_code
from overair.errors import OverairError
from overair.releases import rules


@dataclass
class R:
    label: str
    package_hash: str
    target_version: str = "1.0.0"
    build_number: int | None = None
    rollout: int = 100
    disabled: bool = False
    disabled_reason: str = ""
    installs: int = 0
    failures: int = 0


FAILING = {"installs": 19, "failures": 31}  # 62% of 50 install attempts: above the default threshold


@pytest.mark.parametrize(
    ("current", "asked", "expected"),
    [
        (20, 20, "ok"),
        (20, 21, "ok"),
        (20, 100, "ok"),
        (1, 100, "ok"),
        (20, 19, "rollout-in-progress"),
        (20, 1, "rollout-in-progress"),
        (100, 100, "ok"),
        (100, 99, "rollout-in-progress"),
        (100, 1, "rollout-in-progress"),
    ],
)
def test_a_rollout_may_only_grow(current: int, asked: int, expected: str) -> None:
    assert refusal_code(lambda: rules.check_rollout_change(R("v1", "a", rollout=current), asked)) == expected


@pytest.mark.parametrize(
    ("current", "asked", "expected"),
    [
        (20, 21, "ok"),
        (20, 100, "ok"),
        (1, 100, "ok"),
        # the reference refuses the same value too: a rollout patch must raise it
        (20, 20, "rollout-in-progress"),
        (20, 19, "rollout-in-progress"),
        (20, 1, "rollout-in-progress"),
        # and a finished rollout takes no rollout value at all, not even 100
        (100, 100, "rollout-in-progress"),
        (100, 99, "rollout-in-progress"),
    ],
)
def test_a_rollout_patch_must_raise_it_in_the_reference_rule(current: int, asked: int, expected: str) -> None:
    assert refusal_code(lambda: rules.check_rollout_raised(R("v1", "a", rollout=current), asked)) == expected


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], "ok"),
        ([R("v1", "a")], "ok"),
        ([R("v1", "a", rollout=20)], "rollout-in-progress"),
        ([R("v1", "a", rollout=20, disabled=True)], "ok"),
        ([R("v1", "a", rollout=20), R("v2", "b")], "ok"),
        ([R("v1", "a"), R("v2", "b", rollout=99)], "rollout-in-progress"),
    ],
)
def test_one_unfinished_rollout_at_a_time(history: list[R], expected: str) -> None:
    assert refusal_code(lambda: rules.check_can_release(history, "Production")) == expected


def test_an_unfinished_rollout_names_every_way_out() -> None:
    with pytest.raises(OverairError) as refused:
        rules.check_can_release([R("v4", "a", rollout=20)], "Production")
    assert [f.action for f in refused.value.fixes] == [
        "finish-rollout",
        "disable-release",
        "end-rollout-on-publish",
    ]
    assert refused.value.fixes[0].args == {"label": "v4", "deployment": "Production"}
    assert "--" not in refused.value.message


@pytest.mark.parametrize(
    ("history", "content", "target", "build", "expected"),
    [
        ([], "a", "1.0.0", None, "ok"),
        ([R("v1", "a")], "a", "1.0.0", None, "identical-release"),
        ([R("v1", "a")], "b", "1.0.0", None, "ok"),
        ([R("v1", "a")], "a", "2.0.0", None, "ok"),
        ([R("v1", "a", target_version="^1.0.0")], "a", "1.2.0", None, "identical-release"),
        ([R("v1", "a", target_version="1.x")], "a", "1.x.x", None, "identical-release"),
        ([R("v1", "a", build_number=7)], "a", "1.0.0", None, "ok"),
        ([R("v1", "a", build_number=7)], "a", "1.0.0", 7, "identical-release"),
        # only the current release for the target counts: older identical content may come back
        ([R("v1", "a"), R("v2", "b")], "a", "1.0.0", None, "ok"),
        # a disabled current release still is the current one (its content is the same)
        ([R("v1", "a", disabled=True)], "a", "1.0.0", None, "identical-release"),
    ],
)
def test_identical_content(
    history: list[R], content: str, target: str, build: int | None, expected: str
) -> None:
    assert refusal_code(lambda: rules.check_not_identical(history, content, target, build)) == expected


@pytest.mark.parametrize(
    ("history", "content", "target", "expected"),
    [
        ([], "a", "1.0.0", "ok"),
        ([R("v1", "a")], "a", "1.0.0", "identical-release"),
        ([R("v1", "a")], "b", "1.0.0", "ok"),
        # an exact version: the newest release whose range admits it, disabled or not
        ([R("v1", "a", disabled=True)], "a", "1.0.0", "identical-release"),
        (
            [R("v1", "a", target_version="^1.0.0"), R("v2", "b", target_version="2.0.0")],
            "a",
            "1.2.0",
            "identical-release",
        ),
        ([R("v1", "a"), R("v2", "b")], "a", "1.0.0", "ok"),
        ([R("v1", "a", target_version="2.0.0")], "a", "1.0.0", "ok"),
        # overair's build numbers are unknown to the reference: they do not count
        ([R("v1", "a", build_number=7)], "a", "1.0.0", "identical-release"),
        # a range: only the latest release counts, and only for the same range
        ([R("v1", "a", target_version="^1.0.0")], "a", "^1.0.0", "identical-release"),
        ([R("v1", "a", target_version="1.x")], "a", "1.x.x", "identical-release"),
        ([R("v1", "a", target_version="^1.0.0", disabled=True)], "a", "^1.0.0", "identical-release"),
        ([R("v1", "a", target_version="^1.0.0"), R("v2", "b", target_version="2.0.0")], "a", "^1.0.0", "ok"),
        ([R("v1", "a", target_version="1.0.0")], "a", "^1.0.0", "ok"),
    ],
)
def test_identical_content_as_the_reference_compares_it(
    history: list[R], content: str, target: str, expected: str
) -> None:
    assert refusal_code(lambda: rules.check_not_identical_to_last(history, content, target, None)) == expected


@pytest.mark.parametrize(
    ("history", "chosen", "expected_label", "expected_warnings"),
    [
        ([R("v1", "a"), R("v2", "b")], None, "v1", 0),
        # the default target skips disabled releases and the current content
        ([R("v1", "a"), R("v2", "b", disabled=True), R("v3", "c")], None, "v1", 0),
        ([R("v1", "a"), R("v2", "b"), R("v3", "b")], None, "v1", 0),
        # an earlier release for the devices of the current one comes first
        ([R("v1", "a"), R("v2", "b", target_version="2.0.0"), R("v3", "c")], None, "v1", 0),
        (
            [R("v1", "a", target_version="^1.0.0"), R("v2", "b", target_version="2.0.0"), R("v3", "c")],
            None,
            "v1",
            0,
        ),
        # none: the newest enabled one (the rollback plan then says why it cannot be used as it is)
        ([R("v1", "a", target_version="2.0.0"), R("v2", "c")], None, "v1", 0),
        # a release chosen by name is taken, and a disabled one comes with a warning
        ([R("v1", "a"), R("v2", "b", disabled=True), R("v3", "c")], "v2", "v2", 1),
        ([R("v1", "a"), R("v2", "b"), R("v3", "c")], "v1", "v1", 0),
        # the default target skips failing releases too, enabled or not
        ([R("v1", "a"), R("v2", "b", **FAILING), R("v3", "c")], None, "v1", 0),
        ([R("v1", "a"), R("v2", "b", installs=96, failures=4), R("v3", "c")], None, "v2", 0),
        # the story: v2 failing at 60% rolled back to v1 (as v3); v2 is never the default again
        ([R("v1", "a"), R("v2", "b", rollout=60, disabled=True, **FAILING), R("v3", "a")], "v2", "v2", 2),
        ([R("v1", "a"), R("v2", "b", **FAILING), R("v3", "c")], "v2", "v2", 1),
    ],
)
def test_rollback_targets(
    history: list[R], chosen: str | None, expected_label: str, expected_warnings: int
) -> None:
    picked = next((r for r in history if r.label == chosen), None)
    goal, warnings = rules.rollback_target(history, "Production", picked)
    assert goal.label == expected_label
    assert len(warnings) == expected_warnings


@pytest.mark.parametrize(
    ("history", "chosen", "expected"),
    [
        ([], None, "release-not-found"),
        ([R("v1", "a")], None, "release-not-found"),
        ([R("v1", "a"), R("v2", "a")], None, "release-not-found"),
        ([R("v1", "a", disabled=True), R("v2", "b")], None, "release-not-found"),
        ([R("v1", "a", **FAILING), R("v2", "b")], None, "release-not-found"),
        (
            [R("v1", "a"), R("v2", "b", rollout=60, disabled=True, **FAILING), R("v3", "a")],
            None,
            "release-not-found",
        ),
        ([R("v1", "a"), R("v2", "b")], "v2", "identical-release"),
        ([R("v1", "a"), R("v2", "b"), R("v3", "a")], "v1", "identical-release"),
    ],
)
def test_rollbacks_that_are_refused(history: list[R], chosen: str | None, expected: str) -> None:
    picked = next((r for r in history if r.label == chosen), None)
    assert refusal_code(lambda: rules.rollback_target(history, "Production", picked)) == expected


def plan_of(plan: rules.RollbackPlan[R]) -> tuple[str, str, int | None, bool]:
    return plan.goal.label, plan.target_version, plan.build_number, plan.disabled


@pytest.mark.parametrize(
    ("history", "chosen", "target", "expected"),
    [
        # the same target: republished for it
        ([R("v1", "a"), R("v2", "b")], None, None, ("v1", "1.0.0", None, False)),
        (
            [R("v1", "a", target_version="1.x"), R("v2", "b", target_version="1.x.x")],
            None,
            None,
            ("v1", "1.x", None, False),
        ),
        # another target that reaches every device of the current release
        (
            [R("v1", "a", target_version="^1.0.0"), R("v2", "b", target_version="1.2.0")],
            None,
            None,
            ("v1", "^1.0.0", None, False),
        ),
        (
            [R("v1", "a", build_number=None), R("v2", "b", build_number=3)],
            None,
            None,
            ("v1", "1.0.0", None, False),
        ),
        # the operator gives the older content to every device of the current release
        (
            [R("v1", "a"), R("v2", "b", target_version="^1.0.0")],
            "v1",
            "^1.0.0",
            ("v1", "^1.0.0", None, False),
        ),
        ([R("v1", "a"), R("v2", "b", target_version="^1.0.0")], "v1", "1.x", ("v1", "1.x", None, False)),
        # a disabled release named by the operator is republished enabled (with a warning)
        ([R("v1", "a", disabled=True), R("v2", "b")], "v1", None, ("v1", "1.0.0", None, False)),
    ],
)
def test_rollback_plans(
    history: list[R], chosen: str | None, target: str | None, expected: tuple[str, str, int | None, bool]
) -> None:
    picked = next((r for r in history if r.label == chosen), None)
    assert plan_of(rules.rollback_plan(history, "Production", picked, target)) == expected


BOTH_WAYS = ["roll-back-for-target", "publish-replacement"]


@pytest.mark.parametrize(
    ("history", "chosen", "target", "fixes"),
    [
        # devices of the current release outside the older one's target would keep it
        ([R("v1", "a"), R("v2", "b", target_version="^1.0.0")], None, None, BOTH_WAYS),
        ([R("v1", "a", target_version="2.0.0"), R("v2", "b")], None, None, BOTH_WAYS),
        ([R("v1", "a", target_version="1.2.x"), R("v2", "b", target_version="1.x")], None, None, BOTH_WAYS),
        # a target the operator gives must reach all of them too
        ([R("v1", "a"), R("v2", "b", target_version="^1.0.0")], "v1", "1.0.0", BOTH_WAYS),
        ([R("v1", "a"), R("v2", "b", target_version="^1.0.0")], "v1", "~1.0.0", BOTH_WAYS),
        # a wider range is not recognised as reaching them (only the same range, however written)
        ([R("v1", "a"), R("v2", "b", target_version="^1.0.0")], "v1", ">=1.0.0", BOTH_WAYS),
        # devices of another build would keep it: content never crosses builds, only a new release can
        ([R("v1", "a", build_number=2), R("v2", "b", build_number=3)], None, None, ["publish-replacement"]),
        ([R("v1", "a", build_number=2), R("v2", "b")], None, None, ["publish-replacement"]),
        ([R("v1", "a", build_number=2), R("v2", "b")], "v1", "1.0.0", ["publish-replacement"]),
    ],
)
def test_rollbacks_that_would_leave_devices_on_the_current_release(
    history: list[R], chosen: str | None, target: str | None, fixes: list[str]
) -> None:
    picked = next((r for r in history if r.label == chosen), None)
    with pytest.raises(OverairError) as refused:
        rules.rollback_plan(history, "Production", picked, target)
    assert refused.value.code == "cross-version-rollback"
    current, goal = history[-1], picked or history[0]
    assert [f.action for f in refused.value.fixes] == fixes
    assert refused.value.fixes[0].args["target_version"] == current.target_version
    if len(fixes) == 2:
        assert refused.value.fixes[0].args == {
            "label": goal.label,
            "target_version": current.target_version,
            "deployment": "Production",
        }
    assert goal.label in refused.value.message and current.label in refused.value.message
    assert "--" not in refused.value.message


@pytest.mark.parametrize(
    ("history", "chosen", "expected"),
    [
        ([R("v1", "a"), R("v2", "b")], None, ("v1", "1.0.0", None, False)),
        # the release before the latest, whatever its state: a disabled one stays disabled, as copied
        ([R("v1", "a"), R("v2", "b", disabled=True), R("v3", "c")], None, ("v2", "1.0.0", None, True)),
        ([R("v1", "a", disabled=True), R("v2", "b")], None, ("v1", "1.0.0", None, True)),
        ([R("v1", "a"), R("v2", "b"), R("v3", "c")], "v1", ("v1", "1.0.0", None, False)),
        (
            [R("v1", "a", target_version="^1.0.0"), R("v2", "b", target_version="^1.0.0")],
            None,
            ("v1", "^1.0.0", None, False),
        ),
    ],
)
def test_reference_rollback_plans(
    history: list[R], chosen: str | None, expected: tuple[str, str, int | None, bool]
) -> None:
    picked = next((r for r in history if r.label == chosen), None)
    assert plan_of(rules.reference_rollback_plan(history, "Production", picked)) == expected


@pytest.mark.parametrize(
    ("history", "chosen", "expected"),
    [
        ([], None, "release-not-found"),
        ([R("v1", "a")], None, "release-not-found"),
        ([R("v1", "a"), R("v2", "b")], "v2", "identical-release"),
        # the app version is compared as written, as the reference does
        ([R("v1", "a"), R("v2", "b", target_version="^1.0.0")], None, "cross-version-rollback"),
        (
            [R("v1", "a", target_version="^1.0.0"), R("v2", "b", target_version="1.0.0")],
            None,
            "cross-version-rollback",
        ),
        (
            [R("v1", "a", target_version="1.x"), R("v2", "b", target_version="1.x.x")],
            None,
            "cross-version-rollback",
        ),
        ([R("v1", "a"), R("v2", "b"), R("v3", "c", target_version="2.0.0")], "v1", "cross-version-rollback"),
        # the previous release with the current content: nothing would change
        ([R("v1", "a"), R("v2", "a")], None, "identical-release"),
    ],
)
def test_reference_rollbacks_that_are_refused(history: list[R], chosen: str | None, expected: str) -> None:
    picked = next((r for r in history if r.label == chosen), None)
    assert refusal_code(lambda: rules.reference_rollback_plan(history, "Production", picked)) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (R("v1", "a"), R("v2", "b"), True),
        (R("v1", "a", target_version="1.0.0"), R("v2", "b", target_version="2.0.0"), False),
        (R("v1", "a", target_version="1.2.0"), R("v2", "b", target_version="^1.0.0"), True),
        (R("v1", "a", target_version="^1.0.0"), R("v2", "b", target_version="1.x"), True),
        (R("v1", "a", target_version="^1.2.0"), R("v2", "b", target_version="1.x"), False),
        (R("v1", "a", build_number=1), R("v2", "b", build_number=2), False),
        (R("v1", "a", build_number=1), R("v2", "b", build_number=1), True),
        (R("v1", "a", build_number=1), R("v2", "b"), True),
    ],
)
def test_compatible_releases(a: R, b: R, expected: bool) -> None:
    assert rules.compatible(a, b) is expected
    assert rules.compatible(b, a) is expected


def test_download_bases_are_the_newest_distinct_compatible_contents() -> None:
    history = [R(f"v{i}", f"c{i % 4}") for i in range(1, 15)]
    history.insert(5, R("other", "x", target_version="2.0.0"))
    target = history[-1]  # content c2
    bases = rules.download_bases(history, target)
    assert bases == ["c1", "c0", "c3"]  # newest first, each once, never the target's own content
    assert rules.download_bases(history, target, limit=2) == ["c1", "c0"]
    assert rules.download_bases(history, history[0]) == []
    assert "x" not in rules.download_bases(history, history[6])


@pytest.mark.parametrize("target", ["1.0.0", " ^1.2.0 ", "1.2.x", ">=1.0.0 <2.0.0", "*"])
def test_valid_targets(target: str) -> None:
    assert rules.check_target(target) == target.strip()


@pytest.mark.parametrize("target", ["banana", "1.0.0.0.0", ">>1", "1.0.0 || banana"])
def test_invalid_targets(target: str) -> None:
    assert refusal_code(lambda: rules.check_target(target)) == "invalid-release"


@pytest.mark.parametrize(
    ("release", "risks"),
    [
        (R("v2", "b"), []),
        (R("v2", "b", installs=96, failures=4), []),
        (R("v2", "b", disabled=True), ["v2 is disabled"]),
        (
            R("v2", "b", disabled=True, disabled_reason="disabled by alice"),
            ["v2 is disabled (disabled by alice)"],
        ),
        (
            R("v2", "b", **FAILING),
            ["v2 is failing: 62.0% of its 50 install attempts failed, above the 5% threshold"],
        ),
        (
            R("v2", "b", disabled=True, **FAILING),
            [
                "v2 is disabled",
                "v2 is failing: 62.0% of its 50 install attempts failed, above the 5% threshold",
            ],
        ),
    ],
)
def test_rollback_risks(release: R, risks: list[str]) -> None:
    assert rules.rollback_risks(release) == risks


@pytest.mark.parametrize(
    ("release", "risky"),
    [
        (R("v2", "b"), False),  # enabled already
        (R("v2", "b", **FAILING), False),  # enabled already: nothing to enable
        (R("v2", "b", disabled=True), False),  # disabled, but not after failures
        (R("v2", "b", disabled=True, **FAILING), True),
    ],
)
def test_enable_risks(release: R, risky: bool) -> None:
    assert bool(rules.enable_risks(release)) is risky


@pytest.mark.parametrize(
    ("release", "confirm", "expected"),
    [
        (R("v2", "b"), None, "ok"),
        (R("v2", "b", disabled=True), None, "confirmation-required"),
        (R("v2", "b", disabled=True), "", "confirmation-required"),
        (R("v2", "b", disabled=True), "v1", "confirmation-required"),
        (R("v2", "b", disabled=True), "V2", "confirmation-required"),
        (R("v2", "b", disabled=True), "v2", "ok"),
        (R("v2", "b", disabled=True), " v2 ", "ok"),
        (R("v2", "b", **FAILING), None, "confirmation-required"),
        (R("v2", "b", **FAILING), "v2", "ok"),
    ],
)
def test_a_risky_release_needs_its_label_typed(release: R, confirm: str | None, expected: str) -> None:
    risks = rules.rollback_risks(release)
    check = lambda: rules.check_confirmed(release, risks, confirm, "Rolling back to v2", "Production")  # noqa: E731
    assert refusal_code(check) == expected


def test_a_refused_confirmation_says_why_and_how() -> None:
    release = R("v2", "b", disabled=True, disabled_reason="disabled by alice", **FAILING)
    with pytest.raises(OverairError) as refused:
        rules.check_confirmed(
            release, rules.rollback_risks(release), None, "Rolling back to v2", "Production"
        )
    message = refused.value.message
    assert "v2 is disabled (disabled by alice)" in message and "62.0%" in message
    assert message.endswith("confirm with the label v2.")
    assert [(f.action, dict(f.args)) for f in refused.value.fixes] == [
        ("confirm-release", {"label": "v2", "deployment": "Production"})
    ]
