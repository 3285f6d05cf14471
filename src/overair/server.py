"""The server process: prepare the database, make the first admin key, and run the server under granian."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from rich.console import Console

from overair import __version__
from overair.auth.principal import Principal, Surface
from overair.auth.service import AccessKeyService
from overair.config import Settings, load_settings
from overair.db import make_engine, make_sessionmaker, migrated
from overair.hosts import is_loopback
from overair.maintenance import describe_sweep, sweep_leftovers
from overair.metrics.scrape import scrape_access
from overair.packages import signing
from overair.serverkey import check_server_key, fingerprint_text, load_server_key

console = Console()


def _waiting() -> None:
    console.print(
        "Another overair server is migrating the database; waiting for it to finish…", highlight=False
    )


def prepare(settings: Settings, new_admin_key: bool = False) -> str | None:
    """Sweep crash leftovers, migrate the database, make the first admin key (or a new one when asked).

    Temporary files older than ``OVERAIR_TEMP_MAX_AGE_MINUTES`` (an upload or extraction a killed server
    left) are removed and the amount printed. The key is returned (to be shown once) or None. Migration and
    the first key happen under the deployment's startup lock, so hosts starting together make one of each.
    The server key is checked against the fingerprint the database recorded (or recorded, by the first
    host). Raises :class:`~overair.db.DatabaseUnavailable` when the database cannot be reached,
    :class:`~overair.storage.StorageUnavailable` when the object store cannot, and
    :class:`~overair.serverkey.ServerKeyRefused` when this host's key is missing or not the deployment's.
    """
    # StorageUnavailable: one line naming the object store that does not answer
    swept = sweep_leftovers(
        settings.resolved_temp_dir(), settings.blob_store(), settings.temp_max_age_minutes * 60
    )
    if swept:
        console.print(describe_sweep(swept), highlight=False, soft_wrap=True)
    engine = make_engine(settings.resolved_database_url())
    try:
        # one host at a time: the schema is migrated once and exactly one host makes the first key
        with migrated(engine, on_wait=_waiting):
            sessions = make_sessionmaker(engine)
            server_key = load_server_key(settings)
            if check_server_key(sessions, server_key):  # refuses a key that is not the deployment's
                console.print(
                    f"Recorded the server key {fingerprint_text(server_key)} as the deployment's: every "
                    "host must sign with it.",
                    highlight=False,
                    soft_wrap=True,
                )
            keys = AccessKeyService(sessions)
            created = keys.ensure_initial_key()
            if created is None and new_admin_key:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
                operator = Principal("overair serve --new-admin-key", None, Surface.SYSTEM)
                created = keys.create(operator, f"admin-{stamp}")
    finally:
        engine.dispose()
    return created.key if created else None


def run_server(
    host: str | None = None,
    port: int | None = None,
    data_dir: Path | None = None,
    workers: int | None = None,
    new_admin_key: bool = False,
) -> None:
    """Prepare the database, print the URL (and the first admin key), and serve until interrupted.

    Arguments override the ``OVERAIR_*`` environment; granian's workers read the same environment.
    """
    for name, value in (("HOST", host), ("PORT", port), ("DATA_DIR", data_dir), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"OVERAIR_{name}"] = str(value)
    settings = load_settings()
    key = prepare(settings, new_admin_key)
    url = f"http://{settings.host}:{settings.port}"
    say = console.print
    say(f"overair {__version__} is serving at [bold]{url}[/]  (data in {settings.data_dir.resolve()})")
    server_key = load_server_key(settings)
    say(
        f"Update-check answers are signed with the server key {signing.public_key_text(server_key)} "
        f"({fingerprint_text(server_key)})",
        soft_wrap=True,
        highlight=False,
    )
    say(f"Web console: {url}/console/ (sign in with an access key)", highlight=False)
    metrics = scrape_access(
        settings.metrics_key, settings.metrics_public, settings.resolved_metrics_key_file()
    )
    if metrics.created:
        say(
            f"Prometheus reads {url}/metrics with the metrics key [bold]{metrics.key}[/] "
            f"(kept in {metrics.source})"
        )
    elif metrics.key is None:
        say(f"{url}/metrics is open to anyone (OVERAIR_METRICS_PUBLIC=true)", highlight=False)
    else:
        say(f"Prometheus reads {url}/metrics with the metrics key in {metrics.source}", highlight=False)
    if not is_loopback(settings.host) and not settings.public_url and not settings.allowed_hosts:
        say(
            "[yellow]Requests that name a host other than this machine's loopback names are refused "
            "(421).[/] Set OVERAIR_PUBLIC_URL to the URL devices use (like http://192.168.1.5:3000 or "
            "https://ota.example.com), or list names in OVERAIR_ALLOWED_HOSTS.",
            soft_wrap=True,
            highlight=False,
        )
    if key:
        say("\nAn admin access key was created. It is shown only this once:\n")
        say(f"    [bold yellow]{key}[/]\n", soft_wrap=True)
        say("Next, in another terminal:")
        say(f"    .venv/bin/overair login --server {url} --access-key {key}", soft_wrap=True)
        say('    .venv/bin/overair app create "CoolApp"')
    else:
        say(f"Log in with: .venv/bin/overair login --server {url} --access-key YOUR_KEY", soft_wrap=True)
    say("\nPress Ctrl+C to stop.", highlight=False)

    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "overair.app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_access=False,
        # SIGTERM: drain, flush reports, stop background work (the app's lifespan), within this bound;
        # a worker still running then is killed rather than keeping `systemctl stop` waiting
        workers_kill_timeout=max(1, round(settings.shutdown_seconds)),
    ).serve()
