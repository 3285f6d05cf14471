"""An offline app's data model, carried in a bundle as ``overair-model.json``, and how two differ.

Offline-first apps keep a local copy of part of the server's data model; a destructive change (an
entity or attribute removed or renamed, a type or association changed) reaching a device with unsynced
records can lose them (Mendix seed, "Offline Apps and Data Loss"). Additive changes are safe::

    {"format": 1, "entities": {"Order": {"attributes": {"id": "Integer", "note": "String"},
                                          "associations": {"customer": "Customer"}}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from overair.packages.errors import InvalidBundle

MODEL_FILE = "overair-model.json"
FORMAT = 1


@dataclass(frozen=True)
class Entity:
    """An entity: attribute name → type, association name → target entity."""

    attributes: dict[str, str]
    associations: dict[str, str]


def _names(raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in raw.items()
    ):
        raise InvalidBundle(f"{where} in {MODEL_FILE} must map names to non-empty strings")
    return dict(raw)


def parse_model(data: bytes) -> dict[str, Entity]:
    """Read a model document; :class:`InvalidBundle` says what is wrong."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidBundle(f"{MODEL_FILE} is not JSON: {exc}") from None
    if (
        not isinstance(raw, dict)
        or raw.get("format", FORMAT) != FORMAT
        or not isinstance(raw.get("entities"), dict)
    ):
        raise InvalidBundle(
            f'{MODEL_FILE} must be {{"format": 1, "entities": {{name: {{"attributes": …}}}}}}'
        )
    model = {}
    for name, entity in raw["entities"].items():
        if not isinstance(entity, dict):
            raise InvalidBundle(f'entity "{name}" in {MODEL_FILE} must be an object')
        model[name] = Entity(
            attributes=_names(entity.get("attributes"), f'the attributes of "{name}"'),
            associations=_names(entity.get("associations"), f'the associations of "{name}"'),
        )
    return model


def destructive_changes(old: dict[str, Entity], new: dict[str, Entity]) -> list[str]:
    """What in ``new`` would break data stored with ``old`` (empty: only additive changes).

    A rename cannot be told from a removal plus an addition, and is destructive either way.
    """
    changes = []
    for name, entity in sorted(old.items()):
        now = new.get(name)
        if now is None:
            changes.append(f"entity {name} removed or renamed")
            continue
        for attribute, kind in sorted(entity.attributes.items()):
            if attribute not in now.attributes:
                changes.append(f"attribute {name}.{attribute} removed or renamed")
            elif now.attributes[attribute] != kind:
                changes.append(
                    f"attribute {name}.{attribute} changed type from {kind} to {now.attributes[attribute]}"
                )
        for association, target in sorted(entity.associations.items()):
            if association not in now.associations:
                changes.append(f"association {name}.{association} removed or renamed")
            elif now.associations[association] != target:
                moved = now.associations[association]
                changes.append(f"association {name}.{association} now points to {moved}, not {target}")
    return changes
