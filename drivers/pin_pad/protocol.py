"""Branchline EPP serial command set: framing, messages, and an incremental never-raising decoder.

Frame (both directions)::

    STX  LEN_H LEN_L  SEQ  CMD  PAYLOAD...  ETX  LRC
    02   LEN = 2 + len(PAYLOAD), big-endian  03   XOR of every byte from LEN_H through ETX

SEQ (1-255) is chosen by the host for each request; the PIN pad copies it into its reply and
into every event of a PIN entry, so replies and events always match their request. SEQ 0 is
reserved for the device. A reply's CMD is the request's CMD | 0x80; its first payload byte is
a result code (``ResultCode``); when that is not ``ok`` the payload is that byte alone.
PAYLOAD is at most 256 bytes. Multi-byte numbers are big-endian; PANs are ASCII digits.

Host -> PIN pad requests, and the payload of the pad's ``ok`` reply (after the result byte):

=====  ============  ==============================================  =================================
CMD    name          request payload                                 ok-reply payload
=====  ============  ==============================================  =================================
0x10   STATUS        —                                               state(1: 0 idle, 1 entry active)
                                                                     flags(1: bit0 tamper, bit1 key
                                                                     stuck) slots(1)=4, then one byte
                                                                     per slot: 0 empty, 1 tdes, 2 aes,
                                                                     | 0x80 when its KSN is exhausted
0x11   GET_INFO      —                                               model, serial, firmware: each
                                                                     len(1) + ASCII
0x20   LOAD_KEY      slot(1) alg(1: 1 tdes, 2 aes) key_len(1) key    alg(1) kcv_len(1) kcv ksn_len(1)
                     ksn_len(1) ksn — IPEK (tdes, 16 bytes, KSN 10)  ksn — KCV 3 bytes (tdes: E(key,
                     or AES initial key (16/24/32, KSN 12); the      0^8)) or 5 bytes (aes: CMAC(key,
                     KSN's transaction counter must be 0             0^16))
0x21   GET_KCV       slot(1)                                         alg(1) kcv_len(1) kcv
0x22   GET_KSN       slot(1)                                         alg(1) flags(1: bit0 exhausted)
                                                                     ksn_len(1) ksn — the KSN of the
                                                                     next PIN block; once exhausted,
                                                                     the last one
0x23   ERASE_KEYS    slot(1; 0xFF = every slot)                      —
0x30   START_PIN     slot(1) min(1) max(1) timeout_s(1) format(1:    — then KEY_EVENTs and one
                     0, 4, or 0xFF = by the key: tdes 0, aes 4)      PIN_RESULT, all with this SEQ
                     pan_len(1) pan (8-19 ASCII digits)
0x31   CANCEL_ENTRY  —                                               — (the entry ends with PIN_RESULT
                                                                     host_canceled)
0x32   CLEAR_ENTRY   —                                               — (digits entered so far erased)
0x50   SIGN_START    timeout_s(1)                                    — the pad's screen asks the
                                                                     customer to sign (the previous
                                                                     signature is dropped)
0x51   SIGN_READ     offset(2)                                       state(1: 0 signing, 1 done,
                                                                     2 timed out, 3 customer
                                                                     canceled) total(2) chunk_len(1)
                                                                     chunk — the signature PNG from
                                                                     offset, at most 200 bytes
=====  ============  ==============================================  =================================

PIN pad -> host events during a PIN entry (never replies; SEQ of the START_PIN):

=====  ============  ======================================================================
0x40   KEY_EVENT     kind(1) count(1): the number of digits entered after the key. kind is
                     'D' digit, 'F' digit ignored (already at max), 'C' clear, 'E' enter
                     accepted, 'R' enter refused (fewer than min digits), 'X' cancel key.
                     Digit values never leave the PIN pad.
0x41   PIN_RESULT    outcome(1: a ResultCode) digits(1) format(1) block_len(1) block
                     ksn_len(1) ksn — block and KSN are empty unless outcome is ok. The block
                     is ISO 9564 format 0 under the TDES DUKPT PIN key (8 bytes) or format 4
                     under the AES DUKPT PIN key (16 bytes); the KSN is that transaction's.
=====  ============  ======================================================================

LOAD_KEY carries the initial key in clear: it is meant for a key-loading ceremony on a
trusted line (or the simulator); a key wrapped under a KEK (TR-31) would need its own command.

START_PIN's timeout runs from the start and restarts at every key press; when it expires the
entry ends with PIN_RESULT entry_timeout. The pad enforces min and max itself.

Result codes: 00 ok, 01 unknown_command, 02 bad_parameter, 03 no_key, 04 ksn_exhausted,
05 busy (an entry is in progress), 06 tamper (keys erased), 07 not_in_entry, 08 key_rejected,
09 format_mismatch, and as PIN_RESULT outcomes 10 customer_canceled, 11 entry_timeout,
12 host_canceled.

Decoding never raises: anything that is not a valid frame or message comes out as
``Malformed`` naming what was wrong, and the decoder resynchronises on the next STX.

This module is the command set's one import (``from branchline.drivers.pin_pad import
protocol as p``); the code is split by role: ``codes`` (command and result codes, limits),
``frames`` (framing and the decoder), ``fields`` (payload reader and checks), ``requests``
(host -> pad), ``messages`` (pad -> host) and ``redaction`` (the wire spy's view).
"""

from __future__ import annotations

from branchline.drivers.pin_pad.codes import (
    ALGORITHM_BY_WIRE,
    ALL_SLOTS,
    BLOCK_LENGTH,
    EXHAUSTED_BIT,
    FORMAT_BY_KEY,
    PAN_MAX,
    PAN_MIN,
    PIN_MAX,
    PIN_MIN,
    REPLY_BIT,
    SIGN_CHUNK,
    SIGN_MAX,
    SLOT_COUNT,
    Algorithm,
    Cmd,
    KeyKind,
    ResultCode,
    SignState,
    SlotState,
)
from branchline.drivers.pin_pad.frames import (
    ETX,
    MAX_PAYLOAD,
    STX,
    Frame,
    FrameDecoder,
    Malformed,
    encode_frame,
    lrc,
)
from branchline.drivers.pin_pad.messages import (
    DeviceMessage,
    ErrorReply,
    InfoReply,
    KcvReply,
    KeyEvent,
    KeyLoadedReply,
    KsnReply,
    OkReply,
    PinResult,
    SignChunk,
    StatusReply,
    decode_device_message,
    encode_error,
    encode_message,
    encode_ok,
    reply_to,
)
from branchline.drivers.pin_pad.redaction import (
    redact_frame,
)
from branchline.drivers.pin_pad.requests import (
    BadRequest,
    CancelEntry,
    ClearEntry,
    EraseKeys,
    GetInfo,
    GetKcv,
    GetKsn,
    LoadKey,
    Request,
    SignRead,
    SignStart,
    StartPin,
    Status,
    UnknownRequest,
    decode_request,
    encode_request,
)

__all__ = [
    "ALGORITHM_BY_WIRE",
    "ALL_SLOTS",
    "Algorithm",
    "BLOCK_LENGTH",
    "BadRequest",
    "CancelEntry",
    "ClearEntry",
    "Cmd",
    "DeviceMessage",
    "ETX",
    "EXHAUSTED_BIT",
    "EraseKeys",
    "ErrorReply",
    "FORMAT_BY_KEY",
    "Frame",
    "FrameDecoder",
    "GetInfo",
    "GetKcv",
    "GetKsn",
    "InfoReply",
    "KcvReply",
    "KeyEvent",
    "KeyKind",
    "KeyLoadedReply",
    "KsnReply",
    "LoadKey",
    "MAX_PAYLOAD",
    "Malformed",
    "OkReply",
    "PAN_MAX",
    "PAN_MIN",
    "PIN_MAX",
    "PIN_MIN",
    "PinResult",
    "REPLY_BIT",
    "Request",
    "ResultCode",
    "SIGN_CHUNK",
    "SIGN_MAX",
    "SLOT_COUNT",
    "STX",
    "SignChunk",
    "SignRead",
    "SignStart",
    "SignState",
    "SlotState",
    "StartPin",
    "Status",
    "StatusReply",
    "UnknownRequest",
    "decode_device_message",
    "decode_request",
    "encode_error",
    "encode_frame",
    "encode_message",
    "encode_ok",
    "encode_request",
    "lrc",
    "redact_frame",
    "reply_to",
]
