"""Engine and session handling: one transaction per request, owned by the session dependency."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable Alembic migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True)
class DbLimits:
    """Connection pool and timeouts of an engine (settings `db_*`, README "Configuration").

    `statement_timeout` bounds a statement and a lock wait (PostgreSQL `statement_timeout` and
    `lock_timeout`, SQLite `busy_timeout`), `connect_timeout` a new connection, `pool_timeout` the wait
    for a free connection of the pool: a hung or locked database ends in a quick 503, never a hang.
    """

    pool_size: int = 20
    max_overflow: int = 5
    pool_timeout: float = 5.0
    statement_timeout: float = 15.0
    connect_timeout: float = 5.0


def _sqlite_pragmas(busy_ms: int) -> Any:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy own BEGIN (pysqlite's implicit transactions break SAVEPOINTs).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        # Deleted or overwritten content is zeroed, not left in free space (retention purges: SECURITY.md).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return apply


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def make_engine(url: str, *, limits: DbLimits | None = None, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout, PostgreSQL connect and
    statement timeouts; both a bounded pool (`limits`)."""
    limits = limits or DbLimits()
    # Bound values (names, addresses) never appear in SQL logs or in the text of database errors.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
            kwargs.setdefault("pool_size", limits.pool_size)
            kwargs.setdefault("max_overflow", limits.max_overflow)
            kwargs.setdefault("pool_timeout", limits.pool_timeout)
        busy = limits.statement_timeout if limits.statement_timeout > 0 else 60.0
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(int(busy * 1000)))
        # A session that may write begins IMMEDIATE: it takes the write lock up front, because a
        # deferred transaction that reads and then writes fails at once with "database is locked" when
        # another writer got in between (busy_timeout does not apply to that upgrade), while IMMEDIATE
        # simply waits its turn. Read-only work (GET requests that write nothing, health checks, the
        # resident's status page) runs with `execution_options(sqlite_begin="DEFERRED")`: it reads a
        # WAL snapshot next to the writers and never queues behind them (see app/deps.py).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql") and limits.statement_timeout > 0:
        timeout_ms = int(limits.statement_timeout * 1000)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("connect_timeout", max(2, int(limits.connect_timeout)))
        # Server-side limits: a statement or a lock wait longer than this fails (→ 503), and a
        # connection left idle inside a transaction is closed instead of holding its locks forever.
        connect_args.setdefault("options", f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms} "
                                           f"-c idle_in_transaction_session_timeout={max(60_000, 4 * timeout_ms)}")
        kwargs["connect_args"] = connect_args
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", limits.pool_size)
    kwargs.setdefault("max_overflow", limits.max_overflow)
    kwargs.setdefault("pool_timeout", limits.pool_timeout)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to the engine; objects stay readable after commit.

    `info["own_engine"]` lets a service open a short transaction of its own next to the request's
    (the ticket counter, app/services/cases.py); tests that join every request to one rolled-back
    connection build their sessionmaker without it.
    """
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True, info={"own_engine": engine})


def read_only_bind(factory: sessionmaker[Session]) -> Any:
    """The factory's engine with SQLite's deferred BEGIN (reads a snapshot, never takes the write lock),
    or None when the factory is bound to something else (a test's connection)."""
    bind = factory.kw.get("bind")
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        return bind.execution_options(sqlite_begin="DEFERRED")
    return None


def session_scope(factory: sessionmaker[Session], *, read_only: bool = False) -> Iterator[Session]:
    """Yield a session, commit when the caller finishes, roll back on any error."""
    bind = read_only_bind(factory) if read_only else None
    session = factory(bind=bind) if bind is not None else factory()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        if getattr(exc, "keep_changes", False):
            session.commit()
        else:
            session.rollback()
        raise
    finally:
        session.close()


# --- Throw-away PostgreSQL databases (tests, benchmarks, fault scripts) -----------------------------


def create_postgres_database(server_url: str, *, prefix: str = "kakanai_scratch") -> str:
    """Create a fresh, uniquely named database on the server of `server_url`; returns its URL."""
    base = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop the database of `url`, closing whatever connections it still has."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def postgres_scratch_database(server_url: str, *, prefix: str = "kakanai_scratch") -> Iterator[str]:
    """A throw-away database for the length of the block (never touches the server's other databases)."""
    url = create_postgres_database(server_url, prefix=prefix)
    try:
        yield url
    finally:
        drop_postgres_database(url)
