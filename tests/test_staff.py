"""Staff sign-in, users and teams."""

from fastapi.testclient import TestClient

from app.main import create_app
from tests.support import PASSWORD, World, assert_problem, sign_in


def test_wrong_credentials_answer_the_same_whether_or_not_the_user_exists(world: World) -> None:
    c = world.client
    wrong_password = c.post("/api/v1/auth/token",
                            data={"username": "worker@test.example.org", "password": "nope"})
    no_such_user = c.post("/api/v1/auth/token",
                          data={"username": "nobody@test.example.org", "password": "nope"})
    assert_problem(wrong_password, 401)
    assert_problem(no_such_user, 401)
    assert wrong_password.json() == no_such_user.json()


def test_token_is_a_bearer_token_that_expires(world: World) -> None:
    r = world.client.post("/api/v1/auth/token",
                          data={"username": "WORKER@test.example.org", "password": PASSWORD})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "bearer" and body["expires_in"] > 0
    assert world.worker.get("/users/me").json()["role"] == "social_worker"
    assert_problem(world.anonymous.get("/users/me"), 401)
    world.anonymous.token = "not-a-jwt"
    assert_problem(world.anonymous.get("/users/me"), 401)


def test_only_admins_manage_users_and_teams(world: World) -> None:
    new_user = {"email": "new.worker@test.example.org", "full_name": "New Worker",
                "role": "social_worker", "team_id": world.team_id, "password": "a long passphrase"}
    for api in (world.worker, world.manager):
        assert_problem(api.post("/users", json=new_user), 403)
        assert_problem(api.get("/users"), 403)
        assert_problem(api.post("/teams", json={"name": "Team East"}), 403)
    r = world.admin.post("/users", json=new_user)
    assert r.status_code == 201 and "password" not in r.text and "hash" not in r.text
    assert_problem(world.admin.post("/users", json=new_user), 409)
    assert_problem(world.admin.post("/users", json=new_user | {"email": "x@test.example.org",
                                                               "password": "short"}), 422)
    assert sign_in(world.client, new_user["email"], "a long passphrase").get("/users/me") \
        .json()["email"] == new_user["email"]
    emails = {u["email"] for u in world.admin.get("/users").json()["items"]}
    assert new_user["email"] in emails and len(emails) == 7

    r = world.admin.post("/teams", json={"name": "Team East"})
    assert r.status_code == 201
    assert_problem(world.admin.post("/teams", json={"name": "Team East"}), 409)
    names = {t["name"] for t in world.worker.get("/teams").json()["items"]}
    assert names == {"Team North", "Team South", "Team East"}


def test_a_worker_adds_children_only_to_their_own_team(world: World) -> None:
    body = {"preferred_name": "Lee", "date_of_birth": "2013-03-03"}
    assert_problem(world.worker.post("/children", json=body | {"team_id": world.other_team_id}), 403)
    assert_problem(world.admin.post("/children", json=body | {"team_id": world.team_id}), 403)
    r = world.manager.post("/children", json=body | {"team_id": world.team_id})
    assert r.status_code == 201 and r.json()["allocated_worker_id"] is None
    r = world.worker.post("/children", json=body | {"team_id": world.team_id})
    assert r.status_code == 201 and r.json()["allocated_worker_id"] == world.worker.user_id


def test_worker_updates_the_communication_profile(world: World) -> None:
    r = world.worker.patch(f"/children/{world.child_id}", json={
        "communication": {"methods": ["makaton", "eye_gaze"], "yes_signal": "blinks twice"},
        "board_preferences": {"symbol_size": "extra_large", "labels_shown": False}})
    assert r.status_code == 200
    child = world.manager.get(f"/children/{world.child_id}").json()
    assert child["communication"]["methods"] == ["makaton", "eye_gaze"]
    assert child["board_preferences"]["labels_shown"] is False
    assert child["preferred_name"] == "Robin"


def test_allocation_must_name_a_worker_of_the_childs_team(world: World) -> None:
    path = f"/children/{world.child_id}/allocations"
    assert_problem(world.manager.post(path, json={"user_id": world.other_worker.user_id}), 422)
    assert_problem(world.manager.post(path, json={"user_id": world.admin.user_id}), 422)


def test_bootstrap_admin_on_an_empty_database(app, settings) -> None:  # noqa: ANN001
    boot = settings.model_copy(update={"bootstrap_admin_email": "boot@test.example.org",
                                       "bootstrap_admin_password": "a long bootstrap phrase"})
    booted = create_app(boot)
    try:
        with TestClient(booted) as client:  # runs start-up
            api = sign_in(client, "boot@test.example.org", "a long bootstrap phrase")
            assert api.get("/users/me").json()["role"] == "admin"
        with TestClient(create_app(boot.model_copy(update={
                "bootstrap_admin_email": "second@test.example.org"}))) as client:
            r = client.post("/api/v1/auth/token", data={
                "username": "second@test.example.org", "password": "a long bootstrap phrase"})
            assert r.status_code == 401  # users exist: no second bootstrap
    finally:
        booted.state.engine.dispose()
