"""How the console words what a person can do about an error (the CLI words the same fixes as commands)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from overair.errors import Fix

_WORDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "create-app": lambda a: f'Create the app "{a["app"]}" first.',
    "add-deployment": lambda a: f'Add a deployment "{a["deployment"]}" to {a["app"]} first.',
    "list-releases": lambda a: "Pick one of the releases listed on the deployment's page.",
    "finish-rollout": lambda a: f"Finish the rollout of {a['label']} (raise it to 100%) on its release page.",
    "disable-release": lambda a: f"Or stop it: disable {a['label']} on its release page.",
    "end-rollout-on-publish": lambda a: (
        f"Or end the rollout of {a['label']} as part of the publish (with the CLI or the API), saying why."
    ),
    "change-rollout-policy": lambda a: f"Change the rollout policy's {a['field']} and try again.",
    "give-end-rollout-reason": lambda a: "Say why the running rollout ends: it is recorded with your name.",
    "give-reason": lambda a: "Say why: it is recorded with your name.",
    "set-rollout-policy": lambda a: f"Give {a['deployment']} a rollout policy first.",
    "enable-release": lambda a: f"Enable {a['label']} of {a['deployment']} first, on its release page.",
    "roll-back": lambda a: "Or roll the deployment back to its previous release.",
    "roll-back-for-target": lambda a: (
        f"If {a['label']}'s content runs on those binaries, republish it for {a['target_version']} with the "
        "CLI (rollback-update with the target version)."
    ),
    "publish-replacement": lambda a: f"Or publish a fixed bundle for {a['target_version']}.",
    "change-release": lambda a: f"Change {a['label']} itself instead (rollout, mandatory, description).",
    "allow-destructive-model-change": lambda a: (
        "If the change is intended, publish again allowing a destructive model change: devices then "
        "install it only after syncing."
    ),
    "register-binary": lambda a: "Register the app's store binaries so updates are checked against them.",
    "describe-bundle": lambda a: "Publish with the project's description (overair.json) in the bundle.",
    "zip-files-only": lambda a: "Zip files only, without folder entries.",
    "sign-release": lambda a: "Sign the release with the publisher's private key.",
    "add-signing-key": lambda a: f"Add a publisher key to {a['app']} first.",
    "list-signing-keys": lambda a: f"See {a['app']}'s signing keys on the app's page.",
    "republish-signed": lambda a: "Publish or promote it again with the new target, signed.",
    "choose-two-deployments": lambda a: "Choose two different deployments.",
    "sign-in": lambda a: "Sign in again with a valid access key.",
    "new-access-key": lambda a: "Ask an admin for a new access key and sign in with it.",
    "retry": lambda a: "Try again: another change happened at the same moment.",
    "create-access-key": lambda a: "Create another admin key first.",
    "confirm-release": lambda a: f"To do it anyway, type {a['label']} on the confirmation page.",
    # the refusal itself says who can grant a right; these say how
    "grant-role": lambda a: f"They can give {a['account']} the role {a['role']} on {a['app']}'s page.",
    "use-wider-key": lambda a: (
        f'You signed in with the key "{a["access_key"]}", which is limited: sign in with another key, or '
        "create one whose scope includes this."
    ),
    "ask-server-admin": lambda a: "Ask a server admin to do it, or to make your account a server admin.",
    "ask-organisation-admin": lambda a: f"They can make your account an admin of {a['organisation']}.",
}


TITLES = {
    "cross-site-request": "Cross-site request refused",
    "forged-form": "Form refused",
    "confirmation-required": "Confirmation needed",
    "last-key-manager": "The key stays",
    "creator-key": "The key stays",
    "key-outlives-creator": "Expiry refused",
    "name-taken": "Name taken",
    "database-down": "The database does not answer",
}
"""Error codes whose page gets a title of its own (the others: the status's title)."""


def console_fixes(fixes: Iterable[Fix]) -> list[str]:
    """Each fix as a sentence for a person in the browser; fixes the console has no words for are left out."""
    words = []
    for fix in fixes:
        word = _WORDS.get(fix.action)
        try:
            if word is not None:
                words.append(word(fix.args))
        except KeyError:  # a fix without the arguments its words need: the message alone must do
            continue
    return words
