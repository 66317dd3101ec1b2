"""A child's plan with something of every kind in it, for the plan page, PDF and export
tests: symbols with OpenMoji pictures, a mat, a photo, a recording, a worker's observation,
a mum's report, a personal board's photo, section text with pinned entries, a published
version, and one entry whose consent was withdrawn (it must never show)."""

from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from PIL import Image

from app.core.db import new_session
from app.services.boards.starter import install_starter
from tests.media_support import form, sample, upload
from tests.support import World, consent_body


@dataclass
class PlanWorld:
    world: World
    child_id: str
    session: dict
    entries: dict[str, dict]
    boards: dict[str, dict]
    photo_media_id: str
    audio_media_id: str
    personal_board: dict
    withdrawn_consent_id: str


def build(world: World, app, *, share_family: bool = True) -> PlanWorld:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        install_starter(db, app.state.settings, app.state.media_store)
    feelings = _starter_board(world, {"happy", "calm", "tired"})
    things = _starter_board(world, {"music", "tv", "cooking"})
    # A personal board with a photo of the child's own (its picture is the child's data).
    r = world.worker.post(f"/children/{world.child_id}/board-photos",
                          files={"file": ("nan.png", sample("drawing.png"),
                                          "image/png")})
    assert r.status_code == 201, r.text
    image = r.json()["image"] | {"id": "nan-photo"}
    r = world.worker.post(f"/children/{world.child_id}/boards", json={
        "name": "My people", "locale": "en",
        "grid": {"rows": 1, "columns": 2, "order": [["nan", "dog"]]},
        "buttons": [{"id": "nan", "label": "Nan", "image_id": "nan-photo"},
                    {"id": "dog", "label": "Biscuit"}],
        "images": [image]})
    assert r.status_code == 201, r.text
    personal = r.json()

    # The entry made under the first consent (the father's) is withdrawn later; everything
    # else is made under the mother's, which is the newer and so preferred.
    r = world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "purpose": "What matters to me",
        "board_ids": [feelings["id"], things["id"], personal["id"]]})
    assert r.status_code == 201, r.text
    session = r.json()
    tablet = world.capture(session)
    now = datetime.now(timezone.utc)
    entries: dict[str, dict] = {}

    def add(name: str, body: dict, by=tablet) -> dict:  # noqa: ANN001
        body = {"client_id": str(uuid.uuid4()), "captured_at": now.isoformat(),
                "source": "child_direct"} | body
        r = by.post(f"/sessions/{session['id']}/entries", json=body)
        assert r.status_code == 201, r.text
        entries[name] = r.json()
        return entries[name]

    add("withdrawn", {"kind": "symbols", "board_id": feelings["id"],
                      "board_version": feelings["version"], "button_ids": ["tired"],
                      "prompt": "How do you feel at night?", "topic": "sleep"})
    scopes = ["symbols", "photo", "audio", "plan"] + (["share_family"] if share_family else [])
    r = world.worker.post(f"/children/{world.child_id}/consents", json=consent_body(
        scopes, giver_name="Test Mother", relationship="mother",
        valid_from=(now - timedelta(hours=1)).isoformat()))
    assert r.status_code == 201, r.text
    add("symbols", {"kind": "symbols", "board_id": feelings["id"],
                    "board_version": feelings["version"], "button_ids": ["happy", "calm"],
                    "prompt": "How do you feel about school?", "topic": "school",
                    "note": "WORKER-NOTE-NOT-FOR-THE-CHILD"}, by=world.worker)
    add("mat", {"kind": "mat", "board_id": things["id"], "board_version": things["version"],
                "source": "child_assisted", "prompt": "What do you think of these?",
                "topic": "weekends", "scale": ["like", "not sure", "don't like"],
                "placements": [{"button_id": "music", "scale_value": "like"},
                               {"button_id": "tv", "scale_value": "not sure"},
                               {"button_id": "cooking", "scale_value": "don't like"}]})
    add("people", {"kind": "symbols", "board_id": personal["id"],
                   "board_version": personal["version"], "button_ids": ["nan", "dog"],
                   "prompt": "Who do you like to see?", "topic": "people"})
    add("observation", {"kind": "observation", "source": "adult_interpretation",
                        "text": "Smiled and reached for the music picture twice."},
        world.worker)
    add("report", {"kind": "text", "source": "parent_or_carer_report",
                   "text": "Sleeps better after swimming."}, world.worker)
    r = upload(tablet, session["id"], _unique_photo(), "photo",
               "swings.jpg", form("photo", caption="The swings", prompt="Show me a place"))
    assert r.status_code == 201, r.text
    entries["photo"] = r.json()
    r = upload(tablet, session["id"], sample("voice_chrome.webm"), "audio", "voice.webm",
               form("audio", prompt="Tell me about your day"))
    assert r.status_code == 201, r.text
    entries["audio"] = r.json()

    r = world.worker.post(f"/consents/{world.consent['id']}/withdraw",
                          json={"reason": "Dad asked at the review."})
    assert r.status_code == 200, r.text
    for key, text, pinned in (
            ("about_me", "I am nine. I like music and my nan.", ["people", "photo"]),
            ("my_wishes_and_feelings", "I feel happy at school. I want more swimming.",
             ["symbols", "mat", "audio", "observation", "report"])):
        r = world.worker.put(f"/children/{world.child_id}/plan/sections/{key}", json={
            "text": text, "pinned_entry_ids": [entries[p]["id"] for p in pinned]})
        assert r.status_code == 200, r.text
    r = world.worker.post(f"/children/{world.child_id}/plan/versions")
    assert r.status_code == 201, r.text
    return PlanWorld(world=world, child_id=world.child_id, session=session, entries=entries,
                     boards={"feelings": feelings, "things": things},
                     photo_media_id=entries["photo"]["media"][0]["id"],
                     audio_media_id=entries["audio"]["media"][0]["id"],
                     personal_board=personal, withdrawn_consent_id=world.consent["id"])


def _starter_board(world: World, buttons: set[str]) -> dict:
    """The starter library's board with these buttons (and pictures)."""
    page = world.admin.get("/boards", params={"limit": 200}).json()
    for summary in page["items"]:
        board = world.worker.get(f"/boards/{summary['id']}").json()
        if buttons <= {b["id"] for b in board["buttons"]} and board["images"]:
            return board
    raise AssertionError(f"the starter library has no board with {sorted(buttons)}")


def _unique_photo() -> bytes:
    """A photo of its own (the media store is shared by the whole run, and other tests
    count the blobs their sample photos add)."""
    picture = Image.new("RGB", (640, 480), (70, 120, 200))
    picture.paste((random.randrange(256), 90, 40), (40, 200, 200, 360))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90)
    return out.getvalue()
