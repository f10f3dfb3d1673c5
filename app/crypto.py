"""Encryption at rest for My Numbers (特定個人情報) and bank account numbers: AES-256-GCM with key ids.

Values are stored as `enc:v1:<key id>:<base64(nonce | ciphertext)>`; the field's name is bound as
associated data, so a ciphertext copied into another field does not decrypt. The first configured
key encrypts; every configured key decrypts, which is what makes rotation possible.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "enc:v1:"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


class KeyError_(ValueError):
    """A key specification or a stored value that cannot be used."""


class UnknownKey(KeyError_):
    """A stored value names a key id this process was not given (e.g. rotated by a newer configuration)."""


class KeyRing:
    """The encryption keys: `current` encrypts, all of them decrypt."""

    def __init__(self, keys: Mapping[str, bytes], current: str):
        if current not in keys:
            raise KeyError_("the current key id is not among the keys")
        for kid, key in keys.items():
            if not _KEY_ID.fullmatch(kid) or len(key) != 32:
                raise KeyError_(f"key {kid!r}: ids are 1-16 of [A-Za-z0-9_-], keys are 32 bytes")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self._keys = dict(keys)
        self.current = current

    @property
    def key_ids(self) -> list[str]:
        """Every key id this ring decrypts (the current one first); public names, no key material."""
        return [self.current, *(k for k in self._aead if k != self.current)]

    def only_current(self) -> KeyRing:
        """A ring holding just the current key (to prove a value no longer needs an older one)."""
        return KeyRing({self.current: self._keys[self.current]}, self.current)

    def with_decrypt_only(self, other: KeyRing) -> KeyRing:
        """This ring plus the keys of `other` it lacks, for decryption only (current unchanged)."""
        return KeyRing({**other._keys, **self._keys}, self.current)

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """`id1:base64key,id2:base64key` (first is current), as in KAKANAI_ENCRYPTION_KEYS."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, _, b64 = part.partition(":")
            try:
                keys[kid] = base64.b64decode(b64, validate=True)
            except ValueError:
                raise KeyError_(f"key {kid!r} is not valid base64") from None
            order.append(kid)
        if not order:
            raise KeyError_("no encryption keys given")
        return cls(keys, order[0])

    @classmethod
    def derived(cls, secret: str, kid: str = "derived") -> KeyRing:
        """A key derived from the secret key (development only: rotating the secret loses data)."""
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kakanai-at-rest", info=b"answers").derive(
            secret.encode())
        return cls({kid: key}, kid)

    def encrypt(self, plaintext: str, *, field: str) -> str:
        """Encrypt with the current key."""
        nonce = os.urandom(12)
        sealed = self._aead[self.current].encrypt(nonce, plaintext.encode(), field.encode())
        return f"{PREFIX}{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, field: str) -> str:
        """Decrypt a stored value with the key it names."""
        kid, _, b64 = token[len(PREFIX):].partition(":")
        aead = self._aead.get(kid)
        if aead is None:
            raise UnknownKey(f"no key with id {kid!r} is configured")
        raw = base64.b64decode(b64)
        try:
            return aead.decrypt(raw[:12], raw[12:], field.encode()).decode()
        except InvalidTag:
            raise KeyError_("stored value does not decrypt (wrong key or tampered)") from None

    def key_id_of(self, token: str) -> str | None:
        """The key id a stored value was encrypted with."""
        return token[len(PREFIX):].partition(":")[0] if is_encrypted(token) else None


def is_encrypted(value: Any) -> bool:
    """Whether a stored value is one of our ciphertexts."""
    return isinstance(value, str) and value.startswith(PREFIX)


_lock = threading.Lock()
_keyring: KeyRing | None = None
# Who builds the ring on first use when nobody configured one: app.settings registers itself here,
# so that this module imports nothing from the application (settings depends on crypto, not back).
_loader: Callable[[], KeyRing] | None = None


def configure(keyring: KeyRing) -> None:
    """Install the process's key ring (the app and the CLI do this from the settings)."""
    global _keyring
    with _lock:
        _keyring = keyring


def set_loader(loader: Callable[[], KeyRing]) -> None:
    """Register how to build the key ring when it is first needed and none was configured."""
    global _loader
    _loader = loader


def keyring() -> KeyRing:
    """The process's key ring, built by the registered loader on first use."""
    if _keyring is None:
        if _loader is None:
            raise KeyError_("no encryption keys are configured (call crypto.configure first)")
        configure(_loader())
    assert _keyring is not None
    return _keyring


# Where the sensitive values sit in an answers document: (list path or None, key path).
SENSITIVE: tuple[tuple[str | None, str], ...] = (
    ("household.members", "my_number"),
    (None, "bank_account.account_number"),
)


def _walk(doc: dict[str, Any], dotted: str) -> tuple[dict[str, Any] | None, str]:
    *parents, leaf = dotted.split(".")
    node: Any = doc
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def _targets(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str, str]]:
    out = []
    for list_path, key in SENSITIVE:
        holders: list[Any] = [doc]
        if list_path is not None:
            parent, leaf = _walk(doc, list_path)
            items = parent.get(leaf) if parent is not None else None
            holders = items if isinstance(items, list) else []
        for holder in holders:
            if isinstance(holder, dict):
                node, leaf = _walk(holder, key)
                if node is not None and isinstance(node.get(leaf), str) and node[leaf]:
                    out.append((node, leaf, f"{list_path or ''}.{key}"))
    return out


def protect(answers: Any) -> Any:
    """A copy of the answers with the sensitive values encrypted (already-encrypted ones kept)."""
    if not isinstance(answers, dict):
        return answers
    doc = copy.deepcopy(answers)
    ring = keyring()
    for node, leaf, field in _targets(doc):
        if not is_encrypted(node[leaf]):
            node[leaf] = ring.encrypt(node[leaf], field=field)
    return doc


def reveal(answers: Any) -> Any:
    """The answers with the sensitive values decrypted."""
    if not isinstance(answers, dict):
        return answers
    ring = keyring()
    for node, leaf, field in _targets(answers):
        if is_encrypted(node[leaf]):
            node[leaf] = ring.decrypt(node[leaf], field=field)
    return answers


def reencrypt(answers: Any, ring: KeyRing) -> tuple[Any, int]:
    """A copy of stored (encrypted) answers with every value under another key re-encrypted with the
    ring's current key, and how many values changed. Raises KeyError_ when a value does not decrypt."""
    if not isinstance(answers, dict):
        return answers, 0
    doc = copy.deepcopy(answers)
    changed = 0
    for node, leaf, field in _targets(doc):
        value = node[leaf]
        if not is_encrypted(value):
            node[leaf] = ring.encrypt(value, field=field)
            changed += 1
        elif ring.key_id_of(value) != ring.current:
            node[leaf] = ring.encrypt(ring.decrypt(value, field=field), field=field)
            changed += 1
    return doc, changed


def stale_values(answers: Any, ring: KeyRing) -> int:
    """How many sensitive values of stored answers do not decrypt with the ring's current key alone."""
    if not isinstance(answers, dict):
        return 0
    only = ring.only_current()
    bad = 0
    for node, leaf, field in _targets(answers):
        value = node[leaf]
        try:
            if not is_encrypted(value):
                raise KeyError_("stored in clear")
            only.decrypt(value, field=field)
        except KeyError_:
            bad += 1
    return bad
