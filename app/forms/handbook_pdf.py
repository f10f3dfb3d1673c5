"""Draw the handbook (おくやみハンドブック) as an A4 PDF: a header with the person, then one table of steps.

The table flows over as many pages as needed (platypus, CJK line breaking); the person's name is drawn by
the FontSet so variant kanji (IVS) print as on the forms. Same handbook, same bytes (invariant=1).
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.forms.fonts import ROLE_NAME, ROLE_TEXT, FontSet
from app.forms.handbook import Handbook, HandbookStep
from app.forms.wareki import format_wareki

__all__ = ["render_handbook"]

MARGIN = 14 * mm
HEADER_H = 34 * mm
WIDTHS = (9 * mm, 52 * mm, 42 * mm, 38 * mm, 41 * mm)


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=font, fontSize=8.5, leading=11.5, wordWrap="CJK")
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10),
        "head": ParagraphStyle("head", parent=base, fontSize=8.5, leading=11, alignment=1),
        "intro": ParagraphStyle("intro", parent=base, fontSize=9, leading=13),
        "strong": ParagraphStyle("strong", parent=base, fontSize=9.5, leading=12.5),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _row(index: int, step: HandbookStep, st: dict[str, ParagraphStyle]) -> list[object]:
    kind = "市役所の外" if step.external else "市役所"
    title = f"{step.title}\n［{kind}］"
    if step.fee_total:
        title += f"\n手数料 {step.fee_total:,}円"
    deadline = format_wareki(step.deadline) + "まで\n" if step.deadline else ""
    bring = "\n".join(f"・{d}" for d in step.documents) or "―"
    place = step.place + (f"\n{step.how}" if step.how else "")
    return [_p(str(index), st["head"]), _p(title, st["strong"]), _p(place, st["small"]),
            _p(deadline + step.deadline_text, st["small"]), _p(bring, st["small"])]


def render_handbook(doc: Handbook, fonts: FontSet) -> bytes:
    """The handbook as PDF bytes."""
    fonts.register()
    font = fonts.font_name(ROLE_TEXT)
    st = _styles(font)
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN + HEADER_H,
                            bottomMargin=MARGIN + 6 * mm, invariant=1, title=f"{doc.title} {doc.case_number}",
                            author="", creator="kakanai", lang="ja")
    width, height = A4

    def page(canvas: object, template: object) -> None:
        c = canvas
        top = height - MARGIN
        c.setFillGray(0)  # type: ignore[attr-defined]
        fonts.draw_string(c, MARGIN, top - 9, doc.city_name, role=ROLE_TEXT, size=10)
        fonts.draw_string(c, MARGIN, top - 30, doc.title, role=ROLE_TEXT, size=22)
        y = top - 48
        fonts.draw_string(c, MARGIN, y, f"{doc.person_label}：", role=ROLE_TEXT, size=11)
        fonts.draw_string(c, MARGIN + 28 * mm, y, doc.person_name, role=ROLE_NAME, size=12)
        if doc.event_date:
            label = "亡くなった日" if doc.person_label == "亡くなった方" else "来庁日"
            fonts.draw_string(c, MARGIN + 95 * mm, y, f"{label}：{format_wareki(doc.event_date)}", role=ROLE_TEXT, size=11)
        fonts.draw_right_string(c, width - MARGIN, top - 9, f"案件番号 {doc.case_number}", role=ROLE_TEXT, size=9)
        c.setLineWidth(0.8)  # type: ignore[attr-defined]
        c.line(MARGIN, top - HEADER_H + 6, width - MARGIN, top - HEADER_H + 6)  # type: ignore[attr-defined]
        page_no = c.getPageNumber()  # type: ignore[attr-defined]
        fonts.draw_right_string(c, width - MARGIN, MARGIN, f"{doc.case_number}　{page_no} ページ", role=ROLE_TEXT, size=7)
        footer = "書かない窓口で作成　この一覧は目安です。詳しくは各窓口でご確認ください"
        fonts.draw_string(c, MARGIN, MARGIN, footer, role=ROLE_TEXT, size=7)

    story: list[object] = [_p(t, st["intro"]) for t in doc.intro]
    story.append(Spacer(1, 4 * mm))
    header = [_p(t, st["head"]) for t in ("No.", "手続き", "場所", "期限", "持ち物")]
    rows = [header] + [_row(i, s, st) for i, s in enumerate(doc.steps, start=1)]
    table = Table(rows, colWidths=WIDTHS, repeatRows=1)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.88, 0.88, 0.88)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    style += [("BACKGROUND", (0, i), (-1, i), colors.Color(0.95, 0.95, 0.98))
              for i, s in enumerate(doc.steps, start=1) if s.external]
    table.setStyle(TableStyle(style))
    story.append(table)
    pdf.build(story, onFirstPage=page, onLaterPages=page)
    return buffer.getvalue()
