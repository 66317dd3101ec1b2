"""Schemathesis over /openapi.json as each kind of caller, against the service on a real
loopback port: no input gives a server error, and every answer is one the document
describes (status code, content type, schema).

Bounded: CHILDVOICE_FUZZ_EXAMPLES examples per operation (a few here; `make fuzz` runs
many more) and CHILDVOICE_FUZZ_SECONDS per caller. Path ids are the world's real ones, so
requests reach the rules behind the 404s; everything else is generated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import live_url  # noqa: F401 - the app on a loopback port
from tests.support import World
from tests.sync_support import enroll

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = os.environ.get("CHILDVOICE_FUZZ_EXAMPLES", "3")
SECONDS = os.environ.get("CHILDVOICE_FUZZ_SECONDS", "25")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def _world_ids(world: World) -> dict[str, str]:
    session = world.open_session()
    entry = world.capture(session).post(f"/sessions/{session['id']}/entries", json={
        "kind": "text", "client_id": "5f0c6a1e-0000-4000-8000-00000000f022",
        "captured_at": session["started_at"], "source": "child_direct",
        "text": "I like the swings"}).json()
    device = enroll(world.worker)
    return {"child_id": world.child_id, "board_id": world.board["id"],
            "session_id": session["id"], "consent_id": world.consent["id"],
            "entry_id": entry["id"], "device_id": device["id"],
            "device_key": device["device_key"], "capture_token": session["capture_token"]}


def fuzz(base_url: str, token: str, ids: dict[str, str], workdir: Path) -> subprocess.CompletedProcess:
    config = workdir / "schemathesis.toml"
    config.write_text("\n".join(
        ["[parameters]"] +
        [f'"path.{name}" = "{value}"' for name, value in ids.items()
         if name.endswith("_id")] +
        [f'"query.device_id" = "{ids["device_id"]}"']) + "\n")
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{base_url}/openapi.json", "--checks", CHECKS, "--max-examples", EXAMPLES,
        "--max-time", SECONDS, "--seed", "20261202", "--no-shrink", "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--warnings", "off",
        "--header", f"Authorization: Bearer {token}",
        "--header", f"X-Device-Key: {ids['device_key']}",
        "--report-dir", str(workdir / "report")]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir,
                          env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT),
                               "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks"})


@pytest.mark.parametrize("role", ["worker", "manager", "admin", "capture"])
def test_fuzzing_finds_no_server_error_and_no_undescribed_answer(
        world: World, live_url: str, tmp_path: Path, role: str) -> None:  # noqa: F811
    ids = _world_ids(world)
    token = ids["capture_token"] if role == "capture" else getattr(world, role).token
    result = fuzz(live_url, token, ids, tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout
