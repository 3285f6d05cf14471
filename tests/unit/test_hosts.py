"""The Host allow-list rule (:mod:`overair.hosts`), table-driven."""

from __future__ import annotations

import pytest

from overair.hosts import HostPolicy, is_loopback


@pytest.mark.parametrize(
    ("allowed", "public_url", "bind", "host", "answered"),
    [
        ("", "", "127.0.0.1", "127.0.0.1:3000", True),
        ("", "", "127.0.0.1", "localhost:3000", True),
        ("", "", "127.0.0.1", "[::1]:3000", True),
        ("", "", "127.0.0.1", "LOCALHOST.", True),  # case and a trailing dot do not matter
        ("", "", "127.0.0.1", "evil.example", False),
        ("", "", "0.0.0.0", "192.168.1.5:3000", False),  # all addresses: nothing but loopback is known
        ("", "", "192.168.1.5", "192.168.1.5:3000", True),  # a specific bind address is the server's
        ("", "https://ota.example.com", "0.0.0.0", "ota.example.com", True),
        ("", "https://ota.example.com", "0.0.0.0", "ota.example.com:443", True),
        ("", "https://ota.example.com:8443", "0.0.0.0", "ota.example.com:8443", True),
        ("", "https://ota.example.com:8443", "0.0.0.0", "ota.example.com", False),
        ("", "https://ota.example.com", "0.0.0.0", "ota.example.com.evil.example", False),
        ("ota.internal, 10.0.0.5:3000", "", "0.0.0.0", "ota.internal:80", True),
        ("ota.internal, 10.0.0.5:3000", "", "0.0.0.0", "10.0.0.5:3000", True),
        ("ota.internal, 10.0.0.5:3000", "", "0.0.0.0", "10.0.0.5:4000", False),
        ("*", "", "0.0.0.0", "anything.example", True),
        ("", "", "127.0.0.1", "localhost:99999999", False),  # not a port
        ("", "", "127.0.0.1", "local\x00host", False),
        ("", "", "127.0.0.1", None, True),  # no Host header (HTTP/1.0): URLs come from the socket
    ],
)
def test_which_hosts_are_answered(
    allowed: str, public_url: str, bind: str, host: str | None, answered: bool
) -> None:
    assert HostPolicy.build(allowed, public_url, bind).allows(host) is answered


@pytest.mark.parametrize("entry", ["https://ota.example.com", "a/b", "host:port", ":3000"])
def test_an_entry_that_is_not_a_host_name_is_refused_by_name(entry: str) -> None:
    with pytest.raises(ValueError, match="is not a host name"):
        HostPolicy.build(entry)


def test_names_lists_what_is_answered() -> None:
    names = HostPolicy.build("ota.internal,10.0.0.5:3000", "https://ota.example.com").names()
    assert names == ["127.0.0.1", "[::1]", "localhost", "ota.example.com", "ota.internal", "10.0.0.5:3000"]


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("10.0.0.5", False)],
)
def test_is_loopback(bind: str, loopback: bool) -> None:
    assert is_loopback(bind) is loopback
