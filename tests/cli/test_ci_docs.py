"""docs/ci.md runs as written (issue 14, item 12): its snippets are read from the page and run, step by step
as the CI systems would run them, against a real ``overair serve``.

A GitHub Actions job is a list of steps, each ``run`` a bash script (``shell: bash`` means ``bash
--noprofile --norc -eo pipefail``) with the workflow's, job's and step's ``env``, and ``${{ … }}``
expressions filled in from vars, secrets, and earlier steps' and jobs' outputs. A GitLab CI job runs its
``before_script`` and ``script`` lines in one bash (``set -eo pipefail``), with the pipeline's variables and
the dotenv reports of earlier jobs. Steps that only install tools (``uses:`` actions, ``pip install``,
``apt-get install``) are checked and skipped: the CLI is this checkout's, ``jq`` and ``npm`` the machine's.

Each pipeline is run twice on one server: a Staging release that fails on too many devices stops at the
gate (Production untouched), and a healthy one is promoted to 20% of Production.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from no_terminal import SOURCE

from conftest import LiveServer, admin_api, running_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("jq") is None, reason="jq is a system package: make system-deps"),
]

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
ACTIONS_USED = {"actions/checkout", "actions/setup-node", "actions/setup-python"}
INSTALL = re.compile(r'^(pip install "overair @ git\+https://\S+"|apt-get update && apt-get install -y jq)$')
EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")


def blocks(language: str) -> list[str]:
    """The fenced code blocks of docs/ci.md in ``language``, in order."""
    return re.findall(
        rf"^```{language}\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL
    )


@dataclass
class Step:
    """One step or job that ran: its exit status and what it printed."""

    name: str
    status: int
    output: str


@dataclass
class Machine:
    """A CI runner: the repository checked out, ``overair`` (this checkout) and the system's tools on PATH."""

    repo: Path
    env: dict[str, str]

    def bash(self, script: str, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "--noprofile", "--norc", *options, "-c", script],
            cwd=self.repo,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path / "server") as live:
        with admin_api(live) as api:
            assert api.post("/apps", json={"name": "CoolApp"}).status_code == 201
        yield live


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    """The runner with the app's repository: a package whose ``npm run bundle`` writes dist/."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "package.json").write_text(
        json.dumps(
            {"name": "coolapp", "version": "1.0.0", "private": True, "scripts": {"bundle": "node build.js"}}
        )
    )
    lock = {
        "name": "coolapp",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": "coolapp", "version": "1.0.0"}},
    }
    (repo / "package-lock.json").write_text(json.dumps(lock))
    write_app(repo, "Welcome")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "overair").write_text(
        f'#!/bin/sh\nPYTHONPATH={SOURCE} exec {sys.executable} -m overair.main "$@"\n'
    )
    (bin_dir / "overair").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        # npm as a CI runner configures it (no network needed: the package has no dependencies)
        "npm_config_cache": str(tmp_path / "npm-cache"),
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }
    return Machine(repo, env)


def write_app(repo: Path, text: str) -> None:
    (repo / "build.js").write_text(
        'const fs = require("fs");\nfs.mkdirSync("dist", { recursive: true });\n'
        f'fs.writeFileSync("dist/index.js", "showWelcome({text!r});\\n");\nconsole.log("bundled");\n'
    )


def ci_key(server: LiveServer, machine: Machine, tmp_path: Path) -> str:
    """Run "A key for CI" where an admin is logged in; the key it prints becomes the pipeline's secret."""
    config = tmp_path / "admin.json"
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    (snippet,) = blocks("sh")
    result = machine.bash(snippet, {"OVERAIR_CONFIG": str(config)}, "-eo", "pipefail")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("oa_") and key != server.key
    return key


def report(server: LiveServer, deployment: str, label: str, installs: int, failures: int) -> None:
    """Devices on ``deployment`` report installing ``label`` (and failing to)."""
    with admin_api(server) as api:
        key = {d["name"]: d["key"] for d in api.get("/apps/CoolApp/deployments").json()}[deployment]
    statuses = ["installed"] * installs + ["failed"] * failures
    for n, status in enumerate(statuses):
        body = {"deployment_key": key, "label": label, "status": status, "client_id": f"{label}-device-{n}"}
        body["reason"] = "TypeError: undefined is not a function" if status == "failed" else ""
        assert httpx.post(f"{server.url}/v1/report", json=body, timeout=30).status_code == 200


def production(server: LiveServer) -> list[dict[str, Any]]:
    with admin_api(server) as api:
        releases: list[dict[str, Any]] = api.get("/apps/CoolApp/deployments/Production/releases").json()
    return releases


# -- GitHub Actions ----------------------------------------------------------------------------------


def fill(value: str, contexts: dict[str, str]) -> str:
    """``${{ vars.X }}`` and the like, replaced as GitHub does (unknown names are a failure of the doc)."""
    return EXPRESSION.sub(lambda m: contexts[m.group(1)], value)


def run_github_job(
    workflow: dict[str, Any], name: str, machine: Machine, contexts: dict[str, str]
) -> tuple[list[Step], dict[str, str]]:
    """Run one job's steps until one fails; return them and the job's outputs."""
    job = workflow["jobs"][name]
    assert workflow["defaults"]["run"]["shell"] == "bash"
    env = {k: fill(str(v), contexts) for k, v in {**workflow.get("env", {}), **job.get("env", {})}.items()}
    steps: list[Step] = []
    outputs: dict[str, str] = {}
    for number, step in enumerate(job["steps"]):
        if "uses" in step:
            assert step["uses"].split("@")[0] in ACTIONS_USED, step
            continue
        if step.get("name", "").startswith("Install"):
            assert INSTALL.match(step["run"].strip()), step
            continue
        output_file = machine.repo.parent / f"github-output-{name}-{number}"
        output_file.write_text("")
        step_env = {k: fill(str(v), contexts) for k, v in step.get("env", {}).items()}
        step_env |= {"GITHUB_OUTPUT": str(output_file), "GITHUB_SHA": "0a1b2c3d4e5f"}
        result = machine.bash(fill(step["run"], contexts), {**env, **step_env}, "-eo", "pipefail")
        steps.append(Step(step.get("name", step["run"]), result.returncode, result.stdout + result.stderr))
        if "id" in step:
            for line in output_file.read_text().splitlines():
                key, _, value = line.partition("=")
                contexts[f"steps.{step['id']}.outputs.{key}"] = value
        if result.returncode != 0:
            break
    for key, value in job.get("outputs", {}).items():
        outputs[key] = fill(value, contexts)
    return steps, outputs


def github(server: LiveServer, machine: Machine, key: str) -> Callable[[str], list[Step]]:
    (workflow_text, _gitlab) = blocks("yaml")
    workflow = yaml.safe_load(workflow_text)
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert trigger["push"]["branches"] == ["main"]
    contexts = {"vars.OVERAIR_SERVER": server.url, "secrets.OVERAIR_ACCESS_KEY": key}

    def run(name: str) -> list[Step]:
        for needed in [workflow["jobs"][name].get("needs")] if workflow["jobs"][name].get("needs") else []:
            assert f"needs.{needed}.outputs.label" in contexts, f"{name} runs after {needed}"
        steps, outputs = run_github_job(workflow, name, machine, contexts)
        contexts.update({f"needs.{name}.outputs.{k}": v for k, v in outputs.items()})
        return steps

    return run


# -- GitLab CI ---------------------------------------------------------------------------------------


def gitlab(server: LiveServer, machine: Machine, key: str) -> Callable[[str], list[Step]]:
    (_github, pipeline_text) = blocks("yaml")
    pipeline = yaml.safe_load(pipeline_text)
    variables = {k: str(v) for k, v in pipeline.get("variables", {}).items()}
    variables |= {"OVERAIR_SERVER": server.url, "OVERAIR_ACCESS_KEY": key, "CI_COMMIT_SHORT_SHA": "0a1b2c3d"}
    assert [pipeline[job]["stage"] for job in ("bundle", "publish", "promote")] == pipeline["stages"]

    def run(name: str) -> list[Step]:
        job = pipeline[name]
        lines = [*job.get("before_script", pipeline["default"]["before_script"]), *job["script"]]
        for line in lines:
            if line.startswith(("pip ", "apt-get ")):
                assert INSTALL.match(line), line
        script = "\n".join(line for line in lines if not INSTALL.match(line))
        result = machine.bash(script, variables, "-eo", "pipefail")
        dotenv = job.get("artifacts", {}).get("reports", {}).get("dotenv")
        if result.returncode == 0 and dotenv:
            for line in (machine.repo / dotenv).read_text().splitlines():
                k, _, v = line.partition("=")
                variables[k] = v
        return [Step(name, result.returncode, result.stdout + result.stderr)]

    return run


# -- the pipelines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_the_pipeline_publishes_gates_and_promotes(
    system: str, server: LiveServer, machine: Machine, tmp_path: Path
) -> None:
    key = ci_key(server, machine, tmp_path)
    pipeline = github(server, machine, key) if system == "github" else gitlab(server, machine, key)
    build, publish, promote = (
        ("staging", "staging", "production") if system == "github" else ("bundle", "publish", "promote")
    )

    # 1. a push publishes v1 to Staging, which then fails on 3 devices out of 12
    if build != publish:
        assert all(step.status == 0 for step in pipeline(build)), "the bundle job"
    staged = pipeline(publish)
    assert all(step.status == 0 for step in staged), [s.output for s in staged]
    page = f"{server.url}/console/apps/CoolApp/deployments/Staging/releases/v1"
    assert f"Published v1 to Staging ({page})" in staged[-1].output
    report(server, "Staging", "v1", installs=9, failures=3)
    gated = pipeline(promote)
    failed = [step for step in gated if step.status != 0]
    assert failed and failed[-1].status == 1  # jq -e: the gate said false
    assert "v1 on Staging, 9 installs and 3 failures" in failed[-1].output
    assert "false" in failed[-1].output.split()
    assert production(server) == []  # nothing reached Production

    # 2. the fix is pushed as v2; 25 devices install it without failing: the gate lets it through
    write_app(machine.repo, "Welcome back")
    if build != publish:
        assert all(step.status == 0 for step in pipeline(build))
    assert all(step.status == 0 for step in pipeline(publish))
    report(server, "Staging", "v2", installs=25, failures=0)
    promoted = pipeline(promote)
    assert all(step.status == 0 for step in promoted), [s.output for s in promoted]
    assert "Promoted v2 as v1 to 20% of Production" in promoted[-1].output
    (release,) = production(server)
    assert (release["origin_label"], release["origin_deployment"], release["rollout"]) == (
        "v2",
        "Staging",
        20,
    )
