"""``overair simulate``: rehearse a rollout on a fleet of real update engines before real users get it.

Every simulated device is a real :class:`overair.client.UpdateEngine` with its own data folder and a tiny
embedded bundle, talking to the server the CLI is logged in to over HTTP, exactly as an app in the field
does. Launch by launch, each device starts, confirms its bundle (unless that label is the one told to
crash), checks for an update, downloads and installs it for the next restart, and delivers its reports.

Every request of the simulated devices carries ``Overair-Simulated: 1``: the server counts their reports
apart (the deployment's rehearsal), so they never move production numbers (release counters, failure
rates, active devices, the reach ``push-update`` announces, Prometheus). The table printed at the end is
that rehearsal, read back from the server; ``overair simulate-cleanup`` removes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from overair.cli import rollouts
from overair.cli.config import load_login
from overair.cli.errors import CliError
from overair.cli.http import Api, quote
from overair.cli.output import JsonOutput, add_text_row, console, new_table, progress
from overair.cli.policy_rehearsal import Rehearsal, run_rehearsal
from overair.cli.rehearsal import rehearsal_path
from overair.client import CheckStatus, InstallMode, UpdateEngine, UpdateError

SIMULATED_HEADER = "Overair-Simulated"
"""Sent with every request of a simulated device (value ``1``): the server counts its reports apart."""

EMBEDDED = "embedded"
"""The column of devices running the bundle built into the binary (no update installed)."""

DEFAULT_WORKERS = 16
_REASONS_SHOWN = 3
_MEMORY_DIR = Path("/dev/shm")
_DEVICE_OVERHEAD = 256 * 1024
_UNPACKED_RATIO = 10

T = TypeVar("T")


@dataclass(slots=True)
class LaunchOutcome:
    """What one launch did on one device."""

    label: str
    """The label running after ``start()`` (``embedded`` for the built-in bundle)."""
    updated: bool = False
    """``start()`` switched to an update installed at the previous launch."""
    rolled_back: bool = False
    """``start()`` went back because the previous launch never confirmed its update."""
    failed_check: bool = False
    """The update check went offline or the offered update could not be downloaded."""
    problem: str | None = None
    """Why the offered update could not be downloaded or installed."""


@dataclass(slots=True)
class LaunchSummary:
    """The fleet after one launch."""

    running: Counter[str] = field(default_factory=Counter)
    updated: int = 0
    rolled_back: int = 0
    failed_checks: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: LaunchOutcome) -> None:
        """Count one device's launch."""
        self.running[outcome.label] += 1
        self.updated += outcome.updated
        self.rolled_back += outcome.rolled_back
        self.failed_checks += outcome.failed_check
        if outcome.problem:
            self.problems[outcome.problem] += 1


class _CheckFailures(logging.Handler):
    """Counts why update checks failed (the engine logs it and answers OFFLINE), one line per reason
    instead of one log line per device."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()
        self._seen_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith("update check"):
            with self._seen_lock:
                self.seen[record.getMessage()] += 1


@contextlib.contextmanager
def _collect_check_failures() -> Iterator[_CheckFailures]:
    """Take the engines' log records for the time of the simulation (the rest is shown as counts)."""
    logger = logging.getLogger("overair.client")
    handler = _CheckFailures()
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


def launch_device(engine: UpdateEngine, crash_label: str | None) -> LaunchOutcome:
    """One app launch: start, confirm (unless the running label crashes), check, download, install, report.

    Network trouble never raises: a check that goes offline or an update that cannot be downloaded is
    counted as a failed check. Updates install for the next restart, as in a normal app lifecycle.
    """
    pending = engine.pending_label
    failures_before = len(engine.failed_labels)
    engine.start()
    running = engine.current_label
    outcome = LaunchOutcome(label=running or EMBEDDED)
    outcome.rolled_back = len(engine.failed_labels) > failures_before
    outcome.updated = pending is not None and running == pending
    if running is None or running != crash_label:
        engine.notify_app_ready()  # a bundle of the crashing label never gets here: the app "crashed"
    result = engine.check_for_update()
    if result.status is CheckStatus.OFFLINE:
        outcome.failed_check = True
    elif result.update is not None and engine.pending_label != result.update.label:
        try:
            engine.install(engine.download(result.update), InstallMode.ON_NEXT_RESTART)
        except UpdateError as exc:
            outcome.failed_check = True
            outcome.problem = f"{result.update.label} could not be downloaded: {exc.message}"
    engine.flush_reports()
    return outcome


@contextlib.contextmanager
def _pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A thread pool that drops its queued tasks when left early (Ctrl+C, an error)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="device")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_counts(devices: int, launches: int, workers: int) -> None:
    for option, value, example in (
        ("--devices", devices, "--devices 100"),
        ("--launches", launches, "--launches 5"),
        ("--workers", workers, f"--workers {DEFAULT_WORKERS}"),
    ):
        if value < 1:
            raise CliError(
                f"{option} must be at least 1, not {value}: give a positive number, e.g. {example}."
            )


def _deployment_key(api: Api, project_name: str, deployment: str) -> str:
    deployments: list[dict[str, Any]] = api.get(f"/apps/{quote(project_name)}/deployments")
    keys = {str(d["name"]): str(d["key"]) for d in deployments}
    if deployment not in keys:
        names = ", ".join(sorted(keys)) or "none"
        raise CliError(
            f"{project_name} has no deployment {deployment!r} (it has: {names}). "
            "Pick one with --deployment, or add it with: overair deployment add"
        )
    return keys[deployment]


def _scratch_parent(devices: int, releases: list[dict[str, Any]]) -> str | None:
    """Where the temporary device folders go: in memory when there is ample room and TMPDIR is not set.

    The engines fsync every state change and every unpacked file; in memory those cost nothing, which
    makes a large simulation markedly faster and spares the disk. None means the usual temporary folder.
    """
    if os.environ.get("TMPDIR"):
        return None
    largest = max((int(r.get("size") or 0) for r in releases), default=0)
    needed = devices * (_DEVICE_OVERHEAD + _UNPACKED_RATIO * largest)
    try:
        if (
            _MEMORY_DIR.is_dir()
            and os.access(_MEMORY_DIR, os.W_OK | os.X_OK)
            and shutil.disk_usage(_MEMORY_DIR).free > 2 * needed
        ):
            return str(_MEMORY_DIR)
    except OSError:
        pass
    return None


def _label_order(label: str, known: list[str]) -> tuple[int, int, str]:
    """Columns: embedded first, then releases in publishing order, then anything else."""
    if label == EMBEDDED:
        return (0, 0, label)
    if label in known:
        return (1, known.index(label), label)
    number = re.fullmatch(r"v(\d+)", label)
    return (2, int(number.group(1)) if number else 0, label)


def _run_all(
    pool: ThreadPoolExecutor,
    items: list[T],
    task: Callable[[T], Any],
    bars: Progress,
    description: str,
) -> list[Any]:
    """``task`` over ``items`` in the pool, advancing a progress bar; results in the order of ``items``.

    The first exception raised by a task is raised here, after the remaining tasks were cancelled.
    """
    bar = bars.add_task(description, total=len(items))
    futures: list[Future[Any]] = []
    for item in items:
        future = pool.submit(task, item)
        future.add_done_callback(lambda _f: bars.advance(bar))
        futures.append(future)
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in done:
        error = future.exception()
        if error is not None:
            for other in pending:
                other.cancel()
            wait(pending)
            raise error
    return [future.result() for future in futures]


def _movement_table(summaries: list[LaunchSummary], known: list[str], devices: int) -> Table:
    labels = sorted({label for s in summaries for label in s.running}, key=lambda x: _label_order(x, known))
    headers = ("Launch", *labels, "updated", "rolled back", "failed checks")
    table = new_table(*headers, title=f"How {devices:,} devices moved, launch by launch", numeric=headers)
    for number, summary in enumerate(summaries, 1):
        table.add_row(
            str(number),
            *(str(summary.running.get(label, 0)) for label in labels),
            str(summary.updated),
            str(summary.rolled_back),
            str(summary.failed_checks),
        )
    return table


def _rehearsal_table(rehearsal: dict[str, Any]) -> Table:
    """The server's count of what the simulated devices did, per release (never production numbers)."""
    numbers = ("Rollout", "Downloads", "Installs", "Failures", "Rollbacks", "Active")
    where = f"{rehearsal['app']} / {rehearsal['deployment']}"
    title = f"Rehearsal on {where}: the server's count of simulated devices"
    table = new_table("Label", *numbers, title=title, numeric=numbers)
    for r in rehearsal["releases"]:
        add_text_row(
            table,
            str(r["label"]),
            f"{r['rollout']}%",
            str(r["downloads"]),
            str(r["installs"]),
            str(r["failures"]),
            str(r["rollbacks"]),
            str(r["active"]),
        )
    return table


class Fleet:
    """Simulated devices, one folder each under ``root``: a tiny embedded bundle and the engine's data.

    ``simulated`` (the default, and always so for ``overair simulate``) marks every request with
    ``Overair-Simulated: 1``, so the server counts the fleet as a rehearsal. False makes the engines plain
    devices that count in production metrics, for load and end-to-end tests of those metrics.
    """

    def __init__(
        self,
        root: Path,
        *,
        server: str,
        deployment_key: str,
        app_version: str,
        build_number: int | None,
        embedded_text: str,
        simulated: bool = True,
    ) -> None:
        self.root = root
        self.simulated = simulated
        self.server = server
        self.deployment_key = deployment_key
        self.app_version = app_version
        self.build_number = build_number
        self.embedded_text = embedded_text

    def run(
        self, devices: int, launches: int, crash_label: str | None, workers: int
    ) -> tuple[list[LaunchSummary], Counter[str]]:
        """Launch every device ``launches`` times: the fleet after each launch, and why checks failed.

        One HTTP client (one connection per worker thread) is shared by every engine.
        """
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        timeout = httpx.Timeout(30.0, connect=10.0)
        bars = progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        summaries: list[LaunchSummary] = []
        with (
            httpx.Client(
                limits=limits,
                timeout=timeout,
                follow_redirects=True,
                headers={SIMULATED_HEADER: "1"} if self.simulated else {},
            ) as http,
            _pool(workers) as pool,
            _collect_check_failures() as check_failures,
            bars,
        ):
            width = len(str(devices))
            engines = _run_all(
                pool,
                [self.root / f"device-{n:0{width}d}" for n in range(1, devices + 1)],
                lambda folder: self._device(folder, http),
                bars,
                "Preparing devices",
            )
            for launch in range(1, launches + 1):
                outcomes = _run_all(
                    pool,
                    engines,
                    lambda engine: launch_device(engine, crash_label),
                    bars,
                    f"Launch {launch}/{launches}",
                )
                summary = LaunchSummary()
                for outcome in outcomes:
                    summary.add(outcome)
                summaries.append(summary)
        reasons = Counter(check_failures.seen)
        for summary in summaries:
            reasons.update(summary.problems)
        return summaries, reasons

    def _device(self, folder: Path, http: httpx.Client) -> UpdateEngine:
        embedded = folder / "embedded"
        embedded.mkdir(parents=True, exist_ok=True)
        index = embedded / "index.js"
        if not index.exists():
            index.write_text(f"showWelcome({self.embedded_text!r});\n", encoding="utf-8")
        return UpdateEngine(
            self.server,
            self.deployment_key,
            self.app_version,
            self.build_number,
            embedded_bundle=embedded,
            data_dir=folder / "data",
            http=http,
        )


def simulate(
    project_name: Annotated[
        str | None,
        typer.Option(
            "--project-name",
            help="The app, e.g. CoolApp (with --crash-rate: optional, its deployment's rollout policy is "
            "rehearsed).",
        ),
    ] = None,
    devices: Annotated[
        int | None,
        typer.Option(
            "--devices",
            help="How many devices to simulate, e.g. 1000 (with --crash-rate: 10,000 by default).",
        ),
    ] = None,
    launches: Annotated[
        int | None, typer.Option("--launches", help="How many times each device starts the app, e.g. 5.")
    ] = None,
    crash_label: Annotated[
        str | None,
        typer.Option(
            "--crash-label",
            help="A release (e.g. v2) whose bundle crashes: devices running it never confirm it, so they "
            "roll back at their next launch.",
        ),
    ] = None,
    deployment: Annotated[str, typer.Option("--deployment", help="The deployment.")] = "Production",
    app_version: Annotated[
        str, typer.Option("--app-version", help="The binary version the devices run.")
    ] = "1.0.0",
    build_number: Annotated[
        int | None, typer.Option("--build-number", help="The binary's build number (none by default).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Devices launched at the same time (threads).")
    ] = DEFAULT_WORKERS,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Keep the devices' folders here (a later run with the same folder continues with the same "
            "devices); by default a temporary folder, removed at the end.",
        ),
    ] = None,
    crash_rate: Annotated[
        str | None,
        typer.Option(
            "--crash-rate",
            metavar="RATE",
            help="Rehearse the guarded-rollout policy instead, in accelerated time on this machine: a "
            "release that crashes on this share of launches (e.g. 30%) and a healthy one; prints how far "
            "the bad one got before it was stopped and how long the good one took to reach every device.",
        ),
    ] = None,
    baseline_rate: Annotated[
        str,
        typer.Option(
            "--baseline-rate", metavar="RATE", help="With --crash-rate: the healthy release's failure rate."
        ),
    ] = "0.5%",
    seeds: Annotated[int, typer.Option("--seeds", help="With --crash-rate: seeded runs per release.")] = 5,
    launch_every: Annotated[
        str,
        typer.Option(
            "--launch-every",
            metavar="DURATION",
            help="With --crash-rate: how often a device launches the app, on average.",
        ),
    ] = "6h",
    ramp: rollouts.Ramp = None,
    ramp_every: rollouts.RampEvery = None,
    ramp_min_sample: rollouts.RampMinSample = None,
    halt_on_failure_rate: rollouts.HaltOnFailureRate = None,
    max_increase_over_previous: rollouts.MaxIncrease = None,
    min_failures: rollouts.MinFailures = None,
    confidence: rollouts.Confidence = None,
    on_failure: rollouts.OnFailure = None,
    json_output: JsonOutput = False,
) -> None:
    """Rehearse a rollout: real update engines launch the app against the server, launch by launch.

    Shows how the devices moved between releases after each launch, then the server's count of them per
    release. Simulated devices are counted apart: they never move production numbers.

    With --crash-rate, rehearses the guarded-rollout policy instead (the deployment's, with --project-name;
    else the defaults; the policy flags change it), on a simulated fleet in accelerated time, with no
    server: a bad release and a healthy one, each in several seeded runs.
    """
    if crash_rate is not None:
        fields = rollouts.policy_fields(
            ramp,
            ramp_every,
            ramp_min_sample,
            halt_on_failure_rate,
            max_increase_over_previous,
            min_failures,
            confidence,
            on_failure,
        )
        if project_name is not None:
            with Api(load_login()) as api:
                stored = api.get(rollouts.policy_path(project_name, deployment))["policy"]
            fields = {**(stored or {}), **fields}
        every = rollouts.parse_duration(launch_every, "--launch-every") or 0.0
        rehearsal = Rehearsal(
            crash_rate=rollouts.parse_rate(crash_rate, "--crash-rate") or 0.0,
            baseline_rate=rollouts.parse_rate(baseline_rate, "--baseline-rate") or 0.0,
            devices=10_000 if devices is None else devices,
            seeds=seeds,
            launch_every=dt.timedelta(seconds=every),
        )
        run_rehearsal(fields, rehearsal, json_output)
        return
    if json_output:
        raise CliError("--json goes with --crash-rate: a rehearsal on real engines prints tables only.")
    if project_name is None or devices is None or launches is None:
        given = (("--project-name", project_name), ("--devices", devices), ("--launches", launches))
        missing = ", ".join(flag for flag, value in given if value is None)
        raise CliError(
            f"Give {missing}: e.g. overair simulate --project-name CoolApp --devices 1000 --launches 5 "
            "(or rehearse the rollout policy alone with --crash-rate 30%)."
        )
    _check_counts(devices, launches, workers)
    login = load_login()
    with Api(login) as api:
        key = _deployment_key(api, project_name, deployment)
        history_path = f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases"
        history: list[dict[str, Any]] = api.get(history_path)
        known = [str(r["label"]) for r in history]
        if crash_label is not None and crash_label not in known:
            raise CliError(
                f"--crash-label {crash_label}: {deployment} of {project_name} has no such release "
                f"(it has: {', '.join(known) or 'none'}). See them with: overair release list "
                f'--project-name "{project_name}" --deployment "{deployment}"'
            )
        earlier = api.get(rehearsal_path(project_name, deployment))
        if not known:
            console.print(
                f"{deployment} of {project_name} has no release yet: every device stays on its embedded "
                "bundle. Publish one with: overair release push-update"
            )
        with contextlib.ExitStack() as stack:
            if data_dir is None:
                parent = _scratch_parent(devices, history)
                root = Path(
                    stack.enter_context(
                        tempfile.TemporaryDirectory(
                            prefix="overair-simulate-", dir=parent, ignore_cleanup_errors=True
                        )
                    )
                )
            else:
                root = data_dir.expanduser().resolve()
            fleet = Fleet(
                root,
                server=login.server,
                deployment_key=key,
                app_version=app_version,
                build_number=build_number,
                embedded_text=f"{project_name} {app_version} (embedded)",
            )
            try:
                summaries, reasons = fleet.run(devices, launches, crash_label, min(workers, devices))
            except OSError as exc:
                raise CliError(
                    f"A simulated device could not write its files in {root}: {exc}. Free some disk space "
                    "or pass --data-dir on a disk with room."
                ) from None
        console.print(_movement_table(summaries, known, devices))
        final = summaries[-1].running
        shares = ", ".join(
            f"{label} {count} ({count * 100 / devices:.0f}%)"
            for label, count in sorted(final.items(), key=lambda item: _label_order(item[0], known))
        )
        console.print(f"After launch {launches}: {shares}.")
        if reasons:
            console.print("Why checks or downloads failed (most frequent reasons):")
            for message, count in reasons.most_common(_REASONS_SHOWN):
                console.print(f"  {count} x {message}", highlight=False, markup=False)
        if data_dir is not None:
            console.print(f"The devices' folders are kept in {root}.")
        rehearsal = api.get(rehearsal_path(project_name, deployment))
    console.print(_rehearsal_table(rehearsal))
    if earlier["reports"]:
        console.print(
            f"These numbers include {int(earlier['reports']):,} reports of earlier rehearsals on "
            f"{deployment}.",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        "Simulated devices are counted apart: production numbers (release list, the console, metrics) "
        "never include them. Remove this rehearsal with: overair simulate-cleanup "
        f'--project-name "{project_name}" --deployment "{deployment}"',
        highlight=False,
        soft_wrap=True,
    )
