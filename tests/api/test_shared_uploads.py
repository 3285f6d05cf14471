"""App Center's chunked uploads on several hosts (issue 15, item 5): any host continues any upload.

Two apps built by ``create_app`` share the database and the blob store, as two hosts behind a load
balancer do, and have data folders of their own; the requests of one upload go to either.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import MovableClock, bundle
from overair.app import OverairApp, create_app
from overair.config import Settings
from overair.packages import signing
from overair.protocols.codepush_management.uploads import UPLOAD_CHUNK_SIZE, UPLOAD_MAX_AGE_SECONDS


@pytest.fixture
def hosts(tmp_path: Path, database_url: str, clock: MovableClock) -> list[OverairApp]:
    """Two hosts: one database, one blob store and one server key, separate data folders."""
    shared_database = database_url or f"sqlite:///{tmp_path / 'shared.db'}"
    key_file = tmp_path / "server-key.pem"  # the deployment's key, copied to every host
    key_file.write_bytes(signing.private_key_pem(signing.generate_private_key()))
    made = []
    for name in ("a", "b"):
        settings = Settings(  # type: ignore[call-arg]
            data_dir=tmp_path / name,
            database_url=shared_database,
            blob_url=(tmp_path / "blobs").as_uri(),
            server_key_file=key_file,
            allowed_hosts="testserver",
            cache_recheck_seconds=0.0,
            _env_file=None,
        )
        made.append(create_app(settings, clock=clock))
    return made


@pytest.fixture
def clients(hosts: list[OverairApp]) -> Iterator[list[TestClient]]:
    """A client of each host, with the admin key (made on the first; both know it, as they share the
    database), and the app CoolApp."""
    created = hosts[0].state.access_keys.ensure_initial_key()
    assert created is not None
    opened = [TestClient(host, base_url="http://testserver") for host in hosts]
    for client in opened:
        client.__enter__()
        client.headers["x-api-token"] = created.key
    standalone = {"Authorization": f"Bearer {created.key}"}  # the dialect that makes the usual deployments
    made = TestClient(hosts[1], base_url="http://testserver").post(
        "/apps", json={"name": "CoolApp"}, headers=standalone
    )
    assert made.status_code == 201, made.text
    yield opened
    for client in opened:
        client.__exit__(None, None, None)


def start(client: TestClient) -> dict[str, str]:
    started = client.post("/apps/admin/CoolApp/deployments/Staging/uploads")
    assert started.status_code == 201, started.text
    return dict(started.json())


def send(client: TestClient, upload: dict[str, str], number: int, data: bytes) -> dict[str, object]:
    query = {"token": upload["token"], "block_number": str(number)}
    answer = client.post(f"/upload/upload_chunk/{upload['id']}", params=query, content=data)
    return {"status": answer.status_code, **answer.json()}


def set_size(client: TestClient, upload: dict[str, str], size: int) -> dict[str, object]:
    query = {"token": upload["token"], "file_name": "bundle.zip", "file_Size": str(size)}
    answer = client.post(f"/upload/set_metadata/{upload['id']}", params=query)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def release(client: TestClient, upload: dict[str, str]) -> tuple[int, dict[str, object]]:
    body = {"release_upload": upload, "target_binary_version": "1.0.0", "release_notes": "shared"}
    answer = client.post("/apps/admin/CoolApp/deployments/Staging/releases", json=body)
    return answer.status_code, answer.json()


def chunks_of(content: bytes) -> list[bytes]:
    return [content[i : i + UPLOAD_CHUNK_SIZE] for i in range(0, len(content), UPLOAD_CHUNK_SIZE)]


def test_an_upload_started_on_one_host_is_continued_and_finished_on_the_other(
    clients: list[TestClient],
) -> None:
    a, b = clients
    content = bundle("shared", big=os.urandom(2 * UPLOAD_CHUNK_SIZE + 12_345))  # three chunks
    parts = chunks_of(content)
    assert len(parts) == 3
    upload = start(a)
    assert set_size(b, upload, len(content))["chunk_list"] == [1, 2, 3]
    # alternately to each host, and not in order
    assert send(a, upload, 1, parts[0])["status"] == 200
    assert send(b, upload, 3, parts[2])["status"] == 200
    finished = b.post(f"/upload/finished/{upload['id']}", params={"token": upload["token"]}).json()
    assert finished == {"error": True, "state": "Missing", "missing_chunks": [2]}
    assert send(a, upload, 2, parts[1])["status"] == 200
    done = a.post(f"/upload/finished/{upload['id']}", params={"token": upload["token"]}).json()
    assert done["state"] == "Done"

    status, published = release(b, upload)
    assert status == 201, published
    # the release is published, its bytes intact: a device asking the first host downloads them
    deployments = a.get("/apps/admin/CoolApp/deployments").json()
    key = next(d["key"] for d in deployments if d["name"] == "Staging")
    check = a.get("/v1/update-check", params={"deployment_key": key, "app_version": "1.0.0"}).json()
    assert check["status"] == "update"
    downloaded = a.get(check["update"]["download_url"])
    assert hashlib.sha256(downloaded.content).hexdigest() == hashlib.sha256(content).hexdigest()
    # the staged chunks are gone, and the upload with them
    again = b.post(f"/upload/finished/{upload['id']}", params={"token": upload["token"]})
    assert again.status_code == 404


def test_chunks_that_do_not_fit_are_clear_4xx_on_either_host(clients: list[TestClient]) -> None:
    a, b = clients
    content = bundle("faults", big=os.urandom(UPLOAD_CHUNK_SIZE + 100))
    parts = chunks_of(content)
    upload = start(a)
    set_size(a, upload, len(content))
    wrong_size = send(b, upload, 2, parts[1] + b"x")
    assert wrong_size == {
        "status": 400,
        "error": True,
        "message": "Chunk 2 is not part of this upload or has the wrong size.",
    }
    beyond = send(a, upload, 3, parts[1])
    assert beyond["status"] == 400 and "not part of this upload" in str(beyond["message"])
    # a chunk sent again (a client retrying after a lost answer) replaces the first copy
    assert send(b, upload, 2, parts[1])["status"] == 200
    assert send(a, upload, 2, parts[1])["status"] == 200
    status, refused = release(b, upload)
    assert status == 400 and "not complete" in str(refused["message"])
    wrong_token = send(b, {**upload, "token": "guess"}, 1, parts[0])
    assert wrong_token["status"] == 401
    status, _ = release(a, upload)
    assert status == 400  # still missing chunk 1: nothing was published
    assert send(a, upload, 1, parts[0])["status"] == 200
    status, published = release(a, upload)
    assert status == 201, published


def test_a_size_set_again_drops_the_chunks_cut_for_the_old_size(clients: list[TestClient]) -> None:
    a, b = clients
    upload = start(a)
    set_size(a, upload, 10)
    assert send(b, upload, 1, b"0123456789")["status"] == 200
    set_size(b, upload, 12)
    finished = a.post(f"/upload/finished/{upload['id']}", params={"token": upload["token"]}).json()
    assert finished["missing_chunks"] == [1]


def test_a_cancelled_upload_is_gone_on_every_host(clients: list[TestClient]) -> None:
    a, b = clients
    upload = start(a)
    set_size(a, upload, 10)
    assert send(a, upload, 1, b"0123456789")["status"] == 200
    cancelled = b.post(f"/upload/cancel/{upload['id']}", params={"token": upload["token"]})
    assert cancelled.json() == {"error": False, "state": "Cancelled"}
    assert send(a, upload, 1, b"0123456789")["status"] == 404


def test_abandoned_uploads_are_swept_at_start_and_when_another_begins(
    clients: list[TestClient], hosts: list[OverairApp], clock: MovableClock
) -> None:
    a, b = clients
    old = start(a)
    set_size(a, old, 10)
    assert send(b, old, 1, b"0123456789")["status"] == 200
    recent = start(b)
    clock.advance(UPLOAD_MAX_AGE_SECONDS - 60)
    set_size(b, recent, 1)  # touched a minute before the day is over
    clock.advance(120)
    start(a)  # a new upload sweeps those untouched for a day
    assert send(a, old, 1, b"0123456789")["status"] == 404
    assert send(b, recent, 1, b"x")["status"] == 200

    # the start-up sweep (every host's create_app) removes them too
    clock.advance(UPLOAD_MAX_AGE_SECONDS + 1)
    create_app(hosts[0].state.settings, clock=clock)
    assert send(a, recent, 1, b"x")["status"] == 404


def test_the_upload_state_is_in_the_database_not_in_a_data_folder(
    clients: list[TestClient], hosts: list[OverairApp]
) -> None:
    a, _ = clients
    upload = start(a)
    set_size(a, upload, 10)
    assert send(a, upload, 1, b"0123456789")["status"] == 200
    for host in hosts:
        data_dir = host.state.settings.data_dir
        assert not (data_dir / "uploads").exists()
        assert not [p for p in (data_dir / "tmp").iterdir()], "nothing left in the host's scratch folder"
