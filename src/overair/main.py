"""The ``overair`` entry point: the CLI groups plus the server-side commands ``serve``, ``migrate`` and
``fsck``.

The CLI talks HTTP only; the server-side commands open the database themselves, so they live here, outside
``overair.cli``, and import the server's modules only when they run (every other command starts quickly).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from typer import _click as click  # typer vendors click

from overair.cli import build_cli
from overair.cli.errors import CliError, ExitCode
from overair.cli.output import err_console, expand_optional_bools, start


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (OVERAIR_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (OVERAIR_PORT).", min=1, max=65535)] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder for the SQLite database and blobs (OVERAIR_DATA_DIR).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (OVERAIR_WORKERS).", min=1)] = None,
    new_admin_key: Annotated[
        bool,
        typer.Option("--new-admin-key", help="Create and print another admin key (if the first is lost)."),
    ] = False,
) -> None:
    """Run the overair server (SQLite and a local folder by default)."""
    from overair.config import SettingsError
    from overair.db import DatabaseUnavailable
    from overair.packages.signing import SigningError
    from overair.server import run_server
    from overair.serverkey import ServerKeyRefused
    from overair.storage import StorageUnavailable

    try:
        run_server(host=host, port=port, data_dir=data_dir, workers=workers, new_admin_key=new_admin_key)
    except (SettingsError, DatabaseUnavailable, StorageUnavailable, ServerKeyRefused) as exc:
        raise CliError(exc.message) from None
    except SigningError as exc:
        raise CliError(
            f"The server's signing key cannot be used: {exc.message}. Restore the file from a backup, or set "
            "OVERAIR_SERVER_KEY_FILE to a new path (devices built with the old key will then refuse answers)."
        ) from None


def migrate(
    data_dir: Annotated[
        Path | None, typer.Option(help="The server's data folder (OVERAIR_DATA_DIR); other OVERAIR_* apply.")
    ] = None,
) -> None:
    """Bring the database schema up to this version of overair, then exit.

    `overair serve` migrates by itself at start; run this first when upgrading a deployment of several
    hosts, or to migrate without serving. Any number of hosts may run it (or start) at once: they take
    turns on a lock in the database (SQLite: a lock file next to it), and only the first migrates.
    """
    from overair.config import SettingsError, load_settings
    from overair.db import DatabaseUnavailable, make_engine, shown
    from overair.db import migrate as upgrade

    def waiting() -> None:
        err_console.print("Another overair server is migrating the database; waiting for it to finish…")

    try:
        settings = load_settings() if data_dir is None else load_settings(data_dir=data_dir)
        engine = make_engine(settings.resolved_database_url())
        try:
            done = upgrade(engine, on_wait=waiting)
        finally:
            engine.dispose()
    except (SettingsError, DatabaseUnavailable) as exc:
        raise CliError(exc.message) from None
    where = shown(engine)
    if done.changed:
        print(f"Migrated the database at {where} from {done.before or 'empty'} to revision {done.after}.")
    else:
        print(f"The database at {where} is already at the newest revision ({done.after}).")


def fsck(
    data_dir: Annotated[
        Path | None, typer.Option(help="The server's data folder (OVERAIR_DATA_DIR); other OVERAIR_* apply.")
    ] = None,
    remove_unreferenced: Annotated[
        bool,
        typer.Option(
            "--remove-unreferenced",
            help="Delete unreferenced blobs older than --grace-hours after the check.",
        ),
    ] = False,
    grace_hours: Annotated[
        float,
        typer.Option(
            help="Keep unreferenced blobs stored this recently (a publish on another host may own them).",
            min=0,
        ),
    ] = 24.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (for scripts).")
    ] = False,
) -> None:
    """Check the database against the blob store: every release's blobs there and intact, none unreferenced.

    Reads the database and blob store directly (like serve), and hashes every referenced blob. Exit
    status: 0 consistent, 1 missing or damaged content (or the check could not run), 3 only unreferenced
    blobs left. Progress goes to stderr.
    """
    import datetime as dt
    import json

    from overair.config import SettingsError, load_settings
    from overair.db import DatabaseUnavailable
    from overair.maintenance import fsck as check
    from overair.maintenance import report as output
    from overair.storage import StorageUnavailable

    try:
        settings = load_settings() if data_dir is None else load_settings(data_dir=data_dir)
    except SettingsError as exc:
        raise CliError(exc.message) from None

    def progress(line: str) -> None:
        err_console.print(line, highlight=False, soft_wrap=True)

    try:
        report, blobs = check.check_settings(settings, progress)
    except (check.CannotCheck, DatabaseUnavailable, StorageUnavailable) as exc:
        raise CliError(exc.message) from None
    if remove_unreferenced:
        check.remove_unreferenced(blobs, report, dt.timedelta(hours=grace_hours))
    if json_output:
        print(json.dumps(output.to_json(report, blobs), indent=2))
    else:
        for line in output.render(report, blobs, grace_hours):
            print(line)
    raise typer.Exit(output.exit_code(report))


def build() -> typer.Typer:
    """The full ``overair`` command."""
    cli = build_cli()
    cli.command("serve")(serve)
    cli.command("migrate")(migrate)
    cli.command("fsck")(fsck)
    return cli


def _usage_error(exc: click.ClickException) -> None:
    """A mistake on the command line, in one line (no box, no wrapping): what is wrong and where the
    command's help is."""
    message = exc.format_message().rstrip()
    if message[-1:] not in ".?!":
        message += "."
    ctx = getattr(exc, "ctx", None)
    see = f" See: {ctx.command_path} --help" if ctx is not None else ""
    err_console.print(f"[red]Error:[/] {escape(message)}{escape(see)}", highlight=False)


def run(argv: list[str] | None = None) -> None:
    """Run the command line and exit with its status (docs/cli.md, "Exit status"): 0 done, 1 a usage or
    validation error, 2 the server refused, 3 the server could not be reached. Never a traceback."""
    args = expand_optional_bools(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(build())
    start()
    try:
        status = command.main(args=args, prog_name="overair", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError:  # `overair release`: typer printed its help already
        sys.exit(ExitCode.INVALID)
    except click.ClickException as exc:
        _usage_error(exc)
        sys.exit(ExitCode.INVALID)
    except typer.Abort:  # a question answered with Ctrl+D, or no terminal to ask on
        err_console.print("Aborted: nothing was changed.")
        sys.exit(ExitCode.INVALID)
    except CliError as exc:
        err_console.print(f"[red]Error:[/] {escape(exc.message)}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else ExitCode.OK)


if __name__ == "__main__":
    run()
