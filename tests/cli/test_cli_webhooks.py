"""``overair webhook …`` against a running server, delivering to a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from no_terminal import document, logged_in, overair

from conftest import documented_verify, receiving_webhooks, running_server

pytestmark = pytest.mark.slow


def test_add_test_read_the_log_and_remove_a_webhook(tmp_path: Path) -> None:
    with running_server(tmp_path / "server") as server, receiving_webhooks() as receiver:
        config = logged_in(tmp_path / "config.json", server)
        wide = {"COLUMNS": "200"}
        assert overair("app", "create", "CoolApp", config=config).returncode == 0
        added = overair(
            "webhook", "add", "CoolApp", receiver.url, "--event", "release.published", "--format", "slack",
            config=config, env=wide,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "Added webhook 1 to CoolApp" in added.stdout and "(release.published; slack)" in added.stdout
        secret = added.stdout.split("signed with it): ")[1].split()[0]
        assert secret.startswith("whsec_")

        listed = overair("webhook", "list", "CoolApp", config=config, env=wide)
        row = next(line for line in listed.stdout.splitlines() if receiver.url in line)
        assert "release.published" in row and "slack" in row and "yes" in row and secret not in listed.stdout

        tried = overair("webhook", "test", "CoolApp", "1", config=config, env=wide)
        assert tried.returncode == 0, tried.stderr
        assert "delivery 1 (webhook.test): delivered after 1 attempt(s), HTTP 200" in tried.stdout
        assert json.loads(receiver.received[0].body) == {
            "text": "CoolApp: a test delivery from overair (by admin)."
        }

        receiver.always = 500
        failing = overair("webhook", "test", "CoolApp", "1", config=config, env=wide)
        assert failing.returncode == 1
        assert "failed after 1 attempt(s), HTTP 500: answered 500 Internal Server Error" in failing.stdout

        log = overair("webhook", "deliveries", "CoolApp", "1", config=config, env=wide)
        lines = [line for line in log.stdout.splitlines() if "webhook.test" in line]
        assert "failed" in lines[0] and "500: answered 500" in lines[0] and "delivered" in lines[1]
        as_json = document(overair("webhook", "deliveries", "CoolApp", "1", "--json", config=config))
        assert [d["status"] for d in as_json["deliveries"]] == ["failed", "delivered"]

        unknown = overair(
            "webhook", "add", "CoolApp", receiver.url, "--event", "release.deleted", config=config
        )
        assert unknown.returncode != 0
        assert "Unknown webhook event 'release.deleted': the events are release.published" in unknown.stderr

        bad_url = overair("webhook", "add", "CoolApp", "ftp://x", "--event", "rollout.step", config=config)
        assert bad_url.returncode != 0 and "is not an http or https URL" in bad_url.stderr

        missing = overair("webhook", "deliveries", "CoolApp", "9", config=config)
        assert (
            missing.returncode != 0 and 'App "CoolApp" has no webhook 9 (its webhooks: 1).' in missing.stderr
        )
        assert 'See them with: overair webhook list "CoolApp"' in missing.stderr

        # a release pushed reaches the receiver through the server's own worker, signed
        receiver.always = 200
        (tmp_path / "dist").mkdir()
        (tmp_path / "dist" / "index.js").write_text("render('v1')\n")
        push = ["release", "push-update", "--project-name", "CoolApp", "--target-version", "1.0.0"]
        assert overair(*push, "--bundle", str(tmp_path / "dist"), config=config).returncode == 0
        got = receiver.wait_for(3)[2]
        assert got.headers["Overair-Event"] == "release.published"
        assert documented_verify()(secret, got.headers, got.body)
        assert json.loads(got.body) == {"text": "CoolApp/Production: v1 was published at 100% (by admin)."}

        removed = overair("webhook", "remove", "CoolApp", "1", "--yes", config=config)
        assert removed.returncode == 0 and "Removed webhook 1." in removed.stdout
        assert "CoolApp has no webhooks." in overair("webhook", "list", "CoolApp", config=config).stdout
