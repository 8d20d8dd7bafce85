"""The page's colours keep text at 4.5:1 or more (WCAG 2.2 AA), in both themes."""

from __future__ import annotations

import re

import pytest

from branchline.agent.kiosk.server import static_dir

# (text, background) pairs the stylesheet puts together.
PAIRS = [
    ("fg", "bg"),
    ("muted", "bg"),
    ("accent-fg", "accent"),
    ("error", "bg"),
    ("fg", "notice-bg"),
]


def themes() -> dict[str, dict[str, str]]:
    css = (static_dir() / "style.css").read_text()
    out = {}
    for name, selector in (("normal", ":root"), ("high", 'body[data-contrast="high"]')):
        block = css[css.index(selector + " {") :]
        block = block[: block.index("}")]
        out[name] = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", block))
    return out


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def ratio(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_ratio_is_computed_as_wcag_defines_it() -> None:
    assert round(ratio("#000000", "#ffffff"), 1) == 21.0
    assert round(ratio("#777777", "#ffffff"), 2) == 4.48


@pytest.mark.parametrize("theme", ["normal", "high"])
def test_text_colours_reach_4_5_to_1(theme: str) -> None:
    colours = themes()[theme]
    for text, background in PAIRS:
        assert ratio(colours[text], colours[background]) >= 4.5, (theme, text, background)


def test_targets_are_at_least_44_css_pixels() -> None:
    css = (static_dir() / "style.css").read_text()
    button = css[css.index("\nbutton {") :]
    button = button[: button.index("}")]
    assert int(re.search(r"min-height:\s*(\d+)px", button).group(1)) >= 44  # type: ignore[union-attr]
    assert int(re.search(r"min-width:\s*(\d+)px", button).group(1)) >= 44  # type: ignore[union-attr]
    settings = css[css.index(".settings button {") :]
    settings = settings[: settings.index("}")]
    assert int(re.search(r"min-height:\s*(\d+)px", settings).group(1)) >= 44  # type: ignore[union-attr]
