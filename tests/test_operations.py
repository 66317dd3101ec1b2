"""Running it for a council: start-up with several workers, migrations as a deploy step,
production refusing unsafe settings, liveness and readiness, metrics, and logs that never
carry a child's data, whatever fails."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.core.config import Settings
from app.core.db import make_engine
from app.main import create_app
from bench.harness import ROOT, free_port
from tests.support import World, consent_body, symbols_entry
from tests.sync_support import Tablet, enroll, mat_board, recorded_visit

ADMIN = ("admin@ops.example.org", "an operations test password")
SENTINEL = "Zebedee-Quokka-7741"  # a "child's words" that must never reach a log


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHILDVOICE_")}
    return env | {"CHILDVOICE_DATA_DIR": str(tmp_path / "data"),
                  "CHILDVOICE_MEDIA_ROOT": str(tmp_path / "media"),
                  "CHILDVOICE_SECRET_KEY": "operations-test-secret-key-0123456789",
                  "CHILDVOICE_BOOTSTRAP_ADMIN_EMAIL": ADMIN[0],
                  "CHILDVOICE_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
                  "CHILDVOICE_PASSWORD_TIME_COST": "1", "CHILDVOICE_PASSWORD_MEMORY_KIB": "8",
                  "CHILDVOICE_PASSWORD_PARALLELISM": "1",
                  "CHILDVOICE_OUTBOX_WORKER_ENABLED": "false"} | extra


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port),
                                *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    return process, port


def _wait_healthy(process: subprocess.Popen, port: int, timeout: float = 240) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return True
        except (OSError, httpx2.HTTPError):
            pass
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.stdout.read() if process.stdout else ""


# --- start-up ----------------------------------------------------------------------------

def test_serve_with_four_workers_on_a_fresh_database_starts_every_time(tmp_path: Path) -> None:
    for attempt in range(2):
        env = _env(tmp_path / f"start{attempt}")
        process, port = _serve(env, "--workers", "4")
        try:
            assert _wait_healthy(process, port), _stop(process)[-3000:]
            # Every worker is up: several connections in a row all answer.
            for _ in range(8):
                assert httpx2.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            r = httpx2.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                            data={"username": ADMIN[0], "password": ADMIN[1]})
            assert r.status_code == 200, r.text
            time.sleep(1)  # a worker that failed its start-up would have exited by now
            assert process.poll() is None
        finally:
            output = _stop(process)
        assert "already exists" not in output


def test_two_migrations_at_once_both_succeed(tmp_path: Path, settings: Settings) -> None:
    env = _env(tmp_path)
    if settings.resolved_database_url.startswith("postgresql"):
        database = f"cv_migrate_{uuid.uuid4().hex[:10]}"
        admin = make_engine(settings.resolved_database_url, settings)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f"CREATE DATABASE {database}"))
        url = admin.url.set(database=database).render_as_string(hide_password=False)
        env["CHILDVOICE_DATABASE_URL"] = url
    try:
        runs = [subprocess.Popen([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(2)]
        outputs = [p.communicate(timeout=180)[0] for p in runs]
        assert [p.returncode for p in runs] == [0, 0], outputs
        again = _cli("migrate", env=env)
        assert again.returncode == 0 and "latest schema" in again.stdout
    finally:
        if settings.resolved_database_url.startswith("postgresql"):
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            admin.dispose()


def test_serve_without_migrating_says_to_migrate_first(tmp_path: Path) -> None:
    env = _env(tmp_path)
    refused = _cli("serve", "--no-migrate", "--port", str(free_port()), env=env)
    assert refused.returncode == 2
    assert "childvoice migrate" in refused.stderr
    assert _cli("migrate", env=env).returncode == 0
    process, port = _serve(env | {"CHILDVOICE_MIGRATE_ON_START": "false"})
    try:
        assert _wait_healthy(process, port), _stop(process)[-2000:]
    finally:
        _stop(process)


@pytest.mark.parametrize("unsafe, says", [
    ({"CHILDVOICE_SECRET_KEY": ""}, "CHILDVOICE_SECRET_KEY is not set"),
    ({"CHILDVOICE_BOOTSTRAP_ADMIN_PASSWORD": "changeme"}, "BOOTSTRAP_ADMIN_PASSWORD"),
    ({"CHILDVOICE_BENCH_ENDPOINTS": "true"}, "BENCH_ENDPOINTS"),
], ids=["generated-secret-key", "default-bootstrap-password", "debug-endpoints"])
def test_production_refuses_unsafe_settings(tmp_path: Path, unsafe: dict, says: str) -> None:
    env = _env(tmp_path, CHILDVOICE_ENV="production") | unsafe
    if not unsafe.get("CHILDVOICE_SECRET_KEY", "x"):
        env.pop("CHILDVOICE_SECRET_KEY")
    refused = _cli("serve", "--port", str(free_port()), env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "Refusing to start in production" in refused.stderr and says in refused.stderr
    assert not (tmp_path / "data" / "childvoice.db").exists()  # refused before touching it


def test_production_starts_when_the_settings_are_safe(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, env="production", data_dir=tmp_path / "data",
                        media_root=tmp_path / "media",
                        secret_key="a-production-secret-key-of-enough-length-000")
    assert settings.production_problems() == []
    with pytest.raises(RuntimeError, match="BENCH_ENDPOINTS"):
        create_app(settings.model_copy(update={"bench_endpoints": True}))


def test_database_connections_follow_the_settings(settings: Settings) -> None:
    tuned = settings.model_copy(update={"db_pool_size": 3, "db_pool_recycle_seconds": 600,
                                        "db_statement_timeout_ms": 12_000,
                                        "db_lock_timeout_ms": 3_000})
    engine = make_engine(settings.resolved_database_url, tuned)
    try:
        if engine.dialect.name == "postgresql":
            assert engine.pool.size() == 3 and engine.pool._recycle == 600
            assert not engine.pool._pre_ping
            with engine.connect() as c:
                assert c.execute(text("SHOW statement_timeout")).scalar() == "12s"
                assert c.execute(text("SHOW lock_timeout")).scalar() == "3s"
        else:
            with engine.connect() as c:
                assert c.execute(text("SELECT 1")).scalar() == 1
        assert engine.hide_parameters
    finally:
        engine.dispose()


# --- liveness, readiness, metrics ---------------------------------------------------------

def test_readyz_checks_the_database_and_the_media_store(client: TestClient, app) -> None:  # noqa: ANN001
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "media_store": "ok"}

    class BrokenStore:
        def exists(self, key: str) -> bool:
            raise OSError("the bucket is gone")

    real = app.state.media_store
    app.state.media_store = BrokenStore()
    try:
        r = client.get("/readyz")
    finally:
        app.state.media_store = real
    assert r.status_code == 503
    assert r.json()["media_store"].startswith("unavailable") and r.json()["database"] == "ok"
    assert client.get("/healthz").status_code == 200  # liveness does not depend on them


def test_readyz_says_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, media_root=tmp_path / "media",
                        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                        secret_key="readyz-test-secret-key-0123456789abcdef",
                        outbox_worker_enabled=False, db_pool_timeout_seconds=2)
    client = TestClient(create_app(settings))
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["database"].startswith("unavailable")


def test_metrics_are_off_unless_a_token_is_set(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 404 and "CHILDVOICE_METRICS_TOKEN" in r.json()["detail"]


def test_metrics_need_the_token_and_report_what_the_council_watches(app, world: World) -> None:  # noqa: ANN001
    token = "metrics-test-token-0123456789"
    app.state.settings.metrics_token = token
    try:
        client = TestClient(app, raise_server_exceptions=False)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}
                          ).status_code == 401
        session = world.open_session()
        world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, ["happy"]))
        tablet = Tablet(world.worker, enroll(world.worker))
        assert tablet.send(recorded_visit(world, [world.board, mat_board(world)],
                                          entries=4)).status_code == 200
        r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    finally:
        app.state.settings.metrics_token = None
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert 'route="/api/v1/sessions/{session_id}/entries"' in body
    assert world.child_id not in body and session["id"] not in body
    assert 'childvoice_sync_items_total{result="created"}' in body
    for name in ("childvoice_request_duration_seconds_bucket", "childvoice_outbox_pending",
                 "childvoice_outbox_oldest_age_seconds", "childvoice_alerts_open",
                 "childvoice_alerts_overdue", "childvoice_media_jobs_waiting"):
        assert name in body, name


# --- logs --------------------------------------------------------------------------------

def _formatted(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.getLogger().handlers[0].formatter
    return "\n".join(formatter.format(record) for record in caplog.records)


def test_an_unexpected_error_keeps_the_headers_and_logs_no_child_data(
        app, world: World, caplog: pytest.LogCaptureFixture,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.services import plans

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ValueError(f"cannot show {SENTINEL}'s plan: input_value={{'about': '{SENTINEL}'}}")

    monkeypatch.setattr(plans, "get_plan", broken)
    caplog.set_level(logging.INFO)
    r = world.worker.get(f"/children/{world.child_id}/plan?q={SENTINEL}",
                         headers={"X-Request-ID": "ops-test-request-1"})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["x-request-id"] == "ops-test-request-1"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert SENTINEL not in r.text
    logged = _formatted(caplog)
    assert "ValueError" in logged and "ops-test-request-1" in logged
    assert SENTINEL not in logged and world.child_id not in logged


def test_one_access_line_per_request_with_the_route_not_the_path(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    r = world.worker.get(f"/children/{world.child_id}/plan?topic={SENTINEL}",
                         headers={"X-Request-ID": "ops-test-request-2"})
    assert r.status_code == 200
    lines = [rec for rec in caplog.records if rec.name == "childvoice.access"]
    assert len(lines) == 1
    line = _formatted(caplog).splitlines()
    access = next(text for text in line if "ops-test-request-2" in text and '"request"' in text)
    assert '"route": "/api/v1/children/{child_id}/plan"' in access
    assert '"status": 200' in access and '"method": "GET"' in access
    assert "duration_ms" in access
    assert world.child_id not in access and SENTINEL not in access


def test_bad_input_and_database_errors_log_no_submitted_values(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world.worker.post("/children", json={"preferred_name": SENTINEL, "team_id": "nope",
                                         "date_of_birth": SENTINEL})
    world.worker.post(f"/children/{world.child_id}/consents",
                      json=consent_body(giver_name=SENTINEL, scopes=[SENTINEL]))
    world.worker.put(f"/children/{world.child_id}/plan/sections/about_me",
                     json={"text": SENTINEL + "\x00", "pinned_entry_ids": [SENTINEL]})
    world.worker.patch(f"/children/{world.child_id}", json={"preferred_name": SENTINEL + "\x00"})
    logged = _formatted(caplog)
    assert SENTINEL not in logged


def test_a_real_server_logs_json_lines_without_child_data(tmp_path: Path) -> None:
    env = _env(tmp_path)
    process, port = _serve(env)
    try:
        assert _wait_healthy(process, port), _stop(process)[-2000:]
        base = f"http://127.0.0.1:{port}/api/v1"
        token = httpx2.post(f"{base}/auth/token", data={"username": ADMIN[0],
                                                        "password": ADMIN[1]}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        httpx2.post(f"{base}/teams", json={"name": SENTINEL + "\x00"}, headers=headers)
        httpx2.post(f"{base}/children", json={"preferred_name": SENTINEL}, headers=headers)
        httpx2.get(f"{base}/children?topic={SENTINEL}", headers=headers)
    finally:
        output = _stop(process)
    assert SENTINEL not in output
    request_lines = [line for line in output.splitlines() if '"event": "request"' in line]
    assert request_lines and all(line.startswith("{") for line in request_lines)
    assert any('"route": "/api/v1/children"' in line for line in request_lines)
