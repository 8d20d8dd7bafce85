"""The dispatch server's database: schema, migrations and engine setup (SQLAlchemy Core)."""

# Every capability's tables join the one metadata, so schema checks always see all of them.
from branchline.server.ledger import schema as _ledger_schema  # noqa: E402,F401,I001
from branchline.server.dispatch import schema as _dispatch_schema  # noqa: E402,F401,I001
from branchline.server.dispatch import call_schema as _call_schema  # noqa: E402,F401,I001
from branchline.server.tube import schema as _tube_schema  # noqa: E402,F401,I001
from branchline.server.recordings import schema as _recordings_schema  # noqa: E402,F401,I001
from branchline.server.mobile import schema as _mobile_schema  # noqa: E402,F401,I001
from branchline.server.delivery import schema as _delivery_schema  # noqa: E402,F401,I001
from branchline.server.cheques import schema as _cheques_schema  # noqa: E402,F401,I001
from branchline.server.assistant import schema as _assistant_schema  # noqa: E402,F401,I001
from branchline.server.storage.engine import open_database, write_transaction
from branchline.server.storage.schema import devices, fleet_events, metadata, terminals

__all__ = ["devices", "fleet_events", "metadata", "open_database", "terminals", "write_transaction"]
