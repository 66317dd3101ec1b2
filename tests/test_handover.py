"""The handover and the timeline through the HTTP API: what a new worker reads, with only
what the rules let them see today; and a child's answers by visit and by topic."""

from __future__ import annotations

import pytest

from tests.reports_support import Visits
from tests.support import World, assert_problem


@pytest.fixture
def history(world: World) -> dict:
    """Robin's record: two visits ten days apart (school moves from like to don't like on
    a mat), an adult-focused visit, a safeguarding symbol, a plan wish, a change of worker."""
    v = Visits(world)
    robin = world.child_id
    r = world.worker.patch(f"/children/{robin}", json={"communication": {
        "methods": ["makaton", "symbols"], "yes_signal": "Smiles and taps the card",
        "no_signal": "Turns head away", "happy_signs": "Hums", "upset_signs": "Covers ears"}})
    assert r.status_code == 200, r.text
    v.at(0)
    first = v.visit(robin, purpose="school and weekends", setting="school")
    liked = v.mat(first, [("school", "like"), ("park", "like")])
    v.symbols(first, ["happy"])
    v.end(first)
    v.at(10)
    second = v.visit(robin, purpose="how school is going")
    v.mat(second, [("school", "don't like"), ("park", "like")])
    hurt = v.symbols(second, ["hurt"])
    v.end(second)
    third = v.visit(robin, purpose="talk with foster carer")
    v.observation(third, "Quiet, held the park card for a long time.")
    v.end(third)
    r = world.worker.put(f"/children/{robin}/plan/sections/my_wishes_and_feelings",
                         json={"text": "I want to go to the park on Saturdays.",
                               "pinned_entry_ids": [liked["id"]]})
    assert r.status_code == 200, r.text
    r = world.manager.post(f"/children/{robin}/allocations",
                           json={"user_id": world.colleague.user_id})
    assert r.status_code == 201, r.text
    return {"visits": v, "first": first, "second": second, "third": third, "hurt": hurt,
            "liked": liked}


def test_handover_tells_a_new_worker_what_they_need(world: World, history: dict) -> None:
    r = world.colleague.get(f"/children/{world.child_id}/handover")
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["communication"]["yes_signal"] == "Smiles and taps the card"
    assert h["communication"]["upset_signs"] == "Covers ears"
    assert h["allocated_worker_name"] == "Colleague"
    assert [a["worker_name"] for a in h["allocations"]] == ["Worker", "Colleague"]
    assert h["allocations"][0]["ended_at"] is not None

    now = {a["topic"]: a["answer"] for a in h["matters_now"]}
    assert now["school"] == "don't like" and now["park"] == "like"
    assert now["feelings"] == "hurt" and now["mood"].startswith("Quiet")

    changes = {c["topic"]: c for c in h["changed_lately"]}
    assert set(changes) >= {"school", "feelings"} and "park" not in changes
    school = changes["school"]
    assert (school["before"]["answer"], school["after"]["answer"]) == ("like", "don't like")
    assert school["before"]["session_id"] == history["first"]["id"]
    assert school["after"]["session_id"] == history["second"]["id"]
    assert school["before"]["captured_at"] < school["after"]["captured_at"]

    wishes = h["standing_wishes"]
    assert wishes["wishes_text"] == "I want to go to the park on Saturdays."
    assert [p["entry"]["id"] for p in wishes["pinned"]] == [history["liked"]["id"]]

    assert h["alerts_shown"] and [a["entry_id"] for a in h["open_alerts"]] == \
        [history["hurt"]["id"]]
    assert [c["id"] for c in h["consents"]] == [world.consent["id"]]
    assert [r["reasons"][0]["reason"] for r in h["reviews_due"]] == ["worker_changed"]

    visits = h["last_visits"]
    assert [v["purpose"] for v in visits] == ["talk with foster carer", "how school is going",
                                              "school and weekends"]
    assert visits[0]["adult_focused"] and not visits[1]["adult_focused"]
    assert visits[0]["worker_name"] == "Worker"
    assert [e["kind"] for e in visits[1]["entries"]] == ["mat", "symbols"]


def test_handover_never_shows_more_than_the_rules_allow(world: World, history: dict) -> None:
    # Consent withdrawn: the plan no longer shows the pinned mat; entries stay in the record
    # as the entries list shows them.
    r = world.colleague.post(f"/consents/{world.consent['id']}/withdraw",
                             json={"reason": "Child said no at the review."})
    assert r.status_code == 200, r.text
    h = world.manager.get(f"/children/{world.child_id}/handover").json()
    assert h["standing_wishes"]["pinned"] == []
    assert h["consents"] == []
    listed = world.manager.get(f"/children/{world.child_id}/entries").json()["items"]
    shown = [e["id"] for v in h["last_visits"] for e in v["entries"]]
    assert set(shown) <= {e["id"] for e in listed}


def test_handover_is_access_checked_and_audited(world: World, history: dict) -> None:
    path = f"/children/{world.child_id}/handover"
    assert_problem(world.worker.get(path), 404)          # no longer holds Robin
    assert_problem(world.other_manager.get(path), 404)
    assert_problem(world.admin.get(path), 404)
    assert_problem(world.anonymous.get(path), 401)
    assert_problem(world.colleague.get(f"/children/{world.other_team_id}/handover"), 404)
    assert world.manager.get(path).status_code == 200
    session = world.open_session(world.colleague)
    assert_problem(world.capture(session).get(path), 403)   # child mode reads no record
    trail = world.manager.get(f"/children/{world.child_id}/audit").json()["items"]
    assert any(e["action"] == "handover.read" for e in trail)


def test_handover_of_a_child_with_nothing_yet(world: World) -> None:
    h = world.worker.get(f"/children/{world.child_id}/handover").json()
    assert h["matters_now"] == [] and h["changed_lately"] == [] and h["last_visits"] == []
    page = world.worker.get(f"/children/{world.child_id}/handover.html")
    assert page.status_code == 200 and "No visits yet." in page.text


def test_timeline_groups_by_visit_and_shows_each_topic_in_order(world: World,
                                                                history: dict) -> None:
    r = world.colleague.get(f"/children/{world.child_id}/timeline")
    assert r.status_code == 200, r.text
    t = r.json()
    assert [v["purpose"] for v in t["visits"]] == ["talk with foster carer",
                                                   "how school is going", "school and weekends"]
    assert t["visits"][2]["setting"] == "school" and t["visits"][2]["worker_name"] == "Worker"
    topics = {trail["topic"]: trail for trail in t["topics"]}
    assert [a["answer"] for a in topics["school"]["answers"]] == ["like", "don't like"]
    assert topics["school"]["changed"] and not topics["park"]["changed"]

    only_school = world.colleague.get(f"/children/{world.child_id}/timeline",
                                      params={"topic": "places"}).json()
    assert len(only_school["visits"]) == 2
    assert all(e["topic"] == "places" for v in only_school["visits"] for e in v["entries"])

    adults = world.colleague.get(f"/children/{world.child_id}/timeline",
                                 params={"adult_focused": "true"}).json()
    assert [v["purpose"] for v in adults["visits"]] == ["talk with foster carer"]

    since = (history["visits"].start.isoformat().replace("+00:00", "Z"))
    page1 = world.colleague.get(f"/children/{world.child_id}/timeline",
                                params={"limit": 2, "since": since}).json()
    assert len(page1["visits"]) == 2 and page1["next_cursor"]
    page2 = world.colleague.get(f"/children/{world.child_id}/timeline",
                                params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [v["purpose"] for v in page2["visits"]] == ["school and weekends"]
    assert page2["next_cursor"] is None


def test_timeline_is_access_checked_and_says_what_to_fix(world: World, history: dict) -> None:
    path = f"/children/{world.child_id}/timeline"
    assert_problem(world.other_worker.get(path), 404)
    assert_problem(world.worker.get(path, params={"source": "someone"}), 422)
    assert_problem(world.colleague.get(path, params={"since": "2026-05-01T00:00:00Z",
                                                     "until": "2026-04-01T00:00:00Z"}), 422)
    assert_problem(world.colleague.get(path, params={"cursor": "nonsense"}), 422)
    world.colleague.get(path)
    trail = world.manager.get(f"/children/{world.child_id}/audit").json()["items"]
    assert any(e["action"] == "timeline.read" for e in trail)


def test_pages_by_accept_header_and_html_suffix(world: World, history: dict) -> None:
    for path in (f"/children/{world.child_id}/handover", f"/children/{world.child_id}/timeline"):
        html = world.colleague.get(path, headers={"Accept": "text/html"})
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "school" in html.text
        as_json = world.colleague.get(path, headers={"Accept": "*/*"})
        assert as_json.headers["content-type"].startswith("application/json")
        page = world.colleague.get(path + ".html")
        assert page.status_code == 200 and "Robin" in page.text
    unseen = world.other_worker.get(f"/children/{world.child_id}/handover.html")
    assert unseen.status_code == 404 and unseen.headers["content-type"].startswith("text/html")
    signed_out = world.client.get(f"/api/v1/children/{world.child_id}/handover.html",
                                  follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/signin")
