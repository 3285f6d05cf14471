"""What a principal may be allowed to do (the vocabulary of :mod:`overair.auth.roles`)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What a principal may be allowed to do."""

    READ = "read"
    CREATE_APPS = "create-apps"
    MANAGE_APPS = "manage-apps"
    """Rename an app, switch its distribution."""
    REMOVE_APPS = "remove-apps"
    TRANSFER_APPS = "transfer-apps"
    MANAGE_DEPLOYMENTS = "manage-deployments"
    MANAGE_COLLABORATORS = "manage-collaborators"
    MANAGE_BINARIES = "manage-binaries"
    MANAGE_SIGNING_KEYS = "manage-signing-keys"
    PUBLISH = "publish"
    """Publish, promote to and roll back a deployment."""
    CHANGE_RELEASES = "change-releases"
    """Patch a deployment's releases (rollout, disabled, mandatory, ...)."""
    MANAGE_ACCESS_KEYS = "manage-access-keys"
    MANAGE_ORGANISATIONS = "manage-organisations"
    MANAGE_ACCOUNTS = "manage-accounts"
    """Create, list, disable and enable accounts: a server admin's right."""
    OPERATE_SERVER = "operate-server"
    """See the server's own work (background jobs): a server admin's right."""
