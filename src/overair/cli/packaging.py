"""Making the archive ``push-update`` uploads: run the build, bundle a React Native app, zip a folder,
add the project's descriptor, and upload it with a progress bar. All of it local but the upload."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from overair.cli.errors import CliError
from overair.cli.http import Api
from overair.cli.output import json_mode, progress, say
from overair.packages import (
    DESCRIPTOR_FILE,
    Descriptor,
    InvalidBundle,
    rewrite_archive,
    top_folder,
    zip_directory,
)

RN_BUNDLE_FILES = {"ios": "main.jsbundle", "android": "index.android.bundle"}
"""The bundle file name react-native-code-push expects per platform (as ``code-push release-react``)."""


class BuildFailed(CliError):
    """The build command failed: the CLI exits with the build's own status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.exit_code = status


def _transfer() -> Progress:
    return progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())


class _ProgressReader:
    """A file wrapper that advances a progress bar as httpx reads the upload (and starts over with it
    when the upload is tried again)."""

    def __init__(self, stream: IO[bytes], bar: Progress, task: TaskID) -> None:
        self._stream = stream
        self._bar = bar
        self._task = task

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._bar.advance(self._task, len(chunk))
        return chunk

    def fileno(self) -> int:
        return self._stream.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._stream.seek(offset, whence)
        self._bar.update(self._task, completed=position)
        return position

    def tell(self) -> int:
        return self._stream.tell()


def run_build(command: str | list[str], cwd: Path | None = None, what: str = "build command") -> None:
    """Run the build command (a shell line, or an argv list run without a shell) in ``cwd``, its output
    streaming to the CLI's message stream (stderr under ``--json``); :class:`BuildFailed` if it fails."""
    shown = command if isinstance(command, str) else " ".join(command)
    say(f"Building: {shown}")
    output = 2 if json_mode() else None  # under --json, stdout is for the document only
    try:
        status = subprocess.run(
            command, shell=isinstance(command, str), cwd=cwd, check=False, stdout=output
        ).returncode
    except OSError as exc:
        raise CliError(f"Could not run the {what} {shown!r}: {exc}") from None
    if status != 0:
        raise BuildFailed(f"the {what} failed with exit status {status}; nothing was pushed.", status)


def bundle_react_native(platform: str, project: Path, workdir: Path) -> Path:
    """Run ``react-native bundle`` as ``code-push release-react`` does, into ``<tmp>/CodePush``; returns
    the folder to zip (``<tmp>``), so the archive's entries are ``CodePush/...``."""
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
        str(output / RN_BUNDLE_FILES[platform]),
        "--assets-dest",
        str(output),
    ]
    run_build(command, cwd=project, what="react-native bundle command")
    return root


def package(bundle: Path, workdir: Path) -> Path:
    """The archive to upload: ``bundle`` itself if it is a file, else the folder zipped."""
    if not bundle.exists():
        raise CliError(f"The bundle {bundle} does not exist: pass --bundle with a folder or a .zip file.")
    if bundle.is_file():
        return bundle
    archive = workdir / "bundle.zip"
    with _transfer() as bar:
        task = bar.add_task("Packaging", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            zip_directory(bundle, archive, progress=advance)
        except InvalidBundle as exc:
            raise CliError(exc.message) from None
    return archive


def describe(archive: Path, descriptor: Descriptor, workdir: Path) -> Path:
    """The archive with the project's descriptor as overair.json (next to the bundle's files)."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/" + DESCRIPTOR_FILE) and n != DESCRIPTOR_FILE]
    name = top_folder(names) + DESCRIPTOR_FILE
    described = workdir / "described.zip"
    data = json.dumps(descriptor.to_json(), indent=2).encode()
    rewrite_archive(archive, described, lambda entry: entry == name, {name: data})
    return described


def upload(api: Api, path: str, archive: Path, options: dict[str, Any]) -> Any:
    """POST the archive with the release's options, with a progress bar."""
    size = archive.stat().st_size
    with archive.open("rb") as stream, _transfer() as bar:
        task = bar.add_task("Uploading", total=size)
        return api.post(
            path,
            files={"package": ("bundle.zip", _ProgressReader(stream, bar, task), "application/zip")},
            data={"release": json.dumps(options)},
        )
