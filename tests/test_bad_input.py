"""Bad input gets a 4xx problem document that says what to fix, and nothing is stored."""

import uuid

import pytest
from sqlmodel import func, select

from app.core.db import new_session
from app.models import AuditEvent, Board, Child, Consent, VoiceEntry
from tests.support import World, assert_problem, feelings_board_body, symbols_entry


def _counts(app) -> dict:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        return {m.__name__: db.exec(select(func.count()).select_from(m)).one()
                for m in (Board, Child, Consent, VoiceEntry, AuditEvent)}


@pytest.fixture
def tablet_session(world: World) -> tuple:
    session = world.open_session()
    return world.capture(session), f"/sessions/{session['id']}/entries"


def _field_names(problem: dict) -> set[str]:
    return {str(part) for e in problem.get("errors", []) for part in e["loc"]}


def test_malformed_json(world: World, app, tablet_session) -> None:  # noqa: ANN001
    tablet, path = tablet_session
    before = _counts(app)
    r = tablet.post(path, content=b'{"kind": "symbols", "client_id": ',
                    headers={"Content-Type": "application/json"})
    problem = assert_problem(r, 400)
    assert "JSON" in problem["detail"]
    assert _counts(app) == before


@pytest.mark.parametrize("change, field", [
    ({"kind": "dance"}, "kind"),
    ({"button_ids": "happy"}, "button_ids"),
    ({"board_version": "latest"}, "board_version"),
    ({"client_id": "not-a-uuid"}, "client_id"),
    ({"captured_at": "26/11/2026 10:00"}, "captured_at"),
    ({"captured_at": "2026-11-26T10:00:00"}, "captured_at"),  # no timezone
    ({"source": "the_child"}, "source"),
    ({"prompt": "x" * 501}, "prompt"),
    ({"topic": "t" * 101}, "topic"),
    ({"button_ids": []}, "button_ids"),
    ({"unexpected": 1}, "unexpected"),
])
def test_entry_fields_are_checked(world: World, app, tablet_session, change: dict,  # noqa: ANN001
                                  field: str) -> None:
    tablet, path = tablet_session
    before = _counts(app)
    problem = assert_problem(tablet.post(path, json=symbols_entry(world.board, ["happy"]) | change),
                             422)
    assert field in _field_names(problem) or field in problem["detail"], problem
    assert _counts(app) == before


def test_button_not_on_the_board_version(world: World, app, tablet_session) -> None:  # noqa: ANN001
    tablet, path = tablet_session
    before = _counts(app)
    problem = assert_problem(tablet.post(path, json=symbols_entry(world.board, ["happy", "zebra"])),
                             422)
    assert "zebra" in problem["detail"] and "button_ids" in _field_names(problem)
    problem = assert_problem(tablet.post(path, json=symbols_entry(
        world.board, ["happy"], board_version=7)), 422)
    assert "version 7" in problem["detail"]
    assert _counts(app) == before


def test_observation_cannot_claim_to_be_the_child_speaking(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    before = _counts(app)
    problem = assert_problem(world.worker.post(f"/sessions/{session['id']}/entries", json={
        "kind": "observation", "client_id": str(uuid.uuid4()),
        "captured_at": "2026-11-26T10:00:00Z", "source": "child_direct", "text": "smiled"}), 422)
    assert "adult_interpretation" in str(problem)
    assert _counts(app) == before


def test_mat_placement_off_the_scale(world: World, app, tablet_session) -> None:  # noqa: ANN001
    tablet, path = tablet_session
    before = _counts(app)
    problem = assert_problem(tablet.post(path, json={
        "kind": "mat", "client_id": str(uuid.uuid4()), "captured_at": "2026-11-26T10:00:00Z",
        "source": "child_assisted", "board_id": world.board["id"], "board_version": 1,
        "scale": ["like", "not sure", "don't like"],
        "placements": [{"button_id": "happy", "scale_value": "love"}]}), 422)
    assert "love" in str(problem)
    assert _counts(app) == before


@pytest.mark.parametrize("change, words", [
    ({"grid": {"rows": 1, "columns": 2, "order": [["happy", "ghost"]]}}, "ghost"),
    ({"grid": {"rows": 2, "columns": 2, "order": [["happy", "sad"]]}}, "rows"),
    ({"grid": {"rows": 1, "columns": 3, "order": [["happy", "sad"]]}}, "columns"),
    ({"buttons": [{"id": "a"}, {"id": "a"}],
      "grid": {"rows": 1, "columns": 2, "order": [["a", "a"]]}}, "repeated"),
    ({"name": ""}, "name"),
])
def test_board_shape_is_checked(world: World, app, change: dict, words: str) -> None:  # noqa: ANN001
    before = _counts(app)
    problem = assert_problem(world.admin.post("/boards", json=feelings_board_body() | change), 422)
    assert words in str(problem)
    assert _counts(app) == before


@pytest.mark.parametrize("body, field", [
    ({"date_of_birth": "2015-13-40"}, "date_of_birth"),
    ({"date_of_birth": "02/04/2015"}, "date_of_birth"),
    ({"preferred_name": "n" * 101}, "preferred_name"),
    ({"team_id": 12}, "team_id"),
    ({"communication": {"methods": ["telepathy"]}}, "methods"),
])
def test_child_fields_are_checked(world: World, app, body: dict, field: str) -> None:  # noqa: ANN001
    before = _counts(app)
    valid = {"preferred_name": "Lee", "date_of_birth": "2015-04-02", "team_id": world.team_id}
    problem = assert_problem(world.worker.post("/children", json=valid | body), 422)
    assert field in _field_names(problem)
    assert _counts(app) == before


def test_consent_fields_are_checked(world: World, app) -> None:  # noqa: ANN001
    before = _counts(app)
    path = f"/children/{world.child_id}/consents"
    base = {"given_by": "child", "scopes": ["symbols"], "method": "symbols",
            "child_assent": "agreed"}
    assert "scopes" in _field_names(assert_problem(
        world.worker.post(path, json=base | {"scopes": ["mind_reading"]}), 422))
    assert "valid_until" in str(assert_problem(world.worker.post(path, json=base | {
        "valid_from": "2026-05-01T00:00:00Z", "valid_until": "2026-04-01T00:00:00Z"}), 422))
    assert "valid_from" in _field_names(assert_problem(
        world.worker.post(path, json=base | {"valid_from": "yesterday"}), 422))
    assert _counts(app) == before


def test_unknown_paths_and_methods_are_problems_too(world: World) -> None:
    assert_problem(world.worker.get("/no-such-thing"), 404)
    assert_problem(world.worker.request("DELETE", f"/children/{world.child_id}"), 405)
    assert_problem(world.worker.get("/children/not-a-uuid"), 422)
    assert_problem(world.worker.get("/children", params={"cursor": "garbage"}), 422)
