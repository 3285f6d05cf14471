"""What a store binary contains, and what a bundle expects of it: the facts that decide whether an
update may go over the air or needs a store release (Mendix/Native Builder "When a Full Release Is
Required").

The same JSON document describes both: a binary (``overair binary register --descriptor``) and a
bundle (``overair.json`` at the package's root, written by ``overair release push-update``)::

    {"format": 1, "app_name": "CoolApp", "runtime_version": "0.74.3",
     "native_modules": {"react-native-ble-plx": "3.1.0"},
     "launcher_icon": "<sha256>", "splash_screen": "<sha256>"}

Every fact is optional; a fact missing on either side is not compared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from overair.packages.errors import InvalidBundle

DESCRIPTOR_FILE = "overair.json"
FORMAT = 1
_HASH = re.compile(r"^[0-9a-f]{64}$")
_MAX_MODULES = 2000


@dataclass(frozen=True)
class Descriptor:
    """The facts that only a store release can change."""

    app_name: str | None = None
    runtime_version: str | None = None
    native_modules: dict[str, str] | None = None
    launcher_icon: str | None = None
    splash_screen: str | None = None

    def to_json(self) -> dict[str, object]:
        """The document (facts that are known only)."""
        out: dict[str, object] = {"format": FORMAT}
        for name in ("app_name", "runtime_version", "native_modules", "launcher_icon", "splash_screen"):
            value = getattr(self, name)
            if value is not None:
                out[name] = dict(sorted(value.items())) if isinstance(value, dict) else value
        return out


@dataclass(frozen=True)
class FullReleaseReason:
    """One reason an update cannot go over the air, as a sentence naming the case."""

    case: str
    """``renamed``, ``native_template``, ``native_module``, ``launcher_icon`` or ``splash_screen``."""
    message: str
    details: dict[str, str] = field(default_factory=dict)


def _text(raw: dict[str, object], name: str, limit: int = 200) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidBundle(
            f'"{name}" in the descriptor must be a non-empty string of at most {limit} characters'
        )
    return value.strip()


def parse_descriptor(data: bytes | str | dict[str, object]) -> Descriptor:
    """Read and check a descriptor document; :class:`InvalidBundle` says what is wrong."""
    if isinstance(data, dict):
        raw = data
    else:
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InvalidBundle(f"the descriptor is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidBundle(
            "the descriptor must be a JSON object with app_name, runtime_version, native_modules, …"
        )
    if raw.get("format", FORMAT) != FORMAT:
        raise InvalidBundle(f"descriptor format {raw.get('format')!r} is not supported (expected {FORMAT})")
    unknown = set(raw) - {
        "format",
        "app_name",
        "runtime_version",
        "native_modules",
        "launcher_icon",
        "splash_screen",
    }
    if unknown:
        raise InvalidBundle(f"unknown fields in the descriptor: {', '.join(sorted(unknown))}")
    modules = raw.get("native_modules")
    if modules is not None:
        if not isinstance(modules, dict) or len(modules) > _MAX_MODULES:
            raise InvalidBundle('"native_modules" must be an object of module name to version')
        for name, version in modules.items():
            if (
                not name
                or len(name) > 214
                or not isinstance(version, str)
                or not version
                or len(version) > 100
            ):
                raise InvalidBundle(f'native module "{name}" needs a name and a version string')
    hashes = {}
    for name in ("launcher_icon", "splash_screen"):
        value = _text(raw, name, 64)
        if value is not None and not _HASH.match(value):
            raise InvalidBundle(f'"{name}" must be a SHA-256 hex digest of the image files')
        hashes[name] = value
    return Descriptor(
        app_name=_text(raw, "app_name"),
        runtime_version=_text(raw, "runtime_version", 100),
        native_modules=dict(modules) if isinstance(modules, dict) else None,
        launcher_icon=hashes["launcher_icon"],
        splash_screen=hashes["splash_screen"],
    )


def full_release_reasons(binary: Descriptor, bundle: Descriptor, binary_name: str) -> list[FullReleaseReason]:
    """Why ``bundle`` cannot run on ``binary`` (empty: it may go over the air).

    ``binary_name`` names the binary in the messages, e.g. ``1.0.0 build 1``.
    """
    reasons: list[FullReleaseReason] = []
    store = "publish a store release"
    if binary.app_name and bundle.app_name and binary.app_name != bundle.app_name:
        reasons.append(
            FullReleaseReason(
                "renamed",
                f'the app is renamed ("{binary.app_name}" in {binary_name}, "{bundle.app_name}" in the '
                f"bundle): {store}",
            )
        )
    if binary.runtime_version and bundle.runtime_version and binary.runtime_version != bundle.runtime_version:
        reasons.append(
            FullReleaseReason(
                "native_template",
                f"new native template version {bundle.runtime_version} (the binary {binary_name} has "
                f"{binary.runtime_version}): {store}",
            )
        )
    if binary.native_modules is not None and bundle.native_modules is not None:
        for name, version in sorted(bundle.native_modules.items()):
            have = binary.native_modules.get(name)
            if have is None:
                message = f"new native module {name} {version} is not in {binary_name}: {store}"
            elif have != version:
                message = f"native module {name} {version} differs from {have} in {binary_name}: {store}"
            else:
                continue
            reasons.append(FullReleaseReason("native_module", message, {"module": name, "version": version}))
    if binary.launcher_icon and bundle.launcher_icon and binary.launcher_icon != bundle.launcher_icon:
        reasons.append(
            FullReleaseReason("launcher_icon", f"the launcher icons changed since {binary_name}: {store}")
        )
    if binary.splash_screen and bundle.splash_screen and binary.splash_screen != bundle.splash_screen:
        reasons.append(
            FullReleaseReason("splash_screen", f"the splash screen changed since {binary_name}: {store}")
        )
    return reasons
