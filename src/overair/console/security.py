"""The console's request checks: same-origin requests only, CSRF tokens, the session cookie.

Every state-changing request (a POST) must come from a page of this server: a browser says where a request
comes from in ``Sec-Fetch-Site`` and ``Origin``, and either one naming another site refuses it before
anything else is read. Forms also carry the session's CSRF token, compared in constant time, and the
session cookie is ``SameSite=Strict``: three independent locks, so one missing header never opens the door.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from overair.errors import ErrorKind, OverairError

COOKIE = "overair_console"
COOKIE_PATH = "/console"


class CrossSiteRequest(OverairError):
    """A request that a page of another site made the browser send."""

    kind = ErrorKind.FORBIDDEN


class ForgedForm(OverairError):
    """A form without this session's CSRF token."""

    kind = ErrorKind.FORBIDDEN


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(headers: Mapping[str, str], own_origins: set[str]) -> None:
    """Refuse a request that a browser says comes from another site.

    ``own_origins`` are this server's origins (``scheme://host[:port]`` as the request reached it, and the
    configured public URL). Clients that send neither header (curl, scripts) pass here and still need the
    CSRF token.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise CrossSiteRequest(
            f"This request came from another site (Sec-Fetch-Site: {site}); the console only accepts "
            "forms sent from its own pages. Open the console directly and try again."
        )
    origin = headers.get("origin")
    if origin is not None and origin.lower() not in own_origins:
        raise CrossSiteRequest(
            f"This request came from {origin}, not from this server; the console only accepts forms sent "
            "from its own pages. Open the console directly and try again."
        )


def own_origins(scheme: str, host: str, public_url: str) -> set[str]:
    """The origins a console page of this server can have."""
    origins = {f"{scheme}://{host}".lower()}
    if public_url:
        origins.add(_origin_of(public_url))
    return origins


def check_csrf(expected: str, given: str | None) -> None:
    """Refuse a form whose token is missing or is not the session's (constant-time comparison)."""
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise ForgedForm(
            "This form did not carry a valid security token: it was not sent from a current console page, "
            "or the page is older than your session. Reload the page and try again."
        )


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path of this server, never another site."""
    if (
        target
        and target.startswith(COOKIE_PATH + "/")
        and not any(bad in target for bad in ("//", "\\", "\n", "\r"))
    ):
        return target
    return COOKIE_PATH + "/"
