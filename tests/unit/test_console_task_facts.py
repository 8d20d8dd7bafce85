"""A task's fields and materials as the console shows them to a teller (task_facts.py):
labelled in words of the console's language, amounts as money, ID and card numbers masked,
secrets withheld, unknown keys humanised; a material an image only when its bytes are one
the browser shows (the server sniffs them), else its text or nothing (the page says there
is no image), or deleted by the server's retention with when."""

from __future__ import annotations

from datetime import UTC, datetime

from branchline.common.image_types import image_type
from branchline.server.console.i18n import business_name, catalogue, humanised
from branchline.server.console.task_facts import (
    field_rows,
    masked_fields,
    material_view,
)
from branchline.v1 import dispatch_pb2 as pb

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
ID_NUMBER = "11010519491231002X"
PAN = "4761739001010010"  # Luhn-valid
FIELDS = {
    "amount": "5000",
    "id_number": ID_NUMBER,
    "term_months": "24",
    "card_number": PAN,
    "card_token": "tok_9f8e7d6c",
    "loan_officer": "Wang Fang",
    "note_text": f"card {PAN} on file",
}


def rows(lang: str, fields: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {r["key"]: (r["label"], r["value"]) for r in field_rows(lang, fields)}


def test_fields_are_labelled_in_words_of_each_language() -> None:
    en, zh = rows("en", FIELDS), rows("zh-CN", FIELDS)
    assert en["amount"] == ("Amount", "CNY 5,000.00")
    assert zh["amount"] == ("金额", "5,000.00 CNY")
    assert en["id_number"] == ("ID number", "1101************2X")
    assert zh["id_number"][0] == "证件号码"
    assert en["term_months"] == ("Term (months)", "24")
    # A key the catalogue does not know: readable words, never the raw key.
    assert en["loan_officer"] == ("Loan officer", "Wang Fang")
    assert zh["loan_officer"][0] == "Loan officer"
    assert [r["key"] for r in field_rows("en", FIELDS)] == sorted(FIELDS)
    for label, _ in [*en.values(), *zh.values()]:
        assert label not in FIELDS, label


def test_card_numbers_masked_and_tokens_withheld() -> None:
    en = rows("en", FIELDS)
    assert en["card_number"] == ("Card number", "476173******0010")
    assert en["card_token"] == ("Card token", "withheld (never shown here)")
    assert rows("zh-CN", FIELDS)["card_token"][1] == "已隐藏（此处不显示）"
    assert en["note_text"][1] == "card 476173******0010 on file"
    shown = repr(field_rows("en", FIELDS)) + repr(masked_fields(FIELDS))
    for secret in (PAN, "tok_9f8e7d6c", ID_NUMBER):
        assert secret not in shown
    assert masked_fields(FIELDS)["card_token"] == "[withheld]"
    assert masked_fields(FIELDS)["id_number"] == "1101************2X"


def test_amounts_in_the_tasks_currency_and_odd_ones_as_sent() -> None:
    assert rows("en", {"amount": "1234.5", "currency": "usd"})["amount"][1] == "USD 1,234.50"
    assert rows("en", {"loan_amount": "80000"})["loan_amount"] == ("Loan amount", "CNY 80,000.00")
    assert rows("en", {"amount": "about 5k"})["amount"][1] == "about 5k"
    assert rows("en", {"amount": "Infinity"})["amount"][1] == "Infinity"
    assert rows("en", {"amount": "1e999"})["amount"][1] == "1e999"


def test_humanised_keys() -> None:
    assert humanised("loan_officer") == "Loan officer"
    assert humanised("loanOfficer") == "Loan officer"
    assert humanised("branch-code") == "Branch code"
    assert humanised("_") == "_"


def test_business_types_in_words_of_each_language() -> None:
    """The kiosk's business types (agent/kiosk/flows/video.py) by the same ids; an id the
    catalogue does not know reads as words, never as the raw id."""
    kiosk = ("account_opening", "loan", "card_services", "foreign_exchange", "other")
    for lang in ("en", "zh-CN"):
        for kind in kiosk:
            assert f"business.{kind}" in catalogue(lang), (lang, kind)
    assert business_name("en", "loan") == "Loans"
    assert business_name("zh-CN", "account_opening") == "开户"
    assert business_name("en", "back_office") == "Back office"
    assert business_name("zh-CN", "safe_deposit_box") == "Safe deposit box"


def material(name: str, content_type: str, size: int, data: bytes = b"") -> pb.Material:
    """The entry as the server lists it: the image type sniffed from ``data``."""
    return pb.Material(
        name=name,
        content_type=content_type,
        size=size,
        sha256="ab" * 32,
        image_type=image_type(data),
    )


def test_an_image_is_shown_by_what_its_bytes_are() -> None:
    # Declared as the counter CLI's default: still a PNG, shown as one, by its URL alone.
    assert image_type(PNG) == "image/png"
    url = "/tasks/T-1/materials/0"
    shown = material_view(material("id-front", "application/octet-stream", len(PNG), PNG), url)
    assert shown["image_url"] == url and shown["text"] == "" and shown["deleted_at"] == ""
    assert "base64" not in str(shown) and "data:" not in str(shown)
    jpeg = b"\xff\xd8\xff\xe0" + bytes(40)
    assert image_type(jpeg) == "image/jpeg"
    assert material_view(material("a.jpg", "image/jpeg", 44, jpeg), url)["image_url"] == url
    assert image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"


def test_no_image_when_the_browser_cannot_show_one() -> None:
    heic = b"\x00\x00\x00\x18ftypheic" + bytes(40)
    assert image_type(heic) == "" and image_type(b"%PDF-1.7\n") == ""
    url = "/tasks/T-1/materials/0"
    for view in (
        material_view(material("id.heic", "image/heic", len(heic), heic), url),
        material_view(material("form.pdf", "application/pdf", 9, b"%PDF-1.7\n"), url),
    ):
        assert view["image_url"] == "" and view["text"] == ""


def test_a_deleted_material_is_shown_by_name_with_when() -> None:
    gone = material("id-front.png", "image/png", len(PNG))
    gone.deleted_at.FromDatetime(datetime(2026, 12, 7, 3, 0, tzinfo=UTC))
    shown = material_view(gone, "/tasks/T-1/materials/0")
    assert shown["deleted_at"] == "2026-12-07 03:00:00 UTC"
    assert shown["image_url"] == "" and shown["text"] == "" and shown["name"] == "id-front.png"


def test_text_material_masks_id_and_card_numbers() -> None:
    data = f"id {ID_NUMBER} card {PAN}".encode()
    shown = material_view(material("notes.txt", "text/plain", len(data)), "/x", data)
    assert shown["image_url"] == ""
    assert shown["text"] == "id 1101************2X card 476173******0010"
