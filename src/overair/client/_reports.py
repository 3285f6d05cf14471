"""Status reports: queued in the journal with the change they describe, delivered when the server answers."""

from __future__ import annotations

import logging

import httpx

from overair.client._device import Device
from overair.client._journal import State
from overair.client._types import UpdateInfo

log = logging.getLogger("overair.client")

RUNNING_REPORT_EVERY = 24 * 3600.0
"""Seconds between two ``running`` reports for the same label."""


class Reports:
    """The device's status reports (``POST /v1/report``): they survive restarts until the server has them.

    A report is queued inside the state change it describes (``with device.changing()``), so the journal
    never holds a change without its report or a report without its change.
    """

    def __init__(self, device: Device) -> None:
        self._device = device
        self._refusals_reported: set[tuple[str, str]] = set()

    def queue(self, label: str, status: str, reason: str = "") -> None:
        """Queue a report; call it inside ``device.changing()``."""
        report = {
            "deployment_key": self._device.settings.deployment_key,
            "label": label,
            "status": status,
            "client_id": self._device.state.client_id,
        }
        if reason:
            report["reason"] = reason[:500]
        self._device.state.reports.append(report)

    def note_running(self, state: State, label: str, *, report: bool) -> None:
        """Queue a ``running`` report for ``label`` unless one (or an install) went out today already.

        It tells the server the device is still active on that label; once a day is enough for that, and
        keeps launches from writing the journal or reporting each time.
        """
        now = self._device.wall_clock()
        if state.running_label == label and 0 <= now - state.running_at < RUNNING_REPORT_EVERY:
            return
        if report:
            # an offline device launching daily keeps one running report queued, not one per day
            state.reports[:] = [r for r in state.reports if r.get("status") != "running"]
            self.queue(label, "running")
        state.running_label, state.running_at = label, now

    def refusal(self, update: UpdateInfo, reason: str) -> None:
        """Report a refused update once per process, so a repeated offer does not flood the server."""
        log.error("update %s refused: %s", update.label, reason)
        if (update.label, reason) in self._refusals_reported:
            return
        self._refusals_reported.add((update.label, reason))
        with self._device.lock:
            try:
                with self._device.changing():
                    self.queue(update.label, "failed", reason)
            except OSError as exc:
                log.warning("could not queue the refusal report: %s", exc)

    def flush(self) -> int:
        """Deliver queued status reports; undelivered ones stay queued for the next try."""
        device = self._device
        delivered = 0
        with device.lock:
            queue = list(device.state.reports)
        for report in queue:
            try:
                response = device.http.post(f"{device.settings.server_url}/v1/report", json=report)
            except httpx.HTTPError as exc:
                log.info("status reports not delivered yet: %s", exc)
                break
            if response.status_code >= 500:
                break
            if response.status_code != 200:
                log.warning("status report dropped (HTTP %s): %s", response.status_code, response.text[:200])
            delivered += 1
        if delivered:
            with device.lock:
                try:
                    with device.changing() as state:
                        for report in queue[:delivered]:
                            if report in state.reports:
                                state.reports.remove(report)
                except OSError as exc:  # they stay queued; the server may count them twice, never lose them
                    log.warning("could not record delivered reports: %s", exc)
        return delivered
