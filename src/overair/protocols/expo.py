"""The Expo Updates protocol (``expo-updates`` clients, protocols 0 and 1), raw ASGI.

``GET /expo/<deployment key>`` is an app's ``updates.url``: everything else the client says is in headers
(spec §1.2). The answer is ``multipart/mixed`` with a ``manifest`` part (and ``extensions``), or a
``directive`` part (``noUpdateAvailable``, ``rollBackToEmbedded``), with ``expo-protocol-version``,
``expo-sfv-version: 0`` and a short ``cache-control`` (§2). ``GET /expo/assets/<sha256>.<ext>`` serves
an asset with its content type, cached forever (§4); with a CDN or a bucket configured, asset URLs point
there instead (:meth:`Downloads.download_url`).

The headers are parsed into the same :class:`DeviceQuery` every protocol uses; what Expo clients need
differently is in the query: the exact runtime version, the platform, current/failed releases named by
update id, never an older ``createdAt`` (``newer_only``) and buckets over the lower-cased
``EAS-Client-ID``. Answers are cached like the other protocols' (:func:`cached_answer`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import anyio.to_thread

from overair.db import Clock, precise_now
from overair.errors import DATABASE_DOWN, OverairError, note_outage
from overair.metrics.service import DeviceReport, MetricsService
from overair.packages import expo
from overair.protocols.answers import cached_answer
from overair.protocols.asgi import Receive, Scope, Send, send_bytes, send_error
from overair.protocols.downloads import Downloads
from overair.protocols.facts import RecordedFacts
from overair.protocols.routing import DeviceRoute, RouteTable
from overair.releases.devices import DeviceCache
from overair.releases.launch_patches import LaunchPatches
from overair.releases.schemas import ReportStatus
from overair.releases.snapshots import DeviceSnapshot, DeviceSnapshots
from overair.selection import CurrentMatch, Decision, DecisionKind, DeviceQuery, Release, RolloutHash
from overair.storage import content_key

PREFIX = "/expo/"
ASSETS = "/expo/assets/"
BOUNDARY = b"overair-expo-7d9f3c1e5a"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ASSET = re.compile(r"^([0-9a-f]{64})\.([A-Za-z0-9]{1,16})$")
_EXTENSIONS = b'{"assetRequestHeaders":{}}'
_SHORT = (b"cache-control", b"private, max-age=0")
_SFV = (b"expo-sfv-version", b"0")
_MAX_CLIENT_ID = 200
_MAX_FAILED = 2000
_SEEN_LIMIT = 100_000
_CHANNEL_SECONDS = 10.0
"""How long the deployment a channel name stands for is remembered (a renamed deployment: seconds)."""


class LaunchAssetPatches(Protocol):
    """The seam for binary patches of the launch asset (spec §4.5): a client asking with ``A-IM: bsdiff``
    gets the patch :meth:`patch_for` finds, or the full asset when it finds none."""

    def patch_for(self, asset_sha256: str, current_update_id: str, requested_update_id: str) -> Patch | None:
        """The patch turning the launch asset of ``current_update_id`` into ``asset_sha256``, or None."""
        ...


@dataclass(frozen=True, slots=True)
class Patch:
    """A bsdiff patch ready to serve: its blob's SHA-256, and the update it applies to."""

    sha256: str
    base_update_id: str


class NoPatches:
    """No patches yet: every launch asset is served whole (always correct, spec §4.5)."""

    def patch_for(self, asset_sha256: str, current_update_id: str, requested_update_id: str) -> Patch | None:
        """None: serve the full asset."""
        return None


class StoredPatches:
    """The patches :class:`LaunchPatches` builds in the background, for the launch asset of the update a
    device runs (``Expo-Current-Update-ID``); a patch not built yet is queued, and the full asset sent."""

    def __init__(self, patches: LaunchPatches) -> None:
        self._patches = patches

    def patch_for(self, asset_sha256: str, current_update_id: str, requested_update_id: str) -> Patch | None:
        """The built patch from the current update's launch asset to ``asset_sha256``, or None."""
        found = self._patches.for_update(current_update_id, asset_sha256)
        if found is None:
            return None
        digest = found.blob_key.rpartition("/")[2]
        if (
            content_key(digest) != found.blob_key
        ):  # patches are stored by content; anything else: send it whole
            return None
        return Patch(digest, current_update_id)


class BadRequest(Exception):
    """A header the protocol does not allow: answered 400 with this message."""


class ExpoRequest(NamedTuple):
    """What one manifest request says (spec §1.2), checked (a named tuple: made on every check, and a
    tuple is made fastest)."""

    protocol: int
    platform: str
    runtime_version: str
    client_id: str
    current: str
    embedded: str
    failed: frozenset[str]
    fatal_error: str
    wants_signature: bool
    channel: str


_WANTED = frozenset(
    {
        b"expo-protocol-version",
        b"expo-platform",
        b"expo-runtime-version",
        b"eas-client-id",
        b"expo-current-update-id",
        b"expo-embedded-update-id",
        b"expo-recent-failed-update-ids",
        b"expo-fatal-error",
        b"expo-expect-signature",
        b"expo-channel-name",
    }
)


def _headers(scope: Scope) -> dict[bytes, str]:
    """The protocol's request headers, stripped, read in one pass (ASGI gives names in lower case);
    :class:`BadRequest` when one is sent twice."""
    values: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _WANTED:
            if key in values:
                count = sum(1 for name, _ in scope["headers"] if name == key)
                raise BadRequest(f"{key.decode()} was sent {count} times: send it once.")
            values[key] = value.decode("latin-1").strip()
    return values


def _update_id(headers: dict[bytes, str], name: bytes) -> str:
    value = headers.get(name, "")
    known = _CHECKED_IDS.get(value)
    if known is not None:
        return known
    if value and not _UUID.match(value):
        raise BadRequest(f"{name.decode()} must be an update id (a UUID), not {value[:50]!r}.")
    if len(_CHECKED_IDS) >= _SEEN_LIMIT:
        _CHECKED_IDS.clear()
    _CHECKED_IDS[value] = value.lower()
    return value.lower()


_CHECKED_IDS: dict[str, str] = {}
"""Update ids already checked, as sent → lower-cased: a fleet sends the few ids of its updates and
embedded bundles over and over, and a dictionary look-up is cheaper than the pattern (bounded)."""


_NONE_FAILED: frozenset[str] = frozenset()
_VERSIONS = {n: (b"expo-protocol-version", str(n).encode()) for n in (0, 1)}
_MULTIPART = (b"content-type", b"multipart/mixed; boundary=" + BOUNDARY)


def parse_failed(value: str) -> frozenset[str]:
    """The update ids of ``Expo-Recent-Failed-Update-IDs``: an SFV list of quoted UUIDs."""
    if len(value) > _MAX_FAILED:
        raise BadRequest(f"expo-recent-failed-update-ids is longer than {_MAX_FAILED} characters.")
    if not value:
        return _NONE_FAILED
    ids = set()
    for item in value.split(","):
        text = item.strip()
        if not text:
            continue
        unquoted = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else ""
        if not _UUID.match(unquoted):
            raise BadRequest(
                'expo-recent-failed-update-ids must be a list of quoted update ids, like "39242af2-'
                f'7424-46cb-a89b-464bb9779dbd"; got {text[:50]!r}.'
            )
        ids.add(unquoted.lower())
    return frozenset(ids)


def parse_request(scope: Scope) -> ExpoRequest:
    """Check a manifest request's headers (spec §1.2-1.4); :class:`BadRequest` names what is wrong."""
    headers = _headers(scope)
    get = headers.get
    version = get(b"expo-protocol-version") or "0"
    if version not in ("0", "1"):
        raise BadRequest(f"expo-protocol-version must be 0 or 1, not {version[:20]!r}.")
    platform = get(b"expo-platform", "")
    if platform not in expo.PLATFORMS:
        raise BadRequest(f"expo-platform must be ios or android, not {platform[:20]!r}.")
    runtime = get(b"expo-runtime-version", "")
    if not runtime or len(runtime) > expo.MAX_RUNTIME_VERSION:
        raise BadRequest(
            "expo-runtime-version is missing or too long: set runtimeVersion in app.json and build again."
        )
    client_id = get(b"eas-client-id", "")
    if len(client_id) > _MAX_CLIENT_ID:
        raise BadRequest(f"eas-client-id is longer than {_MAX_CLIENT_ID} characters.")
    return ExpoRequest(  # positional: a named tuple's keyword call costs more
        1 if version == "1" else 0,  # protocol
        platform,
        runtime,
        client_id.lower(),
        _update_id(headers, b"expo-current-update-id"),  # current
        _update_id(headers, b"expo-embedded-update-id"),  # embedded
        parse_failed(get(b"expo-recent-failed-update-ids", "")),  # failed
        get(b"expo-fatal-error", "")[:500],
        b"expo-expect-signature" in headers,  # wants_signature
        get(b"expo-channel-name", "")[:100],  # channel
    )


def multipart(parts: list[tuple[str, bytes, list[tuple[str, str]]]]) -> bytes:
    """A ``multipart/mixed`` body of ``(name, body, extra part headers)`` with :data:`BOUNDARY` (spec §2.2):
    each body is sent as it is (the bytes a signature covers), part header names in lower case."""
    out = bytearray()
    for name, body, extra in parts:
        out += b"--" + BOUNDARY + b"\r\n"
        out += f'content-disposition: form-data; name="{name}"\r\n'.encode()
        out += b"content-type: application/json; charset=utf-8\r\n"
        for key, value in extra:
            out += f"{key}: {value}\r\n".encode()
        out += b"\r\n" + body + b"\r\n"
    out += b"--" + BOUNDARY + b"--\r\n"
    return bytes(out)


def _commit_time(snapshot: DeviceSnapshot, request: ExpoRequest) -> str:
    """When the deployment went back to the binary for these builds: the newest disable time, and at
    least a millisecond after every update they could have run (the client compares with its
    ``createdAt``); empty when no such update was ever released (nothing to roll back from)."""
    times = [
        (r.disabled_at, r.created_at)
        for r in snapshot.releases
        if r.runtime_version == request.runtime_version and r.platform in (None, request.platform)
    ]
    if not times:
        return ""
    disabled = max(d for d, _ in times)
    created = max(c for _, c in times)
    if disabled > created:
        return disabled
    # created is ``…ss.mmmZ``: one millisecond later, written the same way
    moment = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return expo.iso_millis(moment + dt.timedelta(milliseconds=1))


class ExpoProtocol:
    """The Expo Updates protocol: manifest requests and assets under ``/expo/``."""

    def __init__(
        self,
        cache: DeviceCache,
        metrics: MetricsService,
        downloads: Downloads,
        snapshots: DeviceSnapshots,
        patches: LaunchAssetPatches | None = None,
        clock: Clock = precise_now,
        remember_running: dt.timedelta = dt.timedelta(days=1),
    ) -> None:
        """``remember_running``: how long a device's running update, once recorded, is not recorded again
        (keep it well within the metrics' ``active_days``)."""
        self._cache = cache
        self._snapshots = snapshots
        self._metrics = metrics
        self._downloads = downloads
        self._patches = patches or NoPatches()
        self._recorded = RecordedFacts(clock, remember_running)
        self._channels: dict[tuple[str, str], tuple[float, str | None]] = {}

    def routes(self) -> RouteTable:
        """Every path under ``/expo/`` is this protocol's; unknown ones are answered here, as 404."""
        return RouteTable(
            [
                DeviceRoute(("GET", "HEAD"), ASSETS + "{asset}", self.asset, "Use GET to download an asset."),
                DeviceRoute(("GET",), PREFIX + "{key}", self.manifest, "Use GET for the manifest."),
            ],
            refuse,
            owns=PREFIX,
        )

    async def manifest(self, scope: Scope, _receive: Receive, send: Send) -> None:
        """Answer a manifest request from the cache (spec §2)."""
        key = scope["path_params"]["key"]
        try:
            request = parse_request(scope)
        except BadRequest as exc:
            await send_error(send, 400, str(exc), [_SHORT])
            return
        if request.channel:
            key = await self._channel_key(key, request.channel)
            if key is None:
                message = (
                    f'expo-channel-name "{request.channel}" names no deployment of this app: use a '
                    "deployment name (overair deployment list), or leave the header out to use the URL's "
                    "deployment."
                )
                await send_error(send, 404, message, [_SHORT])
                return
        query = DeviceQuery(
            app_version="0.0.0",
            label=request.current,  # the client id is not in the query: answers are cached per query
            excluded_labels=request.failed,
            rollout_hash=RolloutHash.EXPO,
            current_match=CurrentMatch.UPDATE_ID,
            platform=request.platform,
            runtime_version=request.runtime_version,
            newer_only=True,
        )
        base = self._downloads.base(scope)
        on_embedded = not request.current or request.current == request.embedded

        def encode(decision: Decision, snapshot: DeviceSnapshot) -> bytes:
            return self._encode(decision, snapshot, request, on_embedded, base)

        memo = ("expo", query, base, request.protocol, on_embedded, request.wants_signature)
        answer = await cached_answer(self._cache, key, query, memo, encode, request.client_id)
        version = _VERSIONS[request.protocol]
        if answer is None:
            await send_error(
                send, 404, "Unknown deployment key: check updates.url in app.json.", [_SHORT, version]
            )
        elif not answer:
            await send_bytes(send, 204, b"", [version, _SFV, _SHORT])
        else:
            await send_bytes(send, 200, answer, [_MULTIPART, version, _SFV, _SHORT])
        if request.client_id and answer is not None:
            current, embedded = request.current, request.embedded
            running = key if current and current == embedded else current  # as _report records it
            if self._recorded.news(request.client_id, running, request.failed):
                await self._report(key, request)

    def _encode(
        self, decision: Decision, snapshot: DeviceSnapshot, request: ExpoRequest, on_embedded: bool, base: str
    ) -> bytes:
        """The multipart answer to one decision (once per cached answer); ``b""``: 204, nothing to do."""
        release = decision.release
        if decision.kind is DecisionKind.UPDATE and release is not None and release.expo is not None:
            return self._manifest_answer(release, base)
        if request.protocol == 0:  # no directives: the manifest the device runs says "nothing new"
            current = next((r for r in snapshot.releases if r.update_id == request.current), None)
            return self._manifest_answer(current, base) if current and current.expo else b""
        commit_time = _commit_time(snapshot, request)
        if decision.kind is DecisionKind.RUN_EMBEDDED and not on_embedded and commit_time:
            signed = _signed(snapshot, request, "embedded_signature") if request.wants_signature else None
            if signed is not None:  # the publisher's, dated just after its update (docs/security.md)
                body = base64.b64decode(signed["embedded_directive"])
                header = (
                    "expo-signature",
                    expo.signature_header(signed["embedded_signature"], signed["keyid"]),
                )
                return multipart([("directive", body, [header])])
            return multipart([("directive", expo.embedded_directive(commit_time), [])])
        if not request.wants_signature:
            return multipart([("directive", expo.NO_UPDATE_DIRECTIVE, [])])
        signed = _signed(snapshot, request, "no_update_signature")
        if signed is None:
            return b""  # 204: nothing the server would have to sign
        header = ("expo-signature", expo.signature_header(signed["no_update_signature"], signed["keyid"]))
        return multipart([("directive", expo.NO_UPDATE_DIRECTIVE, [header])])

    async def _channel_key(self, key: str, channel: str) -> str | None:
        """The key of the app's deployment named ``channel`` (remembered for :data:`_CHANNEL_SECONDS`)."""
        now = time.monotonic()
        known = self._channels.get((key, channel))
        if known is not None and now - known[0] < _CHANNEL_SECONDS:
            return known[1]
        found = await anyio.to_thread.run_sync(self._snapshots.sibling_key, key, channel)
        if len(self._channels) >= _SEEN_LIMIT:
            self._channels.clear()
        self._channels[(key, channel)] = (now, found)
        return found

    def _manifest_answer(self, release: Release, base: str) -> bytes:
        if release.expo_signed is not None:  # the publisher's bytes, as they were signed
            signed = json.loads(release.expo_signed)
            header = ("expo-signature", expo.signature_header(signed["signature"], signed["keyid"]))
            body = base64.b64decode(signed["signed_manifest"])
            return multipart([("manifest", body, [header]), ("extensions", _EXTENSIONS, [])])
        content = expo.ExpoContent.from_json(release.expo or "")

        def url(asset: expo.ExpoAsset) -> str:
            own = f"{ASSETS}{asset.sha256}.{asset.ext}"
            return self._downloads.download_url(content_key(asset.sha256), base, own)

        body = expo.manifest_bytes(
            update_id=release.update_id,
            created_at=release.created_at,
            runtime_version=release.runtime_version or "",
            content=content,
            url=url,
            overair={
                "label": release.label,
                "description": release.description,
                "mandatory": release.mandatory,
            },
        )
        return multipart([("manifest", body, []), ("extensions", _EXTENSIONS, [])])

    async def _report(self, key: str, request: ExpoRequest) -> None:
        """What the request tells the metrics (spec §6.3), each fact once per device: the update it runs
        (or the binary's own), and the updates that failed on it (with the last fatal error).

        A fact the metrics could not take (the database is down) is not remembered: the device's next
        check tells it again.
        """
        client, recorded = request.client_id, self._recorded
        if request.current == request.embedded and not request.failed:  # on the binary's own update
            if request.current and recorded.running_is_new(client, key):
                self._metrics.record_binary(key, client)
                recorded.told_running(client, key)
            return
        snapshot_ids = await self._cache.get(key, ("expo-ids",), _labels_by_update_id)
        if snapshot_ids is None:
            return
        for failed in sorted(request.failed):
            label = snapshot_ids.get(failed)
            if label and recorded.failure_is_new(client, failed):
                report = DeviceReport(key, label, ReportStatus.FAILED, client, reason=request.fatal_error)
                if not await self._tell(report):
                    return
                recorded.told_failure(client, failed)
        label = snapshot_ids.get(request.current)
        if label and recorded.running_is_new(client, request.current):
            if await self._tell(DeviceReport(key, label, ReportStatus.RUNNING, client)):
                recorded.told_running(client, request.current)
        elif request.current and request.current == request.embedded and recorded.running_is_new(client, key):
            self._metrics.record_binary(key, client)
            recorded.told_running(client, key)

    async def _tell(self, report: DeviceReport) -> bool:
        """Give the metrics ``report``; False when the database needed to check it does not answer."""
        try:
            if not self._metrics.accept_report(report):
                await anyio.to_thread.run_sync(self._metrics.record_report, report)
        except OverairError:
            return True  # a release removed meanwhile: nothing to count, nothing to tell again
        except DATABASE_DOWN as exc:
            note_outage(exc)
            return False
        return True

    async def asset(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /expo/assets/<sha256>.<ext>``: the asset with its content type, cached forever (§4)."""
        match = _ASSET.match(scope["path_params"]["asset"])
        if match is None:
            await send_error(send, 404, "No such asset: the URL must end in <sha256>.<extension>.")
            return
        digest, ext = match.groups()
        asked = _patch_request(scope) if ext in ("js", "hbc", "bundle") else None
        if asked is not None:  # off the event loop: finding a patch reads the database and the blob store
            found = await anyio.to_thread.run_sync(self._find_patch, digest, *asked)
            if found is not None:
                await send_bytes(send, 226, found[1], _patch_headers(found[0], digest))
                return
        await self._downloads.serve_digest(scope, receive, send, digest, expo.content_type(ext).encode())

    def _find_patch(self, digest: str, current: str, requested: str) -> tuple[Patch, bytes] | None:
        """The patch to ``digest`` for a device on ``current`` and its bytes, or None. A patch only saves
        bytes: when the database or the blob store fails, the whole asset (always correct) is sent."""
        try:
            patch = self._patches.patch_for(digest, current, requested)
            return None if patch is None else (patch, self._downloads.read_blob(patch.sha256))
        except Exception as exc:  # whatever failed, the full asset still answers the device
            note_outage(exc, "launch patches")
            return None


def _patch_request(scope: Scope) -> tuple[str, str] | None:
    """(current update id, requested update id) of a launch-asset request that accepts a bsdiff patch
    (``A-IM: bsdiff``, spec §4.5); None for any other request."""
    headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if "bsdiff" not in headers.get(b"a-im", ""):
        return None
    current = headers.get(b"expo-current-update-id", "").lower()
    requested = headers.get(b"expo-requested-update-id", "").lower()
    return (current, requested) if _UUID.match(current) and _UUID.match(requested) else None


def _patch_headers(patch: Patch, digest: str) -> list[tuple[bytes, bytes]]:
    """A patch's headers as both client readings of §4.5 accept them: ``IM: bsdiff``,
    ``expo-base-update-id``, ``delta-base`` and ``etag``."""
    return [
        (b"content-type", b"application/vnd.bsdiff"),
        (b"im", b"bsdiff"),
        (b"expo-base-update-id", patch.base_update_id.encode()),
        (b"delta-base", patch.base_update_id.encode()),
        (b"etag", f'"{digest}"'.encode()),
        # the same URL answers other devices with the whole asset or another patch: no shared cache
        (b"cache-control", b"private, no-store"),
        (b"vary", b"A-IM, Expo-Current-Update-ID"),
    ]


def _signed(snapshot: DeviceSnapshot, request: ExpoRequest, signature: str) -> dict[str, str] | None:
    """What the publisher signed with the newest release for these builds that has ``signature``
    (``no_update_signature``, ``embedded_signature``); None when none has."""
    for release in reversed(snapshot.releases):
        if release.expo_signed is None or release.runtime_version != request.runtime_version:
            continue
        if release.platform in (None, request.platform):
            signed: dict[str, str] = json.loads(release.expo_signed)
            if signed.get(signature):
                return signed
    return None


def _labels_by_update_id(snapshot: DeviceSnapshot) -> dict[str, str]:
    return {r.update_id: r.label for r in snapshot.releases if r.update_id}


async def refuse(scope: Scope, send: Send, status: int, allowed: tuple[str, ...], hint: str) -> None:
    """A path under ``/expo/`` with no route (404), or a method its route does not take (405 with Allow)."""
    if status == 405:
        await send_error(send, 405, hint, [(b"allow", ", ".join(allowed).encode())])
    else:
        await send_error(send, 404, f"No Expo route {scope['path']}.")
