"""The update check: ask the server, verify its answer (freshness, offer, signatures), throttle."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from overair.client._device import Device
from overair.client._reports import Reports
from overair.client._types import CheckResult, CheckStatus, CheckTrigger, DeltaInfo, UpdateInfo, UpdateRefused

log = logging.getLogger("overair.client")

_HASH = re.compile(r"[0-9a-f]{64}")
_LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _delta_info(raw: object) -> DeltaInfo | None:
    """The offered delta, or None when there is none or it is not well-formed (the full package is used)."""
    if not isinstance(raw, dict):
        return None
    url, size, digest, base = raw.get("url"), raw.get("size"), raw.get("sha256"), raw.get("base_package_hash")
    if not (isinstance(url, str) and isinstance(digest, str) and isinstance(base, str)):
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return None
    if not (_HASH.fullmatch(digest) and _HASH.fullmatch(base)):
        return None
    return DeltaInfo(url, size, digest, base)


def parse_answer(body: Any) -> CheckResult:
    """The ``/v1/update-check`` answer as a :class:`CheckResult` (raises ValueError/KeyError/TypeError)."""
    status = CheckStatus(body["status"])
    attention, message = bool(body.get("attention", False)), str(body.get("message") or "")
    info = None
    if status is CheckStatus.UPDATE:
        update = body["update"]
        info = UpdateInfo(
            label=str(update["label"]),
            package_hash=str(update["package_hash"]),
            size=int(update["size"]),
            download_url=str(update["download_url"]),
            manifest_url=str(update["manifest_url"]),
            mandatory=bool(update["mandatory"]),
            description=str(update.get("description") or ""),
            sync_before_update=bool(update.get("sync_before_update", False)),
            attention=attention,
            message=message,
            sequence=int(update.get("sequence") or 0),
            signed_manifest=_optional_text(update.get("signed_manifest")),
            signature=_optional_text(update.get("signature")),
            key_id=_optional_text(update.get("key_id")),
            # format 2 (Hermes bytecode transformed) when offered: this engine reads it
            delta=_delta_info(update.get("delta_v2")) or _delta_info(update.get("delta")),
        )
    store_version = body.get("store_version")
    return CheckResult(status, info, str(store_version) if store_version else None, attention, message)


class Checker:
    """Asks ``/v1/update-check`` and turns the answer into a :class:`CheckResult` it has verified.

    Checks other than at START are throttled to one per ``min_check_interval`` seconds of ``clock``
    (monotonic). With a server key, answers must be fresh (``Trust.check_answer``); after
    ``max_staleness`` seconds of the device's wall clock without one, ``on_stale`` is told.
    """

    def __init__(
        self,
        device: Device,
        reports: Reports,
        *,
        clock: Callable[[], float],
        on_stale: Callable[[float], None] | None,
    ) -> None:
        self._device = device
        self._reports = reports
        self._clock = clock
        self._on_stale = on_stale
        self._last_check: float | None = None

    def check(self, trigger: CheckTrigger) -> CheckResult:
        """Ask the server whether there is an update; never raises (see ``UpdateEngine.check_for_update``)."""
        device = self._device
        with device.lock:
            now = self._clock()
            if (
                trigger is not CheckTrigger.START
                and self._last_check is not None
                and now - self._last_check < device.settings.min_check_interval
            ):
                return CheckResult(CheckStatus.THROTTLED)
            self._last_check = now
            params = self._params()
        self._reports.flush()
        try:
            response = device.http.get(f"{device.settings.server_url}/v1/update-check", params=params)
        except httpx.HTTPError as exc:
            log.warning("update check failed (%s): %s", trigger.value, exc)
            self._tell_if_stale()
            return CheckResult(CheckStatus.OFFLINE)
        if response.status_code != 200:
            log.warning("update check refused with %s: %s", response.status_code, response.text[:300])
            self._tell_if_stale()
            return CheckResult(CheckStatus.OFFLINE)
        try:
            self._check_fresh(response, params)
        except UpdateRefused as exc:
            log.error("update check answer refused: %s", exc.message)
            self._tell_if_stale()
            return CheckResult(CheckStatus.REFUSED, message=exc.message)
        try:
            result = parse_answer(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("update check answer was not understood: %s", exc)
            return CheckResult(CheckStatus.OFFLINE)
        info = result.update
        if info is None:
            return result
        if not (_HASH.fullmatch(info.package_hash) and _LABEL.fullmatch(info.label)):
            # both become file names on the device: never trust them as given
            log.warning("update check answer has an invalid label or package hash; ignored")
            return CheckResult(CheckStatus.OFFLINE)
        if info.label in device.state.failed_labels:
            return CheckResult(CheckStatus.NO_UPDATE)
        try:
            with device.lock:
                device.trust.check_update(info, device.installed_sequence())
        except UpdateRefused as exc:
            self._reports.refusal(info, exc.message)
            return CheckResult(CheckStatus.REFUSED, info, message=exc.message)
        return result

    def _params(self) -> dict[str, Any]:
        """What the device tells the server: who it is, what it runs, what failed here."""
        settings, state = self._device.settings, self._device.state
        params: dict[str, Any] = {
            "deployment_key": settings.deployment_key,
            "app_version": settings.app_version,
            "client_id": state.client_id,
            "label": state.current.label if state.current else "",
            "package_hash": state.current.package_hash if state.current else "",
        }
        if settings.build_number is not None:
            params["build_number"] = settings.build_number
        if state.failed_labels:
            params["failed"] = ",".join(state.failed_labels)
        return params

    # -- freshness ----------------------------------------------------------------------------------

    def _check_fresh(self, response: httpx.Response, params: Mapping[str, Any]) -> None:
        device = self._device
        now = device.wall_clock()
        with device.lock:
            last = device.state.fresh_issued
        issued = device.trust.check_answer(response.headers, response.content, params, now, last)
        if issued is None:
            return
        with device.lock:
            try:
                with device.changing() as state:
                    state.fresh_at, state.fresh_issued = now, max(issued, state.fresh_issued)
            except OSError as exc:
                log.warning("could not record the fresh answer: %s", exc)

    def freshness_age(self) -> float | None:
        """Seconds since the last server-signed answer (or the first launch); None without server_key."""
        if self._device.trust.server is None:
            return None
        with self._device.lock:
            fresh_at = self._device.state.fresh_at
        now = self._device.wall_clock()
        return max(0.0, now - (fresh_at if fresh_at is not None else now))

    def _tell_if_stale(self) -> None:
        age = self.freshness_age()
        if age is not None and age > self._device.settings.max_staleness:
            log.warning("no fresh update-check answer for %.0f hours", age / 3600)
            if self._on_stale is not None:
                try:
                    self._on_stale(age)
                except Exception:  # the host's callback must not break the update flow
                    log.exception("on_stale callback failed")
