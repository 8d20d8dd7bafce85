"""Reading an EMV contact application: the APDU dialogue, independent of how APDUs travel.

Steps (EMV 4.x Book 1 section 12, Book 3 section 10): SELECT the PSE ``1PAY.SYS.DDF01``
and read its directory records to list the card's applications (or, when the card has no
PSE, try a list of well-known AIDs), SELECT the chosen AID, GET PROCESSING OPTIONS with
zero-filled PDOL data (no terminal risk data is needed to read records), then READ RECORD
for every record the AFL names, and pick PAN, expiry, name and track 2 equivalent out of
the records. T=0 status words 61xx / 6Cxx are followed up transparently.

Errors are ``ChipError`` with a stable code; their messages never quote card data (a
``Malformed`` reason from a data element can hold PAN digits, so it is not passed on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.card_reader import apdu, emv_tlv
from branchline.drivers.card_reader.apdu import CommandApdu, ResponseApdu
from branchline.drivers.card_reader.tracks import luhn_valid
from branchline.drivers.malformed import Malformed

Transmit = Callable[[CommandApdu], ResponseApdu]

TAG_PRIORITY = 0x87
TAG_DIRECTORY_SFI = 0x88
# Tried in order when the card has no PSE (EMV Book 1 12.3.3, "list of AIDs").
KNOWN_AIDS = tuple(
    bytes.fromhex(aid)
    for aid in (
        "A0000000031010",  # Visa credit/debit
        "A0000000032010",  # Visa Electron
        "A0000000041010",  # Mastercard
        "A0000000043060",  # Maestro
        "A000000333010101",  # UnionPay debit
        "A00000002501",  # American Express
    )
)
MAX_FOLLOW_UPS = 8  # 61xx chains of a real card are 1-2 long; this only stops a loop
MAX_DIRECTORY_RECORDS = 16


class ChipError(DeviceError):
    def __init__(self, completion: Completion, code: str, message: str) -> None:
        super().__init__(completion, code, message)


def _card_said(step: str, response: ResponseApdu) -> ChipError:
    return ChipError(
        Completion.INVALID_DATA,
        f"chip_sw_{response.sw:04X}",
        f"chip card refused {step}: {response.meaning} (SW {response.sw:04X})",
    )


def _malformed(step: str, detail: str = "") -> ChipError:
    suffix = f": {detail}" if detail else ""
    return ChipError(Completion.INVALID_DATA, "chip_data_malformed", f"{step}{suffix}")


def with_follow_up(transmit: Transmit) -> Transmit:
    """Wrap a raw APDU exchange with the T=0 rules: 61xx -> GET RESPONSE, 6Cxx -> resend."""

    def exchange(command: CommandApdu) -> ResponseApdu:
        collected = b""
        for _ in range(MAX_FOLLOW_UPS):
            response = transmit(command)
            following = apdu.follow_up(command, response)
            if following is None:
                return ResponseApdu(collected + response.data, response.sw1, response.sw2)
            if response.sw1 == 0x61:
                collected += response.data
            command = following
        raise ChipError(
            Completion.INVALID_DATA,
            "chip_follow_up_loop",
            f"chip card kept asking for GET RESPONSE / a new Le after {MAX_FOLLOW_UPS} tries",
        )

    return exchange


@dataclass(frozen=True)
class ChipRead:
    aid: bytes
    app_label: str | None
    pan: str
    expiry: str | None  # YYYY-MM
    expiry_date: str | None  # YYYY-MM-DD as on the card
    cardholder_name: str | None
    track2: emv_tlv.Track2Equivalent | None


def _parse(step: str, data: bytes) -> tuple[emv_tlv.Tlv, ...]:
    tlvs = emv_tlv.parse(data)
    if isinstance(tlvs, Malformed):
        # Reasons from the structural parser name offsets and tags only, never values.
        raise _malformed(f"{step} returned bad TLV data", tlvs.reason)
    return tlvs


def _label(tlvs: tuple[emv_tlv.Tlv, ...]) -> str | None:
    label = emv_tlv.find(tlvs, emv_tlv.TAG_APP_LABEL)
    if label is None or not label.value.isascii():
        return None
    text = label.value.decode("ascii").strip()
    return text if text.isprintable() and text else None


@dataclass(frozen=True)
class _Candidate:
    aid: bytes
    label: str | None
    priority: int  # 1 highest .. 15, 16 = none given


def _directory(transmit: Transmit) -> list[_Candidate]:
    """Applications listed in the PSE directory, best priority first; [] when there is none."""
    response = transmit(apdu.select_by_name(apdu.PSE))
    if not response.ok:
        return []  # 6A82 and friends: no PSE, fall back to the AID list
    sfi_tlv = emv_tlv.find(_parse("SELECT PSE", response.data), TAG_DIRECTORY_SFI)
    if sfi_tlv is None or len(sfi_tlv.value) != 1 or not 1 <= sfi_tlv.value[0] <= 30:
        return []
    sfi = sfi_tlv.value[0]
    found: list[_Candidate] = []
    for record in range(1, MAX_DIRECTORY_RECORDS + 1):
        response = transmit(apdu.read_record(record, sfi))
        if response.sw == 0x6A83:  # record not found: end of the directory
            break
        if not response.ok:
            raise _card_said(f"READ RECORD {record} of the PSE directory", response)
        for entry in _parse("READ RECORD (directory)", response.data):
            for template in emv_tlv.walk((entry,)):
                if template.tag != emv_tlv.TAG_APP_TEMPLATE:
                    continue
                aid = template.find(emv_tlv.TAG_AID)
                if aid is None or not 5 <= len(aid.value) <= 16:
                    continue
                prio = template.find(TAG_PRIORITY)
                level = prio.value[0] & 0x0F if prio is not None and prio.value else 0
                found.append(_Candidate(aid.value, _label(template.children), level or 16))
    return sorted(found, key=lambda c: c.priority)


def _dol_length(dol: bytes) -> int | None:
    """Total length of the data a DOL (tag + length pairs) asks for; None when malformed."""
    total, i = 0, 0
    while i < len(dol):
        start = i
        i += 1
        if dol[start] & 0x1F == 0x1F:
            while i < len(dol) and dol[i] & 0x80 and i - start < 3:
                i += 1
            i += 1
        if i >= len(dol):
            return None
        total += dol[i]
        i += 1
    return total


def _select_application(
    transmit: Transmit, candidates: list[_Candidate]
) -> tuple[_Candidate, tuple[emv_tlv.Tlv, ...]]:
    last: ResponseApdu | None = None
    for candidate in candidates:
        response = transmit(apdu.select_by_name(candidate.aid))
        if response.ok:
            return candidate, _parse("SELECT AID", response.data)
        last = response
    if last is not None and last.sw not in (0x6A82, 0x6A81):
        raise _card_said("SELECT AID", last)
    raise ChipError(
        Completion.INVALID_DATA,
        "no_application",
        "chip card has no application this terminal reads",
    )


def read_application(transmit: Transmit) -> ChipRead:
    """Run the whole dialogue; ``transmit`` must already apply ``with_follow_up``."""
    listed = _directory(transmit)
    candidates = listed or [_Candidate(aid, None, 16) for aid in KNOWN_AIDS]
    chosen, fci = _select_application(transmit, candidates)
    df_name = emv_tlv.find(fci, emv_tlv.TAG_DF_NAME)
    aid = df_name.value if df_name is not None and df_name.value else chosen.aid

    pdol = emv_tlv.find(fci, emv_tlv.TAG_PDOL)
    pdol_length = _dol_length(pdol.value) if pdol is not None else 0
    if pdol_length is None or pdol_length > 253:
        raise _malformed("SELECT AID returned a PDOL that does not parse")
    response = transmit(apdu.get_processing_options(bytes(pdol_length)))
    if not response.ok:
        raise _card_said("GET PROCESSING OPTIONS", response)
    gpo = emv_tlv.decode_gpo_response(response.data)
    if isinstance(gpo, Malformed):
        raise _malformed("GET PROCESSING OPTIONS returned no valid AIP and AFL", gpo.reason)

    records: list[emv_tlv.Tlv] = []
    for entry in gpo.afl:
        for record in range(entry.first, entry.last + 1):
            response = transmit(apdu.read_record(record, entry.sfi))
            if not response.ok:
                raise _card_said(f"READ RECORD {record} of SFI {entry.sfi}", response)
            tlvs = _parse("READ RECORD", response.data)
            if len(tlvs) != 1 or tlvs[0].tag != emv_tlv.TAG_RECORD:
                raise _malformed(f"record {record} of SFI {entry.sfi} is not one tag 70 template")
            records.extend(tlvs)

    facts = emv_tlv.card_facts(records)
    if isinstance(facts, Malformed):
        raise _malformed("a data element in the card's records (PAN, expiry, name, track 2) is bad")
    if facts.pan is None:
        raise ChipError(Completion.INVALID_DATA, "no_pan", "chip card records carry no PAN")
    if not luhn_valid(facts.pan):
        raise ChipError(
            Completion.INVALID_DATA, "pan_check_digit", "chip card PAN fails the Luhn check"
        )
    if facts.track2 is not None and facts.track2.pan != facts.pan:
        raise ChipError(
            Completion.INVALID_DATA,
            "pan_mismatch",
            "chip card PAN (5A) differs from its track 2 equivalent (57)",
        )
    expiry = facts.expiry
    month = expiry.strftime("%Y-%m") if expiry is not None else None
    if month is None and facts.track2 is not None:
        month = f"20{facts.track2.expiry[:2]}-{facts.track2.expiry[2:]}"
    return ChipRead(
        aid=aid,
        app_label=_label(fci) or chosen.label,
        pan=facts.pan,
        expiry=month,
        expiry_date=expiry.isoformat() if expiry is not None else None,
        cardholder_name=facts.cardholder_name,
        track2=facts.track2,
    )
