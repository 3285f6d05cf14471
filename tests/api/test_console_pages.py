"""Console pages over HTTP: a release's file changes, its deltas and diffs, the distribution switch."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from conftest import bundle, publish
from overair.app import OverairApp


def signed_in(server: OverairApp, key: str) -> TestClient:
    client = TestClient(server, base_url="http://testserver", follow_redirects=False)
    assert client.post("/console/sign-in", data={"access_key": key}).status_code == 303
    return client


def test_release_page_lists_file_changes_deltas_and_diffs(server: OverairApp, api: TestClient, admin_key):
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    big = "x" * 20_000
    assert publish(api, content=bundle(big, old__only_js=b"gone")).status_code == 201
    assert publish(api, content=bundle(big + "y", new__file_js=b"fresh")).status_code == 201
    server.state.releases.drain(timeout=60)
    with signed_in(server, admin_key) as client:
        page = client.get("/console/apps/CoolApp/deployments/Production/releases/v2").text
    assert "Files changed since v1" in page
    assert "1 added, 1 removed, 1 changed." in page
    rows = {m[0]: m[1] for m in re.findall(r"<code>([^<]+)</code></th><td><span class=\"badge (\w+)\"", page)}
    assert rows == {"index.js": "changed", "new/file_js": "added", "old/only_js": "removed"}
    assert "overair delta" in page and "CodePush diff" in page
    smaller = page[page.index('id="diffs-heading"') :].split("</section>")[0]
    assert smaller.count('<th scope="row">v1</th>') == 2  # a delta and a diff, both from v1


def test_distribution_switch_is_confirmed_first(server: OverairApp, api: TestClient, admin_key) -> None:
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    with signed_in(server, admin_key) as client:
        confirm = client.get("/console/apps/CoolApp/distribution/confirm?mode=store-only")
        assert "stop getting over-the-air updates" in confirm.text
        assert api.get("/api/v1/apps/CoolApp").json()["distribution"] == "hybrid"  # not yet
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', confirm.text)
        assert csrf
        done = client.post(
            "/console/apps/CoolApp/distribution", data={"csrf_token": csrf.group(1), "mode": "store-only"}
        )
        assert done.status_code == 303
        assert "store-only" in client.get(done.headers["location"]).text
    assert api.get("/api/v1/apps/CoolApp").json()["distribution"] == "store-only"


def test_release_page_shows_why_it_last_failed(
    server: OverairApp, api: TestClient, device, admin_key
) -> None:
    key = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()["deployments"][0]["key"]
    assert publish(api).status_code == 201
    reason = "v1 is refused: <the signature does not verify>"
    body = {"deployment_key": key, "label": "v1", "status": "failed", "reason": reason}
    assert device.post("/v1/report", json=body).status_code == 200
    with signed_in(server, admin_key) as client:
        page = client.get("/console/apps/CoolApp/deployments/Production/releases/v1").text
    assert "Last failure" in page and "&lt;the signature does not verify&gt;" in page
