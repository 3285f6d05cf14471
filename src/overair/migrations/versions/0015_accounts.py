"""Accounts, organisations, per-app grants, app owners, production deployments and scoped keys

Existing installations keep working: one admin account (a server admin) is made, and it owns every
existing access key and every existing app. Deployments named Production count as production.

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0016"
branch_labels = None
depends_on = None

FIRST_ACCOUNT = "admin"


def _add_reference(table: str, column: str) -> None:
    """Add a nullable id column with its index, without rebuilding ``table`` (on SQLite a rebuild drops the
    old table, which deletes the rows of every table referencing it, as foreign keys are on; SQLite cannot
    add a named foreign key to an existing table, so these ids are kept right by the services)."""
    op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
    op.create_index(f"ix_{table}_{column}", table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=200), server_default="", nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("server_admin", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "organisation_members",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_organisation_members_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_members_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", "account_id", name=op.f("pk_organisation_members")),
    )
    with op.batch_alter_table("organisation_members") as batch_op:
        batch_op.create_index(batch_op.f("ix_organisation_members_account_id"), ["account_id"], unique=False)
    op.create_table(
        "app_grants",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_app_grants_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_app_grants_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "account_id", name=op.f("pk_app_grants")),
    )
    with op.batch_alter_table("app_grants") as batch_op:
        batch_op.create_index(batch_op.f("ix_app_grants_account_id"), ["account_id"], unique=False)

    accounts = sa.table(
        "accounts",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("email", sa.String),
        sa.column("disabled", sa.Boolean),
        sa.column("server_admin", sa.Boolean),
        sa.column("created_at", sa.DateTime),
    )
    op.bulk_insert(
        accounts,
        [
            {
                "id": 1,
                "name": FIRST_ACCOUNT,
                "email": "",
                "disabled": False,
                "server_admin": True,
                "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":  # the explicit id leaves the sequence behind
        op.execute("SELECT setval(pg_get_serial_sequence('accounts', 'id'), 1)")

    _add_reference("access_keys", "account_id")
    for name in ("scope_apps", "scope_deployments", "scope_actions"):
        op.add_column("access_keys", sa.Column(name, sa.JSON(), nullable=True))
    op.execute("UPDATE access_keys SET account_id = 1")  # every existing key is the admin's
    _add_reference("apps", "owner_account_id")
    _add_reference("apps", "owner_organisation_id")
    op.execute("UPDATE apps SET owner_account_id = 1")
    op.add_column("deployments", sa.Column("production", sa.Boolean(), server_default="0", nullable=False))
    op.execute(
        sa.text("UPDATE deployments SET production = :yes WHERE lower(name) = 'production'").bindparams(
            yes=True
        )
    )


def downgrade() -> None:
    op.drop_column("deployments", "production")
    for table, column in (
        ("apps", "owner_organisation_id"),
        ("apps", "owner_account_id"),
        ("access_keys", "account_id"),
    ):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
        op.drop_column(table, column)
    for name in ("scope_actions", "scope_deployments", "scope_apps"):
        op.drop_column("access_keys", name)
    op.drop_table("app_grants")
    op.drop_table("organisation_members")
    op.drop_table("organisations")
    op.drop_table("accounts")
