"""A backup that can be restored: `pg_dump` a populated PostgreSQL database (entries, media,
sync receipts, audit), restore it into a fresh database with `pg_restore`, and the restored
service verifies its audit trail, answers the tablet's /sync/state the same, and serves
every media entry's bytes from the (unchanged) media store.

Collected only when the run's database is PostgreSQL (see conftest.py): the PostgreSQL leg
of .ci/run runs it; on SQLite there is nothing of this to test.
"""

from __future__ import annotations

import hashlib
import subprocess
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from app import cli
from app.main import create_app
from tests.media_support import form, sample, upload
from tests.support import Api, World
from tests.sync_support import Tablet, Tus, enroll, mat_board, recorded_visit


def _pg_args(url) -> list[str]:  # noqa: ANN001
    return ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "postgres"]


@pytest.fixture
def restored_url(settings):  # noqa: ANN001, ANN201
    """A fresh, empty database on the same server, dropped afterwards (generous timeouts:
    CREATE and DROP DATABASE wait for a checkpoint, slow on a busy server)."""
    url = make_url(settings.resolved_database_url)
    name = f"{url.database}_restore_{uuid.uuid4().hex[:8]}"
    admin = ["psql", *_pg_args(url), "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    subprocess.run([*admin, f'CREATE DATABASE "{name}"'], check=True, timeout=600)
    yield url.set(database=name)
    subprocess.run([*admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True,
                   timeout=600)


def _populate(world: World) -> tuple[Tablet, list[dict]]:
    tablet = Tablet(world.worker, enroll(world.worker))
    visit = recorded_visit(world, [world.board, mat_board(world)], entries=12)
    assert {r["status"] for r in tablet.send(visit).json()["results"]} == {"created"}
    tus = Tus(world.client, world.worker.token, tablet.device)
    data = sample("voice.wav")
    url = tus.create(len(data), tus.meta("audio", session_client_id=visit[0]["client_id"]))
    assert tus.patch(url, 0, data, "sha256").status_code == 204
    session = world.open_session()
    photo = upload(world.capture(session), session["id"], sample("photo_gps_rotated.jpg"),
                   fields=form("photo", caption="The swings"))
    assert photo.status_code == 201, photo.text
    entries = world.worker.get(f"/children/{world.child_id}/entries",
                               params={"limit": 200}).json()["items"]
    media = [m for e in entries for m in e["media"]]
    assert len(media) == 2
    return tablet, media


def test_a_dump_restores_into_a_working_service(world: World, app, settings,  # noqa: ANN001
                                                restored_url, capsys) -> None:
    tablet, media = _populate(world)
    state_before = tablet.state()
    served_before = {m["id"]: world.worker.get(m["url"].removeprefix("/api/v1")).content
                     for m in media}

    capsys.readouterr()
    assert cli.main(["audit", "verify"], settings=settings) == 0
    [head] = [line.split()[1] for line in capsys.readouterr().out.splitlines()
              if line.startswith("head ")]
    source = make_url(settings.resolved_database_url)
    dump = subprocess.run(["pg_dump", *_pg_args(source), "-Fc", "-d", source.database],
                          check=True, capture_output=True, timeout=300).stdout
    subprocess.run(["pg_restore", *_pg_args(restored_url), "--no-owner", "--exit-on-error",
                    "-d", restored_url.database], input=dump, check=True, timeout=300)

    restored = settings.model_copy(update={
        "database_url": restored_url.render_as_string(hide_password=False)})
    # The whole trail came back: intact, and ending where the original's did.
    assert cli.main(["audit", "verify", "--anchor", head], settings=restored) == 0
    assert "intact" in capsys.readouterr().out

    service = create_app(restored)
    try:
        client = TestClient(service, raise_server_exceptions=False)
        worker = Api(client, world.worker.token)  # the sign-in was restored with the rest
        again = Tablet(worker, tablet.device).state()
        for key in ("device_id", "held", "cursor", "more", "incomplete_uploads"):
            assert again[key] == state_before[key], key
        assert len(again["held"]) >= 14  # the session, its entries, the end, the upload
        for m in media:
            r = worker.get(m["url"].removeprefix("/api/v1"))
            assert r.status_code == 200, r.text
            assert r.content == served_before[m["id"]]
            assert hashlib.sha256(r.content).hexdigest() == m["sha256"]
    finally:
        service.state.engine.dispose()
