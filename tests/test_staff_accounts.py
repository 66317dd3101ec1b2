"""Staff accounts over a working life, and a capture token that dies with the worker's
right to the child: leavers, lock-outs, reset codes, a team's workers, forwarded
addresses, a lost capture token, and sign-in that says what it wants."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from app.core.clock import clock
from app.main import create_app
from tests.media_support import sample, upload
from tests.support import PASSWORD, Api, World, assert_problem, sign_in, symbols_entry
from tests.sync_support import enroll

TOKEN = "/api/v1/auth/token"
NEW_PASSWORD = "a brand new long passphrase"


def _try(client: TestClient, email: str, password: str):  # noqa: ANN201
    return client.post(TOKEN, data={"username": email, "password": password})


def _works(tablet: Api, session: dict, board: dict) -> None:
    assert tablet.get(f"/sessions/{session['id']}/boards").status_code == 200
    r = tablet.post(f"/sessions/{session['id']}/entries", json=symbols_entry(board, ["happy"]))
    assert r.status_code == 201, r.text


def _ended(tablet: Api, session: dict, board: dict) -> dict:
    assert_problem(tablet.get(f"/sessions/{session['id']}/boards"), 401)
    problem = assert_problem(tablet.post(f"/sessions/{session['id']}/entries",
                                         json=symbols_entry(board, ["sad"])), 401)
    assert problem["type"].endswith("/capture-token-ended")
    return problem


# --- a capture token dies with the worker's right to the child ------------------------

def test_a_capture_token_ends_when_the_child_moves_to_another_worker(world: World) -> None:
    photo = world.worker.post(f"/children/{world.child_id}/board-photos",
                              files={"file": ("nan.jpg", sample("photo_gps_rotated.jpg"),
                                              "image/jpeg")})
    assert photo.status_code == 201, photo.text
    board = world.worker.post(f"/children/{world.child_id}/boards", json={
        "name": "My people", "grid": {"rows": 1, "columns": 1, "order": [["nan"]]},
        "buttons": [{"id": "nan", "label": "Nan", "image_id": "nan-photo"}],
        "images": [photo.json()["image"] | {"id": "nan-photo"}]}).json()
    session = world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "board_ids": [board["id"], world.board["id"]]}).json()
    tablet = world.capture(session)
    picture = board["images"][0]["ext_childvoice_url"].removeprefix("/api/v1")
    assert tablet.get(picture).status_code == 200
    _works(tablet, session, world.board)

    r = world.manager.post(f"/children/{world.child_id}/allocations",
                           json={"user_id": world.colleague.user_id})
    assert r.status_code == 201, r.text
    assert_problem(tablet.get(picture), 401)
    assert "no longer allocated" in _ended(tablet, session, world.board)["detail"]


@pytest.mark.parametrize("how", ["logout-all", "password change", "deactivation"])
def test_a_capture_token_ends_when_its_worker_signs_out_everywhere_or_leaves(
        world: World, how: str) -> None:
    sessions = [world.open_session(), world.open_session()]
    for session in sessions:
        _works(world.capture(session), session, world.board)
    if how == "logout-all":
        assert world.worker.post("/auth/logout-all").status_code == 204
    elif how == "password change":
        assert world.worker.post("/users/me/password", json={
            "current_password": PASSWORD, "new_password": NEW_PASSWORD}).status_code == 204
    else:
        assert world.admin.post(f"/users/{world.worker.user_id}/deactivate").status_code == 200
    for session in sessions:
        _ended(world.capture(session), session, world.board)
    if how == "deactivation":
        return
    # The worker, signed in again, gives the tablet a new token for the same session.
    worker = sign_in(world.client, "worker@test.example.org",
                     NEW_PASSWORD if how == "password change" else PASSWORD)
    r = worker.post(f"/sessions/{sessions[0]['id']}/capture-token")
    assert r.status_code == 200, r.text
    _works(world.capture(r.json()), sessions[0], world.board)
    _ended(world.capture(sessions[1]), sessions[1], world.board)


def test_a_capture_token_reads_back_only_what_child_mode_captured(world: World) -> None:
    session = world.open_session()
    tablet = world.capture(session)
    by_child = upload(tablet, session["id"], sample("drawing.png"))
    assert by_child.status_code == 201, by_child.text
    by_worker = upload(world.worker, session["id"], sample("photo_gps_rotated.jpg"),
                       fields={"kind": "photo", "client_id": "0b3c0a51-1111-4111-8111-111111111111",
                               "captured_at": datetime.now(timezone.utc).isoformat(),
                               "source": "adult_interpretation"})
    assert by_worker.status_code == 201, by_worker.text
    child_url = by_child.json()["media"][0]["url"].removeprefix("/api/v1")
    worker_url = by_worker.json()["media"][0]["url"].removeprefix("/api/v1")
    assert tablet.get(child_url).status_code == 200
    assert world.worker.get(worker_url).status_code == 200
    assert_problem(tablet.get(worker_url), 404)
    assert_problem(tablet.get(worker_url.replace("/media/", "/media/") + "/thumbnail"), 404)


def test_child_mode_cannot_claim_a_parents_report_or_write_the_workers_note(
        world: World) -> None:
    session = world.open_session()
    tablet = world.capture(session)
    path = f"/sessions/{session['id']}/entries"
    problem = assert_problem(tablet.post(path, json=symbols_entry(
        world.board, ["happy"], source="parent_or_carer_report")), 403)
    assert "parent" in problem["detail"] and problem["type"].endswith("/capture-token-scope")
    problem = assert_problem(tablet.post(path, json=symbols_entry(
        world.board, ["happy"], note="Seemed withdrawn")), 403)
    assert "note" in problem["detail"]
    media = upload(tablet, session["id"], sample("drawing.png"), fields={
        "kind": "photo", "client_id": "0b3c0a51-2222-4222-8222-222222222222",
        "captured_at": datetime.now(timezone.utc).isoformat(),
        "source": "parent_or_carer_report"})
    assert_problem(media, 403)
    # The worker records both with their own sign-in.
    assert world.worker.post(path, json=symbols_entry(
        world.board, ["happy"], source="parent_or_carer_report",
        note="Dad said this at breakfast")).status_code == 201
    assert tablet.post(path, json=symbols_entry(world.board, ["happy"])).status_code == 201


# --- a lost capture token -------------------------------------------------------------

def test_the_worker_issues_a_new_capture_token_for_an_open_session(world: World) -> None:
    session = world.open_session()
    old = world.capture(session)
    for refused in (world.colleague, world.manager, world.other_worker):
        assert_problem(refused.post(f"/sessions/{session['id']}/capture-token"),
                       404 if refused is world.other_worker or refused is world.colleague
                       else 403)
    assert_problem(old.post(f"/sessions/{session['id']}/capture-token"), 403)
    r = world.worker.post(f"/sessions/{session['id']}/capture-token")
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["id"] == session["id"] and fresh["capture_token"] != session["capture_token"]
    assert fresh["status"] == "open"
    problem = assert_problem(old.get(f"/sessions/{session['id']}/boards"), 401)
    assert problem["type"].endswith("/invalid-token")
    _works(world.capture(fresh), session, world.board)
    trail = world.manager.get(f"/children/{world.child_id}/audit",
                              params={"limit": 200}).json()["items"]
    assert "session.capture_token" in {e["action"] for e in trail}

    assert world.worker.post(f"/sessions/{session['id']}/end").status_code == 200
    problem = assert_problem(world.worker.post(f"/sessions/{session['id']}/capture-token"), 409)
    assert "ended" in problem["detail"]


# --- leavers --------------------------------------------------------------------------

def test_a_leaver_is_deactivated_and_everything_of_theirs_stops(world: World,
                                                                client: TestClient) -> None:
    login = client.post(TOKEN, data={"username": "worker@test.example.org",
                                     "password": PASSWORD}).json()
    device = enroll(world.worker)
    session = world.open_session()
    tablet = world.capture(session)
    entry = tablet.post(f"/sessions/{session['id']}/entries",
                        json=symbols_entry(world.board, ["happy"])).json()
    observation = world.worker.post(f"/sessions/{session['id']}/entries", json={
        **symbols_entry(world.board, ["calm"]), "source": "adult_interpretation"}).json()

    for refused in (world.worker, world.manager, world.colleague):
        assert_problem(refused.post(f"/users/{world.worker.user_id}/deactivate"), 403)
    r = world.admin.post(f"/users/{world.worker.user_id}/deactivate")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "deactivated" and r.json()["is_active"] is False
    assert r.json()["deactivated_at"]

    assert_problem(world.worker.get("/users/me"), 401)
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": login["refresh_token"]}), 401)
    _ended(tablet, session, world.board)
    assert world.admin.get(f"/devices/{device['id']}").json()["status"] == "revoked"
    problem = assert_problem(_try(client, "worker@test.example.org", PASSWORD), 403)
    assert "deactivated" in problem["detail"]
    # A wrong password says nothing about the account.
    assert_problem(_try(client, "worker@test.example.org", "not the password"), 401)

    shown = {u["email"]: u for u in world.admin.get("/users").json()["items"]}
    assert shown["worker@test.example.org"]["status"] == "deactivated"
    assert shown["colleague@test.example.org"]["status"] == "active"
    assert world.admin.get(f"/users/{world.worker.user_id}").json()["status"] == "deactivated"
    # What they recorded stays theirs.
    assert world.manager.get(f"/entries/{observation['id']}").json()["created_by"] \
        == world.worker.user_id
    assert world.manager.get(f"/entries/{entry['id']}").status_code == 200

    r = world.admin.post(f"/users/{world.worker.user_id}/reactivate")
    assert r.status_code == 200 and r.json()["status"] == "active"
    back = sign_in(client, "worker@test.example.org")
    assert back.get("/users/me").json()["status"] == "active"
    # Their old tokens and devices stay ended.
    _ended(tablet, session, world.board)
    assert world.admin.get(f"/devices/{device['id']}").json()["status"] == "revoked"
    assert_problem(world.admin.post(f"/users/{world.admin.user_id}/deactivate"), 409)


# --- lock-outs and forgotten passwords -----------------------------------------------

def test_an_admin_unlocks_a_locked_out_account(world: World, client: TestClient,
                                               settings) -> None:  # noqa: ANN001
    for _ in range(settings.signin_account_max_failures):
        assert_problem(_try(client, "colleague@test.example.org", "wrong guess"), 401)
    assert_problem(_try(client, "colleague@test.example.org", PASSWORD), 429)
    listed = world.admin.get(f"/users/{world.colleague.user_id}").json()
    assert listed["locked_until"] is not None
    assert world.admin.get(f"/users/{world.worker.user_id}").json()["locked_until"] is None

    assert_problem(world.manager.post(f"/users/{world.colleague.user_id}/unlock"), 403)
    r = world.admin.post(f"/users/{world.colleague.user_id}/unlock")
    assert r.status_code == 200 and r.json()["locked_until"] is None
    assert _try(client, "colleague@test.example.org", PASSWORD).status_code == 200


def test_a_reset_code_gives_the_user_a_password_of_their_own(world: World, client: TestClient,
                                                             settings) -> None:  # noqa: ANN001
    assert_problem(world.manager.post(f"/users/{world.colleague.user_id}/reset-password"), 403)
    r = world.admin.post(f"/users/{world.colleague.user_id}/reset-password")
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    assert code and r.json()["expires_at"]
    assert code not in world.admin.get(f"/users/{world.colleague.user_id}").text

    reset = "/api/v1/auth/password-reset"
    body = {"email": "colleague@test.example.org", "code": code}
    assert_problem(client.post(reset, json=body | {"new_password": "short"}), 422)
    assert_problem(client.post(reset, json=body | {"email": "worker@test.example.org",
                                                   "new_password": NEW_PASSWORD}), 401)
    # Typed by a person: case and spaces do not matter.
    typed = code.lower().replace("-", " ")
    assert client.post(reset, json=body | {"code": typed,
                                           "new_password": NEW_PASSWORD}).status_code == 204
    assert_problem(world.colleague.get("/users/me"), 401)  # earlier sign-ins end
    assert_problem(_try(client, "colleague@test.example.org", PASSWORD), 401)
    assert _try(client, "colleague@test.example.org", NEW_PASSWORD).status_code == 200
    problem = assert_problem(client.post(reset, json=body | {"new_password": "yet another "
                                                                              "passphrase"}), 401)
    assert "used" in problem["detail"]

    # A code expires.
    start = datetime.now(timezone.utc)
    code = world.admin.post(f"/users/{world.colleague.user_id}/reset-password").json()["code"]
    clock.set(start + timedelta(hours=settings.password_reset_hours, minutes=1))
    assert_problem(client.post(reset, json=body | {"code": code,
                                                   "new_password": "one more passphrase"}), 401)


def test_wrong_reset_codes_are_throttled_like_sign_ins(world: World, client: TestClient,
                                                       settings) -> None:  # noqa: ANN001
    code = world.admin.post(f"/users/{world.colleague.user_id}/reset-password").json()["code"]
    reset = "/api/v1/auth/password-reset"
    body = {"email": "colleague@test.example.org", "new_password": NEW_PASSWORD}
    for i in range(settings.signin_account_max_failures):
        assert_problem(client.post(reset, json=body | {"code": f"AAAA-BBBB-CCCC-{i:04d}"}), 401)
    assert_problem(client.post(reset, json=body | {"code": code}), 429)


def test_wrong_current_passwords_are_throttled_like_sign_ins(world: World, client: TestClient,
                                                             settings) -> None:  # noqa: ANN001
    change = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    for _ in range(settings.signin_account_max_failures):
        assert_problem(world.worker.post("/users/me/password", json=change), 403)
    problem = assert_problem(world.worker.post("/users/me/password", json=change | {
        "current_password": PASSWORD}), 429)
    assert problem["type"].endswith("/sign-in-locked")
    assert_problem(_try(client, "worker@test.example.org", PASSWORD), 429)


# --- a team manager's view of their team ---------------------------------------------

def test_a_team_manager_lists_their_teams_workers_to_allocate(world: World) -> None:
    r = world.manager.get("/teams/mine/members")
    assert r.status_code == 200, r.text
    members = {m["id"]: m for m in r.json()["items"]}
    assert set(members) == {world.worker.user_id, world.colleague.user_id,
                            world.manager.user_id}
    assert members[world.worker.user_id] == {
        "id": world.worker.user_id, "full_name": "Worker", "role": "social_worker",
        "status": "active", "children_held": 1}
    assert members[world.colleague.user_id]["children_held"] == 0
    assert "email" not in r.text
    for refused in (world.worker, world.admin):
        assert_problem(refused.get("/teams/mine/members"), 403)
    south = {m["id"] for m in world.other_manager.get("/teams/mine/members").json()["items"]}
    assert world.worker.user_id not in south
    # What they find is what they allocate with.
    assert world.manager.post(f"/children/{world.child_id}/allocations",
                              json={"user_id": world.colleague.user_id}).status_code == 201
    members = {m["id"]: m for m in world.manager.get("/teams/mine/members").json()["items"]}
    assert members[world.colleague.user_id]["children_held"] == 1
    assert members[world.worker.user_id]["children_held"] == 0


# --- forwarded addresses --------------------------------------------------------------

def test_forwarded_addresses_count_only_from_the_councils_own_proxies(
        world: World, app, settings) -> None:  # noqa: ANN001
    # Not trusted by default: a client naming other addresses is still itself.
    spoofer = TestClient(app, client=("198.51.100.20", 40000))
    for i in range(settings.signin_account_max_failures):
        spoofer.post(TOKEN, data={"username": "worker@test.example.org", "password": "guess"},
                     headers={"X-Forwarded-For": f"192.0.2.{i + 1}",
                              "Forwarded": f"for=192.0.2.{i + 1}"})
    assert_problem(_try(spoofer, "worker@test.example.org", PASSWORD), 429)
    assert _try(TestClient(app, client=("198.51.100.21", 40000)), "worker@test.example.org",
                PASSWORD).status_code == 200

    behind_proxy = create_app(settings.model_copy(update={
        "trusted_proxies": ["10.0.0.0/8"]}))
    try:
        proxy = TestClient(behind_proxy, client=("10.1.2.3", 40000))
        for _ in range(settings.signin_account_max_failures):
            assert_problem(proxy.post(TOKEN, data={"username": "colleague@test.example.org",
                                                   "password": "guess"},
                                      headers={"X-Forwarded-For": "203.0.113.5, 10.9.9.9"}),
                           401)
        # That client is locked out of the account; another behind the same proxy is not.
        assert_problem(proxy.post(TOKEN, data={"username": "colleague@test.example.org",
                                               "password": PASSWORD},
                                  headers={"X-Forwarded-For": "203.0.113.5"}), 429)
        r = proxy.post(TOKEN, data={"username": "colleague@test.example.org",
                                    "password": PASSWORD},
                       headers={"Forwarded": 'for="203.0.113.6:5123";proto=https'})
        assert r.status_code == 200, r.text
    finally:
        behind_proxy.state.engine.dispose()


# --- sign-in says what it wants -------------------------------------------------------

def test_sign_in_with_a_json_body_is_told_to_send_a_form(world: World,
                                                         client: TestClient) -> None:
    r = client.post(TOKEN, json={"username": "worker@test.example.org", "password": PASSWORD})
    problem = assert_problem(r, 415)
    assert "form" in problem["detail"] and "username" in problem["detail"] \
        and "password" in problem["detail"]
    assert PASSWORD not in r.text


def test_an_expired_access_token_says_to_refresh(world: World, settings) -> None:  # noqa: ANN001
    clock.set(datetime.now(timezone.utc) + timedelta(minutes=settings.access_token_minutes + 1))
    problem = assert_problem(world.worker.get("/users/me"), 401)
    assert "/auth/refresh" in problem["detail"]
    assert problem["type"].endswith("/token-expired")
    world.anonymous.token = "not-a-jwt"
    assert "/auth/refresh" not in assert_problem(world.anonymous.get("/users/me"), 401)["detail"]


def test_password_sign_in_can_be_turned_off(world: World, app, settings) -> None:  # noqa: ANN001
    sso_only = create_app(settings.model_copy(update={"local_passwords_enabled": False}))
    try:
        problem = assert_problem(_try(TestClient(sso_only), "worker@test.example.org",
                                      PASSWORD), 403)
        assert "single sign-on" in problem["detail"]
    finally:
        sso_only.state.engine.dispose()


def test_trusted_proxies_are_written_plainly_and_checked_at_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from app.core.config import Settings

    monkeypatch.setenv("CHILDVOICE_TRUSTED_PROXIES", "10.0.0.5, 10.0.1.0/24")
    assert Settings(_env_file=None).trusted_proxies == ["10.0.0.5", "10.0.1.0/24"]
    monkeypatch.setenv("CHILDVOICE_TRUSTED_PROXIES", '["2001:db8::/32"]')
    assert Settings(_env_file=None).trusted_proxies == ["2001:db8::/32"]
    monkeypatch.setenv("CHILDVOICE_TRUSTED_PROXIES", "the load balancer")
    with pytest.raises(ValidationError, match="not an address or a network"):
        Settings(_env_file=None)
