"""Every child-data endpoint × every kind of caller → the expected status. Nothing leaks:
a child the caller may not see is 404, an action their role may not take is 403, a capture
token outside its own session is 403, and an ended session's token or none at all is 401."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from tests.support import Api, World, consent_body, symbols_entry

CALLERS = ["worker", "colleague", "manager", "other_manager", "admin", "token",
           "other_token", "ended_token", "anonymous"]

# Expected status for the common shapes of endpoint, caller by caller.
READ = dict(worker=200, colleague=404, manager=200, other_manager=404, admin=404, token=403,
            other_token=403, ended_token=401, anonymous=401)
WRITE = READ | dict(manager=403)
CREATE = WRITE | dict(worker=201)


@dataclass
class Case:
    name: str
    method: str
    path: Callable[["Fixture"], str]
    expected: dict[str, int]
    body: Callable[["Fixture"], dict] | None = None


class Fixture:
    """The world plus the things endpoints act on, made fresh where a call changes them."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.session = world.open_session()
        self.other_session = world.open_session()
        ended = world.open_session()
        world.worker.post(f"/sessions/{ended['id']}/end")
        r = world.worker.post(f"/sessions/{self.session['id']}/entries",
                              json=symbols_entry(world.board, ["happy"]))
        self.entry = r.json()
        world.worker.post(f"/children/{world.child_id}/plan/versions")
        self.callers: dict[str, Api] = {
            "worker": world.worker, "colleague": world.colleague, "manager": world.manager,
            "other_manager": world.other_manager, "admin": world.admin,
            "token": world.capture(self.session), "other_token": world.capture(self.other_session),
            "ended_token": world.capture(ended), "anonymous": world.anonymous}

    @property
    def child(self) -> str:
        return f"/children/{self.w.child_id}"

    def fresh_consent(self) -> str:
        r = self.w.worker.post(f"{self.child}/consents", json=consent_body())
        return r.json()["id"]

    def fresh_session(self) -> str:
        return self.w.open_session()["id"]


CASES = [
    Case("read child", "GET", lambda f: f.child, READ),
    Case("change child", "PATCH", lambda f: f.child, WRITE,
         lambda f: {"communication": {"methods": ["bsl"]}}),
    # Once the manager has moved the child to the colleague, the worker's capture tokens
    # have ended (401), before their scope is even looked at.
    Case("allocate", "POST", lambda f: f"{f.child}/allocations",
         WRITE | dict(worker=403, manager=201, token=401, other_token=401),
         lambda f: {"user_id": f.w.colleague.user_id}),
    Case("allocation history", "GET", lambda f: f"{f.child}/allocations", READ),
    Case("record consent", "POST", lambda f: f"{f.child}/consents", CREATE,
         lambda f: consent_body()),
    Case("list consents", "GET", lambda f: f"{f.child}/consents", READ),
    Case("withdraw consent", "POST", lambda f: f"/consents/{f.fresh_consent()}/withdraw", WRITE,
         lambda f: {"reason": "changed their mind"}),
    Case("open session", "POST", lambda f: f"{f.child}/sessions", CREATE,
         lambda f: {"setting": "home", "board_ids": [f.w.board["id"]]}),
    Case("end session", "POST", lambda f: f"/sessions/{f.fresh_session()}/end",
         WRITE | dict(token=403)),
    Case("session boards", "GET", lambda f: f"/sessions/{f.session['id']}/boards",
         READ | dict(token=200)),
    Case("add entry", "POST", lambda f: f"/sessions/{f.session['id']}/entries",
         CREATE | dict(token=201), lambda f: symbols_entry(f.w.board, ["sad"])),
    Case("list entries", "GET", lambda f: f"{f.child}/entries", READ),
    Case("read entry", "GET", lambda f: f"/entries/{f.entry['id']}", READ),
    Case("read plan", "GET", lambda f: f"{f.child}/plan", READ),
    Case("write plan section", "PUT", lambda f: f"{f.child}/plan/sections/about_me", WRITE,
         lambda f: {"text": "I like trains.", "pinned_entry_ids": []}),
    Case("publish plan", "POST", lambda f: f"{f.child}/plan/versions", CREATE),
    Case("list plan versions", "GET", lambda f: f"{f.child}/plan/versions", READ),
    Case("read plan version", "GET", lambda f: f"{f.child}/plan/versions/1", READ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_access_matrix(world: World, case: Case) -> None:
    f = Fixture(world)
    seen = {}
    for caller in CALLERS:
        kw = {"json": case.body(f)} if case.body else {}
        r = f.callers[caller].request(case.method, case.path(f), **kw)
        seen[caller] = r.status_code
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
            # A refusal never carries the child's details.
            assert "Robin" not in r.text
    assert seen == case.expected


def test_unknown_child_and_unseen_child_answer_alike(world: World) -> None:
    unseen = world.colleague.get(f"/children/{world.child_id}")
    missing = world.colleague.get(f"/children/{uuid.uuid4()}")
    assert unseen.status_code == missing.status_code == 404
    assert unseen.json()["detail"] == missing.json()["detail"]


def test_child_lists_show_only_children_the_caller_may_see(world: World) -> None:
    r = world.other_worker.post("/children", json={
        "preferred_name": "Sky", "date_of_birth": "2014-01-01", "team_id": world.other_team_id})
    assert r.status_code == 201
    sky = r.json()["id"]

    def ids(api: Api) -> set[str]:
        r = api.get("/children")
        assert r.status_code == 200
        return {c["id"] for c in r.json()["items"]}

    assert ids(world.worker) == {world.child_id}
    assert ids(world.manager) == {world.child_id}
    assert ids(world.other_worker) == {sky}
    assert ids(world.other_manager) == {sky}
    assert ids(world.colleague) == set()
    assert ids(world.admin) == set()


def test_reallocation_moves_access_and_keeps_history(world: World) -> None:
    r = world.manager.post(f"/children/{world.child_id}/allocations",
                           json={"user_id": world.colleague.user_id})
    assert r.status_code == 201
    assert world.colleague.get(f"/children/{world.child_id}").status_code == 200
    assert world.worker.get(f"/children/{world.child_id}").status_code == 404
    # The new worker sees who came before, and everything captured before them.
    history = world.colleague.get(f"/children/{world.child_id}/allocations").json()["items"]
    assert [a["user_id"] for a in history] == [world.worker.user_id, world.colleague.user_id]
    assert history[0]["ended_at"] is not None and history[1]["ended_at"] is None
    assert world.colleague.get(f"/children/{world.child_id}/consents").json()["items"]


def test_library_boards_are_staff_only(world: World) -> None:
    session = world.open_session()
    tablet = world.capture(session)
    assert tablet.get("/boards").status_code == 403
    assert tablet.get(f"/boards/{world.board['id']}").status_code == 403
    assert world.anonymous.get("/boards").status_code == 401
    for api in (world.worker, world.manager, world.admin):
        assert api.get(f"/boards/{world.board['id']}").status_code == 200
