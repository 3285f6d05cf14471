"""``overair jobs``: a job that fails on every host ends ``failed``, and its error shows from any host.

Two hosts share the database and the blob folder: ``overair serve`` (a child process, on the real clock)
and an app in the test (on the ``clock`` fixture, so the backoff passes without sleeping).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from no_terminal import logged_in, overair
from starlette.testclient import TestClient

from conftest import LiveServer, MovableClock, bundle, publish, running_server
from overair.app import create_app
from overair.config import Settings
from overair.releases.deltas import RELEASE_JOB
from overair.storage import content_key

pytestmark = pytest.mark.slow

MAIN_JS = b"function main(){return 1}\n" * 400


def test_a_job_failing_on_every_host_is_listed_failed_with_its_error(
    tmp_path: Path, database_url: str, clock: MovableClock
) -> None:
    with running_server(tmp_path / "serve-data") as live:
        other = create_app(
            Settings(  # type: ignore[call-arg]
                data_dir=live.data_dir, database_url=database_url, allowed_hosts="testserver", _env_file=None
            ),
            clock=clock,
        )
        client = TestClient(other, base_url="http://testserver")
        client.headers["Authorization"] = f"Bearer {live.key}"
        assert client.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
        assert publish(client, content=bundle("v1", app__main_js=MAIN_JS)).status_code == 201
        other.state.jobs.drain()
        # v1's script is lost from the shared store: building the delta from v1 to v2 fails everywhere
        other.state.blobs.delete(content_key(hashlib.sha256(MAIN_JS).hexdigest()))
        assert publish(client, content=bundle("v2", app__main_js=MAIN_JS + b"//2")).status_code == 201

        for _ in range(12):  # each try, on whichever host claims it first, backs the job off further
            other.state.jobs.drain()
            if job_of_v2(client)["state"] == "failed":
                break
            clock.advance(3600)
        config = logged_in(tmp_path / "config.json", live)
        listed = overair("jobs", "--state", "failed", "--json", config=config)
        human = overair("jobs", config=config, env={"COLUMNS": "250"})
        refused = overair("jobs", "--state", "stuck", config=config)

    assert listed.returncode == 0, listed.stderr
    [job] = [j for j in json.loads(listed.stdout)["jobs"] if j["kind"] == RELEASE_JOB]
    assert (job["key"], job["state"], job["attempts"]) == ("2", "failed", 5)
    assert job["last_error"].startswith("ObjectNotFound: no object stored under 'sha256/")
    assert job["finished_at"] is not None

    assert human.returncode == 0, human.stderr
    row = next(line for line in human.stdout.splitlines() if RELEASE_JOB in line and " 2 " in line)
    assert "failed" in row and "ObjectNotFound" in row and " 5 " in row

    assert refused.returncode == 1  # a usage error (docs/cli.md, Exit status)
    assert "'stuck' is not one of 'queued', 'running', 'done', 'failed'" in refused.stderr


def job_of_v2(client: TestClient) -> dict:
    [job] = [j for j in client.get("/api/v1/jobs").json() if j["kind"] == RELEASE_JOB and j["key"] == "2"]
    return dict(job)


def test_jobs_are_for_administrators_only(live_server: LiveServer, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"server": live_server.url, "access_key": "oa_unknown"}))
    result = overair("jobs", config=config)
    assert result.returncode != 0 and "access key" in result.stderr.lower(), result.stderr
