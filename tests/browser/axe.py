"""axe-core accessibility checks inside the browser tests (the npm package from tests/browser/js, see scripts/test.sh)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("critical", "serious")


def violations(page: Any, *, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """Run axe-core (WCAG 2.1 A/AA rules) on the page as it is now; the critical and serious violations."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` in tests/browser/js (scripts/test.sh does)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's own CSP (script-src 'self') stays on.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    context = {"exclude": [[sel] for sel in exclude]} if exclude else None
    result = page.evaluate(
        """async (context) => {
            const r = await axe.run(context || document,
              {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }""",
        context,
    )
    return [v for v in result if v["impact"] in BLOCKING]


def assert_clean(page: Any, name: str, **kwargs: Any) -> None:
    """No critical or serious axe-core violation on the page."""
    found = violations(page, **kwargs)
    assert found == [], f"{name}: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in found)
