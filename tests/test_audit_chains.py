"""The audit trail's shape: a hash chain per child, heads that only that child's writers
lock, signed checkpoints that catch events cut off a chain's end, the old single chain
still verifiable after the migration, and two server processes appending at once."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx2
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import cli
from app.core.context import Actor, Context
from app.core.db import make_engine, new_session
from app.core.migrations import alembic_config, upgrade_to_head
from app.services import audit, background
from bench.harness import Server
from tests.support import World, consent_body, feelings_board_body, symbols_entry


def _events(app) -> list[dict]:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT * FROM audit_events ORDER BY id"))]


def _exec(app, sql: str, **params) -> None:  # noqa: ANN001, ANN003
    with app.state.engine.begin() as conn:
        conn.execute(text(sql), params)


def _cli(settings, capsys, *argv: str) -> tuple[int, str]:  # noqa: ANN001
    code = cli.main(list(argv), settings=settings)
    out = capsys.readouterr()
    return code, out.out + out.err


def _second_child(world: World) -> str:
    r = world.worker.post("/children", json={"preferred_name": "Sam", "team_id": world.team_id,
                                             "date_of_birth": "2014-02-03"})
    assert r.status_code == 201, r.text
    child_id = r.json()["id"]
    assert world.worker.post(f"/children/{child_id}/consents",
                             json=consent_body()).status_code == 201
    return child_id


def _cut_off_end(app, chain: str, keep: int) -> None:  # noqa: ANN001
    """What someone covering their tracks does: remove a chain's newest events and move its
    head back, so the chain and its head agree again."""
    _exec(app, "DELETE FROM audit_events WHERE chain = :chain AND seq > :keep",
          chain=chain, keep=keep)
    last = [e for e in _events(app) if e["chain"] == chain][-1]
    _exec(app, "UPDATE audit_chain_heads SET seq = :seq, hash = :hash WHERE chain = :chain",
          seq=last["seq"], hash=last["hash"], chain=chain)


@pytest.fixture
def two_children(world: World) -> tuple[str, str]:
    """Entries and plan reads for two children, interleaved."""
    other = _second_child(world)
    sessions = {c: world.open_session(child_id=c) for c in (world.child_id, other)}
    for _ in range(3):
        for child_id, session in sessions.items():
            r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                            json=symbols_entry(world.board, ["calm"]))
            assert r.status_code == 201, r.text
            assert world.worker.get(f"/children/{child_id}/plan").status_code == 200
    return world.child_id, other


def test_each_child_has_a_chain_of_its_own(two_children: tuple[str, str], app, settings,
                                           capsys) -> None:  # noqa: ANN001
    events = _events(app)
    for child_id in two_children:
        mine = [e for e in events if e["chain"] == child_id]
        assert mine and all(str(e["child_id"]).replace("-", "") == child_id.replace("-", "")
                            for e in mine)
        assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1))
        assert mine[0]["prev_hash"] == audit.GENESIS_HASH
        assert all(b["prev_hash"] == a["hash"] for a, b in zip(mine, mine[1:]))
    # Events naming no child (staff sign-ins, the board library) have a chain of their own.
    assert all(e["chain"] == audit.COUNCIL_CHAIN for e in events if e["child_id"] is None)
    code, out = _cli(settings, capsys, "audit", "verify")
    assert code == 0, out
    assert f"intact: {len(events)} events in" in out

    # An edit in the middle of one child's chain is named, whichever chain it is in.
    theirs = [e for e in events if e["chain"] == two_children[1]]
    target = theirs[len(theirs) // 2]["id"]
    _exec(app, "UPDATE audit_events SET actor_role = 'team_manager' WHERE id = :id", id=target)
    code, out = _cli(settings, capsys, "audit", "verify")
    assert code == 1 and f"BROKEN at event {target} (changed)" in out


def test_an_event_moved_to_another_childs_chain_is_found(two_children: tuple[str, str], app,
                                                         settings, capsys) -> None:  # noqa: ANN001
    first, second = two_children
    moved = [e for e in _events(app) if e["chain"] == first][-1]
    top = max(e["seq"] for e in _events(app) if e["chain"] == second)
    _exec(app, "UPDATE audit_events SET chain = :chain, seq = :seq WHERE id = :id",
          chain=second, seq=top + 1, id=moved["id"])
    code, out = _cli(settings, capsys, "audit", "verify")
    assert code == 1 and f"BROKEN at event {moved['id']} (changed)" in out


def test_events_cut_off_the_end_are_found_by_the_head_then_by_a_checkpoint(
        two_children: tuple[str, str], app, settings, capsys) -> None:  # noqa: ANN001
    child = two_children[0]
    top = max(e["seq"] for e in _events(app) if e["chain"] == child)

    # Cutting the end off alone: the chain's head row still names the newest event.
    _exec(app, "DELETE FROM audit_events WHERE chain = :chain AND seq = :seq", chain=child,
          seq=top)
    code, out = _cli(settings, capsys, "audit", "verify")
    assert code == 1 and f"in chain {child} (truncated)" in out
    assert f"ends at event {top - 1} of it, but its head says {top}" in out


def test_a_checkpoint_catches_a_cut_that_also_moved_the_head(
        two_children: tuple[str, str], app, settings, capsys) -> None:  # noqa: ANN001
    child = two_children[0]
    code, out = _cli(settings, capsys, "audit", "checkpoint")
    assert code == 0 and "checkpoint 1 signed" in out
    signed = max(e["seq"] for e in _events(app) if e["chain"] == child)
    # More happens after the checkpoint...
    for _ in range(2):
        assert world_plan_read(app, child)
    assert _cli(settings, capsys, "audit", "verify")[0] == 0

    # ...then events are cut off past the checkpoint, head and all: a whole, shorter chain.
    _cut_off_end(app, child, keep=signed - 2)
    code, out = _cli(settings, capsys, "audit", "verify")
    assert code == 1 and f"in chain {child} (truncated)" in out
    assert f"checkpoint 1 signed it with {signed}" in out


def world_plan_read(app, child: str) -> bool:  # noqa: ANN001
    """An audited read of the child's data, as the service records it."""
    with new_session(app.state.engine) as db:
        audit.record(Context(db=db, actor=Actor(), request_id="later"), "plan.read",
                     child_id=uuid.UUID(child), object_type="child", object_id=child)
        db.commit()
    return True


def test_exported_checkpoints_catch_checkpoints_removed_from_the_database(
        two_children: tuple[str, str], app, settings, capsys, tmp_path) -> None:  # noqa: ANN001
    child = two_children[0]
    kept = tmp_path / "council-checkpoints.jsonl"
    assert _cli(settings, capsys, "audit", "checkpoint")[0] == 0
    world_plan_read(app, child)
    assert _cli(settings, capsys, "audit", "checkpoint")[0] == 0
    # Nothing has moved since: nothing to sign.
    assert "none written" in _cli(settings, capsys, "audit", "checkpoint")[1]
    assert _cli(settings, capsys, "audit", "export-checkpoints", "--output", str(kept))[0] == 0
    # Exporting again adds only what the copy does not hold yet.
    world_plan_read(app, child)
    assert _cli(settings, capsys, "audit", "checkpoint")[0] == 0
    code, out = _cli(settings, capsys, "audit", "export-checkpoints", "--output", str(kept))
    assert code == 0 and "1 new checkpoint added" in out
    lines = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [line["number"] for line in lines] == [1, 2, 3]
    code, public = _cli(settings, capsys, "audit", "public-key")
    assert all(public.startswith(line["public_key"]) for line in lines)
    heads = {h[0]: h[1] for h in json.loads(lines[2]["payload"])["heads"]}
    assert set(heads) == {child}  # only what moved since checkpoint 2

    # The cut takes the checkpoints that would show it as well.
    _cut_off_end(app, child, keep=heads[child] - 3)
    _exec(app, "DELETE FROM audit_checkpoints")
    assert _cli(settings, capsys, "audit", "verify")[0] == 0  # the database alone is fooled
    code, out = _cli(settings, capsys, "audit", "verify", "--checkpoints", str(kept))
    assert code == 1 and "(checkpoint)" in out and "missing from the database" in out


def test_a_changed_checkpoint_fails_its_signature(two_children: tuple[str, str], app,
                                                  settings, capsys) -> None:  # noqa: ANN001
    child = two_children[0]
    assert _cli(settings, capsys, "audit", "checkpoint")[0] == 0
    with app.state.engine.connect() as conn:
        payload = conn.execute(text("SELECT payload FROM audit_checkpoints")).scalar()
    body = json.loads(payload)
    body["heads"] = [h for h in body["heads"] if h[0] != child]  # "this child had nothing"
    _exec(app, "UPDATE audit_checkpoints SET payload = :p",
          p=json.dumps(body, separators=(",", ":"), sort_keys=True))
    code, out = _cli(settings, capsys, "audit", "verify")
    assert code == 1 and "(checkpoint)" in out and "not signed by this service" in out


def test_the_background_worker_writes_checkpoints(two_children: tuple[str, str], app,
                                                  settings) -> None:  # noqa: ANN001
    assert background.run_once(app.state.engine, settings)["checkpoints"] == 1
    # Not due again until audit_checkpoint_minutes have passed.
    assert background.run_once(app.state.engine, settings)["checkpoints"] == 0
    report = audit.verify(app.state.engine, settings=settings)
    assert report.ok and report.checkpoints == 1, report.detail


# --- the migration from the single chain ------------------------------------------------

@pytest.fixture
def fresh_url(settings, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """An empty database of the kind the suite runs on."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"{url.database}_mig_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _old_event(prev: str, n: int, child_id: uuid.UUID | None) -> dict:
    """An event as the single-chain trail wrote it (its hash has no chain and no seq)."""
    event = {"occurred_at": datetime(2026, 11, 1, 9, n, tzinfo=timezone.utc),
             "actor_type": "staff", "actor_id": uuid.uuid4(), "actor_role": "social_worker",
             "action": "entry.read", "child_id": child_id, "object_type": "entry",
             "object_id": str(uuid.uuid4()), "client_ip": "10.0.0.1", "user_agent": "ua",
             "request_id": f"r{n}", "prev_hash": prev, "chain": audit.LEGACY_CHAIN}
    event["hash"] = audit.event_hash(event)
    return event


def test_the_old_single_chain_stays_verifiable_after_the_migration(fresh_url: str,
                                                                   settings) -> None:  # noqa: ANN001
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0005")
    children = [uuid.uuid4(), None, uuid.uuid4()]
    prev, old = audit.GENESIS_HASH, []
    for n in range(6):
        event = _old_event(prev, n, children[n % 3])
        prev = event["hash"]
        old.append(event)
    with engine.begin() as conn:
        for event in old:
            conn.execute(text(
                "INSERT INTO audit_events (occurred_at, actor_type, actor_id, actor_role, "
                "action, child_id, object_type, object_id, client_ip, user_agent, request_id, "
                "prev_hash, hash) VALUES (:occurred_at, :actor_type, :actor_id, :actor_role, "
                ":action, :child_id, :object_type, :object_id, :client_ip, :user_agent, "
                ":request_id, :prev_hash, :hash)"),
                {k: (v.isoformat(" ").replace("+00:00", "") if isinstance(v, datetime)
                     and engine.dialect.name == "sqlite" else
                     v.hex if isinstance(v, uuid.UUID) and engine.dialect.name == "sqlite"
                     else v) for k, v in event.items() if k != "chain"})

    with engine.begin() as conn:
        upgrade_to_head(conn)
    # New events go on the children's own chains, after the cut-over.
    with new_session(engine) as db:
        ctx = Context(db=db, actor=Actor(), request_id="after")
        audit.record(ctx, "child.read", child_id=children[0], object_type="child")
        audit.record(ctx, "staff.list")
        db.commit()
    keyed = settings.model_copy(update={"database_url": fresh_url})
    report = audit.verify(engine, settings=keyed)
    assert report.ok, report.detail
    assert report.checked == 8 and report.chains == 3  # legacy, the child's, the council's
    assert report.heads[audit.LEGACY_CHAIN][1] == old[-1]["hash"]
    checkpoint = audit.write_checkpoint(engine, keyed)
    assert audit.LEGACY_CHAIN in {h[0] for h in json.loads(checkpoint.payload)["heads"]}

    # The old chain is still tamper-evident: an edit is named...
    with engine.begin() as conn:
        first_id = conn.execute(text("SELECT min(id) FROM audit_events")).scalar()
        conn.execute(text("UPDATE audit_events SET action = 'entry.list' WHERE id = :id"),
                     {"id": first_id + 2})
    report = audit.verify(engine, settings=keyed)
    assert not report.ok and report.problem == "changed" and report.broken_at == first_id + 2
    engine.dispose()


# --- two server processes on one database ---------------------------------------------

ADMIN, PASSWORD = "admin@chains.example.org", "chains test password, long enough"


def _client(port: int, token: str | None = None) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers,
                         timeout=60)


def _token(port: int, email: str) -> str:
    with _client(port) as c:
        r = c.post("/auth/token", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def test_two_servers_appending_at_once_keep_every_chain_whole(app, settings,  # noqa: ANN001
                                                             tmp_path) -> None:
    """Two `childvoice serve` processes on one database (the suite's PostgreSQL on the
    PostgreSQL leg; on SQLite a file of their own, so the suite's file is never shared
    with other processes), many clients each, writing and reading the same two children."""
    env = {"CHILDVOICE_BOOTSTRAP_ADMIN_EMAIL": ADMIN,
           "CHILDVOICE_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
           "CHILDVOICE_AUDIT_SIGNING_KEY": settings.resolved_audit_signing_key()}
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'chains.db'}"
    engine = make_engine(url, settings)
    view = SimpleNamespace(state=SimpleNamespace(engine=engine))
    first = Server(database_url=url, env=env).start()
    second = Server(database_url=url, env=env).start()
    try:
        admin = _client(first.port, _token(first.port, ADMIN))
        team = admin.post("/teams", json={"name": "Chains Team"}).json()
        assert admin.post("/users", json={
            "email": "worker@chains.example.org", "full_name": "Worker", "role":
            "social_worker", "team_id": team["id"], "password": PASSWORD}).status_code == 201
        board = admin.post("/boards", json=feelings_board_body()).json()
        worker = _client(first.port, _token(first.port, "worker@chains.example.org"))
        sessions = []
        for name in ("Alex", "Jo"):
            child = worker.post("/children", json={"preferred_name": name, "team_id":
                                                   team["id"], "date_of_birth": "2015-01-01"})
            child_id = child.json()["id"]
            assert worker.post(f"/children/{child_id}/consents",
                               json=consent_body()).status_code == 201
            sessions.append(worker.post(f"/children/{child_id}/sessions", json={
                "setting": "home", "board_ids": [board["id"]]}).json())
        before = audit.verify(engine).checked

        errors: list[BaseException] = []
        start = threading.Barrier(8)
        worker_token = worker.headers["Authorization"].removeprefix("Bearer ")

        def client_loop(port: int, session: dict) -> None:
            try:
                tablet = _client(port, session["capture_token"])
                staff = _client(port, worker_token)
                start.wait()
                for _ in range(15):
                    r = tablet.post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(board, ["happy"]))
                    assert r.status_code == 201, r.text
                    r = staff.get(f"/children/{session['child_id']}/plan")
                    assert r.status_code == 200, r.text
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=client_loop, args=(server.port, session))
                   for server in (first, second) for session in sessions for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    finally:
        first.stop()
        second.stop()
    report = audit.verify(engine, settings=settings)
    assert report.ok, report.detail
    events = _events(view)
    assert report.checked == len(events) >= before + 8 * 15 * 2
    for session in sessions:
        chain = [e for e in events if e["chain"] == session["child_id"]]
        # Every request about the child left its events on the child's one chain.
        assert report.heads[session["child_id"]][0] == len(chain) >= 4 * 15 * 2
