"""Expo launch-asset patches (issue 18, item 5) through the jobs table, on SQLite and PostgreSQL.

``LaunchPatches.patch_for`` is the seam the Expo protocol adapter calls; these tests drive it on real servers
(``create_app``), their shared ``jobs`` table and blob store, and apply what it offers with appliers that
share no code with the builder (tests/bspatch_reference.py). Two apps over one database stand for two hosts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bspatch_reference import BSPATCH, debian_bspatch, reference_bspatch
from conftest import MovableClock
from overair.app import OverairApp, create_app
from overair.config import Settings
from overair.db import make_sessionmaker
from overair.jobs.models import Job
from overair.maintenance.fsck import check
from overair.packages.bsdiff import build_patch
from overair.releases.launch_patches import PATCH_JOB, LaunchPatch, LaunchPatches, LaunchPatchRow, Outcome
from overair.storage import content_key

JS = "".join(
    f'__d(function(g,r,i,a,m,e,d){{"use strict";var s{i}=r(d[0]).render({i});e.default=s{i}}},{i},[0]);\n'
    for i in range(3000)
).encode()
HOTFIX = JS.replace(b"render(1234)", b"render(4321)", 1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store(app: OverairApp, *assets: bytes) -> list[str]:
    """Put launch assets in the server's blob store as publishing does (content-addressed); their hashes."""
    for data in assets:
        assert app.state.blobs.put_bytes(data) == content_key(sha(data))
    return [sha(data) for data in assets]


def rows(app: OverairApp) -> list[LaunchPatchRow]:
    with make_sessionmaker(app.state.engine)() as session:
        return list(session.scalars(select(LaunchPatchRow)))


def patch_jobs(app: OverairApp) -> list[Job]:
    with make_sessionmaker(app.state.engine)() as session:
        return list(session.scalars(select(Job).where(Job.kind == PATCH_JOB)))


def run_jobs(app: OverairApp) -> int:
    """Run the host's due jobs in this thread; how many of them built a launch patch."""
    done = sum(job.state == "done" for job in patch_jobs(app))
    app.state.jobs.run_pending()
    return sum(job.state == "done" for job in patch_jobs(app)) - done


def patched(app: OverairApp, old: bytes, offer: LaunchPatch, tmp_path: Path) -> bytes:
    """The offered patch applied to ``old`` as the client does (and by Debian's bspatch, when installed)."""
    with app.state.blobs.open(offer.blob_key) as stream:
        patch = stream.read()
    assert len(patch) == offer.size and patch.startswith(b"BSDIFF40")
    new = reference_bspatch(old, patch)
    if BSPATCH is not None:
        assert debian_bspatch(old, patch, tmp_path) == new
    return new


def test_a_patch_appears_once_the_job_runs_and_gives_the_target(server: OverairApp, tmp_path: Path) -> None:
    patches: LaunchPatches = server.state.launch_patches
    base, target = store(server, JS, HOTFIX)

    assert patches.patch_for(base, target) is None  # not built: queued for the next device, never waited for
    assert patches.patch_for(base, target) is None
    assert run_jobs(server) == 1  # asked twice, queued and built once

    offer = patches.patch_for(base, target)
    assert offer is not None and (offer.base_sha256, offer.target_sha256) == (base, target)
    assert patched(server, JS, offer, tmp_path) == HOTFIX
    [row] = rows(server)
    assert (row.outcome, row.size, row.blob_key) == (Outcome.OFFERED, offer.size, offer.blob_key)
    assert offer.size < row.full_size / 100  # a one-line change: a tiny fraction of the gzip download
    assert patches.patch_for(target, base) is None  # the other direction is another pair
    [job] = patch_jobs(server)
    assert (job.key, job.state) == (f"{target}:{base}", "done")


def test_publishing_schedules_patches_in_its_own_transaction(server: OverairApp) -> None:
    patches: LaunchPatches = server.state.launch_patches
    v1, v2, v3 = store(server, JS, HOTFIX, HOTFIX.replace(b"render(99)", b"render(98)", 1))
    sessions = make_sessionmaker(server.state.engine)

    with sessions() as session, session.begin():
        assert patches.schedule(v3, [v1, v2], session=session) == 2
        session.rollback()  # the publish failed: no job survives it
    assert patch_jobs(server) == []

    with sessions() as session, session.begin():
        assert patches.schedule(v3, [v1, v2, v2, v3], session=session) == 2  # no pair twice, none to itself
    assert patches.schedule(v3, [v1]) == 0  # queued already
    assert run_jobs(server) == 2
    assert all(patches.patch_for(base, v3) is not None for base in (v1, v2))


@pytest.fixture
def hosts(settings: Settings, clock: MovableClock) -> tuple[OverairApp, OverairApp]:
    """Two servers over one database and one blob store (as two hosts of a deployment are)."""
    return create_app(settings, clock=clock), create_app(settings, clock=clock)


def test_two_hosts_build_each_pair_once(
    hosts: tuple[OverairApp, OverairApp], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="overair")
    a, b = hosts
    base, target = store(a, JS, HOTFIX)
    for host in (a, b, a, b):  # devices ask both hosts; publishing on both also schedules it
        assert host.state.launch_patches.patch_for(base, target) is None
    a.state.launch_patches.schedule(target, [base])
    b.state.launch_patches.schedule(target, [base])
    ran = run_jobs(a) + run_jobs(b)

    assert ran == 1 and len(patch_jobs(a)) == 1
    built = Counter(
        r.getMessage() for r in caplog.records if re.match(r"launch patch \S+: offered", r.getMessage())
    )
    assert list(built.values()) == [1], built
    # a second build of a recorded pair (a job retried after its host died) keeps the row and builds nothing
    assert b.state.launch_patches.build(base, target) is Outcome.OFFERED
    assert len(rows(a)) == 1 and len(built) == 1
    offer_a, offer_b = (host.state.launch_patches.patch_for(base, target) for host in (a, b))
    assert offer_a == offer_b and offer_a is not None


def count_blobs(app: OverairApp) -> int:
    return sum(1 for _ in app.state.blobs.list_objects())


def test_a_patch_that_saves_too_little_is_recorded_but_never_stored_or_offered(server: OverairApp) -> None:
    patches: LaunchPatches = server.state.launch_patches
    base, target = store(server, os.urandom(50_000), os.urandom(50_000))  # nothing in common
    blobs_before = count_blobs(server)
    patches.schedule(target, [base])
    run_jobs(server)

    assert patches.patch_for(base, target) is None
    [row] = rows(server)
    assert (row.outcome, row.blob_key) == (Outcome.NOT_SMALLER, None)
    assert row.size > row.full_size * 0.5
    assert count_blobs(server) == blobs_before
    patches.patch_for(base, target)
    assert run_jobs(server) == 0  # recorded: not built again


def test_a_patch_that_fails_verification_is_never_offered(server: OverairApp) -> None:
    def damaging(old: bytes, new: bytes) -> bytes:
        """A builder gone wrong: a well-formed patch that gives one byte more than the target."""
        return build_patch(old, new + b"\n")

    sessions = make_sessionmaker(server.state.engine)
    patches = LaunchPatches(sessions, server.state.blobs, server.state.jobs, differ=damaging)
    base, target = store(server, JS, HOTFIX)
    blobs_before = count_blobs(server)
    assert patches.patch_for(base, target) is None
    assert run_jobs(server) == 1

    assert patches.patch_for(base, target) is None
    [row] = rows(server)
    assert (row.outcome, row.blob_key) == (Outcome.INVALID, None)
    assert "SHA-256" in row.detail
    assert count_blobs(server) == blobs_before
    assert server.state.launch_patches.patch_for(base, target) is None  # nor by the app's own builder


def test_nothing_is_offered_or_recorded_for_assets_it_lacks_or_cannot_name(
    server: OverairApp,
) -> None:
    patches: LaunchPatches = server.state.launch_patches
    [known] = store(server, JS)
    unknown = sha(b"an asset never published")
    for base, target in ((unknown, known), (known, unknown), (known, known), ("not-a-hash", known), ("", "")):
        assert patches.patch_for(base, target) is None
    run_jobs(server)
    assert rows(server) == []
    assert {job.key for job in patch_jobs(server)} == {f"{known}:{unknown}", f"{unknown}:{known}"}


def test_an_asset_over_the_size_limit_is_not_diffed(server: OverairApp) -> None:
    sessions = make_sessionmaker(server.state.engine)
    patches = LaunchPatches(sessions, server.state.blobs, server.state.jobs, max_asset_bytes=len(JS) - 1)
    base, target = store(server, JS, HOTFIX)
    assert patches.build(base, target) is Outcome.TOO_LARGE
    assert patches.patch_for(base, target) is None


def test_the_integrity_check_counts_an_offered_patch_as_referenced(server: OverairApp) -> None:
    patches: LaunchPatches = server.state.launch_patches
    base, target = store(server, JS, HOTFIX)
    assert patches.build(base, target) is Outcome.OFFERED
    offer = patches.patch_for(base, target)
    assert offer is not None

    report = check(make_sessionmaker(server.state.engine), server.state.blobs)
    unreferenced = {o.key for o in report.unreferenced}
    assert offer.blob_key not in unreferenced
    with make_sessionmaker(server.state.engine)() as session:
        assert session.scalar(select(func.count()).select_from(LaunchPatchRow)) == 1
