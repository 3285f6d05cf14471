"""The team story through the CLI: an owner adds a developer and a CI key limited to publishing to
Staging; the developer cannot promote to Production, the CI key cannot touch another app, and each
refusal says which right is missing and who can grant it. The audit log then shows each act with its
actor, in ``overair audit`` and on the console's audit page (in Chromium)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
    config: Path,
    live_server: LiveServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    chromium: Any,
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
    code, _, err = overair(capsys, "account", "list")  # the owner is not a server admin
    flat = " ".join(err.split())
    assert code != 0 and "may not manage accounts: only a server admin may (admin)" in flat, err
    assert "Ask a server admin to do it, or to make your account a server admin." in flat
    assert flat.count("(admin)") == 1 and flat.count("Ask") == 1  # who can do it, and what to do: once each

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
    assert "Who can grant it: the owners and admins of Shop (olivia)" in flat
    assert flat.count("Who can grant it") == 1, flat
    assert 'They can give it with: overair collaborator set-role --app "Shop" dev release-manager' in flat
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

    # the audit log shows each act with its actor (account, and the key it used); refusals changed nothing
    as_key(config, server, server.key)
    code, out, err = overair(capsys, "audit", "--json")
    assert code == 0, err
    story = [
        (e["action"], e["account"], e["actor"], e["app"], e["deployment"], e["item"])
        for e in reversed(json.loads(out)["events"])
    ]
    assert story == [
        # the first key, made by the server itself
        ("access-key.create", None, "overair serve", None, None, "admin"),
        ("account.create", "admin", "admin", None, None, "olivia"),
        ("access-key.create", "admin", "admin", None, None, "olivia-key"),
        ("account.create", "admin", "admin", None, None, "dev"),
        ("access-key.create", "admin", "admin", None, None, "dev-key"),
        ("app.create", "olivia", "olivia-key", "Shop", None, None),
        ("app.create", "olivia", "olivia-key", "Other", None, None),
        ("collaborator.add", "olivia", "olivia-key", "Shop", None, "dev"),
        ("access-key.create", "olivia", "olivia-key", None, None, "ci"),
        ("release.publish", "dev", "dev-key", "Shop", "Staging", None),
        ("release.publish", "olivia", "ci", "Shop", "Staging", None),
        ("app.transfer", "olivia", "olivia-key", "Shop", None, None),
        ("account.disable", "admin", "admin", None, None, "dev"),
    ]
    code, out, _ = overair(capsys, "audit", "--account", "olivia")
    assert code == 0 and re.search(r"olivia \(key ci\)\W+cli\W+release\.publish\W+Shop/Staging v2", out), out

    # the console's audit page shows the same acts by the same actors
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(server.url + "/console/sign-in")
        page.get_by_label("Access key").fill(server.key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Audit log").click()
        rows = page.locator("table.audit tbody tr")
        shown = [
            (
                rows.nth(i).get_attribute("data-action"),
                " ".join(rows.nth(i).locator("td").nth(1).inner_text().split()),
            )
            for i in range(rows.count())
        ]
        assert [action for action, _ in reversed(shown)] == [act[0] for act in story]
        assert [who.split(" key ")[0] for _, who in reversed(shown)][1:] == [act[1] for act in story][1:]
        publishers = [who for action, who in reversed(shown) if action == "release.publish"]
        assert [p.split(" cli ")[0] for p in publishers] == ["dev key dev-key", "olivia key ci"], publishers
        page.get_by_label("Account", exact=True).fill("dev")
        page.get_by_role("button", name="Filter").click()
        assert [rows.nth(i).get_attribute("data-action") for i in range(rows.count())] == ["release.publish"]
    finally:
        context.close()
