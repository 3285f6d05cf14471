"""The CodePush acquisition protocol, so apps with an unmodified CodePush client update from overair.

Both URL families of the reference server (``microsoft/code-push-server``) are served by the same code:
legacy camelCase ``/updateCheck``, ``/reportStatus/{deploy,download}`` (SDK <= 2.0.7) and snake_case
``/v0.1/public/codepush/{update_check,report_status/…}`` (SDK >= 3). The adapter only translates: it
parses the query the way the reference does (JavaScript ``String(a || b)`` semantics, so an absent label is
the string ``"undefined"``), asks the same selection as the native protocol with the CodePush bucketing hash
and label-else-hash matching, and encodes the answer with the reference's 11 keys in their order.
See ``docs/codepush.md`` and the protocol spec for every quirk reproduced here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping

import anyio.to_thread

from overair.db import precise_now
from overair.errors import OverairError
from overair.inputs import UnreadableJson, parse_json
from overair.metrics.service import DeviceReport, MetricsService
from overair.protocols.answers import cached_answer
from overair.protocols.asgi import (
    NO_STORE,
    Headers,
    Receive,
    Scope,
    Send,
    header,
    query_params,
    read_body,
    send_bytes,
)
from overair.protocols.downloads import Downloads
from overair.protocols.facts import RecordedFacts
from overair.protocols.routing import DeviceRoute, RouteTable
from overair.releases.devices import DeviceCache
from overair.releases.rules import DEPLOYMENT_KEY
from overair.releases.schemas import ReportStatus
from overair.releases.snapshots import DeviceSnapshot
from overair.selection import CurrentMatch, Decision, DecisionKind, DeviceQuery, RolloutHash, semver

LEGACY_CHECK = "/updateCheck"
LEGACY_DEPLOY = "/reportStatus/deploy"
LEGACY_DOWNLOAD = "/reportStatus/download"
V01 = "/v0.1/public/codepush/"
V01_CHECK = V01 + "update_check"
V01_DEPLOY = V01 + "report_status/deploy"
V01_DOWNLOAD = V01 + "report_status/download"

_MAJOR_ONLY = re.compile(r"^[0-9]+$")
_MAJOR_MINOR = re.compile(r"^([0-9]+\.[0-9]+)([+-].*)?$", re.DOTALL)
# JavaScript's String.prototype.trim() removes these (and Python's str.strip() removes \x1c-\x1f too).
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

BAD_KEY = (
    "An update check must include a valid deployment key - please check that your app has been configured "
    "correctly. To view available deployment keys, run 'code-push-standalone deployment ls  -k'."
)
BAD_VERSION = (
    "An update check must include a binary version that conforms to the semver standard (e.g. '1.0.0'). "
    "The binary version is normally inferred from the App Store/Play Store version configured with your app."
)
BAD_REQUEST = (
    "An update check must include a valid deployment key and provide a semver-compliant app version."
)
UNKNOWN_KEY = "The specified deployment key does not exist."
DEPLOY_MISSING = "A deploy status report must contain a valid appVersion and deploymentKey."
DEPLOY_NO_STATUS = "A deploy status report for a labelled package must contain a valid status."
DOWNLOAD_MISSING = "A download status report must contain a valid deploymentKey and package label."

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_HTML = [(b"content-type", b"text/html; charset=utf-8")]
_JSON = [(b"content-type", b"application/json; charset=utf-8")]
_CORS = [
    (b"access-control-allow-credentials", b"true"),
    (b"access-control-allow-methods", b"GET, POST, DELETE, PUT"),
    (
        b"access-control-allow-headers",
        b"Content-Type, X-CodePush-Plugin-Name, X-CodePush-Plugin-Version, X-CodePush-SDK-Version",
    ),
]

_STATUS_COUNTS = {
    "DeploymentSucceeded": ReportStatus.INSTALLED,
    "DeploymentFailed": ReportStatus.FAILED,
    "Downloaded": ReportStatus.DOWNLOADED,
}


def _text(body: Mapping[str, object], camel: str, snake: str) -> str:
    """A string field of a report body in either casing ("" when absent or not a string; at most 200)."""
    value = body.get(camel) or body.get(snake)
    return value[:200] if isinstance(value, str) else ""


def js_or(params: Mapping[str, object], camel: str, snake: str) -> str:
    """JavaScript `String(q[camel] || q[snake])`: empty falls through to the second; absent is "undefined"."""
    first = params.get(camel)
    if first:
        return str(first)
    second = params.get(snake)
    return "undefined" if second is None else str(second)


def normalise_app_version(version: str) -> str:
    """The reference's normalisation: ``1`` → ``1.0.0``, ``2.0-beta`` → ``2.0.0-beta``; others unchanged."""
    if _MAJOR_ONLY.match(version):
        return version + ".0.0"
    match = _MAJOR_MINOR.match(version)
    if match:
        return match.group(1) + ".0" + (match.group(2) or "")
    return version


def _snake(key: str) -> str:
    key = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", key)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()


def encode_update_info(
    decision: Decision,
    query: DeviceQuery,
    original_version: str | None,
    url: Callable[[str], str],
    snake: bool,
) -> bytes:
    """The reference server's update check body, keys in its order, compact JSON.

    A device whose package hash has a diff archive to the offered release gets the diff's URL and size.
    ``url(blob_key)`` is where the device downloads a blob (:meth:`Downloads.download_url`).
    """
    app_version = query.app_version
    info: dict[str, object] = {
        "downloadURL": "",
        "description": "",
        "isAvailable": False,
        "isMandatory": False,
        "appVersion": "",
        "packageHash": "",
        "label": "",
        "packageSize": 0,
        "updateAppVersion": False,
        "shouldRunBinaryVersion": False,
    }
    if decision.kind is DecisionKind.UPDATE and decision.release is not None:
        release = decision.release
        blob_key, size = release.diff_from(query.package_hash) or (release.blob_key, release.size)
        info.update(
            downloadURL=url(blob_key),
            description=release.description,
            isAvailable=True,
            isMandatory=decision.mandatory,
            appVersion=app_version,
            packageHash=release.package_hash,
            label=release.label,
            packageSize=size,
        )
    else:
        info.update(
            appVersion=decision.latest_target,
            updateAppVersion=decision.store_version_newer,
            shouldRunBinaryVersion=decision.kind is not DecisionKind.NO_UPDATE,
        )
    if original_version is not None and info["appVersion"] == app_version:
        info["appVersion"] = original_version  # the reference restores what the client sent
    info["target_binary_range"] = info["appVersion"]
    body: dict[str, object] = {"updateInfo": info}
    if snake:
        body = {"update_info": {_snake(k): v for k, v in info.items()}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class CodePushProtocol:
    """The CodePush acquisition paths, in both URL families."""

    def __init__(
        self,
        cache: DeviceCache,
        metrics: MetricsService,
        downloads: Downloads,
        facts: RecordedFacts | None = None,
    ) -> None:
        """``facts``: where update checks' touches are remembered (the composition root sets how long);
        by default a day, with the real time."""
        self._cache = cache
        self._metrics = metrics
        self._downloads = downloads
        self._facts = facts or RecordedFacts(precise_now, dt.timedelta(days=1))

    def routes(self) -> RouteTable:
        """Each path in both families, plus the CORS preflight every one of them answers."""
        legacy = functools.partial(self.update_check, snake=False)
        v01 = functools.partial(self.update_check, snake=True)
        routes = [
            DeviceRoute(("GET", "HEAD"), LEGACY_CHECK, legacy),
            DeviceRoute(("GET", "HEAD"), V01_CHECK, v01),
            DeviceRoute(("POST",), LEGACY_DEPLOY, self.report_deploy),
            DeviceRoute(("POST",), V01_DEPLOY, self.report_deploy),
            DeviceRoute(("POST",), LEGACY_DOWNLOAD, self.report_download),
            DeviceRoute(("POST",), V01_DOWNLOAD, self.report_download),
        ]
        preflights = [DeviceRoute(("OPTIONS",), route.path, preflight) for route in routes]
        return RouteTable([*routes, *preflights], refuse)

    async def update_check(self, scope: Scope, _receive: Receive, send: Send, *, snake: bool) -> None:
        """Answer an update check from the cache, as the reference server does (but never stored by a
        cache: the reference's ``no-cache`` would let a shared cache keep one device's answer)."""
        cors = _cors(scope, NO_STORE)
        params = query_params(scope["query_string"])
        if any(len(value) > 256 for value in params.values()):  # answers are cached per parameter values
            await send_bytes(send, 400, BAD_REQUEST.encode(), [*_HTML, *cors])
            return
        raw_key = params.get("deploymentKey") or params.get("deployment_key") or ""
        key = raw_key.strip(_JS_SPACE)
        original = js_or(params, "appVersion", "app_version")
        normalised = normalise_app_version(original)
        if DEPLOYMENT_KEY.fullmatch(key) is None:
            await send_bytes(send, 400, BAD_KEY.encode(), [*_HTML, *cors])
            return
        if semver.valid(normalised) is None:
            await send_bytes(send, 400, BAD_VERSION.encode(), [*_HTML, *cors])
            return
        query = DeviceQuery(
            app_version=normalised,
            label=str(params["label"]) if "label" in params else "undefined",
            package_hash=js_or(params, "packageHash", "package_hash"),
            any_binary=js_or(params, "isCompanion", "is_companion").lower() == "true",
            rollout_hash=RolloutHash.CODEPUSH,
            current_match=CurrentMatch.LABEL_ELSE_HASH,
        )
        restore = original if normalised != original else None
        base = self._downloads.base(scope)
        url = functools.partial(self._downloads.download_url, base=base)

        def encode(decision: Decision, _snapshot: DeviceSnapshot) -> bytes:
            return encode_update_info(decision, query, restore, url, snake)

        # an absent id is the string "undefined" here, which the reference buckets like any other id
        client_id = js_or(params, "clientUniqueId", "client_unique_id")
        memo_key = ("codepush", query, restore, base, snake)
        answer = await cached_answer(self._cache, key, query, memo_key, encode, client_id)
        if answer is None:
            await send_bytes(send, 404, UNKNOWN_KEY.encode(), [*_TEXT, *cors])
            return
        await send_bytes(send, 200, answer, [*_JSON, *cors])
        label = params.get("label")
        if label and client_id != "undefined":
            self._touch(key, client_id, label)

    def _touch(self, key: str, client_id: str, label: str) -> None:
        """The SDK reports only when its package changes; its checks say the label it runs, so a device
        that keeps checking in is seen (once a day per process) and never expired as silent."""
        what = f"{key}/{label}"
        if self._facts.running_is_new(client_id, what):
            self._metrics.record_touch(key, client_id, label)
            self._facts.told_running(client_id, what)

    async def _json_body(self, receive: Receive) -> dict[str, object] | None:
        body = await read_body(receive, 10 * 1024)
        if not body:
            return None
        try:
            parsed = parse_json(body)
        except UnreadableJson:
            return None
        return parsed if isinstance(parsed, dict) else None

    async def _count(self, report: DeviceReport) -> None:
        # like the reference, reports for unknown keys or labels are accepted and not counted
        with contextlib.suppress(OverairError):
            if not self._metrics.accept_report(report):  # else it needs the database: a thread
                await anyio.to_thread.run_sync(self._metrics.record_report, report)

    async def report_deploy(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count ``DeploymentSucceeded`` / ``DeploymentFailed`` / ``Downloaded`` for a label.

        A report without a label says the device runs the binary's own bundle (after a rollback to it or a
        store update): it then no longer counts as active on any label.
        """
        cors = _cors(scope)
        body = await self._json_body(receive)
        if body is None:
            await send_bytes(send, 400, DEPLOY_MISSING.encode(), [*_TEXT, *cors])
            return
        key = body.get("deploymentKey") or body.get("deployment_key")
        app_version = body.get("appVersion") or body.get("app_version")
        if not key or not app_version:
            await send_bytes(send, 400, DEPLOY_MISSING.encode(), [*_TEXT, *cors])
            return
        label = body.get("label")
        client_id = _text(body, "clientUniqueId", "client_unique_id")
        # a device that switched deployment keys names the one it came from: it leaves that deployment
        previous_key = (
            _text(body, "previousDeploymentKey", "previous_deployment_key").strip(_JS_SPACE) or None
        )
        if label:
            status = body.get("status")
            if not status:
                await send_bytes(send, 400, DEPLOY_NO_STATUS.encode(), [*_TEXT, *cors])
                return
            if not isinstance(status, str) or status not in _STATUS_COUNTS:
                await send_bytes(send, 400, f"Invalid status: {status}".encode(), [*_TEXT, *cors])
                return
            previous = _text(body, "previousLabelOrAppVersion", "previous_label_or_app_version") or None
            await self._count(
                DeviceReport(
                    str(key).strip(_JS_SPACE),
                    str(label),
                    _STATUS_COUNTS[str(status)],
                    client_id,
                    previous,
                    previous_deployment_key=previous_key,
                )
            )
        elif client_id:
            await anyio.to_thread.run_sync(
                functools.partial(
                    self._metrics.record_binary,
                    str(key).strip(_JS_SPACE),
                    client_id,
                    previous_deployment_key=previous_key,
                )
            )
        await send_bytes(send, 200, b"OK", [*_TEXT, *cors])

    async def report_download(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A package was downloaded."""
        cors = _cors(scope)
        body = await self._json_body(receive)
        key = (body or {}).get("deploymentKey") or (body or {}).get("deployment_key")
        label = (body or {}).get("label")
        if not key or not label:
            await send_bytes(send, 400, DOWNLOAD_MISSING.encode(), [*_TEXT, *cors])
            return
        client_id = _text(body or {}, "clientUniqueId", "client_unique_id")
        await self._count(
            DeviceReport(str(key).strip(_JS_SPACE), str(label), ReportStatus.DOWNLOADED, client_id)
        )
        await send_bytes(send, 200, b"OK", [*_TEXT, *cors])


def _cors(scope: Scope, cache_control: tuple[bytes, bytes] = (b"cache-control", b"no-cache")) -> Headers:
    """The reference's CORS and Cache-Control headers, echoing the request's origin."""
    origin = header(scope, b"origin")
    return [(b"access-control-allow-origin", (origin or "*").encode()), *_CORS, cache_control]


async def preflight(scope: Scope, _receive: Receive, send: Send) -> None:
    """A CORS preflight (``OPTIONS``) on any acquisition path."""
    await send_bytes(send, 204, b"", [*_cors(scope)])


async def refuse(scope: Scope, send: Send, _status: int, _allowed: tuple[str, ...], _hint: str) -> None:
    """Like the reference (Express), a method a path does not take is answered as an unknown path."""
    await send_bytes(send, 404, b"Not Found", [*_TEXT, *_cors(scope)])
