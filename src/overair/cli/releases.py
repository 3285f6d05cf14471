"""``overair release …``: the Native Builder's commands (push-update, list, rollback-update, patch-update,
promote) with the same flags.

Everything that can be checked without the server is checked before anything is built or uploaded (the
target version with the server's own semver rules, the flags together, the key files, the project folder),
and the app and deployment are looked up with one cheap request before the bundle is built or uploaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from overair.cli import documents, hermes, rollouts
from overair.cli.binaries import describe_project
from overair.cli.codesign import load_private_key, sign_archive
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.metrics import (
    Deployment,
    OldestFirst,
    by_label,
    deployment_metrics,
    failure_rate,
    last_failures,
)
from overair.cli.output import (
    JsonOutput,
    Project,
    add_text_row,
    console,
    emit,
    new_table,
    parse_bool,
    plain,
    say,
    when,
)
from overair.cli.packaging import (
    RN_BUNDLE_FILES,
    bundle_react_native,
    describe,
    package,
    run_build,
    upload,
)
from overair.cli.signing import (
    AllowUnsignedOption,
    SigningKeyOption,
    TrustedKeysOption,
    check_signing,
    load_signing_key,
    resigning,
    sign_upload,
)
from overair.selection import semver

app = typer.Typer(help="Publish and steer releases.", no_args_is_help=True)

MAX_TARGET_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_BUILD_NUMBER = 2**31 - 1
"""The server's limits on a release's fields (its API answers 422 past them)."""


def _check_rollout(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 100:
        raise typer.BadParameter(f"{value} is outside 1-100: give the percentage of devices, e.g. 25 or 100.")
    return value


ConfirmOption = Annotated[
    str | None,
    typer.Option(
        "--confirm",
        metavar="LABEL",
        help="Repeat the release's label to send a disabled or failing release back to devices on purpose.",
    ),
]


def _check_target(value: str | None) -> str | None:
    """A target version range as the server reads it (its semver module), trimmed; else a usage error."""
    if value is None:
        return None
    target = value.strip()
    if len(target) > MAX_TARGET_LENGTH or semver.valid_range(target) is None:
        raise typer.BadParameter(
            f'"{value}" is not a valid target version: use an exact version like 1.0.0 or an npm-style range '
            'like "^1.2.0", "1.2.x", ">=1.0.0 <2.0.0" or "*".'
        )
    return target


def _check_description(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION_LENGTH:
        raise typer.BadParameter(
            f"{len(value):,} characters is too long: at most {MAX_DESCRIPTION_LENGTH:,}."
        )
    return value


def _check_build_number(value: int | None) -> int | None:
    if value is not None and value > MAX_BUILD_NUMBER:
        raise typer.BadParameter(f"{value} is too large: build numbers go up to {MAX_BUILD_NUMBER:,}.")
    return value


def _check_platform(value: str | None) -> str | None:
    if value is not None and value not in RN_BUNDLE_FILES:
        raise typer.BadParameter(f"{value!r} is not a React Native platform: give ios or android.")
    return value


Rollout = Annotated[
    int | None,
    typer.Option(
        "--rollout-percentage", callback=_check_rollout, help="Share of devices (1-100) that get the release."
    ),
]
Mandatory = Annotated[
    str | None,
    typer.Option(
        "--mandatory",
        help="Devices must install it: --mandatory alone means true; --mandatory false makes it optional.",
    ),
]
Disabled = Annotated[
    str | None, typer.Option("--disabled", help="Hide it from devices (true) or show it again (false).")
]
BuildNumber = Annotated[
    int | None,
    typer.Option(
        "--build-number", min=0, callback=_check_build_number, help="Only binaries with this build number."
    ),
]


def _target_option(help_text: str) -> Any:
    return typer.Option("--target-version", callback=_check_target, help=help_text)


def _description_option(help_text: str) -> Any:
    return typer.Option("--description", callback=_check_description, help=help_text)


def _deployment_path(project_name: str, deployment: str) -> str:
    return f"/apps/{quote(project_name)}/deployments/{quote(deployment)}"


def _print_warnings(release: Mapping[str, Any]) -> None:
    for warning in release.get("warnings", []):
        console.print(f"[yellow]Warning:[/] {plain(warning)}", highlight=False)


def _audience(api: Api, project_name: str, deployment: str, release: Mapping[str, Any]) -> int | None:
    """How many active devices run a release for the new release's target (None: no metrics)."""
    target = release["target_version"]
    try:
        labels = by_label(deployment_metrics(api, project_name, deployment)).values()
        return sum(int(x.get("active", 0)) for x in labels if x.get("target_version") == target)
    except (CliError, ValueError, TypeError, AttributeError, KeyError):
        return None


def _audience_sentence(devices: int | None, release: Mapping[str, Any]) -> str:
    target = release["target_version"]
    if devices is None:
        return "Active devices: not known (the server reports no metrics)."
    if not devices:
        return f"No active devices reported yet on {target}."
    if release["disabled"]:
        return f"Disabled: none of the {devices:,} active devices on {target} get it yet."
    share = release["rollout"]
    reach = f" (about {round(devices * share / 100):,})" if share < 100 else ""
    return f"Rolled out to {share}% of {devices:,} active devices on {target}{reach}."


def _check_bundle_flags(bundle: Path | None, react_native: str | None, build: str | None) -> None:
    if bundle is None and react_native is None:
        raise CliError(
            "Nothing to push: pass --bundle with the bundle folder or .zip, or --react-native ios|android "
            "to bundle a React Native app."
        )
    if bundle is not None and react_native is not None:
        raise CliError(
            "Pass either --bundle or --react-native, not both: --react-native builds the bundle itself."
        )
    if bundle is not None and build is None and not bundle.expanduser().exists():
        raise CliError(f"The bundle {bundle} does not exist: pass --bundle with a folder or a .zip file.")


@app.command("push-update")
def push_update(
    project_name: Project,
    target_version: Annotated[str, _target_option('Binary version: "1.0.0" or a range like "^1.0.0".')],
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle", help="The bundle folder (zipped for you) or a .zip; not with --react-native."
        ),
    ] = None,
    build_number: BuildNumber = None,
    rollout_percentage: Rollout = 100,
    mandatory: Mandatory = None,
    disabled: Disabled = None,
    deployment: Deployment = "Production",
    description: Annotated[str, _description_option("What changed, shown to users.")] = "",
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
            "a CodePush/ folder) and push that instead of --bundle. A project that uses Hermes "
            "(android/gradle.properties hermesEnabled=true; iOS: unless its Podfile turns it off) is "
            "compiled with its own hermesc, against the bytecode of the release most devices run when "
            "that is safe (docs/hermes.md).",
        ),
    ] = None,
    ramp: rollouts.Ramp = None,
    ramp_every: rollouts.RampEvery = None,
    ramp_min_sample: rollouts.RampMinSample = None,
    halt_on_failure_rate: rollouts.HaltOnFailureRate = None,
    max_increase_over_previous: rollouts.MaxIncrease = None,
    min_failures: rollouts.MinFailures = None,
    confidence: rollouts.Confidence = None,
    on_failure: rollouts.OnFailure = None,
    end_rollout: Annotated[
        str | None,
        typer.Option(
            "--end-rollout",
            metavar="keep|disable",
            help="End the deployment's unfinished rollout as part of this push: keep the running release at "
            "its share, or disable it (needs --end-rollout-reason; recorded with your name).",
        ),
    ] = None,
    end_rollout_reason: Annotated[
        str, typer.Option("--end-rollout-reason", help="Why the running rollout ends (stored).")
    ] = "",
    json_output: JsonOutput = False,
) -> None:
    """Package the bundle and publish it as the deployment's next release."""
    if end_rollout is not None and end_rollout not in ("keep", "disable"):
        raise typer.BadParameter(f'"{end_rollout}": give keep or disable.', param_hint="--end-rollout")
    policy = rollouts.policy_fields(
        ramp,
        ramp_every,
        ramp_min_sample,
        halt_on_failure_rate,
        max_increase_over_previous,
        min_failures,
        confidence,
        on_failure,
    )
    options: dict[str, Any] = {
        "target_version": target_version,
        "build_number": build_number,
        "rollout": rollout_percentage or 100,
        "mandatory": bool(parse_bool("--mandatory", mandatory)),
        "disabled": bool(parse_bool("--disabled", disabled)),
        "description": description,
        "allow_destructive_model_change": allow_destructive_model_change,
        **({"rollout_policy": policy} if policy else {}),
        **({"end_rollout": end_rollout, "end_rollout_reason": end_rollout_reason} if end_rollout else {}),
    }
    _check_bundle_flags(bundle, react_native, build)
    project = (project_dir or Path.cwd()).expanduser() if react_native is not None else None
    if project is not None and not project.is_dir():
        raise CliError(
            f"The project folder {project} does not exist: pass --project-dir with your app's folder."
        )
    key = load_signing_key(signing_key) if signing_key is not None else None
    codepush_key = load_private_key(private_key.expanduser()) if private_key is not None else None
    path = _deployment_path(project_name, deployment)
    compiled: hermes.Compiled | None = None
    with tempfile.TemporaryDirectory(prefix="overair-") as work, Api(timeout=600) as api:
        api.get(f"{path}/releases")  # the app and the deployment exist: before building or uploading
        check_signing(api, project_name, key is not None)
        if build is not None:
            run_build(build)
        if react_native is not None and project is not None:
            bundle = bundle_react_native(react_native, project, Path(work))
            if hermes.uses_hermes(project, react_native):
                name = f"CodePush/{RN_BUNDLE_FILES[react_native]}"
                compiled = hermes.compile_release(
                    api, project_name, deployment, target_version, project, bundle / name, name
                )
                say(compiled.sentence())
        assert bundle is not None
        descriptor = describe_project(project_dir.expanduser()) if project_dir is not None else None
        archive = package(bundle.expanduser(), Path(work))
        if descriptor is not None:
            archive = describe(archive, descriptor, Path(work))
        if codepush_key is not None:
            signed = Path(work) / "signed.zip"
            sign_archive(archive, codepush_key, signed)
            archive = signed
            say(f"Signed with {private_key} (.codepushrelease, RS256).")
        if key is not None:
            options["signed"] = sign_upload(
                api, key, project_name, deployment, archive, target_version, build_number
            )
        release = upload(api, f"{path}/releases", archive, options)
        devices = _audience(api, project_name, deployment, release)
    page = f"{api.login.server}/console{path}/releases/{quote(release['label'])}"

    def human() -> None:
        built = f" build {release['build_number']}" if release["build_number"] is not None else ""
        kind = "mandatory" if release["mandatory"] else "optional"
        console.print(
            f"[green]Released {release['label']}[/] to {plain(release['deployment'])} of "
            f"{plain(project_name)}: {kind}, {release['rollout']}% of devices on "
            f"{plain(release['target_version'])}{built} ({release['file_count']} files, "
            f"{release['size']:,} bytes).",
            highlight=False,
        )
        if release.get("sync_before_update"):
            say("Devices install it only after their offline data is synced (sync before update).")
        say(_audience_sentence(devices, release))
        if release.get("guarded_rollout"):
            for line in rollouts.ramp_lines(release["label"], release["guarded_rollout"]):
                say(line)
        _print_warnings(release)
        say(f"Watch it in the console: {page}")
        say(f'or with: overair release list --project-name "{project_name}"')

    document = {
        "app": project_name,
        "release": documents.release(release),
        "active_devices_on_target": devices,
        "console_url": page,
        **({"hermes": compiled.document()} if compiled is not None else {}),
    }
    if json_output:
        _print_warnings(release)  # in the document too; on stderr so that a CI log shows them
    emit(json_output, document, human)


def _label_cell(r: Mapping[str, Any]) -> str:
    """The label, with where its content came from for a rollback or a promotion (as the console shows)."""
    if r["method"] == "upload" or not r.get("origin_label"):
        return str(r["label"])
    elsewhere = r.get("origin_deployment")
    where = f" ({elsewhere})" if elsewhere and elsewhere != r["deployment"] else ""
    return f"{r['label']} ({r['method']} of {r['origin_label']}{where})"


def _target_cell(r: Mapping[str, Any]) -> str:
    """What the release targets: its version range, or an Expo update's platform and runtime version."""
    if r.get("runtime_version"):
        return f"{r.get('platform') or 'any'} runtime {r['runtime_version']}"
    platform = f" ({r['platform']})" if r.get("platform") else ""
    return f"{r['target_version']}{platform}"


HISTORY_COLUMNS = (
    "Label",
    "Version range",
    "Build",
    "Rollout",
    "Mandatory",
    "Status",
    "Downloads",
    "Installs",
    "Failures",
    "Failure rate",
    "Rollbacks",
    "Active devices",
    "Published",
    "By",
)
"""The console's release history columns in its order (label, version range, rollout, status, installs,
failure rate, published), with the CLI's extra ones between them."""


@app.command("list")
def list_releases(
    project_name: Project,
    deployment: Deployment = "Production",
    oldest_first: OldestFirst = False,
    json_output: JsonOutput = False,
) -> None:
    """Show the deployment's releases, newest first, with their targeting, rollout and metrics (the
    console's release history)."""
    with Api() as api:
        releases = list(api.get(f"{_deployment_path(project_name, deployment)}/releases"))
        metrics = by_label(deployment_metrics(api, project_name, deployment))
    if not oldest_first:
        releases.reverse()

    def human() -> None:
        if not releases:
            say(
                f"{deployment} of {project_name} has no release yet. Publish one with: overair release "
                "push-update"
            )
            return
        numeric = HISTORY_COLUMNS[6:12]
        table = new_table(*HISTORY_COLUMNS, title=f"{project_name} / {deployment}", numeric=numeric)
        for r in releases:
            health = metrics.get(r["label"])
            add_text_row(
                table,
                _label_cell(r),
                _target_cell(r),
                "-" if r["build_number"] is None else str(r["build_number"]),
                f"{r['rollout']}%",
                "yes" if r["mandatory"] else "no",
                "disabled" if r["disabled"] else "enabled",
                str(r["downloads"]),
                str(r["installs"]),
                str(r["failures"]),
                failure_rate(health),
                str(r["rollbacks"]),
                str(health["active"]) if health else "-",
                when(r["released_at"]),
                r.get("released_by") or "-",
            )
        console.print(table)
        last_failures([metrics[r["label"]] for r in releases if r["label"] in metrics])
        rollouts.print_ramps(releases)

    document = {
        "app": project_name,
        "deployment": deployment,
        "releases": [{**documents.release(r), **documents.health(metrics.get(r["label"]))} for r in releases],
    }
    emit(json_output, document, human)


def _published(json_output: bool, project_name: str, release: Mapping[str, Any], sentence: str) -> None:
    """The release a rollback, patch or promote made or changed: the sentence, or the JSON document."""

    def human() -> None:
        console.print(sentence, highlight=False)

    emit(json_output, {"app": project_name, "release": documents.release(release)}, human)
    _print_warnings(release)  # after the sentence, or on stderr under --json


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
            callback=_check_target,
            help="Republish the content for this target instead of its own: needed when the older release "
            "does not reach every device of the newest one (give the newest one's target).",
        ),
    ] = None,
    deployment: Deployment = "Production",
    signing_key: SigningKeyOption = None,
    trusted_key: TrustedKeysOption = None,
    allow_unsigned_origin: AllowUnsignedOption = False,
    confirm: ConfirmOption = None,
    json_output: JsonOutput = False,
) -> None:
    """Go back to an older release: its content is republished as a new label, so every device moves back."""
    resign = resigning(signing_key, trusted_key, allow_unsigned_origin)
    body: dict[str, Any] = {"label": label, "target_version": target_version, "confirm": confirm}
    path = _deployment_path(project_name, deployment)
    with Api() as api:
        if resign is not None:
            body["signed"] = resign.sign(
                api,
                project_name,
                source=deployment,
                destination=deployment,
                label=label,
                back=2,
                target_version=target_version,
            )
        release = api.post(f"{path}/rollback", json=body)
    _published(
        json_output,
        project_name,
        release,
        f"[green]Rolled back {plain(deployment)} of {plain(project_name)}:[/] {release['label']} now serves "
        f"the content of {release['origin_label']} for {release['target_version']}. Devices get it at their "
        "next update check.",
    )


@app.command("patch-update")
def patch_update(
    project_name: Project,
    label: Annotated[str | None, typer.Option("--label", help="The release to change (e.g. v2).")] = None,
    target_version: Annotated[
        str | None,
        _target_option(
            "Without --label: change the newest release for this version. With --label: the new target."
        ),
    ] = None,
    build_number: Annotated[
        int | None,
        typer.Option(
            "--build-number",
            min=0,
            callback=_check_build_number,
            help="Like --target-version: picks the release, or sets it.",
        ),
    ] = None,
    rollout_percentage: Rollout = None,
    mandatory: Mandatory = None,
    disabled: Disabled = None,
    description: Annotated[str | None, _description_option("New description.")] = None,
    deployment: Deployment = "Production",
    confirm: ConfirmOption = None,
    json_output: JsonOutput = False,
) -> None:
    """Change a pushed release: raise its rollout, make it mandatory or optional, disable or enable it."""
    changes: dict[str, Any] = {
        "rollout": rollout_percentage,
        "mandatory": parse_bool("--mandatory", mandatory),
        "disabled": parse_bool("--disabled", disabled),
        "description": description,
    }
    if label:
        changes.update(target_version=target_version, build_number=build_number)
        picked: dict[str, Any] = {"label": label}
    else:
        picked = {"match_target_version": target_version, "match_build_number": build_number}
    if all(value is None for value in changes.values()):
        raise CliError(
            "Nothing to change: pass --rollout-percentage, --mandatory, --disabled or --description"
            + (" (or, with --label, a new --target-version or --build-number)." if label else ".")
        )
    body = {k: v for k, v in {**picked, **changes, "confirm": confirm}.items() if v is not None}
    with Api() as api:
        release = api.patch(f"{_deployment_path(project_name, deployment)}/releases", json=body)
    state = "disabled" if release["disabled"] else f"{release['rollout']}% of devices"
    kind = "mandatory" if release["mandatory"] else "optional"
    built = f" build {release['build_number']}" if release["build_number"] is not None else ""
    _published(
        json_output,
        project_name,
        release,
        f"[green]Updated {release['label']}[/] of {plain(deployment)}: {kind}, {state}, target "
        f"{plain(release['target_version'])}{built}",
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
    mandatory: Mandatory = None,
    target_version: Annotated[str | None, _target_option("Override the target.")] = None,
    description: Annotated[str | None, _description_option("Override the description.")] = None,
    signing_key: SigningKeyOption = None,
    trusted_key: TrustedKeysOption = None,
    allow_unsigned_origin: AllowUnsignedOption = False,
    json_output: JsonOutput = False,
) -> None:
    """Publish a tested release of one deployment (Staging) to another (Production)."""
    if source == destination:
        raise CliError(f"--from and --to both name {source}: name two different deployments.")
    resign = resigning(signing_key, trusted_key, allow_unsigned_origin)
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
        if resign is not None:
            body["signed"] = resign.sign(
                api,
                project_name,
                source=source,
                destination=destination,
                label=label,
                back=1,
                target_version=target_version,
            )
        release = api.post(
            f"/apps/{quote(project_name)}/promote", json={k: v for k, v in body.items() if v is not None}
        )
    _published(
        json_output,
        project_name,
        release,
        f"[green]Promoted {release['origin_label']} of {plain(source)}[/] to {plain(destination)} as "
        f"{release['label']} ({release['rollout']}% of devices on {plain(release['target_version'])}).",
    )


# guarded rollouts (overair.cli.rollouts)
app.command("resume-rollout")(rollouts.resume)
app.command("override-rollout")(rollouts.override)
app.command("end-rollout")(rollouts.end)
