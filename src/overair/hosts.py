"""Which ``Host`` names the server answers for: the one rule that keeps a forged ``Host`` out of answers.

Download URLs, the CodePush ``blobUrl`` and upload ``Location`` are built from the request when no public
URL is configured, and update-check answers are signed and cached per download base. A request that names
a host the operator never chose (``Host: evil.example``) would otherwise get signed answers pointing
there, and fill the answer cache with one entry per invented name. So every request is checked against
:class:`HostPolicy` before anything else runs, and refused with ``421 Misdirected Request`` when its host
is not one of the server's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = ("localhost", "127.0.0.1", "::1")
"""Always allowed: a request from the machine itself can forge nothing it could not do directly."""

_ANY_ADDRESS = ("", "0.0.0.0", "::")


def _split(host: str) -> tuple[str, int | None]:
    """``(name, port)`` of a ``Host`` value or allow-list entry, lower-cased, IPv6 brackets removed."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, _, port_text = host.partition(":")
    else:
        name, port_text = host, ""  # a bare IPv6 address, or no port
    port = int(port_text) if port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 else None
    if port_text and port is None:
        raise ValueError(host)
    return name, port


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The host names (each with an optional port) requests may address; ``any_host`` turns the check off."""

    entries: frozenset[tuple[str, int | None]]
    any_host: bool = False

    @classmethod
    def build(cls, allowed: str, public_url: str = "", bind_host: str = "") -> HostPolicy:
        """The policy for ``OVERAIR_ALLOWED_HOSTS`` (comma-separated ``name``, ``name:port`` or ``*``), the
        public URL's host, the loopback names and the address the server binds to (unless it binds to all
        addresses). Raises ValueError naming an entry that is not a host name."""
        names = [part.strip() for part in allowed.split(",") if part.strip()]
        if "*" in names:
            return cls(frozenset(), any_host=True)
        entries: set[tuple[str, int | None]] = {(name, None) for name in LOOPBACK}
        if public_url:
            entries.add(_split(urlsplit(public_url).netloc.rpartition("@")[2]))
        if bind_host.strip("[]") not in _ANY_ADDRESS:
            entries.add((_split(bind_host)[0], None))
        for name in names:
            try:
                entry = _split(name)
            except ValueError:
                raise ValueError(
                    f"{name!r} is not a host name (like ota.example.com or 10.0.0.5:3000)"
                ) from None
            if not entry[0] or "/" in entry[0]:
                raise ValueError(f"{name!r} is not a host name (like ota.example.com or 10.0.0.5:3000)")
            entries.add(entry)
        return cls(frozenset(entries))

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header is the server's to answer (no header: HTTP/1.0 and
        raw clients, answered with URLs from the public URL or the socket's own address)."""
        if self.any_host or host is None:
            return True
        try:
            name, port = _split(host)
        except ValueError:
            return False
        return (name, None) in self.entries or (port is not None and (name, port) in self.entries)

    def names(self) -> list[str]:
        """The allowed hosts, for messages."""
        if self.any_host:
            return ["*"]
        shown = sorted(f"[{n}]" if ":" in n else n for n, _ in self.entries if _ is None)
        shown += sorted(f"{f'[{n}]' if ':' in n else n}:{p}" for n, p in self.entries if p is not None)
        return shown


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) is reachable only from this machine."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
