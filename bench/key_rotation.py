"""How fast `kakanai keys rotate` re-encrypts and verifies stored cases (SQLite or PostgreSQL).

    .venv/bin/python bench/key_rotation.py [--cases 2000] [--database-url postgresql+psycopg://user@host/postgres]

N copies of the model household are stored under an old key (inserted directly, so only the rotation is
timed), then `app.services.key_rotation.rotate` re-encrypts them under a new key and verifies every row.
With --database-url a throw-away database is created on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from app import crypto
from app.crypto import KeyRing
from app.db import create_postgres_database, drop_postgres_database, make_engine, make_sessionmaker
from app.migrate import migrate
from app.models import Case
from app.services import instances, key_rotation
from app.settings import PROJECT_ROOT, Settings

HOUSEHOLD = PROJECT_ROOT / "bench" / "households" / "model_move_in_family.json"


def _spec(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def run(cases: int, server_url: str | None) -> dict[str, object]:
    """Store `cases` cases under an old key, rotate, and return the timing."""
    old, new = _spec("old"), _spec("new")
    with tempfile.TemporaryDirectory(prefix="kakanai-rotate-") as tmp:
        url = create_postgres_database(server_url, prefix="kakanai_bench") if server_url else f"sqlite:///{Path(tmp) / 'r.db'}"
        engine = make_engine(url)
        try:
            migrate(Settings(env="test", database_url=url, data_dir=Path(tmp)))
            model = json.loads(HOUSEHOLD.read_text(encoding="utf-8"))
            crypto.configure(KeyRing.parse(old))
            factory = make_sessionmaker(engine)
            with factory.begin() as session:
                session.execute(insert(Case), [
                    {"id": f"{i:032x}", "office": "bench", "ticket_day": dt.date(2026, 4, 6), "ticket_number": i + 1,
                     "status_token": f"rot{i}", "answers": model} for i in range(cases)])
            started = time.perf_counter()
            report = key_rotation.rotate(factory, ring=KeyRing.parse(f"{new},{old}"), window=instances.live_window(30))
            seconds = time.perf_counter() - started
        finally:
            engine.dispose()
            if server_url:
                drop_postgres_database(url)
    return {"database": url.split(":")[0], "cases": cases, "seconds": round(seconds, 2),
            "cases_per_second": round(cases / seconds), "verified": report.ok, "rewritten": report.rewritten}


def main() -> None:
    """Parse the arguments, run once, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="stored cases to rotate (default: 2000)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server URL (a throw-away database is made on it); default: SQLite")
    args = parser.parse_args()
    print(json.dumps(run(args.cases, args.database_url), ensure_ascii=False))


if __name__ == "__main__":
    main()
