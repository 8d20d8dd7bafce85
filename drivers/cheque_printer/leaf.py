"""One cheque leaf as a PDF (fpdf2): the printed face and the machine-readable code line.

fpdf2 is pure Python (no system libraries), maintained, and draws Code 39 barcodes itself,
so the leaf needs no second library. The code line uses the ASCII transcription of E-13B
that MICR fonts use: ``C`` is the on-us symbol, ``A`` the transit symbol
(docs/protocols/cheque-printer.md gives the whole format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fpdf import FPDF

# A cheque leaf: 176 x 80 mm (the common Chinese corporate cheque size, close to a DL form).
LEAF_WIDTH_MM = 176.0
LEAF_HEIGHT_MM = 80.0
SERIAL_DIGITS = 8

_PREFIX = re.compile(r"^[0-9A-Z]{0,6}$")
_DIGITS = re.compile(r"^[0-9]+$")


class LeafError(ValueError):
    """A leaf field is unusable; the message names it."""


@dataclass(frozen=True)
class Leaf:
    company: str
    account: str
    bank_name: str
    bank_code: str
    prefix: str  # the instrument type / bank prefix the bank configures (e.g. "10")
    serial: int  # the 8-digit pre-printed serial the leaf must carry

    @property
    def number(self) -> str:
        return f"{self.prefix}{self.serial:0{SERIAL_DIGITS}d}"

    def code_line(self) -> str:
        return f"C{self.serial:0{SERIAL_DIGITS}d}C A{self.bank_code}A {self.account}C {self.prefix}"

    def check(self) -> None:
        for name, value, limit in (
            ("company", self.company, 60),
            ("bank_name", self.bank_name, 60),
        ):
            if not value.strip() or len(value) > limit:
                raise LeafError(f"{name}: must be 1 to {limit} characters")
        if not _DIGITS.match(self.account) or not 6 <= len(self.account) <= 32:
            raise LeafError("account: must be 6 to 32 digits")
        if not _DIGITS.match(self.bank_code) or len(self.bank_code) != 12:
            raise LeafError("bank_code: must be the 12-digit bank code")
        if not _PREFIX.match(self.prefix):
            raise LeafError("prefix: 0 to 6 digits or capital letters")
        if not 0 < self.serial < 10**SERIAL_DIGITS:
            raise LeafError(f"serial: must be 1 to {SERIAL_DIGITS} digits")


def _latin1(text: str) -> str:
    """The core PDF fonts are Latin-1: anything else prints as '?' rather than failing."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_leaf(leaf: Leaf) -> bytes:
    """The leaf as a one-page PDF."""
    leaf.check()
    pdf = FPDF(orientation="L", unit="mm", format=(LEAF_HEIGHT_MM, LEAF_WIDTH_MM))
    pdf.set_auto_page_break(False)
    pdf.set_creator("Branchline")
    pdf.set_title(f"Cheque {leaf.number}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_xy(8, 6)
    pdf.cell(110, 7, _latin1(leaf.bank_name))
    pdf.set_font("Helvetica", "", 9)
    pdf.set_xy(8, 13)
    pdf.cell(110, 5, f"Bank code {leaf.bank_code}")
    pdf.set_font("Courier", "B", 12)
    pdf.set_xy(118, 6)
    pdf.cell(52, 7, f"No. {leaf.number}", align="R")
    pdf.set_font("Helvetica", "", 10)
    pdf.set_xy(8, 24)
    pdf.cell(160, 6, _latin1(f"Drawer: {leaf.company}"))
    pdf.set_xy(8, 31)
    pdf.cell(160, 6, f"Account: {leaf.account}")
    pdf.set_xy(8, 40)
    pdf.cell(160, 6, "Pay ______________________________________  Amount ______________")
    # The barcode carries the cheque number: tests (and a teller's scanner) read it back.
    pdf.code39(f"*{leaf.number}*", x=8, y=50, w=0.6, h=10)
    pdf.set_font("Courier", "", 11)
    pdf.set_xy(8, 68)
    pdf.cell(160, 6, leaf.code_line())
    return bytes(pdf.output())
