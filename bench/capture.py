"""Capture loop benchmark.

Starts `childvoice serve` on a fresh SQLite database, and (with --database-url) then on a
fresh database on that PostgreSQL server, loads a child with 10,000 entries, and
measures at 16 concurrent clients, in interleaved rounds:

  GET  /healthz                        the ceiling: the server doing nothing
  POST /api/v1/sessions/{id}/entries   a symbols entry, new client_id each (child mode)
  GET  /api/v1/children/{id}/plan      the child's plan (10,000 entries behind it)

For each: requests/s, p50/p99 latency, and the server's CPU time per request (read from
/proc before and after each phase, over uvicorn and its workers) as a multiple of the
health check's: that ratio holds on a noisy machine, requests/s does not. Also the
statements, transactions, pool checkouts and thread hops one request costs (counted
in-process through SQLAlchemy events: a bench-only hook, never in the service), the
plan's median latency at 100 vs 10,000 entries, and the server's memory.

Targets (PostgreSQL): entry write <= 27x the health check's CPU per request, plan read
<= 20x (the FastAPI full-stack template's create and read on the same measure); with
--workers 2, entry writes >= 1.7x one worker's requests/s; plan latency at 10,000
entries <= 1.3x that at 100; server RSS <= 200 MB.

    python bench/capture.py [--database-url postgresql+psycopg://postgres@127.0.0.1/postgres]
                            [--workers 2] [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.harness import (Phase, Server, call, json_request, measure,  # noqa: E402
                           median_latency_ms, sign_in, verdict)

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


def count_per_request(requests: dict[str, Callable[[object], int]]) -> dict[str, dict]:
    """Statements, commits, pool checkouts and thread hops of one request of each kind,
    run in this process against the same database (after one warm-up request each)."""
    import anyio.to_thread
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from app.core.config import get_settings
    from app.main import create_app

    # No background thread here: only the requests' own work is counted.
    app = create_app(get_settings().model_copy(update={"background": "worker"}))
    engine = app.state.engine
    tally = {"statements": 0, "commits": 0, "checkouts": 0, "thread_hops": 0}

    def on_execute(*_args) -> None:  # noqa: ANN002
        tally["statements"] += 1

    def on_commit(*_args) -> None:  # noqa: ANN002
        tally["commits"] += 1

    def on_checkout(*_args) -> None:  # noqa: ANN002
        tally["checkouts"] += 1

    run_sync = anyio.to_thread.run_sync

    async def counted_run_sync(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        tally["thread_hops"] += 1
        return await run_sync(*args, **kwargs)

    out = {}
    with TestClient(app) as client:
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "commit", on_commit)
        event.listen(engine.pool, "checkout", on_checkout)
        anyio.to_thread.run_sync = counted_run_sync
        try:
            for name, send in requests.items():
                send(client)
                for key in tally:
                    tally[key] = 0
                status = send(client)
                assert status in (200, 201), (name, status)
                out[name] = dict(tally)
        finally:
            anyio.to_thread.run_sync = run_sync
            event.remove(engine, "before_cursor_execute", on_execute)
            event.remove(engine, "commit", on_commit)
            event.remove(engine.pool, "checkout", on_checkout)
    engine.dispose()
    return out


def run_leg(args: argparse.Namespace, url: str | None) -> dict:
    """One database: seed, count, load; the figures."""
    server = Server(database_url=url)
    server.apply_settings_env()
    print(f"\n== {'PostgreSQL' if url else 'SQLite'}: loading 10,000 + 100 entries…")
    ids = seed(10_000, 100)
    server.start()
    try:
        port = server.port
        token = sign_in(port, "bench.worker@bench.example.org", PASSWORD)
        session = call(port, "POST", f"/api/v1/children/{ids['big']}/sessions",
                       {"setting": "home", "board_ids": [ids["board_id"]]}, token)
        capture_token = session["capture_token"]
        started = session["started_at"]

        def plan_of(child: str):
            return lambda i: json_request("GET", f"/api/v1/children/{child}/plan", token=token)

        def entry_body() -> dict:
            return {"kind": "symbols", "client_id": str(uuid.uuid4()), "captured_at": started,
                    "source": "child_direct", "topic": "feelings", "board_id": ids["board_id"],
                    "board_version": 1, "button_ids": ["happy", "calm"]}

        def new_entry(i: int):
            return json_request("POST", f"/api/v1/sessions/{session['id']}/entries",
                                entry_body(), capture_token)

        def health(i: int):
            return "GET", "/healthz", b"", {}

        counts = count_per_request({
            "entries": lambda c: c.post(f"/api/v1/sessions/{session['id']}/entries",
                                        json=entry_body(), headers={
                                            "Authorization": f"Bearer {capture_token}"}
                                        ).status_code,
            "plan": lambda c: c.get(f"/api/v1/children/{ids['big']}/plan", headers={
                "Authorization": f"Bearer {token}"}).status_code})

        # Latency first, while the big child has exactly 10,000 entries.
        for child in ("small", "big"):  # warm up
            median_latency_ms(port, plan_of(ids[child]), count=20)
        small_ms = statistics.median(median_latency_ms(port, plan_of(ids["small"]))
                                     for _ in range(args.rounds))
        big_ms = statistics.median(median_latency_ms(port, plan_of(ids["big"]))
                                   for _ in range(args.rounds))

        phases: dict[str, list[Phase]] = {"healthz": [], "entries": [], "plan": []}
        load = {"concurrency": args.concurrency, "seconds": args.seconds}
        for _ in range(args.rounds):  # interleaved, so drift in machine load hits all alike
            phases["healthz"].append(measure(server, health, **load))
            phases["entries"].append(measure(server, new_entry, expect={201}, **load))
            phases["plan"].append(measure(server, plan_of(ids["big"]), **load))
        rss, peak = server.rss_mb()

        scaled = None
        if args.workers > 1:
            server.stop()
            server = Server(database_url=url, workers=args.workers, workdir=server.workdir)
            server.start()
            time.sleep(2)  # every worker up
            scaled = [measure(server, new_entry, expect={201}, **load)
                      for _ in range(args.rounds)]
    finally:
        server.stop()
    return {"phases": phases, "counts": counts, "small_ms": small_ms, "big_ms": big_ms,
            "rss": rss, "peak": peak, "scaled": scaled}


def report(args: argparse.Namespace, name: str, leg: dict) -> None:
    phases = leg["phases"]
    health_cpu = statistics.median(p.cpu_ms for p in phases["healthz"])
    print(f"\n{name}: {args.concurrency} concurrent clients, median of {args.rounds} rounds "
          f"of {args.seconds:g}s, one worker")
    print(f"  {'':32} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms':>7} {'x health':>8}")
    labels = {"healthz": "GET  /healthz", "entries": "POST /sessions/{id}/entries",
              "plan": "GET  /children/{id}/plan"}
    targets = {"entries": 27, "plan": 20}
    for key, label in labels.items():
        runs = phases[key]
        cpu = statistics.median(p.cpu_ms for p in runs)
        line = (f"  {label:32} {statistics.median(p.rate for p in runs):7.0f} "
                f"{statistics.median(p.percentile_ms(0.5) for p in runs):7.1f} "
                f"{statistics.median(p.percentile_ms(0.99) for p in runs):7.1f} "
                f"{cpu:7.2f} {cpu / health_cpu:7.1f}x")
        if key in targets:
            line += (f"  (target <= {targets[key]}x on PostgreSQL: "
                     f"{verdict(cpu / health_cpu, targets[key], higher_is_better=False)})")
        print(line)
    for key, c in leg["counts"].items():
        print(f"  one {labels[key].split()[0]} {labels[key].split()[1]}: {c['statements']} "
              f"statements, {c['commits']} commits, {c['checkouts']} pool checkouts, "
              f"{c['thread_hops']} thread hops")
    ratio = leg["big_ms"] / leg["small_ms"]
    print(f"  plan latency, median: {leg['small_ms']:.2f} ms at 100 entries, "
          f"{leg['big_ms']:.2f} ms at 10,000 = {ratio:.2f}x (target <= 1.3x: "
          f"{verdict(ratio, 1.3, higher_is_better=False)})")
    print(f"  server memory: {leg['rss']:.0f} MB now, {leg['peak']:.0f} MB peak (target <= "
          f"200 MB: {verdict(leg['peak'], 200, higher_is_better=False)})")
    if leg["scaled"]:
        one = statistics.median(p.rate for p in phases["entries"])
        many = statistics.median(p.rate for p in leg["scaled"])
        print(f"  entry writes with --workers {args.workers}: {many:.0f} req/s = "
              f"{many / one:.2f}x one worker's (target >= 1.7x: {verdict(many / one, 1.7)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="also run on this PostgreSQL server (a fresh "
                        "database is made there and dropped afterwards)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per figure (median)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="also measure entry writes "
                        "with this many uvicorn workers")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    legs = {}
    if not args.skip_sqlite:
        legs["SQLite"] = run_leg(args, None)
    if args.database_url:
        url, drop = fresh_postgres(args.database_url)
        try:
            legs["PostgreSQL"] = run_leg(args, url)
        finally:
            drop()
    for name, leg in legs.items():
        report(args, name, leg)


if __name__ == "__main__":
    main()
