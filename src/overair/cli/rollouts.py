"""Guarded rollouts on the command line: the policy flags of ``release push-update`` and
``deployment set-rollout-policy``, ``deployment show-rollout-policy|remove-rollout-policy``, ``release
resume-rollout|override-rollout|end-rollout``, and how ``release list`` shows a release's ramp.

The flags are read here into the API's policy fields (durations in seconds, rates as shares); the server
checks the policy itself and says what is wrong with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from overair.cli import documents
from overair.cli.http import Api, quote
from overair.cli.metrics import Deployment
from overair.cli.output import JsonOutput, Project, console, emit, plain, say, when
from overair.cli.policy_flags import POLICY_FLAGS

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: str | None, flag: str) -> float | None:
    """``"12h"``, ``"90m"``, ``"1d"``, ``"1h30m"`` or plain seconds, in seconds; else a usage error."""
    if value is None:
        return None
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not text or "".join(f"{n}{u}" for n, u in parts).lower() != text.lower():
        raise typer.BadParameter(
            f'"{value}" is not a duration: write it like 12h, 90m, 1d or 1h30m.', param_hint=flag
        )
    return sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)


def parse_rate(value: str | None, flag: str) -> float | None:
    """``"5%"`` → 0.05; ``"0.05"`` → 0.05 (a share); else a usage error."""
    if value is None:
        return None
    text = value.strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise typer.BadParameter(
            f'"{value}" is not a rate: write it like 5% or 0.05.', param_hint=flag
        ) from None


Ramp = Annotated[
    str | None,
    typer.Option(
        POLICY_FLAGS["steps"],
        metavar="STEPS",
        help='Ramp the release through these percentages of devices, e.g. "1,5,25,50,100" (a guarded '
        "rollout: the server steps it up while it is healthy and stops it when it is not). Without any "
        "policy flag, the deployment's rollout policy applies, if it has one.",
    ),
]
RampEvery = Annotated[
    str | None,
    typer.Option(POLICY_FLAGS["min_dwell"], metavar="DURATION", help="Least time per step, e.g. 12h."),
]
RampMinSample = Annotated[
    int | None,
    typer.Option(POLICY_FLAGS["min_sample"], min=0, help="Least install attempts reported per step."),
]
HaltOnFailureRate = Annotated[
    str | None,
    typer.Option(
        POLICY_FLAGS["max_failure_rate"],
        metavar="RATE",
        help="Stop the release when its failure rate (lower confidence bound) is above this, e.g. 5%.",
    ),
]
MaxIncrease = Annotated[
    str | None,
    typer.Option(
        POLICY_FLAGS["max_increase"],
        metavar="RATE",
        help="Stop it when it fails more often than the previous release by more than this, e.g. 1%.",
    ),
]
MinFailures = Annotated[
    int | None,
    typer.Option(
        POLICY_FLAGS["min_failures"], min=1, help="No gate stops a release with fewer failures than this."
    ),
]
Confidence = Annotated[
    float | None,
    typer.Option(POLICY_FLAGS["confidence"], help="Confidence of the bounds the gates use, e.g. 0.95."),
]
OnFailure = Annotated[
    str | None,
    typer.Option(
        POLICY_FLAGS["action"],
        metavar="ACTION",
        help="What a failed gate does: pause (stay at the share), halt (disable the release) or roll-back.",
    ),
]


def policy_fields(
    ramp: str | None,
    ramp_every: str | None,
    min_sample: int | None,
    halt_rate: str | None,
    max_increase: str | None,
    min_failures: int | None,
    confidence: float | None,
    on_failure: str | None,
) -> dict[str, Any]:
    """The policy fields given by flags (the others take the server's defaults)."""
    given = {
        "steps": ramp,
        "min_dwell": parse_duration(ramp_every, POLICY_FLAGS["min_dwell"]),
        "min_sample": min_sample,
        "max_failure_rate": parse_rate(halt_rate, POLICY_FLAGS["max_failure_rate"]),
        "max_increase": parse_rate(max_increase, POLICY_FLAGS["max_increase"]),
        "min_failures": min_failures,
        "confidence": confidence,
        "action": on_failure,
    }
    return {name: value for name, value in given.items() if value is not None}


def _percent(rate: float | None) -> str:
    return "off" if rate is None else f"{rate * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def describe_policy(policy: Mapping[str, Any]) -> str:
    """A policy in one line."""
    steps = ", ".join(f"{s}%" for s in policy["steps"])
    return (
        f"steps {steps}; at least {_hours(policy['min_dwell'])} and {policy['min_sample']} install attempts "
        f"per step; {policy['action']} when the failure rate is above {_percent(policy['max_failure_rate'])} "
        f"or above the previous release's by {_percent(policy['max_increase'])} (at "
        f"{_percent(policy['confidence'])} confidence, from {policy['min_failures']} failures)"
    )


def ramp_lines(label: str, ramp: Mapping[str, Any]) -> list[str]:
    """How ``release list`` shows one release's guarded rollout: where it stands, what comes next and when,
    each gate against its threshold, and why it stopped."""
    steps = ramp["steps"]
    where = f"step {steps.index(ramp['share']) + 1} of {len(steps)}" if ramp["share"] in steps else "override"
    state = "ended by a person" if ramp["ended"] else ramp["phase"]
    lines = [f"{label}: {state} at {ramp['share']}% ({where}; steps {', '.join(map(str, steps))})"]
    if ramp["next_step"] is not None and ramp["next_step_at"]:
        sample = ramp.get("step_sample")
        so_far = f", {sample} so far" if sample is not None else ""
        lines.append(
            f"  next: {ramp['next_step']}% from {when(ramp['next_step_at'])}, once the step has "
            f"{ramp['min_sample']} install attempts{so_far}"
        )
    elif ramp["phase"] == "ramping" and ramp["active"]:
        lines.append(f"  next: complete (100%) from {when(ramp['step_started_at'])} plus the step's dwell")
    for gate in ramp["gates"]:
        lines.append(f"  {gate['text']}")
    if ramp["halt_reason"]:
        lines.append(f"  stopped: {ramp['halt_reason']}")
    elif ramp.get("last_message") and ramp["phase"] == "ramping":
        lines.append(f"  last check: {ramp['last_message']}")
    for act in ramp["acts"]:
        step = f" to {act['step']}%" if act.get("step") else ""
        lines.append(f"  {act['act']}{step} by {act['by']} on {when(act['at'])}: {act['reason']}")
    return lines


def print_ramps(releases: list[Mapping[str, Any]]) -> None:
    """The guarded rollouts of ``releases`` (those that have one), below the release table."""
    ramps = [(r["label"], r["guarded_rollout"]) for r in releases if r.get("guarded_rollout")]
    if not ramps:
        return
    console.print("[bold]Guarded rollouts[/]")
    for label, ramp in ramps:
        for line in ramp_lines(label, ramp):
            say(line)


# -- overair deployment set-rollout-policy, show-rollout-policy, remove-rollout-policy


def policy_path(project_name: str, deployment: str) -> str:
    """The API path of a deployment's rollout policy."""
    return f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/rollout-policy"


def _show_policy(json_output: bool, project_name: str, answer: Mapping[str, Any]) -> None:
    def human() -> None:
        if answer["policy"] is None:
            say(
                f"{answer['deployment']} of {project_name} has no rollout policy: releases reach their "
                "share at once."
            )
            return
        say(f"{answer['deployment']} of {project_name}: {describe_policy(answer['policy'])}.")
        if answer.get("set_by"):
            reason = f": {answer['reason']}" if answer.get("reason") else ""
            say(f"Set by {answer['set_by']} on {when(answer['set_at'])}{reason}")

    emit(json_output, {"app": project_name, **documents.rollout_policy(answer)}, human)


def show_policy(
    project_name: Project, deployment: Deployment = "Production", json_output: JsonOutput = False
) -> None:
    """Show the deployment's rollout policy."""
    with Api() as api:
        answer = api.get(policy_path(project_name, deployment))
    _show_policy(json_output, project_name, answer)


def set_policy(
    project_name: Project,
    deployment: Deployment = "Production",
    ramp: Ramp = None,
    ramp_every: RampEvery = None,
    ramp_min_sample: RampMinSample = None,
    halt_on_failure_rate: HaltOnFailureRate = None,
    max_increase_over_previous: MaxIncrease = None,
    min_failures: MinFailures = None,
    confidence: Confidence = None,
    on_failure: OnFailure = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (stored with who set it).")] = "",
    json_output: JsonOutput = False,
) -> None:
    """Set the deployment's rollout policy: every release pushed to it from now on ramps under it (flags
    not given take the defaults: 1,5,25,50,100 every 12h, halt above 5%)."""
    fields = policy_fields(
        ramp,
        ramp_every,
        ramp_min_sample,
        halt_on_failure_rate,
        max_increase_over_previous,
        min_failures,
        confidence,
        on_failure,
    )
    with Api() as api:
        answer = api.put(policy_path(project_name, deployment), json={"policy": fields, "reason": reason})
    _show_policy(json_output, project_name, answer)


def remove_policy(project_name: Project, deployment: Deployment = "Production") -> None:
    """Remove the deployment's rollout policy (releases already ramping keep theirs)."""
    with Api() as api:
        api.delete(policy_path(project_name, deployment))
    say(f"{deployment} of {project_name} has no rollout policy any more.")


# -- overair release resume-rollout, override-rollout, end-rollout

Label = Annotated[str, typer.Option("--label", help="The release, e.g. v7.")]
Reason = Annotated[str, typer.Option("--reason", help="Why: stored with who acted and when.")]


def _act(
    project_name: str, deployment: str, label: str, body: dict[str, Any], json_output: bool, done: str
) -> None:
    path = f"/apps/{quote(project_name)}/deployments/{quote(deployment)}/releases/{quote(label)}/rollout"
    with Api() as api:
        release = api.post(path, json=body)

    def human() -> None:
        console.print(f"[green]{plain(done)}[/]", highlight=False)
        if release.get("guarded_rollout"):
            for line in ramp_lines(release["label"], release["guarded_rollout"]):
                say(line)

    emit(json_output, {"app": project_name, "release": documents.release(release)}, human)


def resume(
    project_name: Project,
    label: Label,
    reason: Reason,
    deployment: Deployment = "Production",
    json_output: JsonOutput = False,
) -> None:
    """Resume a paused or halted (or ended) rollout: its step starts again; a halted release is enabled."""
    body = {"act": "resume", "reason": reason}
    _act(project_name, deployment, label, body, json_output, f"Resumed the rollout of {label}.")


def override(
    project_name: Project,
    label: Label,
    step: Annotated[int, typer.Option("--step", min=1, max=100, help="The share (1-100) to set.")],
    reason: Reason,
    deployment: Deployment = "Production",
    json_output: JsonOutput = False,
) -> None:
    """Set the rollout's step (the share of devices); the policy ramps on from there."""
    body = {"act": "override", "step": step, "reason": reason}
    _act(project_name, deployment, label, body, json_output, f"{label} is at {step}%.")


def end(
    project_name: Project,
    label: Label,
    reason: Reason,
    deployment: Deployment = "Production",
    json_output: JsonOutput = False,
) -> None:
    """End the policy: the release stays at its share, and no step is taken any more."""
    body = {"act": "end", "reason": reason}
    _act(project_name, deployment, label, body, json_output, f"Ended the rollout policy of {label}.")
