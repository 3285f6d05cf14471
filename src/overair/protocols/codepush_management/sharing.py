"""Who works on an app, in both dialects: collaborators and transfers over overair's
:class:`~overair.releases.team.TeamService` (the reference's Owner is overair's owner, its Collaborator a
release manager), and App Center's organisations."""

from __future__ import annotations

from starlette.responses import Response

from overair.protocols.codepush_management.calls import Call, Operations
from overair.protocols.codepush_management.encoders import appcenter_organisation


class Sharing(Operations):
    """Collaborators, transfers and organisations."""

    async def collaborators(self, call: Call) -> Response:
        """``GET /apps/<app>/collaborators``, ``GET /apps/<owner>/<app>/users``."""
        team = await self._team(call, call.params["app"])
        return call.answer(call.encoder.collaborators(team, await self.me(call)))

    async def add_collaborator(self, call: Call) -> Response:
        """``POST /apps/<app>/collaborators/<email>`` (a release manager, as the reference's Collaborator),
        ``POST /apps/<owner>/<app>/invitations`` (the role App Center's invitation names)."""
        app = call.params["app"]
        who, role = await call.encoder.read_invitation(call)
        add = self.releases.team.add_collaborator
        await self.run("collaborator.add", {"app": app, "email": who}, add, call.caller, app, who, role)
        return call.encoder.created()

    async def remove_collaborator(self, call: Call) -> Response:
        """``DELETE /apps/<app>/collaborators/<email>``,
        ``DELETE /apps/<owner>/<app>/invitations/<email>``."""
        app, who = call.params["app"], call.params["email"]
        remove = self.releases.team.remove_collaborator
        await self.run("collaborator.remove", {"app": app, "email": who}, remove, call.caller, app, who)
        return Response(status_code=204)

    async def transfer(self, call: Call) -> Response:
        """``POST /apps/<app>/transfer/<email>`` (to an account),
        ``POST /apps/<owner>/<app>/transfer/<owner>`` (to an organisation, else an account)."""
        app = call.params["app"]
        team = self.releases.team
        if "org" in call.params:
            target = call.params["org"]
            done = await self.run(
                "transfer", {"app": app, "email": target}, team.transfer_to, call.caller, app, target
            )
        else:
            target = call.params["email"]
            done = await self.run(
                "transfer", {"app": app, "email": target}, team.transfer, call.caller, app, target
            )
        return call.encoder.transferred(done, await self.me(call))

    # -- App Center's organisations ---------------------------------------------------------------------

    async def organisations(self, call: Call) -> Response:
        """``GET /orgs``: the organisations the account belongs to."""
        orgs = await self.run("org", {}, self.accounts.organisations, call.caller)
        return call.answer([appcenter_organisation(o) for o in orgs])

    async def organisation(self, call: Call) -> Response:
        """``GET /orgs/<org>``."""
        org = call.params["org"]
        found = await self.run("org", {"org": org}, self.accounts.organisation, call.caller, org)
        return call.answer(appcenter_organisation(found))

    async def organisation_apps(self, call: Call) -> Response:
        """``GET /orgs/<org>/apps``: the apps the organisation owns (that the caller may see)."""
        org = call.params["org"]
        await self.run("org", {"org": org}, self.accounts.organisation, call.caller, org)
        apps = await self.run("app.list", {}, self.releases.apps.list_apps, call.caller)
        return await self._apps(call, [a for a in apps if a.owner_is_organisation and a.owner == org])
