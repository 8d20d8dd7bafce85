"""The simulated Creator CRT-591-style motorised card reader.

Every command frame is answered with ACK and then the reply frame ('P' with ST0 = card
position, ST1 = capture bin full, or 'N' with an error code); a frame that fails its checks
is answered with NAK. Motor commands reply after a short travel time (scheduled on the loop,
never blocking it); an EOT from the host drops a reply still in travel.

State: card position (none / at the gate / inside), the card (a sample from
``branchline.sim.card.samples``), whether insertion is enabled, the capture-bin counter, a
jam latch, chip power.

Actions (SimControl.Act): ``insert`` {card}, ``take``, ``list_cards``.
Faults: ``jam`` (the next motor command jams; status reports the jam until an initialise
after the fault is cleared), ``mute_chip`` (power-on gives no ATR), ``nak_storm`` (NAK to
every frame), ``card_not_taken`` (``take`` is ignored: the customer walks away).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from branchline.common.logs import log_event
from branchline.drivers.card_reader import commands as cmd
from branchline.drivers.card_reader.frames import (
    ACK,
    NAK,
    STX,
    CommandFrame,
    Eot,
    FrameDecoder,
    Malformed,
    encode_reply,
)
from branchline.sim.card.emv_card import ChipCard
from branchline.sim.card.samples import SAMPLE_CARDS, SampleCard
from branchline.sim.devices.base import SimError, SimulatedDevice

log = logging.getLogger("branchline.sim.card_reader")

ADDRESS = 0
BIN_CAPACITY = 50
TRAVEL_SECONDS = 0.05  # card travel for one motor command
VERSION = b"CRT-591-SIM V1.0"
SERIAL_NUMBER = b"SIM0000001"
MOTOR_COMMANDS = frozenset({0x30, 0x32})  # initialise*, move*


# The reason a take is refused while the card is not yet at the gate (callers retry).
NO_CARD_AT_GATE = "no_card_at_gate"
# The reason an insert is refused while the driver has not opened the gate (callers retry).
GATE_CLOSED = "gate_closed"


class Position(Enum):
    NONE = b"0"
    AT_GATE = b"1"
    INSIDE = b"2"


class Negative(Exception):
    """Answer the command with 'N' and this error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SimulatedCardReader(SimulatedDevice):
    name = "card_reader"
    faults_available = ("jam", "mute_chip", "nak_storm", "card_not_taken")

    def __init__(self, run_dir: Path, travel_seconds: float = TRAVEL_SECONDS) -> None:
        super().__init__(run_dir)
        self.travel_seconds = travel_seconds
        self.decoder = FrameDecoder()
        self.position = Position.NONE
        self.card: SampleCard | None = None
        self.chip: ChipCard | None = None
        self.chip_powered = False
        self.held = False  # a card at the gate still gripped by the rollers (can be pulled in)
        self.insertion_enabled = False
        self.bin_count = 0
        self.jammed = False
        self._in_travel: asyncio.TimerHandle | None = None
        self.frames = 0
        self.naks_sent = 0
        self.garbage_items = 0

    # -- line --------------------------------------------------------------------------------

    def reset_line(self) -> None:
        self.decoder = FrameDecoder()
        self._drop_travel()

    def _drop_travel(self) -> None:
        if self._in_travel is not None:
            self._in_travel.cancel()
            self._in_travel = None

    def on_bytes(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, CommandFrame):
                self._on_frame(item)
            elif isinstance(item, Eot):
                self._drop_travel()  # the host gave up on the reply in travel
            elif isinstance(item, Malformed):
                self.garbage_items += 1
                if item.raw[:1] == bytes([STX]):  # a damaged frame: ask for it again
                    self._nak()

    def _nak(self) -> None:
        self.naks_sent += 1
        self.send(bytes([NAK]))

    def _on_frame(self, frame: CommandFrame) -> None:
        if frame.address != ADDRESS:
            return  # another reader's frame on a shared line
        if "nak_storm" in self.faults_active or self._in_travel is not None:
            self._nak()  # storm, or still moving and cannot take a new command
            return
        self.frames += 1
        self.send(bytes([ACK]))
        moves = frame.cm in MOTOR_COMMANDS
        try:
            data = self._execute(frame)
            reply = encode_reply(frame.cm, frame.pm, self._status(), data, address=ADDRESS)
        except Negative as negative:
            reply = encode_reply(
                frame.cm, frame.pm, negative.code.encode("ascii"), positive=False, address=ADDRESS
            )
        if moves and self.travel_seconds > 0:
            self._in_travel = asyncio.get_running_loop().call_later(
                self.travel_seconds, self._arrive, reply
            )
        else:
            self.send(reply)

    def _arrive(self, reply: bytes) -> None:
        self._in_travel = None
        self.send(reply)

    def _status(self) -> bytes:
        return self.position.value + (b"1" if self.bin_count >= BIN_CAPACITY else b"0")

    # -- commands ----------------------------------------------------------------------------

    def _execute(self, frame: CommandFrame) -> bytes:
        code = cmd.BY_CODE.get((frame.cm, frame.pm))
        if code is None:
            raise Negative("00")
        if code in (cmd.READ_VERSION, cmd.READ_SERIAL_NUMBER, cmd.READ_BIN_COUNTER):
            return self._info(code)
        if frame.cm in MOTOR_COMMANDS and "jam" in self.faults_active:
            self.jammed = True
            log_event(log, "sim_card_jam", command=code.name)
        if self.jammed and not (frame.cm == 0x30 and "jam" not in self.faults_active):
            raise Negative("10")
        self.jammed = False
        handler: dict[cmd.CommandCode, Callable[[CommandFrame], bytes]] = {
            cmd.STATUS: lambda f: b"",
            cmd.SENSORS: self._sensors,
            cmd.MOVE_TO_GATE: self._to_gate,
            cmd.MOVE_TO_IC: self._stay_inside,
            cmd.MOVE_TO_RF: self._stay_inside,
            cmd.MOVE_TO_MAGNETIC: self._stay_inside,
            cmd.CAPTURE: lambda f: self._capture(count=True),
            cmd.EJECT: self._eject,
            cmd.ENABLE_INSERTION: lambda f: self._insertion(True),
            cmd.DISABLE_INSERTION: lambda f: self._insertion(False),
            cmd.READ_TRACK_1: lambda f: self._track(1),
            cmd.READ_TRACK_2: lambda f: self._track(2),
            cmd.READ_TRACK_3: lambda f: self._track(3),
            cmd.IC_POWER_ON: self._power_on,
            cmd.IC_WARM_RESET: self._power_on,
            cmd.IC_POWER_OFF: self._power_off,
            cmd.IC_STATUS: lambda f: b"1" if self.chip_powered else b"0",
            cmd.APDU_T0: self._apdu,
            cmd.APDU_T1: self._apdu,
            cmd.APDU_AUTO: self._apdu,
            cmd.SET_BIN_COUNTER: self._set_counter,
        }
        if frame.cm == 0x30:
            return self._initialise(code)
        run = handler.get(code)
        if run is None:
            raise Negative("00")
        return run(frame)

    def _info(self, code: cmd.CommandCode) -> bytes:
        if code is cmd.READ_VERSION:
            return VERSION
        if code is cmd.READ_SERIAL_NUMBER:
            return bytes([len(SERIAL_NUMBER)]) + SERIAL_NUMBER
        return f"{min(self.bin_count, 999):03d}".encode("ascii")

    def _sensors(self, frame: CommandFrame) -> bytes:
        inside = self.position is Position.INSIDE
        at_gate = self.position is Position.AT_GATE
        return b"".join(b"1" if s else b"0" for s in (at_gate, inside, inside, self.chip_powered))

    def _initialise(self, code: cmd.CommandCode) -> bytes:
        self._power_off(None)
        self.insertion_enabled = False
        if self.position is Position.NONE:
            return b""
        if code in (cmd.INIT_EJECT, cmd.INIT_EJECT_COUNTED):
            self.position, self.held = Position.AT_GATE, True
        elif code in (cmd.INIT_CAPTURE, cmd.INIT_CAPTURE_COUNTED):
            self._capture(count=code is cmd.INIT_CAPTURE_COUNTED)
        return b""

    def _need_card(self, *where: Position) -> None:
        if self.position not in where:
            raise Negative("02")  # out of sequence: no card where the command needs one

    def _to_gate(self, frame: CommandFrame) -> bytes:
        self._need_card(Position.INSIDE, Position.AT_GATE)
        self._power_off(None)
        self.position, self.held = Position.AT_GATE, True
        log_event(log, "sim_card_at_gate", card=self.card.name if self.card else "")
        return b""

    def _stay_inside(self, frame: CommandFrame) -> bytes:
        self._need_card(Position.INSIDE)
        return b""

    def _eject(self, frame: CommandFrame) -> bytes:
        self._need_card(Position.INSIDE, Position.AT_GATE)
        self._power_off(None)
        self.position, self.held = Position.AT_GATE, False
        return b""

    def _capture(self, *, count: bool) -> bytes:
        self._need_card(Position.INSIDE, Position.AT_GATE)
        if self.position is Position.AT_GATE and not self.held:
            raise Negative("40")  # out of the rollers' reach
        if self.bin_count >= BIN_CAPACITY:
            raise Negative("A1")
        self._power_off(None)
        log_event(log, "sim_card_captured", card=self.card.name if self.card else "")
        self.position, self.card, self.chip, self.held = Position.NONE, None, None, False
        if count:
            self.bin_count += 1
        return b""

    def _insertion(self, enabled: bool) -> bytes:
        self.insertion_enabled = enabled
        return b""

    def _track(self, number: int) -> bytes:
        self._need_card(Position.INSIDE)
        assert self.card is not None
        text = {1: self.card.track1, 2: self.card.track2, 3: self.card.track3}[number]
        return text.encode("latin-1") if text else b""  # empty DATA: nothing on this track

    def _power_on(self, frame: CommandFrame) -> bytes:
        self._need_card(Position.INSIDE)
        atr = None
        if self.chip is not None and "mute_chip" not in self.faults_active:
            atr = self.chip.power_on()
        if atr is None:
            self.chip_powered = False
            raise Negative("61")  # no answer to reset: activation failed
        self.chip_powered = True
        return b"0" + atr  # protocol T=0, then the ATR

    def _power_off(self, frame: CommandFrame | None) -> bytes:
        self.chip_powered = False
        return b""

    def _apdu(self, frame: CommandFrame) -> bytes:
        if not self.chip_powered or self.chip is None:
            raise Negative("65")
        if len(frame.data) < 4:
            raise Negative("04")
        return self.chip.transmit(frame.data)

    def _set_counter(self, frame: CommandFrame) -> bytes:
        if len(frame.data) != 3 or not frame.data.isdigit():
            raise Negative("04")
        self.bin_count = int(frame.data)
        return b""

    # -- control -----------------------------------------------------------------------------

    def act(self, action: str, params: dict[str, str]) -> dict[str, str]:
        if action == "list_cards":
            return {name: card.description for name, card in SAMPLE_CARDS.items()}
        if action == "insert":
            return self._insert(params)
        if action == "take":
            return self._take()
        raise SimError(
            f"action: card_reader has no action {action!r}; available: insert, take, list_cards"
        )

    def _insert(self, params: dict[str, str]) -> dict[str, str]:
        name = params.get("card", "")
        card = SAMPLE_CARDS.get(name)
        if card is None:
            raise SimError(
                f"card: no sample card {name!r}; available: {', '.join(sorted(SAMPLE_CARDS))}"
            )
        if self.position is not Position.NONE:
            raise SimError(f"insert: a card is already in the reader ({self.position.name})")
        if not self.insertion_enabled:
            raise SimError(
                "insert: the gate is closed (the driver has not enabled insertion)",
                reason=GATE_CLOSED,
            )
        self.card, self.chip = card, card.new_chip()
        self.position, self.held = Position.INSIDE, False
        log_event(log, "sim_card_inserted", card=name)
        return {"card": name, "position": "inside"}

    def _take(self) -> dict[str, str]:
        if self.position is not Position.AT_GATE:
            raise SimError("take: there is no card at the gate", reason=NO_CARD_AT_GATE)
        if "card_not_taken" in self.faults_active:
            return {"taken": "false"}
        log_event(log, "sim_card_taken", card=self.card.name if self.card else "")
        self.position, self.card, self.chip, self.held = Position.NONE, None, None, False
        return {"taken": "true"}

    def facts(self) -> dict[str, str]:
        return {
            "card_position": self.position.name.lower(),
            "card": self.card.name if self.card else "",
            "insertion_enabled": str(self.insertion_enabled).lower(),
            "bin_count": str(self.bin_count),
            "jammed": str(self.jammed).lower(),
            "chip_powered": str(self.chip_powered).lower(),
            "frames": str(self.frames),
            "naks_sent": str(self.naks_sent),
            "garbage_items": str(self.garbage_items),
        }
