"""How a delivery is sent: one HTTP POST with a hard deadline, redirects never followed.

The only module of :mod:`overair.webhooks` that speaks HTTP; the service hands it a URL, headers and a body
and gets back an :class:`Outcome` (the HTTP status, or why there was none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import anyio
import httpx

from overair import __version__

USER_AGENT = f"overair-webhooks/{__version__}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one try brought: the receiver's status code (None when it gave none) and, if it failed, why."""

    status_code: int | None
    error: str = ""

    @property
    def accepted(self) -> bool:
        """Whether the receiver took the delivery (a 2xx answer)."""
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


Send = Callable[[str, Mapping[str, str], bytes, float], Outcome]
"""Posts ``body`` with ``headers`` to a URL within a number of seconds."""


def post(url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> Outcome:
    """POST ``body`` to ``url``; the whole exchange (connecting, sending, the answer's head) ends within
    ``timeout`` seconds, however slowly the receiver answers. The answer's body is never read."""
    return anyio.run(_post, url, dict(headers), body, timeout)


async def _post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    with anyio.move_on_after(timeout) as waited:
        try:
            async with (
                httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client,
                client.stream("POST", url, content=body, headers=headers) as answer,
            ):
                code = answer.status_code
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            return Outcome(None, f"could not send it: {reason}"[:500])
    if waited.cancelled_caught:
        return Outcome(None, f"no answer within {timeout:g} s")
    if 300 <= code < 400:
        where = answer.headers.get("location", "")
        return Outcome(
            code, f"answered a redirect ({code}) to {where[:200]!r}; webhooks never follow redirects"
        )
    if not 200 <= code < 300:
        return Outcome(code, f"answered {code} {answer.reason_phrase}".strip())
    return Outcome(code)
