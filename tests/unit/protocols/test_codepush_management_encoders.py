"""The CodePush management dialects' wire formats: what each encoder reads where and writes how."""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from test_codepush_management_validation import release

from overair.auth.roles import Role
from overair.auth.schemas import AccessKeyCreated, AccessKeyOut
from overair.protocols.codepush_management.encoders import (
    HIDDEN,
    NEVER_EXPIRES,
    AppCenterEncoder,
    Encoder,
    NewKey,
    Person,
    StandaloneEncoder,
    encode_key,
    encode_metrics,
    encode_package,
    snake_package,
)
from overair.protocols.codepush_management.errors import Refused
from overair.releases.apps import DEFAULT_DEPLOYMENTS
from overair.releases.read_model import DeploymentActivity, DeploymentDetail
from overair.releases.schemas import AppOut, CollaboratorOut, DeploymentOut, Distribution, Platform
from overair.selection import Release as Stored
from overair.storage import content_key

SA, AC = StandaloneEncoder(), AppCenterEncoder()
BASE = "https://ota.example.com"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
T0_MS = 1704067200000
BLOB, DIFF = "a" * 64, "b" * 64
STORED = Stored(
    label="v2",
    package_hash="hash-v2",
    target="1.0.0",
    blob_key=content_key(BLOB),
    diffs=(("hash-v1", content_key(DIFF), 7),),
)


def test_both_dialects_have_the_same_methods() -> None:
    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(fn)
            for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert methods(StandaloneEncoder) == methods(AppCenterEncoder)


# -- the reference's objects ------------------------------------------------------------------------


def test_package_is_the_reference_object_in_its_key_order() -> None:
    package = encode_package(release("v2", description="d", released_at=T0), STORED, BASE)
    assert package == {
        "appVersion": "1.0.0",
        "blobUrl": f"{BASE}/v1/blobs/{BLOB}",
        "description": "d",
        "isDisabled": False,
        "isMandatory": False,
        "label": "v2",
        "packageHash": "hash-v2",
        "releasedBy": "ci",
        "releaseMethod": "Upload",
        "rollout": 100,
        "size": 10,
        "uploadTime": T0_MS,
        "diffPackageMap": {"hash-v1": {"size": 7, "url": f"{BASE}/v1/blobs/{DIFF}"}},
    }
    assert list(package) == sorted(package, key=list(package).index)  # insertion order is the wire order


@pytest.mark.parametrize(
    ("kw", "extra"),
    [
        (
            {"method": "promote", "origin_label": "v3", "origin_deployment": "Staging"},
            ["Promote", "v3", "Staging"],
        ),
        (
            {"method": "rollback", "origin_label": "v1", "origin_deployment": "Staging"},
            ["Rollback", "v1", None],
        ),
        ({"method": "upload"}, ["Upload", None, None]),
        ({"method": "console"}, ["Console", None, None]),
    ],
)
def test_package_names_where_promotions_and_rollbacks_come_from(kw: dict[str, Any], extra: list[Any]) -> None:
    package = encode_package(release("v2", **kw), None, BASE)
    assert [
        package["releaseMethod"],
        package.get("originalLabel"),
        package.get("originalDeployment"),
    ] == extra
    assert package["blobUrl"] == ""
    assert "diffPackageMap" not in package


def test_snake_package_renames_and_keeps_order() -> None:
    package = encode_package(
        release("v2", method="promote", origin_label="v1", origin_deployment="QA"), None, ""
    )
    snake = snake_package({**package, "manifestBlobUrl": "dropped"})
    assert list(snake) == [
        "target_binary_range",
        "blob_url",
        "description",
        "is_disabled",
        "is_mandatory",
        "label",
        "package_hash",
        "released_by",
        "release_method",
        "rollout",
        "size",
        "upload_time",
        "original_label",
        "original_deployment",
    ]


def test_metrics_list_labels_that_devices_reported_on() -> None:
    history = [
        release("v1", downloads=3, installs=2, failures=1, rollbacks=1),
        release("v2"),
        release("v3"),
    ]
    assert encode_metrics(history, {"v3": 4}) == {
        # failed counts failures only: a rollback report follows a failure already counted
        "v1": {"active": 0, "downloaded": 3, "failed": 1, "installed": 2},
        "v3": {"active": 4, "downloaded": 0, "failed": 0, "installed": 0},
    }
    assert encode_metrics([release("v1")]) == {}


KEY = AccessKeyOut(name="ci", created_by="host", created_at=T0, last_used_at=None, expires_at=None)
CREATED = AccessKeyCreated(
    name="ci", created_by="host", created_at=T0, last_used_at=None, expires_at=T0, key="secret"
)


def test_access_keys_show_a_secret_only_when_created() -> None:
    assert encode_key(KEY) == {
        "createdBy": "host",
        "createdTime": T0_MS,
        "description": "ci",
        "expires": NEVER_EXPIRES,
        "friendlyName": "ci",
        "id": "ci",
    }
    assert encode_key(KEY, hidden=True)["name"] == HIDDEN
    created = encode_key(CREATED, CREATED.key)
    assert (created["name"], created["expires"], "id" in created) == ("secret", T0_MS, False)


# -- each dialect -----------------------------------------------------------------------------------

DEPLOYMENT = DeploymentOut(name="Staging", key="dep-key", created_at=T0)
APP = AppOut(
    name="My App",
    platforms=[Platform.IOS],
    distribution=Distribution.HYBRID,
    created_at=T0,
    deployments=[
        DeploymentOut(name="Staging", key="k1", created_at=T0),
        DEPLOYMENT.model_copy(update={"name": "Beta"}),
    ],
)
V2 = release("v2", released_at=T0, installs=1)
DETAIL = DeploymentDetail(DEPLOYMENT, [release("v1", released_at=T0), V2], {"v2": STORED})
EMPTY = DeploymentDetail(DEPLOYMENT, [])
OWNER = {"isCurrentAccount": True, "permission": "Owner"}
ME = Person("me@x")
USER = {"id": "me@x", "name": "me%40x", "display_name": "me@x", "email": "me@x"}
PACKAGE = encode_package(V2, STORED, BASE)
SNAKE = snake_package(PACKAGE)


@pytest.mark.parametrize(
    ("write", "standalone", "appcenter"),
    [
        (
            lambda e: e.account(ME),
            {"account": {"email": "me@x", "linkedProviders": [], "name": "me@x"}},
            USER,
        ),
        (
            lambda e: e.collaborators([], ME),
            {"collaborators": {"me@x": OWNER}},
            [{**USER, "permissions": ["manager"]}],
        ),
        (
            lambda e: e.app(APP, ME),
            {"app": {"collaborators": {"me@x": OWNER}, "deployments": ["Beta", "Staging"], "name": "My App"}},
            {
                "id": "My App",
                "name": "My App",
                "display_name": "My App",
                "os": "iOS",
                "platform": "React-Native",
                "owner": {**USER, "type": "user"},
            },
        ),
        (lambda e: e.apps([APP], ME, {}), {"apps": [SA.app(APP, ME)["app"]]}, [AC.app(APP, ME)]),
        (
            lambda e: e.deployment(DETAIL, BASE),
            {"deployment": {"name": "Staging", "key": "dep-key", "package": PACKAGE}},
            {"name": "Staging", "key": "dep-key", "latest_release": SNAKE},
        ),
        (
            lambda e: e.deployments([EMPTY], BASE),
            {"deployments": [{"name": "Staging", "key": "dep-key", "package": None}]},
            [{"name": "Staging", "key": "dep-key"}],
        ),
        (
            lambda e: e.created_deployment(DEPLOYMENT),
            {"deployment": {"name": "Staging", "key": "dep-key"}},
            {"name": "Staging", "key": "dep-key"},
        ),
        (lambda e: e.package(V2, DETAIL, BASE), {"package": PACKAGE}, SNAKE),
        (
            lambda e: e.history(DETAIL, BASE),
            {"history": [encode_package(DETAIL.history[0], None, BASE), PACKAGE]},
            [snake_package(encode_package(DETAIL.history[0], None, BASE)), SNAKE],
        ),
        (
            lambda e: e.metrics(DeploymentActivity(DETAIL.history, {"v1": 2})),
            {
                "metrics": {
                    "v1": {"active": 2, "downloaded": 0, "failed": 0, "installed": 0},
                    "v2": {"active": 0, "downloaded": 0, "failed": 0, "installed": 1},
                }
            },
            [
                {"label": "v1", "active": 2, "downloaded": 0, "failed": 0, "installed": 0},
                {"label": "v2", "active": 0, "downloaded": 0, "failed": 0, "installed": 1},
            ],
        ),
        (
            lambda e: e.key(KEY),
            {"accessKey": encode_key(KEY)},
            {"id": "ci", "description": "ci", "created_at": T0.isoformat(), "scope": ["all"]},
        ),
        (
            lambda e: e.created_key(CREATED),
            {"accessKey": encode_key(CREATED, "secret")},
            {
                "id": "ci",
                "description": "ci",
                "created_at": T0.isoformat(),
                "scope": ["all"],
                "api_token": "secret",
            },
        ),
        (lambda e: e.location("/apps/x"), {"Location": "/apps/x"}, {}),
    ],
)
def test_each_dialect_writes_its_shape(write: Any, standalone: Any, appcenter: Any) -> None:
    assert write(SA) == standalone
    assert write(AC) == appcenter


def test_standalone_lists_keys_oldest_first_and_hidden() -> None:
    newer = KEY.model_copy(update={"name": "newer", "created_at": T0 + dt.timedelta(days=1)})
    listed = SA.keys([newer, KEY])["accessKeys"]
    assert [(k["friendlyName"], k["name"]) for k in listed] == [("ci", HIDDEN), ("newer", HIDDEN)]
    assert [k["id"] for k in AC.keys([newer, KEY])] == ["newer", "ci"]


@pytest.mark.parametrize(
    ("refusal", "standalone", "appcenter"),
    [
        (
            Refused(404, 'App "A" does not exist.'),
            (404, "text/html; charset=utf-8", 'App "A" does not exist.'),
            (404, "application/json", {"code": "NotFound", "message": 'App "A" does not exist.'}),
        ),
        (
            Refused(400, fields=[{"field": "name", "message": "Field is invalid"}]),
            (400, "text/html; charset=utf-8", '[{"field":"name","message":"Field is invalid"}]'),
            (
                400,
                "application/json",
                {"code": "BadRequest", "message": '[{"field":"name","message":"Field is invalid"}]'},
            ),
        ),
        (
            Refused(400, fields=[{"field": "ttl", "message": "Field is invalid"}], as_json=True),
            (400, "application/json", [{"field": "ttl", "message": "Field is invalid"}]),
            (
                400,
                "application/json",
                {"code": "BadRequest", "message": '[{"field":"ttl","message":"Field is invalid"}]'},
            ),
        ),
        (
            Refused(500, "boom"),
            (500, "text/html; charset=utf-8", "boom"),
            (500, "application/json", {"code": "Error", "message": "boom"}),
        ),
    ],
)
def test_each_dialect_refuses_in_its_shape(refusal: Refused, standalone: tuple, appcenter: tuple) -> None:
    for encoder, (status, media, body) in ((SA, standalone), (AC, appcenter)):
        response = encoder.refusal(refusal)
        text = bytes(response.body).decode()
        assert (response.status_code, response.headers["content-type"]) == (status, media)
        assert (json.loads(text) if media == "application/json" else text) == body


@pytest.mark.parametrize(
    ("headers", "standalone", "appcenter"),
    [
        ({"authorization": "Bearer  key-1234567 "}, "key-1234567", ""),
        ({"authorization": "bearer key"}, "key", ""),
        ({"authorization": "Basic key"}, "", ""),
        ({"x-api-token": " key-1234567 "}, "", "key-1234567"),
        ({}, "", ""),
    ],
)
def test_each_dialect_reads_the_key_from_its_header(
    headers: dict[str, str], standalone: str, appcenter: str
) -> None:
    assert (SA.token(headers), AC.token(headers)) == (standalone, appcenter)


# -- reading requests -------------------------------------------------------------------------------


class Incoming:
    def __init__(self, body: dict[str, Any], **params: str) -> None:
        self.body = body
        self.params: Mapping[str, str] = params
        self.reads = 0

    async def json(self) -> dict[str, Any]:
        self.reads += 1
        return self.body


def read(encoder: Encoder, method: str, body: dict[str, Any], *args: Any, **params: str) -> Any:
    async def go() -> Any:
        return await getattr(encoder, method)(Incoming(body, **params), *args)

    return anyio.run(go)


@pytest.mark.parametrize(
    ("encoder", "method", "body", "params", "expected"),
    [
        (SA, "read_rollback_label", {"label": "v9"}, {"label": "v2"}, "v2"),
        (SA, "read_rollback_label", {"label": "v9"}, {}, None),
        (AC, "read_rollback_label", {"label": "v9"}, {}, "v9"),
        (AC, "read_rollback_label", {}, {}, None),
        (SA, "read_app_name", {}, {}, None),
        (SA, "read_app_name", {"name": "New"}, {}, "New"),
        (AC, "read_app_name", {"display_name": "New"}, {}, "New"),
        (SA, "read_deployment_name", {"name": "QA"}, {"deployment": "QA"}, None),
        (SA, "read_deployment_name", {}, {"deployment": "QA"}, None),
        (SA, "read_deployment_name", {"name": "QB"}, {"deployment": "QA"}, "QB"),
        (AC, "read_deployment_name", {"name": "QA"}, {"deployment": "QA"}, "QA"),
        (
            SA,
            "read_package_info",
            {"packageInfo": {"label": "v1", "rollout": 5}},
            {},
            {"label": "v1", "rollout": 5},
        ),
        (SA, "read_package_info", {"packageInfo": "nope"}, {}, {}),
        (
            AC,
            "read_package_info",
            {"target_binary_range": "1.x", "is_mandatory": True, "label": "v1", "rollout": 5},
            {},
            {
                "appVersion": "1.x",
                "description": None,
                "isDisabled": None,
                "isMandatory": True,
                "label": "v1",
                "rollout": 5,
            },
        ),
        (
            AC,
            "read_package_info",
            {},
            {"label": "null"},
            dict.fromkeys(["appVersion", "description", "isDisabled", "isMandatory", "label", "rollout"]),
        ),
        (
            AC,
            "read_package_info",
            {"label": "v1"},
            {"label": "v3"},
            {
                **dict.fromkeys(["appVersion", "description", "isDisabled", "isMandatory", "rollout"]),
                "label": "v3",
            },
        ),
    ],
)
def test_each_dialect_reads_its_requests(
    encoder: Encoder, method: str, body: dict[str, Any], params: dict[str, str], expected: Any
) -> None:
    assert read(encoder, method, body, **params) == expected


def test_standalone_rollback_does_not_read_the_body() -> None:
    incoming = Incoming({"label": "v9"}, label="v2")
    assert anyio.run(SA.read_rollback_label, incoming) == "v2"
    assert incoming.reads == 0


@pytest.mark.parametrize(
    ("encoder", "body", "name", "deployments"),
    [
        (SA, {"name": "A", "os": "Android"}, "A", DEFAULT_DEPLOYMENTS),
        (SA, {"name": "A", "manuallyProvisionDeployments": True}, "A", ()),
        (AC, {"display_name": "A", "name": "ignored", "os": "iOS"}, "A", ()),
        (AC, {"name": "A"}, "A", ()),
    ],
)
def test_new_apps(encoder: Encoder, body: dict[str, Any], name: str, deployments: Any) -> None:
    spec, given = read(encoder, "read_app", body)
    assert (spec.name, tuple(given)) == (name, tuple(deployments))


@pytest.mark.parametrize(
    ("encoder", "body", "expected"),
    [
        # a createdBy in the body never names the creator (issue 13, item 3): the caller is the creator
        (SA, {"friendlyName": "ci", "ttl": 5, "createdBy": "host"}, NewKey("ci", 5)),
        (SA, {"description": "legacy", "createdBy": 7}, NewKey("legacy", None)),
        (SA, {"friendlyName": "ci", "createdBy": ""}, NewKey("ci", None)),
        (AC, {"description": "ci", "ttl": 5, "createdBy": "host"}, NewKey("ci", None)),
    ],
)
def test_new_keys(encoder: Encoder, body: dict[str, Any], expected: NewKey) -> None:
    assert read(encoder, "read_key", body) == expected


@pytest.mark.parametrize(
    ("encoder", "values", "expected"),
    [
        (SA, {"packageInfo": '{"appVersion": "1.0.0", "rollout": 5}'}, {"appVersion": "1.0.0", "rollout": 5}),
        (SA, {"packageInfo": "not json"}, {}),
        (SA, {}, {}),
        (
            AC,
            {
                "target_binary_version": "1.0.0",
                "mandatory": True,
                "disabled": False,
                "rollout": 5,
                "description": "d",
            },
            {
                "appVersion": "1.0.0",
                "description": "d",
                "isDisabled": False,
                "isMandatory": True,
                "rollout": 5,
            },
        ),
    ],
)
def test_release_info(encoder: Encoder, values: dict[str, Any], expected: dict[str, Any]) -> None:
    assert encoder.release_info(values) == expected


# -- collaborators and owners ------------------------------------------------------------------------

TEAM = [
    CollaboratorOut(account="olivia", email="olivia@x", role=Role.OWNER, source="owner"),
    CollaboratorOut(account="adam", email="", role=Role.ADMIN, source="grant"),
    CollaboratorOut(account="rita", email="rita@x", role=Role.RELEASE_MANAGER, source="grant"),
    CollaboratorOut(account="dev", email="dev@x", role=Role.DEVELOPER, source="grant"),
    CollaboratorOut(account="vera", email="vera@x", role=Role.VIEWER, source="grant"),
]


@pytest.mark.parametrize(
    ("who", "standalone", "appcenter"),
    [
        ("olivia@x", "Owner", "manager"),
        ("adam", "Collaborator", "manager"),  # no e-mail: named by its name
        ("rita@x", "Collaborator", "developer"),
        ("dev@x", "Collaborator", "developer"),
        ("vera@x", "Collaborator", "viewer"),
    ],
)
def test_roles_as_the_dialects_permissions(who: str, standalone: str, appcenter: str) -> None:
    me = Person("rita", "rita@x")
    mapped = SA.collaborators(TEAM, me)["collaborators"]
    assert mapped[who] == {"isCurrentAccount": who == "rita@x", "permission": standalone}
    users = {u["email"]: u for u in AC.collaborators(TEAM, me)}
    assert users[who]["permissions"] == [appcenter]


def test_an_app_shows_its_real_owner() -> None:
    me = Person("rita", "rita@x")
    org_app = APP.model_copy(update={"owner": "org name", "owner_is_organisation": True})
    assert AC.app(org_app, me)["owner"] == {
        "id": "org name",
        "name": "org%20name",
        "display_name": "org name",
        "email": "org name",
        "type": "org",
    }
    assert AC.app(APP.model_copy(update={"owner": "olivia"}), me)["owner"]["type"] == "user"
    # an app nobody owns (made by the server itself): the caller stands as its owner
    assert AC.app(APP, me)["owner"]["id"] == "rita"
    assert SA.app(APP, me, [])["app"]["collaborators"] == {
        "rita@x": {"isCurrentAccount": True, "permission": "Owner"}
    }
