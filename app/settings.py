"""Service settings: the only place that reads the environment."""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import crypto
from app.crypto import KeyRing
from app.db import DbLimits

DEFAULT_SECRET = "dev-insecure-change-me"  # noqa: S105 - refused outside development, see below
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Without KAKANAI_ENCRYPTION_KEYS (development only) the at-rest key is a random one made on first
# start and kept in this file of the data directory, readable by the service's user only.
LOCAL_KEY_FILE = "encryption.key"


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
    # Overlay print mode (printing onto the paper the resident brought): per-printer offset in mm
    # (right, down), measured with the calibration page; e.g. {"counter1": [1.5, -0.5]}.
    printer_offsets: dict[str, tuple[float, float]] = {}
    # Security and privacy (SECURITY.md): request limits, API docs, retention of personal data.
    max_request_bytes: int = 2 * 1024 * 1024
    max_json_depth: int = 32
    # /docs, /redoc and /openapi.json: on in development and tests, off in production unless set to true.
    api_docs: bool | None = None
    retention_days: int = 90
    # Resident pre-entry on the phone (README "Before the visit"): a draft lives at most this many days
    # (1-7); one client address may start this many drafts per hour; a draft write is at most this big.
    pre_entry_days: int = Field(default=7, ge=1, le=7)
    pre_entry_drafts_per_hour: int = Field(default=10, ge=1)
    pre_entry_max_bytes: int = Field(default=64 * 1024, ge=1024)
    pre_entry_max_members: int = Field(default=10, ge=1, le=30)
    # Queue and resident page (README "Queue and resident page"). Live updates: each process polls
    # the event table this often (seconds) and wakes its SSE clients; 0 disables the watcher.
    live_poll_interval: float = 0.5
    # An SSE stream ends after this long and the browser reconnects (bounds a graceful shutdown).
    live_stream_max_seconds: float = 300.0
    # PostgreSQL: instances wake each other through LISTEN/NOTIFY; polling then only runs this often.
    live_listen: bool = True
    live_fallback_poll_interval: float = 5.0
    # Wait estimate: median of the last N services today, else these defaults (minutes) per queue
    # ("" is the one-stop counter; department queues fall back to departments.yaml service_minutes).
    queue_estimate_window: int = 10
    queue_service_minutes: dict[str, float] = {"": 20.0}
    queue_default_open_counters: int = 2
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated IPs or CIDRs; empty: none).
    # Used for the login limit and the audit log's addresses, and by `kakanai serve` (uvicorn).
    trusted_proxies: str = ""
    # "id1:base64(32 bytes),id2:..." — the first key encrypts, all decrypt (see `kakanai keys`).
    encryption_keys: SecretStr | None = None
    # Request path under load (docs/reliability.md "Capacity"): sync work runs in `worker_threads`
    # threads; at most `db_pool_size` requests per process use the database at once (the others wait,
    # without holding a thread, up to `db_wait_timeout` seconds, then get a 503). Threads must exceed
    # the pool so that a request holding a connection or a lock always finds a thread to finish on.
    worker_threads: int = 40
    db_pool_size: int = 20
    db_pool_timeout: float = 5.0
    db_wait_timeout: float = 8.0
    # A statement or lock wait longer than this fails (PostgreSQL statement_timeout / lock_timeout,
    # SQLite busy_timeout); a new connection gives up after db_connect_timeout; a request still
    # unanswered after request_timeout gets a 503 (its transaction is rolled back, never half-saved).
    db_statement_timeout: float = 15.0
    db_connect_timeout: float = 5.0
    request_timeout: float = 20.0
    # Each process publishes the key ids it knows in service_instances every this many seconds, so
    # that `kakanai keys rotate` can refuse while a running instance lacks the new key; 0 = off.
    instance_heartbeat_seconds: float = 30.0
    # Notices to residents who opt in (app/services/notify): Web Push with VAPID keys from
    # `kakanai notify keys`, e-mail through an SMTP server. Empty: that channel is off.
    vapid_private_key: SecretStr | None = None
    vapid_public_key: str = ""
    vapid_subject: str = "mailto:kakanai@example.invalid"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "noreply@example.invalid"
    # The app's own background work (app/services/background.py): notices, booking confirmations and
    # the no-show sweep every `background_interval` seconds in each process. False: run
    # `kakanai notify run` instead (several instances are safe either way: rows are claimed).
    background_tasks: bool = True
    background_interval: float = Field(default=5.0, gt=0, le=3600)
    # Appointments: a booking may be checked in from this many minutes before its slot starts until
    # this many after; later it is a no-show and its place is released.
    appointment_checkin_early_minutes: int = Field(default=30, ge=0, le=240)
    appointment_checkin_late_minutes: int = Field(default=15, ge=0, le=240)
    # Web tickets from a phone: at most this many per client address per hour.
    remote_ticket_limit_per_hour: int = Field(default=3, ge=1, le=1000)
    # Web bookings (page and public API): at most this many per client address per hour.
    booking_limit_per_hour: int = Field(default=5, ge=1, le=1000)

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env == "production" and self.secret_key.get_secret_value() == DEFAULT_SECRET:
            raise ValueError("KAKANAI_SECRET_KEY must be set to a random value in production")
        if self.env == "production" and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("KAKANAI_SECRET_KEY must be at least 32 characters in production")
        if self.worker_threads < self.db_pool_size + 2 or self.db_pool_size < 1:
            raise ValueError("KAKANAI_WORKER_THREADS must be at least KAKANAI_DB_POOL_SIZE + 2 (and the pool at least 1)")
        try:
            self.trusted_proxy_networks()
        except ValueError as exc:
            raise ValueError(f"KAKANAI_TRUSTED_PROXIES: {exc}") from None
        if self.env == "production" and self.encryption_keys is None:
            raise ValueError("KAKANAI_ENCRYPTION_KEYS must be set in production (kakanai keys generate)")
        return self

    def keyring(self) -> KeyRing:
        """The at-rest encryption keys: KAKANAI_ENCRYPTION_KEYS, else the data directory's local key file.

        The key derived from the secret key (what development used before the local key file) stays
        in the ring for decryption only, so older development data remains readable until
        `kakanai keys rotate`; throw-away test databases (env "test") keep using it alone.
        """
        if self.encryption_keys is not None:
            return KeyRing.parse(self.encryption_keys.get_secret_value())
        legacy = KeyRing.derived(self.secret_key.get_secret_value())
        if self.env == "test":
            return legacy
        return KeyRing.parse(local_key_spec(self.data_dir / LOCAL_KEY_FILE)).with_decrypt_only(legacy)

    def development_secrets(self) -> list[str]:
        """Which development stand-ins for secrets are in use (names only, for a start-up warning)."""
        found = []
        if self.secret_key.get_secret_value() == DEFAULT_SECRET:
            found.append("KAKANAI_SECRET_KEY is the public default")
        if self.encryption_keys is None:
            found.append("KAKANAI_ENCRYPTION_KEYS is unset (key from " +
                         ("the secret key" if self.env == "test" else f"{self.data_dir / LOCAL_KEY_FILE}") + ")")
        return found

    def db_limits(self) -> DbLimits:
        """The database pool and timeouts (the pool has two spare connections: live watcher, probes)."""
        return DbLimits(pool_size=self.db_pool_size, max_overflow=2 + self.db_pool_size // 4,
                        pool_timeout=self.db_pool_timeout, statement_timeout=self.db_statement_timeout,
                        connect_timeout=self.db_connect_timeout)

    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """KAKANAI_TRUSTED_PROXIES parsed (a bare address is a /32 or /128 network)."""
        return [ipaddress.ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",") if part.strip()]

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or a SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'kakanai.db'}"

    @property
    def docs_enabled(self) -> bool:
        """Whether /docs, /redoc and /openapi.json are served (KAKANAI_API_DOCS, default: not in production)."""
        return self.api_docs if self.api_docs is not None else self.env != "production"

    @property
    def tz(self) -> ZoneInfo:
        """The city's time zone (visit dates and ticket days are counted in it)."""
        return ZoneInfo(self.timezone)

    @property
    def client_visit_date(self) -> bool:
        """Whether a client-sent visit_date is kept: tests only; otherwise the server's today is the visit date."""
        return self.env == "test"


def local_key_spec(path: Path) -> str:
    """The `id:base64` entry of the local key file, created (mode 0600) with a random key when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        spec = f"local-{secrets.token_hex(4)}:{base64.b64encode(os.urandom(32)).decode()}"
        # Write a private temporary file, then link it into place: of two processes starting at once,
        # exactly one key wins and neither ever reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (spec + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # never readable by other users, whoever loosened it
    return path.read_text(encoding="ascii").strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()


# The ring is built from these settings when code needs it before the app or the CLI configured one.
crypto.set_loader(lambda: get_settings().keyring())
