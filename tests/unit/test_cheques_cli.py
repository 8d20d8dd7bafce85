"""``branchline-server cheques purchaser remove``: the bank takes a purchaser off an account
(their enrolled face goes with them), audited with ``--actor``; an unknown one is refused
naming it (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from branchline.server.cheques.schema import cheque_audit, cheque_purchasers
from branchline.server.main import main
from branchline.server.storage import open_database
from tests.unit.sqlite_template import migrated_sqlite

ID_NUMBER = "110105196108040014"


def cheques(db: str, *argv: str) -> int:
    return main(["--db", db, "cheques", "--json", "--actor", "bank:kyc", *argv])


def test_a_purchaser_is_removed_audited_and_an_unknown_one_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = migrated_sqlite(tmp_path / "server.db")
    add = ["purchaser", "add", "--id", "P-1", "--account-id", "ACC-1"]
    assert cheques(db, *add, "--id-number", ID_NUMBER, "--name", "Li Lei") == 0
    capsys.readouterr()

    assert cheques(db, "purchaser", "remove", "--id", "P-1") == 0
    said = json.loads(capsys.readouterr().out)
    assert said == {"purchaser_id": "P-1", "removed": True, "face_deleted": False}
    engine = open_database(db)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(cheque_purchasers)).all() == []
            actions = [
                (r.actor, r.action, r.subject)
                for r in conn.execute(select(cheque_audit).order_by(cheque_audit.c.audit_id))
            ]
    finally:
        engine.dispose()
    assert actions[-1] == ("bank:kyc", "remove_purchaser", "P-1")

    assert cheques(db, "purchaser", "remove", "--id", "P-1") == 2
    out, err = capsys.readouterr()
    assert out == "" and "unknown_purchaser (id)" in err and "'P-1'" in err
