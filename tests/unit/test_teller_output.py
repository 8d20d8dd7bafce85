"""How branchline-teller reports a refused call: stderr names the status and the field the
status details carry; with --json the details are printed as data (status, reason, field,
message, and ``code`` = the status, as before)."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from branchline.common.errors import InvalidArgument, NotFound
from branchline.common.grpc_errors import grpc_status_for
from branchline.server.teller.output import refusal


class Refused(grpc.RpcError):
    """A failed call as grpc hands it over: code, details and trailing metadata."""

    def __init__(self, status: grpc.Status) -> None:
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> Any:
        return tuple(self._status.trailing_metadata)


def test_a_refusal_names_the_field_on_stderr_and_as_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = Refused(grpc_status_for(InvalidArgument("counted.amount", "must be positive")))
    refusal(error, as_json=True)
    out, err = capsys.readouterr()
    data = json.loads(out)["error"]
    assert (data["code"], data["status"], data["field"], data["reason"]) == (
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "counted.amount",
        "invalid_argument",
    )
    assert data["message"] == "counted.amount: must be positive"
    assert err == (
        "branchline-teller: INVALID_ARGUMENT (field counted.amount): "
        "counted.amount: must be positive\n"
    )


def test_without_json_only_stderr_and_no_field_when_none_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refusal(Refused(grpc_status_for(NotFound("no task 'tk-1'", reason="no_task"))), as_json=False)
    out, err = capsys.readouterr()
    assert out == "" and err == "branchline-teller: NOT_FOUND: no task 'tk-1'\n"
