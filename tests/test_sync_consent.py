"""Consent recorded offline: a `consent` sync item, checked by the rules of
POST /children/{id}/consents, stored exactly once, applied before the entries of its batch
that need it."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import httpx2
import pytest

from tests.support import World, consent_body
from tests.sync_support import Tablet, enroll


@pytest.fixture
def tablet(world: World) -> Tablet:
    r = world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "redo"})
    assert r.status_code == 200, r.text
    return Tablet(world.worker, enroll(world.worker))


def _visit(world: World, **consent) -> list[dict]:  # noqa: ANN003
    """A visit without signal: the parent's consent first, then a session and two entries."""
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    body = {k: v for k, v in consent_body(["symbols", "plan"]).items() if k != "valid_from"}
    consent_item = {"type": "consent", "client_id": str(uuid.uuid4()),
                    "child_id": world.child_id, "given_at": t0.isoformat()} | body | consent
    session = {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
               "setting": "home", "board_ids": [world.board["id"]],
               "started_at": (t0 + timedelta(minutes=1)).isoformat()}
    entries = [{"type": "entry", "session_client_id": session["client_id"], "kind": "symbols",
                "client_id": str(uuid.uuid4()), "source": "child_direct",
                "captured_at": (t0 + timedelta(minutes=2 + i)).isoformat(),
                "board_id": world.board["id"], "board_version": world.board["version"],
                "button_ids": [button]} for i, button in enumerate(["happy", "calm"])]
    return [consent_item, session, *entries]


def _consents(world: World) -> list[dict]:
    r = world.worker.get(f"/children/{world.child_id}/consents")
    assert r.status_code == 200, r.text
    return [c for c in r.json()["items"] if c["id"] != world.consent["id"]]


def test_a_consent_recorded_offline_covers_the_entries_after_it(world: World,
                                                                tablet: Tablet) -> None:
    items = _visit(world)
    # Sent in any order: the consent is applied first.
    r = tablet.send(list(reversed(items)))
    assert r.status_code == 200, r.text
    results = list(reversed(r.json()["results"]))
    assert [x["status"] for x in results] == ["created"] * 4, results
    consent = results[0]["consent"]
    assert consent["status"] == "active" and consent["scopes"] == ["plan", "symbols"]
    assert consent["recorded_by"] == world.worker.user_id
    assert consent["giver_name"] == "Test Parent"
    assert abs(datetime.fromisoformat(consent["valid_from"]) -
               datetime.fromisoformat(items[0]["given_at"])) < timedelta(seconds=5)
    assert {x["entry"]["consent_id"] for x in results[2:]} == {consent["id"]}
    assert [c["id"] for c in _consents(world)] == [consent["id"]]
    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert len(plan["latest_voice"]) == 2
    trail = world.manager.get(f"/children/{world.child_id}/audit",
                              params={"limit": 100}).json()["items"]
    assert any(e["action"] == "consent.create" and e["object_id"] == consent["id"]
               for e in trail)

    # Resent: stored once; the same client_id with other scopes is someone's mistake.
    again = tablet.send(items).json()["results"]
    assert [x["status"] for x in again] == ["duplicate"] * 4
    assert again[0]["consent"]["id"] == consent["id"]
    other = tablet.send([items[0] | {"scopes": ["photo"]}]).json()["results"][0]
    assert other["status"] == "rejected" and other["problem"]["status"] == 409
    assert other["problem"]["type"].endswith("client-id-reused")
    assert len(_consents(world)) == 1
    assert items[0]["client_id"] in tablet.held()


def test_a_consent_item_follows_the_online_rules(world: World, tablet: Tablet) -> None:
    no_giver = _visit(world, giver_name=None)
    r = tablet.send(no_giver).json()["results"]
    assert r[0]["status"] == "rejected" and r[0]["problem"]["status"] == 422
    assert r[0]["problem"]["errors"][0]["loc"][:3] == ["body", "items", 0]
    assert r[2]["problem"]["type"].endswith("consent-required")   # its entries: no consent
    # A best-interests decision is for a young person of 16 or more (Robin is younger).
    best = _visit(world, given_by="best_interests", giver_name=None, relationship=None,
                  decision_maker="Team manager", decision_reason="Cannot decide")
    result = tablet.send(best[:1]).json()["results"][0]
    assert result["status"] == "rejected" and "16" in result["problem"]["detail"]
    # The child's dissent is recorded, and it allows nothing.
    dissent = _visit(world, child_assent="dissented", assent_signs="Pushed the tablet away")
    results = tablet.send(dissent).json()["results"]
    assert results[0]["status"] == "created" and results[0]["consent"]["permits"] is False
    assert results[2]["problem"]["type"].endswith("consent-required")
    # Another worker's child is not visible to this worker.
    stranger = Tablet(world.other_worker, enroll(world.other_worker))
    result = stranger.send(_visit(world)[:1]).json()["results"][0]
    assert result["status"] == "rejected" and result["problem"]["status"] == 404
    # Given in the future by the tablet's clock: the clock, not the consent, is wrong.
    ahead = _visit(world, given_at=(datetime.now(timezone.utc) + timedelta(hours=3))
                   .isoformat())
    result = tablet.send(ahead[:1]).json()["results"][0]
    assert result["problem"]["type"].endswith("clock-ahead")
    assert [c["permits"] for c in _consents(world)] == [False]


def test_concurrent_copies_of_a_consent_store_one(world: World, tablet: Tablet, app) -> None:  # noqa: ANN001
    items = _visit(world)
    body = tablet.body(items)
    headers = tablet.headers | {"Authorization": f"Bearer {world.worker.token}"}

    async def run() -> list:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver",
                                      timeout=60) as client:
            return await asyncio.gather(*[client.post("/api/v1/sync", json=body,
                                                      headers=headers) for _ in range(5)])

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    statuses = sorted(r.json()["results"][0]["status"] for r in responses)
    assert statuses == ["created"] + ["duplicate"] * 4
    assert len({r.json()["results"][0]["consent"]["id"] for r in responses}) == 1
    assert len(_consents(world)) == 1
