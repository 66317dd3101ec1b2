"""The audit trail: every read and write of a child's data, a chain no one can quietly
edit, and the team manager's view of who looked."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from app import cli
from app.core.context import Actor, Context
from app.core.db import new_session
from app.services import audit
from tests.support import World, assert_problem, symbols_entry


def _events(app) -> list[dict]:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT * FROM audit_events ORDER BY id"))]


def _trail(world: World, **params) -> list[dict]:  # noqa: ANN003
    r = world.manager.get(f"/children/{world.child_id}/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_reads_and_writes_of_a_childs_data_are_recorded(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    note = "Private worker note about Robin's home"
    # The note is the worker's (child mode cannot write one); then the child's own entry.
    noted = world.worker.post(f"/sessions/{session['id']}/entries",
                              json=symbols_entry(world.board, ["calm"], note=note))
    assert noted.status_code == 201, noted.text
    entry = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                        json=symbols_entry(world.board, ["happy"])).json()
    headers = {"X-Request-ID": "req-audit-1", "User-Agent": "tablet-test/1.0"}
    assert world.worker.get(f"/entries/{entry['id']}", headers=headers).status_code == 200
    assert world.worker.get(f"/children/{world.child_id}/plan").status_code == 200
    assert world.manager.get(f"/children/{world.child_id}/consents").status_code == 200

    trail = _trail(world)
    actions = [e["action"] for e in trail]
    assert actions[0] == "audit.read" or "plan.read" in actions  # newest first
    for action in ("child.create", "consent.create", "session.open", "entry.create",
                   "entry.read", "plan.read", "consent.list"):
        assert action in actions, action
    read = next(e for e in trail if e["action"] == "entry.read")
    assert read["actor_id"] == world.worker.user_id and read["actor_role"] == "social_worker"
    assert read["actor_name"] == "Worker" and read["object_id"] == entry["id"]
    assert read["request_id"] == "req-audit-1" and read["user_agent"] == "tablet-test/1.0"
    assert read["client_ip"] and read["occurred_at"]
    create = next(e for e in trail if e["action"] == "entry.create")
    assert create["actor_type"] == "capture" and create["actor_role"] == "capture_token"

    # Never a name, a note or what the child said.
    raw = repr(_events(app))
    for content in ("Robin", note, "happy", "calm", "How do you feel"):
        assert content not in raw
    # Reading the trail is itself recorded.
    assert _trail(world)[0]["action"] == "audit.read"


def test_only_the_team_manager_sees_a_childs_trail(world: World) -> None:
    assert_problem(world.worker.get(f"/children/{world.child_id}/audit"), 403)
    for api in (world.other_manager, world.other_worker, world.colleague, world.admin):
        assert_problem(api.get(f"/children/{world.child_id}/audit"), 404)
    page = world.manager.get(f"/children/{world.child_id}/audit", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = world.manager.get(f"/children/{world.child_id}/audit",
                             params={"cursor": page["next_cursor"], "limit": 200}).json()
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


def _verify(settings, capsys, *extra: str) -> tuple[int, str]:  # noqa: ANN001
    code = cli.main(["audit", "verify", *extra], settings=settings)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def chain(world: World, app) -> list[int]:  # noqa: ANN001
    """A world with a few dozen events."""
    session = world.open_session()
    for _ in range(3):
        world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, ["calm"]))
        world.worker.get(f"/children/{world.child_id}/plan")
    return [e["id"] for e in _events(app)]


def _exec(app, sql: str, **params) -> None:  # noqa: ANN001, ANN003
    with app.state.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_verify_passes_on_an_untouched_chain(chain: list[int], settings, capsys) -> None:  # noqa: ANN001
    code, out = _verify(settings, capsys)
    assert code == 0, out
    assert f"intact: {len(chain)} events" in out


def test_verify_names_an_edited_event(chain: list[int], app, settings, capsys) -> None:  # noqa: ANN001
    target = chain[5]
    _exec(app, "UPDATE audit_events SET action = 'entry.list' WHERE id = :id", id=target)
    code, out = _verify(settings, capsys)
    assert code == 1
    assert f"BROKEN at event {target} (changed)" in out


def test_verify_names_the_event_after_a_deleted_one(chain: list[int], app, settings,
                                                    capsys) -> None:  # noqa: ANN001
    _exec(app, "DELETE FROM audit_events WHERE id = :id", id=chain[4])
    code, out = _verify(settings, capsys)
    assert code == 1
    assert f"BROKEN at event {chain[5]} (deleted)" in out


def test_verify_names_reordered_events(chain: list[int], app, settings, capsys) -> None:  # noqa: ANN001
    first, second = chain[6], chain[7]
    # Swap the two events' places (their ids), each left whole with its own hash.
    _exec(app, "UPDATE audit_events SET id = -1 WHERE id = :id", id=first)
    _exec(app, "UPDATE audit_events SET id = :a WHERE id = :b", a=first, b=second)
    _exec(app, "UPDATE audit_events SET id = :b WHERE id = -1", b=second)
    code, out = _verify(settings, capsys)
    assert code == 1
    assert f"BROKEN at event {first} (reordered)" in out


def test_verify_with_an_anchor_catches_removal_from_the_end(chain: list[int], app, settings,
                                                            capsys) -> None:  # noqa: ANN001
    code, out = _verify(settings, capsys)
    head = out.split("head ")[1].split()[0]
    assert head.startswith(f"{chain[-1]}:")
    assert _verify(settings, capsys, "--anchor", head)[0] == 0
    cut = next(e["chain"] for e in _events(app) if e["id"] == chain[-1])
    _exec(app, "DELETE FROM audit_events WHERE id >= :id", id=chain[-2])
    # Whoever cut the end off also moved the chain's head back: a shorter chain that is
    # still whole...
    last = [e for e in _events(app) if e["chain"] == cut][-1]
    _exec(app, "UPDATE audit_chain_heads SET seq = :seq, hash = :hash WHERE chain = :chain",
          seq=last["seq"], hash=last["hash"], chain=last["chain"])
    assert _verify(settings, capsys)[0] == 0
    code, out = _verify(settings, capsys, "--anchor", head)
    assert code == 1 and "(anchor)" in out  # ...but not the one we knew


def test_the_chain_holds_under_concurrent_writers(world: World, app) -> None:  # noqa: ANN001
    """Many requests appending at once never fork the chain (PostgreSQL: advisory lock;
    SQLite: one writer at a time)."""
    before = len(_events(app))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def append(n: int) -> None:
        try:
            start.wait()
            for _ in range(10):
                with new_session(app.state.engine) as db:
                    ctx = Context(db=db, actor=Actor(), request_id=f"thread-{n}")
                    audit.record(ctx, "test.concurrent", object_type="test")
                    db.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = audit.verify(app.state.engine)
    assert report.ok, report.detail
    assert report.checked == before + 80
    assert datetime.now(timezone.utc)
