"""Helpers the tests share: signed-in callers, request bodies, a small world of people."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient

from app.core.db import new_session
from app.core.security import PasswordHashing
from app.models.staff import Role, Team
from app.services.staff import add_user

PASSWORD = "correct horse battery staple"


class Api:
    """A signed-in caller: `api.get(path)` with its bearer token, paths under /api/v1."""

    def __init__(self, client: TestClient, token: str | None, user_id: str | None = None):
        self.client, self.token, self.user_id = client, token, user_id

    def _headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return headers | (extra or {})

    def request(self, method: str, path: str, **kw):  # noqa: ANN003, ANN201
        kw["headers"] = self._headers(kw.get("headers"))
        return self.client.request(method, "/api/v1" + path, **kw)

    def get(self, path: str, **kw):  # noqa: ANN003, ANN201
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw):  # noqa: ANN003, ANN201
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw):  # noqa: ANN003, ANN201
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw):  # noqa: ANN003, ANN201
        return self.request("PATCH", path, **kw)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Api:
    r = client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    api = Api(client, r.json()["access_token"])
    api.user_id = api.get("/users/me").json()["id"]
    return api


def feelings_board_body(name: str = "How I feel") -> dict:
    ids = ["happy", "sad", "angry", "scared", "worried", "calm"]
    return {"name": name, "locale": "en",
            "grid": {"rows": 2, "columns": 3, "order": [ids[:3], ids[3:]]},
            "buttons": [{"id": i, "label": i, "vocalization": f"I feel {i}"} for i in ids]}


def consent_body(scopes: list[str] | None = None, **kw) -> dict:  # noqa: ANN003
    body = {"given_by": "parent_or_carer", "giver_name": "Test Parent", "relationship": "father",
            "scopes": scopes or ["symbols", "photo", "audio", "plan"], "method": "written",
            "child_assent": "agreed",
            "valid_from": (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()}
    return body | kw


def symbols_entry(board: dict, buttons: list[str], **kw) -> dict:  # noqa: ANN003
    body = {"kind": "symbols", "client_id": str(uuid.uuid4()),
            "captured_at": datetime.now(timezone.utc).isoformat(), "source": "child_direct",
            "prompt": "How do you feel today?", "topic": "feelings",
            "board_id": board["id"], "board_version": board["version"], "button_ids": buttons}
    return body | kw


class World:
    """Two teams with their people, a child held by `worker`, consent, a board, a session."""

    def __init__(self, client: TestClient, app) -> None:  # noqa: ANN001
        hashing = PasswordHashing(app.state.settings)
        with new_session(app.state.engine) as db:
            self.team, self.other_team = Team(name="Team North"), Team(name="Team South")
            db.add_all([self.team, self.other_team])
            db.flush()
            people = {
                "admin": ("admin@test.example.org", Role.admin, None),
                "worker": ("worker@test.example.org", Role.social_worker, self.team.id),
                "colleague": ("colleague@test.example.org", Role.social_worker, self.team.id),
                "manager": ("manager@test.example.org", Role.team_manager, self.team.id),
                "other_worker": ("south.worker@test.example.org", Role.social_worker,
                                 self.other_team.id),
                "other_manager": ("south.manager@test.example.org", Role.team_manager,
                                  self.other_team.id),
            }
            for _, (email, role, team_id) in people.items():
                add_user(db, hashing, email, email.split("@")[0].title(), role, team_id,
                         PASSWORD)
            db.commit()
            self.team_id, self.other_team_id = str(self.team.id), str(self.other_team.id)
        self._emails = {name: email for name, (email, _, _) in people.items()}
        for name, (email, _, _) in people.items():
            setattr(self, name, sign_in(client, email))
        self.anonymous = Api(client, None)
        self.client = client

        r = self.worker.post("/children", json={
            "preferred_name": "Robin", "date_of_birth": "2015-04-02", "team_id": self.team_id,
            "communication": {"methods": ["makaton"], "yes_signal": "smiles"}})
        assert r.status_code == 201, r.text
        self.child = r.json()
        self.child_id = self.child["id"]
        r = self.worker.post(f"/children/{self.child_id}/consents", json=consent_body())
        assert r.status_code == 201, r.text
        self.consent = r.json()
        r = self.admin.post("/boards", json=feelings_board_body())
        assert r.status_code == 201, r.text
        self.board = r.json()

    def sign_in_again(self) -> None:
        """Everyone signs in afresh: after moving the clock past the token lifetimes."""
        for name, email in self._emails.items():
            setattr(self, name, sign_in(self.client, email))

    def open_session(self, worker: Api | None = None, child_id: str | None = None) -> dict:
        r = (worker or self.worker).post(f"/children/{child_id or self.child_id}/sessions",
                                         json={"setting": "home", "purpose": "feelings",
                                               "board_ids": [self.board["id"]]})
        assert r.status_code == 201, r.text
        return r.json()

    def capture(self, session: dict) -> Api:
        return Api(self.client, session["capture_token"])


def assert_problem(response, status: int) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body
