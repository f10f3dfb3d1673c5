"""Masking of My Numbers and bank account numbers in what the API shows, and un-masking on save.

Screens and API responses show `********9018` (My Number: last 4 digits) and `****567` (account
number: last 3 digits) unless the caller explicitly asks to reveal a kind (which is audited).
A client that sends a masked value back unchanged keeps the stored number (`merge_masked`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

MASK = "*"
MY_NUMBER = "my_number"
ACCOUNT_NUMBER = "account_number"
# What `?reveal=` accepts: each kind of sensitive number, or both.
REVEALABLE = (MY_NUMBER, ACCOUNT_NUMBER)


def _mask_tail(value: str, keep: int) -> str:
    if not value:
        return value
    keep = min(keep, max(len(value) - 1, 0))  # never show the whole value, however short
    return MASK * (len(value) - keep) + value[len(value) - keep:] if keep else MASK * len(value)


def mask_my_number(value: str) -> str:
    """`123456789018` → `********9018`."""
    return _mask_tail(value, 4)


def mask_account_number(value: str) -> str:
    """`1234567` → `****567`."""
    return _mask_tail(value, 3)


def is_masked(value: Any) -> bool:
    """Whether a value looks like one of our masks (starts with the mask character)."""
    return isinstance(value, str) and value.startswith(MASK)


def _members(doc: Any) -> list[dict[str, Any]]:
    household = doc.get("household") if isinstance(doc, dict) else None
    members = household.get("members") if isinstance(household, dict) else None
    return [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []


def _account(doc: Any) -> dict[str, Any] | None:
    account = doc.get("bank_account") if isinstance(doc, dict) else None
    return account if isinstance(account, dict) else None


def mask_answers(answers: dict[str, Any], *, reveal: bool | Iterable[str] = False) -> dict[str, Any]:
    """A copy of the answers with every My Number and account number masked (unless revealed)."""
    shown = set(REVEALABLE) if reveal is True else set() if reveal is False else set(reveal)
    doc = copy.deepcopy(answers)
    if MY_NUMBER not in shown:
        for member in _members(doc):
            if isinstance(member.get(MY_NUMBER), str):
                member[MY_NUMBER] = mask_my_number(member[MY_NUMBER])
    account = _account(doc)
    if ACCOUNT_NUMBER not in shown and account is not None and isinstance(account.get(ACCOUNT_NUMBER), str):
        account[ACCOUNT_NUMBER] = mask_account_number(account[ACCOUNT_NUMBER])
    return doc


def merge_masked(new: Any, stored: dict[str, Any] | None) -> Any:
    """The new answers with each masked number that equals the mask of the stored one put back.

    Members are matched by their `id` (the interview's stable member number), so reordering the
    household keeps each person's number; a masked value that matches nothing is left as it is
    and then fails validation with a field message, so a number is never invented or swapped.
    """
    if not isinstance(new, dict) or not stored:
        return new
    doc = copy.deepcopy(new)
    stored_numbers = {m.get("id"): m.get(MY_NUMBER) for m in _members(stored) if isinstance(m.get(MY_NUMBER), str)}
    for member in _members(doc):
        value, old = member.get(MY_NUMBER), stored_numbers.get(member.get("id"))
        if is_masked(value) and old and value == mask_my_number(old):
            member[MY_NUMBER] = old
    account, old_account = _account(doc), _account(stored)
    if account is not None and old_account is not None:
        value, old = account.get(ACCOUNT_NUMBER), old_account.get(ACCOUNT_NUMBER)
        if is_masked(value) and isinstance(old, str) and old and value == mask_account_number(old):
            account[ACCOUNT_NUMBER] = old
    return doc


def parse_reveal(values: Iterable[str] | None) -> set[str]:
    """`?reveal=my_number,account_number` (or repeated) → the kinds asked for; unknown kinds raise ValueError."""
    kinds: set[str] = set()
    for value in values or ():
        for part in filter(None, (p.strip() for p in value.split(","))):
            if part == "all":
                kinds.update(REVEALABLE)
            elif part in REVEALABLE:
                kinds.add(part)
            else:
                raise ValueError(part)
    return kinds
