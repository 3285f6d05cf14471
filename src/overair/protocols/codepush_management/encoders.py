"""The two dialects' wire formats: one encoder per dialect, with the same methods (:data:`Encoder`).

The handlers speak only to an encoder: it reads what the dialect puts where (a token's header, a
release's properties inside ``packageInfo`` or at the top level, a label in the path or the body) and
writes domain objects in the dialect's shape:

* :class:`StandaloneEncoder`: ``code-push-server``'s camelCase objects in envelopes (``{"app": …}``,
  ``{"package": …}``), ``Location`` on what it creates, errors as plain text (or the list of invalid fields);
* :class:`AppCenterEncoder`: App Center's snake_case objects without envelopes, errors as
  ``{"code", "message"}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from starlette.responses import JSONResponse, PlainTextResponse, Response

from overair.auth.roles import Role
from overair.auth.schemas import AccessKeyCreated, AccessKeyOut, OrganisationOut
from overair.protocols.codepush_management.errors import Refused
from overair.protocols.codepush_management.validation import (
    app_spec,
    as_object,
    deployment_spec,
    field_object,
)
from overair.protocols.downloads import download_url
from overair.releases.apps import DEFAULT_DEPLOYMENTS
from overair.releases.read_model import DeploymentActivity, DeploymentDetail
from overair.releases.schemas import AppCreate, AppOut, CollaboratorOut, DeploymentOut, Platform, ReleaseOut
from overair.selection import Release as Stored

NEVER_EXPIRES = 253402300799000  # 9999-12-31T23:59:59Z in ms: what a key without expiry reports
HIDDEN = "(hidden)"
_METHODS = {"upload": "Upload", "promote": "Promote", "rollback": "Rollback"}
_SNAKE = {
    "appVersion": "target_binary_range",
    "blobUrl": "blob_url",
    "description": "description",
    "diffPackageMap": "diff_package_map",
    "isDisabled": "is_disabled",
    "isMandatory": "is_mandatory",
    "label": "label",
    "originalDeployment": "original_deployment",
    "originalLabel": "original_label",
    "packageHash": "package_hash",
    "releasedBy": "released_by",
    "releaseMethod": "release_method",
    "rollout": "rollout",
    "size": "size",
    "uploadTime": "upload_time",
}
_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "TooLarge",
}
APPCENTER_PERMISSION = {
    Role.OWNER: "manager",
    Role.ADMIN: "manager",
    Role.RELEASE_MANAGER: "developer",
    Role.DEVELOPER: "developer",
    Role.VIEWER: "viewer",
}
"""An overair role as App Center's app permission (the CLI shows manager as Owner for the owning account,
else Manager; developer as Collaborator; viewer as Reader)."""
APPCENTER_ROLE = {"manager": Role.ADMIN, "developer": Role.RELEASE_MANAGER, "viewer": Role.VIEWER}
"""The role an App Center invitation gives (by its ``role``; none: developer, as CodePush's Collaborator)."""


def ms(moment: dt.datetime) -> int:
    """A moment as JavaScript's milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


Links = Callable[[str, str], str]
"""``links(blob_key, base)``: a blob's download URL (``Downloads.download_url``)."""


def encode_package(
    release: ReleaseOut, located: Stored | None, base: str, links: Links = download_url
) -> dict[str, Any]:
    """A release as the reference's Package object (camelCase)."""

    def url(blob_key: str) -> str:
        return links(blob_key, base)

    package: dict[str, Any] = {
        "appVersion": release.target_version,
        "blobUrl": url(located.blob_key) if located and located.blob_key else "",
        "description": release.description,
        "isDisabled": release.disabled,
        "isMandatory": release.mandatory,
        "label": release.label,
        "packageHash": release.package_hash,
        "releasedBy": release.released_by,
        "releaseMethod": _METHODS.get(release.method, release.method.title()),
        "rollout": release.rollout,
        "size": release.size,
        "uploadTime": ms(release.released_at),
    }
    if located and located.diffs:
        package["diffPackageMap"] = {h: {"size": size, "url": url(key)} for h, key, size in located.diffs}
    if release.origin_label:
        package["originalLabel"] = release.origin_label
    if release.method == "promote" and release.origin_deployment:
        package["originalDeployment"] = release.origin_deployment
    return package


def snake_package(package: Mapping[str, Any]) -> dict[str, Any]:
    """A Package in App Center's release form (snake_case)."""
    return {_SNAKE[k]: v for k, v in package.items() if k in _SNAKE}


def encode_metrics(
    history: Iterable[ReleaseOut], active: Mapping[str, int] | None = None
) -> dict[str, dict[str, int]]:
    """Per-label counters of releases that devices reported on, with the devices active on each now."""
    active = active or {}
    return {
        r.label: {
            "active": active.get(r.label, 0),
            "downloaded": r.downloads,
            # one failure-rate definition (overair.metrics.rules): a rollback follows its failure report
            "failed": r.failures,
            "installed": r.installs,
        }
        for r in history
        if r.downloads or r.installs or r.failures or r.rollbacks or active.get(r.label)
    }


def encode_key(key: AccessKeyOut, secret: str | None = None, *, hidden: bool = False) -> dict[str, Any]:
    """An access key as the reference's AccessKey object (``friendlyName`` is overair's key name)."""
    body: dict[str, Any] = {
        "createdBy": key.created_by,
        "createdTime": ms(key.created_at),
        "description": key.name,
        "expires": ms(key.expires_at) if key.expires_at is not None else NEVER_EXPIRES,
        "friendlyName": key.name,
        "id": key.name,
    }
    if secret is not None:
        body["name"] = secret
        del body["id"]
    elif hidden:
        body["name"] = HIDDEN
    return body


class Incoming(Protocol):
    """What an encoder reads of a request: its path parameters and JSON body."""

    @property
    def params(self) -> Mapping[str, str]: ...

    def json(self) -> Awaitable[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class NewKey:
    """An access key to create, as a dialect asks for it (not validated yet)."""

    name: Any
    ttl: Any


def _package(release: ReleaseOut, detail: DeploymentDetail, base: str, links: Links) -> dict[str, Any]:
    return encode_package(release, detail.stored_of(release), base, links)


@dataclass(frozen=True, slots=True)
class Person:
    """The account acting, as the dialects show it."""

    name: str
    email: str = ""

    @property
    def handle(self) -> str:
        """How the standalone dialect names an account: its e-mail, else its name."""
        return self.email or self.name


def _team(team: Sequence[CollaboratorOut], me: Person) -> dict[str, Any]:
    """An app's collaborators as the reference's map: overair's owners are "Owner", every other role
    "Collaborator"; on an app nobody owns (made by the server itself) the caller stands as owner."""
    found = {
        (c.email or c.account): {
            "isCurrentAccount": c.account == me.name,
            "permission": "Owner" if c.role is Role.OWNER else "Collaborator",
        }
        for c in team
    }
    if not any(c.role is Role.OWNER for c in team):
        found[me.handle] = {"isCurrentAccount": True, "permission": "Owner"}
    return found


class StandaloneEncoder:
    """``code-push-server``'s dialect (the ``code-push`` management SDK up to 2.x)."""

    def __init__(self, links: Links = download_url) -> None:
        self.links = links

    def token(self, headers: Mapping[str, str]) -> str:
        """The access key the request carries ("" for none)."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    async def read_key(self, call: Incoming) -> NewKey:
        """The access key to create (a ``createdBy`` in the body is ignored: the creator is the caller)."""
        body = await call.json()
        name = body.get("friendlyName") or body.get("description")
        return NewKey(name, body.get("ttl"))

    async def read_app(self, call: Incoming) -> tuple[AppCreate, Sequence[str]]:
        """The app to create, and the deployments to give it."""
        body = await call.json()
        spec = app_spec(body.get("name"), body.get("os"))
        return spec, () if body.get("manuallyProvisionDeployments") else DEFAULT_DEPLOYMENTS

    async def read_app_name(self, call: Incoming) -> str | None:
        """An app's new name (None: keep it)."""
        name = (await call.json()).get("name")
        return None if name is None else app_spec(name, None).name

    async def read_deployment_name(self, call: Incoming) -> str | None:
        """A deployment's new name (None: keep it)."""
        name = (await call.json()).get("name")
        if name is None or name == call.params["deployment"]:
            return None
        return deployment_spec(name, None).name

    async def read_package_info(self, call: Incoming) -> dict[str, Any]:
        """A patch's or promotion's release properties as ``packageInfo`` (camelCase, ``label`` included)."""
        return as_object((await call.json()).get("packageInfo"))

    async def read_rollback_label(self, call: Incoming) -> str | None:
        """The release to roll back to (None: the one before the newest)."""
        return call.params.get("label") or None

    def release_info(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A new release's properties as ``packageInfo``, from the values sent with its package: here the
        multipart field ``packageInfo``, holding JSON (anything else counts as ``{}``)."""
        return field_object(values.get("packageInfo", ""))

    def refusal(self, refusal: Refused) -> Response:
        """An error answer."""
        if refusal.fields is not None and refusal.as_json:
            return JSONResponse(refusal.fields, status_code=refusal.status)
        return Response(refusal.message, status_code=refusal.status, media_type="text/html")

    def location(self, path: str) -> dict[str, str]:
        """The headers that say where a created object is."""
        return {"Location": path}

    needs_teams = True
    """Whether app objects carry their collaborators (the handlers then read them)."""

    def account(self, me: Person) -> Any:
        """The acting account."""
        return {"account": {"email": me.handle, "linkedProviders": [], "name": me.name}}

    def keys(self, keys: list[AccessKeyOut]) -> Any:
        """Every access key, secrets hidden."""
        oldest_first = sorted(keys, key=lambda k: k.created_at)
        return {"accessKeys": [encode_key(k, hidden=True) for k in oldest_first]}

    def key(self, key: AccessKeyOut) -> Any:
        """One access key, without its secret."""
        return {"accessKey": encode_key(key)}

    def created_key(self, key: AccessKeyCreated) -> Any:
        """A new access key with its secret, shown this once."""
        return {"accessKey": encode_key(key, key.key)}

    def _app(self, app: AppOut, me: Person, team: Sequence[CollaboratorOut]) -> dict[str, Any]:
        return {
            "collaborators": _team(team, me),
            "deployments": sorted(d.name for d in app.deployments),
            "name": app.name,
        }

    def apps(self, apps: list[AppOut], me: Person, teams: Mapping[str, Sequence[CollaboratorOut]]) -> Any:
        """Every app (``teams``: each app's collaborators, by app name)."""
        return {"apps": [self._app(a, me, teams.get(a.name, ())) for a in apps]}

    def app(self, app: AppOut, me: Person, team: Sequence[CollaboratorOut] = ()) -> Any:
        """One app, with its collaborators."""
        return {"app": self._app(app, me, team)}

    def collaborators(self, team: Sequence[CollaboratorOut], me: Person) -> Any:
        """An app's collaborators: e-mail (else name) to permission."""
        return {"collaborators": _team(team, me)}

    async def read_invitation(self, call: Incoming) -> tuple[str, Role]:
        """Who to add as a collaborator, and with which role (the reference's Collaborator: release
        manager)."""
        return call.params["email"], Role.RELEASE_MANAGER

    def created(self) -> Response:
        """A collaborator added, or an app transferred: ``201 Created``."""
        return PlainTextResponse("Created", status_code=201)

    def transferred(self, app: AppOut, me: Person) -> Response:
        """An app given away."""
        return self.created()

    def _deployment(self, detail: DeploymentDetail, base: str) -> dict[str, Any]:
        latest = detail.latest
        return {
            "name": detail.deployment.name,
            "key": detail.deployment.key,
            "package": _package(latest, detail, base, self.links) if latest else None,
        }

    def deployments(self, details: list[DeploymentDetail], base: str) -> Any:
        """An app's deployments, each with its newest release."""
        return {"deployments": [self._deployment(d, base) for d in details]}

    def deployment(self, detail: DeploymentDetail, base: str) -> Any:
        """One deployment with its newest release."""
        return {"deployment": self._deployment(detail, base)}

    def created_deployment(self, deployment: DeploymentOut) -> Any:
        """A new deployment's name and key."""
        return {"deployment": {"name": deployment.name, "key": deployment.key}}

    def package(self, release: ReleaseOut, detail: DeploymentDetail, base: str) -> Any:
        """One release of ``detail``'s deployment."""
        return {"package": _package(release, detail, base, self.links)}

    def history(self, detail: DeploymentDetail, base: str) -> Any:
        """Every release of a deployment, oldest first."""
        return {"history": [_package(r, detail, base, self.links) for r in detail.history]}

    def metrics(self, activity: DeploymentActivity) -> Any:
        """A deployment's per-label metrics."""
        return {"metrics": encode_metrics(activity.history, activity.active)}


class AppCenterEncoder:
    """App Center's dialect, as ``code-push-cli`` 3.0.0 (its SDK: ``code-push`` 4.0.2) speaks it."""

    def __init__(self, links: Links = download_url) -> None:
        self.links = links

    def token(self, headers: Mapping[str, str]) -> str:
        return headers.get("x-api-token", "").strip()

    async def read_key(self, call: Incoming) -> NewKey:
        return NewKey((await call.json()).get("description"), None)

    async def read_app(self, call: Incoming) -> tuple[AppCreate, Sequence[str]]:
        """The CLI adds the deployments itself."""
        body = await call.json()
        return app_spec(body.get("display_name") or body.get("name"), body.get("os")), ()

    async def read_app_name(self, call: Incoming) -> str | None:
        body = await call.json()
        return app_spec(body.get("name") or body.get("display_name"), None).name

    async def read_deployment_name(self, call: Incoming) -> str | None:
        return deployment_spec((await call.json()).get("name"), None).name

    async def read_package_info(self, call: Incoming) -> dict[str, Any]:
        """Snake_case fields; a patch names its release in the path (``null``: the newest)."""
        body = await call.json()
        info = {
            "appVersion": body.get("target_binary_range"),
            "description": body.get("description"),
            "isDisabled": body.get("is_disabled"),
            "isMandatory": body.get("is_mandatory"),
            "label": body.get("label"),
            "rollout": body.get("rollout"),
        }
        if "label" in call.params:
            label = call.params["label"]
            info["label"] = None if label in ("null", "undefined") else label
        return info

    async def read_rollback_label(self, call: Incoming) -> str | None:
        label = (await call.json()).get("label")
        return str(label) if label else None

    def release_info(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body that names the finished upload."""
        return {
            "appVersion": values.get("target_binary_version"),
            "description": values.get("description"),
            "isDisabled": values.get("disabled"),
            "isMandatory": values.get("mandatory"),
            "rollout": values.get("rollout"),
        }

    def refusal(self, refusal: Refused) -> Response:
        code = _CODES.get(refusal.status, "Error")
        return JSONResponse({"code": code, "message": refusal.message}, status_code=refusal.status)

    def location(self, path: str) -> dict[str, str]:
        return {}

    needs_teams = False

    def account(self, me: Person) -> Any:
        return _appcenter_person(me.name, me.handle)

    def keys(self, keys: list[AccessKeyOut]) -> Any:
        return [self.key(k) for k in keys]

    def key(self, key: AccessKeyOut) -> Any:
        return {
            "id": key.name,
            "description": key.name,
            "created_at": key.created_at.isoformat(),
            "scope": ["all"],
        }

    def created_key(self, key: AccessKeyCreated) -> Any:
        return {**self.key(key), "api_token": key.key}

    def apps(self, apps: list[AppOut], me: Person, teams: Mapping[str, Sequence[CollaboratorOut]]) -> Any:
        return [self.app(a, me) for a in apps]

    def app(self, app: AppOut, me: Person, team: Sequence[CollaboratorOut] = ()) -> Any:
        """An app with its owner: an account ("user") or an organisation ("org"); an app nobody owns
        (made by the server itself) shows the caller."""
        if app.owner is None:
            owner = {**self.account(me), "type": "user"}
        else:
            owner = {**_appcenter_person(app.owner), "type": "org" if app.owner_is_organisation else "user"}
        return {
            "id": app.name,
            "name": app.name,
            "display_name": app.name,
            "os": "iOS" if Platform.IOS in app.platforms else "Android",
            "platform": "React-Native",
            "owner": owner,
        }

    def collaborators(self, team: Sequence[CollaboratorOut], me: Person) -> Any:
        """The app's users with App Center's permissions (:data:`APPCENTER_PERMISSION`)."""
        if not any(c.role is Role.OWNER for c in team):
            return [{**self.account(me), "permissions": ["manager"]}]
        return [
            {
                **_appcenter_person(c.account, c.email or c.account),
                "permissions": [APPCENTER_PERMISSION[c.role]],
            }
            for c in team
        ]

    async def read_invitation(self, call: Incoming) -> tuple[str, Role]:
        """``{"user_email", "role"?}``: manager, developer (the default) or viewer."""
        body = await call.json()
        who, role = body.get("user_email"), body.get("role") or "developer"
        if not isinstance(who, str) or not who or role not in APPCENTER_ROLE:
            raise Refused(
                400,
                'Give "user_email" (an account\'s e-mail or name) and "role": manager, developer or viewer.',
            )
        return who, APPCENTER_ROLE[role]

    def created(self) -> Response:
        return Response(status_code=204)

    def transferred(self, app: AppOut, me: Person) -> Response:
        return JSONResponse(self.app(app, me))

    def deployments(self, details: list[DeploymentDetail], base: str) -> Any:
        return [self.deployment(d, base) for d in details]

    def deployment(self, detail: DeploymentDetail, base: str) -> Any:
        body: dict[str, Any] = {"name": detail.deployment.name, "key": detail.deployment.key}
        if detail.latest is not None:
            body["latest_release"] = self.package(detail.latest, detail, base)
        return body

    def created_deployment(self, deployment: DeploymentOut) -> Any:
        return {"name": deployment.name, "key": deployment.key}

    def package(self, release: ReleaseOut, detail: DeploymentDetail, base: str) -> Any:
        return snake_package(_package(release, detail, base, self.links))

    def history(self, detail: DeploymentDetail, base: str) -> Any:
        return [self.package(r, detail, base) for r in detail.history]

    def metrics(self, activity: DeploymentActivity) -> Any:
        counts = encode_metrics(activity.history, activity.active)
        return [{"label": label, **c} for label, c in counts.items()]


def _appcenter_person(name: str, email: str | None = None) -> dict[str, Any]:
    """An account or organisation as App Center's owner object; ``name`` goes into paths unquoted by the
    CLI, so it is sent quoted."""
    return {"id": name, "name": quote(name, safe=""), "display_name": name, "email": email or name}


def appcenter_organisation(org: OrganisationOut) -> dict[str, Any]:
    """An organisation as App Center's ``/orgs`` answers it."""
    return {"id": org.name, "name": quote(org.name, safe=""), "display_name": org.name, "origin": "appcenter"}


Encoder = StandaloneEncoder | AppCenterEncoder
"""One dialect's wire format. Both classes have the same methods (the standalone one documents them), so
the handlers call either without asking which; ``mypy`` checks every call against both."""
