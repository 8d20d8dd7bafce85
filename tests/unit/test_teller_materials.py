"""``branchline-teller materials``: a material whose bytes the server's retention deleted is
listed as deleted and not fetched with ``--save`` (the server would refuse it,
``material_deleted``); the others are still saved and checked."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from branchline.server.teller.teller import cmd_materials
from branchline.v1 import dispatch_pb2 as pb

KEPT = b"\x89PNG\r\n\x1a\n kept"


def task() -> pb.Task:
    found = pb.Task(task_id="TK-1")
    kept = found.materials.add(name="id-front.png", content_type="image/png", size=len(KEPT))
    kept.sha256 = hashlib.sha256(KEPT).hexdigest()
    gone = found.materials.add(name="bill.pdf", content_type="application/pdf", size=9)
    gone.sha256 = "ab" * 32
    gone.deleted_at.FromSeconds(1_780_000_000)
    return found


class FakeClient:
    """The two calls the command makes, answered as the server answers them."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.dispatch = SimpleNamespace(GetTask=self._get_task, GetMaterial=self._get_material)

    def call(self, method: Any, request: Any) -> Any:
        return method(request)

    def _get_task(self, request: pb.GetTaskRequest) -> pb.Task:
        return task()

    def _get_material(self, request: pb.GetMaterialRequest) -> pb.MaterialData:
        self.fetched.append(request.sha256)
        assert request.sha256 == hashlib.sha256(KEPT).hexdigest(), "a deleted one was fetched"
        return pb.MaterialData(data=KEPT)


def run(tmp_path: Path, as_json: bool) -> tuple[FakeClient, int]:
    client = FakeClient()
    args = argparse.Namespace(task="TK-1", save=tmp_path / "saved", json=as_json)
    return client, cmd_materials(cast(Any, client), args)


def test_a_deleted_material_is_listed_as_deleted_and_not_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, code = run(tmp_path, as_json=False)
    out = capsys.readouterr().out
    assert code == 0
    assert client.fetched == [hashlib.sha256(KEPT).hexdigest()]
    assert (tmp_path / "saved" / "id-front.png").read_bytes() == KEPT
    assert not (tmp_path / "saved" / "bill.pdf").exists()
    pdf = next(line for line in out.splitlines() if line.startswith("bill.pdf"))
    assert "deleted" in pdf and "by retention" in pdf and "->" not in pdf


def test_json_says_when_it_was_deleted_and_where_the_rest_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, code = run(tmp_path, as_json=True)
    listed = json.loads(capsys.readouterr().out)["materials"]
    assert code == 0
    by_name = {m["name"]: m for m in listed}
    assert (
        by_name["bill.pdf"]["deleted_at"].startswith("2026-")
        and "saved_to" not in by_name["bill.pdf"]
    )
    assert by_name["id-front.png"]["saved_to"].endswith("id-front.png")
