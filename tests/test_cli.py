"""The `kakanai` command: definitions check, refusal to start on a broken set, staff accounts."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from app.cli import main
from app.forms.loader import DefinitionError
from app.main import create_app
from app.settings import PROJECT_ROOT, Settings


def _broken(tmp_path: Path) -> Path:
    root = tmp_path / "defs"
    shutil.copytree(PROJECT_ROOT / "form_definitions", root)
    target = root / "applications" / "jido_teate.yaml"
    target.write_text(target.read_text(encoding="utf-8").replace("department: kodomo", "department: nowhere", 1),
                      encoding="utf-8")
    return root


def test_check_reports_ok_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(PROJECT_ROOT / "form_definitions")]) == 0
    shipped = len(list((PROJECT_ROOT / "form_definitions" / "applications").glob("*.yaml")))
    assert capsys.readouterr().out.startswith(f"OK: 申請書 {shipped} 種類")
    assert main(["check", str(_broken(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert "applications/jido_teate.yaml:" in out and "departments.yaml にない課です: nowhere" in out


def test_server_refuses_to_start_on_a_broken_set(tmp_path: Path) -> None:
    settings = Settings(env="test", definitions_dir=_broken(tmp_path), data_dir=tmp_path)
    with pytest.raises(DefinitionError) as info:
        create_app(settings)
    assert "nowhere" in str(info.value)


def test_users_create_reads_the_password_from_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("KAKANAI_DATABASE_URL", url)
    monkeypatch.setenv("KAKANAI_DATA_DIR", str(tmp_path))
    from app.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        monkeypatch.setattr("sys.stdin", io.StringIO("a-very-long-password\n"))
        assert main(["users", "create", "tanaka", "--role", "counter", "--password-stdin"]) == 0
        monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
        assert main(["users", "create", "suzuki", "--role", "counter", "--password-stdin"]) == 1
        assert "パスワードは10文字以上" in capsys.readouterr().err
        assert main(["users", "list"]) == 0
        assert "tanaka\tcounter" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValueError, match="KAKANAI_SECRET_KEY"):
        Settings(env="production")


def test_keys_generate_and_rotate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    import base64

    assert main(["keys", "generate", "k9"]) == 0
    entry = capsys.readouterr().out.strip()
    kid, _, b64 = entry.partition(":")
    assert kid == "k9" and len(base64.b64decode(b64)) == 32
    monkeypatch.setenv("KAKANAI_DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    monkeypatch.setenv("KAKANAI_ENCRYPTION_KEYS", entry)
    from app import crypto
    from app.settings import get_settings

    before = crypto.keyring()
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        assert main(["keys", "rotate"]) == 0
        assert "re-encrypted 0 of 0 cases with key k9" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
        crypto.configure(before)
