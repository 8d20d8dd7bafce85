"""The agent's durable storage for transactions, in one SQLite file (``journal.db``).

- ``txjournal``: write-ahead journal — each transaction step recorded before it is acted on.
- ``outbox``: messages to the server with idempotency keys (terminal id + gapless sequence).
- ``ejournal``: hash-chained (HMAC) electronic journal of what happened at the terminal.
- ``store.Store`` opens all three; ``db.Database.transaction()`` joins writes atomically.
"""
