"""``overair keys …``: publisher signing keys, and signing releases for push, promote and rollback."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from overair.cli import documents
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import (
    JsonOutput,
    Project,
    add_text_row,
    console,
    emit,
    new_table,
    plain,
    print_table,
    say,
    when,
)
from overair.packages import Limits, inspect_archive
from overair.packages import signing as sig

app = typer.Typer(
    help="Publisher signing keys (Ed25519): devices install only releases signed with them.",
    no_args_is_help=True,
)

TrustedKeysOption = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-key",
        help="Another public key of yours (text or file) that older releases may be signed with; repeatable. "
        "Releases being re-signed must verify with your keys, never with keys only the server lists.",
    ),
]
AllowUnsignedOption = Annotated[
    bool,
    typer.Option(
        "--allow-unsigned-origin",
        help="Sign again a release that was never signed (made before the app had keys).",
    ),
]
SigningKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--signing-key",
        help="Ed25519 private key (overair keys generate): signs the release manifest. Required once the "
        "app has signing keys.",
    ),
]


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key file, with a message that says what is wrong."""
    path = path.expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read the signing key {path}: {exc.strerror or exc}.") from None
    try:
        return sig.load_private_key(data)
    except sig.SigningError as exc:
        raise CliError(f"{path}: {exc.message}.") from None


def _public_key_argument(value: str) -> str:
    """A public key given as text, or read from a public or private key file."""
    candidate = Path(value).expanduser()
    if not value.startswith(sig.PUBLIC_KEY_PREFIX) and candidate.is_file():
        data = candidate.read_bytes()
        if b"PRIVATE KEY" in data:
            try:
                return sig.public_key_text(sig.load_private_key(data))
            except sig.SigningError as exc:
                raise CliError(f"{candidate}: {exc.message}.") from None
        value = data.decode(errors="replace").strip()
    try:
        return sig.public_key_text(sig.parse_public_key(value))
    except sig.SigningError as exc:
        raise CliError(f"Not a usable public key: {exc.message}.") from None


@app.command("generate")
def generate(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the private key (PEM); never overwritten.")
    ] = Path("overair-signing.key"),
    json_output: JsonOutput = False,
) -> None:
    """Make a new Ed25519 key pair: the private key stays with the publisher, offline."""
    out = out.expanduser()
    key = sig.generate_private_key()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{out} exists already: pick another --out (keys are never overwritten).") from None
    except OSError as exc:
        raise CliError(f"Cannot create {out}: {exc.strerror or exc}.") from None
    with os.fdopen(fd, "wb") as stream:
        stream.write(sig.private_key_pem(key))
    public = sig.public_key_text(key)
    out.with_name(out.name + ".pub").write_text(public + "\n")

    def human() -> None:
        console.print(
            f"[green]Wrote the private key to {plain(str(out))}[/] (mode 600; keep it offline, never commit "
            "it)."
        )
        say(f"Public key {sig.key_id(key)}: {public}")
        say("Next:")
        say(f'    overair keys add --project-name "CoolApp" {public}')
        say("and give the public key to the app's engine: UpdateEngine(..., public_keys=[...]).")

    document = {"key_id": sig.key_id(key), "public_key": public, "private_key_file": str(out)}
    emit(json_output, {"signing_key": document}, human)


@app.command("add")
def add(
    project_name: Project,
    public_key: Annotated[
        str,
        typer.Argument(help='"ed25519:…" as generate prints it, or a key file (.pub or the private key).'),
    ],
    name: Annotated[str, typer.Option("--name", help="Who or what holds the key, e.g. release-laptop.")] = "",
    json_output: JsonOutput = False,
) -> None:
    """Trust a public key for the app's releases. From then on, unsigned releases are refused."""
    text = _public_key_argument(public_key)
    with Api() as api:
        key = api.post(f"/apps/{quote(project_name)}/signing-keys", json={"public_key": text, "name": name})
    emit(
        json_output,
        {"app": project_name, "signing_key": documents.signing_key(key)},
        lambda: console.print(
            f"[green]Added signing key {key['key_id']}[/] to {plain(project_name)}. Releases must now be "
            "signed: pass --signing-key to push-update, promote and rollback-update."
        ),
    )


@app.command("list")
def list_keys(project_name: Project, json_output: JsonOutput = False) -> None:
    """Show the app's signing keys, active and retired."""
    with Api() as api:
        keys = api.get(f"/apps/{quote(project_name)}/signing-keys")
    table = new_table("Key id", "Name", "Added by", "Added", "State", "Public key")
    for k in keys:
        state = f"retired {when(k['retired_at'])}" if k["retired_at"] else "active"
        add_text_row(
            table, k["key_id"], k["name"], k["added_by"], when(k["added_at"]), state, k["public_key"]
        )
    empty = (
        f"{project_name} has no signing keys: its releases are not signed. Add one with: overair keys "
        "generate, then overair keys add"
    )
    emit(
        json_output,
        {"app": project_name, "signing_keys": [documents.signing_key(k) for k in keys]},
        lambda: print_table(table, empty),
    )


@app.command("retire")
def retire(
    project_name: Project,
    key_id: Annotated[str, typer.Argument(help="The key id (overair keys list).")],
    json_output: JsonOutput = False,
) -> None:
    """Stop accepting releases signed with a key (for rotation, or when it may be compromised)."""
    with Api() as api:
        key = api.post(f"/apps/{quote(project_name)}/signing-keys/{quote(key_id)}/retire")
    emit(
        json_output,
        {"app": project_name, "signing_key": documents.signing_key(key)},
        lambda: console.print(
            f"[green]Retired {key['key_id']}[/] of {plain(project_name)}: new releases signed with it are "
            "refused. Ship app binaries that list it in retired_keys so devices refuse it too."
        ),
    )


@app.command("server")
def server_key(
    create: Annotated[
        Path | None,
        typer.Option(
            "--create",
            help="Instead: make a new server key in this file (never overwritten), for "
            "OVERAIR_SERVER_KEY_FILE on every host of a deployment. Needs no server.",
        ),
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Print the server's own public key, which signs update-check answers (for the engine's server_key)."""
    if create is not None:
        _create_server_key(create.expanduser(), json_output)
        return
    with Api() as api:
        key = api.get("/server-key")
    emit(json_output, {"public_key": key["public_key"]}, lambda: say(key["public_key"]))


def _create_server_key(out: Path, json_output: bool) -> None:
    key = sig.generate_private_key()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(
            f"{out} exists already: keys are never overwritten. Pick another path, or use that key."
        ) from None
    except OSError as exc:
        raise CliError(f"Cannot create {out}: {exc.strerror or exc}.") from None
    with os.fdopen(fd, "wb") as stream:
        stream.write(sig.private_key_pem(key))
    public, fingerprint = sig.public_key_text(key), f"SHA256:{sig.fingerprint(key)}"

    def human() -> None:
        console.print(f"[green]Wrote a new server key to {plain(str(out))}[/] (mode 600; never commit it).")
        say(f"Public key: {public}  ({fingerprint})")
        say("Copy the file to every host of the deployment (or into your secret manager) and set")
        say(f"    OVERAIR_SERVER_KEY_FILE={out.resolve()}")
        say("(or OVERAIR_SERVER_KEY to the file's text); build the public key into the app's engine.")

    document = {"public_key": public, "fingerprint": fingerprint, "private_key_file": str(out)}
    emit(json_output, {"server_key": document}, human)


# -- signing releases ------------------------------------------------------------------------------


def check_signing(api: Api, project_name: str, signing: bool) -> None:
    """Before an upload: refuse what the server would refuse after it, an unsigned release of an app with
    active signing keys, or a signed one of an app without any (the server checks again)."""
    keys: list[dict[str, Any]] = api.get(f"/apps/{quote(project_name)}/signing-keys")
    active = sum(1 for k in keys if not k.get("retired_at"))
    if active and not signing:
        raise CliError(
            f'"{project_name}" accepts signed releases only ({active} active signing key'
            f"{'' if active == 1 else 's'}): pass --signing-key with the private key made by overair keys "
            "generate. Nothing was uploaded."
        )
    if signing and not active:
        raise CliError(
            f'"{project_name}" has no active signing key to check the signature with: add the public key '
            f'first with: overair keys add --project-name "{project_name}" PUBLIC_KEY. Nothing was uploaded.'
        )


def _sign_next(
    api: Api,
    key: Ed25519PrivateKey,
    project_name: str,
    deployment: str,
    content: dict[str, Any],
    origin: str = "",
) -> dict[str, str]:
    """Sign the manifest of the deployment's next release (its label and sequence from the server) with
    ``content``: target_version, build_number, package_hash, download_limit and files."""
    upcoming: dict[str, Any] = api.get(
        f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/next-release"
    )
    manifest = sig.ReleaseManifest(
        app=project_name,
        deployment=deployment,
        label=upcoming["label"],
        sequence=upcoming["sequence"],
        **content,
    )
    data, signature = sig.sign_manifest(manifest, key)
    say(f"Signed {manifest.label} (sequence {manifest.sequence}{origin}) with key {sig.key_id(key)}.")
    return {"manifest": base64.b64encode(data).decode(), "signature": signature}


def sign_upload(
    api: Api,
    key: Ed25519PrivateKey,
    project_name: str,
    deployment: str,
    archive: Path,
    target_version: str,
    build_number: int | None,
) -> dict[str, str]:
    """Sign the release that uploading ``archive`` will create."""
    info = inspect_archive(archive, Limits())
    content = {
        "target_version": target_version.strip(),
        "build_number": build_number,
        "package_hash": info.package_hash,
        "download_limit": info.archive_size,
        "files": sig.signed_files(info.manifest),
    }
    return _sign_next(api, key, project_name, deployment, content)


def _origin_files(
    api: Api,
    project_name: str,
    deployment: str,
    origin: dict[str, Any],
    trusted: list[Ed25519PublicKey],
    allow_unsigned: bool,
) -> tuple[sig.SignedFile, ...]:
    """The files of the release being republished, proven by its own signature with a key held here.

    The server's key list is not used: whoever has an access key can add a key to it, and would then have
    their content re-signed by the publisher.
    """
    label = origin["label"]
    if origin.get("signed_manifest") and origin.get("signature"):
        try:
            data = base64.b64decode(origin["signed_manifest"], validate=True)
            manifest, _ = sig.verify_manifest(data, origin["signature"], trusted)
        except (sig.SigningError, binascii.Error, ValueError):
            raise CliError(
                f"{label} of {deployment} is not signed with your key (it names key "
                f"{origin.get('signing_key_id') or 'unknown'}), so it is not signed again: its content may "
                "not be yours. If that key is yours (an older one), pass --trusted-key with its public key."
            ) from None
        if manifest.package_hash != origin["package_hash"] or manifest.app != project_name:
            raise CliError(f"{label} of {deployment} is signed for other content: not signed again")
        return manifest.files
    if not allow_unsigned:
        raise CliError(
            f"{label} of {deployment} is not signed, so its content cannot be checked before you sign it. "
            "If you know it is yours (made before the app had keys), pass --allow-unsigned-origin."
        )
    console.print(f"[yellow]{label} of {deployment} was not signed: signing the files the server holds.[/]")
    entries = api.get(
        f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases/{quote(label)}/manifest"
    )
    return tuple(
        sorted(
            (sig.SignedFile(e["path"], e["size"], e["sha256"]) for e in entries if e["path"][-1:] != "/"),
            key=lambda f: f.path,
        )
    )


def trusted_keys(key: Ed25519PrivateKey, extra: list[str] | None) -> list[Ed25519PublicKey]:
    """The signing key's own public key plus ``--trusted-key`` values (texts or key files)."""
    return [key.public_key(), *(sig.parse_public_key(_public_key_argument(k)) for k in extra or ())]


def _pick(api: Api, project_name: str, deployment: str, label: str | None, back: int) -> dict[str, Any]:
    history: list[dict[str, Any]] = api.get(
        f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases"
    )
    if label is not None:
        for release in history:
            if release["label"] == label:
                return release
        raise CliError(f'{deployment} of {project_name} has no release "{label}": see overair release list.')
    if len(history) < back:
        what = "to promote" if back == 1 else "to roll back to"
        raise CliError(f"{deployment} of {project_name} has no release {what}.")
    return history[-back]


@dataclass(frozen=True)
class Resigning:
    """How a promote or a rollback signs the release it makes from an older one: the publisher's key, the
    public keys the older release may be signed with, and whether an unsigned one may be signed."""

    key: Ed25519PrivateKey
    trusted: list[Ed25519PublicKey]
    allow_unsigned: bool

    def sign(
        self,
        api: Api,
        project_name: str,
        *,
        source: str,
        destination: str,
        label: str | None,
        back: int,
        target_version: str | None = None,
    ) -> dict[str, str]:
        """Sign the release a promote (``back=1``) or rollback (``back=2``) will create from an older one."""
        origin = _pick(api, project_name, source, label, back)
        files = _origin_files(api, project_name, source, origin, self.trusted, self.allow_unsigned)
        content = {
            "target_version": (target_version or origin["target_version"]).strip(),
            "build_number": origin["build_number"],
            "package_hash": origin["package_hash"],
            "download_limit": origin["size"],
            "files": files,
        }
        return _sign_next(
            api, self.key, project_name, destination, content, f", content of {origin['label']}"
        )


def resigning(
    signing_key: Path | None, trusted_key: list[str] | None, allow_unsigned: bool
) -> Resigning | None:
    """The ``--signing-key``, ``--trusted-key`` and ``--allow-unsigned-origin`` options, read and checked
    (before any request), or None without ``--signing-key``."""
    if signing_key is None:
        return None
    key = load_signing_key(signing_key)
    return Resigning(key, trusted_keys(key, trusted_key), allow_unsigned)
