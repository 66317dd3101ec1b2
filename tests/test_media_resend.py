"""Resends of one photo or recording while the first copy is still being processed (the
tablet timed out and sent it again) answer the stored entry once it lands, or a 409 that
says "still being processed, retry" with Retry-After; never "used for a different
upload"."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading

import httpx2
import pytest

from app.services.media import capture as media_capture
from tests.media_support import form, media_session, sample
from tests.support import World
from tests.sync_support import Tablet, Tus, enroll, mat_board, recorded_visit


@pytest.fixture
def tablet(world: World) -> Tablet:
    return Tablet(world.worker, enroll(world.worker))


@pytest.fixture
def offline_session(world: World, tablet: Tablet) -> dict:
    items = recorded_visit(world, [world.board, mat_board(world)], entries=2)
    assert {r["status"] for r in tablet.send(items).json()["results"]} == {"created"}
    return items[0]


@pytest.fixture
def slow_processing(monkeypatch) -> threading.Event:  # noqa: ANN001
    """The first copy's processing waits until the test lets it go on."""
    go_on, real = threading.Event(), media_capture.process
    started = []

    def process(*args):  # noqa: ANN002, ANN202
        if not started:
            started.append(True)
            go_on.wait(30)
        return real(*args)

    monkeypatch.setattr(media_capture, "process", process)
    return go_on


def _sha1(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_resends_of_a_finishing_upload_answer_the_entry_or_retry(
        world: World, tablet: Tablet, offline_session: dict, app,  # noqa: ANN001
        slow_processing: threading.Event) -> None:
    data = sample("drawing.png")
    tus = Tus(world.client, world.worker.token, tablet.device)
    meta = tus.meta("photo", session_client_id=offline_session["client_id"])
    url = tus.create(len(data), meta)
    path = url.removeprefix("http://testserver")
    headers = tus.headers | {"Content-Type": "application/offset+octet-stream"}

    async def run() -> tuple:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver",
                                      timeout=60) as client:
            first = asyncio.create_task(client.patch(path, content=data, headers=headers | {
                "Upload-Offset": "0", "Upload-Checksum": _sha1(data)}))
            await asyncio.sleep(0.5)   # the first is being processed now
            resends = await asyncio.gather(*[client.patch(path, content=b"", headers=headers | {
                "Upload-Offset": str(len(data))}) for _ in range(3)])
            slow_processing.set()
            done = await first
            after = await client.patch(path, content=b"", headers=headers | {
                "Upload-Offset": str(len(data))})
            return done, resends, after

    done, resends, after = asyncio.run(run())
    assert done.status_code == 204, done.text
    entry_id = done.headers["x-entry-id"]
    for r in resends:
        assert "different" not in r.text
        if r.status_code == 409:
            assert r.headers["retry-after"] and "retry" in r.json()["detail"]
            assert r.json()["retry"] is True
        else:
            assert r.status_code == 204 and r.headers["x-entry-id"] == entry_id, r.text
    assert after.status_code == 204 and after.headers["x-entry-id"] == entry_id, after.text


# A recording's playback copy is made again by each copy's processing: the blobs of two
# copies need not share a lock, so the client_id alone decides.
@pytest.mark.parametrize("name, kind", [("voice_chrome.webm", "audio")])
def test_direct_resends_while_the_first_is_processed(
        world: World, app, name: str, kind: str,  # noqa: ANN001
        slow_processing: threading.Event) -> None:
    session, child = media_session(world)
    fields, data = form(kind), sample(name)

    async def run() -> tuple:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver",
                                      timeout=60) as client:
            def post():  # noqa: ANN202
                return client.post(f"/api/v1/sessions/{session['id']}/media", data=fields,
                                   files={"file": (name, data, "application/octet-stream")},
                                   headers={"Authorization": f"Bearer {child.token}"})
            first = asyncio.create_task(post())
            await asyncio.sleep(0.5)
            resends = await asyncio.gather(*[post() for _ in range(3)])
            slow_processing.set()
            return await first, resends

    first, resends = asyncio.run(run())
    assert first.status_code in (200, 201), first.text
    for r in resends:
        assert "different" not in r.text, r.text
        assert r.status_code in (200, 201, 409), r.text
        if r.status_code == 409:
            assert r.headers["retry-after"] and r.json()["retry"] is True
        else:
            assert r.json()["id"] == first.json()["id"]
