"""A form with every value worked out: what the mapping step produces and the renderer draws."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from app.forms.schema import FormField, Layout, Placement


@dataclass(frozen=True)
class ResolvedCell:
    """One cell: its definition and the printed value.

    `text` is what prints (already transformed: 和暦, カナ, joined address...), "" when empty.
    For style "comb", `text` holds the characters for the boxes (digits).
    For style "check", `selected` holds the option values that get a tick.
    """

    spec: FormField
    text: str = ""
    selected: tuple[str, ...] = ()

    @property
    def filled(self) -> bool:
        """Whether anything prints in this cell."""
        return bool(self.text) or bool(self.selected)


@dataclass(frozen=True)
class ResolvedRow:
    """A row of cells with its height multiplier."""

    height: float
    cells: tuple[ResolvedCell, ...]


@dataclass(frozen=True)
class ResolvedTable:
    """A table: column definitions and one tuple of cells per item (at least min_rows rows are drawn)."""

    columns: tuple[FormField, ...]
    rows: tuple[tuple[ResolvedCell, ...], ...]
    min_rows: int
    row_height: float


@dataclass(frozen=True)
class ResolvedSection:
    """A titled block of rows and/or a table."""

    title: str
    note: str | None
    rows: tuple[ResolvedRow, ...]
    table: ResolvedTable | None


@dataclass(frozen=True)
class ResolvedForm:
    """Everything needed to draw one application instance."""

    instance_id: str
    title: str
    heading: str
    recipient: str | None
    department_name: str
    layout: Layout | None
    sections: tuple[ResolvedSection, ...] = ()
    # Template mode: (placement, cell) pairs drawn onto the city's blank PDF.
    template: bytes | None = None
    placed: tuple[tuple[Placement, ResolvedCell], ...] = ()
    case_number: str = ""
    filed_on: dt.date | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Who signs (member id or "agent"), that person's signature PNG when it is valid for this form, and
    # which box it goes in: "role" (届出人・申請者…) or "agent" (the 代理人 box).
    signer_id: str | None = None
    signature: bytes | None = None
    signature_box: str = "role"
    # Every signer's box (婚姻届: both spouses): (box name = a cell's `signs_as`, "" unmarked; person id),
    # and the valid signature PNG of each person who signed this form (person id, PNG).
    signature_boxes: tuple[tuple[str, str | None], ...] = ()
    signatures: tuple[tuple[str, bytes], ...] = ()
    # Overlay print mode: only the values, at the template's positions, for the paper the resident brought.
    values_only: bool = False

    def box_signatures(self, fallback: bytes | None = None) -> dict[str, bytes]:
        """Signature box name → the PNG drawn in it; each person's signature only in their own box.

        `fallback` (one signature for every form, used by scripts) goes to the first signer's box.
        """
        pngs = dict(self.signatures)
        if self.signature is not None and self.signer_id is not None:
            pngs.setdefault(self.signer_id, self.signature)
        out = {box: pngs[person] for box, person in self.signature_boxes if person is not None and person in pngs}
        first = self.signature_boxes[0][0] if self.signature_boxes else ("agent" if self.signature_box == "agent" else "")
        primary = self.signature if self.signature is not None else fallback
        if primary is not None:
            out.setdefault(first, primary)
        return out

    def cells(self) -> list[ResolvedCell]:
        """Every cell of the form, rows and tables and template fields alike."""
        out: list[ResolvedCell] = [c for _, c in self.placed]
        for section in self.sections:
            for row in section.rows:
                out.extend(row.cells)
            if section.table is not None:
                for trow in section.table.rows:
                    out.extend(trow)
        return out
