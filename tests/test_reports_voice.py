"""Whose voice has not been heard: the numbers checked against a hand-built world (a child
never heard, a child heard only through adults, an adult-focused visit, an overdue alert),
the order (most urgent first), who may read it, CSV, and that every number can be followed
to the visits and entries behind it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.reports_support import Visits
from tests.support import World, assert_problem


@pytest.fixture
def voice_world(world: World) -> dict:
    v = Visits(world)
    robin = world.child_id
    ash = v.add_child("Ash")    # heard only through adults
    sky = v.add_child("Sky")    # never heard; held by a colleague
    r = world.manager.post(f"/children/{sky}/allocations",
                           json={"user_id": world.colleague.user_id})
    assert r.status_code == 201, r.text

    v.at(0)
    first = v.visit(robin, purpose="feelings")
    v.symbols(first, ["happy"])
    v.symbols(first, ["hurt"])            # a safeguarding symbol: raises an alert
    v.end(first)
    second = v.visit(robin, purpose="review with carer")  # adult-focused
    v.observation(second, "Seemed tired; looked away from the board.")
    v.end(second)
    ash_visit = v.visit(ash, purpose="weekend plans")
    v.observation(ash_visit, "Smiled at the swing picture.")
    v.text(ash_visit, "He loves the park on Saturdays", source="parent_or_carer_report")
    v.end(ash_visit)
    sky_visit = v.visit(sky, world.colleague, purpose="first meeting")
    v.end(sky_visit, world.colleague)
    v.at(0.5)  # 12 hours on: the alert (120 minutes to escalate) is overdue
    return {"visits": v, "robin": robin, "ash": ash, "sky": sky}


def _report(world: World, **params) -> dict:  # noqa: ANN003
    r = world.manager.get("/reports/voice", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_numbers_match_the_hand_built_world(world: World, voice_world: dict) -> None:
    report = _report(world)
    names = [c["preferred_name"] for c in report["children"]]
    assert names == ["Ash", "Sky", "Robin"]  # never heard first, then the rest
    rows = {c["preferred_name"]: c for c in report["children"]}

    ash = rows["Ash"]
    assert ash["status"] == "never_heard" and ash["days_since_own_voice"] is None
    assert ash["own_voice_share"] == 0
    assert ash["figures"] | {"methods": None} == {
        "visits": 1, "adult_focused_visits": 1, "entries": 2, "own_voice_entries": 0,
        "adult_interpretation_entries": 1, "parent_report_entries": 1, "methods": None,
        "active_consents": 1, "reviews_due": 0, "open_alerts": 0, "overdue_alerts": 0}
    assert ash["figures"]["methods"] == {"symbols": 0, "mat": 0, "photo": 0, "audio": 0,
                                         "observation": 1, "text": 1}
    assert ash["worker_name"] == "Worker"

    sky = rows["Sky"]
    assert sky["status"] == "never_heard" and sky["own_voice_share"] is None
    assert sky["figures"]["visits"] == 1 and sky["figures"]["adult_focused_visits"] == 1
    assert sky["figures"]["entries"] == 0
    assert sky["figures"]["reviews_due"] == 1  # the worker changed after consent was given
    assert sky["worker_name"] == "Colleague"

    robin = rows["Robin"]
    assert robin["status"] == "heard" and robin["days_since_own_voice"] == 0
    f = robin["figures"]
    assert (f["visits"], f["adult_focused_visits"]) == (2, 1)
    assert (f["entries"], f["own_voice_entries"], f["adult_interpretation_entries"],
            f["parent_report_entries"]) == (3, 2, 1, 0)
    assert f["methods"]["symbols"] == 2 and f["methods"]["observation"] == 1
    assert (f["open_alerts"], f["overdue_alerts"]) == (1, 1)
    assert robin["own_voice_share"] == pytest.approx(0.667)

    workers = {w["worker_name"]: w for w in report["workers"]}
    assert [w["worker_name"] for w in report["workers"]] == ["Worker", "Colleague"]
    assert (workers["Worker"]["children"], workers["Worker"]["never_heard"]) == (2, 1)
    assert workers["Worker"]["figures"]["visits"] == 3
    assert workers["Worker"]["figures"]["adult_focused_visits"] == 2
    assert workers["Worker"]["figures"]["overdue_alerts"] == 1
    assert (workers["Colleague"]["children"], workers["Colleague"]["never_heard"]) == (1, 1)
    totals = report["totals"]
    assert (totals["children"], totals["never_heard"], totals["not_heard_recently"]) == (3, 2, 0)
    t = totals["figures"]
    assert (t["visits"], t["adult_focused_visits"], t["entries"], t["own_voice_entries"],
            t["adult_interpretation_entries"], t["parent_report_entries"]) == (4, 3, 5, 2, 2, 1)
    assert (t["open_alerts"], t["overdue_alerts"], t["reviews_due"]) == (1, 1, 1)


def test_not_heard_for_the_threshold_is_flagged_and_the_period_counts_visits(
        world: World, voice_world: dict) -> None:
    visits: Visits = voice_world["visits"]
    visits.at(50)  # past the 42-day threshold (heard 49 days and some hours ago)
    report = _report(world)
    robin = next(c for c in report["children"] if c["preferred_name"] == "Robin")
    assert robin["status"] == "not_heard_recently" and robin["days_since_own_voice"] == 49
    assert report["totals"]["not_heard_recently"] == 1
    # A period after the visits has none of them, and the last own voice stays known.
    later = _report(world, since=(visits.start + timedelta(days=40)).isoformat())
    robin = next(c for c in later["children"] if c["preferred_name"] == "Robin")
    assert robin["figures"]["visits"] == 0 and robin["figures"]["entries"] == 0
    assert robin["days_since_own_voice"] == 49


def test_every_number_leads_to_the_visits_and_entries_behind_it(world: World,
                                                                voice_world: dict) -> None:
    report = _report(world)
    robin = next(c for c in report["children"] if c["preferred_name"] == "Robin")

    def follow(link: str) -> dict:
        url = urlsplit(link)
        assert url.path.startswith("/api/v1/")
        r = world.manager.get(url.path[len("/api/v1"):], params=parse_qsl(url.query))
        assert r.status_code == 200, r.text
        return r.json()

    def entries(timeline: dict) -> int:
        return sum(v["entry_count"] for v in timeline["visits"])

    f, links = robin["figures"], robin["links"]
    assert len(follow(links["timeline"])["visits"]) == f["visits"]
    assert entries(follow(links["timeline"])) == f["entries"]
    adult_focused = follow(links["adult_focused_visits"])["visits"]
    assert len(adult_focused) == f["adult_focused_visits"]
    assert adult_focused[0]["purpose"] == "review with carer"
    assert entries(follow(links["own_voice_entries"])) == f["own_voice_entries"]
    assert entries(follow(links["adult_interpretation_entries"])) == \
        f["adult_interpretation_entries"]
    assert entries(follow(links["methods"]["symbols"])) == f["methods"]["symbols"]
    last = follow(links["last_own_voice"])["visits"][0]
    assert last["own_voice_count"] > 0 and last["purpose"] == "feelings"
    handover = follow(links["handover"])
    assert len(handover["open_alerts"]) == f["open_alerts"]


def test_only_a_team_manager_reads_it_for_their_own_team(world: World,
                                                         voice_world: dict) -> None:
    assert_problem(world.worker.get("/reports/voice"), 403)
    assert_problem(world.admin.get("/reports/voice"), 403)
    assert_problem(world.other_manager.get("/reports/voice",
                                           params={"team_id": world.team_id}), 403)
    assert_problem(world.anonymous.get("/reports/voice"), 401)
    theirs = world.other_manager.get("/reports/voice").json()
    assert theirs["children"] == [] and theirs["totals"]["children"] == 0
    assert _report(world, team_id=world.team_id)["totals"]["children"] == 3
    bad = world.manager.get("/reports/voice", params={
        "since": "2026-05-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"})
    assert_problem(bad, 422)


def test_reading_it_is_audited_per_child(world: World, voice_world: dict) -> None:
    _report(world)
    trail = world.manager.get(f"/children/{voice_world['sky']}/audit").json()["items"]
    assert any(e["action"] == "report.voice" for e in trail)


def test_csv_by_accept_header_or_format(world: World, voice_world: dict) -> None:
    for r in (world.manager.get("/reports/voice", headers={"Accept": "text/csv"}),
              world.manager.get("/reports/voice", params={"format": "csv"})):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["child"] for row in rows] == ["Ash", "Sky", "Robin"]
        robin = rows[2]
        assert (robin["visits"], robin["adult_focused_visits"], robin["overdue_alerts"]) == \
            ("2", "1", "1")
        assert robin["timeline"].startswith("http") and "/timeline?" in robin["timeline"]


def test_a_name_that_looks_like_a_formula_stays_text_in_csv(world: World) -> None:
    r = world.worker.post("/children", json={"preferred_name": "=HYPERLINK(1)",
                                             "date_of_birth": "2014-01-01",
                                             "team_id": world.team_id})
    assert r.status_code == 201
    text = world.manager.get("/reports/voice", params={"format": "csv"}).text
    assert "'=HYPERLINK(1)" in text


def test_html_page_by_accept_header(world: World, voice_world: dict) -> None:
    r = world.manager.get("/reports/voice", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Whose voice has not been heard" in r.text and "Ash" in r.text
    assert_problem(world.worker.get("/reports/voice"), 403)
    page = world.worker.get("/reports/voice.html")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
