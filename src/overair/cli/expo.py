"""``overair release push-expo``: publish ``npx expo export`` output, one release per platform.

The export's ``metadata.json`` names each platform's launch bundle and assets; each platform becomes a
package of those files plus ``expo.json`` (which file is the launch asset, each asset's extension, the
app's public config) published as the deployment's next release for that platform and runtime version.
Everything is checked before anything is uploaded: a malformed export is refused naming the file and
the problem.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from overair.cli import documents
from overair.cli.codesign import load_private_key
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.metrics import Deployment
from overair.cli.output import JsonOutput, Project, console, emit, parse_bool, plain, say
from overair.cli.packaging import package, run_build, upload
from overair.cli.releases import (
    Disabled,
    Mandatory,
    Rollout,
    _check_description,
    _print_warnings,
    app,
)
from overair.packages import InvalidBundle, expo


def _app_config(project: Path) -> dict[str, Any]:
    """The ``expo`` object of the project's app.json (empty when there is none)."""
    path = project / "app.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: not valid JSON ({exc}); fix it or pass --runtime-version.") from None
    config = data.get("expo", data) if isinstance(data, dict) else {}
    return config if isinstance(config, dict) else {}


def runtime_version_of(config: dict[str, Any], given: str | None) -> str:
    """The runtime version to publish for: ``given``, else app.json's ``runtimeVersion`` (a string, or the
    ``appVersion`` policy); other policies are computed at build time, so they must be given."""
    value: object = given
    if value is None:
        value = config.get("runtimeVersion")
        if isinstance(value, dict) and value.get("policy") == "appVersion":
            value = config.get("version")
    if not isinstance(value, str):
        raise CliError(
            "No runtime version: pass --runtime-version with the one your builds have (app.json "
            "runtimeVersion; the fingerprint and nativeVersion policies are computed when the app is built)."
        )
    try:
        return expo.check_runtime_version(value)
    except InvalidBundle as exc:
        raise CliError(exc.message) from None


def read_export(dist: Path, platforms: list[str]) -> list[expo.ExportedPlatform]:
    """The export's platforms (only ``platforms`` when given), checked against the files in ``dist``."""
    metadata = dist / expo.METADATA_FILE
    if not metadata.is_file():
        raise CliError(
            f"{metadata} does not exist: pass the folder `npx expo export` wrote (default dist/), or add "
            '--build "npx expo export".'
        )
    try:
        exported = expo.parse_metadata(metadata.read_bytes(), dist)
    except InvalidBundle as exc:
        raise CliError(f"{dist}/{exc.message}") from None
    if platforms:
        missing = [p for p in platforms if p not in {e.platform for e in exported}]
        if missing:
            raise CliError(
                f"{metadata}: the export has no {', '.join(missing)} bundle: export that platform."
            )
        exported = [e for e in exported if e.platform in platforms]
    return exported


def build_package(dist: Path, exported: expo.ExportedPlatform, extra: dict[str, Any], work: Path) -> Path:
    """One platform's archive: its bundle and assets at their export paths, and ``expo.json``."""
    folder = work / exported.platform
    for name in (exported.bundle, *(path for path, _ in exported.assets)):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dist / name, folder / name)
    (folder / expo.EXPO_FILE).write_bytes(expo.describe(exported, extra))
    zipped = work / f"{exported.platform}-zip"
    zipped.mkdir()
    return package(folder, zipped)


def sign_manifest(
    dist: Path,
    exported: expo.ExportedPlatform,
    extra: dict[str, Any],
    runtime: str,
    asset_url: str,
    overair: dict[str, Any],
    key: rsa.RSAPrivateKey,
    keyid: str,
) -> dict[str, str]:
    """The ``expo`` options of a signed release: the manifest built here (a new update id, now as its
    ``createdAt``, asset URLs on ``asset_url``), its signature, and the signed directives the server
    answers with (``noUpdateAvailable``, and ``rollBackToEmbedded`` dated just after the update)."""

    def stored(path: str, ext: str) -> expo.ExpoAsset:
        return expo.ExpoAsset(path, hashlib.sha256((dist / path).read_bytes()).hexdigest(), ext)

    content = expo.ExpoContent(
        stored(exported.bundle, exported.bundle.rpartition(".")[2] or "js"),
        tuple(stored(path, ext) for path, ext in exported.assets),
        extra,
    )
    now = dt.datetime.now(dt.UTC)
    body = expo.manifest_bytes(
        update_id=str(uuid.uuid4()),
        created_at=expo.iso_millis(now),
        runtime_version=runtime,
        content=content,
        url=lambda a: f"{asset_url}/expo/assets/{a.sha256}.{a.ext}",
        overair=overair,
    )

    def sign(data: bytes) -> str:
        return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()

    # what devices get if the deployment goes back to the binary: dated just after this update, so it
    # undoes this update and older ones, never a newer one (docs/security.md)
    embedded = expo.embedded_directive(expo.iso_millis(now + dt.timedelta(milliseconds=1)))
    return {
        "signed_manifest": base64.b64encode(body).decode(),
        "signature": sign(body),
        "no_update_signature": sign(expo.NO_UPDATE_DIRECTIVE),
        "embedded_directive": base64.b64encode(embedded).decode(),
        "embedded_signature": sign(embedded),
        "keyid": keyid,
    }


@app.command("push-expo")
def push_expo(
    project_name: Project,
    dist: Annotated[
        Path, typer.Option("--dist", help="The folder `npx expo export` wrote (default: dist).")
    ] = Path("dist"),
    runtime_version: Annotated[
        str | None,
        typer.Option(
            "--runtime-version",
            help="The runtime version of the builds this update is for (compared exactly). Default: "
            "app.json's runtimeVersion (a string, or the appVersion policy).",
        ),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="ios or android (repeatable); default: every platform exported."),
    ] = None,
    deployment: Deployment = "Production",
    description: Annotated[
        str, typer.Option("--description", callback=_check_description, help="What changed.")
    ] = "",
    rollout_percentage: Rollout = 100,
    mandatory: Mandatory = None,
    disabled: Disabled = None,
    build: Annotated[
        str | None,
        typer.Option("--build", help='A command that exports the app first, e.g. "npx expo export".'),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="The Expo project (its app.json); default: the current folder."),
    ] = None,
    code_signing_key: Annotated[
        Path | None,
        typer.Option(
            "--code-signing-key",
            help="The private key (PEM) of the app's code-signing certificate (expo-updates codesigning:"
            "generate): the manifests are built and signed here, and the server serves them as they are.",
        ),
    ] = None,
    code_signing_keyid: Annotated[
        str,
        typer.Option("--code-signing-keyid", help="The keyid of app.json's codeSigningMetadata."),
    ] = "main",
    asset_url: Annotated[
        str | None,
        typer.Option(
            "--asset-url",
            help="Signed manifests: the server URL devices download assets from (default: the server "
            "you are logged in to).",
        ),
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Publish an Expo export (``npx expo export``): one release per platform, for one runtime version."""
    for name in platform or []:
        if name not in expo.PLATFORMS:
            raise typer.BadParameter(f"{name!r}: give ios or android.", param_hint="--platform")
    project = (project_dir or Path.cwd()).expanduser()
    config = _app_config(project)
    runtime = runtime_version_of(config, runtime_version)
    dist = dist.expanduser()
    key = load_private_key(code_signing_key.expanduser()) if code_signing_key is not None else None
    path = f"/apps/{quote(project_name)}/deployments/{quote(deployment)}"
    released: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="overair-expo-") as work, Api(timeout=600) as api:
        api.get(f"{path}/releases")  # the app and the deployment exist: before building or uploading
        if build is not None:
            run_build(build, cwd=project)
        exported = read_export(dist, list(platform or []))
        extra = {"expoClient": config} if config else {}
        archives = [(e.platform, build_package(dist, e, extra, Path(work))) for e in exported]
        flags = {
            "mandatory": bool(parse_bool("--mandatory", mandatory)),
            "description": description,
        }
        for (name, archive), exported_platform in zip(archives, exported, strict=True):
            target: dict[str, Any] = {"platform": name, "runtime_version": runtime}
            if key is not None:
                base = (asset_url or api.login.server).rstrip("/")
                target |= sign_manifest(
                    dist, exported_platform, extra, runtime, base, flags, key, code_signing_keyid
                )
            options = {
                "target_version": "*",
                "expo": target,
                "rollout": rollout_percentage or 100,
                "disabled": bool(parse_bool("--disabled", disabled)),
                **flags,
            }
            released.append(upload(api, f"{path}/releases", archive, options))

    def human() -> None:
        for release in released:
            console.print(
                f"[green]Released {release['label']}[/] to {plain(release['deployment'])} of "
                f"{plain(project_name)}: {release['platform']}, runtime version "
                f"{plain(release['runtime_version'])}, {release['rollout']}% of devices "
                f"(update {release['update_id']}, {release['file_count']} files).",
                highlight=False,
            )
            _print_warnings(release)
        say(f'See them with: overair release list --project-name "{project_name}" --deployment {deployment}')

    emit(
        json_output,
        {"app": project_name, "releases": [documents.release(r) for r in released]},
        human,
    )
