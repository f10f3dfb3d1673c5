"""Fixtures shared by the pure form tests: the shipped definitions and the Japanese fonts."""

from __future__ import annotations

import pytest

from app.forms.fonts import FontSet, load_fonts
from app.forms.loader import DefinitionSet, load_definitions
from app.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def defs() -> DefinitionSet:
    """The shipped form definitions (form_definitions/), loaded once per test module."""
    return load_definitions(PROJECT_ROOT / "form_definitions")


@pytest.fixture(scope="module")
def fonts() -> FontSet:
    """The IPA fonts; the module's tests skip where they are not installed."""
    fontset = load_fonts()
    if fontset.fallback:
        pytest.skip("IPA TrueType fonts not installed")
    return fontset
