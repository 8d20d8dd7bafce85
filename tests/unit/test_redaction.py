"""One redaction rule for every log line, structured field and exception text."""

from __future__ import annotations

import io
import json
import logging

from branchline.common.logs import JsonFormatter, RedactingFilter, log_event
from branchline.common.redaction import mask_pan, redact_fields, redact_text

PAN = "4012345678909"  # ANSI X9.24-1 example PAN (Luhn-valid)
TRACK2 = ";4761739001010010=25122011143804400000?"
TRACK1 = "%B4761739001010010^DOE/JOHN^2512201114380440000000?"


def test_mask_pan_keeps_first_six_and_last_four() -> None:
    assert mask_pan(PAN) == "401234***8909"
    assert mask_pan("4761739001010010") == "476173******0010"


def test_pans_in_text_are_masked_and_other_numbers_kept() -> None:
    text = f"card {PAN} declined; order 1234567890123 ok"  # 1234567890123 fails Luhn
    out = redact_text(text)
    assert PAN not in out and "401234***8909" in out
    assert "1234567890123" in out


def test_track_data_is_dropped() -> None:
    out = redact_text(f"read {TRACK1} and {TRACK2}")
    assert "DOE/JOHN" not in out and "4761739001010010" not in out
    assert "[track1 dropped]" in out and "[track2 dropped]" in out


def test_sensitive_fields_are_dropped() -> None:
    fields = redact_fields(
        {
            "pin_block": "1B9C1845EB993A7A",
            "pan": PAN,
            "note": f"pan {PAN}",
            "nested": {"track2": TRACK2, "ok": 1},
        }
    )
    assert fields["pin_block"] == "[dropped]" and fields["pan"] == "401234***8909"
    assert fields["note"] == "pan 401234***8909"
    assert fields["nested"] == {"track2": "[dropped]", "ok": 1}


def test_filter_covers_message_fields_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redaction")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.warning("declined %s", PAN)
    log_event(logger, "pin_entered", pin_block="10A01C8D02C69107", card=PAN)
    try:
        raise ValueError(f"bad card {PAN} track {TRACK2}")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    for secret in (PAN, "10A01C8D02C69107", "4761739001010010"):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["msg"] == "declined 401234***8909"
    assert lines[1]["pin_block"] == "[dropped]"
    assert "401234***8909" in lines[2]["exception"]


# A recording's SHA-256 from a CI run: its digits "29564863028942" pass the Luhn check.
DIGEST = "db76454a4b5eb60f691194d29564863028942b05f1f0dcefde17b767aca1bb5d"


def test_a_sha256_is_left_whole_though_its_digits_pass_the_luhn_check() -> None:
    assert redact_text("29564863028942") == "295648****8942"  # what the digest holds
    out = redact_text(f"recording {DIGEST} of card {PAN}, {DIGEST.upper()}")
    assert out == f"recording {DIGEST} of card 401234***8909, {DIGEST.upper()}"
    assert redact_fields({"sha256": DIGEST}) == {"sha256": DIGEST}
    # Not a digest (65 hex digits, or glued to a word): the card-number rule applies.
    assert redact_text(DIGEST + "0") != DIGEST + "0"
    assert redact_text("x" + DIGEST) != "x" + DIGEST
