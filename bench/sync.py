"""Sync benchmark.

Starts `childvoice serve` (one uvicorn worker) on a fresh SQLite database, or on a fresh
database on the PostgreSQL server named by --database-url, and sends 500 symbols entries
the ways a tablet can, one request at a time on one keep-alive connection (a tablet drains
its queue in order):

  one batch     POST /api/v1/sync with all 500 entries
  10 x 50       POST /api/v1/sync ten times, 50 entries each
  500 singles   POST /api/v1/sessions/{id}/entries, one entry each (child mode)
  replay        the one batch sent again: 500 duplicates

It prints entries per second for each (median of --rounds rounds, fresh client_ids each
round) and the ratios. Targets: one batch >= 5x the single posts; the replay >= 2x the
first send of the batch.

    python bench/sync.py [--database-url postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.capture import PASSWORD, fresh_postgres, seed  # noqa: E402
from bench.harness import Connection, Server, call, sign_in, verdict  # noqa: E402

ENTRIES = 500


def entry(board_id: str, captured_at: datetime, i: int) -> dict:
    return {"kind": "symbols", "client_id": str(uuid.uuid4()),
            "captured_at": (captured_at + timedelta(seconds=i)).isoformat(),
            "source": "child_direct", "topic": "feelings", "board_id": board_id,
            "board_version": 1, "button_ids": ["happy", "calm"]}


async def send(port: int, requests: list[tuple[str, bytes, dict]], expect: int) -> float:
    """Send the requests one after another on one connection; seconds taken."""
    conn = await Connection(port).open()
    start = time.perf_counter()
    for path, body, headers in requests:
        status, payload = await conn.request("POST", path, body, headers)
        if status != expect:
            raise RuntimeError(f"{path} answered {status}: {payload[:300]!r}")
    took = time.perf_counter() - start
    await conn.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL server to run on (a fresh "
                        "database is made there and dropped afterwards)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (median)")
    args = parser.parse_args()

    drop = url = None
    if args.database_url:
        url, drop = fresh_postgres(args.database_url)
    server = Server(database_url=url)
    server.apply_settings_env()
    figures: dict[str, list[float]] = {"batch": [], "tens": [], "singles": [], "replay": []}
    try:
        print(f"database: {'PostgreSQL' if url else 'SQLite'}; {ENTRIES} entries per figure, "
              f"{args.rounds} rounds")
        ids = seed(100, 0)
        server.start()
        port = server.port
        token = sign_in(port, "bench.worker@bench.example.org", PASSWORD)
        device = call(port, "POST", "/api/v1/devices", {"name": "bench tablet"}, token)
        sync_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                        "X-Device-Key": device["device_key"]}

        def batch_request(entries: list[dict], session_id: str) -> tuple[str, bytes, dict]:
            items = [{"type": "entry", "session_id": session_id} | e for e in entries]
            return "/api/v1/sync", json.dumps({
                "device_id": device["id"], "sent_at": datetime.now(timezone.utc).isoformat(),
                "items": items}).encode(), sync_headers

        for _ in range(args.rounds):
            session = call(port, "POST", f"/api/v1/children/{ids['big']}/sessions",
                           {"setting": "home", "board_ids": [ids["board_id"]]}, token)
            # One entry a second, all said by now (a time ahead of the server's is refused).
            at = datetime.fromisoformat(session["started_at"]) - timedelta(seconds=ENTRIES)

            def fresh() -> list[dict]:
                return [entry(ids["board_id"], at, i) for i in range(ENTRIES)]

            one = fresh()
            took = asyncio.run(send(port, [batch_request(one, session["id"])], 200))
            figures["batch"].append(ENTRIES / took)
            took = asyncio.run(send(port, [batch_request(one, session["id"])], 200))
            figures["replay"].append(ENTRIES / took)
            tens = fresh()
            took = asyncio.run(send(port, [batch_request(tens[i:i + 50], session["id"])
                                           for i in range(0, ENTRIES, 50)], 200))
            figures["tens"].append(ENTRIES / took)
            capture = {"Content-Type": "application/json",
                       "Authorization": f"Bearer {session['capture_token']}"}
            took = asyncio.run(send(port, [(f"/api/v1/sessions/{session['id']}/entries",
                                            json.dumps(e).encode(), capture)
                                           for e in fresh()], 201))
            figures["singles"].append(ENTRIES / took)
        rss, peak = server.rss_mb()
    finally:
        server.stop()
        if drop:
            drop()

    batch, tens, singles, replay = (statistics.median(figures[k])
                                    for k in ("batch", "tens", "singles", "replay"))
    print(f"\none request at a time, median of {args.rounds} rounds")
    print(f"  one batch of {ENTRIES}              {batch:8.0f} entries/s")
    print(f"  10 batches of 50                {tens:8.0f} entries/s")
    print(f"  {ENTRIES} single POST /entries      {singles:8.0f} entries/s")
    print(f"  replay of the batch (duplicates) {replay:7.0f} entries/s")
    print(f"one batch / single posts = {batch / singles:.1f}x (target >= 5x: "
          f"{verdict(batch / singles, 5)})")
    print(f"10 x 50 / single posts = {tens / singles:.1f}x")
    print(f"replay / first send = {replay / batch:.1f}x (target >= 2x: "
          f"{verdict(replay / batch, 2)})")
    print(f"server memory: {rss:.0f} MB now, {peak:.0f} MB peak")


if __name__ == "__main__":
    main()
