"""Pages benchmark: the plan and the handover on a long record, and the voice report on a
whole team.

Starts `childvoice serve` (one uvicorn worker) on a fresh SQLite database, or on a fresh
database on the PostgreSQL server named by --database-url, bulk-loads (Core inserts, not
the API):

  - a child with 100 entries (5 visits) and a child with 10,000 entries (500 visits);
  - a team of 50 workers holding 500 children with 100,000 entries in 5,000 visits (some
    children never heard, some visits adult-focused, some open alerts);

and prints the median latency of, one request at a time:

  GET /api/v1/children/{id}/plan           (and plan.html when the service has it)
  GET /api/v1/children/{id}/handover       (and handover.html)
  GET /api/v1/reports/voice                (JSON, HTML and CSV)

Targets: plan and handover at 10,000 entries <= 1.3x their latency at 100; the voice
report <= 1 s.

    python bench/pages.py [--database-url postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import urllib.error
import urllib.request
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text  # noqa: E402

from bench.capture import fresh_postgres  # noqa: E402
from bench.harness import Server, median_latency_ms, sign_in, verdict  # noqa: E402

PASSWORD = "bench password, long enough"
SOURCES = ["child_direct", "child_direct", "child_assisted", "adult_interpretation",
           "parent_or_carer_report"]


class Loader:
    """Rows for Core bulk inserts, flushed in batches."""

    def __init__(self, conn, batch: int = 5000) -> None:  # noqa: ANN001
        self.conn, self.batch, self.rows = conn, batch, {}

    def add(self, model, **row) -> None:  # noqa: ANN001, ANN003
        self.rows.setdefault(model, []).append(row)
        if len(self.rows[model]) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Every table, in the order first seen: parents before the rows that name them."""
        for model, rows in self.rows.items():
            if rows:
                self.conn.execute(insert(model.__table__), rows)
                self.rows[model] = []


def seed() -> dict:
    from app.cli import migrate
    from app.core.clock import utcnow
    from app.core.config import get_settings
    from app.core.db import make_engine, new_session
    from app.core.security import PasswordHashing
    from app.models import (Allocation, CaptureSession, Child, Consent, PlanSection,
                            SafeguardingAlert, Team, User, VoiceEntry)
    from app.models.staff import Role
    from app.services.boards.library import add_board
    from app.services.demo import feelings_board

    settings = get_settings()
    migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    now = utcnow()
    password_hash = PasswordHashing(settings).hash(PASSWORD)
    with new_session(engine) as db:
        board, version = add_board(db, feelings_board(), None)
        db.commit()
        board_id = board.id
    buttons = [b for b in version.content["buttons"] if not b.get("ext_childvoice_safeguarding")]

    def choice(i: int) -> dict:
        b = buttons[i % len(buttons)]
        return {"choices": [{"button_id": b["id"], "label": b["label"],
                             "vocalization": b.get("vocalization")}]}

    with engine.begin() as conn:
        load = Loader(conn)

        def user(email: str, name: str, role: Role, team_id: uuid.UUID) -> uuid.UUID:
            user_id = uuid.uuid4()
            load.add(User, id=user_id, email=email, full_name=name, role=role.value,
                     team_id=team_id, password_hash=password_hash, is_active=True,
                     created_at=now)
            return user_id

        def child(name: str, team_id: uuid.UUID, worker: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
            child_id, consent_id = uuid.uuid4(), uuid.uuid4()
            load.add(Child, id=child_id, preferred_name=name, date_of_birth=date(2014, 1, 1),
                     team_id=team_id, communication={"methods": ["symbols"],
                                                     "yes_signal": "nods"},
                     board_preferences={}, created_at=now, updated_at=now)
            load.add(Allocation, id=uuid.uuid4(), child_id=child_id, user_id=worker,
                     started_at=now - timedelta(days=500), ended_at=None)
            load.add(Consent, id=consent_id, child_id=child_id, given_by="child",
                     scopes=["plan", "symbols"], method="symbols", child_assent="agreed",
                     valid_from=now - timedelta(days=800), created_at=now - timedelta(days=800))
            return child_id, consent_id

        def visits(child_id: uuid.UUID, consent_id: uuid.UUID, worker: uuid.UUID,
                   count: int, per_visit: int, *, spread_days: int,
                   sources: list[str]) -> list[uuid.UUID]:
            entry_ids = []
            for v in range(count):
                session_id = uuid.uuid4()
                started = now - timedelta(days=spread_days) + \
                    timedelta(days=spread_days * v / count)
                load.add(CaptureSession, id=session_id, child_id=child_id, worker_id=worker,
                         setting="home", purpose=f"visit {v}",
                         boards=[{"board_id": str(board_id), "version": 1}],
                         started_at=started, ended_at=started + timedelta(minutes=40),
                         expires_at=started + timedelta(hours=6))
                for i in range(per_visit):
                    source = sources[(v + i) % len(sources)]
                    kind = "symbols" if source in ("child_direct", "child_assisted") else \
                        "observation" if source == "adult_interpretation" else "text"
                    entry_id = uuid.uuid4()
                    entry_ids.append(entry_id)
                    load.add(VoiceEntry, id=entry_id, client_id=uuid.uuid4(),
                             child_id=child_id, session_id=session_id, kind=kind,
                             source=source, status="active",
                             captured_at=started + timedelta(minutes=i),
                             received_at=started + timedelta(minutes=i),
                             prompt="How do you feel?", topic=f"topic {i % 7}",
                             consent_id=consent_id,
                             board_id=board_id if kind == "symbols" else None,
                             board_version=1 if kind == "symbols" else None,
                             content=choice(i) if kind == "symbols" else
                             {"text": "Seemed calm and smiled."},
                             note=None, created_by=worker, fingerprint=uuid.uuid4().hex,
                             other_people=False, other_people_who=[])
            return entry_ids

        # The long and the short record.
        records = uuid.uuid4()
        load.add(Team, id=records, name="Bench records team", created_at=now)
        holder = user("bench.worker@bench.example.org", "Bench Worker", Role.social_worker,
                      records)
        ids = {}
        for key, count in (("small", 5), ("big", 500)):
            child_id, consent_id = child(f"Bench {key}", records, holder)
            entry_ids = visits(child_id, consent_id, holder, count, 20, spread_days=700,
                               sources=SOURCES)
            load.flush()
            load.add(PlanSection, id=uuid.uuid4(), child_id=child_id,
                     key="my_wishes_and_feelings", text="I want to go swimming.",
                     pinned_entry_ids=[str(e) for e in entry_ids[-3:]], updated_by=holder,
                     updated_at=now)
            ids[key] = str(child_id)

        # A whole team for the voice report.
        team = uuid.uuid4()
        load.add(Team, id=team, name="Bench team", created_at=now)
        user("bench.manager@bench.example.org", "Bench Manager", Role.team_manager, team)
        workers = [user(f"w{n}@bench.example.org", f"Worker {n}", Role.social_worker, team)
                   for n in range(50)]
        load.flush()
        for n in range(500):
            worker = workers[n % 50]
            child_id, consent_id = child(f"Child {n}", team, worker)
            # Every 25th child is heard only through adults; the rest mostly in their own
            # voice, with some adult-focused visits.
            sources = ["adult_interpretation", "parent_or_carer_report"] if n % 25 == 0 \
                else SOURCES
            entry_ids = visits(child_id, consent_id, worker, 10, 20, spread_days=180,
                               sources=sources)
            if n % 10 == 0:
                load.flush()
                load.add(SafeguardingAlert, id=uuid.uuid4(), child_id=child_id,
                         entry_id=entry_ids[-1], team_id=team, worker_id=worker,
                         signals=[], raised_at=now - timedelta(days=1),
                         escalate_at=now - timedelta(hours=22))
        load.flush()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return ids


def exists(port: int, path: str, token: str) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL server to run on (a fresh "
                        "database is made there and dropped afterwards)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (median)")
    parser.add_argument("--count", type=int, default=60, help="requests per round "
                        "(plan and handover)")
    parser.add_argument("--report-count", type=int, default=5, help="requests per round "
                        "(voice report)")
    args = parser.parse_args()

    drop = url = None
    if args.database_url:
        url, drop = fresh_postgres(args.database_url)
    server = Server(database_url=url, env={"CHILDVOICE_OUTBOX_WORKER_ENABLED": "false"})
    server.apply_settings_env()
    figures: dict[str, list[float]] = {}
    try:
        print(f"database: {'PostgreSQL' if url else 'SQLite'}; loading 100 + 10,000 entries, "
              "and a team of 50 workers, 500 children, 100,000 entries…")
        ids = seed()
        server.start()
        port = server.port
        worker = sign_in(port, "bench.worker@bench.example.org", PASSWORD)
        manager = sign_in(port, "bench.manager@bench.example.org", PASSWORD)

        def get(path: str, token: str, accept: str = "application/json"):  # noqa: ANN202
            headers = {"Authorization": f"Bearer {token}", "Accept": accept}
            return lambda i: ("GET", path, b"", headers)

        pages = {"plan": "/api/v1/children/{}/plan", "handover": "/api/v1/children/{}/handover",
                 "handover.html": "/api/v1/children/{}/handover.html"}
        if exists(port, pages["plan"].format(ids["small"]) + ".html", worker):
            pages["plan.html"] = "/api/v1/children/{}/plan.html"
        reports = {"voice report (JSON)": ("/api/v1/reports/voice", "application/json"),
                   "voice report (HTML)": ("/api/v1/reports/voice", "text/html"),
                   "voice report (CSV)": ("/api/v1/reports/voice", "text/csv")}
        for name, path in pages.items():  # warm up
            for key in ("small", "big"):
                median_latency_ms(port, get(path.format(ids[key]), worker), count=5)
        median_latency_ms(port, get(reports["voice report (JSON)"][0], manager), count=2)
        for _ in range(args.rounds):  # interleaved, so drift in machine load hits all alike
            figures.setdefault("healthz", []).append(median_latency_ms(
                port, lambda i: ("GET", "/healthz", b"", {}), count=args.count))
            for name, path in pages.items():
                for key in ("small", "big"):
                    figures.setdefault(f"{name} {key}", []).append(median_latency_ms(
                        port, get(path.format(ids[key]), worker), count=args.count))
            for name, (path, accept) in reports.items():
                figures.setdefault(name, []).append(median_latency_ms(
                    port, get(path, manager, accept), count=args.report_count))
        rss, peak = server.rss_mb()
    finally:
        server.stop()
        if drop:
            drop()

    med = {name: statistics.median(values) for name, values in figures.items()}
    print(f"\nmedian latency, one request at a time, median of {args.rounds} rounds "
          f"(GET /healthz: {med['healthz']:.2f} ms, how busy the machine was)")
    for name in pages:
        small, big = med[f"{name} small"], med[f"{name} big"]
        print(f"  {name:<14} {small:8.2f} ms at 100 entries, {big:8.2f} ms at 10,000 = "
              f"{big / small:.2f}x (target <= 1.3x: "
              f"{verdict(big / small, 1.3, higher_is_better=False)})")
    for name in reports:
        print(f"  {name:<20} {med[name]:8.1f} ms for 50 workers, 500 children, 100,000 "
              f"entries (target <= 1000 ms: {verdict(med[name], 1000, higher_is_better=False)})")
    print(f"server memory: {rss:.0f} MB now, {peak:.0f} MB peak")


if __name__ == "__main__":
    main()
