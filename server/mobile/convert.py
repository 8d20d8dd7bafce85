"""Pairings and service lists as their protobuf messages (mobile.proto)."""

from __future__ import annotations

from branchline.server.convert import timestamp
from branchline.server.mobile.pairing import Pairing
from branchline.server.mobile.services import ServiceList
from branchline.v1 import mobile_pb2 as pb


def pairing_to_pb(pairing: Pairing) -> pb.PhonePairing:
    return pb.PhonePairing(
        pairing_id=pairing.pairing_id,
        terminal_id=pairing.terminal_id,
        branch=pairing.branch,
        state=pairing.state,
        matching_code=pairing.matching_code,
        paired_at=timestamp(pairing.paired_at),
        session_expires_at=timestamp(pairing.session_expires_at),
        end_reason=pairing.end_reason,
    )


def services_to_pb(services: ServiceList, pairing: Pairing) -> pb.PhoneServiceList:
    return pb.PhoneServiceList(
        terminal_id=services.terminal_id,
        unavailable_reason=services.unavailable_reason,
        services=list(services.services),
        auth_methods=list(services.auth_methods),
        pairing=pairing_to_pb(pairing),
    )
