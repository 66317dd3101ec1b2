"""Synthetic demo data: a team, its people, two children with consent, the starter boards,
and past visits so every page has something to show: Robin's symbols, mats, a photo, a
recording, observations, a safeguarding alert, plan text and a published plan version;
Kai, never heard in their own voice (an adult-focused visit only).

Everything here is invented. The passwords are random and printed once (and kept in
data_dir/demo-credentials.txt) so nothing secret lives in the code.
"""

from __future__ import annotations

import math
import secrets
import shutil
import struct
import tempfile
import uuid
import wave
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, func, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Actor, Context
from app.core.multipart import ReceivedFile
from app.core.security import PasswordHashing
from app.models.board import Board, BoardWrite
from app.models.capture import (CaptureSession, MatEntryIn, ObservationEntryIn, SymbolsEntryIn,
                                TextEntryIn)
from app.models.child import Allocation, Child
from app.models.consent import Consent
from app.models.media import MediaUploadIn
from app.models.plan import SectionUpdate
from app.models.staff import Role, Team, User
from app.services import audit, capture, plans
from app.services.boards.library import boards_for_session, get_version
from app.services.boards.starter import STARTER_KEY, install_starter
from app.services.media import capture as media_capture
from app.services.safeguarding import alerts
from app.services.staff import add_user
from app.starter.boards import FEELINGS, SAFEGUARDING
from app.storage import make_store, staging_dir
from app.storage.base import file_sha256


def feelings_board() -> BoardWrite:
    """A picture-less feelings board (benchmarks use it; the demo installs the starter set)."""
    labels = FEELINGS + ["hurt", "unsafe", "secret", "finished"]
    buttons = []
    for label in labels:
        button = {"id": label.replace(" ", "_"), "label": label,
                  "vocalization": "I'm finished" if label == "finished" else f"I feel {label}"}
        if label in SAFEGUARDING:
            button["ext_childvoice_safeguarding"] = True
        buttons.append(button)
    ids = [b["id"] for b in buttons]
    return BoardWrite.model_validate({
        "name": "How I feel", "locale": "en",
        "grid": {"rows": 3, "columns": 4, "order": [ids[0:4], ids[4:8], ids[8:12]]},
        "buttons": buttons})


def is_empty(db: Session) -> bool:
    return db.exec(select(func.count()).select_from(User)).one() == 0


def load_demo(db: Session, settings: Settings, hashing: PasswordHashing) -> dict[str, str]:
    """Fill an empty database; returns email -> password of the demo accounts."""
    team = Team(name="Demo Disabled Children's Team")
    db.add(team)
    db.flush()
    people = {
        "worker@demo.childvoice.example": ("Sam Demo-Worker", Role.social_worker, team.id),
        "manager@demo.childvoice.example": ("Jo Demo-Manager", Role.team_manager, team.id),
        "admin@demo.childvoice.example": ("Ari Demo-Admin", Role.admin, None),
    }
    credentials = {}
    users = {}
    for email, (name, role, team_id) in people.items():
        password = settings.demo_password or secrets.token_urlsafe(12)
        users[role] = add_user(db, hashing, email, name, role, team_id, password)
        credentials[email] = password
    worker, manager = users[Role.social_worker], users[Role.team_manager]
    # Robin's worker before Sam, so the handover has someone who worked with them before.
    # Left the team: no sign-in (a random password nobody is told).
    former = add_user(db, hashing, "former.worker@demo.childvoice.example",
                      "Alex Former-Worker", Role.social_worker, team.id,
                      secrets.token_urlsafe(24))
    former.is_active = False

    now = utcnow()
    children = [
        Child(preferred_name="Robin", date_of_birth=date(2015, 4, 2), team_id=team.id,
              communication={"methods": ["makaton", "symbols"],
                             "yes_signal": "Smiles and taps the card",
                             "no_signal": "Turns head away", "happy_signs": "Hums and rocks",
                             "upset_signs": "Covers ears", "notes": "Give time to answer."},
              board_preferences={"symbol_size": "large", "labels_shown": True,
                                 "speech_on": True}, created_by=worker.id),
        Child(preferred_name="Kai", date_of_birth=date(2011, 9, 17), team_id=team.id,
              communication={"methods": ["eye_gaze", "symbols"],
                             "yes_signal": "Looks up", "no_signal": "Looks down",
                             "happy_signs": "Laughs", "upset_signs": "Cries out"},
              board_preferences={"symbol_size": "extra_large", "labels_shown": False,
                                 "speech_on": True, "max_rows": 2, "max_columns": 3},
              created_by=worker.id),
    ]
    for child in children:
        db.add(child)
        db.flush()
        if child.preferred_name == "Robin":
            db.add(Allocation(child_id=child.id, user_id=former.id,
                              started_at=now - timedelta(days=400),
                              ended_at=now - timedelta(days=60), allocated_by=manager.id))
        db.add(Allocation(child_id=child.id, user_id=worker.id,
                          started_at=now - timedelta(days=60), allocated_by=manager.id))
        db.add(Consent(child_id=child.id, given_by="parent_or_carer", giver_name="Demo Parent",
                       relationship="mother",
                       scopes=["audio", "photo", "plan", "share_family", "symbols"],
                       method="written", child_assent="agreed",
                       valid_from=now - timedelta(days=90), valid_until=now + timedelta(days=365),
                       recorded_by=worker.id))
    db.commit()
    install_starter(db, settings, make_store(settings), users[Role.admin].id)
    past_visits(db, settings, worker, robin=children[0], kai=children[1])
    return credentials


# --- past visits -------------------------------------------------------------------------

def _starter(db: Session) -> dict[str, tuple[Board, int]]:
    """The starter boards by their key, with their latest version."""
    found = {}
    for board in db.exec(select(Board).where(Board.owner_child_id.is_(None))):
        version = get_version(db, board.id, board.latest_version)
        key = version.content.get(STARTER_KEY) if version else None
        if key:
            found[key] = (board, version.version)
    return found


def _drawing(path: Path) -> None:
    """A child's drawing of the park (made here: no real photo is ever shipped)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (800, 600), (170, 215, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 420, 800, 600), fill=(95, 170, 80))
    draw.ellipse((620, 40, 740, 160), fill=(250, 210, 60))
    draw.rectangle((180, 280, 210, 440), fill=(120, 80, 40))
    draw.ellipse((110, 170, 280, 320), fill=(40, 130, 50))
    draw.line((420, 440, 470, 300, 520, 440), fill=(200, 40, 40), width=8)  # a swing frame
    draw.line((470, 300, 470, 390), fill=(60, 60, 60), width=4)
    draw.rectangle((450, 390, 490, 400), fill=(60, 60, 60))
    image.save(path, "JPEG", quality=85)


def _humming(path: Path, seconds: float = 3.0) -> None:
    """A short hummed tune (synthesised: no real voice is ever shipped)."""
    rate, notes = 16000, [262, 294, 330, 294, 262, 330]
    frames = bytearray()
    total = int(seconds * rate)
    for i in range(total):
        note = notes[i * len(notes) // total]
        envelope = min(1.0, i / 800, (total - i) / 800)
        frames += struct.pack("<h", int(9000 * envelope * math.sin(2 * math.pi * note * i / rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


def _media(ctx: Context, settings: Settings, session: CaptureSession, kind: str,
           captured_at: datetime, make, **fields: str) -> None:  # noqa: ANN001
    """A photo or recording through the same checks and cleaning as an upload."""
    workdir = Path(tempfile.mkdtemp(dir=staging_dir(settings.media_root)))
    try:
        source = workdir / ("upload.jpg" if kind == "photo" else "upload.wav")
        make(source)
        upload = ReceivedFile(path=source, size=source.stat().st_size,
                              sha256=file_sha256(source))
        data = MediaUploadIn(kind=kind, client_id=uuid.uuid4(), captured_at=captured_at,
                             **fields)
        prepared = media_capture.prepare(ctx, session, data, upload, settings)
        (workdir / "out").mkdir()
        processed = media_capture.process(prepared, workdir / "out", settings)
        media_capture.commit(ctx, settings, session, prepared, processed, make_store(settings))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _visit(ctx: Context, child: Child, started_at: datetime, setting: str, purpose: str,
           board_ids: list[uuid.UUID]) -> CaptureSession:
    session = CaptureSession(child_id=child.id, worker_id=ctx.user.id, setting=setting,
                             purpose=purpose, boards=boards_for_session(ctx, child.id, board_ids),
                             device="demo tablet", started_at=started_at,
                             ended_at=started_at + timedelta(minutes=45),
                             expires_at=started_at + timedelta(hours=6))
    ctx.db.add(session)
    ctx.db.flush()
    audit.record(ctx, "session.open", child_id=child.id, object_type="session",
                 object_id=session.id)
    return session


def _say(ctx: Context, settings: Settings, session: CaptureSession, data) -> uuid.UUID:  # noqa: ANN001
    entry, _, signals = capture.store_entry(ctx, settings, session, data)
    if signals:
        alerts.raise_alert(ctx, settings, entry, signals)
    audit.record(ctx, "entry.create", child_id=session.child_id, object_type="entry",
                 object_id=entry.id)
    return entry.id


def past_visits(db: Session, settings: Settings, worker: User, *, robin: Child,
                kai: Child) -> None:
    """Three visits to Robin (30, 9 and 3 days ago) and one to Kai, made through the capture
    rules (boards' labels, consent, safeguarding); then Robin's plan and a published
    version."""
    ctx = Context(db=db, actor=Actor(user=worker))
    boards = _starter(db)
    feelings, places, scale = boards["feelings"], boards["places"], boards["top_scale"]
    ids = [feelings[0].id, places[0].id, scale[0].id]
    like = ["like", "not sure", "don't like"]
    now = utcnow()

    def symbols(session: CaptureSession, at: datetime, buttons: list[str], topic: str,
                prompt: str) -> uuid.UUID:
        return _say(ctx, settings, session, SymbolsEntryIn(
            kind="symbols", client_id=uuid.uuid4(), captured_at=at, source="child_direct",
            topic=topic, prompt=prompt, board_id=feelings[0].id, board_version=feelings[1],
            button_ids=buttons))

    def mat(session: CaptureSession, at: datetime, placed: dict[str, str]) -> uuid.UUID:
        return _say(ctx, settings, session, MatEntryIn(
            kind="mat", client_id=uuid.uuid4(), captured_at=at, source="child_assisted",
            topic="places", prompt="What do you think of these places?",
            board_id=places[0].id, board_version=places[1], scale=like,
            placements=[{"button_id": b, "scale_value": v} for b, v in placed.items()]))

    def observe(session: CaptureSession, at: datetime, text: str, topic: str,
                source: str = "adult_interpretation") -> uuid.UUID:
        model = ObservationEntryIn if source == "adult_interpretation" else TextEntryIn
        return _say(ctx, settings, session, model(
            kind="observation" if model is ObservationEntryIn else "text",
            client_id=uuid.uuid4(), captured_at=at, source=source, topic=topic, text=text))

    first_at = now - timedelta(days=30)
    first = _visit(ctx, robin, first_at, "school", "How Robin feels about school", ids)
    symbols(first, first_at + timedelta(minutes=5), ["happy"], "school",
            "How do you feel about school?")
    liked_places = mat(first, first_at + timedelta(minutes=12),
                       {"school": "like", "the_park": "like", "swimming_pool": "not sure"})
    observe(first, first_at + timedelta(minutes=20), "Robin smiled and hummed when the "
            "school picture came up, and reached for the park card twice.", "school")
    db.commit()
    _media(ctx, settings, first, "photo", first_at + timedelta(minutes=25), _drawing,
           source="child_direct", topic="the park", caption="My drawing of the park")

    second_at = now - timedelta(days=9)
    second = _visit(ctx, robin, second_at, "home", "How school is going", ids)
    symbols(second, second_at + timedelta(minutes=4), ["sad", "hurt"], "school",
            "How do you feel about school?")  # a safeguarding symbol: raises an alert
    moved = mat(second, second_at + timedelta(minutes=10),
                {"school": "don't like", "the_park": "like", "swimming_pool": "like"})
    observe(second, second_at + timedelta(minutes=18), "Covered ears when school was "
            "mentioned; calmer once we moved on to swimming.", "school")
    db.commit()
    _media(ctx, settings, second, "audio", second_at + timedelta(minutes=22), _humming,
           source="child_direct", topic="swimming", prompt="Can you sing the swimming song?")

    third_at = now - timedelta(days=3)
    third = _visit(ctx, robin, third_at, "home", "Catch-up with mum", ids)
    observe(third, third_at + timedelta(minutes=10), "Mum says Robin has been sleeping "
            "badly on school nights.", "bedtime", source="parent_or_carer_report")

    kai_at = now - timedelta(days=20)
    kai_visit = _visit(ctx, kai, kai_at, "placement", "Meeting Kai's new carers", ids)
    observe(kai_visit, kai_at + timedelta(minutes=15), "Kai looked up when the carers "
            "mentioned the garden.", "placement")
    db.commit()

    latest = settings.plan_latest_default
    plans.update_section(ctx, robin.id, "about_me", SectionUpdate(
        text="I am Robin. I like swimming, humming songs and the park."), latest)
    plans.update_section(ctx, robin.id, "important_to_me", SectionUpdate(
        text="Swimming on Fridays.\nTime to answer when you ask me something."), latest)
    plans.update_section(ctx, robin.id, "my_wishes_and_feelings", SectionUpdate(
        text="I do not like school at the moment.\nI want to keep going to the park.",
        pinned_entry_ids=[moved, liked_places]), latest)
    plans.publish(ctx, robin.id, latest)
