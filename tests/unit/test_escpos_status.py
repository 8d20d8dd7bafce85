"""DLE EOT status bytes both ways: the simulator's PrinterModel encodes its state, the driver's
decoders read it back, and both agree with bytes written out by hand from the Epson ESC/POS
Command Reference, "DLE EOT" (every reply: bit 0 = 0, bit 1 = 1, bit 4 = 1, bit 7 = 0)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from branchline.drivers.printer.escpos import (
    ErrorCause,
    MalformedStatus,
    OfflineCause,
    PrinterStatus,
    RollPaperStatus,
    StatusKind,
    decode_error_cause,
    decode_offline_cause,
    decode_printer_status,
    decode_roll_paper,
    decode_status,
    request_status,
)
from branchline.sim.printer import EscPosParser, PrinterModel, StatusRequest

OK = 0x12  # only the fixed bits

# fault -> replies to DLE EOT 1, 2, 3, 4, written from the reference's bit tables
FAULTS: dict[str, tuple[int, int, int, int]] = {
    "none": (OK, OK, OK, OK),
    # n=1 bit 3 offline; n=2 bit 2 cover open
    "cover_open": (0x1A, 0x16, OK, OK),
    # n=1 bit 3; n=2 bit 5 paper-end stop; n=4 bits 5,6 paper end and bits 2,3 near end
    "paper_out": (0x1A, 0x32, OK, 0x7E),
    # n=4 bits 2,3 near end; the printer stays online
    "paper_near_end": (OK, OK, OK, 0x1E),
    # n=1 bit 3 only
    "online": (0x1A, OK, OK, OK),
    # n=1 bit 2 drawer kick-out connector pin 3
    "drawer_pin3_high": (0x16, OK, OK, OK),
    # n=1 bit 6 feed button; n=2 bit 3 paper being fed by the button
    "feed_button_pressed": (0x52, 0x1A, OK, OK),
    # n=1 bit 3; n=2 bit 6 error; n=3 bit 3 autocutter
    "autocutter_error": (0x1A, 0x52, 0x1A, OK),
    # n=3 bit 5 unrecoverable
    "unrecoverable_error": (0x1A, 0x52, 0x32, OK),
    # n=3 bit 6 automatically recoverable
    "auto_recoverable_error": (0x1A, 0x52, 0x52, OK),
}


def model_with(fault: str) -> PrinterModel:
    model = PrinterModel()
    if fault == "online":
        model.online = False
    elif fault != "none":
        setattr(model, fault, True)
    return model


@pytest.mark.parametrize("fault", FAULTS)
def test_model_encodes_each_fault(fault: str) -> None:
    model = model_with(fault)
    assert tuple(model.status_byte(n) for n in (1, 2, 3, 4)) == FAULTS[fault]


@pytest.mark.parametrize("fault", FAULTS)
def test_driver_decodes_each_fault(fault: str) -> None:
    p, o, e, r = FAULTS[fault]
    printer = decode_printer_status(p)
    offline = decode_offline_cause(o)
    error = decode_error_cause(e)
    roll = decode_roll_paper(r)
    assert isinstance(printer, PrinterStatus)
    assert isinstance(offline, OfflineCause)
    assert isinstance(error, ErrorCause)
    assert isinstance(roll, RollPaperStatus)
    expected_offline = fault not in (
        "none",
        "paper_near_end",
        "drawer_pin3_high",
        "feed_button_pressed",
    )
    assert printer == PrinterStatus(
        drawer_pin3_high=fault == "drawer_pin3_high",
        offline=expected_offline,
        waiting_online_recovery=False,
        feed_button_pressed=fault == "feed_button_pressed",
    )
    assert offline == OfflineCause(
        cover_open=fault == "cover_open",
        feeding_by_button=fault == "feed_button_pressed",
        paper_end_stop=fault == "paper_out",
        error=fault.endswith("_error"),
    )
    assert error == ErrorCause(
        autocutter_error=fault == "autocutter_error",
        unrecoverable_error=fault == "unrecoverable_error",
        auto_recoverable_error=fault == "auto_recoverable_error",
    )
    assert roll == RollPaperStatus(
        near_end=fault in ("paper_out", "paper_near_end"), paper_end=fault == "paper_out"
    )


@pytest.mark.parametrize("fault", FAULTS)
def test_request_through_the_simulator_and_back(fault: str) -> None:
    """Driver request bytes -> simulator parser -> PrinterModel reply -> driver decoder."""
    model = model_with(fault)
    parser = EscPosParser()
    for kind in StatusKind:
        (command,) = parser.feed(request_status(kind))
        assert command == StatusRequest(kind.value)
        reply = model.handle(command)
        assert len(reply) == 1
        assert reply[0] == FAULTS[fault][kind.value - 1]
        decoded = decode_status(kind, reply)
        assert not isinstance(decoded, MalformedStatus)


def test_spec_named_bits() -> None:
    # The bits named in the reference, one at a time.
    assert decode_offline_cause(0x12 | 0x04) == OfflineCause(True, False, False, False)
    assert decode_roll_paper(0x12 | 0x60) == RollPaperStatus(near_end=False, paper_end=True)
    assert decode_roll_paper(0x12 | 0x0C) == RollPaperStatus(near_end=True, paper_end=False)
    printer = decode_printer_status(0x12 | 0x08)
    assert isinstance(printer, PrinterStatus) and printer.offline
    assert asdict(decode_printer_status(0x12 | 0x20)) == {
        "drawer_pin3_high": False,
        "offline": False,
        "waiting_online_recovery": True,
        "feed_button_pressed": False,
    }


def test_half_set_sensor_pairs_count_as_the_condition() -> None:
    # Compatible printers may report each bit of a pair from its own sensor.
    assert decode_roll_paper(0x12 | 0x04) == RollPaperStatus(near_end=True, paper_end=False)
    assert decode_roll_paper(0x12 | 0x40) == RollPaperStatus(near_end=False, paper_end=True)


def test_undefined_bit_2_of_error_cause_is_ignored() -> None:
    assert decode_error_cause(0x16) == ErrorCause(False, False, False)


@pytest.mark.parametrize("kind", list(StatusKind))
def test_every_byte_decodes_or_is_malformed(kind: StatusKind) -> None:
    for value in range(256):
        for reply in (value, bytes((value,))):
            decoded = decode_status(kind, reply)
            fixed_ok = value & 0x93 == 0x12
            assert isinstance(decoded, MalformedStatus) is not fixed_ok, hex(value)
            if isinstance(decoded, MalformedStatus):
                assert decoded.request is kind
                assert decoded.reply == bytes((value,))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (0x00, "everything clear"),
        (0x02, "bit 4 clear: an ASB byte, not a DLE EOT reply"),
        (0x10, "bit 1 clear"),
        (0x13, "bit 0 set"),
        (0x92, "bit 7 set"),
        (0xFF, "all set"),
    ],
)
def test_wrong_fixed_bits_are_malformed(value: int, why: str) -> None:
    for kind in StatusKind:
        decoded = decode_status(kind, value)
        assert isinstance(decoded, MalformedStatus), why
        assert "fixed bits" in decoded.reason


@pytest.mark.parametrize("reply", [b"", b"\x12\x12", -1, 256, True, 1.5, None, "x"])
def test_unusable_replies_are_malformed_never_raise(reply: object) -> None:
    decoded = decode_status(1, reply)  # type: ignore[arg-type]
    assert isinstance(decoded, MalformedStatus)


def test_bad_request_number_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        decode_status(5, 0x12)
    with pytest.raises(ValueError):
        PrinterModel().status_byte(0)


def test_model_answers_only_status_requests() -> None:
    model = PrinterModel(paper_out=True)
    parser = EscPosParser()
    commands = parser.feed(b"\x1b@hello\n\x10\x04\x04")
    replies = [model.handle(c) for c in commands]
    assert replies == [b"", b"", b"", b"\x7e"]
    assert model.offline and not model.can_print
