"""What a render needs besides the form: fonts, QR payload, signature and footer texts."""

from __future__ import annotations

from dataclasses import dataclass

from app.forms.fonts import FontSet


@dataclass(frozen=True)
class RenderOptions:
    """How to render: fonts, the QR payload, the resident's signature and footer texts."""

    fonts: FontSet
    qr_url: str | None = None
    signature_png: bytes | None = None
    city_name: str = ""
    generated_label: str = ""
    min_font_size: float = 6.0
    # Overlay print mode: how far this printer's output lands from where it should (mm, right and down).
    printer_offset_mm: tuple[float, float] = (0.0, 0.0)

