"""The simulated resident ID-card reader (GA 467 SAM_V module).

Answers SAM status, find card, select card and read text and photo as a real reader does:
"no card" (SW3 0x80) while nothing is placed, select only after a successful find, and a
read halts the card so the next read needs find and select again. Requests that fail their
checksum are answered with SW3 0x10, impossible lengths with 0x11; line noise is ignored.

Actions: ``place {card: NAME}``, ``remove``, ``list_cards``. (``set_baud``, which paces the
line like a real one, is offered by the simulator for every device: see ``PtyLine``.)
Faults: ``sam_fault`` (SAM self-test failed, 0x60, to every command), ``read_fail`` (read
answers 0x41), ``bad_checksum`` (the next reply's CHK is corrupted, once; the fault then
clears itself).
"""

from __future__ import annotations

import logging
from pathlib import Path

from branchline.common.logs import log_event
from branchline.drivers.id_reader.frames import (
    Command,
    Malformed,
    Request,
    RequestDecoder,
    encode_reply,
    encode_text_and_photo,
)
from branchline.sim.devices.base import SimError, SimulatedDevice
from branchline.sim.id_cards import SAMPLE_CARDS

log = logging.getLogger("branchline.sim.id_reader")

SW3_OK = 0x90
SW3_CARD_FOUND = 0x9F
SW3_NO_CARD = 0x80
SW3_SELECT_FAILED = 0x81
SW3_READ_FAILED = 0x41
SW3_BAD_COMMAND = 0x21
SW3_CHECKSUM_ERROR = 0x10
SW3_LENGTH_ERROR = 0x11
SW3_SAM_SELF_TEST_FAILED = 0x60

FAULTS = ("sam_fault", "read_fail", "bad_checksum")


def mask(id_number: str) -> str:
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


class SimulatedIdReader(SimulatedDevice):
    name = "id_reader"
    faults_available = FAULTS

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.decoder = RequestDecoder()
        self.card: str | None = None
        self.found = False
        self.selected = False
        self.requests = 0
        self.reads = 0
        self.corrupted = 0
        self.noise_bytes = 0

    # -- the wire ---------------------------------------------------------------------------

    def reset_line(self) -> None:
        # Replugged: the reader powers up afresh; a card on it stays, but is not selected.
        self.decoder = RequestDecoder()
        self.found = self.selected = False

    def on_bytes(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, Request):
                self.requests += 1
                # PREAMBLE LEN CMD PARA DATA CHK
                self._reply(self._answer(item), received=10 + len(item.data))
            elif isinstance(item, Malformed):
                if item.reason.startswith("bad checksum"):
                    self._reply(encode_reply(SW3_CHECKSUM_ERROR), received=len(item.raw))
                elif item.reason.startswith("bad length"):
                    self._reply(encode_reply(SW3_LENGTH_ERROR), received=len(item.raw))
                else:
                    self.noise_bytes += len(item.raw)

    def _answer(self, request: Request) -> bytes:
        if "sam_fault" in self.faults_active:
            return encode_reply(SW3_SAM_SELF_TEST_FAILED)
        command = request.command
        if command is Command.SAM_STATUS:
            return encode_reply(SW3_OK)
        if command is Command.FIND_CARD:
            self.found = self.card is not None
            self.selected = False
            return (
                encode_reply(SW3_CARD_FOUND, bytes(4)) if self.found else encode_reply(SW3_NO_CARD)
            )
        if command is Command.SELECT_CARD:
            if not self.found:
                return encode_reply(SW3_SELECT_FAILED)
            self.selected = True
            return encode_reply(SW3_OK, bytes(8))
        if command is Command.READ_TEXT_PHOTO:
            card = SAMPLE_CARDS.get(self.card or "")
            if not self.selected or card is None or "read_fail" in self.faults_active:
                return encode_reply(SW3_READ_FAILED)
            # A read halts the card: the next read starts again with find.
            self.found = self.selected = False
            self.reads += 1
            return encode_reply(SW3_OK, encode_text_and_photo(card.text, card.card.photo))
        return encode_reply(SW3_BAD_COMMAND)

    def _reply(self, frame: bytes, received: int) -> None:
        if "bad_checksum" in self.faults_active:
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
            self.faults_active.discard("bad_checksum")  # once
            self.corrupted += 1
        self.send(frame)

    # -- control ----------------------------------------------------------------------------

    def act(self, action: str, params: dict[str, str]) -> dict[str, str]:
        if action == "place":
            name = params.get("card", "")
            if name not in SAMPLE_CARDS:
                raise SimError(
                    f"place: card: {'unknown card ' + repr(name) if name else 'required'}; "
                    f"one of {', '.join(SAMPLE_CARDS)}"
                )
            self.card = name
            self.found = self.selected = False
            log_event(log, "sim_id_card_placed", card=name)
            return {"card": name, "id_number_masked": mask(SAMPLE_CARDS[name].card.id_number)}
        if action == "remove":
            removed, self.card = self.card, None
            self.found = self.selected = False
            return {"removed": removed or "none"}
        if action == "list_cards":
            return {name: sample.description for name, sample in SAMPLE_CARDS.items()}
        raise SimError(
            f"action: {self.name} has no action {action!r}; available: place, remove, list_cards"
        )

    def facts(self) -> dict[str, str]:
        return {
            "card": self.card or "none",
            "sam": "self_test_failed" if "sam_fault" in self.faults_active else "ok",
            "requests": str(self.requests),
            "reads": str(self.reads),
            "corrupted_replies": str(self.corrupted),
            "noise_bytes": str(self.noise_bytes),
        }
