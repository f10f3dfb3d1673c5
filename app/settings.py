"""Service settings: the only place that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.crypto import KeyRing

DEFAULT_SECRET = "dev-insecure-change-me"  # noqa: S105 - refused outside development, see below
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Configuration from KAKANAI_* environment variables (or a .env file)."""

    model_config = SettingsConfigDict(env_prefix="KAKANAI_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = PROJECT_ROOT / "data"
    database_url: str | None = None
    definitions_dir: Path = PROJECT_ROOT / "form_definitions"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    timezone: str = "Asia/Tokyo"
    office_code: str = "honcho"
    office_name: str = "本庁舎"
    # Opening hours and lunch break ("HH:MM-HH:MM", local time; lunch may be ""): back-office
    # minutes in the visit metrics count only within them (see app/metrics/visit.py).
    office_hours: str = "08:30-17:15"
    lunch_break: str = "12:00-13:00"
    city_name: str = "みなと市"
    token_ttl_minutes: int = 12 * 60
    # Counter pages: a signed-in tablet left alone this long is logged out.
    session_idle_minutes: int = 30
    log_level: str = "INFO"
    public_base_url: str = "http://127.0.0.1:8000"
    max_signature_bytes: int = 512 * 1024
    # Security and privacy (SECURITY.md): request limits, API docs, retention of personal data.
    max_request_bytes: int = 2 * 1024 * 1024
    max_json_depth: int = 32
    api_docs: bool = True
    retention_days: int = 90
    # Queue and resident page (README "Queue and resident page"). Live updates: each process polls
    # the event table this often (seconds) and wakes its SSE clients; 0 disables the watcher.
    live_poll_interval: float = 0.5
    # An SSE stream ends after this long and the browser reconnects (bounds a graceful shutdown).
    live_stream_max_seconds: float = 300.0
    # Wait estimate: median of the last N services today, else these defaults (minutes) per queue
    # ("" is the one-stop counter; department queues fall back to departments.yaml service_minutes).
    queue_estimate_window: int = 10
    queue_service_minutes: dict[str, float] = {"": 20.0}
    queue_default_open_counters: int = 2
    # "id1:base64(32 bytes),id2:..." — the first key encrypts, all decrypt (see `kakanai keys`).
    encryption_keys: SecretStr | None = None
    # Notices to residents who opt in (app/services/notify): Web Push with VAPID keys from
    # `kakanai notify keys`, e-mail through an SMTP server. Empty: that channel is off.
    vapid_private_key: SecretStr | None = None
    vapid_public_key: str = ""
    vapid_subject: str = "mailto:kakanai@example.invalid"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "noreply@example.invalid"

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env == "production" and self.secret_key.get_secret_value() == DEFAULT_SECRET:
            raise ValueError("KAKANAI_SECRET_KEY must be set to a random value in production")
        if self.env == "production" and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("KAKANAI_SECRET_KEY must be at least 32 characters in production")
        if self.env == "production" and self.encryption_keys is None:
            raise ValueError("KAKANAI_ENCRYPTION_KEYS must be set in production (kakanai keys generate)")
        return self

    def keyring(self) -> KeyRing:
        """The at-rest encryption keys (derived from the secret key in development and tests)."""
        if self.encryption_keys is not None:
            return KeyRing.parse(self.encryption_keys.get_secret_value())
        return KeyRing.derived(self.secret_key.get_secret_value())

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or a SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'kakanai.db'}"

    @property
    def tz(self) -> ZoneInfo:
        """The city's time zone (visit dates and ticket days are counted in it)."""
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
