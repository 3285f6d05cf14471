"""``overair release …``: the Native Builder's commands (push-update, list, rollback-update, patch-update,
promote) with the same flags."""

from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from overair.cli.binaries import describe_project
from overair.cli.codesign import sign_archive
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import add_text_row, console, err_console, parse_bool, plain, when
from overair.cli.signing import (
    AllowUnsignedOption,
    SigningKeyOption,
    TrustedKeysOption,
    load_signing_key,
    sign_republish,
    sign_upload,
    trusted_keys,
)
from overair.packages import (
    DESCRIPTOR_FILE,
    Descriptor,
    InvalidBundle,
    rewrite_archive,
    top_folder,
    zip_directory,
)

app = typer.Typer(help="Publish and steer releases.", no_args_is_help=True)

Project = Annotated[str, typer.Option("--project-name", help="The app, e.g. CoolApp.")]
Deployment = Annotated[str, typer.Option("--deployment", help="The deployment.")]


def _check_rollout(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 100:
        raise typer.BadParameter(f"{value} is outside 1-100: give the percentage of devices, e.g. 25 or 100.")
    return value


Rollout = Annotated[
    int | None,
    typer.Option(
        "--rollout-percentage", callback=_check_rollout, help="Share of devices (1-100) that get the release."
    ),
]
MANDATORY_HELP = "Devices must install it: --mandatory alone means true; --mandatory false makes it optional."
DISABLED_HELP = "Hide it from devices (true) or show it again (false)."


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    )


class _ProgressReader:
    """A file wrapper that advances a progress bar as httpx reads the upload."""

    def __init__(self, stream: IO[bytes], progress: Progress, task: Any) -> None:
        self._stream = stream
        self._progress = progress
        self._task = task

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._progress.advance(self._task, len(chunk))
        return chunk

    def fileno(self) -> int:
        return self._stream.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def _package(bundle: Path, workdir: Path) -> Path:
    if not bundle.exists():
        raise CliError(f"The bundle {bundle} does not exist: pass --bundle with a folder or a .zip file.")
    if bundle.is_file():
        return bundle
    archive = workdir / "bundle.zip"
    with _progress() as progress:
        task = progress.add_task("Packaging", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            zip_directory(bundle, archive, progress=advance)
        except InvalidBundle as exc:
            raise CliError(exc.message) from None
    return archive


def _print_warnings(release: dict[str, Any]) -> None:
    for warning in release.get("warnings", []):
        console.print(f"[yellow]Warning:[/] {warning}", soft_wrap=True)


def _run_build(command: str | list[str], cwd: Path | None = None, what: str = "build command") -> None:
    """Run the build command (a shell line, or an argv list run without a shell) in ``cwd``, streaming its
    output; stop with its exit status if it fails."""
    shown = command if isinstance(command, str) else " ".join(command)
    console.print(f"Building: {shown}", highlight=False)
    try:
        status = subprocess.run(command, shell=isinstance(command, str), cwd=cwd, check=False).returncode
    except OSError as exc:
        raise CliError(f"Could not run the {what} {shown!r}: {exc}") from None
    if status != 0:
        err_console.print(f"[red]Error:[/] the {what} failed with exit status {status}; nothing was pushed.")
        raise typer.Exit(status)


_RN_BUNDLE_FILES = {"ios": "main.jsbundle", "android": "index.android.bundle"}
"""The bundle file name react-native-code-push expects per platform (as ``code-push release-react``)."""


def _check_platform(value: str | None) -> str | None:
    if value is not None and value not in _RN_BUNDLE_FILES:
        raise typer.BadParameter(f"{value!r} is not a React Native platform: give ios or android.")
    return value


def _bundle_react_native(platform: str, project: Path, workdir: Path) -> Path:
    """Run ``react-native bundle`` as ``code-push release-react`` does, into ``<tmp>/CodePush``; returns
    the folder to zip (``<tmp>``), so the archive's entries are ``CodePush/...``."""
    if not project.is_dir():
        raise CliError(
            f"The project folder {project} does not exist: pass --project-dir with your app's folder."
        )
    root = workdir / "react-native"
    output = root / "CodePush"
    output.mkdir(parents=True)
    entry = f"index.{platform}.js" if (project / f"index.{platform}.js").is_file() else "index.js"
    command = [
        "npx",
        "--no",
        "react-native",
        "bundle",
        "--platform",
        platform,
        "--dev",
        "false",
        "--entry-file",
        entry,
        "--bundle-output",
        str(output / _RN_BUNDLE_FILES[platform]),
        "--assets-dest",
        str(output),
    ]
    _run_build(command, cwd=project, what="react-native bundle command")
    return root


def _describe(archive: Path, descriptor: Descriptor, workdir: Path) -> Path:
    """The archive with the project's descriptor as overair.json (next to the bundle's files)."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/" + DESCRIPTOR_FILE) and n != DESCRIPTOR_FILE]
    name = top_folder(names) + DESCRIPTOR_FILE
    described = workdir / "described.zip"
    data = json.dumps(descriptor.to_json(), indent=2).encode()
    rewrite_archive(archive, described, lambda entry: entry == name, {name: data})
    return described


def _upload(api: Api, path: str, archive: Path, options: dict[str, Any]) -> Any:
    size = archive.stat().st_size
    with archive.open("rb") as stream, _progress() as progress:
        task = progress.add_task("Uploading", total=size)
        reader = _ProgressReader(stream, progress, task)
        return api.post(
            path,
            files={"package": ("bundle.zip", reader, "application/zip")},
            data={"release": json.dumps(options)},
        )


def _audience(api: Api, project_name: str, deployment: str, release: dict[str, Any]) -> str:
    """How many active devices run a release for the new release's target, from the server's metrics."""
    target = release["target_version"]
    try:
        body = api.get(
            f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/metrics", params={"hours": 1}
        )
        labels = body.get("labels", []) if isinstance(body, dict) else []
        devices = sum(int(x.get("active", 0)) for x in labels if x.get("target_version") == target)
    except (CliError, ValueError, TypeError, AttributeError):
        return "Active devices: not known (the server reports no metrics)."
    if not devices:
        return f"No active devices reported yet on {target}."
    if release["disabled"]:
        return f"Disabled: none of the {devices:,} active devices on {target} get it yet."
    share = release["rollout"]
    reach = f" (about {round(devices * share / 100):,})" if share < 100 else ""
    return f"Rolled out to {share}% of {devices:,} active devices on {target}{reach}."


@app.command("push-update")
def push_update(
    project_name: Project,
    target_version: Annotated[
        str, typer.Option("--target-version", help='Binary version: "1.0.0" or a range like "^1.0.0".')
    ],
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle", help="The bundle folder (zipped for you) or a .zip; not with --react-native."
        ),
    ] = None,
    build_number: Annotated[
        int | None, typer.Option("--build-number", min=0, help="Only binaries with this build number.")
    ] = None,
    rollout_percentage: Rollout = 100,
    mandatory: Annotated[str | None, typer.Option("--mandatory", help=MANDATORY_HELP)] = None,
    disabled: Annotated[str | None, typer.Option("--disabled", help=DISABLED_HELP)] = None,
    deployment: Deployment = "Production",
    description: Annotated[str, typer.Option("--description", help="What changed, shown to users.")] = "",
    build: Annotated[
        str | None,
        typer.Option(
            "--build",
            help='A command that builds the bundle first, e.g. "npm run bundle"; its output streams, and if '
            "it fails the push stops with its exit status.",
        ),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project-dir",
            help="The project the bundle was built from: its native facts go into the bundle's "
            "overair.json, and the server refuses the update if a targeted store binary lacks them.",
        ),
    ] = None,
    allow_destructive_model_change: Annotated[
        bool,
        typer.Option(
            "--allow-destructive-model-change",
            help="Publish a destructive offline data-model change; devices install it only after syncing.",
        ),
    ] = False,
    private_key: Annotated[
        Path | None,
        typer.Option(
            "--private-key",
            help="RSA private key (PEM): adds a CodePush .codepushrelease signature that apps with the "
            "public key verify.",
        ),
    ] = None,
    signing_key: SigningKeyOption = None,
    react_native: Annotated[
        str | None,
        typer.Option(
            "--react-native",
            metavar="PLATFORM",
            callback=_check_platform,
            help="ios or android: bundle a React Native app first, like code-push release-react (runs "
            "`npx react-native bundle` for that platform in --project-dir, default the current folder, into "
            "a CodePush/ folder) and push that instead of --bundle.",
        ),
    ] = None,
) -> None:
    """Package the bundle and publish it as the deployment's next release."""
    if bundle is None and react_native is None:
        raise CliError(
            "Nothing to push: pass --bundle with the bundle folder or .zip, or --react-native ios|android "
            "to bundle a React Native app."
        )
    if bundle is not None and react_native is not None:
        raise CliError(
            "Pass either --bundle or --react-native, not both: --react-native builds the bundle itself."
        )
    options: dict[str, Any] = {
        "target_version": target_version,
        "build_number": build_number,
        "rollout": rollout_percentage or 100,
        "mandatory": bool(parse_bool("--mandatory", mandatory)),
        "disabled": bool(parse_bool("--disabled", disabled)),
        "description": description,
        "allow_destructive_model_change": allow_destructive_model_change,
    }
    key = load_signing_key(signing_key) if signing_key is not None else None
    with tempfile.TemporaryDirectory(prefix="overair-") as work, Api(timeout=600) as api:
        api.get(f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases")  # fail fast on names
        if build is not None:
            _run_build(build)
        if react_native is not None:
            project = (project_dir or Path.cwd()).expanduser()
            bundle = _bundle_react_native(react_native, project, Path(work))
        assert bundle is not None
        archive = _package(bundle.expanduser(), Path(work))
        if project_dir is not None:
            archive = _describe(archive, describe_project(project_dir.expanduser()), Path(work))
        if private_key is not None:
            signed = Path(work) / "signed.zip"
            sign_archive(archive, private_key.expanduser(), signed)
            archive = signed
            console.print(f"Signed with {private_key} (.codepushrelease, RS256).")
        if key is not None:
            options["signed"] = sign_upload(
                api, key, project_name, deployment, archive, target_version, build_number
            )
        release = _upload(
            api, f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases", archive, options
        )
        audience = _audience(api, project_name, deployment, release)
    build = f" build {release['build_number']}" if release["build_number"] is not None else ""
    kind = "mandatory" if release["mandatory"] else "optional"
    console.print(
        f"[green]Released {release['label']}[/] to {release['deployment']} of {project_name}: "
        f"{kind}, {release['rollout']}% of devices on {release['target_version']}{build} "
        f"({release['file_count']} files, {release['size']:,} bytes)."
    )
    if release.get("sync_before_update"):
        console.print("Devices install it only after their offline data is synced (sync before update).")
    console.print(audience, highlight=False)
    _print_warnings(release)
    page = (
        f"{api.login.server}/console/apps/{quote(project_name)}/deployments/{quote(deployment)}"
        f"/releases/{quote(release['label'])}"
    )
    console.print(f"Watch it in the console: {page}", soft_wrap=True, highlight=False)
    console.print(f'or with: overair release list --project-name "{project_name}"')


@app.command("list")
def list_releases(project_name: Project, deployment: Deployment = "Production") -> None:
    """Show the deployment's releases with their targeting, rollout and metrics."""
    with Api() as api:
        path = f"/apps/{quote(project_name)}/deployments/{quote(deployment)}"
        releases = api.get(f"{path}/releases")
        labels = api.get(f"{path}/metrics", params={"hours": 1})["labels"]
    failed = [m for m in labels if m.get("last_failure")]
    if not releases:
        console.print(
            f"{deployment} of {project_name} has no release yet. "
            "Publish one with: overair release push-update"
        )
        return
    table = Table(title=f"{project_name} / {deployment}")
    for column in (
        "Label",
        "Target",
        "Build",
        "Rollout",
        "Mandatory",
        "Disabled",
        "Released",
        "Method",
        "Downloads",
        "Installs",
        "Failures",
        "Rollbacks",
    ):
        table.add_column(column)
    for r in releases:
        method = r["method"] + (f" of {r['origin_label']}" if r["origin_label"] else "")
        add_text_row(
            table,
            r["label"],
            r["target_version"],
            "-" if r["build_number"] is None else str(r["build_number"]),
            f"{r['rollout']}%",
            "yes" if r["mandatory"] else "no",
            "yes" if r["disabled"] else "no",
            when(r["released_at"]),
            method,
            str(r["downloads"]),
            str(r["installs"]),
            str(r["failures"]),
            str(r["rollbacks"]),
        )
    console.print(table)
    for m in failed:
        at = f" ({when(m['last_failure_at'])})" if m.get("last_failure_at") else ""
        console.print(
            f"{m['label']} last failed: {plain(m['last_failure'])}{at}", soft_wrap=True, highlight=False
        )


@app.command("rollback-update")
def rollback_update(
    project_name: Project,
    label: Annotated[
        str | None,
        typer.Option("--label", help="The release whose content to go back to; default the previous."),
    ] = None,
    target_version: Annotated[
        str | None,
        typer.Option(
            "--target-version",
            help="Republish the content for this target instead of its own: needed when the older release "
            "does not reach every device of the newest one (give the newest one's target).",
        ),
    ] = None,
    deployment: Deployment = "Production",
    signing_key: SigningKeyOption = None,
    trusted_key: TrustedKeysOption = None,
    allow_unsigned_origin: AllowUnsignedOption = False,
) -> None:
    """Go back to an older release: its content is republished as a new label, so every device moves back."""
    key = load_signing_key(signing_key) if signing_key is not None else None
    body: dict[str, Any] = {"label": label, "target_version": target_version}
    with Api() as api:
        if key is not None:
            body["signed"] = sign_republish(
                api,
                key,
                project_name,
                source=deployment,
                destination=deployment,
                label=label,
                back=2,
                trusted=trusted_keys(key, trusted_key),
                allow_unsigned=allow_unsigned_origin,
                target_version=target_version,
            )
        release = api.post(f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/rollback", json=body)
    console.print(
        f"[green]Rolled back {deployment} of {project_name}:[/] {release['label']} now serves the content of "
        f"{release['origin_label']} for {release['target_version']}. Devices get it at their next update "
        "check."
    )
    _print_warnings(release)


@app.command("patch-update")
def patch_update(
    project_name: Project,
    label: Annotated[str | None, typer.Option("--label", help="The release to change (e.g. v2).")] = None,
    target_version: Annotated[
        str | None,
        typer.Option(
            "--target-version",
            help="Without --label: change the newest release for this version. With --label: the new target.",
        ),
    ] = None,
    build_number: Annotated[
        int | None,
        typer.Option("--build-number", min=0, help="Like --target-version: picks the release, or sets it."),
    ] = None,
    rollout_percentage: Rollout = None,
    mandatory: Annotated[str | None, typer.Option("--mandatory", help=MANDATORY_HELP)] = None,
    disabled: Annotated[str | None, typer.Option("--disabled", help=DISABLED_HELP)] = None,
    description: Annotated[str | None, typer.Option("--description", help="New description.")] = None,
    deployment: Deployment = "Production",
) -> None:
    """Change a pushed release: raise its rollout, make it mandatory or optional, disable or enable it."""
    body: dict[str, Any] = {
        "rollout": rollout_percentage,
        "mandatory": parse_bool("--mandatory", mandatory),
        "disabled": parse_bool("--disabled", disabled),
        "description": description,
    }
    if label:
        body.update(label=label, target_version=target_version, build_number=build_number)
    else:
        body.update(match_target_version=target_version, match_build_number=build_number)
    body = {k: v for k, v in body.items() if v is not None}
    with Api() as api:
        release = api.patch(
            f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases", json=body
        )
    state = "disabled" if release["disabled"] else f"{release['rollout']}% of devices"
    kind = "mandatory" if release["mandatory"] else "optional"
    console.print(
        f"[green]Updated {release['label']}[/] of {deployment}: {kind}, {state}, target "
        f"{release['target_version']}"
        + (f" build {release['build_number']}" if release["build_number"] is not None else "")
    )


@app.command("promote")
def promote(
    project_name: Project,
    source: Annotated[str, typer.Option("--from", help="Deployment to copy from.")] = "Staging",
    destination: Annotated[str, typer.Option("--to", help="Deployment to publish to.")] = "Production",
    label: Annotated[
        str | None, typer.Option("--label", help="Release of --from; default its newest.")
    ] = None,
    rollout_percentage: Rollout = None,
    mandatory: Annotated[str | None, typer.Option("--mandatory", help=MANDATORY_HELP)] = None,
    target_version: Annotated[
        str | None, typer.Option("--target-version", help="Override the target.")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Override the description.")
    ] = None,
    signing_key: SigningKeyOption = None,
    trusted_key: TrustedKeysOption = None,
    allow_unsigned_origin: AllowUnsignedOption = False,
) -> None:
    """Publish a tested release of one deployment (Staging) to another (Production)."""
    key = load_signing_key(signing_key) if signing_key is not None else None
    body: dict[str, Any] = {
        "source": source,
        "destination": destination,
        "label": label,
        "rollout": rollout_percentage,
        "mandatory": parse_bool("--mandatory", mandatory),
        "target_version": target_version,
        "description": description,
    }
    with Api() as api:
        if key is not None:
            body["signed"] = sign_republish(
                api,
                key,
                project_name,
                source=source,
                destination=destination,
                label=label,
                back=1,
                trusted=trusted_keys(key, trusted_key),
                allow_unsigned=allow_unsigned_origin,
                target_version=target_version,
            )
        release = api.post(
            f"/apps/{quote(project_name)}/promote", json={k: v for k, v in body.items() if v is not None}
        )
    console.print(
        f"[green]Promoted {release['origin_label']} of {source}[/] to {destination} as {release['label']} "
        f"({release['rollout']}% of devices on {release['target_version']})."
    )
    _print_warnings(release)
