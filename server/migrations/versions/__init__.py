"""Alembic revisions (Alembic skips this file); a package only so that installs ship it."""
