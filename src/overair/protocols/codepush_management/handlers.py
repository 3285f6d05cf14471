"""The management operations, once for both dialects: read with the dialect's encoder, call the services in
a worker thread, translate domain errors (:func:`translate`), write with the dialect's encoder.

The account is the key's account; collaborators and transfers are overair's (:class:`TeamService`), with
the reference's Owner as overair's owner and its Collaborator as a release manager; in the App Center
dialect, ``/apps/<owner>/<app>`` names the app's real owner (an account or an organisation).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.responses import JSONResponse, Response

from overair.auth.principal import Action
from overair.protocols.codepush_management.calls import Call
from overair.protocols.codepush_management.errors import Refused
from overair.protocols.codepush_management.sharing import Sharing
from overair.protocols.codepush_management.uploads import receive_multipart
from overair.protocols.codepush_management.validation import (
    as_object,
    deployment_spec,
    key_errors,
    plan_patch,
    promote_request,
    publish_options,
    refuse_invalid,
    validate_package_info,
)
from overair.releases import rules
from overair.releases.read_model import DeploymentDetail
from overair.releases.schemas import PublishOptions, ReleaseOut, ReleasePatch

REFERENCE = rules.Policy(
    not_identical=rules.check_not_identical_to_last,
    rollout_change=rules.check_rollout_raised,
    rollback=rules.reference_rollback_plan,
    confirm_risks=False,
)
"""Where code-push-server's rules differ from overair's, both dialects apply the reference's: identical
content compared as it compares it, a rollout value must raise an unfinished rollout, and a rollback goes to
the release before the latest (whatever its state, copied as it is) and never to another app version."""


def _path(*parts: str) -> str:
    """``/apps/<name>/deployments/<name>`` from ``("apps", name, "deployments", name)``: names quoted."""
    return "".join(f"/{quote(p, safe='')}" if i % 2 else f"/{p}" for i, p in enumerate(parts))


class Handlers(Sharing):
    """Every operation of the CodePush management API, each ``async (Call) -> Response``."""

    # -- plumbing -------------------------------------------------------------------------------------

    async def _detail(self, call: Call, operation: str = "deployment.get") -> DeploymentDetail:
        return await self._on_deployment(call, operation, self.reads.detail)

    async def _then_detail(
        self,
        call: Call,
        operation: str,
        ctx: Mapping[str, Any],
        where: tuple[str, str],
        act: Callable[[], ReleaseOut],
    ) -> tuple[ReleaseOut, DeploymentDetail]:
        """Run a release operation, then read the deployment ``where`` (app, deployment) its release is in."""

        def both() -> tuple[ReleaseOut, DeploymentDetail]:
            release = act()
            return release, self.reads.detail(call.caller, *where)

        return await self.run(operation, ctx, both)

    # -- account and access keys ----------------------------------------------------------------------

    async def authenticated(self, _call: Call) -> Response:
        """``GET /authenticated``."""
        return JSONResponse({"authenticated": True})

    async def account(self, call: Call) -> Response:
        """``GET /account``, ``GET /user``: the key's account."""
        return call.answer(call.encoder.account(await self.me(call)))

    async def list_keys(self, call: Call) -> Response:
        """``GET /accessKeys``, ``GET /api_tokens``: secrets hidden."""
        keys = await self.run("key.list", {}, self.keys.list, call.caller)
        return call.answer(call.encoder.keys(keys))

    async def add_key(self, call: Call) -> Response:
        """``POST /accessKeys``, ``POST /api_tokens``: the secret is shown this once; ``ttl`` (ms) sets when
        it expires."""
        new = await call.encoder.read_key(call)
        refuse_invalid(key_errors(new.name, new.ttl, update=False), as_json=True)
        lifetime = dt.timedelta(milliseconds=new.ttl) if new.ttl else None
        ctx = {"name": new.name}
        created = await self.run("key.add", ctx, self.keys.create, call.caller, new.name, lifetime)
        location = "/accessKeys/" + quote(str(new.name), safe="")
        return call.answer(call.encoder.created_key(created), 201, location)

    async def get_key(self, call: Call) -> Response:
        """``GET /accessKeys/<friendlyName>``."""
        name = call.params["key"]
        key = await self.run("key.get", {"key": name}, self.keys.get, call.caller, name)
        return call.answer(call.encoder.key(key))

    async def patch_key(self, call: Call) -> Response:
        """``PATCH /accessKeys/<friendlyName>``: rename; a ``ttl`` (ms) makes it expire that long from now."""
        name = call.params["key"]
        body = await call.json()
        new_name, ttl = body.get("friendlyName"), body.get("ttl")
        refuse_invalid(key_errors(new_name, ttl, update=True), as_json=True)
        ctx = {"key": name, "name": new_name}
        if new_name:
            key = await self.run("key.patch", ctx, self.keys.rename, call.caller, name, new_name)
        else:
            key = await self.run("key.patch", ctx, self.keys.get, call.caller, name)
        if ttl:
            lifetime = dt.timedelta(milliseconds=ttl)
            key = await self.run("key.patch", ctx, self.keys.set_expiry, call.caller, key.name, lifetime)
        return call.answer(call.encoder.key(key))

    async def remove_key(self, call: Call) -> Response:
        """``DELETE /accessKeys/<friendlyName>``, ``DELETE /api_tokens/<id>`` (the id is the key's name)."""
        name = call.params["key"]
        await self.run("key.remove", {"key": name}, self.keys.revoke, call.caller, name)
        return Response(status_code=204)

    async def remove_sessions(self, call: Call) -> Response:
        """``DELETE /sessions/<machine>``: overair has no login sessions, only access keys."""
        raise Refused(404, f'There are no sessions associated with "{call.params["machine"]}."')

    # -- apps -----------------------------------------------------------------------------------------

    async def list_apps(self, call: Call) -> Response:
        """``GET /apps``."""
        return await self._apps(
            call, await self.run("app.list", {}, self.releases.apps.list_apps, call.caller)
        )

    async def add_app(self, call: Call) -> Response:
        """``POST /apps``, ``POST /orgs/<org>/apps`` (the organisation owns the app)."""
        spec, deployments = await call.encoder.read_app(call)
        org = call.params.get("org")
        create = self.releases.apps.create_app
        ctx = {"name": spec.name, "org": org}
        app = await self.run("app.add", ctx, create, call.caller, spec, deployments, org)
        # made by the caller, who owns it (the request's rights do not know it yet): no team to read
        return await self._app(call, app, [], 201, _path("apps", app.name))

    async def get_app(self, call: Call) -> Response:
        """``GET /apps/[<owner>/]<app>``."""
        app = await self._on_app(call, "app.get", self.releases.apps.get_app)
        return await self._app(call, app, await self._team_shown(call, app.name))

    async def rename_app(self, call: Call) -> Response:
        """``PATCH /apps/[<owner>/]<app>``."""
        name = call.params["app"]
        new_name = await call.encoder.read_app_name(call)
        ctx = {"app": name, "name": new_name}
        team = await self._team_shown(call, name)  # by the old name: the request's rights know no other
        if new_name is None:
            app = await self.run("app.rename", ctx, self.releases.apps.get_app, call.caller, name)
        else:
            rename = self.releases.apps.rename_app
            app = await self.run("app.rename", ctx, rename, call.caller, name, new_name)
        return await self._app(call, app, team)

    async def remove_app(self, call: Call) -> Response:
        """``DELETE /apps/[<owner>/]<app>``."""
        await self._on_app(call, "app.remove", self.releases.apps.remove_app)
        return Response(status_code=204)

    # -- deployments ----------------------------------------------------------------------------------

    async def list_deployments(self, call: Call) -> Response:
        """``GET …/deployments``: by name, each with its newest release."""
        details = await self._on_app(call, "deployment.list", self.reads.details)
        return call.answer(call.encoder.deployments(details, call.base))

    async def add_deployment(self, call: Call) -> Response:
        """``POST …/deployments`` with ``{"name", "key"?}``."""
        app = call.params["app"]
        body = await call.json()
        spec = deployment_spec(body.get("name"), body.get("key"))

        def names() -> list[str]:
            return self.reads.deployment_names(call.caller, app)

        ctx = {"app": app, "name": spec.name, "key": spec.key, "deployment_names": names}
        created = await self.run(
            "deployment.add", ctx, self.releases.deployments.add_deployment, call.caller, app, spec
        )
        location = _path("apps", app, "deployments", created.name)
        return call.answer(call.encoder.created_deployment(created), 201, location)

    async def get_deployment(self, call: Call) -> Response:
        """``GET …/deployments/<deployment>``."""
        detail = await self._detail(call)
        return call.answer(call.encoder.deployment(detail, call.base))

    async def rename_deployment(self, call: Call) -> Response:
        """``PATCH …/deployments/<deployment>`` with ``{"name"}``."""
        app, deployment = call.params["app"], call.params["deployment"]
        new_name = await call.encoder.read_deployment_name(call)
        if new_name is not None:
            ctx = {**call.params, "name": new_name}
            rename = self.releases.deployments.rename_deployment
            renamed = await self.run("deployment.rename", ctx, rename, call.caller, app, deployment, new_name)
            deployment = renamed.name
        detail = await self.run(
            "deployment.get", call.params, self.reads.detail, call.caller, app, deployment
        )
        return call.answer(call.encoder.deployment(detail, call.base))

    async def remove_deployment(self, call: Call) -> Response:
        """``DELETE …/deployments/<deployment>``."""
        await self._on_deployment(call, "deployment.remove", self.releases.deployments.remove_deployment)
        return Response(status_code=204)

    # -- releases -------------------------------------------------------------------------------------

    async def _publish(self, call: Call, archive: Path, options: PublishOptions) -> Response:
        app, deployment = call.params["app"], call.params["deployment"]

        def publish() -> ReleaseOut:
            return self.releases.releases.publish(call.caller, app, deployment, archive, options, REFERENCE)

        release, detail = await self._then_detail(call, "release", call.params, (app, deployment), publish)
        location = _path("apps", app, "deployments", deployment)
        return call.answer(call.encoder.package(release, detail, call.base), 201, location)

    async def _may_publish(self, call: Call) -> None:
        """Refuse a caller who may not publish to the deployment before its upload is read or staged."""
        require = functools.partial(
            call.caller.require, Action.PUBLISH, app=call.params["app"], deployment=call.params["deployment"]
        )
        await self.run("release", call.params, require)

    async def release(self, call: Call) -> Response:
        """``POST …/release``: multipart ``package`` (a zip) and ``packageInfo`` (JSON)."""
        await self._may_publish(call)
        archive, fields = await receive_multipart(
            call.request, "package", self.max_upload_bytes, self.scratch
        )
        try:
            info = call.encoder.release_info(fields)
            refuse_invalid(validate_package_info(info, all_optional=False))
            return await self._publish(call, archive, publish_options(info))
        finally:
            archive.unlink(missing_ok=True)

    async def start_upload(self, call: Call) -> Response:
        """``POST …/uploads``: where and with which token to send the package (``/upload/…`` here)."""
        await self._detail(call)
        await self._may_publish(call)
        upload_id, token = await anyio.to_thread.run_sync(self.uploads.create)
        body = {"id": upload_id, "package_asset_id": upload_id, "upload_domain": call.base, "token": token}
        return call.answer(body, 201)

    async def release_upload(self, call: Call) -> Response:
        """``POST …/releases`` naming a finished upload, with the release's properties."""
        body = await call.json()
        await self._may_publish(call)
        upload = as_object(body.get("release_upload"))
        upload_id, token = str(upload.get("id", "")), str(upload.get("token", ""))
        info = call.encoder.release_info(body)
        refuse_invalid(validate_package_info(info, all_optional=False))
        archive = await anyio.to_thread.run_sync(self.uploads.assemble, upload_id, token)
        options = publish_options(info)
        try:
            return await self._publish(call, archive, options)
        finally:
            archive.unlink(missing_ok=True)
            await anyio.to_thread.run_sync(self.uploads.discard, upload_id)

    async def patch_release(self, call: Call) -> Response:
        """``PATCH …/release``, ``PATCH …/releases/<label>``: 204 when nothing changes."""
        info = await call.encoder.read_package_info(call)
        refuse_invalid(validate_package_info(info, all_optional=True))
        detail = await self._detail(call, "patch")
        plan = plan_patch(detail.history, info)
        if not plan.changes:
            return Response(status_code=204)
        app, deployment = call.params["app"], call.params["deployment"]
        patch = ReleasePatch(label=plan.release.label, **plan.changes)
        ctx = {**call.params, "current_rollout": plan.release.rollout}
        changed = await self.run(
            "patch", ctx, self.releases.releases.patch, call.caller, app, deployment, patch, REFERENCE
        )
        return call.answer(call.encoder.package(changed, detail, call.base))

    async def history(self, call: Call) -> Response:
        """``GET …/history``, ``GET …/releases``: oldest first."""
        detail = await self._detail(call)
        return call.answer(call.encoder.history(detail, call.base))

    async def clear_history(self, call: Call) -> Response:
        """``DELETE …/history``, ``DELETE …/releases``: every release goes; the next one is v1 again."""
        await self._on_deployment(call, "history.clear", self.releases.deployments.clear_history)
        return Response(status_code=204)

    async def metrics(self, call: Call) -> Response:
        """``GET …/metrics``: per label, active devices, downloads, failures and installs."""
        activity = await self._on_deployment(call, "deployment.get", self.reads.activity)
        return call.answer(call.encoder.metrics(activity))

    async def promote(self, call: Call) -> Response:
        """``POST …/<source>/promote/<destination>``, ``POST …/<source>/promote_release/<destination>``."""
        info = await call.encoder.read_package_info(call)
        refuse_invalid(validate_package_info(info, all_optional=True))
        app, destination = call.params["app"], call.params["destination"]
        spec = promote_request(call.params["deployment"], destination, info)

        def promote() -> ReleaseOut:
            return self.releases.releases.promote(call.caller, app, spec, REFERENCE)

        release, detail = await self._then_detail(call, "promote", call.params, (app, destination), promote)
        location = _path("apps", app, "deployments", destination)
        return call.answer(call.encoder.package(release, detail, call.base), 201, location)

    async def rollback(self, call: Call) -> Response:
        """``POST …/rollback[/<label>]``, ``POST …/rollback_release``: older content comes back as a new
        label."""
        app, deployment = call.params["app"], call.params["deployment"]
        label = await call.encoder.read_rollback_label(call)

        def labels() -> list[str]:
            return self.reads.labels(call.caller, app, deployment)

        def rollback() -> ReleaseOut:
            return self.releases.releases.rollback(call.caller, app, deployment, label, policy=REFERENCE)

        ctx = {**call.params, "label": label, "labels": labels}
        release, detail = await self._then_detail(call, "rollback", ctx, (app, deployment), rollback)
        location = _path("apps", app, "deployments", deployment)
        return call.answer(call.encoder.package(release, detail, call.base), 201, location)
