"""The deployment's one server key when apps are built directly (``create_app``, as granian's workers and
embedders do): the first records its fingerprint, an app with another key is refused (issue 15, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from overair.app import create_app
from overair.config import Settings
from overair.packages import signing
from overair.serverkey import ServerKeyRefused


def host_settings(tmp_path: Path, database_url: str, name: str, key_file: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / name,
        database_url=database_url or f"sqlite:///{tmp_path / 'shared.db'}",
        server_key_file=key_file,
        _env_file=None,
    )


def new_key(path: Path) -> Path:
    path.write_bytes(signing.private_key_pem(signing.generate_private_key()))
    return path


def test_an_app_with_another_key_than_the_deployment_recorded_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    key = new_key(tmp_path / "deployment.pem")
    first = create_app(host_settings(tmp_path, database_url, "a", key))
    second = create_app(host_settings(tmp_path, database_url, "b", key))
    assert first.state.settings.server_key_file == second.state.settings.server_key_file
    other = new_key(tmp_path / "other.pem")
    with pytest.raises(ServerKeyRefused) as refused:
        create_app(host_settings(tmp_path, database_url, "c", other))
    mine = f"SHA256:{signing.fingerprint(signing.load_private_key(other.read_bytes()))}"
    recorded = f"SHA256:{signing.fingerprint(signing.load_private_key(key.read_bytes()))}"
    assert f"This host's server key ({mine}) is not the deployment's ({recorded}" in refused.value.message


def test_on_sqlite_the_first_start_makes_the_key_in_the_data_folder(
    tmp_path: Path, database_url: str
) -> None:
    if database_url:
        pytest.skip("PostgreSQL never makes a key (tests/cli/test_server_key.py)")
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", allowed_hosts="testserver", _env_file=None
    )
    app = create_app(settings)
    made = signing.load_private_key((tmp_path / "data" / "server-key.pem").read_bytes())
    with TestClient(app) as client:
        served = client.get("/api/v1/server-key").json()["public_key"]
    assert served == signing.public_key_text(made)
