"""The `childvoice` command: demo data a newcomer can sign in with, create-user, and the
users group (leavers, lock-outs, resets)."""

import re

import pytest
from fastapi.testclient import TestClient

from app import cli
from app.core.config import get_settings
from tests.support import sign_in


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings, app):  # noqa: ANN001, ANN201
    """Point the command at the suite's (empty) database, with cheap password hashing."""
    monkeypatch.setenv("CHILDVOICE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CHILDVOICE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CHILDVOICE_PASSWORD_MEMORY_KIB", "8")
    monkeypatch.setenv("CHILDVOICE_PASSWORD_TIME_COST", "1")
    monkeypatch.setenv("CHILDVOICE_PASSWORD_PARALLELISM", "1")
    get_settings.cache_clear()
    yield TestClient(app)
    get_settings.cache_clear()


def test_demo_fills_an_empty_database_once(cli_env: TestClient, capsys) -> None:  # noqa: ANN001
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    credentials = dict(re.findall(r"(\S+@\S+)\s+/\s+(\S+)", out))
    assert set(credentials) == {"worker@demo.childvoice.example",
                                "manager@demo.childvoice.example",
                                "admin@demo.childvoice.example"}

    worker = sign_in(cli_env, "worker@demo.childvoice.example",
                     credentials["worker@demo.childvoice.example"])
    children = worker.get("/children").json()["items"]
    assert len(children) == 2
    boards = worker.get("/boards").json()["items"]
    feelings = next(b for b in boards if b["name"] == "How I feel")
    labels = {b["label"] for b in worker.get(f"/boards/{feelings['id']}").json()["buttons"]}
    assert {"happy", "sad", "angry", "scared", "worried", "calm", "tired", "not sure"} <= labels
    # Consent is in place, so a session can be opened and the child heard straight away.
    session = worker.post(f"/children/{children[0]['id']}/sessions",
                          json={"setting": "home", "board_ids": [feelings["id"]]}).json()
    r = cli_env.post(f"/api/v1/sessions/{session['id']}/entries",
                     headers={"Authorization": f"Bearer {session['capture_token']}"},
                     json={"kind": "symbols", "client_id": "7f0c2a51-3333-4333-8333-333333333333",
                           "captured_at": session["started_at"], "source": "child_direct",
                           "board_id": feelings["id"], "board_version": 1,
                           "button_ids": ["happy"]})
    assert r.status_code == 201, r.text
    assert worker.get(f"/children/{children[0]['id']}/plan").json()["latest_voice"]

    assert cli.main(["demo"]) == 0
    assert "already has users" in capsys.readouterr().out


def test_create_user(cli_env: TestClient, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("CHILDVOICE_NEW_USER_PASSWORD", "a long enough password")
    assert cli.main(["create-user", "--email", "Lead@Test.example.org", "--name", "Lead",
                     "--role", "team_manager", "--team", "Team West"]) == 0
    me = sign_in(cli_env, "lead@test.example.org", "a long enough password").get("/users/me")
    assert me.json()["role"] == "team_manager" and me.json()["team_id"]
    monkeypatch.setenv("CHILDVOICE_NEW_USER_PASSWORD", "short")
    assert cli.main(["create-user", "--email", "x@test.example.org", "--name", "X",
                     "--role", "admin"]) == 2


def test_users_deactivate_reactivate_unlock_and_reset_password(
        cli_env: TestClient, world, capsys) -> None:  # noqa: ANN001
    from tests.support import PASSWORD, assert_problem

    email = "colleague@test.example.org"
    assert cli.main(["users", "deactivate", "--email", email]) == 0
    assert "deactivated" in capsys.readouterr().out
    assert_problem(world.colleague.get("/users/me"), 401)
    assert world.admin.get(f"/users/{world.colleague.user_id}").json()["status"] == "deactivated"
    assert_problem(cli_env.post("/api/v1/auth/token",
                                data={"username": email, "password": PASSWORD}), 403)
    assert cli.main(["users", "reactivate", "--email", email]) == 0
    sign_in(cli_env, email)

    for _ in range(5):
        cli_env.post("/api/v1/auth/token", data={"username": email, "password": "wrong one"})
    assert_problem(cli_env.post("/api/v1/auth/token",
                                data={"username": email, "password": PASSWORD}), 429)
    assert cli.main(["users", "unlock", "--email", email]) == 0
    sign_in(cli_env, email)

    capsys.readouterr()
    assert cli.main(["users", "reset-password", "--email", email]) == 0
    code = re.search(r"reset code for \S+: (\S+)", capsys.readouterr().out).group(1)
    r = cli_env.post("/api/v1/auth/password-reset", json={
        "email": email, "code": code, "new_password": "my own new passphrase"})
    assert r.status_code == 204, r.text
    sign_in(cli_env, email, "my own new passphrase")
    assert cli.main(["users", "unlock", "--email", "nobody@test.example.org"]) == 1
