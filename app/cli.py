"""The `childvoice` command: serve, migrate, create-user, users, demo, boards, worker,
audit, retention."""

from __future__ import annotations

import argparse
import getpass
import json
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
    # the route template instead of the path (paths carry children's ids). proxy_headers
    # off: the app reads forwarded addresses itself, only from the proxies named in
    # trusted_proxies (uvicorn would trust any local peer).
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, access_log=False, proxy_headers=False,
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


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.context import Actor, Context
    from app.core.errors import Problem
    from app.services import staff

    migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with new_session(engine) as db:
            user = staff.user_by_email(db, args.email)
            if user is None:
                print(f"no user with the email {args.email}", file=sys.stderr)
                return 1
            try:
                answer = staff.account_action(Context(db=db, actor=Actor()), settings, user,
                                              args.users_command, None)
            except Problem as problem:
                print(problem.detail, file=sys.stderr)
                return 1
            db.commit()
            if answer is not None:
                print(f"reset code for {user.email}: {answer.code}\n"
                      f"valid until {answer.expires_at.isoformat()}; shown only now. The user "
                      "chooses a new password with it at POST /api/v1/auth/password-reset.")
            else:
                done = {"deactivate": "deactivated", "reactivate": "reactivated",
                        "unlock": "unlocked"}[args.users_command]
                print(f"{done} {user.email} ({user.id})")
    finally:
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
    """All background work: escalation, webhooks, retention, sweeps, upload expiry, audit
    checkpoints (see services/background.py)."""
    from app.services.audit import signing_key
    from app.services.background import BackgroundWorker, run_once

    if settings.audit_checkpoint_minutes > 0:
        try:
            signing_key(settings)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    migrate(settings)
    settings.media_root.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url, settings)
    try:
        if args.once:
            counts = run_once(engine, settings)
            print(" ".join(f"{k}={v}" for k, v in counts.items()))
            return 0
        BackgroundWorker(engine, settings).loop()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        engine.dispose()


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit import parse_exported, verify

    anchor = exported = None
    if args.anchor:
        try:
            anchor_id, anchor_hash = args.anchor.split(":", 1)
            anchor = (int(anchor_id), anchor_hash)
        except ValueError:
            print("--anchor is ID:HASH, as printed by an earlier verify", file=sys.stderr)
            return 2
    if args.checkpoints:
        try:
            with open(args.checkpoints, encoding="utf-8") as lines:
                exported = parse_exported(lines, args.checkpoints)
        except (OSError, ValueError) as exc:
            print(f"--checkpoints: {exc}", file=sys.stderr)
            return 2
    engine = make_engine(settings.resolved_database_url, settings)
    try:
        report = verify(engine, anchor, settings=settings, exported=exported)
    finally:
        engine.dispose()
    if report.ok:
        print(f"audit chains intact: {report.checked} events in {report.chains} chains, "
              f"{report.checkpoints} signed checkpoints hold")
        if report.head_id is not None:
            print(f"head {report.head_id}:{report.head_hash}  (the newest event; pass it as "
                  "--anchor next time for one more check against removals from the end)")
        return 0
    where = f"at event {report.broken_at}" if report.broken_at is not None else \
        f"in chain {report.chain}" if report.chain else "in the checkpoints"
    print(f"AUDIT CHAIN BROKEN {where} ({report.problem}): {report.detail}", file=sys.stderr)
    print(f"{report.checked} events before it verified", file=sys.stderr)
    return 1


def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit import write_checkpoint

    engine = make_engine(settings.resolved_database_url, settings)
    try:
        checkpoint = write_checkpoint(engine, settings)
    finally:
        engine.dispose()
    if checkpoint is None:
        print("no chain has moved since the last checkpoint; none written")
    else:
        print(f"checkpoint {checkpoint.number} signed "
              f"({len(json.loads(checkpoint.payload)['heads'])} chain heads)")
    return 0


def cmd_audit_export_checkpoints(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit import export_checkpoints, parse_exported

    after = args.after
    if args.output and os.path.exists(args.output):
        # Appending to the council's copy: only what it does not hold yet.
        try:
            with open(args.output, encoding="utf-8") as lines:
                kept = parse_exported(lines, args.output)
        except ValueError as exc:
            print(f"--output: {exc}", file=sys.stderr)
            return 2
        after = max([after] + [c.number for c in kept])
    engine = make_engine(settings.resolved_database_url, settings)
    try:
        lines = list(export_checkpoints(engine, settings, after=after))
    finally:
        engine.dispose()
    if args.output:
        with open(args.output, "a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        print(f"{len(lines)} new checkpoint{'' if len(lines) == 1 else 's'} added to "
              f"{args.output}")
    else:
        sys.stdout.writelines(line + "\n" for line in lines)
    return 0


def cmd_audit_public_key(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit import key_id, public_key_text, signing_key

    public = public_key_text(signing_key(settings))
    print(f"{public}  (key id {key_id(public)})")
    return 0


def cmd_audit_new_key(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit import new_signing_key

    print(new_signing_key())
    return 0


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

    users = sub.add_parser("users", help="staff accounts: leavers, lock-outs, resets")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    for name, help_text in (
            ("deactivate", "a leaver: every sign-in, capture token and tablet of theirs stops "
                           "working at once; their records stay theirs"),
            ("reactivate", "let a deactivated user sign in again"),
            ("unlock", "forget the failed sign-ins that locked the account"),
            ("reset-password", "print a one-time code (shown once) the user exchanges for a "
                               "new password of their own")):
        action = users_sub.add_parser(name, help=help_text)
        action.add_argument("--email", required=True)
        action.set_defaults(func=cmd_users)

    sub.add_parser("demo", help="fill an empty database with synthetic demo data") \
        .set_defaults(func=cmd_demo)

    boards = sub.add_parser("boards", help="the board library")
    boards_sub = boards.add_subparsers(dest="boards_command", required=True)
    boards_sub.add_parser("install-starter", help="add the starter boards (feelings, yes/no, "
                          "people, places, things I do, I want, what I think) if missing") \
        .set_defaults(func=cmd_boards_install_starter)

    worker = sub.add_parser(
        "worker", help="run the background work: escalate overdue safeguarding alerts, "
        "deliver webhooks, apply retention, sweep media, expire uploads, sign audit "
        "checkpoints (on the embedded SQLite default `serve` does it itself)")
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
    verify.add_argument("--checkpoints", metavar="FILE",
                        help="checkpoints exported earlier (the council's own copy), to "
                        "catch checkpoints removed from the database too")
    verify.set_defaults(func=cmd_audit_verify)
    audit_sub.add_parser("checkpoint", help="sign the chain heads that moved since the last "
                         "checkpoint now (the background worker does it every "
                         "CHILDVOICE_AUDIT_CHECKPOINT_MINUTES)") \
        .set_defaults(func=cmd_audit_checkpoint)
    export = audit_sub.add_parser(
        "export-checkpoints", help="print the signed checkpoints as JSON lines, to keep "
        "outside this service")
    export.add_argument("--after", type=int, default=0, metavar="N",
                        help="only checkpoints after number N (what you already keep)")
    export.add_argument("--output", metavar="FILE", help="append to FILE (the council's "
                        "copy) the checkpoints it does not hold yet, instead of printing")
    export.set_defaults(func=cmd_audit_export_checkpoints)
    audit_sub.add_parser("public-key", help="the public key that checks the checkpoints' "
                         "signatures").set_defaults(func=cmd_audit_public_key)
    audit_sub.add_parser("new-key", help="print a new signing key for "
                         "CHILDVOICE_AUDIT_SIGNING_KEY").set_defaults(func=cmd_audit_new_key)

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
