"""The update check's query parser gives what urllib's parse_qsl gives."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from overair.protocols.asgi import query_params

QUERIES = [
    b"",
    b"deployment_key=abc&app_version=1.0.0&client_id=x",
    b"a=1&a=2",
    b"flag&empty=&=novalue",
    b"&&a=1&&",
    b"label=v%32&x=a+b",
    b"failed=v2,v3&package_hash=" + b"f" * 64,
    b"k=%E2%82%AC",
    b"eq=a=b",
]


@pytest.mark.parametrize("raw", QUERIES)
def test_same_as_parse_qsl(raw: bytes) -> None:
    assert query_params(raw) == dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
