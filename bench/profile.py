"""Where an entry write's and a plan read's CPU goes (a tool, never a test).

Seeds a database as bench/capture.py does, then runs --count entry writes and plan reads
through the same code the endpoints run in their one thread hop (the caller looked up,
the service, the answer serialised as FastAPI would), under pyinstrument, and prints
each profile. The HTTP layer (uvicorn, routing, validation) is what the health check
measures and is not in it.

    pip install pyinstrument
    python bench/profile.py [--database-url postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.capture import PASSWORD, fresh_postgres, seed  # noqa: E402
from bench.harness import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    from pyinstrument import Profiler

    drop = url = None
    if args.database_url:
        url, drop = fresh_postgres(args.database_url)
    server = Server(database_url=url)  # only for its settings: never started
    server.apply_settings_env()
    try:
        ids = seed(10_000, 100)
        from fastapi.testclient import TestClient

        from app.core.config import get_settings
        from app.core.db import new_session
        from app.main import create_app
        from app.models.capture import EntryIn
        from app.routers.deps import Caller
        from app.services import capture, plans
        from pydantic import TypeAdapter

        settings = get_settings().model_copy(update={"background": "worker"})
        app = create_app(settings)
        with TestClient(app) as client:
            token = client.post("/api/v1/auth/token", data={
                "username": "bench.worker@bench.example.org",
                "password": PASSWORD}).json()["access_token"]
            session = client.post(f"/api/v1/children/{ids['big']}/sessions", json={
                "setting": "home", "board_ids": [ids["board_id"]]},
                headers={"Authorization": f"Bearer {token}"}).json()
        entry_in = TypeAdapter(EntryIn)

        def caller(db, bearer: str) -> Caller:  # noqa: ANN001
            return Caller(db=db, tokens=app.state.tokens, token=bearer, client_ip="127.0.0.1",
                          user_agent="profile", request_id=uuid.uuid4().hex)

        def write() -> None:
            data = entry_in.validate_python({
                "kind": "symbols", "client_id": str(uuid.uuid4()),
                "captured_at": session["started_at"], "source": "child_direct",
                "topic": "feelings", "board_id": ids["board_id"], "board_version": 1,
                "button_ids": ["happy", "calm"]})
            with new_session(app.state.engine) as db:
                out, _ = capture.add_entry(caller(db, session["capture_token"]).context(),
                                           uuid.UUID(session["id"]), data, settings)
                out.model_dump_json()

        def read() -> None:
            with new_session(app.state.engine) as db:
                plans.get_plan(caller(db, token).context(), uuid.UUID(ids["big"]),
                               10).model_dump_json()

        for name, work in (("entry write", write), ("plan read", read)):
            for _ in range(20):
                work()
            profiler = Profiler(interval=0.0002)
            profiler.start()
            for _ in range(args.count):
                work()
            profiler.stop()
            print(f"\n===== {name}: {args.count} calls =====")
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        app.state.engine.dispose()
    finally:
        if drop:
            drop()


if __name__ == "__main__":
    main()
