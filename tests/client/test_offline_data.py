"""Offline data safety: the seed's field engineers (Mendix "Offline Apps and Data Loss") and the data
model guard. A destructive model change is refused unless allowed; when allowed, devices install it only
after their unsynced records are synced, so no record is ever lost by an update."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from helpers import Proxy, embedded, engine_for
from starlette.testclient import TestClient

from overair.cli.hints import cli_hints
from overair.client import CheckStatus, SyncStatus, UpdateEngine

FIELD_MODEL = {
    "format": 1,
    "entities": {
        "Inspection": {
            "attributes": {"site": "String", "notes": "String"},
            "associations": {"asset": "Asset"},
        },
        "Asset": {"attributes": {"tag": "String"}},
    },
}
ADDITIVE = {
    "format": 1,
    "entities": {
        "Inspection": {
            "attributes": {"site": "String", "notes": "String", "photo": "Binary"},
            "associations": {"asset": "Asset"},
        },
        "Asset": {"attributes": {"tag": "String"}},
        "Checklist": {"attributes": {"item": "String"}},
    },
}
CONSOLIDATED = {  # the morning's optimisation: two entities merged into one
    "format": 1,
    "entities": {"FieldRecord": {"attributes": {"site": "String", "notes": "String", "tag": "String"}}},
}


def bundle(text: str, model: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("index.js", f"showInspections({text!r});")
        zf.writestr("overair-model.json", json.dumps(model))
    return buffer.getvalue()


def push(api: TestClient, text: str, model: dict, **options: object):
    options.setdefault("target_version", "1.0.0")
    return api.post(
        "/api/v1/apps/FieldApp/deployments/Production/releases",
        files={"package": ("b.zip", bundle(text, model))},
        data={"release": json.dumps(options)},
    )


@pytest.fixture
def key(api: TestClient) -> str:
    app = api.post("/api/v1/apps", json={"name": "FieldApp"}).json()
    return {d["name"]: d["key"] for d in app["deployments"]}["Production"]


def test_additive_model_changes_pass(api: TestClient, key: str) -> None:
    assert push(api, "v1", FIELD_MODEL).status_code == 201
    additive = push(api, "v2", ADDITIVE)
    assert additive.status_code == 201 and additive.json()["sync_before_update"] is False


def test_destructive_model_changes_are_refused_unless_allowed(
    api: TestClient, device: TestClient, key: str
) -> None:
    assert push(api, "v1", FIELD_MODEL).status_code == 201
    refused = push(api, "v2", CONSOLIDATED)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    for change in ("entity Asset removed or renamed", "entity Inspection removed or renamed"):
        assert change in detail
    # the server names the fix; the CLI words it with its flag (domain errors know no CLI flags)
    assert "--allow-destructive-model-change" in " ".join(cli_hints(refused.json()["fixes"]))
    renamed = {
        "format": 1,
        "entities": {**FIELD_MODEL["entities"], "Asset": {"attributes": {"code": "String"}}},
    }
    assert "attribute Asset.tag removed or renamed" in push(api, "v2", renamed).json()["detail"]
    retyped = {
        "format": 1,
        "entities": {**FIELD_MODEL["entities"], "Asset": {"attributes": {"tag": "Integer"}}},
    }
    assert "changed type from String to Integer" in push(api, "v2", retyped).json()["detail"]
    allowed = push(api, "v2", CONSOLIDATED, allow_destructive_model_change=True)
    assert allowed.status_code == 201 and allowed.json()["sync_before_update"] is True
    answer = device.get("/v1/update-check", params={"deployment_key": key, "app_version": "1.0.0"}).json()
    assert answer["update"]["sync_before_update"] is True and answer["attention"] is True
    assert "Synchronize your data" in answer["message"]


class FieldDevice:
    """A field engineer's phone: the app's offline records next to the update engine."""

    def __init__(self, proxy: Proxy, key: str, root: Path) -> None:
        self.proxy, self.key, self.root = proxy, key, root
        self.records_file = root / "app-data" / "records.json"
        self.records_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.records_file.exists():
            self.records_file.write_text("[]")

    def records(self) -> list[str]:
        return json.loads(self.records_file.read_text())

    def launch(self) -> tuple[UpdateEngine, Path]:
        engine = engine_for(
            self.proxy.client(),
            self.key,
            self.root / "ota",
            embedded(self.root),
            unsynced_changes=lambda: len(self.records()),
        )
        folder = engine.start()
        engine.notify_app_ready()
        return engine, folder

    def record(self, text: str) -> None:
        self.records_file.write_text(json.dumps([*self.records(), text]))

    def sync_to(self, server_store: list[str]) -> None:
        server_store.extend(self.records())
        self.records_file.write_text("[]")


def test_field_engineers_never_lose_records(
    api: TestClient, device: TestClient, key: str, tmp_path: Path
) -> None:
    proxy = Proxy(device)
    assert push(api, "v1", FIELD_MODEL).status_code == 201
    phones = [FieldDevice(proxy, key, tmp_path / f"phone{i}") for i in range(5)]
    for phone in phones:  # in the morning everybody gets v1
        engine, _ = phone.launch()
        assert engine.sync().status is SyncStatus.INSTALLED
        engine, folder = phone.launch()
        assert engine.current_label == "v1"

    proxy.offline = True  # the engineers drive to a remote area and gather field data
    for i, phone in enumerate(phones):
        for n in range(i + 2):
            phone.record(f"phone{i}-inspection{n}")
    created = sum(len(p.records()) for p in phones)

    # meanwhile the developers consolidate entities and push with the flag
    assert push(api, "v2", CONSOLIDATED, allow_destructive_model_change=True).status_code == 201

    proxy.offline = False  # back in the city; the sync fails for some reason, so they restart the app
    server_store: list[str] = []
    for phone in phones:
        engine, _ = phone.launch()
        result = engine.sync()
        assert result.status is SyncStatus.WAITING_FOR_SYNC
        assert engine.waiting_for_sync == "v2"
        engine, folder = phone.launch()  # the restart: still v1, the update waits
        assert engine.current_label == "v1" and "v1" in (folder / "index.js").read_text()
        assert phone.records(), "unsynced records must still be there"
        assert engine.sync_completed() is None  # nothing installs while records are unsynced

    for phone in phones:  # the sync works on the old model, then the update installs
        engine, _ = phone.launch()
        phone.sync_to(server_store)
        assert engine.sync_completed() == "v2"
        engine, folder = phone.launch()
        assert engine.current_label == "v2" and "v2" in (folder / "index.js").read_text()
        assert engine.check_for_update().status is CheckStatus.NO_UPDATE

    assert len(server_store) == created, "every record reached the server"


def test_a_failing_unsynced_callback_holds_the_update_back(
    api: TestClient, device: TestClient, key: str, tmp_path: Path
) -> None:
    proxy = Proxy(device)
    assert push(api, "v1", FIELD_MODEL).status_code == 201
    assert push(api, "v2", CONSOLIDATED, allow_destructive_model_change=True).status_code == 201

    def broken() -> int:
        raise RuntimeError("database locked")

    engine = engine_for(proxy.client(), key, tmp_path / "ota", embedded(tmp_path), unsynced_changes=broken)
    engine.start()
    assert engine.sync().status is SyncStatus.WAITING_FOR_SYNC
    assert engine.start() == embedded(tmp_path)
