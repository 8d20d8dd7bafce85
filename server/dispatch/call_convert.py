"""Call records to protobuf messages and back (calls.proto)."""

from __future__ import annotations

from branchline.server.convert import timestamp
from branchline.server.dispatch.calls import CallView, CommandView, SignalView
from branchline.v1 import calls_pb2 as pb

MODE_BY_PB = {
    pb.CALL_MODE_SUPER_COUNTER: "super_counter",
    pb.CALL_MODE_VIDEO_SERVICE: "video_service",
    pb.CALL_MODE_VIDEO_TELLER: "video_teller",
}
PB_BY_MODE = {v: k for k, v in MODE_BY_PB.items()}
PB_BY_STATE = {
    "queued": pb.CALL_STATE_QUEUED,
    "ringing": pb.CALL_STATE_RINGING,
    "active": pb.CALL_STATE_ACTIVE,
    "ended": pb.CALL_STATE_ENDED,
    "left": pb.CALL_STATE_LEFT,
}


def call_to_pb(view: CallView) -> pb.Call:
    return pb.Call(
        call_id=view.call_id,
        request_id=view.request_id,
        terminal_id=view.terminal_id,
        branch=view.branch,
        business_type=view.business_type,
        mode=PB_BY_MODE.get(view.mode, pb.CALL_MODE_UNSPECIFIED),
        state=PB_BY_STATE[view.state],
        teller_id=view.teller_id or "",
        position=view.position,
        estimated_wait_seconds=view.estimated_wait_seconds,
        created_at=timestamp(view.created_at),
        answered_at=timestamp(view.answered_at),
        ended_at=timestamp(view.ended_at),
        end_reason=view.end_reason,
    )


def signal_to_pb(signal: SignalView) -> pb.CallSignal:
    return pb.CallSignal(
        signal_id=signal.signal_id,
        call_id=signal.call_id,
        sender=signal.sender,
        kind=signal.kind,
        payload=signal.payload,
        at=timestamp(signal.at),
    )


def command_to_pb(command: CommandView) -> pb.PeripheralCommand:
    return pb.PeripheralCommand(
        command_id=command.command_id,
        call_id=command.call_id,
        kind=command.kind,
        title=command.title,
        lines=list(command.lines),
        completion=command.completion or "",
        code=command.code,
        detail=command.detail,
        fields=command.fields,
        pin_block=command.pin_block or b"",
        pin_block_format=command.pin_block_format or 0,
        zpk_name=command.zpk_name or "",
        signature_sha256=command.signature_sha256 or "",
        signature_size=command.signature_size,
        sent_at=timestamp(command.sent_at),
        done_at=timestamp(command.done_at),
    )
