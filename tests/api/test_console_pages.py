"""Console pages over HTTP: a release's file changes, its deltas and diffs, the distribution switch."""

from __future__ import annotations

import html
import json
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


# -- rollback safety (issue 14, item 1) ------------------------------------------------------------------


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no form with a CSRF token on the page"
    return found.group(1)


def report(device: TestClient, key: str, label: str, status: str, times: int) -> None:
    for n in range(times):
        body = {"deployment_key": key, "label": label, "status": status, "client_id": f"{label}-{status}-{n}"}
        assert device.post("/v1/report", json=body).status_code == 200


def failing_story(api: TestClient, device: TestClient) -> None:
    """v1 healthy at 100%; v2 rolling out to 60% and failing on 31 of 50 installs (62%)."""
    key = api.post("/api/v1/apps", json={"name": "CoolApp"}).json()["deployments"][0]["key"]
    assert publish(api, content=bundle("one")).status_code == 201
    assert publish(api, content=bundle("two"), rollout=60).status_code == 201
    report(device, key, "v1", "installed", 20)
    report(device, key, "v2", "installed", 19)
    report(device, key, "v2", "failed", 31)


DEPLOYMENT = "/console/apps/CoolApp/deployments/Production"


def rows(page: str) -> dict[str, str]:
    """Label -> the text of its row in the history table."""
    table = page[page.index('<table class="history">') :].split("</table>")[0]
    found = re.findall(r'<tr data-label="(v\d+)"(.*?)</tr>', table, re.S)
    return {label: re.sub(r"<[^>]+>|\s+", " ", body) for label, body in found}


def test_after_rolling_back_a_failing_rollout_nothing_sends_it_back_by_one_click(
    server: OverairApp, api: TestClient, device: TestClient, admin_key: str
) -> None:
    failing_story(api, device)
    with signed_in(server, admin_key) as client:
        page = client.get(DEPLOYMENT).text
        assert "Roll back v2 to v1…" in page  # the main button: the healthy release
        assert list(rows(page)) == ["v2", "v1"]  # newest first
        assert "62.0%" in rows(page)["v2"] and "failing" in rows(page)["v2"]
        confirm = client.get(f"{DEPLOYMENT}/releases/v1/confirm/rollback").text
        assert 'name="confirm"' not in confirm  # a healthy target: one click confirms
        done = client.post(f"{DEPLOYMENT}/releases/v1/rollback", data={"csrf_token": csrf_of(confirm)})
        assert done.status_code == 303
        page = client.get(done.headers["location"]).text
        assert "Rolled back: v3 now serves the content of v1. v2 is disabled and stays at 60%." in page
        v2 = rows(page)["v2"]
        assert " 60% " in v2 and "disabled" in v2 and "failing" in v2 and "100%" not in v2
        # no default rollback to the disabled, failing v2: the page says why instead
        assert "Roll back v3 to" not in page
        assert "No earlier release is safe to roll back to: v2 (disabled, failing, 62.0%)" in page

        release = client.get(f"{DEPLOYMENT}/releases/v2").text
        assert "<dd data-rollout>60%</dd>" in release and "Complete" not in release
        assert "Disabled when admin rolled Production back to the content of v1 (as v3) on" in release
        assert "v2 is failing: 62.0% of its 50 install attempts failed, above the 5% threshold." in release
        assert "enabling it asks you to type v2" in release

        # choosing v2 deliberately: its failure rate, why it was disabled, and its label to type
        confirm = client.get(f"{DEPLOYMENT}/releases/v2/confirm/rollback").text
        assert "Think twice" in confirm and "62.0%" in confirm and "Disabled when admin rolled" in confirm
        assert 'name="confirm"' in confirm and 'data-must-be="v2"' in confirm
        csrf = csrf_of(confirm)
        for typed in ("", "v1", "V2"):
            refused = client.post(
                f"{DEPLOYMENT}/releases/v2/rollback", data={"csrf_token": csrf, "confirm": typed}
            )
            assert refused.status_code == 409, typed
            assert "Type <strong>v2</strong> to confirm" in refused.text  # the same confirmation, again
        mistyped = client.post(
            f"{DEPLOYMENT}/releases/v2/rollback", data={"csrf_token": csrf, "confirm": "v1"}
        )
        assert 'You typed "v1": type v2 exactly to confirm.' in html.unescape(mistyped.text)
        assert len(api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()) == 3

        # enabling v2 again warns the same way
        enable = client.get(f"{DEPLOYMENT}/releases/v2/confirm/disabled?disabled=false").text
        assert "62.0%" in enable and 'data-must-be="v2"' in enable and "the first 60% of devices" in enable
        refused = client.post(
            f"{DEPLOYMENT}/releases/v2/disabled", data={"csrf_token": csrf, "disabled": "false"}
        )
        assert refused.status_code == 409
        assert api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()[1]["disabled"] is True
        enabled = client.post(
            f"{DEPLOYMENT}/releases/v2/disabled",
            data={"csrf_token": csrf, "disabled": "false", "confirm": "v2"},
        )
        assert enabled.status_code == 303
    v2_now = api.get("/api/v1/apps/CoolApp/deployments/Production/releases").json()[1]
    assert (v2_now["disabled"], v2_now["rollout"]) == (False, 60)


def test_history_has_the_agreed_columns_newest_first(
    server: OverairApp, api: TestClient, device: TestClient, admin_key: str
) -> None:
    failing_story(api, device)
    with signed_in(server, admin_key) as client:
        page = client.get(DEPLOYMENT).text
    head = page[page.index('<table class="history">') :].split("</thead>")[0]
    columns = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", head)
    ]
    assert columns == ["Label", "Version range", "Rollout", "Status", "Installs", "Failure rate", "Published"]
    assert list(rows(page)) == ["v2", "v1"]
    assert 'data-label="v2" data-failing data-worse' in page  # failing, and worse than v1
    assert "worse than v1" in rows(page)["v2"]


def test_the_rollout_slider_shows_the_whole_scale_with_the_current_share(
    server: OverairApp, api: TestClient, device: TestClient, admin_key: str
) -> None:
    failing_story(api, device)
    with signed_in(server, admin_key) as client:
        page = client.get(f"{DEPLOYMENT}/releases/v2").text
    slider = re.search(r'<input type="range"[^>]*>', page)
    assert slider
    for attribute in ('min="0"', 'max="100"', 'value="60"', 'data-floor="60"', 'list="rollout-marks"'):
        assert attribute in slider.group(0)
    assert '<span class="now-mark" data-at="60">▲ now 60%</span>' in page


def test_charts_show_the_range_that_fits_the_data(
    server: OverairApp, api: TestClient, device: TestClient, admin_key: str
) -> None:
    failing_story(api, device)  # every report in the current hour
    with signed_in(server, admin_key) as client:
        page = client.get(DEPLOYMENT).text
    assert "Downloads and installs (the last hour)" in page
    data = json.loads(html.unescape(re.search(r'id="chart-data">(.*?)</script>', page).group(1)))  # type: ignore[union-attr]
    assert len(data["traffic"]["x"]) == 1
    colours = {s["name"]: s["color"] for s in data["traffic"]["series"] + data["trouble"]["series"]}
    assert colours["installs"] != colours["failures"]


# -- managing from the console (issue 14, item 3) --------------------------------------------------------


def test_create_an_app_and_a_deployment_and_see_its_key(
    server: OverairApp, api: TestClient, admin_key: str
) -> None:
    with signed_in(server, admin_key) as client:
        csrf = csrf_of(client.get("/console/").text)
        created = client.post(
            "/console/apps",
            data={
                "csrf_token": csrf,
                "name": "CoolApp",
                "platforms": ["android"],
                "distribution": "store-only",
            },
        )
        assert (
            created.status_code == 303 and created.headers["location"] == "/console/apps/CoolApp?done=created"
        )
        page = client.get(created.headers["location"]).text
        assert "Created CoolApp with the deployments Production, Staging." in page
        added = client.post(
            "/console/apps/CoolApp/deployments", data={"csrf_token": csrf, "name": "Beta Testers"}
        )
        assert added.status_code == 303
        page = client.get(added.headers["location"]).text
        assert "Added the deployment Beta Testers: its key is below." in page
        for refused, expected in [
            ({"name": "Bad/Name", "platforms": ["ios"]}, "is not a valid app name"),
            ({"name": "CoolApp", "platforms": ["ios"]}, "already exists"),
            ({"name": "Other", "platforms": []}, "at least one platform"),
            ({"name": "Other", "platforms": ["ios"], "distribution": "sideways"}, "hybrid or store-only"),
        ]:
            answer = client.post("/console/apps", data={"csrf_token": csrf, **refused})
            assert answer.status_code in (409, 422) and expected in html.unescape(answer.text), refused
        taken = client.post(
            "/console/apps/CoolApp/deployments", data={"csrf_token": csrf, "name": "beta testers"}
        )
        assert taken.status_code == 409 and "already has a deployment" in html.unescape(taken.text)
    app = api.get("/api/v1/apps/CoolApp").json()
    assert (app["platforms"], app["distribution"]) == (["android"], "store-only")
    keys = {d["name"]: d["key"] for d in app["deployments"]}
    assert list(keys) == ["Production", "Staging", "Beta Testers"]
    assert all(
        f'<code class="key" id="key-{i}">{key}</code>' in page for i, key in enumerate(keys.values(), 1)
    )
    assert 'data-copy="key-3"' in page


def test_access_keys_are_made_listed_and_revoked_by_the_rules(
    server: OverairApp, api: TestClient, admin_key: str
) -> None:
    with signed_in(server, admin_key) as client:
        page = client.get("/console/access-keys").text
        assert 'data-key="admin"' in page and ">you</span>" in page
        csrf = csrf_of(page)
        made = client.post(
            "/console/access-keys", data={"csrf_token": csrf, "name": "ci", "expires_in_days": "30"}
        )
        assert made.status_code == 201
        key = re.search(r'<code class="key" id="new-key">(oa_[^<]+)</code>', made.text)
        assert key and "only time the key is shown" in made.text
        assert (
            api.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key.group(1)}"}).status_code == 200
        )
        for refused, expected in [
            ({"name": "ci"}, "already exists"),
            ({"name": "no/slash"}, "not a valid access key name"),
            ({"name": "x", "expires_in_days": "0"}, "whole number of days"),
            ({"name": "x", "expires_in_days": "soon"}, "whole number of days"),
        ]:
            answer = client.post("/console/access-keys", data={"csrf_token": csrf, **refused})
            assert answer.status_code in (409, 422) and expected in html.unescape(answer.text), refused
        confirm = client.get("/console/access-keys/ci/confirm-revoke").text
        assert "Revoke the access key" in confirm and "you are signed out" not in confirm
        revoked = client.post("/console/access-keys/ci/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        assert 'The access key "ci" is revoked' in html.unescape(client.get(revoked.headers["location"]).text)
        # the last key that never expires cannot go
        last = client.post("/console/access-keys/admin/revoke", data={"csrf_token": csrf})
        assert last.status_code == 409 and "<h1>The key stays</h1>" in last.text
        assert html.unescape(last.text).count("Create another admin key first") == 1  # said once
        assert 'href="/console/access-keys/admin/confirm-revoke"' not in last.text  # no referer, no back link
    names = [k["name"] for k in api.get("/api/v1/access-keys").json()]
    assert names == ["admin"]


def test_key_rules_hold_in_the_console(server: OverairApp, api: TestClient, admin_key: str) -> None:
    temp = api.post("/api/v1/access-keys", json={"name": "temp", "expires_in_seconds": 3600}).json()["key"]
    with signed_in(server, temp) as client:
        csrf = csrf_of(client.get("/console/access-keys").text)
        forever = client.post("/console/access-keys", data={"csrf_token": csrf, "name": "forever"})
        assert forever.status_code == 422 and "keys never outlive the key that made" in html.unescape(
            forever.text
        )
        creator = client.post("/console/access-keys/admin/revoke", data={"csrf_token": csrf})
        assert creator.status_code == 409 and "created the key you are using" in html.unescape(creator.text)
        assert "you are signed out" in client.get("/console/access-keys/temp/confirm-revoke").text
        own = client.post("/console/access-keys/temp/revoke", data={"csrf_token": csrf})
        assert own.status_code == 303 and own.headers["location"] == "/console/sign-in?reason=ended"
        assert client.get("/console/").status_code == 303  # signed out
    assert [k["name"] for k in api.get("/api/v1/access-keys").json()] == ["admin"]


def test_a_nul_character_in_a_console_address_is_a_clear_page(server: OverairApp, admin_key: str) -> None:
    """PostgreSQL refuses NUL in text: the console answers with a page saying so, never a 500."""
    with signed_in(server, admin_key) as client:
        for path in (
            "/console/apps/Cool%00App",
            "/console/apps/CoolApp/deployments/Pro%00duction",
            "/console/access-keys/c%00i/confirm-revoke",
        ):
            answer = client.get(path)
            assert answer.status_code in (400, 404), (path, answer.status_code, answer.text)
            assert "Internal error" not in answer.text


def test_the_app_page_lists_webhooks_and_their_latest_deliveries(server: OverairApp, admin_key: str) -> None:
    from conftest import receiving_webhooks

    api = TestClient(server, base_url="http://testserver")  # no lifespan: the test runs the jobs
    api.headers["Authorization"] = f"Bearer {admin_key}"
    api.post("/api/v1/apps", json={"name": "CoolApp"})
    with signed_in(server, admin_key) as client:
        assert "CoolApp has no webhooks." in client.get("/console/apps/CoolApp").text
    with receiving_webhooks() as receiver:
        receiver.answers = [503]
        body = {"url": receiver.url + "?a=<b>", "events": ["release.published"], "enabled": False}
        hook = api.post("/api/v1/apps/CoolApp/webhooks", json=body).json()
        assert api.post(f"/api/v1/apps/CoolApp/webhooks/{hook['id']}/test").json()["status"] == "failed"
        assert api.post(f"/api/v1/apps/CoolApp/webhooks/{hook['id']}/test").json()["status"] == "delivered"
    with signed_in(server, admin_key) as client:
        page = client.get("/console/apps/CoolApp").text
    row = page[page.index(f'data-webhook="{hook["id"]}"') :].split("</tr>")[0]
    assert html.escape(receiver.url + "?a=<b>") in row and "disabled" in row and "release.published" in row
    shown = [html.unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<li[^>]*>(.*?)</li>", row)]
    items = [text.split() for text in shown]
    assert [i[:2] for i in items] == [["delivered", "webhook.test,"], ["failed", "webhook.test,"]]
    assert "answered 503 — answered 503 Service Unavailable" in " ".join(items[1])
