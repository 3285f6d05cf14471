"""How the CLI words what a user can do about a refusal: the server sends fixes as actions with arguments
(``{"action": "finish-rollout", "label": "v1", "deployment": "Production"}``), and only the CLI knows its
commands and flags."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from overair.cli.policy_flags import POLICY_FLAGS


def _deployment(a: Mapping[str, Any]) -> str:
    return f" --deployment {a['deployment']}" if a.get("deployment") else ""


def _app(a: Mapping[str, Any]) -> str:
    return f' --project-name "{a["app"]}"' if a.get("app") else ""


_COMMANDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "create-app": lambda a: f'Create it with: overair app create "{a["app"]}"',
    "add-deployment": lambda a: f'Add it with: overair deployment add{_app(a)} "{a["deployment"]}"',
    "list-releases": lambda a: "See them with: overair release list" + _deployment(a),
    "pick-label": lambda a: "Pass --label to pick one.",
    "finish-rollout": lambda a: (
        f"Finish it with: overair release patch-update --label {a['label']}{_deployment(a)} "
        "--rollout-percentage 100"
    ),
    "disable-release": lambda a: (
        f"Or stop it with: overair release patch-update --label {a['label']}{_deployment(a)} --disabled true"
    ),
    "end-rollout-on-publish": lambda a: (
        "Or end it as part of this push: add --end-rollout keep (or disable) --end-rollout-reason WHY"
    ),
    "change-rollout-policy": lambda a: (
        f"Change {POLICY_FLAGS[a['field']]} and try again."
        if a["field"] in POLICY_FLAGS
        else f"Change the rollout policy's {a['field']} and try again."
    ),
    "give-end-rollout-reason": lambda a: "Add --end-rollout-reason WHY: it is recorded with your name.",
    "give-reason": lambda a: "Add --reason WHY: it is recorded with your name.",
    "set-rollout-policy": lambda a: (
        "Give it a policy with: overair deployment set-rollout-policy"
        + _deployment(a)
        + " (or push with --ramp)"
    ),
    "enable-release": lambda a: (
        f"Name another --label, or enable it first with: overair release patch-update --label {a['label']}"
        f"{_deployment(a)} --disabled false"
    ),
    "confirm-release": lambda a: f"If you are sure, run the same command again with --confirm {a['label']}",
    "roll-back": lambda a: "Or roll back with: overair release rollback-update" + _deployment(a),
    "roll-back-for-target": lambda a: (
        f"If {a['label']}'s content runs on those binaries, republish it for them: overair release "
        f'rollback-update --label {a["label"]} --target-version "{a["target_version"]}"{_deployment(a)}'
    ),
    "publish-replacement": lambda a: (
        f"Or push a fixed bundle for them: overair release push-update --target-version "
        f'"{a["target_version"]}"'
        + (f" --build-number {a['build_number']}" if a.get("build_number") else "")
        + _deployment(a)
        + " --bundle DIR"
    ),
    "change-release": lambda a: (
        f"Change {a['label']} with: overair release patch-update --label {a['label']}"
    ),
    "allow-destructive-model-change": lambda a: (
        "If the change is intended, push with --allow-destructive-model-change: devices then install it only "
        "after syncing."
    ),
    "register-binary": lambda a: "Register store binaries with `overair binary register`.",
    "describe-bundle": lambda a: "Push with --project-dir to describe the bundle.",
    "zip-files-only": lambda a: "Zip files only, as `overair release push-update --bundle FOLDER` does.",
    "sign-release": lambda a: "Pass --signing-key FILE with the private key made by `overair keys generate`.",
    "add-signing-key": lambda a: f"Add one first with: overair keys add --app {a['app']} PUBLIC_KEY",
    "list-signing-keys": lambda a: f"See them with: overair keys list --app {a['app']}",
    "republish-signed": lambda a: (
        "Publish or promote it again with the new target, signed with --signing-key."
    ),
    "choose-two-deployments": lambda a: "Name two different deployments with --from and --to.",
    "sign-in": lambda a: "Log in with `overair login --server URL --access-key KEY`.",
    "new-access-key": lambda a: "Ask an admin for a new key (overair access-key create) and log in again.",
    "retry": lambda a: "Run the command again.",
    "create-access-key": lambda a: "Create one with: overair access-key create NAME",
    # the refusal itself says who can grant a right (protocol clients show nothing else); these say how
    "grant-role": lambda a: (
        f'They can give it with: overair collaborator set-role --app "{a["app"]}" {a["account"]} {a["role"]}'
    ),
    "use-wider-key": lambda a: (
        f'The key "{a["access_key"]}" is limited: log in with another key, or create one whose scope '
        "includes this with: overair access-key create NAME --app APP --deployment DEPLOYMENT --action ACTION"
    ),
    "ask-server-admin": lambda a: "Ask a server admin to do it, or to make your account a server admin.",
    "ask-organisation-admin": lambda a: (
        f'They can make you an admin with: overair organisation add-member "{a["organisation"]}" ACCOUNT '
        "--role admin"
    ),
    "list-webhooks": lambda a: f'See them with: overair webhook list "{a["app"]}"',
}


def cli_hints(fixes: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each fix the server sent, as the command a user types; fixes the CLI has no words for are left out."""
    hints = []
    for fix in fixes:
        if not isinstance(fix, Mapping):
            continue
        word = _COMMANDS.get(str(fix.get("action")))
        if word is None:
            continue
        try:
            hints.append(word(fix))
        except KeyError:  # a fix without the arguments this CLI version words it with
            continue
    return hints
