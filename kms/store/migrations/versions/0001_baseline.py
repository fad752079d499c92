"""Baseline: the schema of the SQLite store before Alembic (db_version "2"), with server types.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-01

On SQLite the declared lengths are not enforced, so a pre-Alembic database (VARCHAR(128) ids, VARCHAR(255)
tags) is this schema and is only stamped. Types are spelled out here rather than imported from
kms.store.schema, so that later changes to the live tables never change what this revision creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

_MYSQL = ("mysql", "mariadb")
_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _key(length: int) -> sa.types.TypeEngine:
    """VARCHAR (no limit on PostgreSQL), VARBINARY on MySQL (exact comparison)."""
    return sa.String(length).with_variant(sa.String(), "postgresql").with_variant(mysql.VARBINARY(length), *_MYSQL)


def _blob() -> sa.types.TypeEngine:
    return sa.LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL)


def _long_text() -> sa.types.TypeEngine:
    return sa.Text().with_variant(mysql.LONGTEXT(), *_MYSQL)


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("id", _key(255), primary_key=True),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), nullable=False),
        sa.Column("object", _blob(), nullable=False),
        sa.Column("attributes", _blob(), nullable=False),
        sa.Column("object_type", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("owner", _key(1024), nullable=False),
        sa.Column("algorithm", sa.Integer()),
        sa.Column("length", sa.Integer()),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("tags_json", _long_text(), nullable=False),
        sa.Column("names_json", _long_text(), nullable=False),
        **_OPTIONS,
    )
    op.create_index("ix_objects_owner_type", "objects", ["owner", "object_type"])
    op.create_index("ix_objects_seq", "objects", ["seq"])
    if op.get_bind().dialect.name in _MYSQL:
        op.execute("ALTER TABLE objects MODIFY seq BIGINT NOT NULL AUTO_INCREMENT")
    op.create_table(
        "tags",
        sa.Column("id", _key(255), nullable=False),
        sa.Column("tag", _key(1024), nullable=False),
        sa.UniqueConstraint("id", "tag"),
        **_OPTIONS,
    )
    op.create_index("ix_tags_tag", "tags", ["tag"])
    op.create_table(
        "names",
        sa.Column("id", _key(255), nullable=False),
        sa.Column("name", _key(1024), nullable=False),
        **_OPTIONS,
    )
    op.create_index("ix_names_name", "names", ["name"])
    op.create_index("ix_names_id", "names", ["id"])
    op.create_table(
        "read_access",
        sa.Column("id", _key(255), nullable=False),
        sa.Column("userid", _key(1024), nullable=False),
        sa.Column("permissions", sa.String(2048), nullable=False),
        sa.UniqueConstraint("id", "userid"),
        **_OPTIONS,
    )
    parameters = op.create_table(
        "parameters",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text()),
        **_OPTIONS,
    )
    # Pre-Alembic servers check this row: they may open a database at this revision (same schema).
    op.bulk_insert(parameters, [{"name": "db_version", "value": "2"}])


def downgrade() -> None:
    for table in ("parameters", "read_access", "names", "tags", "objects"):
        op.drop_table(table)
