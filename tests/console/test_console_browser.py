"""The console in a real browser (Debian's Chromium driven by Playwright) against `overair serve`.

The story of the issue: releases made through the CLI, sign in, open CoolApp, see the history, raise a
rollout from 20% to 50% and watch the server's answer change for a device between the two, roll back and
see the new label, charts drawn from a fleet of real engines' reports, no browser console errors, sign out.
Screenshots go to test-artifacts/console/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT, LiveServer, admin_api
from conftest import run_cli as overair
from overair.cli.simulate import Fleet
from overair.selection.rollout import rollout_bucket

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless; Playwright never downloads a browser here."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make system-deps` (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
    v2_cells = page.locator("tr[data-label=v2] td.num").all_inner_texts()
    assert int(v2_cells[0]) > 0 and int(v2_cells[1]) > 0  # downloads and installs from the simulation

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
    assert int(page.locator("tr[data-label=v2] td.num").last.inner_text()) > 0  # active devices now
    shoot(page, "04-deployment")

    # move the rollout from 20 to 50
    page.get_by_role("link", name="v3", exact=True).click()
    assert "unsigned" in page.locator("dl.props").inner_text()
    assert "changed" in page.locator("#files-heading").inner_text()
    assert "index.js" in page.locator("section[aria-labelledby=files-heading]").inner_text()
    shoot(page, "05-release")
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
    assert page.locator("p.notice").inner_text() == "Rolled back: v4 now serves the content of v2."
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
