"""The management API's request and response bodies for apps, deployments and releases."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from overair.auth.roles import Role


class Distribution(enum.StrEnum):
    """Whether the server may offer bundles (hybrid) or only points users to the stores (store-only)."""

    HYBRID = "hybrid"
    STORE_ONLY = "store-only"


class Platform(enum.StrEnum):
    """Platforms an app ships on."""

    IOS = "ios"
    ANDROID = "android"


MAX_BUILD_NUMBER = 2**31 - 1
"""Build numbers are stored as 32-bit integers (Android's versionCode has the same limit)."""

_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$"
_NAME_HELP = "1-100 characters: letters, digits, spaces, '.', '_' and '-', starting with a letter or digit"


class AppCreate(BaseModel):
    """Create an app; it gets the deployments Production and Staging."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME, description=_NAME_HELP)
    platforms: list[Platform] = Field(default_factory=lambda: [Platform.IOS, Platform.ANDROID], min_length=1)
    distribution: Distribution = Distribution.HYBRID


class AppPatch(BaseModel):
    """Change an app's distribution mode."""

    model_config = ConfigDict(extra="forbid")
    distribution: Distribution


class DeploymentOut(BaseModel):
    """A deployment and its key."""

    name: str
    key: str
    created_at: dt.datetime
    latest_label: str | None = None
    production: bool = False
    """Whether the deployment counts as production (developers may not release to it)."""


class AppOut(BaseModel):
    """An app with its deployments."""

    name: str
    platforms: list[Platform]
    distribution: Distribution
    created_at: dt.datetime
    deployments: list[DeploymentOut]
    owner: str | None = None
    """The account or organisation that owns the app."""
    owner_is_organisation: bool = False
    """Whether ``owner`` names an organisation (else an account)."""


class DeploymentCreate(BaseModel):
    """Add a deployment, optionally with a given key (to keep the keys of apps moved from another server)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME, description=_NAME_HELP)
    key: str | None = Field(
        default=None,
        max_length=1000,
        description="10-100 letters, digits, '_' or '-' (rules.DEPLOYMENT_KEY); default: a new random key.",
    )


class DeploymentRename(BaseModel):
    """Rename a deployment; its key stays."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME, description=_NAME_HELP)


class ProductionFlag(BaseModel):
    """Whether a deployment counts as production (developers may not release to it)."""

    model_config = ConfigDict(extra="forbid")
    production: bool


class CollaboratorAdd(BaseModel):
    """Give an account a role on an app."""

    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=100)
    role: Role = Role.DEVELOPER


class CollaboratorRole(BaseModel):
    """Change a collaborator's role."""

    model_config = ConfigDict(extra="forbid")
    role: Role


class CollaboratorOut(BaseModel):
    """An account with a role on an app, and where the role comes from."""

    account: str
    email: str = ""
    role: Role
    source: str
    """"owner" (owns the app), "grant" (given on the app), or "organisation <name>"."""


class AppTransfer(BaseModel):
    """Give an app to another account or to an organisation (exactly one)."""

    model_config = ConfigDict(extra="forbid")
    account: str | None = Field(default=None, min_length=1, max_length=100)
    organisation: str | None = Field(default=None, min_length=1, max_length=100)


class FileEntry(BaseModel):
    """One file of a package's manifest."""

    path: str
    sha256: str
    size: int


class DiffOut(BaseModel):
    """A smaller download that brings devices from an older package to a release's package."""

    kind: str = Field(description="codepush-diff (CodePush clients) or delta (overair's native protocol)")
    base_hash: str
    base_labels: list[str] = Field(description="Labels of the deployment that have the base package.")
    size: int
    offered: bool = Field(description="Devices get it (a delta saving too little is kept but not offered).")


class ReleaseOut(BaseModel):
    """A release with its targeting, rollout and metrics."""

    label: str
    deployment: str
    package_hash: str
    size: int
    file_count: int
    target_version: str
    build_number: int | None
    rollout: int
    mandatory: bool
    disabled: bool
    disabled_by: str = Field(default="", description="Who disabled the release (empty while enabled).")
    disabled_at: dt.datetime | None = Field(default=None, description="When it was disabled.")
    disabled_reason: str = Field(default="", description="Why it was disabled (empty while enabled).")
    sync_before_update: bool
    description: str
    released_by: str
    released_at: dt.datetime
    method: str
    origin_label: str | None
    origin_deployment: str | None
    downloads: int
    installs: int
    failures: int
    rollbacks: int
    sequence: int = 0
    signed_manifest: str | None = Field(default=None, description="Signed manifest (base64), if signed.")
    signature: str | None = None
    signing_key_id: str | None = None
    platform: str | None = Field(default=None, description="The one platform it is for (None: every one).")
    runtime_version: str | None = Field(default=None, description="Expo: the runtime version it needs.")
    update_id: str | None = Field(default=None, description="Expo: the update id its manifest carries.")
    warnings: list[str] = Field(default_factory=list, description="Checks that could not be made.")
    guarded_rollout: RolloutOut | None = Field(
        default=None, description="The release's guarded rollout, when it ramps under a rollout policy."
    )


class GateOut(BaseModel):
    """One health gate's value against its threshold at the last evaluation."""

    gate: str = Field(description="failure-rate or previous-release")
    value: float | None = Field(description="The lower bound compared (None: nothing to compare yet).")
    threshold: float
    failures: int
    min_failures: int
    confidence: float
    fails: bool
    text: str = Field(description="The reading in words.")


class RolloutActOut(BaseModel):
    """Something a person (or a publish) did to a guarded rollout."""

    act: str = Field(description="resume, override, end or end-for-publish")
    by: str
    at: dt.datetime
    reason: str
    step: int | None = None


class RolloutPointOut(BaseModel):
    """A guarded rollout's share from a moment on (one stored rollout event): the ramp over time."""

    at: dt.datetime
    kind: str = Field(description="The rollout event: rollout-started, rollout-step, rollout-halted, ...")
    actor: str
    share: int = Field(description="The release's rollout percentage after the event.")


class RolloutOut(BaseModel):
    """Where a release's guarded rollout stands, why, and what comes next."""

    policy: dict[str, Any] = Field(description="The policy it ramps under (durations in seconds).")
    phase: str = Field(description="ramping, paused, halted, rolled-back, completed, promoted")
    active: bool = Field(
        description="Evaluated in the background (False once ended or waiting for a person)."
    )
    ended: bool = Field(default=False, description="A person ended the policy: the share stays as it is.")
    share: int
    steps: list[int]
    started_at: dt.datetime
    step_started_at: dt.datetime
    next_step: int | None = Field(description="The next share (None at the last step or when not ramping).")
    next_step_at: dt.datetime | None = Field(
        description="When the current step's dwell is met (the next step also waits for its sample)."
    )
    step_sample: int | None = Field(default=None, description="Install attempts during this step so far.")
    min_sample: int
    gates: list[GateOut] = Field(default_factory=list)
    last_verdict: str | None = None
    last_reason: str | None = None
    last_message: str | None = None
    last_evaluated_at: dt.datetime | None = None
    halt_reason: str = Field(default="", description="Why a gate stopped it (empty while none did).")
    acts: list[RolloutActOut] = Field(default_factory=list)


class ReleasePatch(BaseModel):
    """Change a pushed release. Pick it by ``label``, or by ``match_target_version`` (+ build number)."""

    model_config = ConfigDict(extra="forbid")
    label: str | None = Field(default=None, max_length=20)
    match_target_version: str | None = Field(default=None, max_length=200)
    match_build_number: int | None = Field(default=None, ge=0, le=MAX_BUILD_NUMBER)
    rollout: int | None = Field(default=None, ge=1, le=100)
    mandatory: bool | None = None
    disabled: bool | None = None
    description: str | None = Field(default=None, max_length=10_000)
    target_version: str | None = Field(default=None, min_length=1, max_length=200)
    build_number: int | None = Field(default=None, ge=0, le=MAX_BUILD_NUMBER)
    clear_build_number: bool = False
    confirm: str | None = Field(
        default=None,
        max_length=20,
        description="The release's label again, to enable a release that is failing (refused without it).",
    )


class SignedRelease(BaseModel):
    """A release manifest signed with the publisher's offline key (see ``overair.packages.signing``)."""

    model_config = ConfigDict(extra="forbid")
    manifest: str = Field(min_length=1, max_length=32_000_000, description="Canonical manifest, base64.")
    signature: str = Field(min_length=1, max_length=100, description="Ed25519 signature, base64.")


class PromoteRequest(BaseModel):
    """Copy a deployment's release to another deployment, with optional overrides."""

    model_config = ConfigDict(extra="forbid")
    source: str = "Staging"
    destination: str = "Production"
    label: str | None = None
    rollout: int | None = Field(default=None, ge=1, le=100)
    mandatory: bool | None = None
    disabled: bool | None = None
    description: str | None = Field(default=None, max_length=10_000)
    target_version: str | None = Field(default=None, min_length=1, max_length=200)
    signed: SignedRelease | None = None


class RollbackRequest(BaseModel):
    """Republish an older release's content (the previous one, or ``label``) as a new label."""

    model_config = ConfigDict(extra="forbid")
    label: str | None = None
    target_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Publish the content for this target instead of its own: needed when the older release "
        "does not reach every device of the newest one (give the newest one's target).",
    )
    signed: SignedRelease | None = None
    confirm: str | None = Field(
        default=None,
        max_length=20,
        description="``label`` again, to roll back to a disabled or failing release (refused without it).",
    )


class SigningKeyAdd(BaseModel):
    """A publisher public key to trust for an app's releases."""

    model_config = ConfigDict(extra="forbid")
    public_key: str = Field(min_length=1, max_length=1000, description='"ed25519:<base64>" or PEM.')
    name: str = Field(default="", max_length=100)


class SigningKeyOut(BaseModel):
    """A publisher key of an app; retired keys no longer sign new releases."""

    model_config = ConfigDict(from_attributes=True)  # read from the stored row, field by field

    key_id: str
    public_key: str
    name: str
    added_by: str
    added_at: dt.datetime
    retired_at: dt.datetime | None


class NextRelease(BaseModel):
    """The label and sequence number the next release of a deployment gets, for signing it."""

    label: str
    sequence: int


class ExpoTarget(BaseModel):
    """What an Expo update targets: one platform, and builds of one runtime version (compared exactly)."""

    model_config = ConfigDict(extra="forbid")
    platform: Literal["ios", "android"]
    runtime_version: str = Field(min_length=1, max_length=200)
    signed_manifest: str | None = Field(
        default=None,
        max_length=2_000_000,
        description="Code signing (docs/expo.md): the manifest's exact bytes (base64), built and signed by "
        "the publisher; devices are served these bytes with the signature.",
    )
    signature: str | None = Field(default=None, max_length=2000, description="RSA-SHA256, base64.")
    no_update_signature: str | None = Field(
        default=None, max_length=2000, description='The signature of {"type":"noUpdateAvailable"}.'
    )
    embedded_directive: str | None = Field(
        default=None,
        max_length=2000,
        description="A rollBackToEmbedded directive (base64) dated just after this update, and its "
        "signature: what devices of a signed app get when the deployment goes back to the binary.",
    )
    embedded_signature: str | None = Field(default=None, max_length=2000)
    keyid: str = Field(default="main", min_length=1, max_length=100)


class PublishOptions(BaseModel):
    """Targeting and rollout of a release being published."""

    model_config = ConfigDict(extra="forbid")
    target_version: str = Field(min_length=1, max_length=200)
    build_number: int | None = Field(default=None, ge=0, le=MAX_BUILD_NUMBER)
    rollout: int = Field(default=100, ge=1, le=100)
    mandatory: bool = False
    disabled: bool = False
    description: str = Field(default="", max_length=10_000)
    allow_destructive_model_change: bool = Field(
        default=False,
        description="Publish a destructive data-model change; devices install it only after syncing.",
    )
    signed: SignedRelease | None = None
    rollout_policy: dict[str, Any] | None = Field(
        default=None,
        description="A guarded-rollout policy for this release (fields of the deployment's policy; the "
        "missing ones take the defaults): it starts at the first step instead of ``rollout``. Default: the "
        "deployment's policy, if it has one.",
    )
    end_rollout: Literal["keep", "disable"] | None = Field(
        default=None,
        description="End the deployment's unfinished rollout as part of this publish: keep the running "
        "release at its share, or disable it (needs ``end_rollout_reason``).",
    )
    end_rollout_reason: str = Field(default="", max_length=2000)
    expo: ExpoTarget | None = Field(
        default=None,
        description="An Expo update (the archive holds expo.json): its platform and runtime version. "
        "Devices get it over the Expo Updates protocol; target_version is then ignored by them.",
    )


class DeploymentPolicyIn(BaseModel):
    """Set a deployment's guarded-rollout policy (every field optional: missing ones take the defaults)."""

    model_config = ConfigDict(extra="forbid")
    policy: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field(default="", max_length=2000)


class DeploymentPolicyOut(BaseModel):
    """A deployment's guarded-rollout policy (None: releases are not ramped automatically)."""

    deployment: str
    policy: dict[str, Any] | None
    set_by: str = ""
    set_at: dt.datetime | None = None
    reason: str = ""


class RolloutActIn(BaseModel):
    """A person's act on a release's guarded rollout: resume it (after a pause or halt), override its step,
    or end the policy (the release stays at its share)."""

    model_config = ConfigDict(extra="forbid")
    act: Literal["resume", "override", "end"]
    step: int | None = Field(default=None, ge=1, le=100, description="override: the share to set.")
    reason: str = Field(min_length=1, max_length=2000, description="Why: stored with who acted and when.")


class ReportStatus(enum.StrEnum):
    """What a device reports about a release."""

    DOWNLOADED = "downloaded"
    INSTALLED = "installed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    RUNNING = "running"
    """The app started on this label (sent once per start, at most once a day per label)."""


class BinaryRegister(BaseModel):
    """Register a store binary and what it contains."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=64, description="The binary's exact version, e.g. 1.0.0")
    build_number: int | None = Field(default=None, ge=0, le=MAX_BUILD_NUMBER)
    descriptor: dict[str, Any] = Field(
        description="What the binary contains (a binary descriptor, as overair.json)"
    )


class BinaryOut(BaseModel):
    """A registered store binary."""

    version: str
    build_number: int | None
    descriptor: dict[str, Any]
    registered_by: str
    registered_at: dt.datetime
