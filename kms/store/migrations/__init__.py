"""Alembic migrations of the SQL schema (see kms.store.schema for how and when they run).

Adding a revision: copy the newest script in versions/ to `NNNN_<what>.py`, set `revision` to the file's stem
and `down_revision` to the previous one, write `upgrade()` with `alembic.op` (SQLite runs in batch mode, so
ALTERs work there too), change the tables in kms/store/schema.py to match, and append the revision to
`kms.store.schema.REVISIONS`. tests/store/test_schema.py checks that the scripts and the tables agree on every
backend. A revision that pre-Alembic servers must not run against also sets `parameters.db_version` to its id.
No alembic.ini: `kms.store.schema.run_alembic` configures Alembic in code.
"""
