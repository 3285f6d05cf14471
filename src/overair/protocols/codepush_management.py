"""The CodePush management API, so the CodePush CLIs and management SDKs steer releases on overair.

Two dialects share one set of operations over :class:`ReleaseService` and :class:`AccessKeyService`:

* **standalone** — what ``microsoft/code-push-server`` and the ``code-push`` management SDK up to 2.x speak:
  ``Authorization: Bearer KEY``, ``/authenticated``, ``/account``, ``/accessKeys``, ``/sessions``,
  ``/apps/<app>/deployments/<deployment>/{release,history,metrics,promote,rollback}``, camelCase objects in
  envelopes (``{"app": …}``, ``{"package": …}``), errors as plain text with the reference's messages.
* **App Center** — what ``code-push-cli`` 3.0.0 speaks through its ``code-push`` 4.0.2 SDK when given a server
  URL: ``x-api-token: KEY``, ``/user``, ``/api_tokens``, ``/apps/<owner>/<app>/…`` with snake_case objects,
  uploads in two steps (``…/uploads`` then the chunked upload protocol under ``/upload/``), errors as
  ``{"code", "message"}``. A request with ``x-api-token`` and no ``Authorization`` header is App Center's.

The adapter parses, calls the services and encodes. Domain errors become the reference's status and text in
one place: :data:`ERRORS`. overair has no user accounts: every access key manages every app, so an app's
collaborators are the caller alone (as Owner), and the account's name and e-mail are the key's name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio.to_thread
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from overair.auth.schemas import AccessKeyCreate, AccessKeyOut
from overair.auth.service import AccessKeyService
from overair.errors import Conflict, NotFound, OverairError, PayloadTooLarge, Unauthorized
from overair.metrics.service import MetricsService
from overair.packages import InvalidBundle
from overair.protocols.asgi import Receive, Scope, Send, base_url, header, send_bytes
from overair.releases.apps import DEFAULT_DEPLOYMENTS
from overair.releases.errors import (
    AppNotFound,
    DeploymentNotFound,
    IdenticalRelease,
    InvalidRelease,
    NameTaken,
    ReleaseNotFound,
    RolloutInProgress,
)
from overair.releases.schemas import (
    AppCreate,
    AppOut,
    DeploymentCreate,
    DeploymentOut,
    Platform,
    PromoteRequest,
    PublishOptions,
    ReleaseOut,
    ReleasePatch,
)
from overair.releases.service import ReleaseService
from overair.selection import Release as Located
from overair.selection import semver
from overair.storage import digest_of

log = logging.getLogger("overair")
T = TypeVar("T")

ROOTS = frozenset(
    {"authenticated", "account", "accessKeys", "sessions", "apps", "user", "api_tokens", "upload"}
)

UNAUTHORIZED = (
    'The session or access key being used is invalid, please run "code-push-standalone login" again. '
    'If you are on an older version of the CLI, you may need to run "code-push-standalone logout" first to '
    "clear the session cache."
)
NOT_SUPPORTED = (
    "Collaborators and app transfers are not supported by overair: every access key manages every app. "
    "Give the person an access key of their own instead (overair access-key create NAME)."
)
NEVER_EXPIRES = 253402300799000  # 9999-12-31T23:59:59Z in ms: what a key without expiry reports
HIDDEN = "(hidden)"
UPLOAD_CHUNK_SIZE = 4 * 1024 * 1024
UPLOAD_MAX_AGE_SECONDS = 24 * 3600

_KEY = re.compile(r"^[A-Za-z0-9_-]{10,100}$")
_LABEL = re.compile(r"^v[1-9][0-9]*$")
_ROLLOUT = re.compile(r"^(100|[1-9][0-9]|[1-9])$")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
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
_CODES = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 409: "Conflict", 413: "TooLarge"}


def handles(path: str) -> bool:
    """True for the paths of the CodePush management API (both dialects)."""
    return path[1:].split("/", 1)[0] in ROOTS


class Refused(Exception):
    """An answer other than success: a status and the reference's text, or its list of invalid fields."""

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        fields: list[dict[str, str]] | None = None,
        as_json: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or json.dumps(fields, separators=(",", ":"))
        self.fields = fields
        self.as_json = as_json


# -- the error table ----------------------------------------------------------------------------------

Text = str | Callable[[Mapping[str, Any]], str]


def _labels(ctx: Mapping[str, Any]) -> list[str]:
    labels: list[str] = ctx["labels"]()
    return labels


def _deployment_taken(ctx: Mapping[str, Any]) -> str:
    if ctx["name"].lower() in (n.lower() for n in ctx["deployment_names"]()):
        return f"A deployment named '{ctx['name']}' already exists."
    return f'The deployment key "{ctx["key"]}" is already used by another deployment.'


def _patch_rollout(ctx: Mapping[str, Any]) -> str:
    if ctx["current_rollout"] >= 100:
        return "Cannot update rollout value for a completed rollout release."
    return f'Rollout value must be greater than "{ctx["current_rollout"]}", the existing value.'


def _promote_refused(ctx: Mapping[str, Any]) -> str:
    if ctx["deployment"].lower() == ctx["destination"].lower():
        return "Cannot promote a deployment's release to the same deployment."
    return (
        f'The release to promote from "{ctx["deployment"]}" is disabled: promote it with --disabled false, '
        "enable it first (patch with --disabled false), or promote another release with --label."
    )


def _rollback_missing(ctx: Mapping[str, Any]) -> str:
    if ctx["label"]:
        return (
            f"Cannot perform rollback because the target release ({ctx['label']}) could not be found in the "
            "deployment history."
        )
    if not _labels(ctx):
        return "Cannot perform rollback because there are no releases on this deployment."
    return "Cannot perform rollback because there are no prior releases to rollback to."


def _rollback_identical(ctx: Mapping[str, Any]) -> str:
    labels = _labels(ctx)
    target = ctx["label"] or (labels[-2] if len(labels) > 1 else "")
    if ctx["label"] and labels and labels[-1] == ctx["label"]:
        return f"Cannot perform rollback because the target release ({target}) is already the latest release."
    return f"Cannot perform rollback because the target release ({target}) has the latest release's contents."


ERRORS: dict[tuple[str, type[Exception]], tuple[int, Text]] = {
    ("*", AppNotFound): (404, 'App "{app}" does not exist.'),
    ("*", DeploymentNotFound): (404, 'Deployment "{deployment}" does not exist.'),
    ("*", PayloadTooLarge): (413, "The provided resource is too large"),
    ("*", InvalidBundle): (400, "{error}"),
    ("app.add", NameTaken): (409, "An app named '{name}' already exists."),
    ("app.rename", NameTaken): (409, "An app named '{name}' already exists."),
    ("deployment.add", NameTaken): (409, _deployment_taken),
    ("deployment.rename", NameTaken): (409, "A deployment named '{name}' already exists."),
    ("key.add", Conflict): (409, 'The access key "{name}" already exists.'),
    ("key.get", NotFound): (404, 'Access key "{key}" does not exist.'),
    ("key.remove", NotFound): (404, 'Access key "{key}" does not exist.'),
    ("key.patch", NotFound): (404, 'The access key "{key}" does not exist.'),
    ("key.patch", Conflict): (409, 'The access key "{name}" already exists.'),
    ("release", RolloutInProgress): (
        409,
        "Please update the previous release to 100% rollout before releasing a new package.",
    ),
    ("release", IdenticalRelease): (
        409,
        "The uploaded package was not released because it is identical to the contents of the specified "
        "deployment's current release.",
    ),
    ("patch", RolloutInProgress): (409, _patch_rollout),
    ("promote", ReleaseNotFound): (404, "Cannot promote from a deployment with no enabled releases."),
    ("promote", RolloutInProgress): (
        409,
        "Cannot promote to an unfinished rollout release unless it is already disabled.",
    ),
    ("promote", IdenticalRelease): (
        409,
        "The uploaded package was not promoted because it is identical to the contents of the targeted "
        "deployment's current release.",
    ),
    ("promote", InvalidRelease): (409, _promote_refused),
    ("rollback", ReleaseNotFound): (404, _rollback_missing),
    ("rollback", IdenticalRelease): (409, _rollback_identical),
}


def translate(operation: str, exc: OverairError | InvalidBundle, ctx: Mapping[str, Any]) -> Refused:
    """The reference's answer to a domain error raised during ``operation`` (see :data:`ERRORS`).

    An error the table does not name keeps overair's message, with 400 for invalid values.
    """
    for cls in type(exc).__mro__:
        entry = ERRORS.get((operation, cls)) or ERRORS.get(("*", cls))
        if entry is not None:
            status, text = entry
            values = {**ctx, "error": exc.message}
            return Refused(status, text(values) if callable(text) else text.format_map(values))
    status = exc.status if isinstance(exc, OverairError) else 400
    return Refused(400 if status == 422 else status, exc.message)


# -- objects on the wire ------------------------------------------------------------------------------


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _js_string(value: Any) -> str:
    """JavaScript's ``String(value)`` for JSON values (what the reference's regex tests see)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def encode_package(release: ReleaseOut, located: Located | None, base: str) -> dict[str, Any]:
    """A release as the reference's Package object (camelCase)."""

    def url(blob_key: str) -> str:
        return f"{base}/v1/blobs/{digest_of(blob_key)}"

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
        "uploadTime": _ms(release.released_at),
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
            "failed": r.failures + r.rollbacks,
            "installed": r.installs,
        }
        for r in history
        if r.downloads or r.installs or r.failures or r.rollbacks or active.get(r.label)
    }


def encode_key(key: AccessKeyOut, secret: str | None = None, *, hidden: bool = False) -> dict[str, Any]:
    """An access key as the reference's AccessKey object (``friendlyName`` is overair's key name)."""
    body: dict[str, Any] = {
        "createdBy": key.created_by,
        "createdTime": _ms(key.created_at),
        "description": key.name,
        "expires": _ms(key.expires_at) if key.expires_at is not None else NEVER_EXPIRES,
        "friendlyName": key.name,
        "id": key.name,
    }
    if secret is not None:
        body["name"] = secret
        del body["id"]
    elif hidden:
        body["name"] = HIDDEN
    return body


def _url_name(caller: str) -> str:
    return quote(caller, safe="")


def _platforms(os_name: Any) -> list[Platform]:
    lowered = str(os_name or "").lower()
    if lowered == "ios":
        return [Platform.IOS]
    if lowered == "android":
        return [Platform.ANDROID]
    return [Platform.IOS, Platform.ANDROID]


# -- validation as the reference does it --------------------------------------------------------------


def _invalid(field: str) -> dict[str, str]:
    return {"field": field, "message": "Field is invalid"}


def _required(field: str) -> dict[str, str]:
    return {"field": field, "message": "Field is required"}


_PACKAGE_FIELDS: dict[str, Callable[[Any], bool]] = {
    "appVersion": lambda v: isinstance(v, str) and semver.valid_range(v) is not None,
    "description": lambda v: isinstance(v, str) and len(v) <= 10_000,
    "label": lambda v: isinstance(v, str) and _LABEL.match(v) is not None,
    "isDisabled": lambda v: isinstance(v, bool),
    "isMandatory": lambda v: isinstance(v, bool),
    "rollout": lambda v: not isinstance(v, dict | list) and _ROLLOUT.match(_js_string(v)) is not None,
}


def validate_package_info(info: Mapping[str, Any], all_optional: bool) -> list[dict[str, str]]:
    """The reference's ``validatePackageInfo``: invalid fields, and ``appVersion`` unless all are optional."""
    errors = []
    for field, valid in _PACKAGE_FIELDS.items():
        value = info.get(field)
        if value is not None:
            if not valid(value):
                errors.append(_invalid(field))
        elif field == "appVersion" and not all_optional:
            errors.append(_required(field))
    return errors


def _rollout(info: Mapping[str, Any]) -> int | None:
    value = info.get("rollout")
    return None if value is None else int(_js_string(value))


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    try:
        return _object(json.loads(body))
    except ValueError as exc:
        raise Refused(400, "The request body is not valid JSON.") from exc


# -- chunked uploads (App Center's upload protocol) -----------------------------------------------------


class Uploads:
    """Uploads in progress, as files in a folder shared by the server's workers; a token guards each."""

    def __init__(self, folder: Path, limit: int) -> None:
        self._folder = folder
        self._limit = limit

    def create(self) -> tuple[str, str]:
        """A new upload's id and token (and old abandoned uploads are swept)."""
        self._folder.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - UPLOAD_MAX_AGE_SECONDS
        for old in self._folder.iterdir():
            if _UPLOAD_ID.match(old.name) and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        upload_id, token = secrets.token_hex(16), secrets.token_urlsafe(32)
        folder = self._folder / upload_id
        folder.mkdir()
        (folder / "token").write_text(hashlib.sha256(token.encode()).hexdigest())
        return upload_id, token

    def _open(self, upload_id: str, token: str) -> Path:
        folder = self._folder / upload_id
        if not _UPLOAD_ID.match(upload_id) or not (folder / "token").is_file():
            raise Refused(404, f'Upload "{upload_id}" does not exist.')
        expected = (folder / "token").read_text()
        if not secrets.compare_digest(expected, hashlib.sha256(token.encode()).hexdigest()):
            raise Refused(401, "The upload token is not valid for this upload.")
        return folder

    def set_metadata(self, upload_id: str, token: str, size: int) -> dict[str, Any]:
        """Record the file's size; answer with the chunk size and the chunk numbers to send."""
        folder = self._open(upload_id, token)
        if size <= 0:
            raise Refused(400, "The upload is empty.")
        if size > self._limit:
            raise Refused(413, "The provided resource is too large")
        (folder / "size").write_text(str(size))
        chunks = -(-size // UPLOAD_CHUNK_SIZE)
        return {
            "error": False,
            "id": upload_id,
            "chunk_size": UPLOAD_CHUNK_SIZE,
            "blob_partitions": 1,
            "chunk_list": list(range(1, chunks + 1)),
            "resume_restart": False,
        }

    def _expected(self, folder: Path) -> tuple[int, int]:
        if not (folder / "size").is_file():
            raise Refused(400, "Set the upload's metadata first.")
        size = int((folder / "size").read_text())
        return size, -(-size // UPLOAD_CHUNK_SIZE)

    def put_chunk(self, upload_id: str, token: str, number: int, data: bytes) -> None:
        """Store chunk ``number`` (1-based)."""
        folder = self._open(upload_id, token)
        size, chunks = self._expected(folder)
        expected = min(UPLOAD_CHUNK_SIZE, size - (number - 1) * UPLOAD_CHUNK_SIZE)
        if not 1 <= number <= chunks or len(data) != expected:
            raise Refused(400, f"Chunk {number} is not part of this upload or has the wrong size.")
        partial = folder / f"chunk-{number:06d}.part"
        partial.write_bytes(data)
        partial.replace(folder / f"chunk-{number:06d}")  # a chunk is there whole or not at all

    def missing(self, upload_id: str, token: str) -> list[int]:
        """Chunk numbers not received yet."""
        folder = self._open(upload_id, token)
        _, chunks = self._expected(folder)
        return [n for n in range(1, chunks + 1) if not (folder / f"chunk-{n:06d}").is_file()]

    def assemble(self, upload_id: str, token: str) -> Path:
        """The uploaded file, put together from its chunks."""
        folder = self._open(upload_id, token)
        if self.missing(upload_id, token):
            raise Refused(400, "The upload is not complete: send every chunk, then finish it.")
        _, chunks = self._expected(folder)
        target = folder / "package.zip"
        with target.open("wb") as out:
            for n in range(1, chunks + 1):
                with (folder / f"chunk-{n:06d}").open("rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        return target

    def discard(self, upload_id: str) -> None:
        """Forget an upload and its files."""
        if _UPLOAD_ID.match(upload_id):
            shutil.rmtree(self._folder / upload_id, ignore_errors=True)


# -- the operations both dialects share -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """A deployment with its releases (oldest first) and where each release's content is served."""

    deployment: DeploymentOut
    history: list[ReleaseOut]
    located: dict[str, Located]

    def package(self, release: ReleaseOut, base: str) -> dict[str, Any]:
        """The release as a Package object."""
        return encode_package(release, self.located.get(release.label), base)

    def latest(self, base: str) -> dict[str, Any] | None:
        """The newest release as a Package object, or None."""
        return self.package(self.history[-1], base) if self.history else None


class Operations:
    """Synchronous reads and writes over the services, run in worker threads by the dialects."""

    def __init__(
        self, releases: ReleaseService, keys: AccessKeyService, metrics: MetricsService | None = None
    ) -> None:
        self.releases = releases
        self.keys = keys
        self.metrics = metrics

    def metrics_of(self, app: str, deployment: str) -> dict[str, dict[str, int]]:
        """The reference's per-label metrics of a deployment, active devices included."""
        view = self.view(app, deployment)
        active = self.metrics.active_devices(app, deployment) if self.metrics else {}
        return encode_metrics(view.history, active)

    def view(self, app: str, deployment: str) -> DeploymentView:
        """A deployment, its history and the blob keys of its releases."""
        history = self.releases.history(app, deployment)
        found = next(
            (d for d in self.releases.list_deployments(app) if d.name.lower() == deployment.lower()), None
        )
        if found is None:
            raise DeploymentNotFound(f'Deployment "{deployment}" does not exist.')
        snapshot = self.releases.device_snapshot(found.key)
        located = {r.label: r for r in snapshot.releases} if snapshot else {}
        return DeploymentView(found, history, located)

    def views(self, app: str) -> list[DeploymentView]:
        """Every deployment of the app, by name."""
        deployments = sorted(self.releases.list_deployments(app), key=lambda d: d.name)
        return [self.view(app, d.name) for d in deployments]

    def labels(self, app: str, deployment: str) -> Callable[[], list[str]]:
        """A lazy read of the deployment's labels, oldest first (for choosing an error's text)."""
        return lambda: [r.label for r in self.releases.history(app, deployment)]

    def deployment_names(self, app: str) -> Callable[[], list[str]]:
        """A lazy read of the app's deployment names."""
        return lambda: [d.name for d in self.releases.list_deployments(app)]

    def publish_and_view(
        self, app: str, deployment: str, archive: Path, options: PublishOptions, caller: str
    ) -> tuple[ReleaseOut, DeploymentView]:
        """Publish, then read where the new release is served."""
        release = self.releases.publish(app, deployment, archive, options, caller)
        return release, self.view(app, deployment)

    def then_view(
        self, app: str, deployment: str, act: Callable[[], ReleaseOut]
    ) -> tuple[ReleaseOut, DeploymentView]:
        """Run a release operation, then read where its release is served."""
        release = act()
        return release, self.view(app, deployment)


@dataclass(frozen=True, slots=True)
class PatchPlan:
    """What a CodePush patch asks to change on one release (an empty ``changes``: nothing)."""

    release: ReleaseOut
    changes: dict[str, Any]


def plan_patch(history: list[ReleaseOut], info: Mapping[str, Any]) -> PatchPlan:
    """The reference's patch semantics: only fields that differ, ``description``/``appVersion`` if truthy."""
    if not history:
        raise Refused(404, "Deployment has no releases.")
    label = info.get("label")
    release = next((r for r in reversed(history) if r.label == label), None) if label else history[-1]
    if release is None:
        raise Refused(404, "Release not found for given label.")
    changes: dict[str, Any] = {}
    if info.get("isDisabled") is not None and info["isDisabled"] != release.disabled:
        changes["disabled"] = info["isDisabled"]
    if info.get("isMandatory") is not None and info["isMandatory"] != release.mandatory:
        changes["mandatory"] = info["isMandatory"]
    if info.get("description") and info["description"] != release.description:
        changes["description"] = info["description"]
    rollout = _rollout(info)
    if rollout is not None and rollout != release.rollout:
        changes["rollout"] = rollout
    if info.get("appVersion") and info["appVersion"] != release.target_version:
        changes["target_version"] = info["appVersion"]
    return PatchPlan(release, changes)


# -- the ASGI app -------------------------------------------------------------------------------------

Handler = Callable[[Request, str], Awaitable[Response]]


class CodePushManagement:
    """The ASGI app behind :data:`ROOTS`: the standalone and App Center dialects, and chunked uploads."""

    def __init__(
        self,
        releases: ReleaseService,
        keys: AccessKeyService,
        public_url: str,
        max_upload_bytes: int,
        upload_folder: Path,
        metrics: MetricsService | None = None,
    ) -> None:
        self.ops = Operations(releases, keys, metrics)
        self.keys = keys
        self.public_url = public_url
        self.max_upload_bytes = max_upload_bytes
        self.uploads = Uploads(upload_folder, max_upload_bytes)
        self.standalone = Router(self._standalone_routes(), redirect_slashes=False)
        self.appcenter = Router(self._appcenter_routes(), redirect_slashes=False)
        self.upload_router = Router(self._upload_routes(), redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):  # express routes ignore one trailing slash; the SDKs send it
            scope = {**scope, "path": path[:-1]}
        if scope["path"].startswith("/upload/"):
            router = self.upload_router
        elif header(scope, b"x-api-token") is not None and header(scope, b"authorization") is None:
            router = self.appcenter
        else:
            router = self.standalone
        try:
            await router(scope, receive, send)
        except Exception:
            log.exception("CodePush management request failed: %s %s", scope["method"], path)
            await send_bytes(send, 500, b"Internal Server Error", [(b"content-type", b"text/plain")])

    # -- plumbing -------------------------------------------------------------------------------------

    def base(self, request: Request) -> str:
        """Base URL of download links."""
        return self.public_url or base_url(request.scope)

    async def call(self, operation: str, ctx: Mapping[str, Any], fn: Callable[..., T], *args: Any) -> T:
        """Run a service call in a worker thread; translate its domain errors (:func:`translate`)."""

        def run() -> T:
            try:
                return fn(*args)
            except (OverairError, InvalidBundle) as exc:
                raise translate(operation, exc, ctx) from exc

        return await anyio.to_thread.run_sync(run)

    async def caller(self, token: str) -> str:
        """The key's name, or a 401 refusal."""
        if not _KEY.match(token):
            raise Refused(401, UNAUTHORIZED)
        try:
            return await anyio.to_thread.run_sync(self.keys.verify, token)
        except Unauthorized as exc:
            raise Refused(401, UNAUTHORIZED) from exc

    def _endpoint(self, handler: Handler, appcenter: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if appcenter:
                    token = request.headers.get("x-api-token", "").strip()
                else:
                    scheme, _, token = request.headers.get("authorization", "").partition(" ")
                    token = token.strip() if scheme.lower() == "bearer" else ""
                return await handler(request, await self.caller(token))
            except ValidationError as exc:  # a value the reference accepts but overair's schema does not
                refusal = Refused(400, f"Invalid value: {exc.errors()[0]['msg']}")
            except Refused as refused:
                refusal = refused
            return _appcenter_refusal(refusal) if appcenter else _standalone_refusal(refusal)

        return endpoint

    async def _receive_file(self, request: Request, field: str) -> tuple[Path, dict[str, Any]]:
        """Read a multipart upload: the file ``field`` into a temporary file, the other fields as text."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_upload_bytes:
            raise Refused(413, "The provided resource is too large")
        try:
            form = await request.form(max_files=1, max_fields=20)
        except Exception as exc:  # malformed multipart bodies raise several exception types
            raise Refused(400, "A deployment package must include a file.") from exc
        try:
            upload = form.get(field)
            if not isinstance(upload, UploadFile):
                raise Refused(400, "A deployment package must include a file.")
            fd, name = tempfile.mkstemp(prefix="overair-codepush-", suffix=".zip")
            target = Path(name)
            copied = 0
            try:
                with open(fd, "wb") as out:
                    await upload.seek(0)
                    while chunk := await upload.read(1024 * 1024):
                        copied += len(chunk)
                        if copied > self.max_upload_bytes:
                            raise Refused(413, "The provided resource is too large")
                        out.write(chunk)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        finally:
            await form.close()
        return target, fields

    # -- standalone dialect ---------------------------------------------------------------------------

    def _standalone_routes(self) -> list[Route]:
        def route(path: str, handler: Handler, *methods: str) -> Route:
            return Route(path, self._endpoint(handler, appcenter=False), methods=list(methods))

        app = "/apps/{app}"
        dep = app + "/deployments/{deployment}"
        return [
            route("/authenticated", self.authenticated, "GET"),
            route("/account", self.account, "GET"),
            route("/accessKeys", self.list_keys, "GET"),
            route("/accessKeys", self.add_key, "POST"),
            route("/accessKeys/{key}", self.get_key, "GET"),
            route("/accessKeys/{key}", self.patch_key, "PATCH"),
            route("/accessKeys/{key}", self.remove_key, "DELETE"),
            route("/sessions/{machine}", self.remove_sessions, "DELETE"),
            route("/apps", self.list_apps, "GET"),
            route("/apps", self.add_app, "POST"),
            route(app, self.get_app, "GET"),
            route(app, self.rename_app, "PATCH"),
            route(app, self.remove_app, "DELETE"),
            route(app + "/transfer/{email}", self.not_supported, "POST"),
            route(app + "/collaborators", self.collaborators, "GET"),
            route(app + "/collaborators/{email}", self.not_supported, "POST", "DELETE"),
            route(app + "/deployments", self.list_deployments, "GET"),
            route(app + "/deployments", self.add_deployment, "POST"),
            route(dep, self.get_deployment, "GET"),
            route(dep, self.rename_deployment, "PATCH"),
            route(dep, self.remove_deployment, "DELETE"),
            route(dep + "/release", self.release, "POST"),
            route(dep + "/release", self.patch_release, "PATCH"),
            route(dep + "/history", self.history, "GET"),
            route(dep + "/history", self.clear_history, "DELETE"),
            route(dep + "/metrics", self.metrics, "GET"),
            route(dep + "/promote/{destination}", self.promote, "POST"),
            route(dep + "/rollback", self.rollback, "POST"),
            route(dep + "/rollback/{label}", self.rollback, "POST"),
        ]

    async def authenticated(self, _request: Request, _caller: str) -> Response:
        """``GET /authenticated``."""
        return JSONResponse({"authenticated": True})

    async def account(self, _request: Request, caller: str) -> Response:
        """``GET /account``: the key's name stands for the account's name and e-mail."""
        return JSONResponse({"account": {"email": caller, "linkedProviders": [], "name": caller}})

    async def list_keys(self, _request: Request, _caller: str) -> Response:
        """``GET /accessKeys``: oldest first, secrets hidden."""
        keys = await anyio.to_thread.run_sync(self.keys.list)
        keys.sort(key=lambda k: k.created_at)
        return JSONResponse({"accessKeys": [encode_key(k, hidden=True) for k in keys]})

    async def add_key(self, request: Request, caller: str) -> Response:
        """``POST /accessKeys``: the secret is in ``name``, this once; ``ttl`` (ms) sets when it expires."""
        body = await _json(request)
        name = body.get("friendlyName") or body.get("description")
        errors = _key_errors(name, body.get("ttl"), update=False)
        if errors:
            raise Refused(400, fields=errors, as_json=True)
        created_by = body.get("createdBy") if isinstance(body.get("createdBy"), str) else caller
        ttl = body.get("ttl")
        lifetime = dt.timedelta(milliseconds=ttl) if ttl else None
        created = await self.call(
            "key.add", {"name": name}, self.keys.create, name, created_by or caller, lifetime
        )
        key = encode_key(created, created.key)
        headers = {"Location": "/accessKeys/" + quote(str(name), safe="")}
        return JSONResponse({"accessKey": key}, status_code=201, headers=headers)

    async def get_key(self, request: Request, _caller: str) -> Response:
        """``GET /accessKeys/<friendlyName>``."""
        name = request.path_params["key"]
        key = await self.call("key.get", {"key": name}, self.keys.get, name)
        return JSONResponse({"accessKey": encode_key(key)})

    async def patch_key(self, request: Request, _caller: str) -> Response:
        """``PATCH /accessKeys/<friendlyName>``: rename; a ``ttl`` (ms) makes it expire that long from now."""
        name = request.path_params["key"]
        body = await _json(request)
        new_name = body.get("friendlyName")
        errors = _key_errors(new_name, body.get("ttl"), update=True)
        if errors:
            raise Refused(400, fields=errors, as_json=True)
        ctx = {"key": name, "name": new_name}
        if new_name:
            key = await self.call("key.patch", ctx, self.keys.rename, name, new_name)
        else:
            key = await self.call("key.patch", ctx, self.keys.get, name)
        ttl = body.get("ttl")
        if ttl:
            lifetime = dt.timedelta(milliseconds=ttl)
            key = await self.call("key.patch", ctx, self.keys.set_expiry, key.name, lifetime)
        return JSONResponse({"accessKey": encode_key(key)})

    async def remove_key(self, request: Request, _caller: str) -> Response:
        """``DELETE /accessKeys/<friendlyName>``."""
        name = request.path_params["key"]
        await self.call("key.remove", {"key": name}, self.keys.revoke, name)
        return Response(status_code=204)

    async def remove_sessions(self, request: Request, _caller: str) -> Response:
        """``DELETE /sessions/<machine>``: overair has no login sessions, only access keys."""
        raise Refused(404, f'There are no sessions associated with "{request.path_params["machine"]}."')

    def _app(self, app: AppOut, caller: str) -> dict[str, Any]:
        return {
            "collaborators": {caller: {"isCurrentAccount": True, "permission": "Owner"}},
            "deployments": sorted(d.name for d in app.deployments),
            "name": app.name,
        }

    async def list_apps(self, _request: Request, caller: str) -> Response:
        """``GET /apps``."""
        apps = await anyio.to_thread.run_sync(self.ops.releases.list_apps)
        return JSONResponse({"apps": [self._app(a, caller) for a in apps]})

    async def add_app(self, request: Request, caller: str) -> Response:
        """``POST /apps``: with Production and Staging unless ``manuallyProvisionDeployments``."""
        body = await _json(request)
        spec = _app_spec(body.get("name"), body.get("os"))
        deployments = () if body.get("manuallyProvisionDeployments") else DEFAULT_DEPLOYMENTS
        app = await self.call("app.add", {"name": spec.name}, self.ops.releases.create_app, spec, deployments)
        headers = {"Location": "/apps/" + quote(app.name, safe="")}
        return JSONResponse({"app": self._app(app, caller)}, status_code=201, headers=headers)

    async def get_app(self, request: Request, caller: str) -> Response:
        """``GET /apps/<app>``."""
        name = request.path_params["app"]
        app = await self.call("app.get", {"app": name}, self.ops.releases.get_app, name)
        return JSONResponse({"app": self._app(app, caller)})

    async def rename_app(self, request: Request, caller: str) -> Response:
        """``PATCH /apps/<app>`` with ``{"name"}``."""
        name = request.path_params["app"]
        new_name = (await _json(request)).get("name")
        ctx = {"app": name, "name": new_name}
        if new_name is None:
            app = await self.call("app.rename", ctx, self.ops.releases.get_app, name)
        else:
            spec = _app_spec(new_name, None)
            app = await self.call("app.rename", ctx, self.ops.releases.rename_app, name, spec.name)
        return JSONResponse({"app": self._app(app, caller)})

    async def remove_app(self, request: Request, _caller: str) -> Response:
        """``DELETE /apps/<app>``."""
        name = request.path_params["app"]
        await self.call("app.remove", {"app": name}, self.ops.releases.remove_app, name)
        return Response(status_code=204)

    async def not_supported(self, _request: Request, _caller: str) -> Response:
        """Collaborators and transfers: overair has no accounts to share apps between."""
        raise Refused(400, NOT_SUPPORTED)

    async def collaborators(self, request: Request, caller: str) -> Response:
        """``GET /apps/<app>/collaborators``: the caller, as Owner."""
        name = request.path_params["app"]
        await self.call("app.get", {"app": name}, self.ops.releases.get_app, name)
        return JSONResponse({"collaborators": {caller: {"isCurrentAccount": True, "permission": "Owner"}}})

    async def list_deployments(self, request: Request, _caller: str) -> Response:
        """``GET /apps/<app>/deployments``: by name, each with its newest release or null."""
        name = request.path_params["app"]
        views = await self.call("deployment.list", {"app": name}, self.ops.views, name)
        base = self.base(request)
        deployments = [
            {"name": v.deployment.name, "key": v.deployment.key, "package": v.latest(base)} for v in views
        ]
        return JSONResponse({"deployments": deployments})

    async def add_deployment(self, request: Request, _caller: str) -> Response:
        """``POST /apps/<app>/deployments`` with ``{"name", "key"?}``."""
        app = request.path_params["app"]
        body = await _json(request)
        spec = _deployment_spec(body.get("name"), body.get("key"))
        ctx = {
            "app": app,
            "name": spec.name,
            "key": spec.key,
            "deployment_names": self.ops.deployment_names(app),
        }
        created = await self.call("deployment.add", ctx, self.ops.releases.add_deployment, app, spec)
        headers = {"Location": f"/apps/{quote(app, safe='')}/deployments/{quote(created.name, safe='')}"}
        return JSONResponse(
            {"deployment": {"name": created.name, "key": created.key}}, status_code=201, headers=headers
        )

    async def get_deployment(self, request: Request, _caller: str) -> Response:
        """``GET /apps/<app>/deployments/<deployment>``."""
        view = await self._view(request)
        return JSONResponse({"deployment": self._deployment(view, request)})

    def _deployment(self, view: DeploymentView, request: Request) -> dict[str, Any]:
        return {
            "name": view.deployment.name,
            "key": view.deployment.key,
            "package": view.latest(self.base(request)),
        }

    async def _view(self, request: Request, operation: str = "deployment.get") -> DeploymentView:
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        return await self.call(operation, request.path_params, self.ops.view, app, deployment)

    async def rename_deployment(self, request: Request, _caller: str) -> Response:
        """``PATCH /apps/<app>/deployments/<deployment>`` with ``{"name"}``."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        new_name = (await _json(request)).get("name")
        if new_name is not None and new_name != deployment:
            spec = _deployment_spec(new_name, None)
            ctx = {**request.path_params, "name": spec.name}
            renamed = await self.call(
                "deployment.rename", ctx, self.ops.releases.rename_deployment, app, deployment, spec.name
            )
            deployment = renamed.name
        view = await self.call("deployment.get", request.path_params, self.ops.view, app, deployment)
        return JSONResponse({"deployment": self._deployment(view, request)})

    async def remove_deployment(self, request: Request, _caller: str) -> Response:
        """``DELETE /apps/<app>/deployments/<deployment>``."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        await self.call(
            "deployment.remove", request.path_params, self.ops.releases.remove_deployment, app, deployment
        )
        return Response(status_code=204)

    async def release(self, request: Request, caller: str) -> Response:
        """``POST …/release``: multipart ``package`` (a zip) and ``packageInfo`` (JSON)."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        archive, fields = await self._receive_file(request, "package")
        try:
            try:
                info = _object(json.loads(fields.get("packageInfo", "")))
            except ValueError:
                info = {}
            errors = validate_package_info(info, all_optional=False)
            if errors:
                raise Refused(400, fields=errors)
            options = PublishOptions(
                target_version=info["appVersion"],
                rollout=_rollout(info) or 100,
                mandatory=bool(info.get("isMandatory")),
                disabled=bool(info.get("isDisabled")),
                description=info.get("description") or "",
            )
            release, view = await self.call(
                "release",
                request.path_params,
                self.ops.publish_and_view,
                app,
                deployment,
                archive,
                options,
                caller,
            )
        finally:
            archive.unlink(missing_ok=True)
        headers = {"Location": f"/apps/{quote(app, safe='')}/deployments/{quote(deployment, safe='')}"}
        package = view.package(release, self.base(request))
        return JSONResponse({"package": package}, status_code=201, headers=headers)

    async def patch_release(self, request: Request, _caller: str) -> Response:
        """``PATCH …/release`` with ``{"packageInfo": {label?, …}}``: 204 when nothing changes."""
        info = _object((await _json(request)).get("packageInfo"))
        errors = validate_package_info(info, all_optional=True)
        if errors:
            raise Refused(400, fields=errors)
        view = await self._view(request, "patch")
        changed = await self._patch(request, view, info)
        if changed is None:
            return Response(status_code=204)
        return JSONResponse({"package": view.package(changed, self.base(request))})

    async def _patch(
        self, request: Request, view: DeploymentView, info: Mapping[str, Any]
    ) -> ReleaseOut | None:
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        plan = plan_patch(view.history, info)
        if not plan.changes:
            return None
        patch = ReleasePatch(label=plan.release.label, **plan.changes)
        ctx = {**request.path_params, "current_rollout": plan.release.rollout}
        return await self.call("patch", ctx, self.ops.releases.patch, app, deployment, patch)

    async def history(self, request: Request, _caller: str) -> Response:
        """``GET …/history``: oldest first."""
        view = await self._view(request)
        base = self.base(request)
        return JSONResponse({"history": [view.package(r, base) for r in view.history]})

    async def clear_history(self, request: Request, _caller: str) -> Response:
        """``DELETE …/history``: every release goes; the next one is v1 again."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        await self.call(
            "history.clear", request.path_params, self.ops.releases.clear_history, app, deployment
        )
        return Response(status_code=204)

    async def metrics(self, request: Request, _caller: str) -> Response:
        """``GET …/metrics``: ``{label: {active, downloaded, failed, installed}}``."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        found = await self.call("deployment.get", request.path_params, self.ops.metrics_of, app, deployment)
        return JSONResponse({"metrics": found})

    def _promote_request(self, request: Request, info: Mapping[str, Any]) -> PromoteRequest:
        return PromoteRequest(
            source=request.path_params["deployment"],
            destination=request.path_params["destination"],
            label=info.get("label") or None,
            rollout=_rollout(info),
            mandatory=info.get("isMandatory"),
            disabled=info.get("isDisabled"),
            description=info.get("description") or None,
            target_version=info.get("appVersion") or None,
        )

    async def _promote(
        self, request: Request, caller: str, info: Mapping[str, Any]
    ) -> tuple[ReleaseOut, DeploymentView]:
        app, destination = request.path_params["app"], request.path_params["destination"]
        spec = self._promote_request(request, info)
        ctx = {**request.path_params}

        def act() -> ReleaseOut:
            return self.ops.releases.promote(app, spec, caller)

        return await self.call("promote", ctx, self.ops.then_view, app, destination, act)

    async def promote(self, request: Request, caller: str) -> Response:
        """``POST …/<source>/promote/<destination>`` with ``{"packageInfo": {label?, …}}``."""
        info = _object((await _json(request)).get("packageInfo"))
        errors = validate_package_info(info, all_optional=True)
        if errors:
            raise Refused(400, fields=errors)
        release, view = await self._promote(request, caller, info)
        app, destination = request.path_params["app"], request.path_params["destination"]
        headers = {"Location": f"/apps/{quote(app, safe='')}/deployments/{quote(destination, safe='')}"}
        return JSONResponse(
            {"package": view.package(release, self.base(request))}, status_code=201, headers=headers
        )

    async def _rollback(
        self, request: Request, caller: str, label: str | None
    ) -> tuple[ReleaseOut, DeploymentView]:
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        ctx = {**request.path_params, "label": label, "labels": self.ops.labels(app, deployment)}

        def act() -> ReleaseOut:
            return self.ops.releases.rollback(app, deployment, label, caller)

        return await self.call("rollback", ctx, self.ops.then_view, app, deployment, act)

    async def rollback(self, request: Request, caller: str) -> Response:
        """``POST …/rollback[/<label>]``: the older content comes back as a new label."""
        release, view = await self._rollback(request, caller, request.path_params.get("label") or None)
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        headers = {"Location": f"/apps/{quote(app, safe='')}/deployments/{quote(deployment, safe='')}"}
        return JSONResponse(
            {"package": view.package(release, self.base(request))}, status_code=201, headers=headers
        )

    # -- App Center dialect (code-push-cli 3.0.0) -----------------------------------------------------

    def _appcenter_routes(self) -> list[Route]:
        def route(path: str, handler: Handler, *methods: str) -> Route:
            return Route(path, self._endpoint(handler, appcenter=True), methods=list(methods))

        app = "/apps/{owner}/{app}"
        dep = app + "/deployments/{deployment}"
        return [
            route("/user", self.ac_user, "GET"),
            route("/api_tokens", self.ac_list_tokens, "GET"),
            route("/api_tokens", self.ac_add_token, "POST"),
            route("/api_tokens/{key}", self.ac_remove_token, "DELETE"),
            route("/apps", self.ac_list_apps, "GET"),
            route("/apps", self.ac_add_app, "POST"),
            route(app, self.ac_get_app, "GET"),
            route(app, self.ac_rename_app, "PATCH"),
            route(app, self.remove_app, "DELETE"),
            route(app + "/users", self.ac_users, "GET"),
            route(app + "/invitations", self.not_supported, "POST"),
            route(app + "/invitations/{email}", self.not_supported, "DELETE"),
            route(app + "/transfer/{org}", self.not_supported, "POST"),
            route(app + "/deployments", self.ac_list_deployments, "GET"),
            route(app + "/deployments", self.ac_add_deployment, "POST"),
            route(dep, self.ac_get_deployment, "GET"),
            route(dep, self.ac_rename_deployment, "PATCH"),
            route(dep, self.remove_deployment, "DELETE"),
            route(dep + "/releases", self.ac_history, "GET"),
            route(dep + "/releases", self.ac_release, "POST"),
            route(dep + "/releases", self.clear_history, "DELETE"),
            route(dep + "/releases/{label}", self.ac_patch_release, "PATCH"),
            route(dep + "/uploads", self.ac_start_upload, "POST"),
            route(dep + "/promote_release/{destination}", self.ac_promote, "POST"),
            route(dep + "/rollback_release", self.ac_rollback, "POST"),
            route(dep + "/metrics", self.ac_metrics, "GET"),
        ]

    def _ac_user(self, caller: str) -> dict[str, Any]:
        return {"id": caller, "name": _url_name(caller), "display_name": caller, "email": caller}

    def _ac_app(self, app: AppOut, caller: str) -> dict[str, Any]:
        return {
            "id": app.name,
            "name": app.name,
            "display_name": app.name,
            "os": "iOS" if Platform.IOS in app.platforms else "Android",
            "platform": "React-Native",
            "owner": {**self._ac_user(caller), "type": "user"},
        }

    def _ac_deployment(self, view: DeploymentView, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {"name": view.deployment.name, "key": view.deployment.key}
        latest = view.latest(self.base(request))
        if latest is not None:
            body["latest_release"] = snake_package(latest)
        return body

    async def ac_user(self, _request: Request, caller: str) -> Response:
        """``GET /user``: the key's name stands for the user."""
        return JSONResponse(self._ac_user(caller))

    def _ac_token(self, key: AccessKeyOut) -> dict[str, Any]:
        return {
            "id": key.name,
            "description": key.name,
            "created_at": key.created_at.isoformat(),
            "scope": ["all"],
        }

    async def ac_list_tokens(self, _request: Request, _caller: str) -> Response:
        """``GET /api_tokens``."""
        keys = await anyio.to_thread.run_sync(self.keys.list)
        return JSONResponse([self._ac_token(k) for k in keys])

    async def ac_add_token(self, request: Request, caller: str) -> Response:
        """``POST /api_tokens`` with ``{"description"}``: the key is in ``api_token``, this once."""
        name = (await _json(request)).get("description")
        errors = _key_errors(name, None, update=False)
        if errors:
            raise Refused(400, fields=errors)
        created = await self.call("key.add", {"name": name}, self.keys.create, name, caller)
        return JSONResponse({**self._ac_token(created), "api_token": created.key}, status_code=201)

    async def ac_remove_token(self, request: Request, _caller: str) -> Response:
        """``DELETE /api_tokens/<id>`` (the id is the key's name)."""
        return await self.remove_key(request, _caller)

    async def ac_list_apps(self, _request: Request, caller: str) -> Response:
        """``GET /apps``."""
        apps = await anyio.to_thread.run_sync(self.ops.releases.list_apps)
        return JSONResponse([self._ac_app(a, caller) for a in apps])

    async def ac_add_app(self, request: Request, caller: str) -> Response:
        """``POST /apps`` with ``{"display_name", "os", "platform"}``; the CLI adds the deployments itself."""
        body = await _json(request)
        spec = _app_spec(body.get("display_name") or body.get("name"), body.get("os"))
        app = await self.call("app.add", {"name": spec.name}, self.ops.releases.create_app, spec, ())
        return JSONResponse(self._ac_app(app, caller), status_code=201)

    async def ac_get_app(self, request: Request, caller: str) -> Response:
        """``GET /apps/<owner>/<app>``."""
        name = request.path_params["app"]
        app = await self.call("app.get", {"app": name}, self.ops.releases.get_app, name)
        return JSONResponse(self._ac_app(app, caller))

    async def ac_rename_app(self, request: Request, caller: str) -> Response:
        """``PATCH /apps/<owner>/<app>`` with ``{"name", "display_name"?}``."""
        name = request.path_params["app"]
        body = await _json(request)
        new_name = body.get("name") or body.get("display_name")
        spec = _app_spec(new_name, None)
        ctx = {"app": name, "name": spec.name}
        app = await self.call("app.rename", ctx, self.ops.releases.rename_app, name, spec.name)
        return JSONResponse(self._ac_app(app, caller))

    async def ac_users(self, request: Request, caller: str) -> Response:
        """``GET /apps/<owner>/<app>/users``: the caller, as manager (shown as Owner by the CLI)."""
        name = request.path_params["app"]
        await self.call("app.get", {"app": name}, self.ops.releases.get_app, name)
        return JSONResponse([{**self._ac_user(caller), "permissions": ["manager"]}])

    async def ac_list_deployments(self, request: Request, _caller: str) -> Response:
        """``GET /apps/<owner>/<app>/deployments``."""
        name = request.path_params["app"]
        views = await self.call("deployment.list", {"app": name}, self.ops.views, name)
        return JSONResponse([self._ac_deployment(v, request) for v in views])

    async def ac_add_deployment(self, request: Request, _caller: str) -> Response:
        """``POST /apps/<owner>/<app>/deployments`` with ``{"name", "key"?}``."""
        app = request.path_params["app"]
        body = await _json(request)
        spec = _deployment_spec(body.get("name"), body.get("key"))
        ctx = {
            "app": app,
            "name": spec.name,
            "key": spec.key,
            "deployment_names": self.ops.deployment_names(app),
        }
        created = await self.call("deployment.add", ctx, self.ops.releases.add_deployment, app, spec)
        return JSONResponse({"name": created.name, "key": created.key}, status_code=201)

    async def ac_get_deployment(self, request: Request, _caller: str) -> Response:
        """``GET /apps/<owner>/<app>/deployments/<deployment>``."""
        view = await self._view(request)
        return JSONResponse(self._ac_deployment(view, request))

    async def ac_rename_deployment(self, request: Request, _caller: str) -> Response:
        """``PATCH /apps/<owner>/<app>/deployments/<deployment>`` with ``{"name"}``."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        spec = _deployment_spec((await _json(request)).get("name"), None)
        ctx = {**request.path_params, "name": spec.name}
        await self.call(
            "deployment.rename", ctx, self.ops.releases.rename_deployment, app, deployment, spec.name
        )
        view = await self.call("deployment.get", ctx, self.ops.view, app, spec.name)
        return JSONResponse(self._ac_deployment(view, request))

    async def ac_history(self, request: Request, _caller: str) -> Response:
        """``GET …/releases``: oldest first."""
        view = await self._view(request)
        base = self.base(request)
        return JSONResponse([snake_package(view.package(r, base)) for r in view.history])

    async def ac_metrics(self, request: Request, _caller: str) -> Response:
        """``GET …/metrics``: ``[{label, active, downloaded, failed, installed}]``."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        found = await self.call("deployment.get", request.path_params, self.ops.metrics_of, app, deployment)
        return JSONResponse([{"label": label, **counts} for label, counts in found.items()])

    async def ac_start_upload(self, request: Request, _caller: str) -> Response:
        """``POST …/uploads``: where and with which token to send the package (``/upload/…`` here)."""
        await self._view(request)
        upload_id, token = await anyio.to_thread.run_sync(self.uploads.create)
        body = {
            "id": upload_id,
            "package_asset_id": upload_id,
            "upload_domain": self.base(request),
            "token": token,
        }
        return JSONResponse(body, status_code=201)

    async def ac_release(self, request: Request, caller: str) -> Response:
        """``POST …/releases`` naming a finished upload, with the release's properties."""
        app, deployment = request.path_params["app"], request.path_params["deployment"]
        body = await _json(request)
        upload = _object(body.get("release_upload"))
        upload_id, token = str(upload.get("id", "")), str(upload.get("token", ""))
        info = {
            "appVersion": body.get("target_binary_version"),
            "description": body.get("description"),
            "isDisabled": body.get("disabled"),
            "isMandatory": body.get("mandatory"),
            "rollout": body.get("rollout"),
        }
        errors = validate_package_info(info, all_optional=False)
        if errors:
            raise Refused(400, fields=errors)
        archive = await anyio.to_thread.run_sync(self.uploads.assemble, upload_id, token)
        options = PublishOptions(
            target_version=info["appVersion"],
            rollout=_rollout(info) or 100,
            mandatory=bool(info["isMandatory"]),
            disabled=bool(info["isDisabled"]),
            description=info["description"] or "",
        )
        try:
            release, view = await self.call(
                "release",
                request.path_params,
                self.ops.publish_and_view,
                app,
                deployment,
                archive,
                options,
                caller,
            )
        finally:
            await anyio.to_thread.run_sync(self.uploads.discard, upload_id)
        return JSONResponse(snake_package(view.package(release, self.base(request))), status_code=201)

    @staticmethod
    def _ac_info(body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "appVersion": body.get("target_binary_range"),
            "description": body.get("description"),
            "isDisabled": body.get("is_disabled"),
            "isMandatory": body.get("is_mandatory"),
            "label": body.get("label"),
            "rollout": body.get("rollout"),
        }

    async def ac_patch_release(self, request: Request, _caller: str) -> Response:
        """``PATCH …/releases/<label>`` (without ``--label`` the CLI sends ``null``: the newest release)."""
        info = self._ac_info(await _json(request))
        label = request.path_params["label"]
        info["label"] = None if label in ("null", "undefined") else label
        errors = validate_package_info(info, all_optional=True)
        if errors:
            raise Refused(400, fields=errors)
        view = await self._view(request, "patch")
        changed = await self._patch(request, view, info)
        if changed is None:
            return Response(status_code=204)
        return JSONResponse(snake_package(view.package(changed, self.base(request))))

    async def ac_promote(self, request: Request, caller: str) -> Response:
        """``POST …/<source>/promote_release/<destination>``."""
        info = self._ac_info(await _json(request))
        errors = validate_package_info(info, all_optional=True)
        if errors:
            raise Refused(400, fields=errors)
        release, view = await self._promote(request, caller, info)
        return JSONResponse(snake_package(view.package(release, self.base(request))), status_code=201)

    async def ac_rollback(self, request: Request, caller: str) -> Response:
        """``POST …/rollback_release`` with ``{"label"?}``."""
        label = (await _json(request)).get("label")
        release, view = await self._rollback(request, caller, str(label) if label else None)
        return JSONResponse(snake_package(view.package(release, self.base(request))), status_code=201)

    # -- App Center's chunked upload protocol -----------------------------------------------------------

    def _upload_routes(self) -> list[Route]:
        return [
            Route("/upload/set_metadata/{id}", self.upload_metadata, methods=["POST"]),
            Route("/upload/upload_chunk/{id}", self.upload_chunk, methods=["POST"]),
            Route("/upload/finished/{id}", self.upload_finished, methods=["POST"]),
            Route("/upload/cancel/{id}", self.upload_cancel, methods=["POST"]),
        ]

    async def _upload_call(self, fn: Callable[..., T], *args: Any) -> T | Response:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except Refused as refusal:
            return JSONResponse({"error": True, "message": refusal.message}, status_code=refusal.status)

    async def upload_metadata(self, request: Request) -> Response:
        """``POST /upload/set_metadata/<id>?file_name&file_Size&token``."""
        query = request.query_params
        size = query.get("file_Size") or query.get("file_size") or ""
        if not size.isdigit():
            return JSONResponse({"error": True, "message": "file_size is required."}, status_code=400)
        result = await self._upload_call(
            self.uploads.set_metadata, request.path_params["id"], query.get("token", ""), int(size)
        )
        return result if isinstance(result, Response) else JSONResponse(result)

    async def upload_chunk(self, request: Request) -> Response:
        """``POST /upload/upload_chunk/<id>?block_number&token`` with the chunk as the body."""
        number = request.query_params.get("block_number", "")
        if not number.isdigit():
            return JSONResponse({"error": True, "message": "block_number is required."}, status_code=400)
        data = bytearray()
        async for piece in request.stream():
            data.extend(piece)
            if len(data) > UPLOAD_CHUNK_SIZE:
                return JSONResponse({"error": True, "message": "The chunk is too large."}, status_code=413)
        result = await self._upload_call(
            self.uploads.put_chunk,
            request.path_params["id"],
            request.query_params.get("token", ""),
            int(number),
            bytes(data),
        )
        if isinstance(result, Response):
            return result
        return JSONResponse({"error": False, "chunk_num": int(number), "error_code": "None"})

    async def upload_finished(self, request: Request) -> Response:
        """``POST /upload/finished/<id>?token``: done, or the chunks still missing."""
        upload_id = request.path_params["id"]
        missing = await self._upload_call(
            self.uploads.missing, upload_id, request.query_params.get("token", "")
        )
        if isinstance(missing, Response):
            return missing
        if missing:
            return JSONResponse({"error": True, "state": "Missing", "missing_chunks": missing})
        location = f"{self.base(request)}/upload/{upload_id}"
        return JSONResponse(
            {
                "error": False,
                "state": "Done",
                "message": "Upload completed",
                "location": location,
                "absolute_uri": location,
            }
        )

    async def upload_cancel(self, request: Request) -> Response:
        """``POST /upload/cancel/<id>?token``."""
        upload_id = request.path_params["id"]
        checked = await self._upload_call(
            self.uploads.missing, upload_id, request.query_params.get("token", "")
        )
        if isinstance(checked, Response):
            return checked
        await anyio.to_thread.run_sync(self.uploads.discard, upload_id)
        return JSONResponse({"error": False, "state": "Cancelled"})


# -- helpers shared by the dialects -------------------------------------------------------------------


def _key_errors(name: Any, ttl: Any, update: bool) -> list[dict[str, str]]:
    errors = []
    if name is None:
        if not update:
            errors.append(_required("friendlyName"))
    else:
        try:
            AccessKeyCreate(name=name)
        except ValidationError:
            errors.append(_invalid("friendlyName"))
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0 or (ttl == 0 and not update)
    ):
        errors.append(_invalid("ttl"))
    return errors


def _app_spec(name: Any, os_name: Any) -> AppCreate:
    if name is None:
        raise Refused(400, fields=[_required("name")])
    try:
        return AppCreate(name=name, platforms=_platforms(os_name))
    except ValidationError as exc:
        raise Refused(400, fields=[_invalid("name")]) from exc


def _deployment_spec(name: Any, key: Any) -> DeploymentCreate:
    if name is None:
        raise Refused(400, fields=[_required("name")])
    if key is not None and not (isinstance(key, str) and _KEY.match(key)):
        raise Refused(400, fields=[_invalid("key")])
    try:
        return DeploymentCreate(name=name, key=key)
    except ValidationError as exc:
        raise Refused(400, fields=[_invalid("name")]) from exc


def _standalone_refusal(refusal: Refused) -> Response:
    if refusal.fields is not None and refusal.as_json:
        return JSONResponse(refusal.fields, status_code=refusal.status)
    return Response(refusal.message, status_code=refusal.status, media_type="text/html")


def _appcenter_refusal(refusal: Refused) -> Response:
    code = _CODES.get(refusal.status, "Error")
    return JSONResponse({"code": code, "message": refusal.message}, status_code=refusal.status)
