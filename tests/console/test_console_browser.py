"""The console in a real browser (Debian's Chromium driven by Playwright) against `overair serve`.

The story of the issue: releases made through the CLI, sign in, open CoolApp, see the history, raise a
rollout from 20% to 50% and watch the server's answer change for a device between the two, roll back and
see the new label, charts drawn from a fleet of real engines' reports, no browser console errors, sign out.
Screenshots go to test-artifacts/console/.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT, LiveServer, admin_api, receiving_webhooks
from conftest import run_cli as overair
from overair.cli.simulate import Fleet
from overair.selection.rollout import rollout_bucket

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts" / "console"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page, collecting console messages and page errors."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []  # type: ignore[attr-defined]
    page.on(
        "console", lambda m: m.type in ("error", "warning") and page.problems.append(f"{m.type}: {m.text}")
    )
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def push(capsys: pytest.CaptureFixture[str], folder: Path, text: str, rollout: int) -> None:
    (folder / "index.js").write_text(f"showWelcome({text!r});\n" * 20)
    code, out, err = overair(
        capsys,
        "release", "push-update", "--project-name", "CoolApp", "--target-version", "1.0.0",
        "--bundle", str(folder), "--rollout-percentage", str(rollout),
    )  # fmt: skip
    assert code == 0, out + err


def device_between(low: int, high: int, label: str) -> str:
    """A client id whose rollout bucket for ``label`` is in [low, high)."""
    for i in range(10_000):
        client_id = f"device-{i}"
        if low <= rollout_bucket(client_id, label) < high:
            return client_id
    raise AssertionError("no device found")


def offered(server: LiveServer, key: str, client_id: str, running: dict[str, Any]) -> str | None:
    answer = httpx.get(
        server.url + "/v1/update-check",
        params={
            "deployment_key": key,
            "app_version": "1.0.0",
            "label": running["label"],
            "package_hash": running["package_hash"],
            "client_id": client_id,
        },
    ).json()
    return answer["update"]["label"] if answer["update"] else None


def test_console_story(
    live_server: LiveServer,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    page: Any,
) -> None:
    server = live_server
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    assert overair(capsys, "login", "--server", server.url, "--access-key", server.key)[0] == 0
    assert overair(capsys, "app", "create", "CoolApp")[0] == 0
    folder = tmp_path / "bundle"
    (folder / "styles").mkdir(parents=True)
    (folder / "styles" / "main.css").write_text("h1 { color: #333 }\n")
    push(capsys, folder, "Welcome", 100)
    (folder / "styles" / "extra.css").write_text("p { margin: 0 }\n")
    push(capsys, folder, "Welcome back", 100)
    with admin_api(server) as api:
        key = api.get("/apps/CoolApp/deployments").json()[0]["key"]
    # devices as apps run them (a rehearsal, `overair simulate`, would never show in the console)
    fleet = Fleet(
        tmp_path / "fleet",
        server=server.url,
        deployment_key=key,
        app_version="1.0.0",
        build_number=None,
        embedded_text="CoolApp",
        simulated=False,
    )
    fleet.run(devices=12, launches=3, crash_label=None, workers=4)
    push(capsys, folder, "Welcome, friend", 20)

    with admin_api(server) as api:
        v2 = api.get("/apps/CoolApp/deployments/Production/releases").json()[1]
    client_id = device_between(20, 50, "v3")
    assert offered(server, key, client_id, v2) is None  # outside the first 20%

    # sign in
    page.goto(server.url + "/console/")
    assert page.locator("h1").inner_text() == "Sign in"
    shoot(page, "01-sign-in")
    page.get_by_label("Access key").fill("oa_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    assert "The access key was rejected" in page.locator("#sign-in-message").inner_text()
    # the refusal is a 401, which the browser logs as a failed load: expected here, and only here
    assert page.problems == [  # type: ignore[attr-defined]
        "error: Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    page.problems.clear()  # type: ignore[attr-defined]
    page.get_by_label("Access key").fill(server.key)
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("h1").inner_text() == "Apps"
    assert "Signed in as admin" in page.locator("header").inner_text()
    shoot(page, "02-apps")

    # open CoolApp and its history
    page.get_by_role("link", name="CoolApp").first.click()
    assert page.locator("h1").inner_text() == "CoolApp"
    assert "hybrid" in page.locator("#dist-heading + p").inner_text()
    shoot(page, "03-app")
    page.get_by_role("link", name="Production").first.click()
    rows = page.locator("table.history tbody tr")
    assert [rows.nth(i).get_attribute("data-label") for i in range(rows.count())] == ["v3", "v2", "v1"]
    v3_row = page.locator("tr[data-label=v3]")
    assert v3_row.locator("[data-rollout]").inner_text() == "20%"
    assert "admin" in v3_row.inner_text()
    assert int(page.locator("tr[data-label=v2] [data-installs]").inner_text()) > 0  # from the simulation

    # charts render with the simulation's reports
    page.wait_for_selector("figure[data-chart=totals].drawn")
    totals = page.evaluate(
        "() => Chart.getChart('chart-totals').data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))"
    )
    assert totals[0] > 0 and totals[1] > 0  # downloads, installs
    # hourly charts from the metrics store: active devices per label, downloads and installs per hour
    page.wait_for_selector("figure[data-chart=active].drawn")
    active = page.evaluate(
        "() => Object.fromEntries(Chart.getChart('chart-active').data.datasets"
        ".map(d => [d.label, Math.max(...d.data)]))"
    )
    assert active["v2"] > 0
    traffic = page.evaluate(
        "() => Chart.getChart('chart-traffic').data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))"
    )
    assert traffic[0] > 0 and traffic[1] > 0
    assert page.locator("figure[data-chart=trouble] canvas").count() == 1
    shoot(page, "04-deployment")

    # move the rollout from 20 to 50
    page.get_by_role("link", name="v3", exact=True).click()
    assert "unsigned" in page.locator("dl.props").inner_text()
    assert "changed" in page.locator("#files-heading").inner_text()
    assert "index.js" in page.locator("section[aria-labelledby=files-heading]").inner_text()
    shoot(page, "05-release")
    releases = server.url + "/console/apps/CoolApp/deployments/Production/releases/"
    page.goto(releases + "v2")
    assert int(page.locator("dd[data-active]").inner_text()) > 0  # active devices now, from the simulation
    page.goto(releases + "v3")
    page.get_by_label("Rollout percentage").fill("50")
    assert page.locator("#rollout-value").inner_text() == "50%"
    page.get_by_role("button", name="Change rollout…").click()
    consequences = page.locator("ul.consequences").inner_text()
    assert (
        "Devices on 1.0.0 outside the first 20% but within the first 50% will start getting v3"
        in consequences
    )
    shoot(page, "06-confirm-rollout")
    assert offered(server, key, client_id, v2) is None  # nothing changed before confirming
    page.get_by_role("button", name="Roll out to 50%").click()
    assert page.locator("p.notice").inner_text() == "v3 now reaches 50% of devices."
    assert page.locator("dd[data-rollout]").inner_text() == "50%"
    assert offered(server, key, client_id, v2) == "v3"  # the server's answer changed

    # roll back and see the new label
    page.get_by_role("link", name="Production").click()
    page.get_by_role("button", name="Roll back v3 to v2…").click()
    assert "A new release v4 with the content of v2" in page.locator("ul.consequences").inner_text()
    shoot(page, "07-confirm-rollback")
    page.get_by_role("button", name="Roll back to v2").click()
    assert page.locator("p.notice").inner_text() == (
        "Rolled back: v4 now serves the content of v2. v3 is disabled and stays at 50%."
    )
    assert page.locator("table.history tbody tr").first.get_attribute("data-label") == "v4"
    assert "rollback of v2" in page.locator("tr[data-label=v4]").inner_text()
    shoot(page, "08-rolled-back")

    assert page.problems == []  # type: ignore[attr-defined]

    # sign out
    page.get_by_role("button", name="Sign out").click()
    assert page.locator("p.notice").inner_text() == "You are signed out."
    page.goto(server.url + "/console/apps/CoolApp")
    assert page.locator("h1").inner_text() == "Sign in"
    shoot(page, "09-signed-out")


def test_empty_console_explains_how_to_start(live_server: LiveServer, page: Any) -> None:
    page.goto(live_server.url + "/console/sign-in")
    page.get_by_label("Access key").fill(live_server.key)
    page.get_by_role("button", name="Sign in").click()
    assert "There are no apps yet." in page.locator(".empty").inner_text()
    assert "overair app create CoolApp" in page.locator(".empty").inner_text()
    # keyboard: the skip link comes first and lands on the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    shoot(page, "10-empty")
    assert page.problems == []  # type: ignore[attr-defined]


# -- issue 14: safe rollbacks, meaningful colours, managing from the console -----------------------------


def sign_in(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/console/sign-in")
    page.get_by_label("Access key").fill(server.key)
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("h1").inner_text() == "Apps"


def report(server: LiveServer, key: str, label: str, status: str, times: int) -> None:
    with httpx.Client(base_url=server.url) as client:
        for n in range(times):
            body = {
                "deployment_key": key,
                "label": label,
                "status": status,
                "client_id": f"{label}-{status}-{n}",
            }
            assert client.post("/v1/report", json=body).status_code == 200


def publish_over_api(
    api: httpx.Client, text: str, rollout: int, app: str = "CoolApp", deployment: str = "Production"
) -> None:
    from conftest import bundle

    response = api.post(
        f"/apps/{app}/deployments/{deployment}/releases",
        files={"package": ("bundle.zip", bundle(text), "application/zip")},
        data={"release": json.dumps({"target_version": "1.0.0", "rollout": rollout})},
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def failing_v2(live_server: LiveServer) -> str:
    """The issue's story: v1 healthy; v2 rolling out to 60% and failing on 31 of 50 installs (62%)."""
    with admin_api(live_server) as api:
        key = api.post("/apps", json={"name": "CoolApp"}).json()["deployments"][0]["key"]
        publish_over_api(api, "one", 100)
        publish_over_api(api, "two", 60)
    report(live_server, key, "v1", "installed", 20)
    report(live_server, key, "v2", "installed", 19)
    report(live_server, key, "v2", "failed", 31)
    return key


def history_labels(page: Any) -> list[str]:
    rows = page.locator("table.history tbody tr")
    return [rows.nth(i).get_attribute("data-label") for i in range(rows.count())]


def test_rolling_back_a_failing_rollout_is_safe_by_default(
    live_server: LiveServer, failing_v2: str, page: Any
) -> None:
    server = live_server
    sign_in(page, server)
    page.goto(server.url + "/console/apps/CoolApp/deployments/Production")
    headers = page.locator("table.history thead th").all_inner_texts()
    assert headers == ["Label", "Version range", "Rollout", "Status", "Installs", "Failure rate", "Published"]
    assert history_labels(page) == ["v2", "v1"]
    v2 = page.locator("tr[data-label=v2]")
    assert "62.0%" in v2.locator("[data-rate]").inner_text()
    assert v2.locator(".badge.bad").inner_text() == "failing"
    # the failing rate is red, the healthy one is not
    assert v2.locator(".rate").evaluate("e => getComputedStyle(e).color") == "rgb(180, 35, 24)"
    v1_colour = page.locator("tr[data-label=v1] .rate").evaluate("e => getComputedStyle(e).color")
    assert v1_colour != "rgb(180, 35, 24)"
    shoot(page, "11-failing-rollout")

    # the main button rolls back to the healthy v1
    page.get_by_role("button", name="Roll back v2 to v1…").click()
    assert page.locator("input[name=confirm]").count() == 0
    page.get_by_role("button", name="Roll back to v1").click()
    assert page.locator("p.notice").inner_text() == (
        "Rolled back: v3 now serves the content of v1. v2 is disabled and stays at 60%."
    )
    assert history_labels(page) == ["v3", "v2", "v1"]
    v2 = page.locator("tr[data-label=v2]")
    assert v2.locator("[data-rollout]").inner_text() == "60%"  # not rewritten to 100%
    assert "disabled" in v2.inner_text() and "failing" in v2.inner_text()
    # no button sends v2 back by default: the page says why
    assert page.get_by_role("button", name=re.compile("^Roll back v3")).count() == 0
    assert (
        "No earlier release is safe to roll back to: v2 (disabled, failing, 62.0%)"
        in page.locator("[data-no-rollback]").inner_text()
    )
    shoot(page, "12-deployment-after-rollback")

    # v2's own page: the share it had, why it was disabled, its failure rate
    page.get_by_role("link", name="v2", exact=True).click()
    assert page.locator("dd[data-rollout]").inner_text() == "60%"
    assert "Complete" not in page.locator("main").inner_text()
    status = page.locator("dd[data-status]").inner_text()
    assert "Disabled when admin rolled Production back to the content of v1 (as v3) on" in status
    assert "62.0% of its 50 install attempts failed" in page.locator("[data-risks]").inner_text()
    shoot(page, "13-release-after-rollback")

    # choosing v2 deliberately: the label must be typed before the button works
    page.get_by_role("button", name="Roll back to v2…").click()
    warnings = page.locator(".danger-box").inner_text()
    assert "v2 is disabled" in warnings and "62.0%" in warnings
    button = page.get_by_role("button", name="Roll back to v2")
    assert button.is_disabled()
    page.get_by_label("Type v2 to confirm").fill("v1")
    assert button.is_disabled()
    page.get_by_label("Type v2 to confirm").fill("v2")
    assert button.is_enabled()
    shoot(page, "14-confirm-rollback-to-failing")
    page.get_by_role("link", name="Cancel").click()

    # enabling it warns the same way
    page.get_by_role("button", name="Enable…").click()
    assert "62.0%" in page.locator(".danger-box").inner_text()
    assert "the first 60% of devices" in page.locator("ul.consequences").inner_text()
    assert page.get_by_role("button", name="Enable v2").is_disabled()
    shoot(page, "15-confirm-enable-failing")
    with admin_api(server) as api:
        history = api.get("/apps/CoolApp/deployments/Production/releases").json()
    assert [(r["label"], r["rollout"], r["disabled"]) for r in history] == [
        ("v1", 100, False),
        ("v2", 60, True),
        ("v3", 100, False),
    ]
    assert page.problems == []  # type: ignore[attr-defined]


def test_colours_ranges_and_the_rollout_scale(live_server: LiveServer, failing_v2: str, page: Any) -> None:
    server = live_server
    sign_in(page, server)
    page.goto(server.url + "/console/apps/CoolApp/deployments/Production")
    page.wait_for_selector("figure[data-chart=traffic].drawn")
    # every report is from this hour: the charts show the last hour, not 48 hours with one busy pixel
    assert "(the last hour)" in page.locator("figure[data-chart=traffic] figcaption").inner_text()
    colours = page.evaluate(
        "() => Object.fromEntries(['traffic', 'trouble', 'totals'].flatMap(k => "
        "Chart.getChart('chart-' + k).data.datasets.map(d => [k + ':' + d.label, d.backgroundColor])))"
    )
    assert colours["traffic:installs"] == colours["totals:installs"] == "#11663a"  # green, never red
    assert colours["trouble:failures"] == colours["totals:failures"] == "#b42318"  # red, never blue
    assert colours["traffic:downloads"] == "#0b5cad"
    assert page.evaluate("() => Chart.getChart('chart-traffic').data.labels.length") == 1
    shoot(page, "16-charts-last-hour")

    page.get_by_role("link", name="v2", exact=True).click()
    slider = page.get_by_label("Rollout percentage")
    assert (slider.get_attribute("min"), slider.get_attribute("max"), slider.input_value()) == (
        "0",
        "100",
        "60",
    )
    mark = page.locator(".now-mark")
    assert mark.inner_text() == "▲ now 60%"
    box = page.locator(".range-box").bounding_box()
    centre = mark.bounding_box()
    share = (centre["x"] + 0.45 * 16 - box["x"]) / box["width"]  # where the ▲ points, along the scale
    assert 0.55 < share < 0.65, share
    slider.fill("30")  # below the current share: a rollout only grows
    assert slider.input_value() == "60" and page.locator("#rollout-value").inner_text() == "60%"
    slider.fill("80")
    assert page.locator("#rollout-value").inner_text() == "80%"
    shoot(page, "17-rollout-scale")
    assert page.problems == []  # type: ignore[attr-defined]


def test_manage_apps_deployments_and_access_keys(live_server: LiveServer, chromium: Any) -> None:
    from playwright.sync_api import expect

    server = live_server
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.set_default_timeout(15_000)
    try:
        sign_in(page, server)
        # create an app
        page.get_by_label("Name").fill("CoolApp")
        page.get_by_label("Android").uncheck()
        shoot(page, "18-create-app")
        page.get_by_role("button", name="Create app").click()
        assert page.locator("h1").inner_text() == "CoolApp"
        assert (
            page.locator("p.notice").inner_text()
            == "Created CoolApp with the deployments Production, Staging."
        )
        # add a deployment, show its key and copy it
        page.get_by_label("New deployment").fill("Beta")
        page.get_by_role("button", name="Add deployment").click()
        assert page.locator("p.notice").inner_text() == "Added the deployment Beta: its key is below."
        with admin_api(server) as api:
            app = api.get("/apps/CoolApp").json()
        keys = {d["name"]: d["key"] for d in app["deployments"]}
        assert list(keys) == ["Production", "Staging", "Beta"] and app["platforms"] == ["ios"]
        beta = page.locator("tr[data-deployment=Beta]")
        assert not beta.locator("code.key").is_visible()  # shown on demand
        beta.get_by_text("Show key").click()
        assert beta.locator("code.key").inner_text() == keys["Beta"]
        beta.get_by_role("button", name="Copy key").click()
        expect(beta.locator(".copied")).to_have_text("Copied.")  # the clipboard answers asynchronously
        assert page.evaluate("() => navigator.clipboard.readText()") == keys["Beta"]
        shoot(page, "19-app-with-keys")

        # switch the distribution mode, confirmed first
        page.get_by_role("button", name="Switch to store-only…").click()
        assert "stop getting over-the-air updates" in page.locator("ul.consequences").inner_text()
        page.get_by_role("button", name="Switch to store-only").click()
        assert page.locator("p.notice").inner_text() == "CoolApp is now store-only."
        page.get_by_role("button", name="Switch to hybrid…").click()
        page.get_by_role("button", name="Switch to hybrid").click()
        assert page.locator("p.notice").inner_text() == "CoolApp is now hybrid."

        # webhooks: one added and tested through the API shows with its delivery on the app page
        assert "CoolApp has no webhooks." in page.locator("main").inner_text()
        with receiving_webhooks() as receiver, admin_api(server) as api:
            spec = {"url": receiver.url, "events": ["release.published"], "format": "slack"}
            hook = api.post("/apps/CoolApp/webhooks", json=spec).json()
            assert api.post(f"/apps/CoolApp/webhooks/{hook['id']}/test").json()["status"] == "delivered"
        page.reload()
        row = page.locator(f"tr[data-webhook='{hook['id']}']")
        assert "release.published" in row.inner_text() and "slack" in row.inner_text()
        delivery = row.locator("li[data-delivery]").inner_text()
        assert delivery.startswith("delivered webhook.test") and "1 attempt, answered 200" in delivery
        shoot(page, "19b-app-webhooks")

        # access keys: create one (shown once, copied), see it listed, revoke it
        page.get_by_role("link", name="Access keys").click()
        assert page.locator("h1").inner_text() == "Access keys"
        page.get_by_label("Name").fill("ci-production")
        page.get_by_label("Expires after (days)").fill("30")
        page.get_by_role("button", name="Create key").click()
        new_key = page.locator("#new-key").inner_text()
        assert new_key.startswith("oa_") and "only time the key is shown" in page.locator("main").inner_text()
        page.get_by_role("button", name="Copy key").click()
        expect(page.locator(".copied")).to_have_text("Copied.")
        assert page.evaluate("() => navigator.clipboard.readText()") == new_key
        shoot(page, "20-access-key-created")
        with httpx.Client(base_url=server.url + "/api/v1") as client:
            whoami = client.get("/whoami", headers={"Authorization": f"Bearer {new_key}"})
            assert whoami.status_code == 200
        page.get_by_role("link", name="Back to the access keys").click()
        row = page.locator("tr[data-key=ci-production]")
        assert "made by you" in row.inner_text()
        assert "you" in page.locator("tr[data-key=admin] .badge").inner_text()
        shoot(page, "21-access-keys")
        row.get_by_role("button", name="Revoke ci-production…").click()
        assert "Every request with the key" in page.locator("ul.consequences").inner_text()
        page.get_by_role("button", name="Revoke the key").click()
        assert page.locator("p.notice").inner_text() == (
            'The access key "ci-production" is revoked: requests with it are refused.'
        )
        # the server's key rules hold here too: the last key that never expires stays
        page.locator("tr[data-key=admin]").get_by_role("button", name="Revoke admin…").click()
        page.get_by_role("button", name="Revoke the key").click()
        assert page.locator("h1").inner_text() == "The key stays"
        assert "Create another admin key first" in page.locator("main").inner_text()
        page.get_by_role("link", name="Back to the page you came from").click()
        assert page.locator("h1").inner_text() == 'Revoke the access key "admin"?'

        shoot(page, "22-last-key-refused")
        # the refusal is a 409, which the browser logs as a failed load: expected here, and only here
        assert problems == [
            "error: Failed to load resource: the server responded with a status of 409 (Conflict)"
        ]
    finally:
        context.close()


def test_the_audit_log_page_shows_each_change_with_its_actor_and_filters_them(
    live_server: LiveServer, page: Any
) -> None:
    from playwright.sync_api import expect

    server = live_server
    with admin_api(server) as api:
        assert api.post("/apps", json={"name": "CoolApp"}).status_code == 201
        assert api.post("/access-keys", json={"name": "ci"}).status_code == 201
    sign_in(page, server)
    page.get_by_label("Name").fill("OtherApp")
    page.get_by_role("button", name="Create app").click()
    assert page.locator("h1").inner_text() == "OtherApp"

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("h1")).to_have_text("Audit log")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(4)
    actions = [rows.nth(i).get_attribute("data-action") for i in range(rows.count())]
    assert actions == ["app.create", "access-key.create", "app.create", "access-key.create"]
    newest = rows.nth(0).inner_text()
    assert "admin" in newest and "console" in newest and "OtherApp" in newest
    assert "api" in rows.nth(2).inner_text() and "CoolApp" in rows.nth(2).inner_text()
    shoot(page, "23-audit-log")

    page.get_by_label("Action").select_option("access-key")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)  # the filtered page has loaded
    assert [rows.nth(i).inner_text().split("\t")[3] for i in range(2)] == ["ci", "admin"]
    page.get_by_label("Actor").fill("nobody")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("p.empty")).to_have_text("No recorded change matches these filters.")
    page.get_by_role("link", name="Clear the filters").click()
    expect(rows).to_have_count(4)
    assert page.problems == []


# -- issue 16: what a role may do is what the console offers ---------------------------------------------


def sign_in_with(page: Any, server: LiveServer, key: str) -> None:
    page.goto(server.url + "/console/sign-in")
    page.get_by_label("Access key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("h1").inner_text() == "Apps"


def force_post(page: Any, action: str, fields: dict[str, str]) -> None:
    """Submit a form the page does not offer, as someone editing the page would (the session's CSRF token
    and the page's origin: only the right is missing)."""
    with page.expect_navigation():
        page.evaluate(
            """([action, fields]) => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = action;
                const all = {...fields, csrf_token: document.querySelector('input[name=csrf_token]').value};
                for (const [name, value] of Object.entries(all)) {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = name; input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [action, fields],
        )


def test_a_viewer_is_offered_nothing_it_may_not_do_and_an_owner_manages_collaborators(
    live_server: LiveServer, chromium: Any
) -> None:
    from playwright.sync_api import expect

    server = live_server
    with admin_api(server) as api:
        keys = {n: api.post("/accounts", json={"name": n}).json()["key"] for n in ("olivia", "vic", "dev")}
    with httpx.Client(base_url=server.url + "/api/v1") as olivia:
        olivia.headers["Authorization"] = f"Bearer {keys['olivia']}"
        assert olivia.post("/apps", json={"name": "Shop"}).status_code == 201
        publish_over_api(olivia, "one", 100, app="Shop", deployment="Staging")
        added = olivia.post("/apps/Shop/collaborators", json={"account": "vic", "role": "viewer"})
        assert added.status_code == 201, added.text

    viewer = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = viewer.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in_with(page, server, keys["vic"])
        page.get_by_role("link", name="Shop").first.click()
        assert page.locator("h1").inner_text() == "Shop"
        main = page.locator("main")
        expect(page.locator("tr[data-collaborator=vic] [data-role]")).to_have_text("viewer")
        for control in ("Add deployment", "Add collaborator", "Switch to store-only…", "Remove vic"):
            expect(main.get_by_role("button", name=control)).to_have_count(0)
        shoot(page, "24-viewer-app")
        page.goto(server.url + "/console/apps/Shop/deployments/Staging/releases/v1")
        for control in ("Promote…", "Change rollout…", "Disable…", "Make mandatory…"):
            expect(main.get_by_role("button", name=control)).to_have_count(0)
        assert "You may look at this release but not change it" in main.inner_text()
        shoot(page, "25-viewer-release")

        # forced anyway: refused, saying which right is missing and who can grant it
        force_post(page, "/console/apps/Shop/collaborators", {"account": "dev", "role": "owner"})
        assert page.locator("h1").inner_text() == "Forbidden"
        said = " ".join(main.inner_text().split())
        assert '"vic-key" may not manage collaborators on Shop' in said
        assert "Who can grant it: the owners and admins of Shop (olivia)" in said
        assert said.count("Who can grant it") == 1, said  # the page said it twice, in the message and the fix
        assert "They can give vic the role admin on Shop's page." in said
        shoot(page, "26-viewer-refused")
        page.goto(server.url + "/console/apps/Shop/deployments/Staging/releases/v1")
        force_post(
            page, "/console/apps/Shop/deployments/Staging/releases/v1/promote", {"destination": "Production"}
        )
        assert page.locator("h1").inner_text() == "Forbidden"
        assert "may not publish on Shop/Production" in main.inner_text()
    finally:
        viewer.close()
    with admin_api(server) as api:
        shop = api.get("/apps/Shop/collaborators").json()
    assert [c["account"] for c in shop] == ["olivia", "vic"]  # nothing changed

    owner = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = owner.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"{m.type}: {m.text}"))
    try:
        sign_in_with(page, server, keys["olivia"])
        page.goto(server.url + "/console/apps/Shop")
        page.get_by_label("Add the account").fill("dev")
        page.get_by_label("as", exact=True).select_option("developer")
        page.get_by_role("button", name="Add collaborator").click()
        expect(page.locator("p.notice")).to_have_text("dev is now a collaborator of Shop.")
        row = page.locator("tr[data-collaborator=dev]")
        expect(row.locator("[data-role]")).to_have_text("developer")
        row.get_by_label("Role of dev").select_option("release-manager")
        row.get_by_role("button", name="Change role of dev").click()
        expect(page.locator("tr[data-collaborator=dev] [data-role]")).to_have_text("release-manager")
        shoot(page, "27-owner-collaborators")
        page.locator("tr[data-collaborator=vic]").get_by_role("button", name="Remove vic").click()
        expect(page.locator("p.notice")).to_have_text("vic is no longer a collaborator of Shop.")
        expect(page.locator("tr[data-collaborator=vic]")).to_have_count(0)
        # the owner's own row offers no role change: ownership moves by transfer
        expect(page.locator("tr[data-collaborator=olivia]").get_by_role("button")).to_have_count(0)
        assert problems == []
    finally:
        owner.close()
    with admin_api(server) as api:
        shop = api.get("/apps/Shop/collaborators").json()
    assert [(c["account"], c["role"]) for c in shop] == [("olivia", "owner"), ("dev", "release-manager")]


def test_the_release_page_draws_its_guarded_rollout_over_time(live_server: LiveServer, page: Any) -> None:
    """Issue 17, item 6: the ramp (share against time, from the rollout events) is drawn as steps, its
    numbers in the table under it; a person's override is one of its steps."""
    server = live_server
    with admin_api(server) as api:
        assert api.post("/apps", json={"name": "CoolApp"}).status_code == 201
        production = "/apps/CoolApp/deployments/Production"
        for text in ("one", "two"):
            pushed = api.post(
                f"{production}/releases",
                files={"package": ("bundle.zip", _zip(text), "application/zip")},
                data={"release": json.dumps({"target_version": "1.0.0"})},
            )
            assert pushed.status_code == 201, pushed.text
            if text == "one":
                policy = {"policy": {"steps": [1, 10, 100]}, "reason": "guard"}
                assert api.put(f"{production}/rollout-policy", json=policy).status_code == 200
        act = {"act": "override", "step": 10, "reason": "QA signed it off"}
        assert api.post(f"{production}/releases/v2/rollout", json=act).status_code == 200
    sign_in(page, server)
    page.goto(server.url + "/console/apps/CoolApp/deployments/Production/releases/v2")
    page.wait_for_selector("figure[data-chart=ramp].drawn")
    drawn = page.evaluate(
        "() => { const c = Chart.getChart('chart-ramp'); const d = c.data.datasets[0];"
        " return [d.label, d.data.map(p => p.y), d.stepped, c.options.scales.y.max, c.options.scales.x.type,"
        " d.data.map(p => p.x)]; }"
    )
    assert drawn[:5] == ["share of devices (%)", [1, 10], "before", 100, "linear"]  # placed by time
    times = drawn[5]  # when each event happened, ms since the epoch
    assert times == sorted(times) and all(isinstance(t, int) and t > 1_700_000_000_000 for t in times)
    caption = page.locator("figure[data-chart=ramp] figcaption").inner_text()
    assert caption == "Share of devices offered v2 over time (UTC)"
    numbers = page.locator("figure[data-chart=ramp] table.numbers tbody td").all_text_contents()
    assert numbers == ["1", "10"]
    stands = page.locator("[data-ramp-phase]").inner_text()
    assert stands == "ramping at 10% (steps 1, 10, 100)"
    assert page.locator("[data-ramp-next]").inner_text().startswith("100% from ")
    shoot(page, "28-guarded-rollout-ramp")
    assert page.problems == []


def _zip(text: str) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.js", f"showWelcome({text!r});\n")
    return buffer.getvalue()
