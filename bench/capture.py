"""Capture loop benchmark.

Starts `childvoice serve` (one uvicorn worker) on a fresh SQLite database, or on a fresh
database on the PostgreSQL server named by --database-url, loads a child with 10,000
entries, and measures at 16 concurrent clients the requests per second of:

  GET  /healthz                        the ceiling: the server doing nothing
  POST /api/v1/sessions/{id}/entries   a symbols entry, new client_id each
  GET  /api/v1/children/{id}/plan      the child's plan (10,000 entries behind it)

It prints each figure and its ratio to the ceiling, the plan's median latency at 100 vs
10,000 entries, and the server's memory. Targets: entry writes >= 25% of the ceiling,
plan reads >= 30%, plan latency at 10,000 <= 1.3x that at 100, server RSS <= 200 MB.

    python bench/capture.py [--database-url postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.harness import (Server, call, json_request, median_latency_ms, sign_in,  # noqa: E402
                           throughput, verdict)

PASSWORD = "bench password, long enough"


def fresh_postgres(url: str) -> tuple[str, callable]:
    """A new database on the server `url` names, and how to drop it afterwards."""
    parsed = make_url(url)
    name = f"cv_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False), drop


def seed(entries_big: int, entries_small: int) -> dict:
    """Migrate and load the data straight into the database (the API is what we measure)."""
    from app.cli import migrate
    from app.core.clock import utcnow
    from app.core.config import get_settings
    from app.core.db import make_engine, new_session
    from app.core.security import PasswordHashing
    from app.models import Allocation, CaptureSession, Child, Consent, Team, VoiceEntry
    from app.models.staff import Role
    from app.services.boards.library import add_board
    from app.services.demo import feelings_board
    from app.services.staff import add_user

    settings = get_settings()
    migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    now = utcnow()
    with new_session(engine) as db:
        team = Team(name="Bench Team")
        db.add(team)
        db.flush()
        worker = add_user(db, PasswordHashing(settings), "bench.worker@bench.example.org",
                          "Bench Worker", Role.social_worker, team.id, PASSWORD)
        board, version = add_board(db, feelings_board(), worker.id)
        buttons = {b["id"]: b for b in version.content["buttons"]}
        children = {}
        for key, count in (("big", entries_big), ("small", entries_small)):
            child = Child(preferred_name=f"Bench {key}", date_of_birth=date(2014, 1, 1),
                          team_id=team.id, created_by=worker.id)
            db.add(child)
            db.flush()
            db.add(Allocation(child_id=child.id, user_id=worker.id, started_at=now))
            consent = Consent(child_id=child.id, given_by="child", scopes=["plan", "symbols"],
                              method="symbols", child_assent="agreed",
                              valid_from=now - timedelta(days=400))
            session = CaptureSession(child_id=child.id, worker_id=worker.id, setting="home",
                                     boards=[{"board_id": str(board.id), "version": 1}],
                                     started_at=now, expires_at=now,
                                     token_hash=uuid.uuid4().hex, ended_at=now)
            db.add_all([consent, session])
            db.flush()
            ids = list(buttons)
            for i in range(count):
                b = buttons[ids[i % len(ids)]]
                db.add(VoiceEntry(
                    client_id=uuid.uuid4(), child_id=child.id, session_id=session.id,
                    kind="symbols", source="child_direct",
                    captured_at=now - timedelta(days=365) + timedelta(minutes=i),
                    received_at=now, topic="feelings", consent_id=consent.id,
                    board_id=board.id, board_version=1, fingerprint=uuid.uuid4().hex,
                    content={"choices": [{"button_id": b["id"], "label": b["label"],
                                          "vocalization": b.get("vocalization")}]}))
                if i % 2000 == 1999:
                    db.flush()
            children[key] = str(child.id)
        db.commit()
        out = {"board_id": str(board.id), **children}
    if engine.dialect.name == "postgresql":
        # A live database has planner statistics; a freshly bulk-loaded one has none yet.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL server to run on (a fresh "
                        "database is made there and dropped afterwards)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (median)")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    drop = None
    url = None
    if args.database_url:
        url, drop = fresh_postgres(args.database_url)
    server = Server(database_url=url)
    server.apply_settings_env()
    try:
        print(f"database: {'PostgreSQL' if url else 'SQLite'}; loading 10,000 + 100 entries…")
        ids = seed(10_000, 100)
        server.start()
        port = server.port
        token = sign_in(port, "bench.worker@bench.example.org", PASSWORD)
        session = call(port, "POST", f"/api/v1/children/{ids['big']}/sessions",
                       {"setting": "home", "board_ids": [ids["board_id"]]}, token)
        capture_token = session["capture_token"]

        def plan_of(child: str):
            return lambda i: json_request("GET", f"/api/v1/children/{child}/plan", token=token)

        # Latency first, while the big child has exactly 10,000 entries.
        for child in ("small", "big"):  # warm up
            median_latency_ms(port, plan_of(ids[child]), count=20)
        small_ms = statistics.median(median_latency_ms(port, plan_of(ids["small"]))
                                     for _ in range(args.rounds))
        big_ms = statistics.median(median_latency_ms(port, plan_of(ids["big"]))
                                   for _ in range(args.rounds))

        started = session["started_at"]

        def new_entry(i: int):
            return json_request("POST", f"/api/v1/sessions/{session['id']}/entries", {
                "kind": "symbols", "client_id": str(uuid.uuid4()), "captured_at": started,
                "source": "child_direct", "topic": "feelings", "board_id": ids["board_id"],
                "board_version": 1, "button_ids": ["happy", "calm"]}, capture_token)

        def health(i: int):
            return "GET", "/healthz", b"", {}

        figures = {"healthz": [], "entries": [], "plan": []}
        for _ in range(args.rounds):  # interleaved, so drift in machine load hits all alike
            figures["healthz"].append(throughput(port, health, concurrency=args.concurrency,
                                                 seconds=args.seconds))
            figures["entries"].append(throughput(port, new_entry, concurrency=args.concurrency,
                                                 seconds=args.seconds, expect={201}))
            figures["plan"].append(throughput(port, plan_of(ids["big"]),
                                              concurrency=args.concurrency,
                                              seconds=args.seconds))
        rss, peak = server.rss_mb()
    finally:
        server.stop()
        if drop:
            drop()

    ceiling = statistics.median(figures["healthz"])
    entries = statistics.median(figures["entries"])
    plan = statistics.median(figures["plan"])
    print(f"\n{args.concurrency} concurrent clients, median of {args.rounds} rounds of "
          f"{args.seconds:g}s")
    print(f"  GET  /healthz (ceiling)        {ceiling:8.0f} req/s")
    print(f"  POST /sessions/{{id}}/entries    {entries:8.0f} req/s   {entries / ceiling:6.1%} "
          f"of ceiling (target >= 25%: {verdict(entries / ceiling, 0.25)})")
    print(f"  GET  /children/{{id}}/plan       {plan:8.0f} req/s   {plan / ceiling:6.1%} "
          f"of ceiling (target >= 30%: {verdict(plan / ceiling, 0.30)})")
    print(f"plan latency, median: {small_ms:.2f} ms at 100 entries, {big_ms:.2f} ms at 10,000 "
          f"= {big_ms / small_ms:.2f}x (target <= 1.3x: "
          f"{verdict(big_ms / small_ms, 1.3, higher_is_better=False)})")
    print(f"server memory: {rss:.0f} MB now, {peak:.0f} MB peak (target <= 200 MB: "
          f"{verdict(peak, 200, higher_is_better=False)})")


if __name__ == "__main__":
    main()
