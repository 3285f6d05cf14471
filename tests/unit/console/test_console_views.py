"""The console's pure rules: what each confirmation tells about devices, file changes, rates, charts,
and the request checks (origin, CSRF token, where to go after signing in)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from overair.console import views
from overair.console.security import (
    CrossSiteRequest,
    ForgedForm,
    check_csrf,
    check_same_origin,
    own_origins,
    safe_next,
)
from overair.packages import ManifestEntry
from overair.packages.manifest import EMPTY_SHA256
from overair.releases.schemas import Distribution, ReleaseOut, RolloutPointOut

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
H = "a" * 64


def release(label: str = "v3", **fields: object) -> ReleaseOut:
    base: dict[str, object] = {
        "label": label,
        "deployment": "Production",
        "package_hash": label * 16,
        "size": 1000,
        "file_count": 2,
        "target_version": "1.0.0",
        "build_number": None,
        "rollout": 100,
        "mandatory": False,
        "disabled": False,
        "sync_before_update": False,
        "description": "",
        "released_by": "alice",
        "released_at": NOW,
        "method": "upload",
        "origin_label": None,
        "origin_deployment": None,
        "downloads": 0,
        "installs": 0,
        "failures": 0,
        "rollbacks": 0,
    }
    base.update(fields)
    return ReleaseOut.model_validate(base)


def test_rollout_confirmation_names_the_devices_that_start_getting_the_release() -> None:
    c = views.confirm_rollout(release(rollout=20), 50)
    assert c.consequences[0] == (
        "Devices on 1.0.0 outside the first 20% but within the first 50% will start getting v3 at their "
        "next update check."
    )
    assert c.fields == {"rollout": "50"}
    assert c.button == "Roll out to 50%"


@pytest.mark.parametrize(
    ("fields", "rollout", "expected"),
    [
        ({"rollout": 20}, 100, "Devices on 1.0.0 outside the first 20% will start getting v3"),
        ({"rollout": 20, "build_number": 7}, 30, "Devices on 1.0.0 (build 7) outside the first 20%"),
        ({"rollout": 20, "disabled": True}, 30, "v3 is disabled: no device gets it until you enable it"),
        ({"rollout": 5, "target_version": "^1.2.0"}, 10, "Devices on ^1.2.0 outside the first 5%"),
    ],
)
def test_rollout_confirmation_cases(fields: dict[str, object], rollout: int, expected: str) -> None:
    text = " ".join(views.confirm_rollout(release(**fields), rollout).consequences)
    assert expected in text


@pytest.mark.parametrize(
    ("action", "expected", "danger"),
    [
        (lambda r, h: views.confirm_mandatory(r, True), "must install it", False),
        (lambda r, h: views.confirm_mandatory(r, False), "no longer a required update", False),
        (lambda r, h: views.confirm_disabled(r, True, h), "No device is offered v3 any more", True),
        (lambda r, h: views.confirm_disabled(r, False, h), "start getting v3 again", False),
        (lambda r, h: views.confirm_rollback(h[0], h), "A new release v4 with the content of v1", True),
        (lambda r, h: views.confirm_promote(r, "Staging", []), "Staging gets a new release v1", False),
    ],
)
def test_every_confirmation_says_what_devices_will_see(action, expected: str, danger: bool) -> None:
    history = [release("v1"), release("v2"), release("v3")]
    c = action(history[-1], history)
    assert expected in " ".join(c.consequences)
    assert c.danger is danger


def test_rollback_of_a_partial_rollout_says_it_is_disabled() -> None:
    history = [release("v1"), release("v2", rollout=20)]
    text = " ".join(views.confirm_rollback(history[0], history).consequences)
    assert "v2 (rolling out to 20%) is disabled" in text
    assert "Devices running v2 go back to the content of v1" in text


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(Distribution.STORE_ONLY, "stop getting over-the-air updates"), (Distribution.HYBRID, "start getting")],
)
def test_distribution_confirmation(mode: Distribution, expected: str) -> None:
    c = views.confirm_distribution("CoolApp", mode)
    assert expected in c.consequences[0]
    assert c.fields == {"mode": mode.value}


def test_next_label_follows_the_highest() -> None:
    assert views.next_label([]) == "v1"
    assert views.next_label([release("v1"), release("v9"), release("v3")]) == "v10"


def test_file_changes_between_manifests() -> None:
    old = [
        ManifestEntry("index.js", H, 10),
        ManifestEntry("gone.css", H, 5),
        ManifestEntry("same.png", H, 7),
        ManifestEntry("assets/", EMPTY_SHA256, 0),
    ]
    new = [
        ManifestEntry("index.js", "b" * 64, 12),
        ManifestEntry("same.png", H, 7),
        ManifestEntry("new.js", H, 3),
        ManifestEntry("more/", EMPTY_SHA256, 0),
    ]
    assert views.compare_manifests(old, new) == [
        views.FileChange("gone.css", "removed", 5, None),
        views.FileChange("index.js", "changed", 10, 12),
        views.FileChange("new.js", "added", None, 3),
    ]
    assert views.compare_manifests([], new[:1]) == [views.FileChange("index.js", "added", None, 12)]


@pytest.mark.parametrize(
    ("counts", "rate"),
    [
        ({}, None),
        ({"installs": 9, "failures": 1}, 0.1),
        # a rollback report is the second report of a failure already counted (overair.metrics.rules)
        ({"installs": 2, "failures": 1, "rollbacks": 1}, 1 / 3),
        ({"downloads": 5}, None),
    ],
)
def test_failure_rate_from_counters(counts: dict[str, int], rate: float | None) -> None:
    assert views.failure_rate(release(**counts)) == rate


def test_signature_status() -> None:
    assert views.signature_status(release()) == views.SignatureStatus(False, "unsigned")
    signed = release(signature="c2ln", signing_key_id="k1", sequence=4)
    assert views.signature_status(signed) == views.SignatureStatus(
        True, "signed with publisher key k1 (sequence 4)"
    )


@pytest.mark.parametrize(
    ("size", "text"), [(None, "—"), (0, "0 B"), (999, "999 B"), (1234, "1.2 KB"), (5_600_000, "5.6 MB")]
)
def test_human_size(size: int | None, text: str) -> None:
    assert views.human_size(size) == text


@dataclass(frozen=True)
class Point:
    hour: dt.datetime
    label: str
    downloads: int = 0
    installs: int = 0
    failures: int = 0
    rollbacks: int = 0
    active: int = 0


def plain(chart: dict[str, Any]) -> list[dict[str, Any]]:
    """A chart's series without their colours (tested on their own)."""
    return [{"name": s["name"], "values": s["values"]} for s in chart["series"]]


def test_hourly_charts_sum_labels_per_hour_and_keep_active_per_label() -> None:
    h1, h2 = NOW, NOW + dt.timedelta(hours=2)
    points = [
        Point(h2, "v2", downloads=4, installs=3, active=3),
        Point(h1, "v1", downloads=1, installs=1, failures=1, active=5),
        Point(h2, "v1", rollbacks=2, active=4),
        Point(h1, "v10", active=1),
    ]
    charts = views.hourly_charts(points)
    assert charts["active"]["x"] == ["11-22 12:00", "11-22 13:00", "11-22 14:00"]  # the quiet hour too
    assert plain(charts["active"]) == [
        {"name": "v1", "values": [5, 0, 4]},
        {"name": "v2", "values": [0, 0, 3]},
        {"name": "v10", "values": [1, 0, 0]},
    ]
    assert plain(charts["traffic"]) == [
        {"name": "downloads", "values": [1, 0, 4]},
        {"name": "installs", "values": [1, 0, 3]},
    ]
    assert plain(charts["trouble"]) == [
        {"name": "failures", "values": [1, 0, 0]},
        {"name": "rollbacks", "values": [0, 0, 2]},
    ]
    assert views.has_data(charts["trouble"])
    assert not views.has_data(views.hourly_charts([])["active"])


def test_hourly_charts_cover_the_whole_window() -> None:
    charts = views.hourly_charts([Point(NOW, "v1", active=2)], NOW - dt.timedelta(hours=2), NOW)
    assert charts["active"]["x"] == ["11-22 10:00", "11-22 11:00", "11-22 12:00"]
    assert plain(charts["active"]) == [{"name": "v1", "values": [0, 0, 2]}]
    empty = views.hourly_charts([], NOW - dt.timedelta(hours=1), NOW)
    assert empty["traffic"]["x"] == ["11-22 11:00", "11-22 12:00"]
    assert empty["active"]["series"] == []


def test_totals_chart_per_release() -> None:
    chart = views.totals_chart([release("v1", downloads=3, installs=2), release("v2", failures=1)])
    assert chart["x"] == ["v1", "v2"]
    assert plain(chart)[0] == {"name": "downloads", "values": [3, 0]}
    assert plain(chart)[2] == {"name": "failures", "values": [0, 1]}


# -- chart ranges and colours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "hours", "bucket"),
    [
        (None, 24, 1),  # no data: a day, empty
        (NOW, 1, 1),  # everything in the current hour: the last hour fills the chart
        (NOW + dt.timedelta(minutes=59), 1, 1),
        (NOW - dt.timedelta(minutes=1), 24, 1),  # the hour before: a day
        (NOW - dt.timedelta(hours=23), 24, 1),
        (NOW - dt.timedelta(hours=24), 24 * 7, 6),
        (NOW - dt.timedelta(days=6, hours=23), 24 * 7, 6),
        (NOW - dt.timedelta(days=7), 24 * 30, 24),
        (NOW - dt.timedelta(days=29, hours=23), 24 * 30, 24),
        (NOW - dt.timedelta(days=90), 24 * 30, 24),  # older data: 30 days at most
    ],
)
def test_charts_pick_the_range_that_fits_the_data(first: dt.datetime | None, hours: int, bucket: int) -> None:
    window = views.chart_range(first, NOW + dt.timedelta(minutes=30))
    assert (window.hours, window.bucket_hours) == (hours, bucket)


def test_fresh_data_fills_the_chart_instead_of_its_last_pixel() -> None:
    window, charts = views.range_charts(
        [Point(NOW, "v1", installs=3, active=2)], NOW + dt.timedelta(minutes=5)
    )
    assert window.title == "the last hour"
    assert charts["traffic"]["x"] == ["11-22 12:00"]
    assert plain(charts["traffic"])[1] == {"name": "installs", "values": [3]}


def test_a_week_is_drawn_per_six_hours_and_a_month_per_day() -> None:
    points = [
        Point(NOW - dt.timedelta(days=3, hours=1), "v1", installs=2, active=1),
        Point(NOW - dt.timedelta(days=3), "v1", installs=3, failures=1, active=4),
        Point(NOW, "v2", installs=1, active=2),
    ]
    window, charts = views.range_charts(points, NOW)
    assert (window.hours, window.bucket_hours) == (168, 6)
    assert len(charts["traffic"]["x"]) == 28
    installs = plain(charts["traffic"])[1]["values"]
    assert sum(installs) == 6 and installs[-1] == 1
    assert max(plain(charts["active"])[0]["values"]) == 4  # the most active devices seen in a period
    month, daily = views.range_charts([*points, Point(NOW - dt.timedelta(days=20), "v1", downloads=1)], NOW)
    assert (month.hours, month.bucket_hours) == (720, 24)
    assert len(daily["traffic"]["x"]) == 30 and daily["traffic"]["x"][-1] == "11-22"
    assert sum(plain(daily["traffic"])[0]["values"]) == 1


RED, GREEN = views.SERIES_COLOURS["failures"], views.SERIES_COLOURS["installs"]


def test_colours_mean_the_same_in_every_chart() -> None:
    points = [Point(NOW, f"v{i}", installs=1, failures=1, active=1) for i in range(1, 12)]
    charts = views.hourly_charts(points)
    totals = views.totals_chart([release("v1", installs=2, failures=1)])
    colours = {
        s["name"]: s["color"] for c in (charts["traffic"], charts["trouble"], totals) for s in c["series"]
    }
    assert colours["failures"] == RED and colours["installs"] == GREEN  # installs not red, failures not blue
    assert colours["downloads"] not in (RED, GREEN) and colours["rollbacks"] not in (RED, GREEN)
    assert views.rate_chart([release("v1")])["series"][0]["color"] == RED
    labels = {s["color"] for s in charts["active"]["series"]}
    assert not labels & set(views.SERIES_COLOURS.values())  # a release never takes a number's colour


# -- history rows, rollback safety ----------------------------------------------------------------------


def test_history_rows_are_newest_first_and_flag_failure_rates() -> None:
    history = [
        release("v1", installs=99, failures=1),
        release("v2", installs=19, failures=31),  # 62%: failing, and worse than v1
        release("v3", installs=90, failures=5),  # 5.3%: failing, but better than v2
        release("v4", installs=10, failures=0),
    ]
    rows = views.history_rows(history)
    assert [r.release.label for r in rows] == ["v4", "v3", "v2", "v1"]
    flags = {r.release.label: (r.failing, r.worse_than) for r in rows}
    assert flags == {"v1": (False, ""), "v2": (True, "v1"), "v3": (True, ""), "v4": (False, "")}
    assert rows[2].rate == pytest.approx(0.62) and rows[2].attempts == 50


FAILING = {"installs": 19, "failures": 31}
DISABLED = {
    "disabled": True,
    "disabled_by": "alice",
    "disabled_at": NOW,
    "disabled_reason": "disabled when alice rolled Production back to the content of v1 (as v3)",
}


def test_why_a_release_was_disabled() -> None:
    assert views.why_disabled(release()) == ""
    assert views.why_disabled(release(**DISABLED)) == (
        "Disabled when alice rolled Production back to the content of v1 (as v3) on 2026-11-22 12:00 UTC."
    )


@pytest.mark.parametrize(
    ("history", "target", "why_none"),
    [
        ([release("v1")], None, ""),
        ([release("v1"), release("v2")], "v1", ""),
        # the issue's story after the rollback: v2 disabled and failing, v3 serves v1's content
        (
            [
                release("v1"),
                release("v2", rollout=60, **FAILING, **DISABLED),
                release("v3", package_hash="v1" * 16),
            ],
            None,
            "No earlier release is safe to roll back to: v2 (disabled, failing, 62.0%).",
        ),
        ([release("v1"), release("v2", **FAILING), release("v3")], "v1", ""),
        ([release("v1", **DISABLED), release("v2")], None, "v1 (disabled)"),
        ([release("v1"), release("v2", package_hash="v1" * 16)], None, "has the content v2 serves"),
    ],
)
def test_the_main_rollback_is_never_disabled_or_failing(
    history: list[ReleaseOut], target: str | None, why_none: str
) -> None:
    found = views.main_rollback(history, "Production")
    assert (found.target.label if found.target else None) == target
    assert why_none in found.why_none
    assert bool(found.why_none) is bool(why_none)


def test_rolling_back_to_a_failing_disabled_release_shows_why_and_asks_for_its_label() -> None:
    v2 = release("v2", rollout=60, **FAILING, **DISABLED)
    history = [release("v1"), v2, release("v3", package_hash="v1" * 16)]
    c = views.confirm_rollback(v2, history)
    assert c.typed == "v2" and c.danger
    assert c.warnings == [
        "v2 is disabled. Disabled when alice rolled Production back to the content of v1 (as v3) on "
        "2026-11-22 12:00 UTC.",
        "v2 is failing: 62.0% of its 50 install attempts failed, above the 5% threshold.",
    ]
    healthy = views.confirm_rollback(history[0], [history[0], release("v2")])
    assert healthy.typed == "" and healthy.warnings == []


@pytest.mark.parametrize(
    ("fields", "typed", "reach"),
    [
        ({**DISABLED, **FAILING, "rollout": 60}, "v3", "the first 60% of devices"),
        ({**DISABLED, "rollout": 60}, "", "the first 60% of devices"),  # disabled, but not failing
        ({**DISABLED, "rollout": 100}, "", "every device"),
    ],
)
def test_enabling_a_release_disabled_after_failures_warns(
    fields: dict[str, Any], typed: str, reach: str
) -> None:
    c = views.confirm_disabled(release(**fields), False, [])
    assert c.typed == typed
    assert bool(c.warnings) is bool(typed) and c.danger is bool(typed)
    assert reach in c.consequences[0]


def test_revoking_a_key_says_what_stops_working() -> None:
    other = views.confirm_revoke("ci", yours=False)
    assert "ci" in other.title and other.danger and other.heading == "What stops working"
    assert not any("signed out" in line for line in other.consequences)
    assert any(
        "you are signed out" in line for line in views.confirm_revoke("admin", yours=True).consequences
    )


ORIGINS = own_origins("http", "127.0.0.1:3000", "https://ota.example.com/")


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "none"}, True),
        ({"sec-fetch-site": "cross-site"}, False),
        ({"sec-fetch-site": "same-site"}, False),
        ({"origin": "http://127.0.0.1:3000"}, True),
        ({"origin": "https://ota.example.com"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"origin": "http://127.0.0.1:3000", "sec-fetch-site": "cross-site"}, False),
    ],
)
def test_same_origin_check(headers: dict[str, str], allowed: bool) -> None:
    if allowed:
        check_same_origin(headers, ORIGINS)
    else:
        with pytest.raises(CrossSiteRequest):
            check_same_origin(headers, ORIGINS)


@pytest.mark.parametrize("given", [None, "", "wrong", "tokeN"])
def test_csrf_refuses_missing_and_wrong_tokens(given: str | None) -> None:
    with pytest.raises(ForgedForm):
        check_csrf("token", given)
    check_csrf("token", "token")


@pytest.mark.parametrize(
    ("target", "result"),
    [
        (None, "/console/"),
        ("/console/apps/CoolApp", "/console/apps/CoolApp"),
        ("https://evil.example/console/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console//evil.example", "/console/"),
        ("/console/\\evil", "/console/"),
        ("/api/v1/apps", "/console/"),
    ],
)
def test_safe_next_stays_in_the_console(target: str | None, result: str) -> None:
    assert safe_next(target) == result


def test_enabling_a_release_behind_a_newer_one_says_the_newer_one_stays() -> None:
    v2 = release("v2", rollout=60, **DISABLED)
    history = [release("v1"), v2, release("v3", package_hash="v1" * 16)]
    text = views.confirm_disabled(v2, False, history).consequences[0]
    assert text == (
        "Devices on 1.0.0 keep getting v3, which is newer and enabled; v2 comes back for them only if every "
        "newer release is disabled (the first 60% of devices then)."
    )
    other_binary = [release("v1"), v2, release("v3", target_version="2.0.0")]
    assert "start getting v2 again" in views.confirm_disabled(v2, False, other_binary).consequences[0]


def test_the_ramp_chart_places_its_points_by_time_and_ends_at_the_last_check() -> None:
    start = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    points = [
        RolloutPointOut(at=start, kind="rollout-started", actor="policy", share=1),
        RolloutPointOut(at=start + dt.timedelta(hours=12), kind="rollout-step", actor="policy", share=5),
    ]
    checked = start + dt.timedelta(hours=15)
    chart = views.ramp_chart(points, 5, checked)
    hour = 3_600_000
    t0 = chart["t"][0]
    assert [t - t0 for t in chart["t"]] == [0, 12 * hour, 15 * hour]
    assert chart["x"] == ["12-01 08:00", "12-01 20:00", "12-01 23:00"]
    assert chart["series"][0]["values"] == [1, 5, 5]
    assert (
        views.ramp_chart(points, 5, start)["t"] == chart["t"][:2]
    )  # a check before the last event: no point
