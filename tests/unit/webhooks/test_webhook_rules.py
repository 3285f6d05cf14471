"""The pure webhook rules: the retry schedule, signatures, event names and the Slack sentence."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest

from conftest import refusal_code
from overair.webhooks import rules

T0 = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
DAY = T0 + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("now", "attempts", "expected"),
    [
        (T0, 1, T0 + dt.timedelta(seconds=30)),
        (T0, 2, T0 + dt.timedelta(seconds=60)),
        (T0, 5, T0 + dt.timedelta(seconds=480)),
        (T0, 10, T0 + dt.timedelta(hours=4)),  # 30 s * 2^9 is over the cap
        (T0, 60, T0 + dt.timedelta(hours=4)),  # no overflow however many tries
        (DAY - dt.timedelta(minutes=1), 12, DAY),  # the last try is at the day's end
        (DAY, 13, None),
        (DAY + dt.timedelta(seconds=1), 13, None),
    ],
)
def test_the_retry_schedule(now: dt.datetime, attempts: int, expected: dt.datetime | None) -> None:
    assert rules.next_attempt(now, attempts, DAY) == expected


def test_a_try_count_starts_at_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        rules.next_attempt(T0, 0, DAY)


def test_the_signature_is_hmac_sha256_over_the_timestamp_and_body() -> None:
    body = b'{"event":"release.published"}'
    expected = hmac.new(b"whsec_k", b"1765000000." + body, hashlib.sha256).hexdigest()
    assert rules.signature("whsec_k", 1765000000, body) == f"v1={expected}"
    assert rules.signature("whsec_k", 1765000001, body) != f"v1={expected}"


def test_secrets_are_long_and_random() -> None:
    first, second = rules.new_secret(), rules.new_secret()
    assert first.startswith("whsec_") and len(first) > 40 and first != second


@pytest.mark.parametrize(
    ("names", "verdict"),
    [
        (["rollout.completed", "release.published", "rollout.completed"], "ok"),
        (["release.deleted"], "unknown-event"),
        ([], "unknown-event"),
        (["Release.Published"], "unknown-event"),
    ],
)
def test_event_names(names: list[str], verdict: str) -> None:
    assert refusal_code(lambda: rules.check_events(names)) == verdict


def test_events_are_kept_in_one_order_without_repeats() -> None:
    assert rules.check_events(["rollout.completed", "release.published", "rollout.completed"]) == [
        "release.published",
        "rollout.completed",
    ]


@pytest.mark.parametrize(
    ("url", "verdict"),
    [
        ("https://hooks.example.com/x?y=1", "ok"),
        ("http://127.0.0.1:8080/hook", "ok"),
        ("  https://padded.example.com  ", "ok"),
        ("file:///etc/passwd", "invalid-webhook"),
        ("javascript:alert(1)", "invalid-webhook"),
        ("https://", "invalid-webhook"),
        ("http://[::1", "invalid-webhook"),
        ("https://a:b@example.com", "invalid-webhook"),
        ("https://example.com/a b", "invalid-webhook"),
        ("https://example.com/\x7f", "invalid-webhook"),
        ("https://example.com/\u00e9t\u00e9", "ok"),  # httpx percent-encodes it
    ],
)
def test_urls(url: str, verdict: str) -> None:
    assert refusal_code(lambda: rules.check_url(url)) == verdict


EXAMPLE = {"deployment": "Production", "release": {"label": "v3", "rollout": 25, "released_by": "alice"}}


@pytest.mark.parametrize(
    ("event", "data", "text"),
    [
        ("release.published", EXAMPLE, "CoolApp/Production: v3 was published at 25% (by alice)."),
        ("release.published", {}, "CoolApp: a release was published."),
        ("rollout.step", {"release": "v3", "percentage": 50}, "CoolApp: the rollout of v3 moved to 50%."),
        ("rollout.step", {"release": "v3"}, "CoolApp: the rollout of v3 moved to its next step."),
        (
            "rollout.halted",
            {"deployment": "Production", "release": "v3", "percentage": 5, "reason": "failure rate 4%"},
            "CoolApp/Production: the rollout of v3 was halted at 5%: failure rate 4%.",
        ),
        (
            "rollout.rolled_back",
            {"release": "v3", "reason": "worse than v2", "actor": "overair"},
            "CoolApp: v3 was rolled back: worse than v2 (by overair).",
        ),
        (
            "rollout.promoted",
            {"deployment": "Staging", "release": "v3", "to_deployment": "Production"},
            "CoolApp/Staging: v3 was promoted to Production.",
        ),
        (
            "rollout.completed",
            {"release": "v3"},
            "CoolApp: the rollout of v3 completed; it reaches every device.",
        ),
        ("webhook.test", {"actor": "bob"}, "CoolApp: a test delivery from overair (by bob)."),
    ],
)
def test_the_slack_sentence(event: str, data: dict, text: str) -> None:
    document = rules.envelope(1, event, "CoolApp", T0, data)
    assert json.loads(rules.body("slack", document)) == {"text": text}


def test_the_json_body_is_the_document() -> None:
    document = rules.envelope(7, "rollout.step", "CoolApp", T0, {"percentage": 5})
    assert json.loads(rules.body("json", document)) == {
        "id": 7,
        "event": "rollout.step",
        "app": "CoolApp",
        "occurred_at": "2026-12-06T00:00:00Z",
        "data": {"percentage": 5},
    }
