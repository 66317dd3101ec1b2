"""The `childvoice` command: serve, migrate, create-user, demo, boards, worker, audit,
retention."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import select

from app.core.config import Settings, get_settings
from app.core.db import make_engine, new_session
from app.core.migrations import upgrade_to_head
from app.core.security import PasswordHashing
from app.models.staff import Role, Team
from app.storage.base import private_dir


def migrate(settings: Settings) -> None:
    # No statement or lock timeout here: a migration may rightly take long, and a second
    # migrator waits for the first (core/migrations.py) instead of failing.
    engine = make_engine(settings.resolved_database_url, settings.model_copy(
        update={"db_statement_timeout_ms": 0, "db_lock_timeout_ms": 0}))
    with engine.begin() as connection:
        upgrade_to_head(connection)
    engine.dispose()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    print("database is at the latest schema")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.core.logging import configure_logging
    from app.services.staff import bootstrap_admin

    refused = settings.production_problems()
    if refused:
        print("Refusing to start in production:\n  " + "\n  ".join(refused), file=sys.stderr)
        return 2
    if settings.migrate_on_start and not args.no_migrate:
        migrate(settings)
    # Once, here, before the workers start (each also checks, safely, in its lifespan).
    engine = make_engine(settings.resolved_database_url, settings)
    try:
        with new_session(engine) as db:
            bootstrap_admin(db, PasswordHashing(settings), settings.bootstrap_admin_email,
                            settings.bootstrap_admin_password)
    except (OperationalError, ProgrammingError):
        print("The database has no schema yet: run `childvoice migrate` first (or serve "
              "without --no-migrate).", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    private_dir(settings.media_root)
    configure_logging(settings.log_level, settings.log_format)
    # uvicorn's own access log stays off: the app writes one line per request itself, with
    # the route template instead of the path (paths carry children's ids).
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, access_log=False, proxy_headers=True,
                log_config=None,
                # A worker busy starting on a loaded host is not a dead one: uvicorn's
                # default (5 s) restarts workers that are merely slow to import.
                timeout_worker_healthcheck=60)
    return 0


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.staff import add_user

    from app.core.security import password_problem

    password = os.environ.get("CHILDVOICE_NEW_USER_PASSWORD") or getpass.getpass("Password: ")
    problem = password_problem(password, min_length=settings.password_min_length,
                               email=args.email, full_name=args.name)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    migrate(settings)
    engine = make_engine(settings.resolved_database_url, settings)
    with new_session(engine) as db:
        team_id = None
        if args.team:
            team = db.exec(select(Team).where(Team.name == args.team)).first()
            if team is None:
                team = Team(name=args.team)
                db.add(team)
                db.flush()
            team_id = team.id
        user = add_user(db, PasswordHashing(settings), args.email, args.name, Role(args.role),
                        team_id, password, settings.password_min_length)
        db.commit()
        print(f"created {user.role} {user.email} ({user.id})")
    engine.dispose()
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.demo import is_empty, load_demo

    migrate(settings)
    engine = make_engine(settings.resolved_database_url, settings)
    credentials_file = settings.data_dir / "demo-credentials.txt"
    with new_session(engine) as db:
        if not is_empty(db):
            print("The database already has users; demo data is only added to an empty one.")
            if credentials_file.exists():
                print(f"Demo sign-in details are in {credentials_file}")
            return 0
        credentials = load_demo(db, settings, PasswordHashing(settings))
    engine.dispose()
    lines = [f"  {email}  /  {password}" for email, password in credentials.items()]
    private_dir(settings.data_dir)
    credentials_file.touch(mode=0o600)
    credentials_file.write_text("\n".join(lines) + "\n")
    print("Demo data loaded (all synthetic). Sign in at /docs (Authorize) with:")
    print("\n".join(lines))
    print(f"(also kept in {credentials_file})")
    return 0


def cmd_boards_install_starter(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.boards.starter import install_starter
    from app.storage import make_store

    migrate(settings)
    engine = make_engine(settings.resolved_database_url, settings)
    with new_session(engine) as db:
        added = install_starter(db, settings, make_store(settings))
    engine.dispose()
    if added:
        print(f"added {len(added)} starter boards: {', '.join(added)}")
    else:
        print("the starter boards are already in the library")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """The alert outbox worker: escalate overdue alerts, deliver webhooks."""
    import time

    from app.services.background import run_once

    engine = make_engine(settings.resolved_database_url, settings)
    try:
        while True:
            counts = run_once(engine, settings)
            if args.once:
                print(" ".join(f"{k}={v}" for k, v in counts.items()))
                return 0
            time.sleep(settings.outbox_poll_seconds)
    except KeyboardInterrupt:
        return 0
    finally:
        engine.dispose()


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit import verify

    anchor = None
    if args.anchor:
        try:
            anchor_id, anchor_hash = args.anchor.split(":", 1)
            anchor = (int(anchor_id), anchor_hash)
        except ValueError:
            print("--anchor is ID:HASH, as printed by an earlier verify", file=sys.stderr)
            return 2
    engine = make_engine(settings.resolved_database_url, settings)
    try:
        report = verify(engine, anchor)
    finally:
        engine.dispose()
    if report.ok:
        print(f"audit chain intact: {report.checked} events")
        if report.head_id is not None:
            print(f"head {report.head_id}:{report.head_hash}  (keep this; pass it as --anchor "
                  "next time to catch removals from the end)")
        return 0
    print(f"AUDIT CHAIN BROKEN at event {report.broken_at} ({report.problem}): {report.detail}",
          file=sys.stderr)
    print(f"{report.checked} events before it verified", file=sys.stderr)
    return 1


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.rights.retention import run

    engine = make_engine(settings.resolved_database_url, settings)
    try:
        summary = run(engine, settings, apply=args.apply)
    finally:
        engine.dispose()
    verb = "removed" if args.apply else "would remove"
    for kind, item in summary.items():
        if kind == "run_id":
            continue
        note = " (no rule for this kind)" if item["status"] == "no_rule" else ""
        count = item["removed"] if args.apply else item["found"]
        print(f"{kind}: {verb} {count} older than {item['days']} days{note}")
    if args.apply:
        print(f"recorded as retention run {summary['run_id']}; audit events are kept")
    return 0


def cmd_media_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.media.records import sweep
    from app.storage import make_store

    migrate(settings)
    engine = make_engine(settings.resolved_database_url, settings)
    with new_session(engine) as db:
        swept = sweep(db, make_store(settings), settings.media_root)
    engine.dispose()
    print(f"removed {swept['staging']} stale staging entries and {swept['blobs']} "
          "unreferenced blobs")
    return 0


def cmd_cleanup(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.media.uploads import cleanup

    migrate(settings)
    engine = make_engine(settings.resolved_database_url, settings)
    counts = cleanup(engine, settings)
    engine.dispose()
    print(f"uploads: {counts['expired']} expired, {counts['removed']} leftover files or "
          "directories removed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="childvoice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true",
                       help="do not migrate first (when `childvoice migrate` is its own "
                       "deploy step; also CHILDVOICE_MIGRATE_ON_START=false)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database to the latest schema") \
        .set_defaults(func=cmd_migrate)

    create_user = sub.add_parser(
        "create-user", help="add a staff user (password from CHILDVOICE_NEW_USER_PASSWORD "
        "or asked for)")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--name", required=True)
    create_user.add_argument("--role", required=True, choices=[r.value for r in Role])
    create_user.add_argument("--team", help="team name; made if it does not exist")
    create_user.set_defaults(func=cmd_create_user)

    sub.add_parser("demo", help="fill an empty database with synthetic demo data") \
        .set_defaults(func=cmd_demo)

    boards = sub.add_parser("boards", help="the board library")
    boards_sub = boards.add_subparsers(dest="boards_command", required=True)
    boards_sub.add_parser("install-starter", help="add the starter boards (feelings, yes/no, "
                          "people, places, things I do, I want, what I think) if missing") \
        .set_defaults(func=cmd_boards_install_starter)

    worker = sub.add_parser(
        "worker", help="escalate overdue safeguarding alerts and deliver webhook "
        "notifications (each API process also runs this in the background)")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.set_defaults(func=cmd_worker)

    audit_cmd = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check the whole hash chain; names the first event that was "
        "changed, deleted or reordered (exit 1)")
    verify.add_argument("--anchor", metavar="ID:HASH",
                        help="a head printed by an earlier verify, to catch removals from "
                        "the end of the chain")
    verify.set_defaults(func=cmd_audit_verify)

    retention = sub.add_parser(
        "retention", help="remove what is past its retention period (see the "
        "CHILDVOICE_RETENTION_DAYS setting); audit events are never removed")
    mode = retention.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="only say what would go")
    mode.add_argument("--apply", action="store_true", help="remove it, and record what went")
    retention.set_defaults(func=cmd_retention)

    sub.add_parser("media-sweep", help="remove what a crash left in the media root: stale "
                   "staging files, blobs no row names").set_defaults(func=cmd_media_sweep)
    sub.add_parser("cleanup", help="expire unfinished resumable uploads past their time and "
                   "remove their bytes (the service also does this itself)") \
        .set_defaults(func=cmd_cleanup)
    return parser


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args, settings or get_settings())


if __name__ == "__main__":
    sys.exit(main())
