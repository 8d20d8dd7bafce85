"""The resident ID card's text block, the 18-character ID number, and card validation.

Text block (256 bytes, UCS-2 little-endian, each field padded with spaces), as laid out by
the GA 467 read-text reply:

=================  =====  ==========================================================
field              bytes  content
=================  =====  ==========================================================
name               30     up to 15 characters
sex                2      code: 1 male, 2 female, 0 unknown, 9 unspecified (GB/T 2261.1)
ethnicity          4      two-digit code, GB 3304 (01 Han ... 56 Jino, 97, 98)
birth date         16     YYYYMMDD
address            70     up to 35 characters
ID number          36     18 characters
issuing authority  30     up to 15 characters
valid from         16     YYYYMMDD
valid to           16     YYYYMMDD, or "长期" (long-term)
reserved           36     spaces
=================  =====  ==========================================================

ID number (GB 11643-1999): 6-digit region code, 8-digit birth date, 3-digit sequence (odd
for men), and an ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from branchline.drivers.id_reader.frames import PHOTO_LEN, TEXT_LEN, Malformed

LONG_TERM = "长期"

# (name, byte width) in block order; the widths add up to 220, the rest is reserved.
_FIELDS = (
    ("name", 30),
    ("sex_code", 2),
    ("ethnicity_code", 4),
    ("birth_date", 16),
    ("address", 70),
    ("id_number", 36),
    ("issuing_authority", 30),
    ("valid_from", 16),
    ("valid_to", 16),
)
_PAD = " \x00"  # spaces are the padding; NULs appear on some readers' blanked fields

SEXES = {"0": "unknown", "1": "male", "2": "female", "9": "unspecified"}

# GB 3304-91 codes of the nationalities of China (Chinese name, romanised name).
ETHNICITIES = {
    "01": ("汉", "Han"),
    "02": ("蒙古", "Mongol"),
    "03": ("回", "Hui"),
    "04": ("藏", "Tibetan"),
    "05": ("维吾尔", "Uyghur"),
    "06": ("苗", "Miao"),
    "07": ("彝", "Yi"),
    "08": ("壮", "Zhuang"),
    "09": ("布依", "Buyei"),
    "10": ("朝鲜", "Korean"),
    "11": ("满", "Manchu"),
    "12": ("侗", "Dong"),
    "13": ("瑶", "Yao"),
    "14": ("白", "Bai"),
    "15": ("土家", "Tujia"),
    "16": ("哈尼", "Hani"),
    "17": ("哈萨克", "Kazakh"),
    "18": ("傣", "Dai"),
    "19": ("黎", "Li"),
    "20": ("傈僳", "Lisu"),
    "21": ("佤", "Va"),
    "22": ("畲", "She"),
    "23": ("高山", "Gaoshan"),
    "24": ("拉祜", "Lahu"),
    "25": ("水", "Sui"),
    "26": ("东乡", "Dongxiang"),
    "27": ("纳西", "Naxi"),
    "28": ("景颇", "Jingpo"),
    "29": ("柯尔克孜", "Kyrgyz"),
    "30": ("土", "Monguor"),
    "31": ("达斡尔", "Daur"),
    "32": ("仫佬", "Mulao"),
    "33": ("羌", "Qiang"),
    "34": ("布朗", "Blang"),
    "35": ("撒拉", "Salar"),
    "36": ("毛南", "Maonan"),
    "37": ("仡佬", "Gelao"),
    "38": ("锡伯", "Xibe"),
    "39": ("阿昌", "Achang"),
    "40": ("普米", "Pumi"),
    "41": ("塔吉克", "Tajik"),
    "42": ("怒", "Nu"),
    "43": ("乌孜别克", "Uzbek"),
    "44": ("俄罗斯", "Russian"),
    "45": ("鄂温克", "Evenk"),
    "46": ("德昂", "De'ang"),
    "47": ("保安", "Bonan"),
    "48": ("裕固", "Yugur"),
    "49": ("京", "Gin"),
    "50": ("塔塔尔", "Tatar"),
    "51": ("独龙", "Derung"),
    "52": ("鄂伦春", "Oroqen"),
    "53": ("赫哲", "Hezhen"),
    "54": ("门巴", "Monpa"),
    "55": ("珞巴", "Lhoba"),
    "56": ("基诺", "Jino"),
    "97": ("其他", "other"),
    "98": ("外国血统中国籍人士", "Chinese citizen of foreign origin"),
}


@dataclass(frozen=True)
class IdentityCard:
    """What the card says, as text; dates stay text so a bad one can be reported, not lost."""

    name: str
    sex_code: str
    ethnicity_code: str
    birth_date: str  # YYYYMMDD
    address: str
    id_number: str
    issuing_authority: str
    valid_from: str  # YYYYMMDD
    valid_to: str  # YYYYMMDD or LONG_TERM
    photo: bytes = b""  # the card's compressed (WLT) photo, kept raw

    @property
    def sex(self) -> str:
        return SEXES.get(self.sex_code, self.sex_code)

    @property
    def ethnicity(self) -> str:
        """The romanised name, or the code itself when the code is not in GB 3304."""
        known = ETHNICITIES.get(self.ethnicity_code)
        return known[1] if known else self.ethnicity_code

    @property
    def long_term(self) -> bool:
        return self.valid_to == LONG_TERM


def parse_date(text: str) -> date | None:
    """A YYYYMMDD date, or None when it is not one."""
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def parse_identity(text: bytes, photo: bytes = b"") -> IdentityCard | Malformed:
    """Decode the 256-byte text block; never raises."""
    text = bytes(text)
    if len(text) != TEXT_LEN:
        return Malformed(f"text block of {len(text)} bytes, expected {TEXT_LEN}", text)
    if photo and len(photo) != PHOTO_LEN:
        return Malformed(f"photo of {len(photo)} bytes, expected {PHOTO_LEN}", bytes(photo))
    values: dict[str, str] = {}
    at = 0
    for name, width in _FIELDS:
        try:
            value = text[at : at + width].decode("utf-16-le")
        except UnicodeDecodeError:
            return Malformed(f"{name} field is not valid UCS-2", text)
        values[name] = value.rstrip(_PAD)
        at += width
    return IdentityCard(
        name=values["name"],
        sex_code=values["sex_code"],
        ethnicity_code=values["ethnicity_code"],
        birth_date=values["birth_date"],
        address=values["address"],
        id_number=values["id_number"],
        issuing_authority=values["issuing_authority"],
        valid_from=values["valid_from"],
        valid_to=values["valid_to"],
        photo=bytes(photo),
    )


def encode_identity(card: IdentityCard) -> bytes:
    """The 256-byte text block for ``card``. Raises ValueError when a field does not fit."""
    out = b""
    for name, width in _FIELDS:
        raw = str(getattr(card, name)).encode("utf-16-le")
        if len(raw) > width:
            raise ValueError(f"{name} needs {len(raw)} bytes, the field has {width}")
        out += raw + " ".encode("utf-16-le") * ((width - len(raw)) // 2)
    return out + " ".encode("utf-16-le") * ((TEXT_LEN - len(out)) // 2)


_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of an ID number."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("need exactly 17 digits")
    return _CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


def id_number_problems(id_number: str) -> list[Problem]:
    """Format and check-character problems of an 18-character ID number."""
    body, check = id_number[:17], id_number[17:]
    if len(id_number) != 18 or not (body.isascii() and body.isdigit()) or check not in _CHECK_CHARS:
        return [Problem("bad_id_format", f"ID number {id_number!r} is not 17 digits + check")]
    expected = check_character(body)
    if check != expected:
        return [
            Problem("bad_check_digit", f"ID number check character {check}, expected {expected}")
        ]
    return []


def validate(card: IdentityCard, today: date) -> list[Problem]:
    """Everything wrong with ``card`` as of ``today``; an empty list means it is usable."""
    problems = id_number_problems(card.id_number)
    digits_readable = not any(p.code == "bad_id_format" for p in problems)
    birth = parse_date(card.birth_date)
    if birth is None or birth > today:
        problems.append(
            Problem("bad_birth_date", f"birth date {card.birth_date!r} is not a past date")
        )
    elif digits_readable and card.id_number[6:14] != card.birth_date:
        problems.append(
            Problem(
                "birth_date_mismatch",
                f"birth date {card.birth_date} differs from the ID number's {card.id_number[6:14]}",
            )
        )
    if digits_readable and card.sex_code in ("1", "2"):
        # The 17th digit is odd for men and even for women (GB 11643-1999).
        odd = int(card.id_number[16]) % 2 == 1
        if odd != (card.sex_code == "1"):
            problems.append(Problem("sex_mismatch", f"sex {card.sex} differs from the ID number"))
    valid_from = parse_date(card.valid_from)
    if valid_from is None:
        problems.append(Problem("bad_valid_from", f"valid-from {card.valid_from!r} is not a date"))
    elif valid_from > today:
        problems.append(Problem("not_yet_valid", f"card valid only from {valid_from.isoformat()}"))
    if not card.long_term:
        valid_to = parse_date(card.valid_to)
        if valid_to is None:
            problems.append(Problem("bad_valid_to", f"valid-to {card.valid_to!r} is not a date"))
        elif valid_to < today:
            problems.append(Problem("expired", f"card expired on {valid_to.isoformat()}"))
        elif valid_from is not None and valid_to < valid_from:
            problems.append(Problem("bad_validity", "valid-to is before valid-from"))
    return problems
