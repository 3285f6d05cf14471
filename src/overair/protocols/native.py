"""overair's own device protocol: update check, package download and status reports (raw ASGI).

``GET /v1/update-check?deployment_key=…&app_version=1.0.0&build_number=1&label=v1&package_hash=…&client_id=…``
answers ``{"status": …, "update": {…} | null, "store_version": … | null}`` where status is one of
``update``, ``no_update``, ``run_embedded`` and ``store_update_required``. ``failed=v2,v5`` names releases
that failed on the device; they are never offered to it again.

An offered ``update`` may carry ``delta`` = ``{"url", "size", "sha256", "base_package_hash"}``: a binary
delta from the bundle the device named in ``package_hash`` (docs/protocol.md).

``GET /v1/blobs/<sha256>`` downloads a package, manifest or delta. ``POST /v1/report`` takes
``{"deployment_key", "label", "status": downloaded|installed|failed|rolled_back|running, "client_id"}``;
``running`` says the app started on that label (engines send it once a day per label at most).
A report sent with the header ``Overair-Simulated: 1`` comes from a simulated device (``overair
simulate``): it is counted apart and never in production metrics (:mod:`overair.metrics.rehearsal`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable

import anyio.to_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from overair.errors import OverairError
from overair.inputs import whole_number
from overair.metrics.service import DeviceReport, MetricsService
from overair.packages import signing
from overair.problems import status_of
from overair.protocols.answers import cached_answer
from overair.protocols.asgi import (
    JSON_HEADERS,
    NO_STORE,
    Receive,
    Scope,
    Send,
    header,
    query_params,
    read_body,
    send_bytes,
    send_error,
)
from overair.protocols.downloads import BLOBS, Downloads
from overair.protocols.routing import DeviceRoute, RouteTable
from overair.releases.deltas import DeltaOffers
from overair.releases.devices import DeviceCache
from overair.releases.schemas import ReportStatus
from overair.releases.snapshots import DeviceSnapshot
from overair.selection import Decision, DecisionKind, DeviceQuery, semver
from overair.storage import digest_of

PREFIX = "/v1/"
UPDATE_CHECK = "/v1/update-check"
REPORT = "/v1/report"
SIMULATED_HEADER = b"overair-simulated"
"""A report with this header set to ``1`` comes from a simulated device; real devices never send it."""


# Longest value accepted per query parameter: answers are cached per (version, label, hash, failed), so
# unbounded values would let anyone grow the server's memory.
_LIMITS = {
    "deployment_key": 100,
    "app_version": 64,
    "build_number": 9,
    "label": 20,
    "package_hash": 64,
    "client_id": 200,
    "failed": 1000,
}
MAX_BUILD_NUMBER = 999_999_999


class Report(BaseModel):
    """A device's status report."""

    model_config = ConfigDict(extra="ignore")
    deployment_key: str = Field(min_length=1, max_length=100)
    label: str = Field(min_length=1, max_length=20)
    status: ReportStatus
    client_id: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=500, description="Why it failed (failed reports).")


def attention_message(decision: Decision) -> str | None:
    """What the user must be told or asked for an attention-requiring answer (None when seamless)."""
    if decision.kind is DecisionKind.STORE_UPDATE_REQUIRED:
        version = f" ({decision.latest_target})" if decision.latest_target else ""
        return f"A new version of the app{version} is available in the store: install it to keep up to date."
    if not decision.attention:
        return None
    if decision.sync_before_update:
        return "An update is available. Synchronize your data first: it installs after the next sync."
    return "An update is available that must be installed."


def encode_decision(
    decision: Decision, url: Callable[[str], str], delta: DeltaOffers | None = None, from_hash: str = ""
) -> bytes:
    """The JSON answer of the native protocol for one decision (with ``delta`` from ``from_hash``, if any).

    The format-1 delta is ``update.delta``; a format-2 one (Hermes bytecode transformed) is
    ``update.delta_v2``, which engines that read only format 1 ignore.

    ``url(blob_key)`` is where the device downloads a blob (:meth:`Downloads.download_url`).
    """
    update = None
    if decision.kind is DecisionKind.UPDATE and decision.release is not None:
        release = decision.release
        update = {
            "label": release.label,
            "package_hash": release.package_hash,
            "size": release.size,
            "download_url": url(release.blob_key),
            "manifest_url": url(release.manifest_key),
            "mandatory": decision.mandatory,
            "sync_before_update": decision.sync_before_update,
            "description": release.description,
            "target_version": release.target,
            "sequence": release.sequence,
            "signed_manifest": release.signed_manifest,
            "signature": release.signature,
            "key_id": release.signing_key_id,
        }
        offers = (delta.plain, delta.transformed) if delta is not None else (None, None)
        for field, offer in zip(("delta", "delta_v2"), offers, strict=True):
            if offer is not None:
                update[field] = {
                    "url": url(offer.blob_key),
                    "size": offer.size,
                    "sha256": digest_of(offer.blob_key),
                    "base_package_hash": from_hash,
                }
    body = {
        "status": decision.kind.value,
        "update": update,
        "store_version": decision.latest_target if decision.store_version_newer else None,
        "attention": decision.attention,
        "message": attention_message(decision),
    }
    return json.dumps(body, separators=(",", ":")).encode()


_ISSUED_AT = signing.ISSUED_AT_HEADER.encode()
_EXPIRES_AT = signing.EXPIRES_AT_HEADER.encode()
_SIGNATURE = signing.SIGNATURE_HEADER.encode()


class AnswerSigner:
    """Signs update-check answers with the server's online key, so devices can tell fresh from replayed.

    The signature covers the answer's bytes, a time window and the request it answers (every query
    parameter but the client id). Each distinct answer is signed at most once per ``renew`` seconds,
    so the hot path is a dictionary lookup.
    """

    _MAX_ENTRIES = 50_000

    def __init__(
        self,
        key: Ed25519PrivateKey,
        ttl: int,
        renew: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._key_id = signing.key_id(key).encode()
        self._ttl = ttl
        self._renew = min(renew, ttl // 2)
        self._clock = clock
        self._signed: dict[tuple[str, bytes], tuple[int, list[tuple[bytes, bytes]]]] = {}

    def headers(self, scope: str, body: bytes) -> list[tuple[bytes, bytes]]:
        """The response headers of ``body``: JSON content type plus the freshness signature.

        The issue time is the start of the current ``renew`` window, so every worker (and host) signing
        the same answer in the same window gives it the same time, and a device never sees time go back.
        """
        now = int(self._clock()) // self._renew * self._renew
        hit = self._signed.get((scope, body))
        if hit is not None and hit[0] == now:
            return hit[1]
        expires = now + self._ttl
        signature = signing.sign_freshness(self._key, now, expires, scope, body)
        headers = [
            *JSON_HEADERS,
            NO_STORE,
            (_ISSUED_AT, str(now).encode()),
            (_EXPIRES_AT, str(expires).encode()),
            (_SIGNATURE, self._key_id + b":" + signature.encode()),
        ]
        if len(self._signed) >= self._MAX_ENTRIES:
            self._signed.clear()
        self._signed[(scope, body)] = (now, headers)
        return headers


class NativeProtocol:
    """overair's own device protocol: the routes under ``/v1/``."""

    def __init__(
        self,
        cache: DeviceCache,
        metrics: MetricsService,
        downloads: Downloads,
        signer: AnswerSigner,
        request_delta: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._cache = cache
        self._metrics = metrics
        self._downloads = downloads
        self._signer = signer
        self._request_delta = request_delta  # (base hash, target hash): queue a delta build, never waits

    def routes(self) -> RouteTable:
        """Every path under ``/v1/`` is the native protocol's: unknown ones are answered here, as 404."""
        return RouteTable(
            [
                DeviceRoute(
                    ("GET", "HEAD"), UPDATE_CHECK, self.update_check, "Use GET for the update check."
                ),
                DeviceRoute(("POST",), REPORT, self.report, "Use POST to send a status report."),
                DeviceRoute(
                    ("GET", "HEAD"),
                    BLOBS + "{digest}",
                    self._downloads.serve,
                    "Use GET to download a package.",
                ),
            ],
            refuse,
            owns=PREFIX,
        )

    async def update_check(self, scope: Scope, _receive: Receive, send: Send) -> None:
        """Answer one update check from the cache (the database is read only when a deployment changed)."""
        params = query_params(scope["query_string"])
        fail = functools.partial(send_error, send, extra=[NO_STORE])
        for name, limit in _LIMITS.items():
            if len(params.get(name, "")) > limit:
                await fail(400, f"{name} is too long: at most {limit} characters.")
                return
        key = params.get("deployment_key", "").strip()
        if not key:
            await fail(400, "deployment_key is missing: send the key of the app's deployment.")
            return
        app_version = semver.valid(params.get("app_version", ""))
        if app_version is None:
            await fail(400, "app_version is missing or not a version: send the binary's version, like 1.0.0.")
            return
        build_text = params.get("build_number", "").strip()
        build_number = whole_number(build_text, MAX_BUILD_NUMBER) if build_text else None
        if build_text and build_number is None:
            await fail(400, "build_number must be a whole number, like 1.")
            return
        failed = frozenset(x for x in params.get("failed", "").split(",") if x)
        query = DeviceQuery(
            app_version=app_version,
            build_number=build_number,
            label=params.get("label", ""),
            package_hash=params.get("package_hash", ""),
            excluded_labels=failed,
        )
        base = self._downloads.base(scope)

        def encode(decision: Decision, snapshot: DeviceSnapshot) -> bytes:
            return self._encode(decision, base, snapshot, query)

        answer = await cached_answer(
            self._cache, key, query, ("native", query, base), encode, params.get("client_id", "")
        )
        if answer is None:
            await fail(404, "Unknown deployment key: check the key the app was built with.")
            return
        await send_bytes(send, 200, answer, self._signer.headers(signing.freshness_scope(params), answer))

    def _encode(self, decision: Decision, base: str, snapshot: DeviceSnapshot, query: DeviceQuery) -> bytes:
        """Encode ``decision``, offering a built delta from the device's bundle when there is one.

        Runs once per cached answer, not per request. A device on a recent base without a delta yet gets
        the full package, and the delta is queued for the next device on that base (never waited for).
        """
        release = decision.release
        current = query.package_hash
        url = functools.partial(self._downloads.download_url, base=base)
        if decision.kind is not DecisionKind.UPDATE or release is None or not current:
            return encode_decision(decision, url)
        pair = (release.package_hash, current)
        if pair in snapshot.deltas:
            return encode_decision(decision, url, snapshot.deltas[pair], current)
        wanted = current in snapshot.delta_bases and current != release.package_hash
        if wanted and self._request_delta is not None:
            self._request_delta(current, release.package_hash)
        return encode_decision(decision, url)

    async def report(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Accept a downloaded / installed / failed / rolled_back / running report (checked now, written by
        the metrics' next flush, within a second).

        With ``Overair-Simulated: 1`` the report is a simulated device's: the metrics count it apart.
        """
        marker = header(scope, SIMULATED_HEADER)
        if marker is not None and marker.strip() != "1":
            await send_error(
                send, 400, "Overair-Simulated must be 1 (a simulated device's report) or absent (a device's)."
            )
            return
        body = await read_body(receive, 10_000)
        if body is None:
            await send_error(send, 413, "A report is at most 10,000 bytes.")
            return
        try:
            report = Report.model_validate_json(body)
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            await send_error(send, 400, f"Invalid report: {details}")
            return
        device_report = DeviceReport(
            report.deployment_key,
            report.label,
            report.status,
            report.client_id,
            reason=report.reason,
            simulated=marker is not None,
        )
        try:
            if not self._metrics.accept_report(device_report):  # else it needs the database: a thread
                await anyio.to_thread.run_sync(self._metrics.record_report, device_report)
        except OverairError as exc:
            await send_error(send, status_of(exc), exc.message)
            return
        await send_bytes(send, 200, b'{"ok":true}')


async def refuse(scope: Scope, send: Send, status: int, allowed: tuple[str, ...], hint: str) -> None:
    """A path under ``/v1/`` with no route (404), or a method its route does not take (405 with Allow)."""
    if status == 405:
        await send_error(send, 405, hint, [(b"allow", ", ".join(allowed).encode())])
    else:
        await send_error(send, 404, f"No device route {scope['path']}.")
