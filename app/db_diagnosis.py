"""One clear sentence, instead of a traceback, when the configured database cannot be used.

`kakanai serve`, `migrate` and `check` call check_database() before they touch the database; the
`kakanai` command turns any DatabaseUnusable into its message on standard error and exit status 1.
The URL is only ever shown without its password.
"""

from __future__ import annotations

import re

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

URL_FORM = "postgresql+psycopg://ユーザー:パスワード@ホスト:5432/データベース名 か sqlite:////絶対パス/kakanai.db"
CONNECT_TIMEOUT_SECONDS = 5


class DatabaseUnusable(Exception):
    """The database URL is malformed, or the database cannot be reached or opened."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def shown(url: URL | str) -> str:
    """The URL for messages: never with its password."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "(読み取れない URL)"
    return parsed.render_as_string(hide_password=True)


def parse_database_url(url: str) -> URL:
    """The parsed URL, or DatabaseUnusable when its form is not one the service can use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnusable(f"KAKANAI_DATABASE_URL を URL として読み取れません。{URL_FORM} の形で指定してください。") from None
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgres+psycopg"):
        raise DatabaseUnusable(
            f"KAKANAI_DATABASE_URL が {parsed.drivername}:// で始まっています。このサービスは psycopg 3 を使うので、"
            f"postgresql+psycopg://… と書いてください（例: {shown(parsed.set(drivername='postgresql+psycopg'))}）。")
    if parsed.drivername not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise DatabaseUnusable(f"KAKANAI_DATABASE_URL のデータベースの種類 {parsed.drivername} には対応していません。"
                               f"{URL_FORM} を指定してください。")
    if parsed.drivername.startswith("postgresql") and not parsed.database:
        raise DatabaseUnusable(f"KAKANAI_DATABASE_URL にデータベース名がありません（{shown(parsed)}）。"
                               "末尾に /kakanai のように書いてください。")
    return parsed


def explain(exc: BaseException, url: URL) -> str:
    """A sentence for an error raised while connecting to `url`."""
    detail = str(getattr(exc, "orig", None) or exc)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if url.drivername.startswith("sqlite"):
        return (f"SQLite のデータベースファイル {url.database} を開けません。フォルダがあり、このサービスの実行ユーザーが"
                "書き込めるか確認してください（既定の場所は KAKANAI_DATA_DIR）。")
    missing_db = re.search(r'database "([^"]+)" does not exist', detail)
    if missing_db:
        name = missing_db.group(1)
        return (f"PostgreSQL サーバー {where} にデータベース {name} がありません。先に作成してください"
                f"（例: createdb -h {url.host or 'localhost'} -U {url.username or 'postgres'} {name}）。")
    if "password authentication failed" in detail or re.search(r'role "[^"]+" does not exist', detail) \
            or "no password supplied" in detail:
        return (f"PostgreSQL サーバー {where} にユーザー {url.username or '(未指定)'} でログインできません。"
                "KAKANAI_DATABASE_URL のユーザー名とパスワード、pg_hba.conf を確認してください。")
    if "timeout" in detail.lower() or "timed out" in detail.lower():
        return (f"PostgreSQL サーバー {where} から {CONNECT_TIMEOUT_SECONDS} 秒以内に応答がありません。"
                "サーバーが動いているか、ホスト名・ポート・ファイアウォールを確認してください。")
    if "could not translate host name" in detail or "Name or service not known" in detail:
        return f"PostgreSQL サーバーのホスト名 {url.host} が見つかりません。KAKANAI_DATABASE_URL のホスト名を確認してください。"
    if "Connection refused" in detail or "connection failed" in detail or "No such file or directory" in detail:
        return (f"PostgreSQL サーバー {where} に接続できません（接続を拒否されました）。サーバーが起動しているか、"
                "ホスト名とポートを確認してください。")
    first = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
    return f"データベース {shown(url)} に接続できません: {first}"


def check_database(url: str) -> URL:
    """Connect once (with a short timeout) and run SELECT 1; DatabaseUnusable with one sentence otherwise."""
    parsed = parse_database_url(url)
    connect_args: dict[str, object] = {}
    if parsed.drivername.startswith("postgresql"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    try:
        engine = create_engine(parsed, connect_args=connect_args, poolclass=NullPool, hide_parameters=True)
    except (ArgumentError, NoSuchModuleError, ImportError):
        raise DatabaseUnusable(f"KAKANAI_DATABASE_URL（{shown(parsed)}）のドライバを読み込めません。{URL_FORM} を指定してください。") \
            from None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise DatabaseUnusable(explain(exc, parsed)) from None
    finally:
        engine.dispose()
    return parsed
