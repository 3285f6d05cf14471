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


def _fields(source: Mapping[str, Any], *names: str) -> Document:
    """``source``'s fields by name, in that order; a name ending in ``?`` may be missing (then ``null``)."""
    return {name.rstrip("?"): source.get(name[:-1]) if name.endswith("?") else source[name] for name in names}


def deployment(d: Mapping[str, Any]) -> Document:
    """A deployment with its key."""
    return _fields(d, "name", "key", "latest_label?", "created_at?")


def app(a: Mapping[str, Any]) -> Document:
    """An app with its deployments."""
    return {
        **_fields(a, "name", "platforms", "distribution", "owner?", "created_at?"),
        "deployments": [deployment(d) for d in a.get("deployments", [])],
    }


def access_key(k: Mapping[str, Any]) -> Document:
    """An access key as listed (never the key itself)."""
    return _fields(k, "name", "created_by", "created_at", "last_used_at?", "expires_at?")


def release(r: Mapping[str, Any]) -> Document:
    """A release with its targeting, rollout, origin and report counters."""
    document = _fields(
        r,
        *("label", "deployment", "target_version", "build_number", "rollout", "mandatory", "disabled"),
        *("description?", "released_at", "released_by?", "method", "origin_label?", "origin_deployment?"),
        *("package_hash", "size", "file_count", "sync_before_update?", "signing_key_id?"),
        *("downloads", "installs", "failures", "rollbacks", "platform?", "runtime_version?", "update_id?"),
    )
    document["description"] = document["description"] or ""
    document["sync_before_update"] = bool(document["sync_before_update"])
    ramp = r.get("guarded_rollout")
    return {
        **document,
        "guarded_rollout": None if not ramp else guarded_rollout(ramp),
        "warnings": list(r.get("warnings", [])),
    }


def guarded_rollout(g: Mapping[str, Any]) -> Document:
    """A release's guarded rollout: where it stands, the next step and when, each gate against its
    threshold, why it stopped, and what people did."""
    return {
        **_fields(g, "phase", "active", "ended", "share", "steps", "started_at", "step_started_at"),
        **_fields(g, "next_step", "next_step_at", "step_sample?", "min_sample", "halt_reason"),
        **_fields(g, "last_verdict?", "last_reason?", "last_message?", "last_evaluated_at?"),
        "gates": [
            _fields(
                x, "gate", "value", "threshold", "failures", "min_failures", "confidence", "fails", "text"
            )
            for x in g.get("gates", [])
        ],
        "acts": [_fields(a, "act", "by", "at", "reason", "step?") for a in g.get("acts", [])],
        "policy": dict(g.get("policy") or {}),
    }


def rollout_policy(p: Mapping[str, Any]) -> Document:
    """A deployment's rollout policy (``policy`` null when it has none), who set it, when and why."""
    return {
        **_fields(p, "deployment"),
        "policy": None if p.get("policy") is None else dict(p["policy"]),
        **_fields(p, "set_by?", "set_at?", "reason?"),
    }


def health(m: Mapping[str, Any] | None) -> Document:
    """A release's state on devices from the server's metrics: active devices now, failure rate and the
    last failure; ``null`` values when the server reports no metrics for it."""
    return {
        "active_devices": (m or {}).get("active"),
        **_fields(m or {}, "failure_rate?", "last_failure?", "last_failure_at?"),
    }


def binary(b: Mapping[str, Any]) -> Document:
    """A registered store binary and its descriptor."""
    return {
        **_fields(b, "version", "build_number?"),
        "descriptor": dict(b.get("descriptor") or {}),
        **_fields(b, "registered_by?", "registered_at"),
    }


def signing_key(k: Mapping[str, Any]) -> Document:
    """A publisher signing key of an app."""
    return _fields(k, "key_id", "name", "public_key", "added_by", "added_at", "retired_at?")


def job(j: Mapping[str, Any]) -> Document:
    """A background job: what, where it stands, its tries and last error, when."""
    return _fields(
        j, "kind", "key", "state", "attempts", "last_error", "created_at", "run_after", "finished_at?"
    )


def account(a: Mapping[str, Any]) -> Document:
    """An account (with its first key and the key's name, only when just created)."""
    document = _fields(a, "name", "email", "server_admin", "disabled", "created_at")
    return {**document, "key": a["key"], "key_name": a["key_name"]} if "key" in a else document


def collaborator(c: Mapping[str, Any]) -> Document:
    """An account with a role on an app, and where the role comes from (owner, grant, organisation …)."""
    return _fields(c, "account", "email", "role", "source")


def organisation(o: Mapping[str, Any]) -> Document:
    """An organisation with its members and their organisation roles."""
    return {"name": o["name"], "members": [_fields(m, "account", "role") for m in o["members"]]}


def audit_event(e: Mapping[str, Any]) -> Document:
    """A recorded change: when, who (key, surface, client), what, on which subject, before and after."""
    return _fields(
        e,
        "id",
        "at",
        "actor",
        "account?",
        "key_id?",
        "surface",
        "client_address?",
        "user_agent?",
        "action",
        "app?",
        "deployment?",
        "label?",
        "item?",
        "before",
        "after",
    )


def webhook(h: Mapping[str, Any], *, secret: bool = False) -> Document:
    """A webhook of an app (with its secret only when just created)."""
    document = _fields(h, "id", "url", "events", "format", "enabled", "created_by", "created_at")
    return {**document, "secret": h["secret"]} if secret else document


def delivery(d: Mapping[str, Any]) -> Document:
    """One event sent to a webhook: its status, tries, last answer or error, and times."""
    return _fields(
        d,
        "id",
        "webhook_id",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
        "gives_up_at",
    )
