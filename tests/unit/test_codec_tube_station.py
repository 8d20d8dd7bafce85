"""Tube station register map (drivers/tube_station/registers.py docstring) and carrier life cycle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.tube_station import lifecycle, registers
from branchline.drivers.tube_station.lifecycle import Carrier, CarrierState, IllegalTransition
from branchline.drivers.tube_station.registers import (
    Command,
    CommandRequest,
    Fault,
    Malformed,
    StationSnapshot,
    StationState,
)

SNAPSHOT = StationSnapshot(
    state=StationState.IN_TRANSIT,
    fault=Fault.NONE,
    present_carrier_id=0,
    in_flight_seconds=42,
    sent_count=70_000,
    received_count=3,
    door_closed=True,
    carrier_present=False,
    blower_running=True,
)


def test_command_registers_by_hand() -> None:
    # SEND carrier 0x0001_86A0 (100000): HR0 = 1, HR1 = high word 0x0001, HR2 = low word 0x86A0.
    request = CommandRequest(Command.SEND, 100_000)
    assert registers.encode_command(request) == [1, 0x0001, 0x86A0]
    assert registers.decode_command([1, 0x0001, 0x86A0]) == request
    assert registers.encode_command(CommandRequest(Command.RESET_FAULT)) == [7, 0, 0]


def test_snapshot_registers_by_hand() -> None:
    # IR0 state 3, IR1 fault 0, IR2-3 carrier 0, IR4 42 s, IR5-6 70000 = 0x0001_1170, IR7-8 3.
    regs, inputs = registers.encode_snapshot(SNAPSHOT)
    assert regs == [3, 0, 0, 0, 42, 0x0001, 0x1170, 0, 3]
    assert inputs == [True, False, True]
    assert registers.decode_snapshot(regs, inputs) == SNAPSHOT


@pytest.mark.parametrize(
    ("regs", "inputs", "fragment"),
    [
        ([3, 0, 0, 0, 42, 1, 0x1170, 0, 3], [True, False], "expected 3 discrete inputs"),
        ([3, 0, 0, 0, 42, 1, 0x1170, 0], [True, False, True], "expected 9 input registers"),
        ([9, 0, 0, 0, 42, 1, 0x1170, 0, 3], [True, False, True], "unknown station state 9"),
        ([3, 8, 0, 0, 42, 1, 0x1170, 0, 3], [True, False, True], "unknown fault code 8"),
        ([3, 0, 0, 0x10000, 42, 1, 0, 0, 3], [True, False, True], "not a 16-bit value"),
        ([3, 0, 0, -1, 42, 1, 0, 0, 3], [True, False, True], "not a 16-bit value"),
    ],
)
def test_bad_snapshots_are_malformed(regs: list[int], inputs: list[bool], fragment: str) -> None:
    result = registers.decode_snapshot(regs, inputs)
    assert isinstance(result, Malformed) and fragment in result.reason


def test_bad_commands_are_malformed() -> None:
    assert isinstance(registers.decode_command([8, 0, 0]), Malformed)
    assert isinstance(registers.decode_command([1, 0]), Malformed)
    with pytest.raises(ValueError):
        registers.encode_command(CommandRequest(Command.SEND, 1 << 32))


snapshots = st.builds(
    StationSnapshot,
    st.sampled_from(StationState),
    st.sampled_from(Fault),
    st.integers(0, registers.MAX_U32),
    st.integers(0, 0xFFFF),
    st.integers(0, registers.MAX_U32),
    st.integers(0, registers.MAX_U32),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@given(snapshots)
def test_snapshots_round_trip(snapshot: StationSnapshot) -> None:
    assert registers.decode_snapshot(*registers.encode_snapshot(snapshot)) == snapshot


@given(st.builds(CommandRequest, st.sampled_from(Command), st.integers(0, registers.MAX_U32)))
def test_commands_round_trip(request: CommandRequest) -> None:
    assert registers.decode_command(registers.encode_command(request)) == request


@given(
    st.lists(st.integers(-5, 0x1_0005), max_size=12),
    st.lists(st.booleans(), max_size=5),
)
def test_random_registers_never_raise(regs: list[int], inputs: list[bool]) -> None:
    result = registers.decode_snapshot(regs, inputs)
    valid = (
        len(regs) == 9
        and len(inputs) == 3
        and all(0 <= r <= 0xFFFF for r in regs)
        and regs[0] in set(StationState)
        and regs[1] in set(Fault)
    )
    assert isinstance(result, StationSnapshot) == valid
    registers.decode_command(regs)


# --- life cycle ----------------------------------------------------------------------------


def test_happy_path() -> None:
    carrier = Carrier(7, CarrierState.EMPTY, 0.0)
    path = [
        CarrierState.LOADED,
        CarrierState.SENDING,
        CarrierState.IN_TRANSIT,
        CarrierState.ARRIVED,
        CarrierState.REMOVED,
        CarrierState.EMPTY,
    ]
    for step, target in enumerate(path, start=1):
        carrier = lifecycle.advance(carrier, target, float(step))
    assert carrier == Carrier(7, CarrierState.EMPTY, 6.0)


def test_illegal_transition_is_refused_clearly() -> None:
    carrier = Carrier(7, CarrierState.EMPTY, 0.0)
    with pytest.raises(IllegalTransition) as caught:
        lifecycle.advance(carrier, CarrierState.ARRIVED, 1.0)
    error = caught.value
    assert isinstance(error, DeviceError) and error.completion is Completion.SEQUENCE_ERROR
    assert error.code == "illegal_transition"
    assert "from empty to arrived" in error.message and "may go to loaded" in error.message


def test_timeouts() -> None:
    limits = lifecycle.Limits(sending=10, in_transit=100)
    sending = Carrier(1, CarrierState.SENDING, 50.0)
    assert lifecycle.check_timeout(sending, 60.0, limits) is None
    overdue = lifecycle.check_timeout(sending, 60.5, limits)
    assert overdue is not None and overdue.suggested is CarrierState.JAMMED
    in_transit = Carrier(1, CarrierState.IN_TRANSIT, 0.0)
    lost = lifecycle.check_timeout(in_transit, 101.0, limits)
    assert lost is not None and lost.suggested is CarrierState.LOST
    assert lost.message == "carrier did not arrive after 101 s"
    arrived = lifecycle.check_timeout(Carrier(1, CarrierState.ARRIVED, 0.0), 10_000.0)
    assert arrived is not None and arrived.suggested is None
    assert lifecycle.check_timeout(Carrier(1, CarrierState.EMPTY, 0.0), 1e9) is None
    # Every suggested state is reachable from the overdue one.
    for state in CarrierState:
        verdict = lifecycle.check_timeout(Carrier(1, state, 0.0), 1e9)
        if verdict is not None and verdict.suggested is not None:
            assert lifecycle.can_move(state, verdict.suggested)


def test_station_state_mapping_covers_every_state() -> None:
    assert set(lifecycle.FROM_STATION) == set(StationState)
    assert lifecycle.FROM_STATION[StationState.JAMMED] is CarrierState.JAMMED


@given(st.lists(st.sampled_from(CarrierState), max_size=30))
def test_transitions_follow_the_table(targets: list[CarrierState]) -> None:
    carrier = Carrier(1, CarrierState.EMPTY, 0.0)
    for now, target in enumerate(targets):
        allowed = target in lifecycle.TRANSITIONS[carrier.state]
        try:
            moved = lifecycle.advance(carrier, target, float(now))
        except IllegalTransition as refused:
            assert not allowed and refused.current is carrier.state
            continue
        assert allowed and moved.state is target and moved.since == now
        carrier = moved
