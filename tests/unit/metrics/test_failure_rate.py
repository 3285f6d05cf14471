"""The one failure-rate definition (overair.metrics.rules), table-driven.

Each case is what devices reported about one release, written as the reports they send (see the rules
module's docstring for which clients send what), and the rate everyone must show for it.
"""

from __future__ import annotations

import ast
import doctest
import inspect
from collections import Counter

import pytest

from overair.metrics import rules
from overair.metrics.rules import ReleaseHealth, failure_rate

CASES = [
    # (what happened, reports received, failures, attempts, rate)
    ("nothing reported yet", [], 0, 0, 0.0),
    ("downloads alone are not attempts", ["downloaded"] * 5, 0, 0, 0.0),
    ("app starts are not attempts", ["installed", "running", "running"], 0, 1, 0.0),
    ("one good install", ["downloaded", "installed"], 0, 1, 0.0),
    (
        "engine: an update never confirmed is one failure",
        ["installed"] * 3 + ["failed", "rolled_back"],
        1,
        4,
        0.25,
    ),
    ("engine: a refused download is one failure", ["downloaded", "failed"], 1, 1, 1.0),
    ("CodePush: DeploymentFailed is one failure", ["installed", "failed"], 1, 2, 0.5),
    ("a rollback report alone adds no failure", ["installed", "rolled_back"], 0, 1, 0.0),
    ("nine good, one bad", ["installed"] * 9 + ["failed"], 1, 10, 0.1),
    ("every attempt failed", ["failed", "rolled_back"] * 100, 100, 100, 1.0),
]


@pytest.mark.parametrize(
    ("reports", "failures", "attempts", "rate"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_failure_rate(reports: list[str], failures: int, attempts: int, rate: float) -> None:
    counts = Counter(reports)
    health = ReleaseHealth(installs=counts["installed"], failures=counts["failed"])
    assert (health.failures, health.attempts) == (failures, attempts)
    assert health.failure_rate == pytest.approx(rate)
    assert health.measured is (attempts > 0)
    assert failure_rate(installs=counts["installed"], failures=counts["failed"]) == health.failure_rate


@pytest.mark.parametrize(("installs", "failures"), [(-1, 0), (0, -1)])
def test_negative_counts_are_refused(installs: int, failures: int) -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        failure_rate(installs=installs, failures=failures)


def test_counts_are_named_so_they_cannot_be_swapped() -> None:
    with pytest.raises(TypeError):
        failure_rate(9, 1)  # type: ignore[misc]


def test_the_rules_are_pure() -> None:
    tree = ast.parse(inspect.getsource(rules))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "dataclasses"}


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(rules).failed == 0
