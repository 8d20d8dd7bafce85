"""The simulated encrypting PIN pad: Branchline's EPP command set over its pseudo-terminal.

Like a real EPP it keeps, per key slot, only the DUKPT register state (the loaded IPEK / AES
initial key is dropped once the registers are filled; a BDK is never held), builds ISO 9564
PIN blocks itself and tells the host how many digits were entered, never which.

Actions (SimControl.Act):

- ``press`` {keys}: the customer presses keys, 20 ms apart: digits, ``E`` enter, ``C`` clear,
  ``X`` cancel. Keys pressed while no entry is running are ignored, as on the real pad.
- ``load_dev_key`` {algorithm: tdes|aes, bdk_hex, ksn_hex, slot=0}: derive the initial key
  from a development BDK and load it (the BDK is forgotten at once); returns the KCV.
- ``kcv`` {slot=0}: the slot's algorithm and key check value.
- ``sign`` {name, cancel=no}: the customer signs the pad's screen while a signature is asked
  for (SIGN_START): the signature is a PNG drawn with pillow from the name
  (``devices/signature.py``); ``cancel=yes`` presses cancel instead. Returns its SHA-256.

Faults: ``key_stuck`` (the first key of each press repeats; STATUS reports a stuck key),
``tamper`` (keys erased, running entry ends, every key command answers tamper until the fault
is cleared; keys stay erased), ``exhaust_ksn`` (one-shot: every loaded slot's counter jumps
past its last value, so the next PIN entry is refused with ksn_exhausted).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from branchline.common import paycrypto
from branchline.common.logs import log_event
from branchline.common.paycrypto import aes_dukpt, tdes_dukpt
from branchline.drivers.pin_pad import ksn as ksn_counter
from branchline.drivers.pin_pad import protocol as p
from branchline.sim.devices.base import SimError, SimulatedDevice
from branchline.sim.devices.signature import draw_signature

log = logging.getLogger("branchline.sim.pin_pad")

KEY_INTERVAL = 0.02
STUCK_REPEATS = 5
KEYS = frozenset("0123456789ECX")
MODEL = "BL-EPP-1 (simulated)"
SERIAL = "SIM-EPP-0001"
FIRMWARE = "1.0.0-sim"

Dukpt = paycrypto.TdesDukptDevice | paycrypto.AesDukptDevice


@dataclass
class KeySlot:
    algorithm: p.Algorithm
    kcv: bytes
    initial_ksn: bytes
    # None once the counter has been forced past its end (registers erased).
    dukpt: Dukpt | None = field(repr=False)
    last_ksn: bytes | None = None

    @property
    def exhausted(self) -> bool:
        return self.dukpt is None or self.dukpt.exhausted

    @property
    def current_ksn(self) -> bytes:
        """The next PIN block's KSN; once exhausted, the last one."""
        if self.dukpt is not None and self.dukpt.next_ksn is not None:
            return self.dukpt.next_ksn
        if self.last_ksn is not None:
            return self.last_ksn
        last = ksn_counter.last_counter(self.algorithm)
        return ksn_counter.ksn_with_counter(self.algorithm, self.initial_ksn, last)


@dataclass
class Signing:
    """A signature asked for by SIGN_START: its state, then the PNG."""

    state: p.SignState = p.SignState.SIGNING
    png: bytes = b""
    timer: asyncio.TimerHandle | None = None


@dataclass
class Entry:
    seq: int
    request: p.StartPin
    digits: list[str] = field(default_factory=list, repr=False)
    timer: asyncio.TimerHandle | None = None


def make_slot(algorithm: p.Algorithm, key: bytes, ksn: bytes) -> KeySlot:
    """Fill a slot's DUKPT registers from an initial key; raises PayCryptoError on bad input."""
    if algorithm is p.Algorithm.TDES:
        if tdes_dukpt.ksn_counter(ksn) != 0:
            raise paycrypto.DukptError("initial KSN counter must be 0")
        dukpt: Dukpt = paycrypto.TdesDukptDevice(key, ksn)
        kcv = paycrypto.tdes_kcv(key)
    else:
        if aes_dukpt.ksn_counter(ksn) != 0:
            raise paycrypto.DukptError("initial KSN counter must be 0")
        dukpt = paycrypto.AesDukptDevice(key, aes_dukpt.ksn_initial_key_id(ksn))
        kcv = paycrypto.aes_kcv(key)
    return KeySlot(algorithm, kcv, ksn, dukpt)


class SimulatedPinPad(SimulatedDevice):
    name = "pin_pad"
    faults_available = ("key_stuck", "tamper", "exhaust_ksn")

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.decoder = p.FrameDecoder()
        self.slots: list[KeySlot | None] = [None] * p.SLOT_COUNT
        self.tamper = False
        self.entry: Entry | None = None
        self.signing: Signing | None = None
        self.signatures = 0
        self.malformed = 0
        self.pin_blocks = 0
        self.keys_ignored = 0
        self._keys_free_at = 0.0  # loop time when queued key presses are done

    # -- line -------------------------------------------------------------------------------

    def reset_line(self) -> None:
        self.decoder.reset()
        if self.entry is not None:
            # The host is gone: end the entry without a result nobody would read.
            self._end_entry()

    def on_bytes(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, p.Malformed):
                self.malformed += 1
                continue
            decoded = p.decode_request(item)
            if isinstance(decoded, p.BadRequest):
                self.send(p.encode_error(decoded.seq, decoded.cmd, p.ResultCode.BAD_PARAMETER))
                continue
            seq, request = decoded
            if isinstance(request, p.UnknownRequest):
                self.send(p.encode_error(seq, request.cmd, p.ResultCode.UNKNOWN_COMMAND))
            else:
                self._handle(seq, request)

    def _reply(self, message: p.DeviceMessage) -> None:
        self.send(p.encode_message(message))

    def _handle(self, seq: int, request: p.Request) -> None:
        error = self._refusal(request)
        if error is not None:
            self.send(p.encode_error(seq, request.cmd, error))
        elif isinstance(request, p.Status):
            self._reply(self._status(seq))
        elif isinstance(request, p.GetInfo):
            self._reply(p.InfoReply(seq, MODEL, SERIAL, FIRMWARE))
        elif isinstance(request, p.LoadKey):
            self._load_key(seq, request)
        elif isinstance(request, p.GetKcv):
            slot = self.slots[request.slot]
            assert slot is not None
            self._reply(p.KcvReply(seq, slot.algorithm, slot.kcv))
        elif isinstance(request, p.GetKsn):
            slot = self.slots[request.slot]
            assert slot is not None
            self._reply(p.KsnReply(seq, slot.algorithm, slot.exhausted, slot.current_ksn))
        elif isinstance(request, p.EraseKeys):
            targets = range(p.SLOT_COUNT) if request.slot == p.ALL_SLOTS else [request.slot]
            for index in targets:
                self.slots[index] = None
            self._reply(p.OkReply(seq, request.cmd))
        elif isinstance(request, p.StartPin):
            self._start_entry(seq, request)
        elif isinstance(request, p.SignStart):
            self._start_signing(seq, request)
        elif isinstance(request, p.SignRead):
            assert self.signing is not None
            png = self.signing.png
            chunk = png[request.offset : request.offset + p.SIGN_CHUNK]
            self._reply(p.SignChunk(seq, self.signing.state, len(png), chunk))
        elif isinstance(request, p.CancelEntry):
            self._reply(p.OkReply(seq, request.cmd))
            self._finish_entry(p.ResultCode.HOST_CANCELED)
        else:
            assert self.entry is not None
            self.entry.digits.clear()
            self._reply(p.OkReply(seq, request.cmd))
            self._event(p.KeyKind.CLEAR)
            self._restart_timer()

    def _refusal(self, request: p.Request) -> p.ResultCode | None:
        """Why the pad refuses ``request`` in its current state, or None."""
        if isinstance(request, p.Status | p.GetInfo):
            return None
        if isinstance(request, p.CancelEntry | p.ClearEntry):
            return None if self.entry is not None else p.ResultCode.NOT_IN_ENTRY
        if self.tamper:
            return p.ResultCode.TAMPER
        if isinstance(request, p.LoadKey | p.EraseKeys | p.StartPin) and self.entry is not None:
            return p.ResultCode.BUSY
        if isinstance(request, p.SignStart) and (
            self.entry is not None
            or (self.signing is not None and self.signing.state is p.SignState.SIGNING)
        ):
            return p.ResultCode.BUSY
        if isinstance(request, p.SignRead) and self.signing is None:
            return p.ResultCode.NOT_IN_ENTRY
        if isinstance(request, p.GetKcv | p.GetKsn | p.StartPin):
            slot = self.slots[request.slot]
            if slot is None:
                return p.ResultCode.NO_KEY
            if isinstance(request, p.StartPin):
                fmt = request.pin_format
                if fmt is not None and fmt != slot.algorithm.pin_format:
                    return p.ResultCode.FORMAT_MISMATCH
                if slot.exhausted:
                    return p.ResultCode.KSN_EXHAUSTED
        return None

    def _status(self, seq: int) -> p.StatusReply:
        states: list[int] = []
        for slot in self.slots:
            if slot is None:
                states.append(p.SlotState.EMPTY)
            else:
                states.append(slot.algorithm.wire | (p.EXHAUSTED_BIT if slot.exhausted else 0))
        return p.StatusReply(
            seq,
            self.entry is not None,
            self.tamper,
            "key_stuck" in self.faults_active,
            tuple(states),
        )

    # -- keys -------------------------------------------------------------------------------

    def _load_key(self, seq: int, request: p.LoadKey) -> None:
        try:
            slot = make_slot(request.algorithm, request.key, request.ksn)
        except paycrypto.PayCryptoError:
            self.send(p.encode_error(seq, request.cmd, p.ResultCode.KEY_REJECTED))
            return
        self.slots[request.slot] = slot
        log_event(
            log,
            "sim_epp_key_loaded",
            slot=request.slot,
            algorithm=str(slot.algorithm),
            kcv=slot.kcv.hex().upper(),
        )
        self._reply(p.KeyLoadedReply(seq, slot.algorithm, slot.kcv, slot.initial_ksn))

    # -- signature --------------------------------------------------------------------------

    def _start_signing(self, seq: int, request: p.SignStart) -> None:
        signing = Signing()
        signing.timer = asyncio.get_running_loop().call_later(
            request.timeout_s, self._end_signing, signing, p.SignState.TIMED_OUT
        )
        self.signing = signing
        self._reply(p.OkReply(seq, request.cmd))

    def _end_signing(self, signing: Signing, state: p.SignState, png: bytes = b"") -> None:
        if signing.state is not p.SignState.SIGNING:
            return
        if signing.timer is not None:
            signing.timer.cancel()
        signing.state = state
        signing.png = png
        log_event(log, "sim_epp_signature", state=state.name.lower(), bytes=len(png))

    def _sign(self, params: dict[str, str]) -> dict[str, str]:
        _only(params, {"name", "cancel"}, "sign")
        signing = self.signing
        if signing is None or signing.state is not p.SignState.SIGNING:
            raise SimError("sign: the pad is not asking for a signature")
        if params.get("cancel", "no") == "yes":
            self._end_signing(signing, p.SignState.CANCELED)
            return {"state": "canceled"}
        name = params.get("name", "").strip()
        if not name:
            raise SimError("sign.name: the signer's name is needed to draw the signature")
        png = draw_signature(name)
        if len(png) > p.SIGN_MAX:
            raise SimError("sign.name: the signature image is too large")
        self._end_signing(signing, p.SignState.DONE, png)
        self.signatures += 1
        return {"state": "done", "bytes": str(len(png)), "sha256": hashlib.sha256(png).hexdigest()}

    # -- PIN entry --------------------------------------------------------------------------

    def _start_entry(self, seq: int, request: p.StartPin) -> None:
        self.entry = Entry(seq, request)
        self._reply(p.OkReply(seq, request.cmd))
        self._restart_timer()

    def _restart_timer(self) -> None:
        entry = self.entry
        if entry is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
        entry.timer = asyncio.get_running_loop().call_later(
            entry.request.timeout_s, self._finish_entry, p.ResultCode.ENTRY_TIMEOUT
        )

    def _event(self, kind: p.KeyKind) -> None:
        assert self.entry is not None
        self._reply(p.KeyEvent(self.entry.seq, kind, len(self.entry.digits)))

    def _key(self, key: str) -> None:
        entry = self.entry
        if entry is None:
            self.keys_ignored += 1
            return
        if key.isdigit():
            if len(entry.digits) >= entry.request.max_len:
                self._event(p.KeyKind.FULL)
            else:
                entry.digits.append(key)
                self._event(p.KeyKind.DIGIT)
        elif key == "C":
            entry.digits.clear()
            self._event(p.KeyKind.CLEAR)
        elif key == "E":
            if len(entry.digits) < entry.request.min_len:
                self._event(p.KeyKind.ENTER_REFUSED)
            else:
                self._event(p.KeyKind.ENTER)
                self._finish_entry(p.ResultCode.OK)
                return
        else:
            self._event(p.KeyKind.CANCEL)
            self._finish_entry(p.ResultCode.CUSTOMER_CANCELED)
            return
        self._restart_timer()

    def _end_entry(self) -> Entry | None:
        entry, self.entry = self.entry, None
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()
        return entry

    def _finish_entry(self, outcome: p.ResultCode) -> None:
        entry = self._end_entry()
        if entry is None:
            return
        request = entry.request
        slot = self.slots[request.slot]
        block = ksn = b""
        fmt = request.pin_format if request.pin_format is not None else 0
        if outcome is p.ResultCode.OK:
            if self.tamper or slot is None:
                outcome = p.ResultCode.TAMPER if self.tamper else p.ResultCode.NO_KEY
            else:
                fmt = slot.algorithm.pin_format
                try:
                    block, ksn = self._pin_block(slot, "".join(entry.digits), request.pan)
                except paycrypto.DukptExhaustedError:
                    outcome = p.ResultCode.KSN_EXHAUSTED
        elif slot is not None:
            fmt = slot.algorithm.pin_format
        count = len(entry.digits)
        entry.digits.clear()
        log_event(log, "sim_epp_pin_entry", outcome=outcome.label, digits=count)
        self._reply(p.PinResult(entry.seq, outcome, count, fmt, block, ksn))

    def _pin_block(self, slot: KeySlot, pin: str, pan: str) -> tuple[bytes, bytes]:
        if slot.dukpt is None:
            raise paycrypto.DukptExhaustedError("counter forced past its end")
        transaction = slot.dukpt.next_transaction()
        slot.last_ksn = transaction.ksn
        self.pin_blocks += 1
        if slot.algorithm is p.Algorithm.TDES:
            clear = paycrypto.encode_format0(pin, pan)
            return paycrypto.encrypt_pin_block_tdes(transaction.pin_key, clear), transaction.ksn
        return paycrypto.encrypt_format4(transaction.pin_key, pin, pan), transaction.ksn

    # -- control ----------------------------------------------------------------------------

    def set_fault(self, fault: str, active: bool) -> None:
        super().set_fault(fault, active)
        if fault == "tamper":
            self.tamper = active
            if active:
                self.slots = [None] * p.SLOT_COUNT
                self._finish_entry(p.ResultCode.TAMPER)
                log_event(log, "sim_epp_tamper", keys="erased")
        elif fault == "exhaust_ksn" and active:
            self.faults_active.discard(fault)  # one-shot
            for slot in self.slots:
                if slot is not None and not slot.exhausted:
                    last = ksn_counter.last_counter(slot.algorithm)
                    slot.last_ksn = ksn_counter.ksn_with_counter(
                        slot.algorithm, slot.initial_ksn, last
                    )
                    slot.dukpt = None

    def act(self, action: str, params: dict[str, str]) -> dict[str, str]:
        if action == "press":
            return self._press(params)
        if action == "load_dev_key":
            return self._load_dev_key(params)
        if action == "sign":
            return self._sign(params)
        if action == "kcv":
            index = _slot_param(params)
            slot = self.slots[index]
            if slot is None:
                raise SimError(f"kcv: slot {index} holds no key")
            return {
                "slot": str(index),
                "algorithm": str(slot.algorithm),
                "kcv": slot.kcv.hex().upper(),
            }
        raise SimError(
            f"action: pin_pad has no action {action!r}; have press, load_dev_key, kcv, sign"
        )

    def _press(self, params: dict[str, str]) -> dict[str, str]:
        _only(params, {"keys"}, "press")
        keys = params.get("keys", "")
        if not keys or not set(keys) <= KEYS:
            raise SimError("press.keys: one or more of 0-9, E (enter), C (clear), X (cancel)")
        if "key_stuck" in self.faults_active:
            keys = keys[0] * STUCK_REPEATS + keys[1:]
        loop = asyncio.get_running_loop()
        # Presses queue behind ones still being typed, so two actions never interleave.
        start = max(loop.time(), self._keys_free_at)
        for index, key in enumerate(keys):
            loop.call_at(start + (index + 1) * KEY_INTERVAL, self._key, key)
        self._keys_free_at = start + len(keys) * KEY_INTERVAL
        return {"keys": str(len(keys)), "entry": "active" if self.entry else "idle"}

    def _load_dev_key(self, params: dict[str, str]) -> dict[str, str]:
        _only(params, {"algorithm", "bdk_hex", "ksn_hex", "slot"}, "load_dev_key")
        index = _slot_param(params)
        name = params.get("algorithm", "")
        if name not in ("tdes", "aes"):
            raise SimError("load_dev_key.algorithm: must be tdes or aes")
        algorithm = p.Algorithm(name)
        try:
            bdk = bytes.fromhex(params.get("bdk_hex", ""))
            ksn = bytes.fromhex(params.get("ksn_hex", ""))
        except ValueError:
            raise SimError("load_dev_key: bdk_hex and ksn_hex must be hexadecimal") from None
        if self.tamper:
            raise SimError("load_dev_key: the PIN pad is tampered")
        if self.entry is not None:
            raise SimError("load_dev_key: a PIN entry is in progress")
        try:
            if algorithm is p.Algorithm.TDES:
                key = tdes_dukpt.derive_ipek(bdk, ksn)
            else:
                key = aes_dukpt.derive_initial_key(bdk, aes_dukpt.ksn_initial_key_id(ksn))
            slot = make_slot(algorithm, key, ksn)
        except paycrypto.PayCryptoError as exc:
            raise SimError(f"load_dev_key: {exc}") from None
        self.slots[index] = slot
        log_event(log, "sim_epp_key_loaded", slot=index, algorithm=name, kcv=slot.kcv.hex().upper())
        return {"slot": str(index), "algorithm": name, "kcv": slot.kcv.hex().upper()}

    def facts(self) -> dict[str, str]:
        facts = {
            "entry": "active" if self.entry is not None else "idle",
            "digits_entered": str(len(self.entry.digits)) if self.entry else "0",
            "tamper": str(self.tamper).lower(),
            "pin_blocks": str(self.pin_blocks),
            "keys_ignored": str(self.keys_ignored),
            "malformed_frames": str(self.malformed),
        }
        for index, slot in enumerate(self.slots):
            facts[f"slot{index}"] = (
                "empty"
                if slot is None
                else f"{slot.algorithm}{' exhausted' if slot.exhausted else ''}"
            )
        return facts


def _only(params: dict[str, str], allowed: set[str], action: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise SimError(f"{action}.{unknown[0]}: unknown parameter")


def _slot_param(params: dict[str, str]) -> int:
    raw = params.get("slot", "0")
    if not raw.isdigit() or int(raw) >= p.SLOT_COUNT:
        raise SimError(f"slot: must be 0-{p.SLOT_COUNT - 1}")
    return int(raw)
