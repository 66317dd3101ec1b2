"""`childvoice demo` leaves every page something to show: past visits with symbols, a mat,
a photo, a recording, observations, plan text, a published version and an alert; a child
never heard; and an audit trail that still verifies."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app import cli
from app.core.config import get_settings
from tests.support import sign_in


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, settings, app, capsys) -> dict:  # noqa: ANN001
    monkeypatch.setenv("CHILDVOICE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CHILDVOICE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CHILDVOICE_MEDIA_ROOT", str(settings.media_root))
    # The suite's own key: on PostgreSQL the commands refuse to work without one.
    monkeypatch.setenv("CHILDVOICE_AUDIT_SIGNING_KEY", settings.audit_signing_key or "")
    for name, value in (("MEMORY_KIB", "8"), ("TIME_COST", "1"), ("PARALLELISM", "1")):
        monkeypatch.setenv(f"CHILDVOICE_PASSWORD_{name}", value)
    get_settings.cache_clear()
    assert cli.main(["demo"]) == 0
    credentials = dict(re.findall(r"(\S+@\S+)\s+/\s+(\S+)", capsys.readouterr().out))
    client = TestClient(app)
    yield {"client": client, "credentials": credentials}
    get_settings.cache_clear()


def _as(demo: dict, who: str):  # noqa: ANN202
    email = f"{who}@demo.childvoice.example"
    return sign_in(demo["client"], email, demo["credentials"][email])


def test_demo_fills_the_pages(demo: dict) -> None:
    worker = _as(demo, "worker")
    children = {c["preferred_name"]: c["id"] for c in worker.get("/children").json()["items"]}
    robin = children["Robin"]

    h = worker.get(f"/children/{robin}/handover").json()
    assert [v["purpose"] for v in h["last_visits"]] == [
        "Catch-up with mum", "How school is going", "How Robin feels about school"]
    kinds = {e["kind"] for v in h["last_visits"] for e in v["entries"]}
    assert kinds == {"symbols", "mat", "photo", "audio", "observation", "text"}
    media = [m for v in h["last_visits"] for e in v["entries"] for m in e["media"]]
    assert {m["kind"] for m in media} == {"photo", "audio"}
    assert any(m["playback_url"] for m in media if m["kind"] == "audio")
    school = next(c for c in h["changed_lately"] if c["topic"] == "school")
    assert (school["before"]["answer"], school["after"]["answer"]) == ("like", "don't like")
    assert h["open_alerts"] and h["standing_wishes"]["pinned"]
    assert [a["worker_name"] for a in h["allocations"]] == ["Alex Former-Worker",
                                                          "Sam Demo-Worker"]
    for m in media:
        assert worker.get(m["url"][len("/api/v1"):]).status_code == 200

    plan = worker.get(f"/children/{robin}/plan").json()
    assert any(s["text"] for s in plan["sections"])
    assert worker.get(f"/children/{robin}/plan/versions").json()["items"]

    report = _as(demo, "manager").get("/reports/voice").json()
    assert [c["preferred_name"] for c in report["children"]] == ["Kai", "Robin"]
    assert report["children"][0]["status"] == "never_heard"
    assert report["children"][1]["figures"]["overdue_alerts"] == 0
    assert report["totals"]["figures"]["adult_focused_visits"] == 2

    for path in (f"/children/{robin}/handover.html", f"/children/{robin}/timeline.html"):
        assert worker.get(path).status_code == 200
    assert _as(demo, "manager").get("/reports/voice.html").status_code == 200


def test_demo_keeps_the_audit_chain_whole(demo: dict, capsys) -> None:  # noqa: ANN001
    assert cli.main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "intact" in out
    assert int(re.search(r"(\d+) events", out).group(1)) >= 19  # every capture was audited
