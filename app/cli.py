"""`kakanai`: the operations command (serve, migrate, check definitions, manage staff accounts)."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence

from app.settings import PROJECT_ROOT, Settings, get_settings


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


def _session(settings: Settings):
    from app.db import make_engine, make_sessionmaker

    engine = make_engine(settings.effective_database_url)
    return make_sessionmaker(engine).begin()


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Print the definitions report; exit 1 when there are problems."""
    from app.forms.loader import DefinitionError, load_definitions

    directory = args.directory or settings.definitions_dir
    try:
        defs = load_definitions(directory)
    except DefinitionError as exc:
        print(str(exc))
        print(f"\n{len(exc.problems)} 件の問題があります。", file=sys.stderr)
        return 1
    print(f"OK: 申請書 {len(defs.applications)} 種類、課 {len(defs.departments)}、"
          f"聞き取り項目 {len(defs.fields)}（fingerprint {defs.fingerprint[:12]}）")
    if settings.database_url:  # a configured database is checked too (the embedded SQLite needs nothing)
        from app.db_diagnosis import check_database, shown

        check_database(settings.database_url)
        print(f"OK: データベース {shown(settings.database_url)} に接続できます")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Upgrade the database schema."""
    migrate(settings, args.revision)
    print("database is at revision", args.revision)
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if not args.password_stdin:
        print("--password-stdin is required (the password is read from standard input)", file=sys.stderr)
        raise SystemExit(2)
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create a staff account."""
    from app.errors import ValidationFailed
    from app.services import auth

    password = _read_password(args)
    try:
        with _session(settings) as session:
            auth.create_user(session, username=args.name, password=password, role=args.role,
                             display_name=args.display_name or args.name, department_id=args.department)
    except ValidationFailed as exc:
        for err in exc.details or []:
            print(f"{err['field']}: {err['message']}", file=sys.stderr)
        return 1
    print(f"created {args.role} account {args.name}")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    """List staff accounts."""
    from app.services import auth

    with _session(settings) as session:
        for user in auth.list_users(session):
            print(f"{user.username}\t{user.role}\t{user.department_id or '-'}\t{'active' if user.active else 'disabled'}")
    return 0


def ensure_bootstrap_admin(settings: Settings) -> str | None:
    """On an empty database (any environment), create `admin` with a random password and return it."""
    from sqlalchemy import func, select

    from app.models import User
    from app.services import auth

    with _session(settings) as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
        password = secrets.token_urlsafe(12)
        auth.create_user(session, username="admin", password=password, role="admin", display_name="管理者")
        return password


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, make the first admin on an empty database, then run uvicorn."""
    import uvicorn

    from app.forms.loader import DefinitionError, load_definitions

    try:
        load_definitions(settings.definitions_dir)
    except DefinitionError as exc:
        print("様式定義に問題があるため起動できません:\n" + str(exc), file=sys.stderr)
        return 1
    migrate(settings)
    password = ensure_bootstrap_admin(settings)
    if password:
        print("=" * 64)
        print("最初の管理者アカウントを作成しました / bootstrap admin account created:")
        print("  user: admin")
        print(f"  password: {password}")
        print("この表示は一度だけです。ログイン後 `kakanai users create` で職員を追加してください。")
        print("=" * 64, flush=True)
    # Open SSE streams (resident phones, the board) would otherwise hold a graceful shutdown open.
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers, proxy_headers=True,
                timeout_graceful_shutdown=5)
    return 0


def cmd_keys_generate(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new random key entry for KAKANAI_ENCRYPTION_KEYS."""
    import base64
    import os

    print(f"{args.key_id}:{base64.b64encode(os.urandom(32)).decode()}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Re-encrypt every stored case with the current (first) key."""
    from app import crypto
    from app.services.cases import reencrypt_all

    ring = settings.keyring()
    crypto.configure(ring)
    with _session(settings) as session:
        count = reencrypt_all(session)
    print(f"re-encrypted {count} cases with key {ring.current}")
    return 0


def cmd_retention_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Purge the personal data of visits older than the retention period (see SECURITY.md)."""
    from app import crypto
    from app.services import retention

    days = settings.retention_days if args.older_than_days is None else args.older_than_days
    if days < 0:
        print("--older-than-days must be 0 or more", file=sys.stderr)
        return 2
    crypto.configure(settings.keyring())
    with _session(settings) as session:
        report = retention.purge(session, older_than_days=days, dry_run=args.dry_run)
    verb = "would purge" if args.dry_run else "purged"
    print(f"{verb} {report.count} visits last active before {report.cutoff:%Y-%m-%d %H:%M} UTC ({days} days)")
    return 0


def _print_errors(exc: Exception) -> None:
    details = getattr(exc, "details", None) or [{"field": "", "message": str(exc)}]
    for err in details:
        print(f"{err['field']}: {err['message']}" if err["field"] else err["message"], file=sys.stderr)


def cmd_departments_token_create(args: argparse.Namespace, settings: Settings) -> int:
    """Issue a department API token and print it once."""
    from app.errors import AppError
    from app.forms.loader import load_definitions
    from app.services import departments

    defs = load_definitions(settings.definitions_dir)
    try:
        with _session(settings) as session:
            issued = departments.create_token(session, defs=defs, department_id=args.department, label=args.label,
                                              expires_days=args.expires_days)
    except AppError as exc:
        _print_errors(exc)
        return 1
    expires = issued.expires_at.strftime("%Y-%m-%d %H:%M UTC") if issued.expires_at else "never"
    print(f"token id {issued.id} for department {issued.department_id} (user {issued.username}), expires {expires}")
    print("この表示は一度だけです。安全な場所に保管してください / shown once, store it safely:")
    print(issued.token)
    return 0


def cmd_departments_token_list(args: argparse.Namespace, settings: Settings) -> int:
    """List a department's API tokens (never the tokens themselves)."""
    from app.errors import AppError
    from app.forms.loader import load_definitions
    from app.services import departments

    defs = load_definitions(settings.definitions_dir)
    try:
        with _session(settings) as session:
            rows = departments.list_tokens(session, defs=defs, department_id=args.department)
            lines = []
            for row in rows:
                state = "revoked" if row.revoked_at else "active"
                lines.append("\t".join([str(row.id), row.label or "-", f"{row.created_at:%Y-%m-%d %H:%M}",
                                        f"{row.expires_at:%Y-%m-%d %H:%M}" if row.expires_at else "never", state]))
    except AppError as exc:
        _print_errors(exc)
        return 1
    print("id\tlabel\tcreated (UTC)\texpires (UTC)\tstate")
    for line in lines:
        print(line)
    return 0


def cmd_departments_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a department API token by its id."""
    from app.errors import AppError
    from app.services import departments

    try:
        with _session(settings) as session:
            departments.revoke_token(session, token_id=args.token_id)
    except AppError as exc:
        _print_errors(exc)
        return 1
    print(f"revoked token {args.token_id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `kakanai`."""
    parser = argparse.ArgumentParser(prog="kakanai", description="書かない窓口 service operations")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database and run the web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="check the form definitions and print every problem")
    check.add_argument("directory", nargs="?", default=None)
    check.set_defaults(func=cmd_check)

    mig = sub.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    mig.add_argument("revision", nargs="?", default="head")
    mig.set_defaults(func=cmd_migrate)

    users = sub.add_parser("users", help="staff accounts").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create a staff account")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=["counter", "department", "admin"])
    create.add_argument("--department", default=None, help="department id (for role department)")
    create.add_argument("--display-name", default=None)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(func=cmd_users_create)
    lst = users.add_parser("list", help="list staff accounts")
    lst.set_defaults(func=cmd_users_list)

    keys = sub.add_parser("keys", help="encryption keys for My Numbers at rest").add_subparsers(
        dest="keys_command", required=True)
    gen = keys.add_parser("generate", help="print a new key entry (put it FIRST in KAKANAI_ENCRYPTION_KEYS)")
    gen.add_argument("key_id", nargs="?", default="k1")
    gen.set_defaults(func=cmd_keys_generate)
    rot = keys.add_parser("rotate", help="re-encrypt all stored values with the first key")
    rot.set_defaults(func=cmd_keys_rotate)

    retention = sub.add_parser("retention", help="retention of personal data").add_subparsers(
        dest="retention_command", required=True)
    purge = retention.add_parser("purge", help="delete personal data of visits older than the retention period")
    purge.add_argument("--older-than-days", type=int, default=None, help="default: KAKANAI_RETENTION_DAYS (90)")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be purged")
    purge.set_defaults(func=cmd_retention_purge)

    depts = sub.add_parser("departments", help="department API access").add_subparsers(
        dest="departments_command", required=True)
    token = depts.add_parser("token", help="department API tokens").add_subparsers(dest="token_command", required=True)
    tcreate = token.add_parser("create", help="issue a token for a department (printed once)")
    tcreate.add_argument("department", help="department id from departments.yaml")
    tcreate.add_argument("--label", default="", help="what the token is for (e.g. the system using it)")
    tcreate.add_argument("--expires-days", type=int, default=None, help="lifetime in days (default: no expiry)")
    tcreate.set_defaults(func=cmd_departments_token_create)
    tlist = token.add_parser("list", help="list a department's tokens")
    tlist.add_argument("department")
    tlist.set_defaults(func=cmd_departments_token_list)
    trevoke = token.add_parser("revoke", help="revoke a token by its id")
    trevoke.add_argument("token_id", type=int)
    trevoke.set_defaults(func=cmd_departments_token_revoke)

    bench = sub.add_parser("bench", help="benchmarks that drive the real service").add_subparsers(
        dest="bench_command", required=True)
    visit = bench.add_parser("visit", help="replay the model household (or a day) on a simulated clock; print "
                                           "the survey's old-way figures beside the service's measured ones")
    visit.add_argument("--day", action="store_true", help="many fictional households over one day (waiting percentiles)")
    visit.add_argument("--households", type=int, default=None, help="--day: how many (default: assumptions)")
    visit.add_argument("--counters", type=int, default=None, help="one-stop counters K (default: assumptions)")
    visit.add_argument("--seed", type=int, default=None, help="--day: random seed (default: assumptions)")
    visit.add_argument("--assumptions", default=str(PROJECT_ROOT / "bench" / "assumptions.yaml"))
    visit.add_argument("--household", default=str(PROJECT_ROOT / "bench" / "households" / "model_move_in_family.json"))
    visit.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one assumption, e.g. counter.sign=3")
    visit.add_argument("--database-url", default=None, help="default: a fresh temporary SQLite file")
    visit.add_argument("--server", choices=["inprocess", "uvicorn"], default="inprocess")
    visit.add_argument("--json", action="store_true", help="print the measured figures as JSON")
    visit.set_defaults(func=lambda args, settings: __import__("app.bench.visit", fromlist=["main"]).main(args))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kakanai` console script."""
    from pydantic import ValidationError

    from app.db_diagnosis import DatabaseUnusable

    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:  # e.g. production without KAKANAI_SECRET_KEY: say what, not where
        for err in exc.errors():
            print(f"設定エラー: {err['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    try:
        return args.func(args, settings)
    except DatabaseUnusable as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
