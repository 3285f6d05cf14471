"""The objects in the CLI's JSON documents (``--json``), each built field by field from the server's answer.

These are the CLI's own promise to scripts (docs/cli.md, "JSON output", schema
:data:`overair.cli.output.JSON_SCHEMA`): the server may add fields to its API without them appearing
here, and a field here changes only with the schema version. Times are ISO 8601 in UTC, as the server
sends them; absent values are ``null``, never left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Document = dict[str, Any]


def deployment(d: Mapping[str, Any]) -> Document:
    """A deployment with its key."""
    return {
        "name": d["name"],
        "key": d["key"],
        "latest_label": d.get("latest_label"),
        "created_at": d.get("created_at"),
    }


def app(a: Mapping[str, Any]) -> Document:
    """An app with its deployments."""
    return {
        "name": a["name"],
        "platforms": list(a["platforms"]),
        "distribution": a["distribution"],
        "created_at": a.get("created_at"),
        "deployments": [deployment(d) for d in a.get("deployments", [])],
    }


def access_key(k: Mapping[str, Any]) -> Document:
    """An access key as listed (never the key itself)."""
    return {
        "name": k["name"],
        "created_by": k["created_by"],
        "created_at": k["created_at"],
        "last_used_at": k.get("last_used_at"),
        "expires_at": k.get("expires_at"),
    }


def release(r: Mapping[str, Any]) -> Document:
    """A release with its targeting, rollout, origin and report counters."""
    return {
        "label": r["label"],
        "deployment": r["deployment"],
        "target_version": r["target_version"],
        "build_number": r["build_number"],
        "rollout": r["rollout"],
        "mandatory": r["mandatory"],
        "disabled": r["disabled"],
        "description": r.get("description", ""),
        "released_at": r["released_at"],
        "released_by": r.get("released_by"),
        "method": r["method"],
        "origin_label": r.get("origin_label"),
        "origin_deployment": r.get("origin_deployment"),
        "package_hash": r["package_hash"],
        "size": r["size"],
        "file_count": r["file_count"],
        "sync_before_update": r.get("sync_before_update", False),
        "signing_key_id": r.get("signing_key_id"),
        "downloads": r["downloads"],
        "installs": r["installs"],
        "failures": r["failures"],
        "rollbacks": r["rollbacks"],
        "warnings": list(r.get("warnings", [])),
    }


def health(m: Mapping[str, Any] | None) -> Document:
    """A release's state on devices from the server's metrics: active devices now, failure rate and the
    last failure; ``null`` values when the server reports no metrics for it."""
    m = m or {}
    return {
        "active_devices": m.get("active"),
        "failure_rate": m.get("failure_rate"),
        "last_failure": m.get("last_failure"),
        "last_failure_at": m.get("last_failure_at"),
    }


def binary(b: Mapping[str, Any]) -> Document:
    """A registered store binary and its descriptor."""
    return {
        "version": b["version"],
        "build_number": b.get("build_number"),
        "descriptor": dict(b.get("descriptor") or {}),
        "registered_by": b.get("registered_by"),
        "registered_at": b["registered_at"],
    }


def signing_key(k: Mapping[str, Any]) -> Document:
    """A publisher signing key of an app."""
    return {
        "key_id": k["key_id"],
        "name": k["name"],
        "public_key": k["public_key"],
        "added_by": k["added_by"],
        "added_at": k["added_at"],
        "retired_at": k.get("retired_at"),
    }
