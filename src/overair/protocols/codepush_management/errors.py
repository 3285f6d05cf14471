"""The reference's error answers: :class:`Refused`, and :data:`ERRORS`, the one table of its texts.

Domain errors know nothing of CodePush; :func:`translate` gives each one the status and text that
``code-push-server`` answers in the operation at hand, so the CLIs print what their users expect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from overair.auth.accounts import NoSuchOrganisation
from overair.errors import Conflict, NotFound, OverairError, PayloadTooLarge
from overair.packages import InvalidBundle
from overair.problems import status_of
from overair.releases.errors import (
    AppNotFound,
    CrossVersionRollback,
    DeploymentNotFound,
    IdenticalRelease,
    InvalidRelease,
    NameTaken,
    ReleaseNotFound,
    RolloutInProgress,
)
from overair.releases.team import (
    AlreadyCollaborator,
    AlreadyOwner,
    NoSuchAccount,
    NotACollaborator,
    OwnerStays,
)

UNAUTHORIZED = (
    'The session or access key being used is invalid, please run "code-push-standalone login" again. '
    'If you are on an older version of the CLI, you may need to run "code-push-standalone logout" first to '
    "clear the session cache."
)
NOT_REGISTERED = "The specified e-mail address doesn't represent a registered user"
TOO_LARGE = "The provided resource is too large"
NO_FILE = "A deployment package must include a file."


class Refused(Exception):
    """An answer other than success: a status and the reference's text, or its list of invalid fields."""

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        fields: list[dict[str, str]] | None = None,
        as_json: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or json.dumps(fields, separators=(",", ":"))
        self.fields = fields
        self.as_json = as_json


Text = str | Callable[[Mapping[str, Any]], str]


def _labels(ctx: Mapping[str, Any]) -> list[str]:
    labels: list[str] = ctx["labels"]()
    return labels


def _deployment_taken(ctx: Mapping[str, Any]) -> str:
    if ctx["name"].lower() in (n.lower() for n in ctx["deployment_names"]()):
        return f"A deployment named '{ctx['name']}' already exists."
    return f'The deployment key "{ctx["key"]}" is already used by another deployment.'


def _patch_rollout(ctx: Mapping[str, Any]) -> str:
    if ctx["current_rollout"] >= 100:
        return "Cannot update rollout value for a completed rollout release."
    return f'Rollout value must be greater than "{ctx["current_rollout"]}", the existing value.'


def _promote_refused(ctx: Mapping[str, Any]) -> str:
    if ctx["deployment"].lower() == ctx["destination"].lower():
        return "Cannot promote a deployment's release to the same deployment."
    return (
        f'The release to promote from "{ctx["deployment"]}" is disabled: promote it with --disabled false, '
        "enable it first (patch with --disabled false), or promote another release with --label."
    )


def _rollback_missing(ctx: Mapping[str, Any]) -> str:
    if ctx["label"]:
        return (
            f"Cannot perform rollback because the target release ({ctx['label']}) could not be found in the "
            "deployment history."
        )
    if not _labels(ctx):
        return "Cannot perform rollback because there are no releases on this deployment."
    return "Cannot perform rollback because there are no prior releases to rollback to."


def _rollback_identical(ctx: Mapping[str, Any]) -> str:
    labels = _labels(ctx)
    target = ctx["label"] or (labels[-2] if len(labels) > 1 else "")
    if ctx["label"] and labels and labels[-1] == ctx["label"]:
        return f"Cannot perform rollback because the target release ({target}) is already the latest release."
    return f"Cannot perform rollback because the target release ({target}) has the latest release's contents."


ERRORS: dict[tuple[str, type[Exception]], tuple[int, Text]] = {
    ("*", AppNotFound): (404, 'App "{app}" does not exist.'),
    ("*", DeploymentNotFound): (404, 'Deployment "{deployment}" does not exist.'),
    ("*", PayloadTooLarge): (413, TOO_LARGE),
    ("*", InvalidBundle): (400, "{error}"),
    ("*", NoSuchOrganisation): (404, 'Organisation "{org}" does not exist.'),
    ("app.add", NameTaken): (409, "An app named '{name}' already exists."),
    ("collaborator.add", NoSuchAccount): (404, NOT_REGISTERED),
    ("collaborator.add", AlreadyCollaborator): (
        409,
        "The given account is already a collaborator for this app.",
    ),
    ("collaborator.remove", NotACollaborator): (404, "The given email is not a collaborator for this app."),
    ("collaborator.remove", OwnerStays): (409, "Cannot remove the owner of the app from collaborator list."),
    ("transfer", NoSuchAccount): (404, NOT_REGISTERED),
    ("transfer", AlreadyOwner): (409, "The given account already owns the app."),
    ("app.rename", NameTaken): (409, "An app named '{name}' already exists."),
    ("deployment.add", NameTaken): (409, _deployment_taken),
    ("deployment.rename", NameTaken): (409, "A deployment named '{name}' already exists."),
    ("key.add", Conflict): (409, 'The access key "{name}" already exists.'),
    ("key.get", NotFound): (404, 'Access key "{key}" does not exist.'),
    ("key.remove", NotFound): (404, 'Access key "{key}" does not exist.'),
    ("key.patch", NotFound): (404, 'The access key "{key}" does not exist.'),
    ("key.patch", Conflict): (409, 'The access key "{name}" already exists.'),
    ("release", RolloutInProgress): (
        409,
        "Please update the previous release to 100% rollout before releasing a new package.",
    ),
    ("release", IdenticalRelease): (
        409,
        "The uploaded package was not released because it is identical to the contents of the specified "
        "deployment's current release.",
    ),
    ("patch", RolloutInProgress): (409, _patch_rollout),
    ("promote", ReleaseNotFound): (404, "Cannot promote from a deployment with no enabled releases."),
    ("promote", RolloutInProgress): (
        409,
        "Cannot promote to an unfinished rollout release unless it is already disabled.",
    ),
    ("promote", IdenticalRelease): (
        409,
        "The uploaded package was not promoted because it is identical to the contents of the targeted "
        "deployment's current release.",
    ),
    ("promote", InvalidRelease): (409, _promote_refused),
    ("rollback", ReleaseNotFound): (404, _rollback_missing),
    ("rollback", IdenticalRelease): (409, _rollback_identical),
    ("rollback", CrossVersionRollback): (
        409,
        "Cannot perform rollback to a different app version. Please perform a new release with the desired "
        "replacement package.",
    ),
}


def translate(operation: str, exc: OverairError | InvalidBundle, ctx: Mapping[str, Any]) -> Refused:
    """The reference's answer to a domain error raised during ``operation`` (see :data:`ERRORS`).

    An error the table does not name keeps overair's message, with 400 for invalid values.
    """
    for cls in type(exc).__mro__:
        entry = ERRORS.get((operation, cls)) or ERRORS.get(("*", cls))
        if entry is not None:
            status, text = entry
            values = {**ctx, "error": exc.message}
            return Refused(status, text(values) if callable(text) else text.format_map(values))
    status = status_of(exc) if isinstance(exc, OverairError) else 400
    return Refused(400 if status == 422 else status, exc.message)
