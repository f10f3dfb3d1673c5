"""`kakanai`: the operations command (serve, migrate, check definitions, manage staff accounts)."""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.migrate import migrate
from app.settings import PROJECT_ROOT, Settings, get_settings

__all__ = ["build_parser", "main", "migrate"]  # migrate: kept importable from here for older callers


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
    return _print_translation_coverage(defs)



def _print_coverage(title: str, report: dict[str, dict[str, Any]], prefix: str) -> None:
    """One coverage block of `kakanai check`: per language translated/total, then what is missing or unused."""
    print(title)
    for lang, item in report.items():
        share = 100 * item["translated"] // max(1, item["total"])
        print(f"  {lang}: {item['translated']}/{item['total']}（{share}%）")
        for missing in item["missing"]:
            print(f"    未翻訳 {prefix}{missing}")
        for unused in item["unused"]:
            print(f"    使われていない訳 {prefix}{unused}")

def _print_translation_coverage(defs: Any) -> int:
    """Each language's share of the definition texts residents see (form_definitions/i18n/<lang>.yaml)."""
    from app.forms import translations

    try:
        catalogs = translations.load_catalogs(defs.directory)
        report = translations.coverage(defs, catalogs)
    except translations.TranslationFileError as exc:
        print(f"i18n/{exc}")
        return 1
    _print_coverage("住民向けの翻訳（申請書名・持ち物・期限・市役所の外の手続き・注意）:", report, "")
    _print_coverage("事前入力（スマートフォン）の質問・選択肢の翻訳（interview.yaml）:",
                    translations.question_coverage(defs, catalogs), "questions: ")
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
    from app.forms.loader import DefinitionError, load_definitions
    from app.services import auth

    password = _read_password(args)
    try:
        known = set(load_definitions(settings.definitions_dir).departments) if args.department else None
    except DefinitionError as exc:
        print("様式定義に問題があるため課を確かめられません:\n" + str(exc), file=sys.stderr)
        return 1
    try:
        with _session(settings) as session:
            auth.create_user(session, username=args.name, password=password, role=args.role,
                             display_name=args.display_name or args.name, department_id=args.department,
                             known_departments=known)
    except ValidationFailed as exc:
        for err in exc.details or []:
            print(f"{err['field']}: {err['message']}", file=sys.stderr)
        return 1
    print(f"created {args.role} account {args.name}")
    return 0


def _local(value: dt.datetime | None, settings: Settings) -> str:
    return value.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    """List staff accounts with their state and last login (local time)."""
    from app.services import auth

    with _session(settings) as session:
        print(f"user\trole\tdepartment\tstate\tlocked until\tlast login ({settings.timezone})")
        for user in auth.list_users(session):
            locked = _local(user.locked_until, settings) if auth.account_state(user) == "locked" else "-"
            print("\t".join([user.username, user.role, user.department_id or "-", auth.account_state(user), locked,
                             _local(user.last_login_at, settings)]))
    return 0


def _user_command(args: argparse.Namespace, settings: Settings, action: Callable[..., object]) -> int:
    from app.errors import AppError
    from app.services import auth

    try:
        with _session(settings) as session:
            user = auth.get_user_or_raise(session, args.name)
            result = action(session, user)
    except AppError as exc:
        _print_errors(exc)
        return 1
    if isinstance(result, str):
        print(result)
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    """Disable an account; its tokens and sessions stop at once."""
    from app.services import auth

    return _user_command(args, settings, lambda s, u: (auth.disable_user(s, user=u, by_name=_operator()),
                                                        f"disabled {u.username}; its tokens and sessions are revoked")[1])


def cmd_users_enable(args: argparse.Namespace, settings: Settings) -> int:
    """Enable a disabled account."""
    from app.services import auth

    return _user_command(args, settings, lambda s, u: (auth.enable_user(s, user=u, by_name=_operator()),
                                                        f"enabled {u.username}")[1])


def cmd_users_unlock(args: argparse.Namespace, settings: Settings) -> int:
    """Lift a lock-out after failed logins."""
    from app.services import auth

    return _user_command(args, settings, lambda s, u: (auth.unlock_user(s, user=u, by_name=_operator()),
                                                        f"unlocked {u.username}")[1])


def cmd_users_reset_password(args: argparse.Namespace, settings: Settings) -> int:
    """Set a new password (typed on stdin, or a random one printed once)."""
    from app.services import auth

    typed = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None

    def reset(session: object, user: object) -> str:
        password = auth.reset_password(session, user=user, password=typed, by_name=_operator())  # type: ignore[arg-type]
        done = f"password of {user.username} reset; its tokens and sessions are revoked"  # type: ignore[attr-defined]
        if typed is not None:
            return done
        return f"{done}\nnew password (shown once / この表示は一度だけです): {password}"

    return _user_command(args, settings, reset)


def cmd_users_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a user's bearer tokens and sessions, or everybody's with --all."""
    from app.errors import AppError
    from app.services import auth

    if args.all == bool(args.name):
        print("give either a user name or --all", file=sys.stderr)
        return 2
    if args.all:
        try:
            with _session(settings) as session:
                tokens, ended = auth.revoke_all_credentials(
                    session, include_department_tokens=args.include_department_tokens, by_name=_operator())
        except AppError as exc:
            _print_errors(exc)
            return 1
        print(f"revoked {tokens} tokens and ended {ended} sessions")
        return 0

    def revoke(session: object, user: object) -> str:
        tokens, ended = auth.revoke_credentials(session, user=user, by_name=_operator())  # type: ignore[arg-type]
        return f"revoked {tokens} tokens and ended {ended} sessions of {user.username}"  # type: ignore[attr-defined]

    return _user_command(args, settings, revoke)


def _operator() -> str:
    """Who ran the command, for the audit log (the operating-system account)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


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
    # X-Forwarded-For is believed only from KAKANAI_TRUSTED_PROXIES (uvicorn's default trusts 127.0.0.1,
    # which would let anyone on the host rotate the header past the login limit).
    trusted = ",".join(str(net) for net in settings.trusted_proxy_networks())
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers, proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or "", timeout_graceful_shutdown=5)
    return 0


def cmd_keys_generate(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new random key entry for KAKANAI_ENCRYPTION_KEYS."""
    import base64
    import os

    print(f"{args.key_id}:{base64.b64encode(os.urandom(32)).decode()}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Re-encrypt every stored case with the current (first) key, beside a running service, and verify."""
    from app import crypto
    from app.db import make_engine, make_sessionmaker
    from app.services import audit, instances, key_rotation

    ring = settings.keyring()
    crypto.configure(ring)
    engine = make_engine(settings.effective_database_url)
    factory = make_sessionmaker(engine)
    try:
        report = key_rotation.rotate(
            factory, ring=ring, window=instances.live_window(settings.instance_heartbeat_seconds),
            progress=lambda r: print(f"... {r.cases} cases", flush=True))
        with factory.begin() as session:
            audit.record(session, action=audit.KEYS_ROTATED, actor_name=_operator(),
                         outcome="ok" if report.ok else "incomplete",
                         target=f"key:{ring.current} cases={report.cases} rewritten={report.rewritten}")
    except key_rotation.RotationRefused as exc:
        print("鍵の切り替えを中止しました（何も変更していません）/ rotation refused, nothing changed:", file=sys.stderr)
        _print_errors(exc)
        print(f"Restart every instance with {ring.current} FIRST in KAKANAI_ENCRYPTION_KEYS (old keys after it), "
              "then run this again.", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if not report.ok:
        print(f"{len(report.stale)} rows still hold values that key {ring.current} alone cannot decrypt "
              f"after {report.passes} passes (first: {', '.join(report.stale[:5])}); keep the old keys configured "
              "and run this again", file=sys.stderr)
        return 1
    print(f"re-encrypted {report.rewritten} of {report.cases} cases with key {ring.current} "
          f"({report.retried} re-read after a save made meanwhile, {report.passes} pass(es)); verified: every stored "
          f"value decrypts with key {ring.current} alone, the older keys can be removed")
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
    if report.count and not args.dry_run:
        from app.db import make_engine

        engine = make_engine(settings.effective_database_url)
        retention.scrub_storage(engine)
        engine.dispose()
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
                                              expires_days=args.expires_days, by_name=_operator())
    except AppError as exc:
        _print_errors(exc)
        return 1
    print(f"token id {issued.id} for department {issued.department_id} (user {issued.username}), "
          f"expires {_local(issued.expires_at, settings)} ({settings.timezone})")
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
                lines.append("\t".join([str(row.id), row.label or "-", _local(row.created_at, settings),
                                        _local(row.expires_at, settings) if row.expires_at else "never",
                                        departments.token_state(row)]))
    except AppError as exc:
        _print_errors(exc)
        return 1
    print(f"id\tlabel\tcreated ({settings.timezone})\texpires ({settings.timezone})\tstate")
    for line in lines:
        print(line)
    return 0


def cmd_departments_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a department API token by its id."""
    from app.errors import AppError
    from app.services import departments

    try:
        with _session(settings) as session:
            departments.revoke_token(session, token_id=args.token_id, by_name=_operator())
    except AppError as exc:
        _print_errors(exc)
        return 1
    print(f"revoked token {args.token_id}")
    return 0


def cmd_departments_token_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Issue a successor of a department token and print it once; the old one stops (after the grace)."""
    from app.errors import AppError
    from app.forms.loader import load_definitions
    from app.services import departments

    defs = load_definitions(settings.definitions_dir)
    try:
        with _session(settings) as session:
            issued, old = departments.rotate_token(session, defs=defs, token_id=args.token_id,
                                                   grace_hours=args.grace_hours, expires_days=args.expires_days,
                                                   by_name=_operator())
            old_end = _local(old.revoked_at or old.expires_at, settings)
    except AppError as exc:
        _print_errors(exc)
        return 1
    print(f"token id {issued.id} replaces {args.token_id} for department {issued.department_id}, "
          f"expires {_local(issued.expires_at, settings)}; the old token stops {old_end} ({settings.timezone})")
    print("この表示は一度だけです。安全な場所に保管してください / shown once, store it safely:")
    print(issued.token)
    return 0


def cmd_import_moving_in(args: argparse.Namespace, settings: Settings) -> int:
    """Import a 転入予約 export through its mapping file: every household or none."""
    from pathlib import Path

    from app.forms.loader import load_definitions
    from app.importers.mapping import MappingError, load_mapping
    from app.services import planned_visits
    from app.services.clock import local_today

    try:
        mapping = load_mapping(Path(args.mapping))
    except MappingError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"{args.file}: ファイルを読めません（{exc.strerror}）", file=sys.stderr)
        return 1
    defs = load_definitions(settings.definitions_dir)
    try:
        with _session(settings) as session:
            report = planned_visits.import_file(session, defs=defs, mapping=mapping, data=data,
                                                office=settings.office_code, user=None, today=local_today(settings),
                                                dry_run=args.dry_run)
    except planned_visits.ImportFailed as exc:
        print(exc.message, file=sys.stderr)
        for err in exc.details or []:
            where = f"{err['row']}「{err['column']}」" if err["column"] else err["row"]
            print(f"  {where}: {err['message']}", file=sys.stderr)
        return 1
    days = "、".join(f"{day} {n}世帯" for day, n in sorted(report.days.items()))
    verb = "確認しました（保存していません）" if args.dry_run else "取り込みました"
    print(f"{report.households}世帯（{report.members}人）を{verb}。来庁予定日: {days}")
    return 0


def cmd_notify_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new VAPID key pair for Web Push notices (settings KAKANAI_VAPID_*)."""
    from app.services.notify import webpush

    private, public = webpush.generate_keys()
    print(f"KAKANAI_VAPID_PRIVATE_KEY={private}")
    print(f"KAKANAI_VAPID_PUBLIC_KEY={public}")
    return 0


def cmd_notify_run(args: argparse.Namespace, settings: Settings) -> int:
    """Send the notices (and booking confirmations, no-shows) that became due, once or every --interval seconds."""
    import time

    from app.forms.loader import load_definitions
    from app.services import background
    from app.services.notify.channels import from_settings

    defs = load_definitions(settings.definitions_dir)
    senders = from_settings(settings)
    if not senders:
        print("no channel is configured (KAKANAI_VAPID_PRIVATE_KEY, KAKANAI_SMTP_HOST)", file=sys.stderr)
        return 1
    from app import crypto
    from app.db import make_engine, make_sessionmaker

    crypto.configure(settings.keyring())
    sessions = make_sessionmaker(make_engine(settings.effective_database_url))
    while True:
        done = background.run_round(sessions, settings=settings, defs=defs, senders=senders)
        if args.once:
            print(f"sent {done.notices} notices")
            return 0
        time.sleep(args.interval)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `kakanai` (every subcommand and option has a help text: tests/test_cli_help.py)."""
    parser = argparse.ArgumentParser(prog="kakanai", description="書かない窓口 service operations")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    serve = sub.add_parser("serve", help="migrate the database and run the web service")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="check the form definitions and print every problem")
    check.add_argument("directory", nargs="?", default=None,
                       help="definitions directory (default: KAKANAI_DEFINITIONS_DIR)")
    check.set_defaults(func=cmd_check)

    mig = sub.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    mig.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    mig.set_defaults(func=cmd_migrate)

    users = sub.add_parser("users", help="staff accounts").add_subparsers(
        dest="users_command", required=True, metavar="ACTION", help="what to do with staff accounts")
    create = users.add_parser("create", help="create a staff account")
    create.add_argument("name", help="user name (letters, digits, _ - .; at most 64)")
    create.add_argument("--role", required=True, choices=["counter", "department", "admin"],
                        help="counter staff, department staff or administrator")
    create.add_argument("--department", default=None, help="department id (for role department)")
    create.add_argument("--display-name", default=None, help="name shown on the screens (default: the user name)")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(func=cmd_users_create)
    lst = users.add_parser("list", help="list staff accounts with state (active/locked/disabled) and last login")
    lst.set_defaults(func=cmd_users_list)
    for name, func, text in (
        ("disable", cmd_users_disable, "disable an account (no login; its tokens and sessions stop at once)"),
        ("enable", cmd_users_enable, "enable a disabled account again"),
        ("unlock", cmd_users_unlock, "lift the lock-out after failed logins"),
    ):
        cmd = users.add_parser(name, help=text)
        cmd.add_argument("name", help="user name")
        cmd.set_defaults(func=func)
    reset = users.add_parser("reset-password", help="set a new password (random and printed once, or typed)")
    reset.add_argument("name", help="user name")
    reset.add_argument("--password-stdin", action="store_true",
                       help="read the new password from standard input instead of generating one")
    reset.set_defaults(func=cmd_users_reset_password)
    revoke = users.add_parser("revoke", help="revoke a user's bearer tokens and end its sessions (or everybody's)")
    revoke.add_argument("name", nargs="?", default=None, help="user name (omit with --all)")
    revoke.add_argument("--all", action="store_true", help="every staff member's tokens and sessions")
    revoke.add_argument("--include-department-tokens", action="store_true",
                        help="with --all: also the department systems' tokens")
    revoke.set_defaults(func=cmd_users_revoke)

    keys = sub.add_parser("keys", help="encryption keys for My Numbers at rest").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION", help="what to do with the keys")
    gen = keys.add_parser("generate", help="print a new key entry (put it FIRST in KAKANAI_ENCRYPTION_KEYS)")
    gen.add_argument("key_id", nargs="?", default="k1", help="key id, 1-16 of A-Z a-z 0-9 _ - (default: k1)")
    gen.set_defaults(func=cmd_keys_generate)
    rot = keys.add_parser("rotate", help="re-encrypt all stored values with the first key and verify them "
                                         "(refused while a running instance does not use that key)")
    rot.set_defaults(func=cmd_keys_rotate)

    retention = sub.add_parser("retention", help="retention of personal data").add_subparsers(
        dest="retention_command", required=True, metavar="ACTION", help="what to do")
    purge = retention.add_parser("purge", help="delete personal data of visits older than the retention period")
    purge.add_argument("--older-than-days", type=int, default=None, help="default: KAKANAI_RETENTION_DAYS (90)")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be purged")
    purge.set_defaults(func=cmd_retention_purge)

    depts = sub.add_parser("departments", help="department API access").add_subparsers(
        dest="departments_command", required=True, metavar="WHAT", help="what to manage")
    token = depts.add_parser("token", help="department API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION", help="what to do with the tokens")
    tcreate = token.add_parser("create", help="issue a token for a department (printed once)")
    tcreate.add_argument("department", help="department id from departments.yaml")
    tcreate.add_argument("--label", default="", help="what the token is for (e.g. the system using it)")
    tcreate.add_argument("--expires-days", type=int, default=365, help="lifetime in days (default: 365)")
    tcreate.set_defaults(func=cmd_departments_token_create)
    tlist = token.add_parser("list", help="list a department's tokens with expiry and state")
    tlist.add_argument("department", help="department id from departments.yaml")
    tlist.set_defaults(func=cmd_departments_token_list)
    trevoke = token.add_parser("revoke", help="revoke a token by its id")
    trevoke.add_argument("token_id", type=int, help="token id (see `list`)")
    trevoke.set_defaults(func=cmd_departments_token_revoke)
    trotate = token.add_parser("rotate", help="issue a successor token (printed once); the old one stops")
    trotate.add_argument("token_id", type=int, help="id of the token to replace (see `list`)")
    trotate.add_argument("--grace-hours", type=float, default=0,
                         help="the old token keeps working this many hours (default: 0, stops at once)")
    trotate.add_argument("--expires-days", type=int, default=365, help="lifetime of the new token (default: 365)")
    trotate.set_defaults(func=cmd_departments_token_rotate)

    imp = sub.add_parser("import", help="import data received from other services").add_subparsers(
        dest="import_command", required=True, metavar="SOURCE", help="what the data is")
    moving = imp.add_parser("moving-in", help="転入予約 / 転出証明書情報 (引越しワンストップ) export → 本日の来庁予定")
    moving.add_argument("file", help="the export (CSV or JSON, as the mapping says)")
    moving.add_argument("--mapping", required=True, help="mapping file (see samples/moving_in/mapping.yaml)")
    moving.add_argument("--dry-run", action="store_true", help="check everything, store nothing")
    moving.set_defaults(func=cmd_import_moving_in)

    card = sub.add_parser("card-bridge", help="read a マイナンバーカード at the counter and send it to the visit "
                                             "(pairing code from the tablet; talks to the service over HTTP only)")
    __import__("app.cardbridge.main", fromlist=["build_parser"]).build_parser(card)
    card.set_defaults(func=lambda args, settings: __import__("app.cardbridge.main", fromlist=["run"]).run_with_logging(args))

    notices = sub.add_parser("notify", help="notices to residents (Web Push, e-mail)").add_subparsers(
        dest="notify_command", required=True, metavar="ACTION", help="what to do")
    nkeys = notices.add_parser("keys", help="print a new VAPID key pair for Web Push")
    nkeys.set_defaults(func=cmd_notify_keys)
    nrun = notices.add_parser("run", help="send the notices that became due (loop, or --once)")
    nrun.add_argument("--once", action="store_true", help="send what is due now, then stop")
    nrun.add_argument("--interval", type=float, default=5.0, help="seconds between two rounds (default: 5)")
    nrun.set_defaults(func=cmd_notify_run)

    bench = sub.add_parser("bench", help="benchmarks that drive the real service").add_subparsers(
        dest="bench_command", required=True, metavar="WHICH", help="which benchmark")
    visit = bench.add_parser("visit", help="replay the model household (or a day) on a simulated clock; print "
                                           "the survey's old-way figures beside the service's measured ones")
    visit.add_argument("--day", action="store_true", help="many fictional households over one day (waiting percentiles)")
    visit.add_argument("--households", type=int, default=None, help="--day: how many (default: assumptions)")
    visit.add_argument("--counters", type=int, default=None, help="one-stop counters K (default: assumptions)")
    visit.add_argument("--seed", type=int, default=None, help="--day: random seed (default: assumptions)")
    visit.add_argument("--assumptions", default=str(PROJECT_ROOT / "bench" / "assumptions.yaml"),
                       help="assumptions file (default: bench/assumptions.yaml)")
    visit.add_argument("--household", default=str(PROJECT_ROOT / "bench" / "households" / "model_move_in_family.json"),
                       help="answers document of the household (default: the model household)")
    visit.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one assumption, e.g. counter.sign=3")
    visit.add_argument("--database-url", default=None, help="default: a fresh temporary SQLite file")
    visit.add_argument("--server", choices=["inprocess", "uvicorn"], default="inprocess",
                       help="call the app in-process or through a real uvicorn (default: inprocess)")
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
