"""The one domain <-> protobuf enum map covers every value on both sides, both ways."""

from __future__ import annotations

from enum import StrEnum

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from branchline.agent.service_state import ServiceState
from branchline.common import enum_maps as maps
from branchline.drivers.base import DeviceStatus
from branchline.v1 import common_pb2


def _wire_values(enum: EnumTypeWrapper) -> set[int]:
    return {v for name, v in enum.items() if not name.endswith("_UNSPECIFIED")}


@pytest.mark.parametrize(
    ("domain", "to_pb", "from_pb", "wire"),
    [
        (
            DeviceStatus,
            maps.DEVICE_STATUS_TO_PB,
            maps.DEVICE_STATUS_FROM_PB,
            common_pb2.DeviceStatus,
        ),
        (
            ServiceState,
            maps.SERVICE_STATE_TO_PB,
            maps.SERVICE_STATE_FROM_PB,
            common_pb2.ServiceState,
        ),
    ],
)
def test_every_domain_value_has_its_wire_value_and_back(
    domain: type[StrEnum], to_pb: dict, from_pb: dict, wire: EnumTypeWrapper
) -> None:
    assert set(to_pb) == {member.value for member in domain}
    assert set(to_pb.values()) == _wire_values(wire)
    for member in domain:
        # A StrEnum member looks the string-keyed map up directly, as the agent does.
        assert from_pb[to_pb[member]] == member
    # Each wire name is the domain value in capitals after the enum's prefix.
    for value, number in to_pb.items():
        assert wire.Name(number).endswith("_" + value.upper())


def test_terminal_kinds_round_trip() -> None:
    assert set(maps.TERMINAL_KIND_TO_PB.values()) == _wire_values(common_pb2.TerminalKind)
    for kind, number in maps.TERMINAL_KIND_TO_PB.items():
        assert maps.TERMINAL_KIND_FROM_PB[number] == kind
        assert common_pb2.TerminalKind.Name(number) == "TERMINAL_KIND_" + kind.upper()
    assert common_pb2.TERMINAL_KIND_UNSPECIFIED not in maps.TERMINAL_KIND_FROM_PB
