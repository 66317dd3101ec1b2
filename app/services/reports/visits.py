"""Visits (capture sessions) and the answers in them: the pieces the handover and the
timeline share. Every query here is bounded by the visits asked for, never by the length
of the child's whole record."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case
from sqlmodel import Session, func, select

from app.models.capture import CaptureSession, VoiceEntry
from app.models.reports import Answer, TopicTrail, VisitOut
from app.models.staff import User
from app.services.capture import entries_out

# The child's own voice, as opposed to an adult's interpretation or a parent's report.
OWN_VOICE = ("child_direct", "child_assisted")
ANSWER_MAX_CHARS = 200


def is_own_voice(source: str) -> bool:
    return source in OWN_VOICE


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ANSWER_MAX_CHARS else text[:ANSWER_MAX_CHARS - 1] + "…"


# The columns an answer is read from (the handover reads hundreds of entries: no more).
ANSWER_COLUMNS = (VoiceEntry.id, VoiceEntry.session_id, VoiceEntry.kind, VoiceEntry.source,
                  VoiceEntry.captured_at, VoiceEntry.topic, VoiceEntry.content)


def topic_answers(entry: Any) -> list[tuple[str, str]]:
    """An entry (a VoiceEntry, or a row of ANSWER_COLUMNS) as (topic, answer) in words: a
    mat gives one answer per card placed (the card is the topic: "school" → "don't
    like"); other kinds answer the entry's topic, when it has one."""
    content = entry.content or {}
    if entry.kind == "mat":
        return [(p.get("label") or p["button_id"], p["scale_value"])
                for p in content.get("placements", [])]
    if not entry.topic:
        return []
    if entry.kind == "symbols":
        words = ", ".join(c.get("label") or c["button_id"] for c in content.get("choices", []))
    elif entry.kind in ("text", "observation"):
        words = _clip(content.get("text") or "")
    else:
        words = "a photo" if entry.kind == "photo" else "a recording"
    return [(entry.topic, words)]


def answer(entry: Any, topic: str, words: str) -> Answer:
    return Answer(topic=topic, answer=words, kind=entry.kind, source=entry.source,
                  entry_id=entry.id, session_id=entry.session_id,
                  captured_at=entry.captured_at)


def answers_of(entry: Any) -> list[Answer]:
    return [answer(entry, topic, words) for topic, words in topic_answers(entry)]


# Kinds a change can be read from: what the child chose or said, not pictures.
COMPARABLE = ("symbols", "mat", "text")


def comparable(answer: Answer) -> bool:
    return answer.kind in COMPARABLE


def topic_key(topic: str) -> str:
    return " ".join(topic.lower().split())


def same_answer(a: Answer, b: Answer) -> bool:
    return topic_key(a.answer) == topic_key(b.answer)


def topic_trails(entries: list[VoiceEntry]) -> list[TopicTrail]:
    """Per topic, the answers in these entries (active ones) oldest first; topics in the order they were
    last answered, newest first."""
    trails: dict[str, list[Answer]] = {}
    names: dict[str, str] = {}
    active = [e for e in entries if e.status == "active"]  # taken back: not an answer
    for entry in sorted(active, key=lambda e: (e.captured_at, e.id)):
        for answer in answers_of(entry):
            key = topic_key(answer.topic)
            names.setdefault(key, answer.topic)
            trails.setdefault(key, []).append(answer)
    out = []
    for key, answers in trails.items():
        changed = False
        for kind in {a.kind for a in answers if comparable(a)}:
            same_kind = [a for a in answers if a.kind == kind]
            changed = changed or any(not same_answer(x, y)
                                     for x, y in zip(same_kind, same_kind[1:]))
        out.append(TopicTrail(topic=names[key], answers=answers, changed=changed))
    out.sort(key=lambda t: t.answers[-1].captured_at, reverse=True)
    return out


def entry_filters(topic: str | None = None, sources: list[str] | None = None,
                  kinds: list[str] | None = None) -> list[Any]:
    where = []
    if topic:
        where.append(VoiceEntry.topic == topic)
    if sources:
        where.append(VoiceEntry.source.in_(sources))
    if kinds:
        where.append(VoiceEntry.kind.in_(kinds))
    return where


def visits_out(db: Session, sessions: list[CaptureSession], per_visit: int,
               where: list[Any] | None = None) -> tuple[list[VisitOut], list[VoiceEntry]]:
    """These sessions as visits, in the order given, each with its first `per_visit`
    entries matching `where` (in the order the child made them) and its counts. Four
    queries whatever the number of sessions. Also returns the entries shown."""
    if not sessions:
        return [], []
    where = where or []
    ids = [s.id for s in sessions]
    own = func.sum(case((VoiceEntry.source.in_(OWN_VOICE), 1), else_=0))
    counts = {row[0]: (row[1], row[2] or 0) for row in db.exec(
        select(VoiceEntry.session_id, func.count(), own)
        .where(VoiceEntry.session_id.in_(ids), *where).group_by(VoiceEntry.session_id))}
    # Visits with no matching entry still count their own voice over all their entries.
    all_own = {row[0]: row[1] or 0 for row in db.exec(
        select(VoiceEntry.session_id, own).where(VoiceEntry.session_id.in_(ids))
        .group_by(VoiceEntry.session_id))} if where else {k: v[1] for k, v in counts.items()}
    number = func.row_number().over(partition_by=VoiceEntry.session_id,
                                    order_by=(VoiceEntry.captured_at, VoiceEntry.id))
    ranked = select(VoiceEntry.id, number.label("n")).where(
        VoiceEntry.session_id.in_(ids), *where).subquery()
    rows = list(db.exec(select(VoiceEntry).join(ranked, ranked.c.id == VoiceEntry.id)
                        .where(ranked.c.n <= per_visit)
                        .order_by(VoiceEntry.captured_at, VoiceEntry.id)))
    shown = entries_out(db, rows)
    by_session: dict[uuid.UUID, list] = {i: [] for i in ids}
    for out in shown:
        by_session[out.session_id].append(out)
    names = dict(db.exec(select(User.id, User.full_name).where(
        User.id.in_({s.worker_id for s in sessions}))).all())
    visits = []
    for s in sessions:
        total, _ = counts.get(s.id, (0, 0))
        own_count = all_own.get(s.id, 0)
        visits.append(VisitOut(
            id=s.id, started_at=s.started_at, ended_at=s.ended_at, setting=s.setting,
            purpose=s.purpose, worker_id=s.worker_id, worker_name=names.get(s.worker_id),
            entry_count=total, own_voice_count=own_count, adult_focused=own_count == 0,
            entries=by_session[s.id], more_entries=max(0, total - len(by_session[s.id])),
            entries_url=f"/api/v1/sessions/{s.id}/entries"))
    return visits, rows
