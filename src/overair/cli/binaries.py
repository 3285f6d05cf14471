"""``overair binary …``: describe, register and list store binaries, so the server knows what OTA may carry.

A store binary fixes facts that no over-the-air update can change: the app's name, the native template
(React Native) version, the native modules, the launcher icons and the splash screen (the Mendix Native
Builder's "When a Full Release Is Required"). ``describe`` reads them from a project folder as a
descriptor (:mod:`overair.packages.descriptor`); ``register`` records a published binary's descriptor on
the server, which then refuses any update that needs a store release for a binary it targets.

:func:`describe_project` reads two layouts:

* a React Native project (``package.json`` depending on ``react-native``, installed ``node_modules/``);
* a plain folder for other frameworks: ``native.json`` with ``app_name``, ``runtime_version`` and
  ``native_modules``, plus optional ``icons/`` and ``splash/`` folders.

Image facts are fingerprints (:func:`fingerprint`): the SHA-256 of the JSON list of sorted
``"relative/path:sha256-of-file"`` strings, paths relative to the project folder with ``/``; hidden files
and folders (``.DS_Store``, …) are left out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import (
    JsonOutput,
    Project,
    add_text_row,
    console,
    emit,
    err_console,
    new_table,
    plain,
    print_table,
    say,
    when,
)
from overair.packages import Descriptor, InvalidBundle, parse_descriptor

app = typer.Typer(
    help="Describe, register and list store binaries: what over-the-air updates may carry.",
    no_args_is_help=True,
)

NATIVE_FILE = "native.json"
"""The plain layout's file of native facts."""

PLAIN_KEYS = ("app_name", "runtime_version", "native_modules")
"""What ``native.json`` may hold."""

RN_ICON_PATTERNS = (
    "android/app/src/main/res/mipmap-*/ic_launcher*.png",
    "ios/*/Images.xcassets/AppIcon.appiconset/*",
)
"""The launcher icon files of a React Native project (relative globs)."""

RN_SPLASH_PATTERNS = (
    "android/app/src/main/res/drawable*/launch_screen*",
    "android/app/src/main/res/drawable*/splash*",
    "android/app/src/main/res/layout/launch_screen.xml",
    "ios/*/LaunchScreen.storyboard",
    "ios/*/Images.xcassets/*Splash*/*",
)
"""The splash screen files of a React Native project (relative globs)."""

_LAYOUTS = (
    "overair binary describe reads one of two layouts: a React Native project (package.json with a "
    '"react-native" dependency, after npm install), or a plain folder with native.json '
    '({"app_name": …, "runtime_version": …, "native_modules": {name: version}}) and optional icons/ and '
    "splash/ folders. See docs/when-to-use-ota.md."
)
_NPM_NAME = re.compile(r"^(?:@[^/\s.][^/\s]*/)?[^/\s.][^/\s]*$")
# A platform set to anything but null in react-native.config.js: `ios: {…}`, `"android": {}`.
_CONFIG_PLATFORM = re.compile(r"""["']?\b(?:ios|android)\b["']?\s*:\s*(?!null\b|undefined\b)\S""")


# -- describing a project --------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    """The JSON document in ``path``, or a :class:`CliError` naming the file and the problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CliError(f"{path} is not valid JSON ({what}): {exc}.") from None


def _json_object(path: Path, what: str) -> dict[str, Any]:
    document = _read_json(path, what)
    if not isinstance(document, dict):
        raise CliError(f"{path} must hold a JSON object ({what}).")
    return document


def _visible_files(root: Path, paths: Iterable[Path]) -> set[Path]:
    """The files among ``paths`` with no hidden name (``.DS_Store``, ``.git/…``) below ``root``."""
    return {
        p
        for p in paths
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def fingerprint(root: Path, files: Iterable[Path]) -> str | None:
    """SHA-256 over ``files`` (their paths relative to ``root`` and their content); None for no files.

    The digest is ``sha256(json.dumps(sorted(f"{relative_path}:{sha256_of_file}" for each file)))`` (json's
    defaults, UTF-8) with ``/`` in paths, so it changes when a file is added, removed, renamed or edited.
    """
    entries = []
    for path in files:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise CliError(f"Cannot read {path}: {exc.strerror or exc}.") from None
        entries.append(f"{path.relative_to(root).as_posix()}:{digest}")
    if not entries:
        return None
    return hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()


def _glob_fingerprint(root: Path, patterns: Iterable[str]) -> str | None:
    files: set[Path] = set()
    for pattern in patterns:
        files |= _visible_files(root, root.glob(pattern))
    return fingerprint(root, files)


def _folder_fingerprint(root: Path, folder: str) -> str | None:
    base = root / folder
    if not base.is_dir():
        return None
    return fingerprint(root, _visible_files(root, base.rglob("*")))


def _ships_native_code(folder: Path) -> bool:
    """Whether an installed npm package has native code that autolinking builds into the binary."""
    if (folder / "android").is_dir() or (folder / "ios").is_dir():
        return True
    if any(p.is_file() for p in folder.glob("*.podspec")):
        return True
    config = folder / "react-native.config.js"
    if config.is_file():
        try:
            text = config.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise CliError(f"Cannot read {config}: {exc.strerror or exc}.") from None
        return "platforms" in text and _CONFIG_PLATFORM.search(text) is not None
    return False


def _installed_version(node_modules: Path, name: str) -> str:
    manifest = node_modules / name / "package.json"
    if not manifest.is_file():
        raise CliError(
            f'"{name}" is in package.json but not installed ({manifest} is missing): run npm install first.'
        )
    version = _json_object(manifest, f"the installed {name}").get("version")
    if not isinstance(version, str) or not version.strip():
        raise CliError(f'{manifest} has no "version": reinstall {name} with npm install.')
    return version.strip()


def _is_react_native(package: dict[str, Any]) -> bool:
    dependencies = package.get("dependencies")
    return isinstance(dependencies, dict) and "react-native" in dependencies


def _describe_react_native(root: Path, package: dict[str, Any]) -> dict[str, object]:
    dependencies: dict[str, object] = package["dependencies"]
    node_modules = root / "node_modules"
    if not node_modules.is_dir():
        raise CliError(
            f"{root} is a React Native project without node_modules: run npm install first, so the installed "
            "versions of react-native and the native modules can be read."
        )
    app_name: object = None
    app_json = root / "app.json"
    if app_json.is_file():
        app_name = _json_object(app_json, "the app's configuration").get("name")
    if app_name is None:
        app_name = package.get("name")
    for name in dependencies:
        if not _NPM_NAME.match(name):
            raise CliError(f'{root / "package.json"} depends on "{name}", which is not an npm package name.')
    # Every dependency must be installed: one that is missing might be the native module that matters.
    installed = {name: _installed_version(node_modules, name) for name in sorted(dependencies)}
    runtime = installed.pop("react-native")
    modules = {
        name: version for name, version in installed.items() if _ships_native_code(node_modules / name)
    }
    return {
        "app_name": app_name,
        "runtime_version": runtime,
        "native_modules": modules,
        "launcher_icon": _glob_fingerprint(root, RN_ICON_PATTERNS),
        "splash_screen": _glob_fingerprint(root, RN_SPLASH_PATTERNS),
    }


def _describe_plain(root: Path) -> dict[str, object]:
    native = _json_object(root / NATIVE_FILE, '{"app_name": …, "runtime_version": …, "native_modules": {…}}')
    unknown = sorted(set(native) - set(PLAIN_KEYS))
    if unknown:
        raise CliError(
            f"{root / NATIVE_FILE} has unknown fields: {', '.join(unknown)} (it may hold "
            f"{', '.join(PLAIN_KEYS)}; icons and the splash screen go in the icons/ and splash/ folders)."
        )
    return {
        **native,
        "launcher_icon": _folder_fingerprint(root, "icons"),
        "splash_screen": _folder_fingerprint(root, "splash"),
    }


def describe_project(path: Path) -> Descriptor:
    """The descriptor of the store binary built from the project folder ``path``.

    Reads files only (no writes, no network, no subprocess) and gives the same result for the same files.
    A React Native project (``package.json`` with a ``react-native`` dependency) gives: ``app_name`` from
    ``app.json`` (else ``package.json``), ``runtime_version`` = the installed react-native version, the
    ``dependencies`` whose installed package ships native code (``android/`` or ``ios/``, a ``*.podspec``, or
    a ``react-native.config.js`` with platforms) as ``native_modules`` with their installed versions, and
    fingerprints of the launcher icon and splash screen files. A plain folder's ``native.json`` gives the
    first three, its ``icons/`` and ``splash/`` folders the fingerprints. Raises :class:`CliError` for a
    folder of neither layout, a React Native project that is not installed, or a malformed file.
    """
    root = path.expanduser()
    if not root.is_dir():
        raise CliError(f"{path} is not a folder: give the project folder. {_LAYOUTS}")
    package_json = root / "package.json"
    package = _json_object(package_json, "npm's package file") if package_json.is_file() else None
    react_native = package if package is not None and _is_react_native(package) else None
    plain = (root / NATIVE_FILE).is_file()
    if react_native is not None and plain:
        raise CliError(
            f"{root} is both a React Native project and a plain layout ({NATIVE_FILE}): remove {NATIVE_FILE} "
            "to describe the React Native project, or describe a folder that holds only native.json."
        )
    if react_native is not None:
        facts = _describe_react_native(root, react_native)
        source = "package.json, app.json and node_modules"
    elif plain:
        facts = _describe_plain(root)
        source = f"{NATIVE_FILE}, icons/ and splash/"
    else:
        found = " (its package.json has no react-native dependency)" if package is not None else ""
        raise CliError(f"{root} is not a project overair can describe{found}. {_LAYOUTS}")
    try:
        return parse_descriptor({k: v for k, v in facts.items() if v is not None})
    except InvalidBundle as exc:
        raise CliError(f"The project {root} gives an invalid descriptor ({source}): {exc.message}.") from None


def _summary(descriptor: Descriptor) -> str:
    modules = descriptor.native_modules or {}
    parts = [
        descriptor.app_name or "unnamed app",
        f"runtime {descriptor.runtime_version or 'unknown'}",
        f"{len(modules)} native module{'' if len(modules) == 1 else 's'}",
    ]
    return ", ".join(parts)


@app.command("describe")
def describe(
    project_dir: Annotated[
        Path,
        typer.Argument(
            help="The project folder: a React Native project (after npm install) or a folder with "
            "native.json."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the descriptor to this file instead of printing it."),
    ] = None,
) -> None:
    """Print the descriptor of the store binary built from PROJECT_DIR: what only a store release changes."""
    descriptor = describe_project(project_dir)
    text = json.dumps(descriptor.to_json(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    target = output.expanduser()
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    console.print(
        f"[green]Wrote the descriptor of {_summary(descriptor)}[/] to {output}.",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "When this build is in the stores: overair binary register --project-name APP --version VERSION "
        f"--descriptor {output}",
        highlight=False,
        soft_wrap=True,
    )


# -- the server's register of binaries -------------------------------------------------------------


def read_descriptor_file(path: Path) -> Descriptor:
    """Read and check a descriptor file; :class:`CliError` names the file and the problem."""
    try:
        data = path.expanduser().read_bytes()
    except FileNotFoundError:
        raise CliError(
            f"The descriptor {path} does not exist: write one with overair binary describe PROJECT_DIR "
            f"--output {path}"
        ) from None
    except OSError as exc:
        raise CliError(f"Cannot read the descriptor {path}: {exc.strerror or exc}.") from None
    try:
        return parse_descriptor(data)
    except InvalidBundle as exc:
        raise CliError(f"{path} is not a valid descriptor: {exc.message}.") from None


def _build(build_number: int | None) -> str:
    return "-" if build_number is None else str(build_number)


@app.command("register")
def register(
    project_name: Project,
    version: Annotated[
        str, typer.Option("--version", help="The binary's exact version in the stores, e.g. 1.0.0.")
    ],
    descriptor: Annotated[
        Path,
        typer.Option("--descriptor", help="The descriptor file written by overair binary describe --output."),
    ],
    build_number: Annotated[
        int | None, typer.Option("--build-number", min=0, help="The binary's build number.")
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Record a store binary and what it contains (the same version and build again: replace it)."""
    if not version.strip():
        raise CliError("--version needs the binary's exact version, e.g. 1.0.0.")
    facts = read_descriptor_file(descriptor)
    if facts == Descriptor():
        err_console.print(
            f"[yellow]Warning:[/] {plain(str(descriptor))} states no fact, so no update is ever refused for "
            "this binary.",
            highlight=False,
        )
    body = {"version": version.strip(), "build_number": build_number, "descriptor": facts.to_json()}
    with Api() as api:
        binary = api.post(f"/apps/{quote(project_name)}/binaries", json=body)

    def human() -> None:
        build = f" build {binary['build_number']}" if binary.get("build_number") is not None else ""
        console.print(
            f"[green]Registered {plain(project_name)} {binary['version']}{build}[/]: "
            f"{plain(_summary(facts))}.",
            highlight=False,
        )
        say("overair release push-update now refuses an update that needs a store release for this binary.")

    emit(json_output, {"app": project_name, "binary": documents.binary(binary)}, human)


@app.command("list")
def list_binaries(project_name: Project, json_output: JsonOutput = False) -> None:
    """Show the app's registered store binaries and what they contain."""
    with Api() as api:
        binaries = api.get(f"/apps/{quote(project_name)}/binaries")
    table = new_table(
        "Version", "Build", "App name", "Runtime", "Native modules", "Registered", title=project_name
    )
    for b in binaries:
        facts = b.get("descriptor") or {}
        modules = facts.get("native_modules")
        add_text_row(
            table,
            b["version"],
            _build(b.get("build_number")),
            facts.get("app_name") or "-",
            facts.get("runtime_version") or "-",
            "-" if modules is None else str(len(modules)),
            when(b["registered_at"]),
        )
    empty = (
        f"{project_name} has no registered binary. Register one with: overair binary register "
        f'--project-name "{project_name}" --version 1.0.0 --descriptor FILE'
    )
    emit(
        json_output,
        {"app": project_name, "binaries": [documents.binary(b) for b in binaries]},
        lambda: print_table(table, empty),
    )
