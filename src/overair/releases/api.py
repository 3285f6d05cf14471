"""Management API routes for apps, deployments and releases (FastAPI, under ``/api/v1``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from overair.auth.api import Caller
from overair.errors import Invalid, LengthRequired, PayloadTooLarge
from overair.inputs import UnreadableJson, parse_json, whole_number
from overair.packages import ManifestEntry
from overair.releases.domain import ReleaseDomain
from overair.releases.schemas import (
    AppCreate,
    AppOut,
    AppPatch,
    AppTransfer,
    BinaryOut,
    BinaryRegister,
    CollaboratorAdd,
    CollaboratorOut,
    CollaboratorRole,
    DeploymentCreate,
    DeploymentOut,
    DeploymentPolicyIn,
    DeploymentPolicyOut,
    DeploymentRename,
    FileEntry,
    NextRelease,
    ProductionFlag,
    PromoteRequest,
    PublishOptions,
    ReleaseOut,
    ReleasePatch,
    RollbackRequest,
    RolloutActIn,
    SigningKeyAdd,
    SigningKeyOut,
)
from overair.storage import spool

router = APIRouter(prefix="/api/v1", tags=["releases"])


def get_domain(request: Request) -> ReleaseDomain:
    """The release domain's services of the running app (wired in ``overair.app``)."""
    domain: ReleaseDomain = request.app.state.releases
    return domain


Service = Annotated[ReleaseDomain, Depends(get_domain)]


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One readable sentence out of a pydantic error."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or what
        parts.append(f"{where}: {error['msg']}")
    return f"Invalid {what}: " + "; ".join(parts)


@router.get("/apps", response_model=list[AppOut])
def list_apps(service: Service, caller: Caller) -> list[AppOut]:
    """Every app with its deployments."""
    return service.apps.list_apps(caller)


@router.post("/apps", response_model=AppOut, status_code=201)
def create_app(spec: AppCreate, service: Service, caller: Caller) -> AppOut:
    """Create an app with the deployments Production and Staging."""
    return service.apps.create_app(caller, spec)


@router.get("/apps/{app}", response_model=AppOut)
def get_app(app: str, service: Service, caller: Caller) -> AppOut:
    """One app."""
    return service.apps.get_app(caller, app)


@router.patch("/apps/{app}", response_model=AppOut)
def patch_app(app: str, body: AppPatch, service: Service, caller: Caller) -> AppOut:
    """Change the app's distribution mode (hybrid or store-only)."""
    return service.apps.set_distribution(caller, app, body.distribution)


@router.delete("/apps/{app}", status_code=204)
def remove_app(app: str, service: Service, caller: Caller) -> Response:
    """Delete the app with its deployments and releases."""
    service.apps.remove_app(caller, app)
    return Response(status_code=204)


@router.get("/apps/{app}/binaries", response_model=list[BinaryOut])
def list_binaries(app: str, service: Service, caller: Caller) -> list[BinaryOut]:
    """The app's registered store binaries and what they contain."""
    return service.binaries.list_binaries(caller, app)


@router.post("/apps/{app}/binaries", response_model=BinaryOut, status_code=201)
def register_binary(app: str, body: BinaryRegister, service: Service, caller: Caller) -> BinaryOut:
    """Register a store binary (version, build number) with its descriptor; again: update it."""
    return service.binaries.register_binary(caller, app, body)


@router.get("/apps/{app}/deployments", response_model=list[DeploymentOut])
def list_deployments(app: str, service: Service, caller: Caller) -> list[DeploymentOut]:
    """The app's deployments and their keys."""
    return service.deployments.list_deployments(caller, app)


@router.post("/apps/{app}/deployments", response_model=DeploymentOut, status_code=201)
def add_deployment(app: str, spec: DeploymentCreate, service: Service, caller: Caller) -> DeploymentOut:
    """Add a deployment (with a new key, or the given one)."""
    return service.deployments.add_deployment(caller, app, spec)


@router.patch("/apps/{app}/deployments/{deployment}", response_model=DeploymentOut)
def rename_deployment(
    app: str, deployment: str, body: DeploymentRename, service: Service, caller: Caller
) -> DeploymentOut:
    """Rename a deployment; its key stays."""
    return service.deployments.rename_deployment(caller, app, deployment, body.name)


@router.delete("/apps/{app}/deployments/{deployment}", status_code=204)
def remove_deployment(app: str, deployment: str, service: Service, caller: Caller) -> Response:
    """Delete a deployment and its releases."""
    service.deployments.remove_deployment(caller, app, deployment)
    return Response(status_code=204)


@router.put("/apps/{app}/deployments/{deployment}/production", response_model=DeploymentOut)
def set_production(
    app: str, deployment: str, body: ProductionFlag, service: Service, caller: Caller
) -> DeploymentOut:
    """Say whether the deployment counts as production (developers may not release to it)."""
    return service.team.set_production(caller, app, deployment, body.production)


@router.get("/apps/{app}/collaborators", response_model=list[CollaboratorOut])
def list_collaborators(app: str, service: Service, caller: Caller) -> list[CollaboratorOut]:
    """Everyone with a role on the app, and where the role comes from."""
    return service.team.collaborators(caller, app)


@router.post("/apps/{app}/collaborators", response_model=CollaboratorOut, status_code=201)
def add_collaborator(app: str, body: CollaboratorAdd, service: Service, caller: Caller) -> CollaboratorOut:
    """Give an account a role on the app (owners and admins)."""
    return service.team.add_collaborator(caller, app, body.account, body.role)


@router.patch("/apps/{app}/collaborators/{account}", response_model=CollaboratorOut)
def change_collaborator(
    app: str, account: str, body: CollaboratorRole, service: Service, caller: Caller
) -> CollaboratorOut:
    """Change a collaborator's role (owners and admins)."""
    return service.team.set_role(caller, app, account, body.role)


@router.delete("/apps/{app}/collaborators/{account}", status_code=204)
def remove_collaborator(app: str, account: str, service: Service, caller: Caller) -> Response:
    """Take a collaborator's role away (owners and admins; anyone may leave an app)."""
    service.team.remove_collaborator(caller, app, account)
    return Response(status_code=204)


@router.post("/apps/{app}/transfer", response_model=AppOut)
def transfer_app(app: str, body: AppTransfer, service: Service, caller: Caller) -> AppOut:
    """Give the app to another account or an organisation (owners); the previous owner stays an admin."""
    return service.team.transfer(caller, app, body.account, body.organisation)


@router.get("/apps/{app}/deployments/{deployment}/releases", response_model=list[ReleaseOut])
def history(app: str, deployment: str, service: Service, caller: Caller) -> list[ReleaseOut]:
    """The deployment's releases, oldest first, with their metrics."""
    return service.releases.history(caller, app, deployment)


@router.get("/apps/{app}/deployments/{deployment}/releases/{label}", response_model=ReleaseOut)
def get_release(app: str, deployment: str, label: str, service: Service, caller: Caller) -> ReleaseOut:
    """One release with its counters and its guarded rollout (step, next step and when, gates, reason)."""
    return service.rollouts.release(caller, app, deployment, label)


@router.post("/apps/{app}/deployments/{deployment}/releases/{label}/rollout", response_model=ReleaseOut)
def act_on_rollout(
    app: str, deployment: str, label: str, body: RolloutActIn, service: Service, caller: Caller
) -> ReleaseOut:
    """Resume a paused or halted guarded rollout, override its step, or end its policy; ``reason`` is
    stored with who acted."""
    return service.rollouts.act(caller, app, deployment, label, body.act, body.reason, body.step)


@router.get("/apps/{app}/deployments/{deployment}/rollout-policy", response_model=DeploymentPolicyOut)
def get_rollout_policy(app: str, deployment: str, service: Service, caller: Caller) -> DeploymentPolicyOut:
    """The deployment's guarded-rollout policy (``policy`` null: releases are not ramped automatically)."""
    return service.rollouts.policy(caller, app, deployment)


@router.put("/apps/{app}/deployments/{deployment}/rollout-policy", response_model=DeploymentPolicyOut)
def set_rollout_policy(
    app: str, deployment: str, body: DeploymentPolicyIn, service: Service, caller: Caller
) -> DeploymentPolicyOut:
    """Set the deployment's guarded-rollout policy; releases published from now on ramp under it."""
    return service.rollouts.set_policy(caller, app, deployment, body.policy, body.reason)


@router.delete("/apps/{app}/deployments/{deployment}/rollout-policy", response_model=DeploymentPolicyOut)
def remove_rollout_policy(app: str, deployment: str, service: Service, caller: Caller) -> DeploymentPolicyOut:
    """Remove the deployment's policy (releases already ramping keep theirs)."""
    return service.rollouts.set_policy(caller, app, deployment, None)


@router.get("/apps/{app}/deployments/{deployment}/releases/{label}/manifest", response_model=list[FileEntry])
def manifest(app: str, deployment: str, label: str, service: Service, caller: Caller) -> list[FileEntry]:
    """Every file of the release with its SHA-256 and size."""
    entries: list[ManifestEntry] = service.releases.manifest(caller, app, deployment, label)
    return [FileEntry(path=e.path, sha256=e.sha256, size=e.size) for e in entries]


async def _receive_upload(request: Request, limit: int) -> tuple[Path, PublishOptions]:
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is None:
        # without a length the multipart parser would spool the whole body before any limit applies
        raise LengthRequired(
            "Send the upload with a Content-Length header (chunked uploads are not accepted)."
        )
    if declared > limit:
        raise PayloadTooLarge(
            f"The upload is {declared:,} bytes, over the server's limit of {limit:,} bytes "
            "(OVERAIR_MAX_UPLOAD_BYTES)."
        )
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise Invalid(
            "Send the release as multipart/form-data with a file field `package` (the zip) and a text "
            "field `release` (JSON: target_version, build_number, rollout, mandatory, ...)."
        )
    try:
        form = await request.form(max_files=1, max_fields=10)
    except ClientDisconnect:
        raise  # not a malformed body: nobody is left to answer (the app logs it)
    except Exception as exc:  # malformed multipart bodies raise several exception types
        raise Invalid(f"The upload is not a readable multipart form: {exc}") from exc
    package = form.get("package")
    if not isinstance(package, UploadFile):
        raise Invalid("The upload has no file field `package`: attach the bundle zip as `package`.")
    raw = form.get("release")
    if not isinstance(raw, str):
        raise Invalid("The upload has no text field `release` with the release's JSON options.")
    try:
        options = PublishOptions.model_validate(parse_json(raw))
    except UnreadableJson as exc:
        raise Invalid(f"The `release` field is not JSON: {exc}.") from exc
    except ValidationError as exc:
        raise Invalid(describe_validation_error(exc, "release options")) from exc
    try:
        path = await spool(
            package,
            request.app.state.settings.resolved_temp_dir(),
            "overair-upload-",
            limit,
            lambda: PayloadTooLarge(
                f"The upload is over the server's limit of {limit:,} bytes (OVERAIR_MAX_UPLOAD_BYTES)."
            ),
        )
    finally:
        await form.close()
    return path, options


@router.post(
    "/apps/{app}/deployments/{deployment}/releases",
    response_model=ReleaseOut,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["package", "release"],
                        "properties": {
                            "package": {"type": "string", "format": "binary"},
                            "release": {"type": "string", "description": "PublishOptions as JSON"},
                        },
                    }
                }
            },
            "required": True,
        }
    },
)
async def publish(
    app: str, deployment: str, request: Request, service: Service, caller: Caller
) -> ReleaseOut:
    """Publish a bundle zip as the next release of the deployment."""
    path, options = await _receive_upload(request, request.app.state.settings.max_upload_bytes)
    try:
        return await anyio.to_thread.run_sync(
            service.releases.publish, caller, app, deployment, path, options
        )
    finally:
        path.unlink(missing_ok=True)


@router.patch("/apps/{app}/deployments/{deployment}/releases", response_model=ReleaseOut)
def patch_release(
    app: str, deployment: str, body: ReleasePatch, service: Service, caller: Caller
) -> ReleaseOut:
    """Change a release picked by ``label``, or the newest one matching ``match_target_version``."""
    return service.releases.patch(caller, app, deployment, body)


@router.patch("/apps/{app}/deployments/{deployment}/releases/{label}", response_model=ReleaseOut)
def patch_release_by_label(
    app: str, deployment: str, label: str, body: ReleasePatch, service: Service, caller: Caller
) -> ReleaseOut:
    """Change the release ``label``."""
    return service.releases.patch(caller, app, deployment, body.model_copy(update={"label": label}))


@router.post("/apps/{app}/promote", response_model=ReleaseOut, status_code=201)
def promote(app: str, body: PromoteRequest, service: Service, caller: Caller) -> ReleaseOut:
    """Publish a release of one deployment to another (Staging to Production by default)."""
    return service.releases.promote(caller, app, body)


@router.post("/apps/{app}/deployments/{deployment}/rollback", response_model=ReleaseOut, status_code=201)
def rollback(
    app: str, deployment: str, body: RollbackRequest, service: Service, caller: Caller
) -> ReleaseOut:
    """Republish an older release's content as a new label; refused (409) when that would leave devices of
    the newest release on it, unless ``target_version`` reaches them all, and when the release named is
    disabled or failing, unless ``confirm`` repeats its label."""
    return service.releases.rollback(
        caller,
        app,
        deployment,
        body.label,
        body.signed,
        target_version=body.target_version,
        confirm=body.confirm,
    )


@router.get("/apps/{app}/deployments/{deployment}/next-release", response_model=NextRelease)
def next_release(app: str, deployment: str, service: Service, caller: Caller) -> NextRelease:
    """The label and sequence number the next release gets: what a publisher puts in a signed manifest."""
    return service.deployments.next_release(caller, app, deployment)


@router.get("/apps/{app}/signing-keys", response_model=list[SigningKeyOut])
def list_signing_keys(app: str, service: Service, caller: Caller) -> list[SigningKeyOut]:
    """The app's publisher keys, active and retired."""
    return service.signing_keys.list_signing_keys(caller, app)


@router.post("/apps/{app}/signing-keys", response_model=SigningKeyOut, status_code=201)
def add_signing_key(app: str, body: SigningKeyAdd, service: Service, caller: Caller) -> SigningKeyOut:
    """Trust a public key for the app's releases; from then on unsigned releases are refused."""
    return service.signing_keys.add_signing_key(caller, app, body)


@router.post("/apps/{app}/signing-keys/{key_id}/retire", response_model=SigningKeyOut)
def retire_signing_key(app: str, key_id: str, service: Service, caller: Caller) -> SigningKeyOut:
    """Stop accepting releases signed with the key."""
    return service.signing_keys.retire_signing_key(caller, app, key_id)
