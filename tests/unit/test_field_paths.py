"""Field paths across layers: an inner request's refusal named for the caller's message."""

from __future__ import annotations

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.common.field_paths import mapped, renamed
from branchline.server.ledger.sessions import SessionRefused

FIELDS = {"withdrawal.amount": "tube_open.asset.amount"}


def test_a_mapped_field_is_renamed_in_the_data_and_the_message() -> None:
    inner = FailedPrecondition(
        "withdrawal.amount: amount over balance: 5,000.00 CNY is more than the 1,000.00 CNY",
        field="withdrawal.amount",
        reason="insufficient_funds",
        metadata={"account": "A-1"},
    )
    outer = mapped(inner, FIELDS, "tube_open")
    assert type(outer) is FailedPrecondition
    assert (outer.field, outer.reason, outer.metadata) == (
        "tube_open.asset.amount",
        "insufficient_funds",
        {"account": "A-1"},
    )
    assert outer.message == (
        "tube_open.asset.amount: amount over balance: 5,000.00 CNY is more than the 1,000.00 CNY"
    )
    assert str(outer) == outer.message
    # The inner error is left as it was.
    assert inner.field == "withdrawal.amount" and inner.message.startswith("withdrawal.amount:")
    outer.metadata["x"] = "y"
    assert "x" not in inner.metadata


def test_an_unmapped_field_keeps_its_whole_message_under_the_default() -> None:
    inner = InvalidArgument("withdrawal.branch", "must not be empty")
    outer = mapped(inner, FIELDS, "tube_open")
    assert (outer.field, outer.message) == (
        "tube_open",
        "tube_open: withdrawal.branch: must not be empty",
    )
    # No field at all: the default names it.
    bare = mapped(NotFound("rate version 7 does not exist", reason="unknown_rate_version"), {}, "x")
    assert (bare.field, bare.message, bare.reason) == (
        "x",
        "x: rate version 7 does not exist",
        "unknown_rate_version",
    )


def test_renamed_works_for_subclasses_with_their_own_constructor() -> None:
    refused = SessionRefused("session_expired", "session_token: the session has expired")
    outer = renamed(refused, "tube_open.session_token")
    assert isinstance(outer, SessionRefused)
    assert (outer.field, outer.rule, outer.reason, outer.message) == (
        "tube_open.session_token",
        "session_expired",
        "session_expired",
        "tube_open.session_token: the session has expired",
    )
    # A message that did not lead with the old field keeps all its words after the new one.
    other = renamed(NotFound("rate version 7 does not exist", field="rate_version"), "rv")
    assert other.message == "rv: rate version 7 does not exist"
