"""What the reference accepts, and how its values become overair's requests.

Both dialects bring a release's properties here as the standalone ``packageInfo`` (camelCase: ``appVersion``,
``isMandatory``, ``rollout``, …), checked as ``code-push-server``'s ``validatePackageInfo`` checks them: a
list of ``{"field", "message"}`` for the fields it refuses. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from overair.auth.schemas import MAX_KEY_LIFETIME_SECONDS, AccessKeyCreate
from overair.inputs import UnreadableJson, parse_json, whole_number
from overair.protocols.codepush_management.errors import Refused
from overair.releases.schemas import (
    AppCreate,
    DeploymentCreate,
    Platform,
    PromoteRequest,
    PublishOptions,
    ReleaseOut,
)
from overair.selection import semver

Fields = list[dict[str, str]]

_KEY = re.compile(r"^[A-Za-z0-9_-]{10,100}$")
_LABEL = re.compile(r"^v[1-9][0-9]*$")
_ROLLOUT = re.compile(r"^(100|[1-9][0-9]|[1-9])$")


def is_key(value: Any) -> bool:
    """The reference's ``isValidKeyField``: 10-100 of ``[A-Za-z0-9_-]`` (access keys, deployment keys)."""
    return isinstance(value, str) and _KEY.match(value) is not None


def js_string(value: Any) -> str:
    """JavaScript's ``String(value)`` for JSON values (what the reference's regex tests see)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def body_object(body: bytes) -> dict[str, Any]:
    """The JSON object in a request body (``{}`` for no body, or a JSON value that is not an object); a 400
    saying what is wrong for a body that is not JSON overair reads (:func:`overair.inputs.parse_json`)."""
    if not body:
        return {}
    try:
        return as_object(parse_json(body))
    except UnreadableJson as exc:
        raise Refused(400, f"The request body is not valid JSON: {exc}.") from exc


def field_object(text: str) -> dict[str, Any]:
    """The JSON object in a form field, or ``{}`` for anything else (unreadable JSON included)."""
    try:
        return as_object(parse_json(text))
    except UnreadableJson:
        return {}


UPLOAD_SIZE_REQUIRED = "file_size must be the file's size in bytes, a whole number like 1048576."
CHUNK_NUMBER_REQUIRED = "block_number must be the chunk's number, a whole number like 1."
MAX_CHUNKS = 1_000_000
"""More chunks than any upload the server accepts has (at 4 MiB a chunk: 4 TiB)."""


def upload_size(text: str) -> int:
    """An App Center upload's declared ``file_size`` (the size limit is the uploads' to apply)."""
    size = whole_number(text)
    if size is None:
        raise Refused(400, UPLOAD_SIZE_REQUIRED)
    return size


def chunk_number(text: str) -> int:
    """An App Center chunk's ``block_number`` (whether the upload has that chunk is the uploads' to say)."""
    number = whole_number(text, MAX_CHUNKS)
    if number is None:
        raise Refused(400, CHUNK_NUMBER_REQUIRED)
    return number


def invalid(field: str) -> dict[str, str]:
    return {"field": field, "message": "Field is invalid"}


def required(field: str) -> dict[str, str]:
    return {"field": field, "message": "Field is required"}


def refuse_invalid(errors: Fields, *, as_json: bool = False) -> None:
    """Refuse with 400 and the list of fields, if there is one."""
    if errors:
        raise Refused(400, fields=errors, as_json=as_json)


_PACKAGE_FIELDS: dict[str, Callable[[Any], bool]] = {
    "appVersion": lambda v: isinstance(v, str) and semver.valid_range(v) is not None,
    "description": lambda v: isinstance(v, str) and len(v) <= 10_000,
    "label": lambda v: isinstance(v, str) and _LABEL.match(v) is not None,
    "isDisabled": lambda v: isinstance(v, bool),
    "isMandatory": lambda v: isinstance(v, bool),
    "rollout": lambda v: not isinstance(v, dict | list) and _ROLLOUT.match(js_string(v)) is not None,
}


def validate_package_info(info: Mapping[str, Any], all_optional: bool) -> Fields:
    """The reference's ``validatePackageInfo``: invalid fields, and ``appVersion`` unless all are optional."""
    errors = []
    for field, valid in _PACKAGE_FIELDS.items():
        value = info.get(field)
        if value is not None:
            if not valid(value):
                errors.append(invalid(field))
        elif field == "appVersion" and not all_optional:
            errors.append(required(field))
    return errors


def rollout_of(info: Mapping[str, Any]) -> int | None:
    """The validated ``rollout`` as a number (the CLIs may send ``"50"`` or ``50.0``)."""
    value = info.get("rollout")
    return None if value is None else int(js_string(value))


MAX_TTL = MAX_KEY_LIFETIME_SECONDS * 1000
"""The longest ``ttl`` (ms) a key may be given: 100 years, as in the management API."""


def valid_ttl(ttl: Any, update: bool) -> bool:
    """A ``ttl`` in milliseconds: a finite number up to :data:`MAX_TTL`, 0 only when updating."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        return False
    return 0 < ttl <= MAX_TTL or (ttl == 0 and update)  # NaN compares false: refused too


def key_errors(name: Any, ttl: Any, update: bool) -> Fields:
    """An access key's ``friendlyName`` and ``ttl`` (ms; 0 only when updating: expire now)."""
    errors = []
    if name is None:
        if not update:
            errors.append(required("friendlyName"))
    else:
        try:
            AccessKeyCreate(name=name)
        except ValidationError:
            errors.append(invalid("friendlyName"))
    if ttl is not None and not valid_ttl(ttl, update):
        errors.append(invalid("ttl"))
    return errors


def platforms(os_name: Any) -> list[Platform]:
    """The platforms of an app by its ``os`` (both when unnamed)."""
    lowered = str(os_name or "").lower()
    if lowered == "ios":
        return [Platform.IOS]
    if lowered == "android":
        return [Platform.ANDROID]
    return [Platform.IOS, Platform.ANDROID]


def app_spec(name: Any, os_name: Any) -> AppCreate:
    """A new app (or new app name), or a 400 naming the field."""
    if name is None:
        raise Refused(400, fields=[required("name")])
    try:
        return AppCreate(name=name, platforms=platforms(os_name))
    except ValidationError as exc:
        raise Refused(400, fields=[invalid("name")]) from exc


def deployment_spec(name: Any, key: Any) -> DeploymentCreate:
    """A new deployment (or new deployment name), or a 400 naming the field."""
    if name is None:
        raise Refused(400, fields=[required("name")])
    if key is not None and not is_key(key):
        raise Refused(400, fields=[invalid("key")])
    try:
        return DeploymentCreate(name=name, key=key)
    except ValidationError as exc:
        raise Refused(400, fields=[invalid("name")]) from exc


def publish_options(info: Mapping[str, Any]) -> PublishOptions:
    """A validated ``packageInfo`` (``appVersion`` required) as the options of a new release."""
    return PublishOptions(
        target_version=info["appVersion"],
        rollout=rollout_of(info) or 100,
        mandatory=bool(info.get("isMandatory")),
        disabled=bool(info.get("isDisabled")),
        description=info.get("description") or "",
    )


def promote_request(source: str, destination: str, info: Mapping[str, Any]) -> PromoteRequest:
    """A validated ``packageInfo`` as a promotion; empty and absent fields keep the source's values."""
    return PromoteRequest(
        source=source,
        destination=destination,
        label=info.get("label") or None,
        rollout=rollout_of(info),
        mandatory=info.get("isMandatory"),
        disabled=info.get("isDisabled"),
        description=info.get("description") or None,
        target_version=info.get("appVersion") or None,
    )


@dataclass(frozen=True, slots=True)
class PatchPlan:
    """What a CodePush patch asks to change on one release (an empty ``changes``: nothing)."""

    release: ReleaseOut
    changes: dict[str, Any]


def plan_patch(history: list[ReleaseOut], info: Mapping[str, Any]) -> PatchPlan:
    """The reference's patch semantics: only fields that differ, ``description``/``appVersion`` if truthy,
    and a ``rollout`` whenever one is given (the rule then refuses one that does not raise the rollout)."""
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
    rollout = rollout_of(info)
    if rollout is not None:
        changes["rollout"] = rollout
    if info.get("appVersion") and info["appVersion"] != release.target_version:
        changes["target_version"] = info["appVersion"]
    return PatchPlan(release, changes)
