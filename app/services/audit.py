"""The audit trail: one event per read or write of a child's data, hash-chained per child.

Each child's events form their own chain (events naming no child form the `council`
chain): every event stores its chain, its position `seq` in it (1, 2, 3…) and the hash of
the event before, and its own hash covers all of that. An edit, a deletion or a
reordering breaks the chain at that point.

Appending locks only the chain's head row (`audit_chain_heads`, one per chain) until the
transaction commits: two requests about one child wait for each other, requests about
different children never do, and reads of one child by many people queue only on that
child. The lock is taken by an upsert that returns the head, so an append is three
statements: lock-and-read the head, insert the events, move the head; or two, when this
process wrote the chain's head itself (see `_known_heads`). Chains are locked in sorted
order, so a request that touches several children cannot deadlock another.

Why that is enough on PostgreSQL: the upsert's row lock is held until commit; the next
appender's upsert waits for it and then sees the committed head (ON CONFLICT DO UPDATE
always works on the latest row version). Ids come from a sequence while the lock is held,
so within a chain id order is seq order, and `verify()` checks that too.

A chain alone cannot show events cut off its end. The head rows show it unless they are
rewritten as well; **checkpoints** show it whatever was rewritten: the background worker
signs (Ed25519) the heads that moved since the last checkpoint, each checkpoint linked to
the one before by its digest, and the council keeps the exported checkpoints elsewhere.
`verify()` then needs every checkpointed head to still be in its chain.

Before the cut-over to per-child chains there was one chain; its events are the `legacy`
chain, hashed and verified as they were written (in id order, linked by hash only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import bindparam, select as sa_select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.db import new_session
from app.core.errors import Invalid
from app.models.audit import AuditChainHead, AuditCheckpoint, AuditEvent
from app.models.staff import User
from app.services import access
from app.services.access import Need

GENESIS_HASH = "0" * 64
COUNCIL_CHAIN = "council"   # events that name no child
LEGACY_CHAIN = "legacy"     # the single chain written before per-child chains

_FIELDS = ("occurred_at", "actor_type", "actor_id", "actor_role", "action", "child_id",
           "object_type", "object_id", "client_ip", "user_agent", "request_id")


def chain_of(child_id: uuid.UUID | None) -> str:
    return str(child_id) if child_id else COUNCIL_CHAIN


def _hash_body(row: Any) -> dict[str, Any]:
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    body = {"prev_hash": get("prev_hash"),
            "occurred_at": get("occurred_at").astimezone(timezone.utc).isoformat()}
    for name in _FIELDS[1:]:
        value = get(name)
        body[name] = str(value) if isinstance(value, uuid.UUID) else value
    return body


def event_hash(event: AuditEvent | dict[str, Any]) -> str:
    """An event's hash: its contents, its place in its chain and the hash before it.
    Legacy events were hashed before chains had names and places, and stay so."""
    body = _hash_body(event)
    chain = event["chain"] if isinstance(event, dict) else event.chain
    if chain != LEGACY_CHAIN:
        body["chain"] = chain
        body["seq"] = event["seq"] if isinstance(event, dict) else event.seq
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# --- appending -------------------------------------------------------------------------

# Built once: these run on every request that touches a child's data.
_LOCK_HEAD = text(
    "INSERT INTO audit_chain_heads (chain, seq, hash, checkpointed_seq) "
    "VALUES (:chain, 0, :genesis, 0) "
    "ON CONFLICT (chain) DO UPDATE SET seq = audit_chain_heads.seq "
    "RETURNING seq, hash").bindparams(genesis=GENESIS_HASH)
_MAKE_HEADS = text(
    "INSERT INTO audit_chain_heads (chain, seq, hash, checkpointed_seq) "
    "VALUES (:chain, 0, :genesis, 0) ON CONFLICT (chain) DO NOTHING"
).bindparams(genesis=GENESIS_HASH)
_INSERT_EVENTS = AuditEvent.__table__.insert()
_HEADS = AuditChainHead.__table__.c
_MOVE_HEAD = (update(AuditChainHead.__table__).where(_HEADS.chain == bindparam("head_chain"))
              .values(seq=bindparam("head_seq"), hash=bindparam("head_hash")))
_SWAP_HEAD = (update(AuditChainHead.__table__)
              .where(_HEADS.chain == bindparam("head_chain"), _HEADS.seq == bindparam("was_seq"),
                     _HEADS.hash == bindparam("was_hash"))
              .values(seq=bindparam("head_seq"), hash=bindparam("head_hash")))

# The head this process last wrote, per chain. A child's next event usually comes from the
# process that wrote the one before, so its head is usually known here: then one
# conditional UPDATE checks it, moves it and takes the lock. If another process (or a
# rolled-back transaction of ours) moved it meanwhile, that UPDATE matches nothing and the
# head is locked and read as above. A wrong guess costs a statement, never correctness.
_known_heads: dict[str, tuple[int, str]] = {}
_KNOWN_HEADS_MAX = 10_000


def record(ctx: Context, action: str, *, child_id: uuid.UUID | None = None,
           object_type: str | None = None, object_id: uuid.UUID | str | None = None) -> None:
    record_many(ctx, [(action, child_id, object_type, object_id)])


def record_many(ctx: Context, events: Iterable[tuple[str, uuid.UUID | None, str | None,
                                                     uuid.UUID | str | None]]) -> None:
    """Several events of one request, `(action, child_id, object_type, object_id)` each,
    appended to their children's chains in the order given, in the caller's transaction
    (the caller commits; record last, just before commit, to hold the head locks briefly)."""
    by_chain: dict[str, list[tuple]] = {}
    for event in events:
        by_chain.setdefault(chain_of(event[1]), []).append(event)
    if not by_chain:
        return
    db, actor, now = ctx.db, ctx.actor, utcnow()
    common = {"occurred_at": now, "actor_type": actor.kind, "actor_id": actor.id,
              "actor_role": actor.role, "client_ip": ctx.client_ip,
              "user_agent": (ctx.user_agent or "")[:300] or None,
              "request_id": ctx.request_id}
    rows: list[dict[str, Any]] = []
    for chain in sorted(by_chain):
        known = _known_heads.get(chain)
        if known is not None:
            built = _chained(chain, known, by_chain[chain], common)
            moved = db.exec(_SWAP_HEAD, params={
                "head_chain": chain, "was_seq": known[0], "was_hash": known[1],
                "head_seq": built[-1]["seq"], "head_hash": built[-1]["hash"]}).rowcount
        if known is None or not moved:
            head = tuple(db.exec(_LOCK_HEAD, params={"chain": chain}).one())
            built = _chained(chain, head, by_chain[chain], common)
            db.exec(_MOVE_HEAD, params={"head_chain": chain, "head_seq": built[-1]["seq"],
                                        "head_hash": built[-1]["hash"]})
        if len(_known_heads) >= _KNOWN_HEADS_MAX:
            _known_heads.clear()
        _known_heads[chain] = (built[-1]["seq"], built[-1]["hash"])
        rows += built
    db.exec(_INSERT_EVENTS, params=rows)


def _chained(chain: str, head: tuple[int, str], events: list[tuple],
             common: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of `events`, appended after `head` (seq, hash) on `chain`."""
    seq, prev = head
    rows = []
    for action, child_id, object_type, object_id in events:
        seq += 1
        row = {**common, "chain": chain, "seq": seq, "action": action, "child_id": child_id,
               "object_type": object_type,
               "object_id": str(object_id) if object_id is not None else None,
               "prev_hash": prev}
        row["hash"] = prev = event_hash(row)
        rows.append(row)
    return rows


# --- checkpoints -----------------------------------------------------------------------

def signing_key(settings: Settings) -> Ed25519PrivateKey:
    raw = settings.resolved_audit_signing_key()
    try:
        seed = base64.b64decode(raw, validate=True)
        return Ed25519PrivateKey.from_private_bytes(seed)
    except ValueError:
        raise ValueError("CHILDVOICE_AUDIT_SIGNING_KEY is not base64 of a 32-byte Ed25519 "
                         "private key (`childvoice audit new-key` makes one)") from None


def new_signing_key() -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat
    key = Ed25519PrivateKey.generate()
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                              NoEncryption())).decode()


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(public_key: str) -> str:
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def _digest(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def write_checkpoint(engine: Engine, settings: Settings) -> AuditCheckpoint | None:
    """Sign the heads that moved since the last checkpoint (all of them the first time);
    None when none moved. Two writers at once: the checkpoint number is unique, so one
    of them fails and leaves nothing."""
    key = signing_key(settings)
    public = public_key_text(key)
    with new_session(engine) as db:
        last = db.exec(select(AuditCheckpoint).order_by(AuditCheckpoint.number.desc())
                       .limit(1)).first()
        moved = list(db.exec(select(AuditChainHead)
                             .where(AuditChainHead.seq > AuditChainHead.checkpointed_seq)
                             .order_by(AuditChainHead.chain)))
        if not moved and last is not None:
            return None
        now = utcnow()
        payload = json.dumps({
            "version": 1, "number": last.number + 1 if last else 1,
            "previous": _digest(last.payload) if last else GENESIS_HASH,
            "created_at": now.isoformat(), "key_id": key_id(public),
            "heads": [[h.chain, h.seq, h.hash] for h in moved]},
            separators=(",", ":"), sort_keys=True)
        checkpoint = AuditCheckpoint(
            number=last.number + 1 if last else 1, created_at=now, key_id=key_id(public),
            payload=payload,
            signature=base64.b64encode(key.sign(payload.encode())).decode())
        db.add(checkpoint)
        for head in moved:
            db.exec(update(AuditChainHead).where(AuditChainHead.chain == head.chain)
                    .values(checkpointed_seq=head.seq))
        db.commit()
        return checkpoint


def export_line(checkpoint: AuditCheckpoint, public_key: str) -> str:
    """One checkpoint as a line of JSON: everything needed to check it without the
    database (the payload is the exact signed text)."""
    return json.dumps({"number": checkpoint.number, "payload": checkpoint.payload,
                       "signature": checkpoint.signature, "public_key": public_key},
                      separators=(",", ":"))


def export_checkpoints(engine: Engine, settings: Settings,
                       after: int = 0) -> Iterator[str]:
    public = public_key_text(signing_key(settings))
    with new_session(engine) as db:
        for checkpoint in db.exec(select(AuditCheckpoint)
                                  .where(AuditCheckpoint.number > after)
                                  .order_by(AuditCheckpoint.number)):
            yield export_line(checkpoint, public)


@dataclass
class _Signed:
    number: int
    payload: str
    signature: str
    source: str  # "the database" or the exported file's name


def parse_exported(lines: Iterable[str], source: str) -> list[_Signed]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            out.append(_Signed(int(item["number"]), item["payload"], item["signature"],
                               source))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{source}, line {n}: not an exported checkpoint") from None
    return out


def record_per_child(ctx: Context, action: str, child_ids: list[uuid.UUID]) -> None:
    """One event per child for a read that spans many children (a team report): each on
    its child's own chain, in a fixed number of statements whatever the number of
    children (make the missing heads, lock and read them all, move them, insert)."""
    chains = sorted({chain_of(child_id) for child_id in child_ids})
    if not chains:
        return
    db, actor, now = ctx.db, ctx.actor, utcnow()
    db.exec(_MAKE_HEADS, params=[{"chain": chain} for chain in chains])
    heads = {chain: (seq, hash_) for chain, seq, hash_ in db.exec(
        sa_select(_HEADS.chain, _HEADS.seq, _HEADS.hash).where(_HEADS.chain.in_(chains))
        .order_by(_HEADS.chain).with_for_update())}
    common = {"occurred_at": now, "actor_type": actor.kind, "actor_id": actor.id,
              "actor_role": actor.role, "client_ip": ctx.client_ip,
              "user_agent": (ctx.user_agent or "")[:300] or None,
              "request_id": ctx.request_id}
    rows: list[dict[str, Any]] = []
    moves = []
    for chain in chains:
        child_id = uuid.UUID(chain)
        built = _chained(chain, heads[chain], [(action, child_id, "child", child_id)], common)
        moves.append({"head_chain": chain, "head_seq": built[-1]["seq"],
                      "head_hash": built[-1]["hash"]})
        _known_heads.pop(chain, None)
        rows += built
    db.exec(_MOVE_HEAD, params=moves)
    db.exec(_INSERT_EVENTS, params=rows)


# --- verification ----------------------------------------------------------------------

@dataclass
class ChainReport:
    ok: bool
    checked: int
    head_id: int | None = None
    head_hash: str | None = None
    broken_at: int | None = None       # the id of the first event that breaks a chain
    problem: str | None = None         # changed | deleted | reordered | truncated | head |
    detail: str | None = None          # checkpoint | anchor
    chains: int = 0
    checkpoints: int = 0
    chain: str | None = None           # the chain the problem is in, when it is one chain
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)


def _fail(report: ChainReport, problem: str, detail: str, *, at: int | None = None,
          chain: str | None = None) -> ChainReport:
    report.ok, report.problem, report.detail = False, problem, detail
    report.broken_at, report.chain = at, chain
    return report


def _check_checkpoints(report: ChainReport, signed: list[_Signed],
                       public: Ed25519PublicKey) -> dict[tuple[str, int], tuple[str, int]]:
    """Signatures and links of the checkpoints, in number order; what they say each chain
    held: {(chain, seq): (hash, checkpoint number)}."""
    expected: dict[tuple[str, int], tuple[str, int]] = {}
    previous = GENESIS_HASH
    for n, item in enumerate(sorted(signed, key=lambda s: s.number), 1):
        try:
            public.verify(base64.b64decode(item.signature), item.payload.encode())
        except (InvalidSignature, ValueError):
            _fail(report, "checkpoint", f"checkpoint {item.number} in {item.source} is not "
                  "signed by this service's audit key: it was changed, or made elsewhere")
            return expected
        body = json.loads(item.payload)
        if body["number"] != n or item.number != n:
            _fail(report, "checkpoint", f"checkpoint {n} is missing from {item.source} "
                  f"(the next one there is {item.number}): checkpoints were removed")
            return expected
        if body["previous"] != previous:
            _fail(report, "checkpoint", f"checkpoint {n} in {item.source} does not follow "
                  "the checkpoint before it: checkpoints were replaced")
            return expected
        previous = _digest(item.payload)
        for chain, seq, head_hash in body["heads"]:
            expected[(chain, seq)] = (head_hash, n)
    report.checkpoints = len(signed)
    return expected


def verify(engine: Engine, anchor: tuple[int, str] | None = None, *,
           settings: Settings | None = None, exported: list[_Signed] | None = None,
           batch: int = 2000) -> ChainReport:
    """Check every chain: each event's own hash, its link to the one before and its place;
    then that each chain's head row, and every head a checkpoint signed (those in the
    database and, when given, the council's exported copy), is still there."""
    report = ChainReport(True, 0)
    public = signing_key(settings).public_key() if settings is not None else None
    with new_session(engine) as db:
        expected: dict[tuple[str, int], tuple[str, int]] = {}
        if public is not None:
            stored = [_Signed(c.number, c.payload, c.signature, "the database")
                      for c in db.exec(select(AuditCheckpoint))]
            for signed in (stored, exported or []):
                found = _check_checkpoints(report, signed, public)
                if not report.ok:
                    return report
                expected.update(found)
            if exported is not None and len(exported) > len(stored):
                return _fail(report, "checkpoint", f"{len(exported) - len(stored)} of the "
                             "exported checkpoints are missing from the database: "
                             "checkpoints were removed")
            report.checkpoints = max(len(stored), len(exported or []))
        state: dict[str, tuple[int, str]] = {}   # chain -> (seq, hash) of its newest event
        last: AuditEvent | None = None
        after = 0
        while True:
            rows = list(db.exec(select(AuditEvent).where(AuditEvent.id > after)
                                .order_by(AuditEvent.id).limit(batch)))
            if not rows:
                break
            for event in rows:
                if event_hash(event) != event.hash:
                    return _fail(report, "changed", f"event {event.id} was changed: its "
                                 "contents no longer match its hash", at=event.id,
                                 chain=event.chain)
                seq, prev = state.get(event.chain, (0, GENESIS_HASH))
                legacy = event.chain == LEGACY_CHAIN
                if event.prev_hash != prev or (not legacy and event.seq != seq + 1):
                    return _link_broken(db, report, event, prev)
                known = expected.pop((event.chain, event.seq), None)
                if known is not None and known[0] != event.hash:
                    return _fail(report, "checkpoint", f"event {event.id} is not the event "
                                 f"checkpoint {known[1]} signed at that place: the chain "
                                 "was rebuilt", at=event.id, chain=event.chain)
                state[event.chain] = (event.seq, event.hash)
                last = event
                report.checked += 1
            after = rows[-1].id
        report.chains = len(state)
        report.heads = state
        if last is not None:
            report.head_id, report.head_hash = last.id, last.hash
        _check_heads(db, report, state)
        if report.ok and expected:
            (chain, seq), (_, number) = min(expected.items(), key=lambda kv: kv[1][1])
            have = state.get(chain, (0, ""))[0]
            _fail(report, "truncated", f"chain {chain} ends at event {have} of it, but "
                  f"checkpoint {number} signed it with {seq}: events were cut off its end",
                  chain=chain)
        if report.ok and anchor is not None:
            anchor_id, anchor_hash = anchor
            found = db.get(AuditEvent, anchor_id)
            if found is None or found.hash != anchor_hash:
                _fail(report, "anchor", f"event {anchor_id}, recorded earlier as the head, "
                      "is missing or different: events were removed from the end or the "
                      "chain was rebuilt", at=anchor_id)
    return report


def _check_heads(db: Session, report: ChainReport, state: dict[str, tuple[int, str]]) -> None:
    heads = {chain: (seq, head_hash) for chain, seq, head_hash in db.exec(
        sa_select(AuditChainHead.chain, AuditChainHead.seq, AuditChainHead.hash))}
    for chain in sorted(set(heads) | set(state)):
        have, head = state.get(chain), heads.get(chain)
        if head is None:
            _fail(report, "head", f"chain {chain} has no head row: it was deleted",
                  chain=chain)
            return
        if have is None or have[0] < head[0]:
            _fail(report, "truncated", f"chain {chain} ends at event "
                  f"{have[0] if have else 0} of it, but its head says {head[0]}: events "
                  "were cut off its end", chain=chain)
            return
        if have != head:
            _fail(report, "head", f"chain {chain}'s head row does not name its newest "
                  "event: the head or the chain was rewritten", chain=chain)
            return


def _link_broken(db: Session, report: ChainReport, event: AuditEvent,
                 expected_prev: str) -> ChainReport:
    before = db.exec(select(AuditEvent.id).where(AuditEvent.hash == expected_prev)).first() \
        if expected_prev != GENESIS_HASH else None
    where = f"event {before}" if before is not None else "the start of its chain"
    named = db.exec(select(AuditEvent.id).where(AuditEvent.hash == event.prev_hash)).first() \
        if event.prev_hash != GENESIS_HASH else None
    if named is not None or event.prev_hash == GENESIS_HASH:
        target = f"event {named}" if named is not None else "the start of its chain"
        return _fail(report, "reordered", f"event {event.id} should follow {target} but "
                     f"comes after {where}: events were reordered", at=event.id,
                     chain=event.chain)
    return _fail(report, "deleted", f"the event that came before event {event.id} (after "
                 f"{where}) is missing: it was deleted, or changed and re-hashed",
                 at=event.id, chain=event.chain)


# --- the trail of one child, for their team manager -----------------------------------

def _cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(str(event_id).encode()).decode()


def _uncursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError:
        raise Invalid("cursor is not one this server gave out; start again without it",
                      field=["query", "cursor"]) from None


def child_trail(ctx: Context, child_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    """Who read or changed this child's record, and when: newest first."""
    child = access.child_for(ctx, child_id, Need.oversee)
    stmt = select(AuditEvent, User.full_name).join(
        User, User.id == AuditEvent.actor_id, isouter=True).where(AuditEvent.child_id == child.id)
    if cursor:
        stmt = stmt.where(AuditEvent.id < _uncursor(cursor))
    rows = list(ctx.db.exec(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    next_cursor = _cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    items = [{**event.model_dump(exclude={"prev_hash", "hash", "chain", "seq"}),
              "actor_name": name if event.actor_type == "staff" else None}
             for event, name in rows[:limit]]
    record(ctx, "audit.read", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return {"items": items, "next_cursor": next_cursor}
