"""Errors of the release domain (each surface words them: ``overair.problems`` for HTTP)."""

from __future__ import annotations

from overair.auth.principal import AppNotFound as AppNotFound  # one class: a hidden app answers alike
from overair.errors import Conflict, Invalid, NotFound


class DeploymentNotFound(NotFound):
    """No deployment by that name (or key)."""


class ReleaseNotFound(NotFound):
    """No release matches the label or target given."""


class NameTaken(Conflict):
    """An app, deployment or key with that name already exists."""


class RolloutInProgress(Conflict):
    """The deployment's newest release is still rolling out."""


class IdenticalRelease(Conflict):
    """The content is the same as the current release for the same target."""


class CrossVersionRollback(Conflict):
    """A rollback would republish content for other binaries than the release it replaces reaches."""


class ConfirmationRequired(Conflict):
    """The action sends a disabled or failing release back to devices, and was not confirmed."""


class InvalidRelease(Invalid):
    """A release property is out of range or malformed."""


class FullReleaseRequired(Invalid):
    """The bundle needs a binary the devices do not have: only a store release can ship it."""


class DestructiveModelChange(Conflict):
    """The bundle's data model would break data stored with the model devices run now."""


class SignatureRequired(Invalid):
    """The app has signing keys and the release came without a signature."""


class BadSignature(Invalid):
    """The signature does not verify, or the signed manifest does not describe this release."""


class SequenceTaken(Conflict):
    """Another release got the sequence number or label first; sign again with fresh ones."""


class SigningKeyNotFound(NotFound):
    """No key with that id on the app."""
