"""Catalogues complete in both languages; every key the page and flows use exists;
amounts, grams and dates formatted per language."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from branchline.agent.cheques import machine as cheque_machine
from branchline.agent.kiosk import i18n
from branchline.agent.kiosk.flows.phone_job import CARRIED as PHONE_JOB_KINDS
from branchline.agent.kiosk.flows.video import BUSINESS_TYPES, MODES
from branchline.agent.kiosk.server import static_dir
from branchline.agent.kiosk.services import SERVICE_IDS
from branchline.agent.tube import machines as m

KIOSK = Path(i18n.__file__).parent


def test_both_catalogues_have_the_same_keys_and_no_empty_text() -> None:
    zh, en = i18n.catalogue("zh-CN"), i18n.catalogue("en")
    assert set(zh) == set(en)
    assert all(v.strip() for v in zh.values()) and all(v.strip() for v in en.values())
    for key in zh:
        if key == "format.datetime":
            continue  # Chinese writes the month as a number, English by name: both get both
        placeholders = set(re.findall(r"\{(\w+)\}", zh[key]))
        assert placeholders == set(re.findall(r"\{(\w+)\}", en[key])), key


def used_keys() -> set[str]:
    """Every literal key the page asks for, and the keys built from known names."""
    # Every page module (app.js, ui.js, screens/*.js, each capability's own module).
    js = "".join(p.read_text() for p in sorted(static_dir().rglob("*.js")))
    keys = set(re.findall(r'\bt\("([a-z_.]+)"', js))
    keys |= set(re.findall(r'title\("([a-z_.]+)"', js))
    keys |= {f"service.{s}" for s in SERVICE_IDS}
    keys |= {f"phone_job.kind.{s}" for s in PHONE_JOB_KINDS}
    keys |= {f"tube.stage.{s}" for s in m.STAGES}
    keys |= {f"cheque.stage.{s}" for s in set(cheque_machine.SCREENS.values())}
    keys |= {f"cheque.outcome.{s}" for s in cheque_machine.FINAL}
    keys |= {f"video.business.{b}" for b in BUSINESS_TYPES} | {f"video.mode.{x}" for x in MODES}
    keys |= {f"video.state.{s}" for s in ("queued", "connecting", "connected", "ended")}
    keys |= {f"account.kind.{k}" for k in ("cash", "metal", "bills")}
    keys |= {f"asset.kind.{k}" for k in ("cash", "metal", "bill")}
    keys |= {f"out_of_service.{r}" for r in ("out_of_service", "maintenance")}
    keys |= {
        f"auth_error.{c}"
        for c in ("timeout", "bank_unavailable", "card_unreadable", "card_refused", "device")
    }
    keys |= {f"session_ended.{r}" for r in ("timeout", "finished", "canceled")}
    keys |= {f"tube.title.{k}" for k in ("deposit", "withdrawal")}
    keys |= {f"statement.{c}" for c in ("date", "description", "amount", "balance")}
    keys |= {f"rates.{c}" for c in ("currency", "bid", "ask")}
    for path in KIOSK.rglob("*.py"):
        keys |= set(
            re.findall(r'"((?:notice|refused|tube\.code|tube\.stage)\.[a-z_]+)"', path.read_text())
        )
    return keys


def test_every_key_the_page_and_flows_use_is_in_both_catalogues() -> None:
    keys = used_keys()
    assert len(keys) > 150
    for lang in ("zh-CN", "en"):
        missing = sorted(keys - set(i18n.catalogue(lang)))
        assert missing == [], f"{lang} lacks {missing}"


# Reasons in the kiosk's code that never reach a customer as a refusal: a page sending a
# malformed action or frame (a page fault, not a customer's), the media pages' signalling,
# and the ends of a phone's job (the phone words those: the gateway's catalogue).
NOT_A_CUSTOMERS_REFUSAL = {
    "invalid_action",
    "invalid_argument",
    "invalid_frame",
    "unknown_method",
    "unknown_service",
    "no_call",
    "canceled_at_terminal",
    "left_queue",
    "not_printed",
    "not_started",
}


def test_every_refusal_a_customer_can_meet_is_worded_in_both_catalogues() -> None:
    """A refusal without a catalogue text shows "That could not be done." with the engine's
    English detail (field names and all: "rate_version: the rate changed ..."): each reason
    the kiosk's code refuses with has its own words instead."""
    reasons: set[str] = set()
    for path in KIOSK.rglob("*.py"):
        reasons |= set(re.findall(r'reason="([a-z_]+)"', path.read_text()))
    assert {"rates_changed", "sign_in_required", "no_transaction"} <= reasons
    for lang in ("zh-CN", "en"):
        known = i18n.catalogue(lang)
        missing = sorted(
            r for r in reasons - NOT_A_CUSTOMERS_REFUSAL if f"refused.{r}" not in known
        )
        assert missing == [], f"{lang} has no words for {missing}"


def test_fact_labels_are_plain_words() -> None:
    """A result screen's labels (``<dt>``) are their own messages, not a "Label: {value}"
    sentence filled with nothing (which left "Account:" beside "Reference")."""
    filled = re.compile(r'el\("dt", \{\}, t\("[^"]+", \{')
    pages = sorted(static_dir().rglob("*.js"))
    assert pages
    found = [f"{p.name}: {m.group(0)}" for p in pages for m in filled.finditer(p.read_text())]
    assert found == []
    for lang in ("zh-CN", "en"):
        for key in ("cheque.account", "cheque.company", "cheque.purchaser", "cheque.fee_total"):
            assert not re.search(r"[:：]\s*$|\{", i18n.catalogue(lang)[key]), (lang, key)


@pytest.mark.parametrize(
    ("lang", "amount", "currency", "shown"),
    [
        ("en", "1234.5", "CNY", "CNY 1,234.50"),
        ("zh-CN", "1234.5", "CNY", "1,234.50 元"),
        ("en", "100", "USD", "USD 100.00"),
        ("zh-CN", "100", "USD", "100.00 美元"),
        ("en", "12.5", "XAU", "12.500 g gold"),
        ("zh-CN", "12.5", "XAU", "黄金 12.500 克"),
        ("en", "-20.00", "CNY", "CNY -20.00"),
        ("en", "1.23456", "USD", "USD 1.23456"),
        ("en", "not a number", "CNY", "CNY not a number"),
        ("en", "5", "ZZZ", "ZZZ 5.00"),
    ],
)
def test_amounts_per_language(lang: str, amount: str, currency: str, shown: str) -> None:
    assert i18n.format_amount(lang, amount, currency) == shown


def test_dates_and_waits_per_language() -> None:
    when = datetime(2026, 12, 6, 21, 40, tzinfo=UTC)
    assert i18n.format_datetime("en", when) == "6 Dec 2026 21:40 UTC"
    assert i18n.format_datetime("zh-CN", when) == "2026年12月6日 21:40 UTC"
    assert i18n.format_seconds("en", 20) == "under 1 min"
    assert i18n.format_seconds("zh-CN", 185) == "约 3 分钟"


def test_an_unknown_language_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="lang: 'fr'"):
        i18n.catalogue("fr")
