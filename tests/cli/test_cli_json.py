"""``--json`` (issue 14, item 6): every command that prints data or publishes prints one JSON document on
stdout, of the shape docs/cli.md shows for it, with messages on stderr only.

The documents in docs/cli.md are the contract: this test reads them from the page and compares each
command's real output with its example, key by key, so neither can change without the other.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from no_terminal import document, logged_in, overair

from conftest import LiveServer, admin_api, receiving_webhooks, running_server
from overair.main import build

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_SECTION = re.compile(r"^### `overair ([a-z -]+?) --json`\n(.*?)```json\n(.*?)```", re.MULTILINE | re.DOTALL)
_ALSO = re.compile(r"`overair ([a-z -]+?)(?: [A-Z]+)* --json`")


def expo_export(dist: Path) -> None:
    """What `npx expo export` writes, in small: metadata.json, a bundle per platform, one shared asset."""
    files = {"_expo/ios.hbc": b"ios bundle", "_expo/android.hbc": b"android bundle", "assets/ab12": b"PNG"}
    for name, data in files.items():
        (dist / name).parent.mkdir(parents=True, exist_ok=True)
        (dist / name).write_bytes(data)
    asset = [{"path": "assets/ab12", "ext": "png"}]
    metadata = {
        "version": 0,
        "bundler": "metro",
        "fileMetadata": {p: {"bundle": f"_expo/{p}.hbc", "assets": asset} for p in ("ios", "android")},
    }
    (dist / "metadata.json").write_text(json.dumps(metadata))


def documented() -> dict[str, str]:
    """Command (``release list``) → the JSON example docs/cli.md gives for it ("Also …" commands too)."""
    examples: dict[str, str] = {}
    for command, prose, example in _SECTION.findall(DOCS.read_text(encoding="utf-8")):
        examples[command] = example
        for also in _ALSO.findall(prose):
            examples[also] = example
    return examples


def commands_with_json() -> set[str]:
    """Every command of the CLI that has a --json flag, by its name (``release list``)."""
    found: set[str] = set()

    def walk(command: Any, path: str) -> None:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, f"{path} {name}".strip())
        if any("--json" in getattr(p, "opts", ()) for p in command.params):
            found.add(path)

    walk(typer.main.get_command(build()), "")
    return found


def same_shape(example: Any, actual: Any, where: str = "") -> None:
    """``actual`` has exactly the keys of ``example`` at every level, and values of the same JSON types
    (``null`` on either side matches anything; list items are compared with the example's first)."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert set(actual) == set(example), f"{where}: keys differ: {sorted(set(actual) ^ set(example))}"
        for key, value in example.items():
            same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not a list"
        for item in actual if example else ():
            same_shape(example[0], item, f"{where}[]")
    elif example is not None and actual is not None:
        kinds = (
            (bool,)
            if isinstance(example, bool)
            else (int, float)
            if isinstance(example, int | float)
            else (str,)
        )
        assert isinstance(actual, kinds) and (isinstance(actual, bool) == isinstance(example, bool)), (
            f"{where}: {actual!r} is not like {example!r}"
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("json-server")) as live:
        yield live


def test_every_command_with_json_is_documented_and_every_documented_one_exists() -> None:
    assert commands_with_json() - {"fsck"} == set(documented())


def test_each_command_prints_its_documented_document(server: LiveServer, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        each_command_prints_its_document(server, tmp_path, stack)


def each_command_prints_its_document(server: LiveServer, tmp_path: Path, stack: contextlib.ExitStack) -> None:
    import json

    config = logged_in(tmp_path / "config.json", server)
    examples = {command: json.loads(text) for command, text in documented().items()}
    outputs: dict[str, Any] = {}

    def run(command: str, *args: str) -> Any:
        result = overair(*command.split(), *args, "--json", config=config, cwd=tmp_path)
        outputs[command] = document(result)
        return outputs[command]

    bundle = tmp_path / "dist"
    bundle.mkdir()
    (bundle / "index.js").write_text("showWelcome('v1');\n")
    run("app create", "CoolApp")
    receiver = stack.enter_context(receiving_webhooks())
    hook = run("webhook add", "CoolApp", receiver.url, "--event", "release.published")["webhook"]
    run("app set-distribution", "CoolApp", "hybrid")
    run("app list")
    # who may do what: accounts, collaborators, organisations (issue 16)
    assert (
        run("account create", "olivia", "--email", "olivia@example.com")["account"]["key_name"]
        == "olivia-key"
    )
    assert run("account show")["account"]["server_admin"] is True
    run("account list")
    assert run("account disable", "olivia")["account"]["disabled"] is True
    run("account enable", "olivia")
    run("collaborator add", "--app", "CoolApp", "olivia", "--role", "developer")
    assert (
        run("collaborator set-role", "--app", "CoolApp", "olivia", "viewer")["collaborator"]["role"]
        == "viewer"
    )
    run("collaborator list", "--app", "CoolApp")
    run("organisation create", "acme")
    run("organisation add-member", "acme", "olivia")
    assert run("organisation remove-member", "acme", "olivia")["organisation"]["members"] == [
        {"account": "admin", "role": "admin"}
    ]
    run("organisation list")
    run("deployment add", "--project-name", "CoolApp", "QA")
    run("deployment list", "--project-name", "CoolApp")
    created = run("access-key create", "ci-github", "--expires-in-days", "90")
    assert created["access_key"]["key"].startswith("oa_")
    run("access-key list")
    push = ["--project-name", "CoolApp", "--target-version", "1.0.0", "--bundle", str(bundle)]
    pushed = run("release push-update", *push, "--description", "First")
    assert pushed["release"]["label"] == "v1" and pushed["console_url"].endswith("/releases/v1")
    (bundle / "index.js").write_text("showWelcome('v2');\n")
    run("release push-update", *push)
    run("release patch-update", "--project-name", "CoolApp", "--label", "v2", "--mandatory")
    rolled = run("release rollback-update", "--project-name", "CoolApp")
    assert (rolled["release"]["method"], rolled["release"]["origin_label"]) == ("rollback", "v1")
    run("release promote", "--project-name", "CoolApp", "--from", "Production", "--to", "Staging")
    expo_export(tmp_path / "expo-dist")
    run("app create", "ExpoApp")
    expo = ["--project-name", "ExpoApp", "--dist", str(tmp_path / "expo-dist"), "--runtime-version", "1.0.0"]
    assert [r["platform"] for r in run("release push-expo", *expo)["releases"]] == ["ios", "android"]

    # a guarded rollout on QA: the policy, a push that ramps under it, and a person's acts
    qa = ["--project-name", "CoolApp", "--deployment", "QA"]
    policy = ["--ramp", "1,50,100", "--ramp-every", "12h", "--halt-on-failure-rate", "5%"]
    run("deployment set-rollout-policy", *qa, *policy, "--reason", "ramp QA builds")
    assert run("deployment show-rollout-policy", *qa)["policy"]["steps"] == [1, 50, 100]
    ramped = run("release push-update", *push[2:], *qa)
    assert ramped["release"]["rollout"] == 1 and ramped["release"]["guarded_rollout"]["next_step"] == 50
    act = [*qa, "--label", "v1"]
    run("release override-rollout", *act, "--step", "50", "--reason", "QA signed it off")
    ended = run("release end-rollout", *act, "--reason", "hold")
    assert ended["release"]["guarded_rollout"]["ended"]
    resumed = run("release resume-rollout", *act, "--reason", "go on")
    assert resumed["release"]["guarded_rollout"]["acts"][-1]["by"] == "admin"

    # devices report, so the health fields and the hourly series hold values rather than nulls
    with admin_api(server) as api:
        key = {d["name"]: d["key"] for d in api.get("/apps/CoolApp/deployments").json()}["Production"]
    for status, reason in (("installed", ""), ("failed", "TypeError: boom")):
        report = {"deployment_key": key, "label": "v3", "status": status, "reason": reason}
        assert httpx.post(f"{server.url}/v1/report", json=report).status_code == 200
    listed = run("release list", "--project-name", "CoolApp")
    assert [r["label"] for r in listed["releases"]] == ["v3", "v2", "v1"]  # newest first, as shown
    assert listed["releases"][0]["last_failure"] == "TypeError: boom"
    assert listed["releases"][0]["failure_rate"] == 0.5
    metrics = run("metrics", "--project-name", "CoolApp")
    assert metrics["hourly"] and metrics["releases"][0]["label"] == "v3"

    descriptor = {
        "app_name": "CoolApp",
        "runtime_version": "0.74.3",
        "native_modules": {"react-native-ble-plx": "3.1.0"},
    }
    (tmp_path / "d.json").write_text(json.dumps(descriptor))
    run("binary register", "--project-name", "CoolApp", "--version", "1.0.0", "--descriptor", "d.json")
    run("binary list", "--project-name", "CoolApp")
    run("keys generate", "--out", "release.key")
    run("app create", "Signed")
    added = run("keys add", "--project-name", "Signed", "release.key", "--name", "laptop")
    run("keys list", "--project-name", "Signed")
    retired = run("keys retire", "--project-name", "Signed", added["signing_key"]["key_id"])
    assert retired["signing_key"]["retired_at"] is not None
    run("keys server")
    rehearsed = run("simulate", "--crash-rate", "30%", "--seeds", "1")
    assert rehearsed["bad_release"]["stopped"] == 1
    run("webhook list", "CoolApp")
    assert run("webhook test", "CoolApp", str(hook["id"]))["delivery"]["status"] == "delivered"
    run("webhook deliveries", "CoolApp", str(hook["id"]))
    assert run("app transfer", "Signed", "--to-account", "olivia")["app"]["owner"] == "olivia"
    jobs = run("jobs")  # the diffs and deltas built after each release, by the server's worker
    audit = run("audit", "--project-name", "CoolApp", "--action", "release.patch")
    assert [(e["label"], e["surface"], e["after"]) for e in audit["events"]] == [
        ("v2", "cli", {"mandatory": True})
    ]
    assert {j["kind"] for j in jobs["jobs"]} >= {"deltas.release", "diffs.release"}

    assert set(outputs) == set(examples), "every documented command ran"
    for command, output in outputs.items():
        assert output["schema"] == 1
        same_shape(examples[command], output, command)


def test_messages_go_to_stderr_and_the_build_output_too(server: LiveServer, tmp_path: Path) -> None:
    """Under --json, stdout is the document only: the build command's output, "Signed …" and warnings
    go to stderr, so `| jq` always reads JSON."""
    config = logged_in(tmp_path / "config.json", server)
    assert overair("app", "create", "Quiet", config=config).returncode == 0
    dist = tmp_path / "dist"
    build = f"mkdir -p {dist} && echo 'render()' > {dist}/index.js && echo compiled-it"
    push = ["release", "push-update", "--project-name", "Quiet", "--target-version", "1.0.0"]
    result = overair(*push, "--bundle", str(dist), "--build", build, "--json", config=config)
    pushed = document(result)
    assert pushed["release"]["label"] == "v1"
    assert "compiled-it" in result.stderr and "Building:" in result.stderr
    assert "no registered store binary" in result.stderr  # the warning, as a message too
