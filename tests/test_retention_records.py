"""Finished upload rows and sync receipts have a retention rule like the media: after
their period `childvoice retention --apply` removes them, audited, and nothing a tablet
sends again is stored twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from app import cli
from app.core.clock import clock
from tests.media_support import sample
from tests.support import World
from tests.sync_support import Tablet, Tus, enroll, mat_board, recorded_visit


def _count(app, table: str) -> int:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _retention(settings, capsys, *args: str) -> str:  # noqa: ANN001
    assert cli.main(["retention", *args], settings=settings) == 0
    return capsys.readouterr().out


def test_ended_uploads_and_old_receipts_go_with_retention(world: World, app, settings,  # noqa: ANN001
                                                          capsys) -> None:
    tablet = Tablet(world.worker, enroll(world.worker))
    visit = recorded_visit(world, [world.board, mat_board(world)], entries=6)
    assert {r["status"] for r in tablet.send(visit).json()["results"]} == {"created"}
    tus = Tus(world.client, world.worker.token, tablet.device)
    photo = sample("drawing.png")
    stored = tus.create(len(photo), tus.meta("photo", session_client_id=visit[0]["client_id"],
                                             caption="Biscuit the dog"))
    assert tus.patch(stored, 0, photo, "sha256").status_code == 204
    dropped = tus.create(len(photo), tus.meta("photo", session_client_id=visit[0]["client_id"]))
    assert world.client.delete(dropped, headers=tus.headers).status_code == 204
    open_upload = tus.create(len(photo), tus.meta("photo",
                                                  session_client_id=visit[0]["client_id"]))
    assert tus.patch(open_upload, 0, photo[:100], "sha256").status_code == 204
    held = tablet.held()
    entries = _count(app, "voice_entries")
    assert _count(app, "uploads") == 3

    out = _retention(settings, capsys, "--dry-run")
    assert "upload: would remove 0 older than 30 days" in out
    assert "sync_receipt: would remove 0 older than 400 days" in out

    # A month on: the two uploads that ended go; the one still open is left alone (it
    # expires by its own rule first).
    clock.set(datetime.now(timezone.utc) + timedelta(days=31))
    assert "upload: would remove 2 older than 30 days" in _retention(settings, capsys,
                                                                     "--dry-run")
    assert _count(app, "uploads") == 3  # a dry run removes nothing
    assert "upload: removed 2 older than 30 days" in _retention(settings, capsys, "--apply")
    assert _count(app, "uploads") == 1
    with app.state.engine.connect() as conn:
        audited = conn.execute(text("SELECT count(*) FROM audit_events WHERE action = "
                                    "'retention.remove' AND object_type = 'upload'")
                               ).scalar_one()
    assert audited == 2
    assert _count(app, "sync_receipts") == len(held)

    # Past the receipts' period they go too; the tablet resending its old queue stores
    # nothing twice.
    clock.set(datetime.now(timezone.utc) + timedelta(days=401))
    out = _retention(settings, capsys, "--apply")
    assert f"sync_receipt: removed {len(held)} older than 400 days" in out
    clock.set(None)
    world.sign_in_again()
    tablet = Tablet(world.worker, tablet.device)
    assert tablet.held() == set()
    r = tablet.send(visit)
    assert r.status_code == 200, r.text
    assert {x["status"] for x in r.json()["results"]} == {"duplicate"}
    assert _count(app, "voice_entries") == entries
