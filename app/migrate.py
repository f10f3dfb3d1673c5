"""Applying the Alembic migrations (used by `kakanai migrate`, `serve`, the tests and the benchmarks)."""

from __future__ import annotations

from app.settings import PROJECT_ROOT, Settings


def migrate(settings: Settings, revision: str = "head") -> None:
    """Apply the Alembic migrations to the configured database."""
    from alembic import command
    from alembic.config import Config

    from app.db_diagnosis import check_database

    if settings.effective_database_url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    check_database(settings.effective_database_url)  # one clear sentence instead of a traceback
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["url"] = settings.effective_database_url
    command.upgrade(cfg, revision)
