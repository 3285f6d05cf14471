"""The journal document's rules, table by table: what counts as damaged, and when a client id is trusted.

The engine-level behaviour (fallback, starting over, reports) is in test_journal.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from overair.client._journal import Bundle, DamagedJournal, State, decode, encode, salvage_client_id

CLIENT_ID = "5c1d0e7e-8d5b-4c55-9d42-0f4a7c1de0b1"
OTHER_ID = "5c1d0e7e-8d5b-4c55-9d42-0f4a7c1de0b0"


def sample() -> State:
    return State(
        client_id=CLIENT_ID,
        current=Bundle("v2", "ab" * 32, sequence=2),
        failed_labels=["v3"],
        reports=[{"label": "v3", "status": "failed", "client_id": CLIENT_ID}],
        sequence_floor=3,
        fresh_at=1_700_000_000.25,
    )


def test_a_state_comes_back_as_it_was_written() -> None:
    assert decode(encode(sample()), accept_legacy=False) == (sample(), False)


def rewritten(change: Callable[[dict[str, Any]], None], *, fix_checksum: bool = True) -> bytes:
    """The sample document with ``change`` applied; its checksum recomputed unless told not to (so that
    the shape rules, not the checksum, are what refuses it)."""
    document = json.loads(encode(sample()))
    change(document)
    if fix_checksum:
        body = json.dumps(document["state"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        document["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    return json.dumps(document).encode()


def set_in_state(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda document: document["state"].__setitem__(key, value)


DAMAGED: list[tuple[str, bytes, str]] = [
    ("empty", b"", "not JSON"),
    ("not UTF-8", b'{"version": 2, "x": "\xff"}', "not JSON"),
    ("an array", b"[]", "not a JSON object"),
    ("no version", b"{}", "no version"),
    ("version true (not 1)", b'{"version": true, "client_id": "x"}', "no version"),
    ("a future version", rewritten(lambda d: d.__setitem__("version", 3)), "unknown version 3"),
    ("no checksum", rewritten(lambda d: d.pop("sha256"), fix_checksum=False), "no state or no checksum"),
    ("a value changed", rewritten(set_in_state("sequence_floor", 0), fix_checksum=False), "checksum"),
    (
        "the checksum changed",
        rewritten(lambda d: d.__setitem__("sha256", "0" * 64), fix_checksum=False),
        "checksum",
    ),
    ("a field missing", rewritten(lambda d: d["state"].pop("client_id")), "client_id is missing"),
    ("a count as text", rewritten(set_in_state("trial_launches", "1")), "trial_launches has the wrong type"),
    ("a count as bool", rewritten(set_in_state("sequence_floor", True)), "sequence_floor has the wrong type"),
    ("a bundle as text", rewritten(set_in_state("current", "v2")), "current has the wrong type"),
    ("a report not a dict", rewritten(set_in_state("reports", [1])), "reports has an item"),
    ("a label not text", rewritten(set_in_state("failed_labels", [3])), "failed_labels has an item"),
]


@pytest.mark.parametrize(("data", "why"), [row[1:] for row in DAMAGED], ids=[row[0] for row in DAMAGED])
def test_damaged_documents_are_refused_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(DamagedJournal, match=why):
        decode(data, accept_legacy=True)


def legacy(**changes: object) -> bytes:
    document: dict[str, Any] = {"version": 1, **json.loads(encode(sample()))["state"], **changes}
    return json.dumps(document, indent=1).encode()


def test_a_legacy_document_is_accepted_only_where_it_may_be() -> None:
    assert decode(legacy(), accept_legacy=True) == (sample(), True)
    with pytest.raises(DamagedJournal, match="unknown version 1"):
        decode(legacy(), accept_legacy=False)  # state.json.prev is never a legacy file
    # a checksummed document whose version bit flipped to 1 is not taken for a legacy one
    flipped = encode(sample()).replace(b'"version": 2', b'"version": 1')
    with pytest.raises(DamagedJournal, match="client_id is missing"):
        decode(flipped, accept_legacy=True)


def copies(*ids: str) -> bytes:
    return b"".join(b'{"client_id": "%s"}' % i.encode() for i in ids)


SALVAGE: list[tuple[str, list[bytes], str | None]] = [
    ("two copies in one file", [copies(CLIENT_ID, CLIENT_ID)], CLIENT_ID),
    ("one copy in each generation", [copies(CLIENT_ID), copies(CLIENT_ID)], CLIENT_ID),
    ("a single copy", [copies(CLIENT_ID)], None),
    ("copies that differ", [copies(CLIENT_ID, CLIENT_ID), copies(OTHER_ID)], None),
    ("not a canonical uuid", [copies(CLIENT_ID.upper())] * 2, None),
    ("nothing readable", [bytes(300), b"\xff" * 10], None),
]


@pytest.mark.parametrize(
    ("damaged", "expected"), [row[1:] for row in SALVAGE], ids=[row[0] for row in SALVAGE]
)
def test_a_client_id_is_salvaged_only_when_copies_agree(damaged: list[bytes], expected: str | None) -> None:
    assert salvage_client_id(damaged) == expected
