"""Alembic migrations of the overair schema."""
