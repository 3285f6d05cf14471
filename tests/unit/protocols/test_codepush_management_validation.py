"""What the CodePush management API accepts, as code-push-server's rules: table-driven, no server."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from overair.errors import Conflict, Invalid, NotFound
from overair.packages import InvalidBundle
from overair.protocols.codepush_management.errors import Refused, translate
from overair.protocols.codepush_management.validation import (
    app_spec,
    deployment_spec,
    is_key,
    js_string,
    key_errors,
    plan_patch,
    promote_request,
    publish_options,
    refuse_invalid,
    rollout_of,
    validate_package_info,
)
from overair.releases.errors import (
    AppNotFound,
    DeploymentNotFound,
    IdenticalRelease,
    InvalidRelease,
    NameTaken,
    ReleaseNotFound,
    RolloutInProgress,
)
from overair.releases.schemas import Platform, ReleaseOut

INVALID = "Field is invalid"
REQUIRED = "Field is required"


def release(label: str, **kw: Any) -> ReleaseOut:
    values: dict[str, Any] = {
        "label": label,
        "deployment": "Staging",
        "package_hash": f"hash-{label}",
        "size": 10,
        "file_count": 1,
        "target_version": "1.0.0",
        "build_number": None,
        "rollout": 100,
        "mandatory": False,
        "disabled": False,
        "sync_before_update": False,
        "description": "",
        "released_by": "ci",
        "released_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "method": "upload",
        "origin_label": None,
        "origin_deployment": None,
        "downloads": 0,
        "installs": 0,
        "failures": 0,
        "rollbacks": 0,
    }
    return ReleaseOut(**{**values, **kw})


# -- packageInfo ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "all_optional", "expected"),
    [
        ({"appVersion": "1.0.0"}, False, []),
        ({}, False, [("appVersion", REQUIRED)]),
        ({}, True, []),
        ({"appVersion": None}, False, [("appVersion", REQUIRED)]),
        ({"appVersion": "^1.2.0 || 2.x"}, True, []),
        ({"appVersion": "not a range"}, True, [("appVersion", INVALID)]),
        ({"appVersion": 1}, True, [("appVersion", INVALID)]),
        ({"description": "x" * 10_000}, True, []),
        ({"description": "x" * 10_001}, True, [("description", INVALID)]),
        ({"description": 5}, True, [("description", INVALID)]),
        ({"label": "v12"}, True, []),
        ({"label": "v0"}, True, [("label", INVALID)]),
        ({"label": "12"}, True, [("label", INVALID)]),
        ({"isDisabled": True, "isMandatory": False}, True, []),
        ({"isDisabled": "true"}, True, [("isDisabled", INVALID)]),
        ({"isMandatory": 1}, True, [("isMandatory", INVALID)]),
        ({"rollout": 1}, True, []),
        ({"rollout": 100}, True, []),
        ({"rollout": "50"}, True, []),  # the reference tests String(value) against its pattern
        ({"rollout": 50.0}, True, []),
        ({"rollout": 0}, True, [("rollout", INVALID)]),
        ({"rollout": 101}, True, [("rollout", INVALID)]),
        ({"rollout": 50.5}, True, [("rollout", INVALID)]),
        ({"rollout": "050"}, True, [("rollout", INVALID)]),
        ({"rollout": True}, True, [("rollout", INVALID)]),
        ({"rollout": [50]}, True, [("rollout", INVALID)]),
        (
            {"rollout": 0, "isMandatory": "no"},
            False,
            [("appVersion", REQUIRED), ("isMandatory", INVALID), ("rollout", INVALID)],
        ),
    ],
)
def test_package_info_is_checked_as_the_reference_does(
    info: dict[str, Any], all_optional: bool, expected: list[tuple[str, str]]
) -> None:
    errors = validate_package_info(info, all_optional)
    assert [(e["field"], e["message"]) for e in errors] == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (50.0, "50"), (50.5, "50.5"), (7, "7"), ("7", "7"), (None, "None")],
)
def test_js_string(value: Any, text: str) -> None:
    assert js_string(value) == text


@pytest.mark.parametrize(("info", "rollout"), [({}, None), ({"rollout": "25"}, 25), ({"rollout": 40.0}, 40)])
def test_rollout_of(info: dict[str, Any], rollout: int | None) -> None:
    assert rollout_of(info) == rollout


def test_publish_options_default_to_a_full_enabled_optional_release() -> None:
    options = publish_options({"appVersion": "1.0.0"})
    assert (options.target_version, options.rollout, options.mandatory, options.disabled) == (
        "1.0.0",
        100,
        False,
        False,
    )
    assert options.description == ""
    full = publish_options(
        {"appVersion": "^1.0.0", "rollout": "30", "isMandatory": True, "isDisabled": True, "description": "d"}
    )
    assert (full.rollout, full.mandatory, full.disabled, full.description) == (30, True, True, "d")


def test_promote_request_keeps_the_source_values_for_empty_fields() -> None:
    kept = promote_request("Staging", "Production", {"description": "", "appVersion": "", "label": ""})
    assert (kept.label, kept.description, kept.target_version, kept.rollout) == (None, None, None, None)
    assert (kept.mandatory, kept.disabled) == (None, None)
    changed = promote_request(
        "Staging",
        "Production",
        {"label": "v2", "rollout": 10, "isMandatory": False, "description": "d", "appVersion": "2.0.0"},
    )
    assert (changed.source, changed.destination, changed.label, changed.rollout) == (
        "Staging",
        "Production",
        "v2",
        10,
    )
    assert (changed.mandatory, changed.description, changed.target_version) == (False, "d", "2.0.0")


# -- patch planning ---------------------------------------------------------------------------------

HISTORY = [
    release("v1", description="first"),
    release("v2", rollout=25, description="second", mandatory=True),
]


@pytest.mark.parametrize(
    ("info", "label", "changes"),
    [
        ({}, "v2", {}),
        ({"isMandatory": True, "description": "second"}, "v2", {}),
        # a rollout value always goes to the rule, which refuses one that does not raise the rollout
        ({"rollout": 25, "isMandatory": True, "description": "second"}, "v2", {"rollout": 25}),
        ({"rollout": 50}, "v2", {"rollout": 50}),
        ({"rollout": "60"}, "v2", {"rollout": 60}),
        ({"isDisabled": True, "isMandatory": False}, "v2", {"disabled": True, "mandatory": False}),
        ({"description": ""}, "v2", {}),  # an empty description keeps the old one
        ({"description": "new"}, "v2", {"description": "new"}),
        ({"appVersion": ""}, "v2", {}),
        ({"appVersion": "^1.0.0"}, "v2", {"target_version": "^1.0.0"}),
        ({"label": "v1", "isMandatory": True}, "v1", {"mandatory": True}),
        ({"label": None, "rollout": 30}, "v2", {"rollout": 30}),
    ],
)
def test_patch_changes_only_what_differs(info: dict[str, Any], label: str, changes: dict[str, Any]) -> None:
    plan = plan_patch(HISTORY, info)
    assert (plan.release.label, plan.changes) == (label, changes)


@pytest.mark.parametrize(
    ("history", "info", "message"),
    [
        ([], {"rollout": 50}, "Deployment has no releases."),
        (HISTORY, {"label": "v7"}, "Release not found for given label."),
    ],
)
def test_patch_refusals(history: list[ReleaseOut], info: dict[str, Any], message: str) -> None:
    with pytest.raises(Refused) as refused:
        plan_patch(history, info)
    assert (refused.value.status, refused.value.message) == (404, message)


# -- names, keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ttl", "update", "expected"),
    [
        ("ci", 3_600_000, False, []),
        ("ci", None, False, []),
        (None, None, False, [("friendlyName", REQUIRED)]),
        (None, None, True, []),
        ("bad name!", None, False, [("friendlyName", INVALID)]),
        ("ci", 0, False, [("ttl", INVALID)]),
        ("ci", 0, True, []),  # updating with 0 expires the key now
        ("ci", -1, True, [("ttl", INVALID)]),
        ("ci", True, True, [("ttl", INVALID)]),
        ("ci", "60d", False, [("ttl", INVALID)]),
        (None, -1, False, [("friendlyName", REQUIRED), ("ttl", INVALID)]),
        # finite and at most 100 years, as the management API allows (issue 13, item 9)
        ("ci", 100 * 365 * 24 * 3600 * 1000, False, []),
        ("ci", 100 * 365 * 24 * 3600 * 1000 + 1, False, [("ttl", INVALID)]),
        ("ci", 1e300, True, [("ttl", INVALID)]),
        ("ci", 10**400, True, [("ttl", INVALID)]),
        ("ci", float("nan"), True, [("ttl", INVALID)]),
        ("ci", float("inf"), True, [("ttl", INVALID)]),
    ],
)
def test_access_key_fields(name: Any, ttl: Any, update: bool, expected: list[tuple[str, str]]) -> None:
    assert [(e["field"], e["message"]) for e in key_errors(name, ttl, update)] == expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a" * 10, True),
        ("a" * 100, True),
        ("abc_DEF-123", True),
        ("a" * 9, False),
        ("a" * 101, False),
        ("abc def ghi", False),
        ("oa_key+slash/", False),
        (None, False),
        (1234567890, False),
    ],
)
def test_is_key(value: Any, valid: bool) -> None:
    assert is_key(value) is valid


@pytest.mark.parametrize(
    ("os_name", "platforms"),
    [("iOS", [Platform.IOS]), ("android", [Platform.ANDROID]), (None, [Platform.IOS, Platform.ANDROID])],
)
def test_app_spec_takes_the_platform_from_os(os_name: Any, platforms: list[Platform]) -> None:
    assert app_spec("MyApp", os_name).platforms == platforms


@pytest.mark.parametrize(
    ("build", "field", "message"),
    [
        (lambda: app_spec(None, None), "name", REQUIRED),
        (lambda: app_spec("bad/name", None), "name", INVALID),
        (lambda: deployment_spec(None, None), "name", REQUIRED),
        (lambda: deployment_spec("a/b", None), "name", INVALID),
        (lambda: deployment_spec("QA", "short"), "key", INVALID),
        (lambda: deployment_spec("QA", 12345678901), "key", INVALID),
    ],
)
def test_spec_refusals_name_the_field(build: Any, field: str, message: str) -> None:
    with pytest.raises(Refused) as refused:
        build()
    assert refused.value.status == 400
    assert refused.value.fields == [{"field": field, "message": message}]
    assert refused.value.message == f'[{{"field":"{field}","message":"{message}"}}]'


def test_deployment_spec_keeps_a_custom_key() -> None:
    assert deployment_spec("QA", "custom-key-1234567890").key == "custom-key-1234567890"


def test_refuse_invalid_only_with_errors() -> None:
    refuse_invalid([])
    with pytest.raises(Refused) as refused:
        refuse_invalid([{"field": "ttl", "message": INVALID}], as_json=True)
    assert refused.value.as_json


# -- the error table --------------------------------------------------------------------------------


def labels(*names: str) -> Any:
    return lambda: list(names)


@pytest.mark.parametrize(
    ("operation", "error", "ctx", "status", "text"),
    [
        ("app.get", AppNotFound("x"), {"app": "A"}, 404, 'App "A" does not exist.'),
        ("rollback", DeploymentNotFound("x"), {"deployment": "D"}, 404, 'Deployment "D" does not exist.'),
        ("release", InvalidBundle("not a zip"), {}, 400, "not a zip"),
        ("app.add", NameTaken("x"), {"name": "A"}, 409, "An app named 'A' already exists."),
        (
            "deployment.add",
            NameTaken("x"),
            {"name": "qa", "key": "k", "deployment_names": labels("QA")},
            409,
            "A deployment named 'qa' already exists.",
        ),
        (
            "deployment.add",
            NameTaken("x"),
            {"name": "QB", "key": "k" * 10, "deployment_names": labels("QA")},
            409,
            f'The deployment key "{"k" * 10}" is already used by another deployment.',
        ),
        ("key.add", Conflict("x"), {"name": "ci"}, 409, 'The access key "ci" already exists.'),
        ("key.patch", NotFound("x"), {"key": "ci"}, 404, 'The access key "ci" does not exist.'),
        ("key.get", NotFound("x"), {"key": "ci"}, 404, 'Access key "ci" does not exist.'),
        (
            "patch",
            RolloutInProgress("x"),
            {"current_rollout": 25},
            409,
            'Rollout value must be greater than "25", the existing value.',
        ),
        (
            "patch",
            RolloutInProgress("x"),
            {"current_rollout": 100},
            409,
            "Cannot update rollout value for a completed rollout release.",
        ),
        (
            "promote",
            InvalidRelease("x"),
            {"deployment": "Staging", "destination": "staging"},
            409,
            "Cannot promote a deployment's release to the same deployment.",
        ),
        (
            "rollback",
            ReleaseNotFound("x"),
            {"label": None, "labels": labels()},
            404,
            "Cannot perform rollback because there are no releases on this deployment.",
        ),
        (
            "rollback",
            ReleaseNotFound("x"),
            {"label": None, "labels": labels("v1")},
            404,
            "Cannot perform rollback because there are no prior releases to rollback to.",
        ),
        (
            "rollback",
            IdenticalRelease("x"),
            {"label": "v2", "labels": labels("v1", "v2")},
            409,
            "Cannot perform rollback because the target release (v2) is already the latest release.",
        ),
        (
            "rollback",
            IdenticalRelease("x"),
            {"label": None, "labels": labels("v1", "v2")},
            409,
            "Cannot perform rollback because the target release (v1) has the latest release's contents.",
        ),
        ("app.add", Conflict("kept as overair says it"), {}, 409, "kept as overair says it"),
        ("app.rename", Invalid("not a valid name"), {}, 400, "not a valid name"),  # 422 answers 400
    ],
)
def test_domain_errors_get_the_reference_answer(
    operation: str, error: Any, ctx: dict[str, Any], status: int, text: str
) -> None:
    refused = translate(operation, error, ctx)
    assert (refused.status, refused.message) == (status, text)
