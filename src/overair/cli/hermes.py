"""Hermes in ``push-update --react-native``: compile the bundle with the project's own ``hermesc``, against
the bytecode of the release devices run (``-base-bytecode``) when that is safe, as docs/hermes.md explains.

The base is the enabled release for the same target that the most active devices run (the newest one
when the server reports no metrics). Its bundle file is fetched from the server (``/v1/blobs/<sha256>``,
the file's content hash from the release manifest). The base-compiled output is used only when the
base's bytecode version is the compiler's and its disassembly (functions and their instructions, strings
written out) is the plain compile's; otherwise the plain compile is pushed and the reason said.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from overair.cli.errors import CliError
from overair.cli.http import Api
from overair.cli.metrics import by_label, deployment_metrics
from overair.packages import hermes

_SDK = {"Linux": "linux64-bin", "Darwin": "osx-bin", "Windows": "win64-bin"}


@dataclass(frozen=True, slots=True)
class Compiled:
    """How the pushed bytecode was compiled: against which base label (empty: plainly) and why."""

    bytecode_version: int
    base_label: str
    reason: str

    def document(self) -> dict[str, Any]:
        """The ``hermes`` part of ``push-update --json``."""
        return {
            "bytecode_version": self.bytecode_version,
            "base_label": self.base_label or None,
            "reason": self.reason,
        }

    def sentence(self) -> str:
        """What the CLI says about it."""
        if self.base_label:
            return (
                f"Hermes bytecode {self.bytecode_version}, compiled against {self.base_label}'s bytecode: "
                "devices on it get a small delta."
            )
        return f"Hermes bytecode {self.bytecode_version}, compiled plainly: {self.reason}"


def uses_hermes(project: Path, platform_name: str) -> bool:
    """Whether the app ships Hermes bytecode on ``platform_name``, as its native build decides: android's
    ``hermesEnabled=true`` in android/gradle.properties; iOS's Podfile not turning ``:hermes_enabled``
    off (Hermes is the default since react-native 0.70)."""
    if platform_name == "android":
        properties = project / "android" / "gradle.properties"
        text = properties.read_text(errors="replace") if properties.is_file() else ""
        return re.search(r"^\s*hermesEnabled\s*=\s*true\s*$", text, re.MULTILINE) is not None
    podfile = project / "ios" / "Podfile"
    if not podfile.is_file():
        return False
    return re.search(r":hermes_enabled\s*=>\s*false", podfile.read_text(errors="replace")) is None


def find_hermesc(project: Path) -> Path:
    """The project's own ``hermesc`` (react-native's npm package ships it per host system)."""
    sdk = project / "node_modules" / "react-native" / "sdks" / "hermesc"
    name = "hermesc.exe" if platform.system() == "Windows" else "hermesc"
    found = sdk / _SDK.get(platform.system(), "linux64-bin") / name
    if not found.is_file():
        raise CliError(
            f"The project uses Hermes but {found} does not exist: run npm install in {project} "
            "(react-native's package ships hermesc)."
        )
    return found


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True)
    except OSError as exc:
        raise CliError(f"Could not run {command[0]}: {exc}") from None
    if done.returncode != 0:
        raise CliError(f"hermesc failed (exit status {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def compiler_version(hermesc: Path) -> int:
    """The bytecode version ``hermesc`` writes (from ``hermesc -version``)."""
    found = re.search(r"HBC bytecode version:\s*(\d+)", _run([str(hermesc), "-version"]))
    if found is None:
        raise CliError(f"{hermesc} -version does not say its bytecode version")
    return int(found.group(1))


def compile_bundle(hermesc: Path, js: Path, out: Path, base: Path | None = None) -> None:
    """Compile like react-native's Gradle/Xcode step (optimised), against ``base`` when given."""
    command = [str(hermesc), "-emit-binary", "-O", "-w", "-out", str(out), str(js)]
    if base is not None:
        command.insert(1, f"-base-bytecode={base}")
    _run(command)


_BUFFER_OPERANDS = re.compile(r"^(\s+\w+WithBuffer\w*\s+r\d+),.*$", re.MULTILINE)
_DEBUG_OFFSETS = re.compile(r"^Offset in debug table:.*\n", re.MULTILINE)


def functions(hermesc: Path, bytecode: Path) -> str:
    """The disassembly's functions (instructions with their strings written out), without what
    ``-base-bytecode`` changes by design: the file header, the string table, where each literal buffer
    and debug record lies (``NewArrayWithBuffer``'s offsets into the buffers, whose layout follows the
    base's)."""
    text = _run([str(hermesc), "-b", "-dump-bytecode", str(bytecode)])
    start = text.find("\nFunction<")
    body = text[start:] if start >= 0 else ""
    return _BUFFER_OPERANDS.sub(r"\1, <buffer>", _DEBUG_OFFSETS.sub("", body))


def choose_base(api: Api, project_name: str, deployment: str, target: str) -> dict[str, Any] | None:
    """The enabled release for ``target`` that the most active devices run (ties and no metrics: the
    newest), or None when there is none."""
    path = f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases"
    candidates: list[dict[str, Any]] = [
        r for r in api.get(path) if not r["disabled"] and r["target_version"] == target
    ]
    if not candidates:
        return None
    try:
        active = {
            k: int(v.get("active", 0))
            for k, v in by_label(deployment_metrics(api, project_name, deployment)).items()
        }
    except (CliError, ValueError, TypeError, AttributeError):
        active = {}
    return max(candidates, key=lambda r: (active.get(r["label"], 0), int(r["sequence"])))


def fetch_base(
    api: Api, project_name: str, deployment: str, release: dict[str, Any], file: str
) -> bytes | None:
    """The bundle file ``file`` of ``release``, from the server (None: the release has no such file)."""
    releases = f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases"
    path = f"{releases}/{quote(release['label'])}/manifest"
    entry = next((e for e in api.get(path) if e["path"] == file), None)
    if entry is None:
        return None
    url = f"{api.login.server}/v1/blobs/{entry['sha256']}"
    try:
        response = httpx.get(url, follow_redirects=True, timeout=600)
    except httpx.HTTPError as exc:
        raise CliError(f"Could not download {release['label']}'s {file} from {url}: {exc}") from None
    if response.status_code != 200:
        raise CliError(f"Could not download {release['label']}'s {file} from {url}: {response.status_code}")
    return response.content


def compile_release(
    api: Api, project_name: str, deployment: str, target: str, project: Path, bundle_file: Path, name: str
) -> Compiled:
    """Replace the JavaScript ``bundle_file`` (``name`` in the archive) by its Hermes bytecode; the
    compiler's other files stay out of the bundle's folder."""
    hermesc = find_hermesc(project)
    version = compiler_version(hermesc)
    with tempfile.TemporaryDirectory(prefix="overair-hermes-") as scratch:
        js = Path(scratch) / "bundle.js"
        shutil.move(bundle_file, js)
        plain = Path(scratch) / "plain.hbc"
        compile_bundle(hermesc, js, plain)
        chosen, reason = _against_base(
            api, project_name, deployment, target, hermesc, version, js, plain, name
        )
        label, output = chosen if chosen is not None else ("", plain)
        shutil.move(output, bundle_file)
    return Compiled(version, label, reason)


def _against_base(
    api: Api,
    project_name: str,
    deployment: str,
    target: str,
    hermesc: Path,
    version: int,
    js: Path,
    plain: Path,
    name: str,
) -> tuple[tuple[str, Path] | None, str]:
    release = choose_base(api, project_name, deployment, target)
    if release is None:
        return None, f"no enabled release for {target} to compile against."
    data = fetch_base(api, project_name, deployment, release, name)
    if data is None:
        return None, f"{release['label']} has no {name}."
    base_version = hermes.bytecode_version(data)
    if base_version is None:
        return None, f"{release['label']}'s {name} is not Hermes bytecode."
    if base_version != version:
        return None, (
            f"{release['label']} is bytecode {base_version}, this hermesc writes {version}: "
            "compile with the base's react-native version to get small deltas."
        )
    base = js.with_name("base.hbc")
    base.write_bytes(data)
    based = js.with_name(js.name + ".based.hbc")
    compile_bundle(hermesc, js, based, base)
    if functions(hermesc, based) != functions(hermesc, plain):
        return None, f"compiled against {release['label']}, the functions differ from a plain compile."
    return (str(release["label"]), based), f"compiled against {release['label']}."
