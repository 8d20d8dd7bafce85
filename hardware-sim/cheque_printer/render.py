"""Render a received PDF to PNG (pypdfium2), as the simulator's "paper"."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium

RENDER_SCALE = 4.0  # 288 dpi: the Code 39 barcode decodes reliably (at 216 dpi it did not)


def render_pdf(document: bytes, path: Path) -> Path:
    """Render the first page of ``document`` to ``path``; raises ValueError on a bad PDF."""
    try:
        pdf = pdfium.PdfDocument(document)
    except pdfium.PdfiumError as exc:
        raise ValueError(f"document is not a readable PDF: {exc}") from None
    try:
        if len(pdf) < 1:
            raise ValueError("document has no pages")
        # Grayscale and light PNG compression: a leaf is ink on paper, and the render is the
        # simulated mechanism time, which should not dwarf the software it is measured against.
        image = pdf[0].render(scale=RENDER_SCALE, grayscale=True).to_pil()
    finally:
        pdf.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", compress_level=1)
    tmp.replace(path)
    return path
