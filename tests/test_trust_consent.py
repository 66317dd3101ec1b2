"""Consent that follows the child: bases, scopes, dissent, withdrawal, reviews."""

from datetime import date, datetime, timedelta, timezone

from app.core.clock import clock
from tests.support import World, assert_problem, consent_body, symbols_entry


def _child(world: World, dob: date, name: str = "Sky") -> str:
    r = world.worker.post("/children", json={"preferred_name": name,
                                             "date_of_birth": dob.isoformat(),
                                             "team_id": world.team_id})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _years_ago(years: int, days: int = 0) -> date:
    today = datetime.now(timezone.utc).date()
    if (today.month, today.day) == (2, 29):
        today -= timedelta(days=1)
    return today.replace(year=today.year - years) - timedelta(days=days)


def test_each_basis_is_recorded_with_what_it_needs(world: World) -> None:
    child_id = _child(world, _years_ago(17))
    path = f"/children/{child_id}/consents"

    # The child's own consent.
    r = world.worker.post(path, json=consent_body(given_by="child", giver_name=None,
                                                  relationship=None, method="symbols"))
    assert r.status_code == 201, r.text
    assert r.json()["given_by"] == "child" and r.json()["permits"] is True

    # A parent or carer: name and relationship are both needed.
    assert_problem(world.worker.post(path, json=consent_body(relationship=None)), 422)
    r = world.worker.post(path, json=consent_body(giver_name="A. Carer",
                                                  relationship="foster carer"))
    assert r.status_code == 201 and r.json()["relationship"] == "foster carer"

    # Best interests (Mental Capacity Act): who decided and why.
    body = consent_body(given_by="best_interests", giver_name=None, relationship=None,
                        decision_maker="Team manager, best-interests meeting",
                        decision_reason="Lacks capacity to decide about photos; "
                                        "photos help Sky show what matters.")
    r = world.worker.post(path, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["decision_maker"].startswith("Team manager")
    missing = dict(body, decision_reason=None)
    assert_problem(world.worker.post(path, json=missing), 422)


def test_best_interests_only_for_16_or_more(world: World) -> None:
    body = consent_body(given_by="best_interests", giver_name=None, relationship=None,
                        decision_maker="Best-interests meeting", decision_reason="Because.")
    problem = assert_problem(world.worker.post(f"/children/{world.child_id}/consents",
                                               json=body), 422)
    assert problem["errors"][0]["loc"] == ["body", "given_by"]


def test_each_scope_gates_its_own_use(world: World) -> None:
    child_id = _child(world, _years_ago(9))
    r = world.worker.post(f"/children/{child_id}/consents",
                          json=consent_body(scopes=["plan", "share_professionals"]))
    assert r.status_code == 201
    effective = world.worker.get(f"/children/{child_id}/consents/effective").json()
    allowed = {s["scope"]: s["capture_allowed"] for s in effective["scopes"]}
    assert allowed == {"symbols": False, "photo": False, "audio": False, "plan": True,
                       "share_family": False, "share_professionals": True}

    # No 'symbols' scope: the tablet cannot capture symbols.
    session = world.open_session(child_id=child_id)
    problem = assert_problem(world.capture(session).post(
        f"/sessions/{session['id']}/entries", json=symbols_entry(world.board, ["happy"])), 403)
    assert problem["missing_scope"] == "symbols"

    r = world.worker.post(f"/children/{child_id}/consents",
                          json=consent_body(scopes=["symbols", "photo", "audio",
                                                    "share_family"]))
    effective = world.worker.get(f"/children/{child_id}/consents/effective").json()
    assert all(s["capture_allowed"] for s in effective["scopes"])
    r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, ["happy"]))
    assert r.status_code == 201, r.text
    assert r.json()["consent_id"] == world.worker.get(
        f"/children/{child_id}/consents").json()["items"][1]["id"]


def test_a_childs_dissent_is_recorded_and_respected(world: World) -> None:
    child_id = _child(world, _years_ago(8))
    r = world.worker.post(f"/children/{child_id}/consents", json=consent_body(
        child_assent="dissented", assent_signs="Pushed the tablet away twice."))
    assert r.status_code == 201, r.text
    consent = r.json()
    assert consent["child_assent"] == "dissented"
    assert consent["assent_signs"] == "Pushed the tablet away twice."
    assert consent["status"] == "active" and consent["permits"] is False

    session = world.open_session(child_id=child_id)
    assert_problem(world.capture(session).post(
        f"/sessions/{session['id']}/entries", json=symbols_entry(world.board, ["happy"])), 403)


def test_withdrawal_takes_entries_out_of_the_plan_not_out_of_the_record(world: World) -> None:
    session = world.open_session()
    r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, ["calm"]))
    entry = r.json()
    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert [e["id"] for e in plan["latest_voice"]] == [entry["id"]]
    world.worker.put(f"/children/{world.child_id}/plan/sections/my_wishes_and_feelings",
                     json={"text": "You feel calm.", "pinned_entry_ids": [entry["id"]]})
    assert world.worker.post(f"/children/{world.child_id}/plan/versions").status_code == 201

    r = world.worker.post(f"/consents/{world.consent['id']}/withdraw",
                          json={"reason": "Robin said no more."})
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"

    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert plan["latest_voice"] == []
    assert all(s["pinned_entries"] == [] for s in plan["sections"])
    v1 = world.worker.get(f"/children/{world.child_id}/plan/versions/1").json()["plan"]
    assert v1["latest_voice"] == [] and all(s["pinned_entries"] == [] for s in v1["sections"])
    # The statutory record keeps what Robin said, and which consent it was made under.
    items = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert [(e["id"], e["consent_id"]) for e in items] == [(entry["id"], world.consent["id"])]
    assert world.worker.get(f"/entries/{entry['id']}").status_code == 200
    # And a new capture is refused.
    assert_problem(world.capture(session).post(
        f"/sessions/{session['id']}/entries", json=symbols_entry(world.board, ["sad"])), 403)


def _due(api, child_id: str) -> dict[str, list[str]]:  # noqa: ANN001
    r = api.get("/consents/reviews-due")
    assert r.status_code == 200, r.text
    return {i["consent_id"]: [x["reason"] for x in i["reasons"]] for i in r.json()["items"]
            if i["child_id"] == child_id}


def test_review_due_at_expiry(world: World) -> None:
    now = datetime.now(timezone.utc)
    r = world.worker.post(f"/children/{world.child_id}/consents", json=consent_body(
        valid_until=(now + timedelta(days=30)).isoformat()))
    expiring = r.json()["id"]
    assert _due(world.worker, world.child_id) == {}

    clock.set(now + timedelta(days=31))
    world.sign_in_again()
    assert _due(world.worker, world.child_id) == {expiring: ["expired"]}
    assert _due(world.manager, world.child_id) == {expiring: ["expired"]}
    assert _due(world.other_manager, world.child_id) == {}
    assert world.worker.get(f"/children/{world.child_id}/consents/effective").json()

    r = world.worker.post(f"/consents/{expiring}/review", json={"note": "Lapsed; renewed."})
    assert r.status_code == 200 and r.json()["reviewed_at"]
    assert _due(world.worker, world.child_id) == {}


def test_review_due_when_the_child_turns_16_on_a_parents_consent(world: World) -> None:
    child_id = _child(world, _years_ago(16, days=-10))  # 16 in ten days
    parent = world.worker.post(f"/children/{child_id}/consents", json=consent_body()).json()
    own = world.worker.post(f"/children/{child_id}/consents", json=consent_body(
        given_by="child", giver_name=None, relationship=None)).json()
    assert _due(world.worker, child_id) == {}

    clock.set(datetime.now(timezone.utc) + timedelta(days=11))
    world.sign_in_again()
    due = _due(world.worker, child_id)
    assert due == {parent["id"]: ["turned_16_parent_consent"]}
    assert own["id"] not in due


def test_review_due_when_the_worker_changes(world: World) -> None:
    assert _due(world.worker, world.child_id) == {}
    clock.set(datetime.now(timezone.utc) + timedelta(minutes=1))
    colleague_id = world.colleague.user_id
    r = world.manager.post(f"/children/{world.child_id}/allocations",
                           json={"user_id": colleague_id})
    assert r.status_code == 201, r.text

    assert _due(world.colleague, world.child_id) == {world.consent["id"]: ["worker_changed"]}
    assert _due(world.manager, world.child_id) == {world.consent["id"]: ["worker_changed"]}
    # The previous worker no longer holds the child, so it is not on their list.
    assert _due(world.worker, world.child_id) == {}
    assert_problem(world.admin.get("/consents/reviews-due"), 403)

    # Only the worker who now holds the child can review it.
    assert_problem(world.worker.post(f"/consents/{world.consent['id']}/review",
                                     json={"note": "x"}), 404)
    r = world.colleague.post(f"/consents/{world.consent['id']}/review",
                             json={"note": "Met Robin and dad; they still agree."})
    assert r.status_code == 200, r.text
    assert _due(world.colleague, world.child_id) == {}
