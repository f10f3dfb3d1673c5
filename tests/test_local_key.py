"""Without KAKANAI_ENCRYPTION_KEYS (development) the at-rest key is random, made on first start, kept in a
0600 file of the data directory, and never derived from the public default secret; a warning names every
development stand-in for a secret (never its value)."""

from __future__ import annotations

import base64
import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import crypto
from app.crypto import KeyRing
from app.main import create_app
from app.settings import DEFAULT_SECRET, LOCAL_KEY_FILE, PROJECT_ROOT, Settings, local_key_spec

FIELD = "household.members.my_number"


@pytest.fixture(autouse=True)
def restore_keyring() -> Iterator[None]:
    """create_app installs its ring process-wide: put the test suite's ring back."""
    before = crypto.keyring()
    yield
    crypto.configure(before)


def _dev(tmp_path: Path, **kw: object) -> Settings:
    return Settings(env="development", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'dev.db'}", **kw)


def test_first_start_makes_a_private_random_key_that_is_not_the_derived_one(tmp_path: Path) -> None:
    ring = _dev(tmp_path).keyring()
    path = tmp_path / LOCAL_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kid, _, b64 = path.read_text().strip().partition(":")
    assert ring.current == kid and kid.startswith("local-") and len(base64.b64decode(b64)) == 32
    derived = KeyRing.derived(DEFAULT_SECRET)
    sealed = ring.encrypt("123456789018", field=FIELD)
    assert sealed.startswith(f"enc:v1:{kid}:")
    with pytest.raises(ValueError):
        derived.decrypt(sealed, field=FIELD)  # the public default secret does not open it
    # The same file on the next start; another data directory gets another key.
    again = _dev(tmp_path).keyring()
    assert again.current == kid and again.decrypt(sealed, field=FIELD) == "123456789018"
    other = tmp_path / "other"
    assert _dev(other).keyring().current != kid
    # Values written in development before the key file existed (derived key) stay readable.
    old = derived.encrypt("234567890121", field=FIELD)
    assert ring.decrypt(old, field=FIELD) == "234567890121"


def test_a_loosened_key_file_is_made_private_again(tmp_path: Path) -> None:
    _dev(tmp_path).keyring()
    path = tmp_path / LOCAL_KEY_FILE
    path.chmod(0o644)
    _dev(tmp_path).keyring()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "race" / LOCAL_KEY_FILE
    specs: list[str] = []
    threads = [threading.Thread(target=lambda: specs.append(local_key_spec(path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(specs)) == 1 and len(specs) == 8
    assert [p.name for p in path.parent.iterdir()] == [LOCAL_KEY_FILE]  # no temporary file left


def test_configured_keys_are_used_and_no_file_is_written(tmp_path: Path) -> None:
    spec = f"k1:{base64.b64encode(bytes(32)).decode()}"
    ring = _dev(tmp_path, encryption_keys=spec).keyring()
    assert ring.current == "k1" and not (tmp_path / LOCAL_KEY_FILE).exists()


def test_startup_warns_about_development_secrets_without_values(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.main"):
        create_app(_dev(tmp_path, definitions_dir=PROJECT_ROOT / "form_definitions"))
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "app.main")
    assert "KAKANAI_SECRET_KEY is the public default" in text
    assert "KAKANAI_ENCRYPTION_KEYS is unset" in text and LOCAL_KEY_FILE in text
    secret_b64 = (tmp_path / LOCAL_KEY_FILE).read_text().strip().partition(":")[2]
    assert DEFAULT_SECRET not in text and secret_b64 not in text
    caplog.clear()
    spec = f"k1:{base64.b64encode(bytes(32)).decode()}"
    with caplog.at_level(logging.WARNING, logger="app.main"):
        create_app(_dev(tmp_path, secret_key="x" * 40, encryption_keys=spec,
                        definitions_dir=PROJECT_ROOT / "form_definitions"))
    assert not [r for r in caplog.records if r.name == "app.main"]
