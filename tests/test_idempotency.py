"""The same entry sent twice, or twenty times at once, is stored once and answers the same."""

import asyncio

import httpx2
from sqlmodel import func, select

from app.core.db import new_session
from app.models.capture import VoiceEntry
from tests.support import World, assert_problem, symbols_entry


def _stored_count(app, client_id: str) -> int:  # noqa: ANN001
    import uuid
    with new_session(app.state.engine) as db:
        return db.exec(select(func.count()).select_from(VoiceEntry)
                       .where(VoiceEntry.client_id == uuid.UUID(client_id))).one()


def test_resend_answers_the_stored_entry(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    body = symbols_entry(world.board, ["sad", "worried"])
    first = tablet.post(f"/sessions/{session['id']}/entries", json=body)
    again = tablet.post(f"/sessions/{session['id']}/entries", json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    # The worker resending it (say from the synced queue) gets the same answer too.
    by_worker = world.worker.post(f"/sessions/{session['id']}/entries", json=body)
    assert by_worker.status_code == 200 and by_worker.json()["id"] == first.json()["id"]
    assert _stored_count(app, body["client_id"]) == 1


def test_twenty_concurrent_copies_store_one(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    body = symbols_entry(world.board, ["happy"])
    headers = {"Authorization": f"Bearer {session['capture_token']}"}

    async def send_all() -> list:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://tablet") as c:
            return await asyncio.gather(*[
                c.post(f"/api/v1/sessions/{session['id']}/entries", json=body, headers=headers)
                for _ in range(20)])

    responses = asyncio.run(send_all())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    assert _stored_count(app, body["client_id"]) == 1


def test_a_reused_client_id_with_other_content_is_a_conflict(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    body = symbols_entry(world.board, ["happy"])
    assert tablet.post(f"/sessions/{session['id']}/entries", json=body).status_code == 201
    changed = body | {"button_ids": ["sad"]}
    problem = assert_problem(tablet.post(f"/sessions/{session['id']}/entries", json=changed), 409)
    assert "client_id" in problem["detail"]
    entries = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert [e["choices"][0]["button_id"] for e in entries] == ["happy"]
