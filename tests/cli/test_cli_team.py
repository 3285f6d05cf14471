"""The team story through the CLI: an owner adds a developer and a CI key limited to publishing to
Staging; the developer cannot promote to Production, the CI key cannot touch another app, and each
refusal says which right is missing and who can grant it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import LiveServer
from conftest import run_cli as overair

pytestmark = pytest.mark.slow


def as_key(config: Path, server: LiveServer, key: str) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": key}))


def new_key(out: str) -> str:
    found = re.search(r"\boa_\S+", out)
    assert found, out
    return found.group(0)


def test_an_owner_a_developer_and_a_ci_key(
    config: Path, live_server: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server = live_server
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "index.js").write_text("one")

    # a server admin makes the accounts
    as_key(config, server, server.key)
    code, out, err = overair(capsys, "account", "create", "olivia", "--email", "olivia@example.com")
    assert code == 0, err
    olivia = new_key(out)
    code, out, err = overair(capsys, "account", "create", "dev")
    assert code == 0, err
    dev = new_key(out)
    code, out, _ = overair(capsys, "account", "list")
    assert "olivia@example.com" in out and "dev" in out

    # the owner creates two apps, adds the developer and a CI key limited to publishing to Staging of Shop
    as_key(config, server, olivia)
    assert overair(capsys, "app", "create", "Shop")[0] == 0
    assert overair(capsys, "app", "create", "Other")[0] == 0
    code, out, err = overair(capsys, "collaborator", "add", "--app", "Shop", "dev", "--role", "developer")
    assert code == 0, err
    code, out, _ = overair(capsys, "collaborator", "list", "--app", "Shop")
    assert re.search(r"olivia\W+owner\W+owner\W+olivia@example.com", out), out
    assert re.search(r"dev\W+developer\W+grant", out), out
    code, out, err = overair(
        capsys,
        "access-key",
        "create",
        "ci",
        "--app",
        "Shop",
        "--deployment",
        "Staging",
        "--action",
        "publish",
    )
    assert code == 0, err
    ci = new_key(out)
    assert overair(capsys, "account", "list")[0] != 0  # the owner is not a server admin

    # the developer publishes to Staging but cannot promote to Production
    as_key(config, server, dev)
    push = ["release", "push-update", "--project-name", "Shop", "--target-version", "1.0.0", "--bundle"]
    code, _, err = overair(capsys, *push, str(bundle), "--deployment", "Staging")
    assert code == 0, err
    code, _, err = overair(
        capsys, "release", "promote", "--project-name", "Shop", "--from", "Staging", "--to", "Production"
    )
    flat = " ".join(err.split())
    assert code != 0
    assert "publish is missing" in flat and "Production is a production deployment" in flat
    assert "Who can grant it: an owner or admin of Shop (olivia)" in flat
    assert 'overair collaborator set-role --app "Shop" dev release-manager' in flat
    code, out, _ = overair(capsys, "app", "list")
    assert "Shop" in out and "Other" not in out

    # the CI key publishes to Staging of Shop, and cannot touch the other app
    as_key(config, server, ci)
    (bundle / "index.js").write_text("two")
    code, _, err = overair(capsys, *push, str(bundle), "--deployment", "Staging")
    assert code == 0, err
    code, _, err = overair(
        capsys, *[p if p != "Shop" else "Other" for p in push], str(bundle), "--deployment", "Staging"
    )
    assert code != 0 and 'No app named "Other"' in err
    code, _, err = overair(capsys, "app", "remove", "Other", "--yes")
    assert code != 0 and 'No app named "Other"' in err
    code, _, err = overair(capsys, *push, str(bundle), "--deployment", "Production")
    assert code != 0 and "overair access-key create NAME --app APP" in " ".join(err.split())

    # the owner hands Shop over; the server admin disables the developer, whose key stops at once
    as_key(config, server, olivia)
    code, out, err = overair(capsys, "app", "transfer", "Shop", "--to-account", "dev")
    assert code == 0 and "now belongs to dev" in out, err
    as_key(config, server, server.key)
    assert overair(capsys, "account", "disable", "dev")[0] == 0
    as_key(config, server, dev)
    code, _, err = overair(capsys, "app", "list")
    assert code != 0 and "disabled" in err
