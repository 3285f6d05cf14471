"""The CLI's HTTP client for the management API: turns every failure into a :class:`CliError`."""

from __future__ import annotations

import urllib.parse
from typing import Any

import httpx

from overair.cli.config import Login, load_login
from overair.cli.errors import CliError
from overair.cli.hints import cli_hints
from overair.cli.output import defang

API = "/api/v1"


def _explain(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error")
        if isinstance(detail, str):
            fixes = body.get("fixes")
            hints = cli_hints(fixes) if isinstance(fixes, list) else []
            return defang(" ".join([detail, *hints]))  # type: ignore[no-any-return]
    return f"The server answered {response.status_code} {response.reason_phrase}."


class Api:
    """Calls ``/api/v1`` with the saved access key."""

    def __init__(self, login: Login | None = None, timeout: float = 60.0) -> None:
        self.login = login or load_login()
        self._client = httpx.Client(
            base_url=self.login.server + API,
            headers={"Authorization": f"Bearer {self.login.access_key}", "User-Agent": "overair-cli"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON (None for 204) or raise :class:`CliError`."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(
                f"Cannot reach the overair server at {self.login.server}: is it running (make run) and is "
                "the URL right? Change it with: overair login --server URL --access-key KEY"
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"The server at {self.login.server} did not answer in time; try again.") from None
        except httpx.HTTPError as exc:
            raise CliError(f"Talking to {self.login.server} failed: {exc}") from None
        if response.status_code == 401:
            raise CliError(f"The server at {self.login.server} rejected the access key: {_explain(response)}")
        if response.status_code >= 400:
            raise CliError(_explain(response))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return defang(response.json())
        except ValueError:
            raise CliError(
                f"{self.login.server} answered with something that is not overair's JSON: is this the "
                "right server?"
            ) from None

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST ``path``."""
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        """PATCH ``path``."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE ``path``."""
        return self.request("DELETE", path, **kwargs)


def quote(name: str) -> str:
    """A path segment, percent-encoded."""
    return urllib.parse.quote(name, safe="")
