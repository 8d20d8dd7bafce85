"""Alembic migrations of the server database; a package only so that installs ship it."""
