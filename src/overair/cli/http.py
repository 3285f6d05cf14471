"""The CLI's HTTP client for the management API: turns every failure into a :class:`CliError`.

It tries again, a bounded number of times with a growing pause and a line on stderr, when trying again is
safe and may help (docs/cli.md, "Exit status and retries"):

- the server answered 409 with the fix ``retry`` (another change to the same object happened at the same
  moment; the server rolled its change back, so sending the request again is the remedy it names);
- the connection broke before the request was sent (reset while connecting or while sending), or broke
  at any point of a GET: nothing was changed on the server, or nothing could be;
- a read (GET) was answered 502, 503 or 504: the server's database is down for a moment, or the load
  balancer met a host that just stopped.

A write whose connection broke after it was sent is not repeated: it may have taken effect, and doing it
twice (a second rollback, a second key) is worse than saying so. A refused connection is not retried
either: nothing listens there, and the message says what to check.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from overair import __version__
from overair.cli.config import Login, load_login
from overair.cli.errors import CliError, Refused, Unreachable
from overair.cli.hints import cli_hints
from overair.cli.output import defang, err_console

API = "/api/v1"
USER_AGENT = f"overair-cli/{__version__}"
"""How the CLI names itself: the server's audit log records its calls with the surface ``cli``."""
ATTEMPTS = 4
"""Tries of one request at most (the first and three more)."""
FIRST_PAUSE = 0.5
"""Seconds before the second try; each pause is twice the one before."""

_SAFE_TO_REPEAT = {"GET", "HEAD"}
"""Requests that change nothing: repeated even when the connection broke after they were sent."""

_UNAVAILABLE = {502, 503, 504}
"""A server (or the proxy in front of it) that cannot answer right now: reads are tried again."""


def quote(name: str) -> str:
    """A path segment, percent-encoded."""
    return urllib.parse.quote(name, safe="")


def _nobody_there(exc: BaseException) -> bool:
    """Whether the connection was refused (nothing listens at that address and port) or the host name is
    unknown: trying again does not help, checking the URL does."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return "connection refused" in str(exc).lower()


def _never_sent(exc: httpx.TransportError) -> bool:
    """Whether the request cannot have reached the server's application (it was not sent in full)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.WriteError | httpx.PoolTimeout)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _asks_retry(body: Mapping[str, Any]) -> bool:
    fixes = body.get("fixes")
    return isinstance(fixes, list) and any(isinstance(f, dict) and f.get("action") == "retry" for f in fixes)


def _rewind(kwargs: Mapping[str, Any]) -> None:
    """Files being uploaded back to their start, for another try."""
    files = kwargs.get("files")
    for value in (files or {}).values():
        stream = value[1] if isinstance(value, tuple) else value
        if hasattr(stream, "seek"):
            stream.seek(0)


class Api:
    """Calls ``/api/v1`` with the saved access key."""

    def __init__(
        self, login: Login | None = None, timeout: float = 60.0, pause: Callable[[float], None] = time.sleep
    ) -> None:
        self.login = login or load_login()
        self._pause = pause
        self._client = httpx.Client(
            base_url=self.login.server + API,
            headers={"Authorization": f"Bearer {self.login.access_key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request (again, when that is safe and may help); return the decoded JSON (None for
        204) or raise :class:`CliError`: :class:`Refused` for an error answer, :class:`Unreachable`
        when there is no usable answer."""
        for attempt in range(1, ATTEMPTS + 1):
            last = attempt == ATTEMPTS
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if last or _nobody_there(exc) or not (_never_sent(exc) or method in _SAFE_TO_REPEAT):
                    raise self._unreachable(method, exc) from None
                self._wait(
                    attempt, f"The connection to {self.login.server} broke ({exc or type(exc).__name__})"
                )
                _rewind(kwargs)
                continue
            if response.status_code == 409 and not last and _asks_retry(_body(response)):
                self._wait(attempt, "The server saw another change to the same object at the same moment")
                _rewind(kwargs)
                continue
            if response.status_code in _UNAVAILABLE and not last and method in _SAFE_TO_REPEAT:
                detail = _body(response).get("detail")
                said = detail.split(";")[0].split(",")[0] if isinstance(detail, str) else ""
                self._wait(
                    attempt, said or f"The server answered {response.status_code} {response.reason_phrase}"
                )
                continue
            return self._answer(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, attempt: int, why: str) -> None:
        pause = FIRST_PAUSE * 2 ** (attempt - 1)
        err_console.print(
            f"{defang(why)}; trying again in {pause:g} s (try {attempt + 1} of {ATTEMPTS}).",
            markup=False,
            highlight=False,
        )
        self._pause(pause)

    def _unreachable(self, method: str, exc: httpx.TransportError) -> Unreachable:
        server = self.login.server
        if isinstance(exc, httpx.ConnectError):
            return Unreachable(
                f"Cannot reach the overair server at {server}: is it running (make run) and is the URL "
                "right? Change it with: overair login --server URL --access-key KEY"
            )
        if isinstance(exc, httpx.TimeoutException):
            return Unreachable(f"The server at {server} did not answer in time; try again.")
        if method not in _SAFE_TO_REPEAT and not _never_sent(exc):
            return Unreachable(
                f"The connection to {server} broke after the request was sent ({exc or type(exc).__name__}), "
                "so it may or may not have taken effect: check (for releases: overair release list) before "
                "running the command again."
            )
        return Unreachable(f"Talking to {server} failed: {exc or type(exc).__name__}")

    def _answer(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise self._refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return defang(response.json())
        except ValueError:
            raise Unreachable(
                f"{self.login.server} answered with something that is not overair's JSON: is this the "
                "right server?"
            ) from None

    def _refusal(self, response: httpx.Response) -> CliError:
        """The server's refusal in one message: its reason, then what to do in this CLI's words. An error
        without overair's problem document comes from something else (a proxy, another server):
        :class:`Unreachable`."""
        body = _body(response)
        detail = body.get("detail") or body.get("error")
        code = body.get("code") if isinstance(body.get("code"), str) else None
        if not isinstance(detail, str):
            return Unreachable(
                f"{self.login.server} answered {response.status_code} {response.reason_phrase}, not with "
                "overair's JSON: is that the overair server's address (without /console)? Or a proxy in "
                "front of it failed."
            )
        fixes = [f for f in body.get("fixes") or [] if isinstance(f, Mapping)]
        if response.status_code == 401:
            return Refused(self._rejected_key(detail, fixes), status=401, code=code)
        suggestion = self._same_name_but_case(code, body.get("subject"))
        if suggestion is not None:
            fixes = [f for f in fixes if f.get("action") not in ("create-app", "add-deployment")]
        hints = [h for h in cli_hints(fixes) if h not in detail]
        message = " ".join([detail, *([suggestion] if suggestion else []), *hints])
        return Refused(str(defang(message)), status=response.status_code, code=code)

    def _rejected_key(self, detail: str, fixes: list[Mapping[str, Any]]) -> str:
        """A refused key, worded for where it came from: a wrong ``OVERAIR_ACCESS_KEY`` is not fixed by
        logging in again."""
        reason = detail.removeprefix("The access key was rejected: ")  # the sentence below says that part
        source = self.login.key_source
        if source == "OVERAIR_ACCESS_KEY":
            origin = "from OVERAIR_ACCESS_KEY"
            remedy = "Set OVERAIR_ACCESS_KEY to a valid key, or unset it to use the saved login."
        elif source == "--access-key":
            origin = "given with --access-key"
            remedy = "Nothing was saved: check the key (an admin makes one with: overair access-key create)."
        else:
            origin = f"saved in {source}" if source else "in use"
            remedy = " ".join(cli_hints(fixes))
        return str(
            defang(f"The server at {self.login.server} rejected the access key {origin}: {reason} {remedy}")
        )

    def _same_name_but_case(self, code: str | None, subject: object) -> str | None:
        """ "Did you mean CoolApp?" when an unknown app or deployment differs from one only in case."""
        if not isinstance(subject, Mapping):
            return None
        app = subject.get("app")
        if not isinstance(app, str):
            return None
        wanted, path = app, "/apps"
        if code == "deployment-not-found" and isinstance(subject.get("deployment"), str):
            wanted, path = subject["deployment"], f"/apps/{quote(app)}/deployments"
        elif code != "app-not-found":
            return None
        try:
            listed = self._client.get(path).json()
        except (httpx.HTTPError, ValueError):
            return None
        names = (
            [item.get("name") for item in listed if isinstance(item, dict)]
            if isinstance(listed, list)
            else []
        )
        for name in names:
            if isinstance(name, str) and name != wanted and name.casefold() == wanted.casefold():
                return f"Did you mean {name}? Names are case-sensitive."
        return None

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST ``path``."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        """PUT ``path``."""
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        """PATCH ``path``."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE ``path``."""
        return self.request("DELETE", path, **kwargs)
