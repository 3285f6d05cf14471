"""Background work shared by every host (issue 15, item 6): the ``jobs`` table, its leases and backoff.

Two apps over one database stand for two hosts; the worker threads run when an app's lifespan runs (a
``TestClient`` used as a context manager), and ``run_pending``/``drain`` run jobs in the test's own thread
otherwise. Time passes on the ``clock`` fixture, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections import Counter

import pytest
from sqlalchemy import event, func, select
from starlette.testclient import TestClient

from conftest import MovableClock, bundle, publish
from overair.app import OverairApp, create_app
from overair.auth.principal import Action, Forbidden, Principal, Surface
from overair.config import Settings
from overair.db import make_sessionmaker
from overair.jobs import JobQueue, JobState, Worker
from overair.jobs.queue import LEASE
from overair.releases.deltas import PAIR_JOB, RELEASE_JOB
from overair.releases.models import PackageDelta, PackageDiff
from overair.storage import content_key

JS = "".join(f"function handler{i}(event){{return dispatch('{i}',event.detail*{i})}}\n" for i in range(800))


def app_bundle(n: int) -> bytes:
    return bundle(**{"app__main.js": (JS + f"// release {n}\n").encode()})


@pytest.fixture
def hosts(settings: Settings, clock: MovableClock) -> tuple[OverairApp, OverairApp]:
    """Two servers over one database and one blob store (as two hosts of a deployment are)."""
    return create_app(settings, clock=clock), create_app(settings, clock=clock)


@pytest.fixture
def key(hosts: tuple[OverairApp, OverairApp]) -> str:
    """The first admin key, good on both hosts."""
    created = hosts[0].state.access_keys.ensure_initial_key()
    assert created is not None
    return str(created.key)


def admin(app: OverairApp, key: str) -> TestClient:
    """A client of ``app`` with the admin key (its lifespan, and worker thread, run only inside ``with``)."""
    client = TestClient(app, base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def setup_app(client: TestClient) -> str:
    """CoolApp; its Production deployment key."""
    app = client.post("/api/v1/apps", json={"name": "CoolApp"}).json()
    return str(next(d["key"] for d in app["deployments"] if d["name"] == "Production"))


def release(client: TestClient, n: int) -> str:
    response = publish(client, content=app_bundle(n))
    assert response.status_code == 201, response.text
    return str(response.json()["package_hash"])


def jobs(client: TestClient, **params: object) -> list[dict]:
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def check(client: TestClient, key: str, package_hash: str, label: str) -> dict:
    response = client.get(
        "/v1/update-check",
        params={"deployment_key": key, "app_version": "1.0.0", "package_hash": package_hash, "label": label},
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["update"])


def built_deltas(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    """Each delta built (by any host), from the log line every build writes."""
    return Counter(m.group(1) for r in caplog.records if (m := re.match(r"delta (\S+→\S+):", r.getMessage())))


def test_two_hosts_share_the_queue_and_each_delta_is_built_exactly_once(
    hosts: tuple[OverairApp, OverairApp], key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="overair")
    a, b = hosts
    with admin(a, key) as host_a, admin(b, key) as host_b:  # both lifespans run: two worker threads
        deployment = setup_app(host_a)
        hashes = [release(host_a if n % 2 else host_b, n) for n in range(1, 14)]
        # v13's deltas are built from v3..v12; a device on v1 asks both hosts, twice: the delta from v1 to
        # v13 is queued once
        for host in (host_a, host_b, host_a, host_b):
            assert "delta" not in check(host, deployment, hashes[0], "v1")
        a.state.releases.drain()
        b.state.releases.drain()
        listed = jobs(host_b, limit=500)

    kinds = Counter(j["kind"] for j in listed)
    assert (kinds[RELEASE_JOB], kinds["diffs.release"], kinds[PAIR_JOB]) == (13, 13, 1)
    assert all(j["state"] == "done" and j["attempts"] == 1 for j in listed), listed
    built = built_deltas(caplog)
    assert built and set(built.values()) == {1}, built  # no pair twice
    assert f"{hashes[0][:12]}→{hashes[12][:12]}" in built  # the one devices asked for
    with make_sessionmaker(a.state.engine)() as session:
        assert session.scalar(select(func.count()).select_from(PackageDelta)) == sum(built.values())
    assert check(admin(a, key), deployment, hashes[0], "v1")["delta"]["base_package_hash"] == hashes[0]


def test_a_job_whose_host_crashed_is_claimed_by_another_once_its_lease_runs_out(
    hosts: tuple[OverairApp, OverairApp], key: str, clock: MovableClock
) -> None:
    a, b = hosts
    host_a, host_b = admin(a, key), admin(b, key)  # no lifespans: the test runs the workers itself
    deployment = setup_app(host_a)
    v1 = release(host_a, 1)
    b.state.jobs.run_pending()
    release(host_a, 2)
    crashed = a.state.jobs.queue.claim([RELEASE_JOB])  # host a takes v2's job, then dies with it
    assert crashed is not None and crashed.attempts == 1 and crashed.key == "2"

    b.state.jobs.run_pending()  # everything else runs; the claimed job is host a's while its lease lasts
    assert "delta" not in check(host_b, deployment, v1, "v1")
    held = v2_job(host_b)
    assert (held["state"], held["lease_owner"]) == ("running", a.state.jobs.queue.owner)

    clock.advance(LEASE.total_seconds() - 1)
    b.state.jobs.run_pending()
    assert v2_job(host_b) == held  # not a second early
    clock.advance(2)
    b.state.jobs.run_pending()
    assert check(host_b, deployment, v1, "v1")["delta"]["base_package_hash"] == v1
    done = v2_job(host_b)
    assert (done["state"], done["attempts"], done["lease_owner"]) == ("done", 2, None)
    assert not a.state.jobs.queue.complete(crashed)  # host a coming back late changes nothing


def test_a_live_host_keeps_its_long_job_by_renewing_the_lease(
    hosts: tuple[OverairApp, OverairApp], key: str, clock: MovableClock
) -> None:
    a, b = hosts
    host_a = admin(a, key)
    setup_app(host_a)
    release(host_a, 1)
    b.state.jobs.run_pending()
    release(host_a, 2)
    job = a.state.jobs.queue.claim([RELEASE_JOB])
    assert job is not None and job.key == "2"
    for _ in range(3):  # the job runs for three leases' time; its host renews the lease meanwhile
        clock.advance(LEASE.total_seconds() - 1)
        assert a.state.jobs.queue.renew([job]) == 1
        b.state.jobs.run_pending()
        assert v2_job(host_a)["lease_owner"] == a.state.jobs.queue.owner
    assert a.state.jobs.queue.complete(job)
    assert b.state.jobs.queue.renew([job]) == 0  # nobody renews what it does not hold


def test_a_job_that_takes_its_host_down_every_time_ends_failed(
    server: OverairApp, admin_key: str, clock: MovableClock
) -> None:
    queue = server.state.jobs.queue
    assert queue.enqueue("test.crash", "one")
    for attempt in range(1, 6):
        job = queue.claim(["test.crash"])  # and the host dies with it
        assert job is not None and job.attempts == attempt
        clock.advance(LEASE.total_seconds() + 1)
    assert queue.claim(["test.crash"]) is None
    [listed] = [j for j in jobs(admin(server, admin_key)) if j["kind"] == "test.crash"]
    assert (listed["state"], listed["attempts"]) == ("failed", 5)
    assert listed["last_error"] == "the hosts running it stopped before it finished, 5 times"


def v2_job(client: TestClient) -> dict:
    """The job that builds the deltas to release v2 (release id 2)."""
    [job] = [j for j in jobs(client) if j["kind"] == RELEASE_JOB and j["key"] == "2"]
    return job


def test_a_failing_job_is_retried_with_backoff_then_fails_for_good(
    server: OverairApp, admin_key: str, clock: MovableClock
) -> None:
    client = admin(server, admin_key)
    setup_app(client)
    release(client, 1)
    server.state.releases.drain()
    main_js = (JS + "// release 1\n").encode()
    server.state.blobs.delete(content_key(hashlib.sha256(main_js).hexdigest()))  # v1's files are gone
    release(client, 2)

    waits = []
    for attempt in range(1, 6):
        server.state.releases.drain()
        job = v2_job(client)
        assert job["attempts"] == attempt
        assert job["last_error"].startswith("ObjectNotFound: no object stored under"), job
        if attempt < 5:
            assert job["state"] == "queued"
            waits.append(round((parse(job["run_after"]) - clock()).total_seconds()))
            clock.advance(waits[-1] - 1)
            server.state.jobs.run_pending()
            assert v2_job(client) == job  # not before its time
            clock.advance(1)
    assert waits == [30, 60, 120, 240]
    assert job["state"] == "failed" and job["finished_at"] is not None
    assert [j["key"] for j in jobs(client, state="failed") if j["kind"] == RELEASE_JOB] == [job["key"]]
    clock.advance(3600)
    server.state.jobs.run_pending()
    assert v2_job(client) == job  # given up: never tried again
    # asking for the same work again does not queue it twice
    assert not server.state.jobs.enqueue(RELEASE_JOB, job["key"], {"release_id": int(job["key"])})


def parse(text: str) -> dt.datetime:
    """A time the API answered, as an aware datetime."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@pytest.mark.parametrize("table", ["package_deltas", "package_diffs"])
def test_two_hosts_storing_the_same_download_at_once_both_succeed(
    hosts: tuple[OverairApp, OverairApp], key: str, table: str
) -> None:
    """The second host's insert meets the first host's row: it keeps it instead of failing."""
    a, b = hosts
    host_a = admin(a, key)
    setup_app(host_a)
    base, target = release(host_a, 1), release(host_a, 2)
    release_id = 2

    def build(app: OverairApp) -> None:
        downloads = app.state.releases.downloads
        if table == "package_deltas":
            assert downloads.deltas.build(base, target)
        else:
            assert downloads.build_diffs(release_id) == 1

    raced: list[str] = []

    def meanwhile(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith(f"INSERT INTO {table}") and not raced:
            raced.append(statement)
            other = threading.Thread(target=build, args=(a,))  # host a stores the same pair first
            other.start()
            other.join()

    event.listen(b.state.engine, "before_cursor_execute", meanwhile)
    build(b)
    assert raced
    model = PackageDelta if table == "package_deltas" else PackageDiff
    with make_sessionmaker(a.state.engine)() as session:
        assert session.scalar(select(func.count()).select_from(model)) == 1


def test_metrics_are_pruned_by_one_job_an_hour_whatever_the_number_of_hosts(
    hosts: tuple[OverairApp, OverairApp], key: str, clock: MovableClock
) -> None:
    a, b = hosts
    client = admin(a, key)
    for _ in range(3):
        a.state.jobs.run_pending()
        b.state.jobs.run_pending()
    assert [j["state"] for j in jobs(client) if j["kind"] == "metrics.prune"] == ["done"]
    clock.advance(3600)
    b.state.jobs.run_pending()
    a.state.jobs.run_pending()
    assert [j["state"] for j in jobs(client) if j["kind"] == "metrics.prune"] == ["done", "done"]


def test_stopping_gives_back_the_job_in_hand_within_the_timeout(
    server: OverairApp, clock: MovableClock
) -> None:
    sessions = make_sessionmaker(server.state.engine)
    started, finish = threading.Event(), threading.Event()

    def long_job(_payload: object) -> None:
        started.set()
        finish.wait(30)

    stopping = Worker(JobQueue(sessions, clock), clock)
    stopping.handle("test.long", long_job)
    stopping.start()
    stopping.enqueue("test.long", "one")
    assert started.wait(30)
    assert not stopping.stop(timeout=0.2)  # the job did not finish in time: it is given back
    other = Worker(JobQueue(sessions, clock), clock)
    other.handle("test.long", lambda _payload: None)
    [listed] = [j for j in other.queue.recent(admin_principal()) if j.kind == "test.long"]
    assert (listed.state, listed.attempts, listed.lease_owner) == (JobState.QUEUED, 0, None)
    assert other.run_pending() == 1  # another host (or the next start) runs it at once
    finish.set()


def test_stopping_an_idle_worker_is_prompt(server: OverairApp, clock: MovableClock) -> None:
    worker = Worker(JobQueue(make_sessionmaker(server.state.engine), clock), clock, poll_seconds=60)
    worker.start()
    assert worker.stop(timeout=5)  # woken, not left to finish its minute of waiting


def admin_principal(rights: frozenset[Action] | None = None) -> Principal:
    return Principal("ops", None, Surface.API, **({"rights": rights} if rights is not None else {}))


def test_only_administrators_see_the_jobs(api: TestClient, server: OverairApp) -> None:
    anonymous = TestClient(server, base_url="http://testserver")
    assert anonymous.get("/api/v1/jobs").status_code == 401
    with pytest.raises(Forbidden, match="may not operate server"):
        server.state.jobs.queue.recent(admin_principal(frozenset({Action.READ, Action.PUBLISH})))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "stuck"}, "state: Input should be 'queued', 'running', 'done' or 'failed'"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 501}, "limit: Input should be less than or equal to 500"),
    ],
)
def test_bad_filters_are_refused_clearly(api: TestClient, params: dict, message: str) -> None:
    response = api.get("/api/v1/jobs", params=params)
    assert response.status_code == 422 and message in response.json()["detail"], response.text
