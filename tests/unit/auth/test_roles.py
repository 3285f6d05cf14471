"""The rights rules of :mod:`overair.auth.roles` and :class:`Principal.require`, as tables."""

from __future__ import annotations

import itertools

import pytest

from overair.auth.actions import Action
from overair.auth.principal import AppNotFound, Forbidden, Principal, Surface
from overair.auth.roles import (
    ROLE_ACTIONS,
    Access,
    GrantRefused,
    KeyScope,
    OrgRole,
    Role,
    check_grant,
    effective_role,
    least_role,
    role_allows,
)

A = Action
OW, AD, RM, DV, VW = Role.OWNER, Role.ADMIN, Role.RELEASE_MANAGER, Role.DEVELOPER, Role.VIEWER

# role → action → (allowed on a non-production deployment, allowed on a production one)
ROLE_TABLE: list[tuple[Role, Action, bool, bool]] = [
    (OW, A.READ, True, True),
    (OW, A.PUBLISH, True, True),
    (OW, A.REMOVE_APPS, True, True),
    (OW, A.TRANSFER_APPS, True, True),
    (OW, A.MANAGE_COLLABORATORS, True, True),
    (AD, A.MANAGE_DEPLOYMENTS, True, True),
    (AD, A.MANAGE_COLLABORATORS, True, True),
    (AD, A.MANAGE_SIGNING_KEYS, True, True),
    (AD, A.MANAGE_APPS, True, True),
    (AD, A.PUBLISH, True, True),
    (AD, A.REMOVE_APPS, False, False),
    (AD, A.TRANSFER_APPS, False, False),
    (RM, A.PUBLISH, True, True),
    (RM, A.CHANGE_RELEASES, True, True),
    (RM, A.MANAGE_BINARIES, True, True),
    (RM, A.MANAGE_DEPLOYMENTS, False, False),
    (RM, A.MANAGE_COLLABORATORS, False, False),
    (RM, A.MANAGE_SIGNING_KEYS, False, False),
    (DV, A.READ, True, True),
    (DV, A.PUBLISH, True, False),
    (DV, A.CHANGE_RELEASES, True, False),
    (DV, A.MANAGE_BINARIES, True, True),
    (DV, A.MANAGE_DEPLOYMENTS, False, False),
    (VW, A.READ, True, True),
    (VW, A.PUBLISH, False, False),
    (VW, A.CHANGE_RELEASES, False, False),
    (VW, A.MANAGE_BINARIES, False, False),
]


@pytest.mark.parametrize(("role", "action", "elsewhere", "on_production"), ROLE_TABLE)
def test_what_each_role_may_do(role: Role, action: Action, elsewhere: bool, on_production: bool) -> None:
    assert role_allows(role, action, production=False) is elsewhere
    assert role_allows(role, action, production=True) is on_production


def test_roles_are_nested_from_viewer_to_owner() -> None:
    ordered = [VW, DV, RM, AD, OW]
    for weaker, stronger in itertools.pairwise(ordered):
        assert ROLE_ACTIONS[weaker] <= ROLE_ACTIONS[stronger]


@pytest.mark.parametrize(
    ("owns", "org_role", "grant", "expected"),
    [
        (True, None, None, OW),
        (True, OrgRole.MEMBER, VW, OW),
        (False, OrgRole.ADMIN, None, OW),
        (False, OrgRole.MEMBER, None, VW),
        (False, OrgRole.MEMBER, DV, DV),  # a grant lifts a member on one app
        (False, OrgRole.ADMIN, VW, OW),  # and never lowers what the organisation gives
        (False, None, RM, RM),
        (False, None, None, None),
    ],
)
def test_an_accounts_role_is_the_highest_it_has(
    owns: bool, org_role: OrgRole | None, grant: Role | None, expected: Role | None
) -> None:
    assert effective_role(owns, org_role, grant) is expected


SCOPE = KeyScope.of(["App"], ["Staging"], ["publish"])


@pytest.mark.parametrize(
    ("scope", "action", "app", "deployment", "allowed"),
    [
        (KeyScope(), A.REMOVE_APPS, "Other", None, True),
        (SCOPE, A.PUBLISH, "App", "Staging", True),
        (SCOPE, A.PUBLISH, "App", "staging", True),  # deployments compare without case
        (SCOPE, A.PUBLISH, "App", "Production", False),
        (SCOPE, A.PUBLISH, "Other", "Staging", False),
        (SCOPE, A.CHANGE_RELEASES, "App", "Staging", False),
        (SCOPE, A.READ, "App", None, True),  # reading is part of every scope
        (SCOPE, A.READ, "App", "Production", True),
        (SCOPE, A.READ, "Other", None, False),
        (SCOPE, A.CREATE_APPS, None, None, False),  # an app-limited key acts on no other app
        (SCOPE, A.MANAGE_ACCESS_KEYS, None, None, False),
        (KeyScope.of(None, None, ["manage-access-keys"]), A.MANAGE_ACCESS_KEYS, None, None, True),
        (KeyScope.of(None, ["Staging"], None), A.MANAGE_SIGNING_KEYS, "App", None, False),
    ],
)
def test_a_key_scope_only_narrows(
    scope: KeyScope, action: Action, app: str | None, deployment: str | None, allowed: bool
) -> None:
    assert scope.allows(action, app, deployment) is allowed


@pytest.mark.parametrize(
    ("child", "parent", "within"),
    [
        (KeyScope(), KeyScope(), True),
        (SCOPE, KeyScope(), True),
        (KeyScope(), SCOPE, False),
        (KeyScope.of(["App"], ["Staging"], ["publish"]), SCOPE, True),
        (KeyScope.of(["App", "Other"], ["Staging"], ["publish"]), SCOPE, False),
        (KeyScope.of(["App"], None, ["publish"]), SCOPE, False),
        (KeyScope.of(["App"], ["Staging"], ["publish", "change-releases"]), SCOPE, False),
    ],
)
def test_a_key_makes_only_keys_no_wider_than_itself(child: KeyScope, parent: KeyScope, within: bool) -> None:
    assert child.within(parent) is within


DEV = Access(
    "dana",
    roles={"App": DV, "Seen": VW},
    production=frozenset({("App", "production")}),
    stewards={"App": ("alice",), "Seen": ("alice", "bob")},
    organisations={"Team": OrgRole.MEMBER, "Lead": OrgRole.ADMIN},
)
ADMIN = Access("root", server_admin=True)


@pytest.mark.parametrize(
    ("access", "action", "app", "deployment", "organisation", "allowed"),
    [
        (DEV, A.PUBLISH, "App", "Staging", None, True),
        (DEV, A.PUBLISH, "App", "Production", None, False),
        (DEV, A.PUBLISH, "App", "PRODUCTION", None, False),
        (DEV, A.READ, "Hidden", None, None, False),
        (DEV, A.CREATE_APPS, None, None, None, True),  # every account may create apps (it owns them)
        (DEV, A.MANAGE_ACCOUNTS, None, None, None, False),
        (DEV, A.OPERATE_SERVER, None, None, None, False),
        (DEV, A.MANAGE_ORGANISATIONS, None, None, "Team", False),
        (DEV, A.MANAGE_ORGANISATIONS, None, None, "Lead", True),
        (ADMIN, A.REMOVE_APPS, "Anything", None, None, True),
        (ADMIN, A.MANAGE_ACCOUNTS, None, None, None, True),
        (Access("root", server_admin=True, scope=SCOPE), A.REMOVE_APPS, "App", None, None, False),
        (Access("dana", roles={"App": DV}, scope=SCOPE), A.PUBLISH, "App", "Staging", None, True),
        # the key's scope never adds to the account: a viewer's publish key still cannot publish
        (Access("vic", roles={"App": VW}, scope=SCOPE), A.PUBLISH, "App", "Staging", None, False),
    ],
)
def test_access_is_the_account_narrowed_by_the_key(
    access: Access,
    action: Action,
    app: str | None,
    deployment: str | None,
    organisation: str | None,
    allowed: bool,
) -> None:
    assert access.allows(action, app, deployment, organisation) is allowed


def _principal(access: Access) -> Principal:
    return Principal("dana-laptop", 7, Surface.API, access=access)


def test_an_app_the_principal_cannot_see_answers_as_unknown_listing_only_what_it_sees() -> None:
    with pytest.raises(AppNotFound) as refused:
        _principal(DEV).require(A.REMOVE_APPS, app="Hidden")
    assert refused.value.message == 'No app named "Hidden" (apps: App, Seen).'


def test_a_refusal_names_the_missing_right_and_who_can_grant_it() -> None:
    with pytest.raises(Forbidden) as refused:
        _principal(DEV).require(A.PUBLISH, app="App", deployment="Production")
    assert refused.value.message == (
        '"dana-laptop" may not publish on App/Production (publish is missing: the account "dana" is a '
        "developer of App, and Production is a production deployment). Who can grant it: the owners and "
        "admins of App (alice)."
    )
    with pytest.raises(Forbidden, match=r"the owners and admins of Seen \(alice, bob\)"):
        _principal(DEV).require(A.PUBLISH, app="Seen", deployment="Staging")
    with pytest.raises(Forbidden, match="only a server admin may"):
        _principal(DEV).require(A.MANAGE_ACCOUNTS)


def test_a_scope_refusal_names_the_keys_limits_without_other_apps() -> None:
    scoped = Access("dana", roles={"App": DV}, scope=KeyScope.of(["App", "Secret"], ["Staging"], ["publish"]))
    with pytest.raises(Forbidden) as refused:
        _principal(scoped).require(A.CHANGE_RELEASES, app="App", deployment="Staging")
    assert "limited to apps App; deployments staging; actions publish" in refused.value.message
    assert "Secret" not in refused.value.message


def test_the_server_itself_may_do_everything() -> None:
    assert Principal("overair", None, Surface.SYSTEM).may(A.MANAGE_ACCOUNTS)


@pytest.mark.parametrize(
    ("actor", "current", "wanted", "allowed"),
    [
        (None, OW, None, True),  # a server admin changes anything
        (OW, None, OW, True),  # owners make owners
        (OW, OW, None, True),
        (AD, None, AD, True),
        (AD, VW, RM, True),
        (AD, None, OW, False),  # admins neither make nor unmake owners
        (AD, OW, VW, False),
        (AD, OW, None, False),
    ],
)
def test_only_owners_give_or_take_the_owner_role(
    actor: Role | None, current: Role | None, wanted: Role | None, allowed: bool
) -> None:
    if allowed:
        check_grant("Shop", actor, current, wanted)
    else:
        with pytest.raises(GrantRefused):
            check_grant("Shop", actor, current, wanted)


@pytest.mark.parametrize(
    ("action", "production", "role"),
    [
        (A.READ, False, VW),
        (A.PUBLISH, False, DV),
        (A.PUBLISH, True, RM),
        (A.MANAGE_COLLABORATORS, False, AD),
        (A.TRANSFER_APPS, False, OW),
        (A.MANAGE_ACCOUNTS, False, None),
    ],
)
def test_the_least_role_that_would_do_is_what_a_refusal_asks_for(
    action: Action, production: bool, role: Role | None
) -> None:
    assert least_role(action, production) is role
