"""A task's business fields and materials as a teller reads them.

Fields: each labelled in words of the console's language (``task.field.<key>``; a key the
catalogue does not know is shown humanised, ``loan_officer`` -> "Loan officer"), amounts as
money, ID numbers partly masked, card numbers to first 6 / last 4, secrets (tokens, PINs,
tracks, keys) withheld. Field values are decimal strings in major units, as everywhere on
Branchline's wire (``"5000"`` is CNY 5,000.00); the currency is the task's ``currency`` field,
else the bank's base currency.

Materials: an image only when its bytes are one the browser shows (sniffed, whatever the
uploader declared: the counter CLI sends ``application/octet-stream`` unless told), by the
URL of the console route that serves it (materials_web.py); text with ID numbers masked;
anything else by name with a word saying there is no image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from branchline.common.redaction import redact_text
from branchline.server.console.i18n import format_amount, named, text
from branchline.server.console.image_route import image_type
from branchline.server.console.redact import mask_id_number, mask_pan
from branchline.server.ledger.money import BASE_CURRENCY
from branchline.v1 import dispatch_pb2 as pb

# Field names that carry a national ID number: shown partly masked.
ID_FIELD = re.compile(r"id_?(number|no|card)", re.IGNORECASE)
# Field names that carry a card number: first 6 / last 4 at most.
CARD_FIELD = re.compile(r"(^|_)(pan|card_?(number|no|num))($|_)", re.IGNORECASE)
# Field names whose values never reach a page.
SECRET_FIELD = re.compile(
    r"(^|_)(token|pin|pin_?block|tracks?\d?|cvv2?|cvc|password|secret|key|ipek|bdk)($|_)",
    re.IGNORECASE,
)
AMOUNT_FIELD = re.compile(r"(^|_)amount($|_)", re.IGNORECASE)
DECIMAL = re.compile(r"-?\d{1,15}(\.\d{1,6})?")
WITHHELD = "[withheld]"
# An 18-character resident ID number inside text material.
ID_IN_TEXT = re.compile(r"\b\d{17}[\dXx]\b")


def masked(key: str, value: str) -> str:
    """The value as a page may show it (language-free): secrets withheld, ID and card
    numbers masked, any card number or track in free text masked too."""
    if SECRET_FIELD.search(key):
        return WITHHELD
    if ID_FIELD.search(key):
        return mask_id_number(value)
    if CARD_FIELD.search(key):
        return mask_pan(value)
    return masked_text(value)


def masked_text(value: str) -> str:
    """Free text: ID numbers in it partly masked (before the card rule, which would keep
    more of them), card numbers and tracks as every log has them."""
    return redact_text(ID_IN_TEXT.sub(lambda m: mask_id_number(m.group()), value))


def masked_fields(fields: Mapping[str, str]) -> dict[str, str]:
    return {k: masked(k, v) for k, v in fields.items()}


def field_label(lang: str, key: str) -> str:
    return named(lang, "task.field", key)


def field_rows(lang: str, fields: Mapping[str, str]) -> list[dict[str, str]]:
    """Each field as ``{"key", "label", "value"}``, by key (a protobuf map keeps no order:
    sorted, they stand in the same places on every render and every console)."""
    currency = fields.get("currency", "").strip() or BASE_CURRENCY
    rows = []
    for key, value in sorted(fields.items()):
        if SECRET_FIELD.search(key):
            shown = text(lang, "task.field_withheld")
        elif AMOUNT_FIELD.search(key) and DECIMAL.fullmatch(value.strip()):
            shown = format_amount(lang, value.strip(), currency)
        else:
            shown = masked(key, value)
        rows.append({"key": key, "label": field_label(lang, key), "value": shown})
    return rows


def material_view(material: pb.Material, data: bytes, url: str) -> dict[str, Any]:
    """An image by the console route that serves it (``url``: the bytes never travel in the
    state, which every change sends again), text with ID numbers masked, or neither (the
    page says there is no image)."""
    out: dict[str, Any] = {
        "name": material.name,
        "content_type": material.content_type,
        "size": material.size,
        "sha256": material.sha256,
        "image_url": "",
        "text": "",
    }
    if image_type(data):
        out["image_url"] = url
    elif material.content_type.startswith("text/") or material.content_type == "application/json":
        out["text"] = masked_text(data.decode("utf-8", errors="replace"))
    return out
