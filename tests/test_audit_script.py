"""`make audit` never calls an environment clean when it could check nothing (issue 9)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit.py"


def _report(tmp_path: Path, dependencies: list[dict], *extra: str) -> tuple[int, str]:
    saved = tmp_path / "audit.json"
    saved.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
    done = subprocess.run([sys.executable, str(SCRIPT), "--from-json", str(saved), *extra],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout


def test_nothing_checked_is_said_plainly(tmp_path: Path) -> None:
    deps = [{"name": n, "skip_reason": f"Dependency not found on PyPI and could not be "
             f"audited: {n} (1.0)"} for n in ("fastapi", "pillow")]
    deps.append({"name": "childvoice", "skip_reason": "distribution marked as editable"})
    code, out = _report(tmp_path, deps)
    assert code == 0  # CI without network still passes
    assert "No known vulnerabilities" not in out
    assert "Checked 0 of 2" in out and "AUDIT NOT DONE" in out and "fastapi, pillow" in out
    assert _report(tmp_path, deps, "--strict")[0] == 2


def test_a_partial_audit_names_what_was_not_checked(tmp_path: Path) -> None:
    code, out = _report(tmp_path, [
        {"name": "fastapi", "version": "1.0", "vulns": []},
        {"name": "pillow", "skip_reason": "Dependency not found on PyPI"}])
    assert code == 0 and "Checked 1 of 2" in out and "NOT CHECKED (1): pillow" in out
    assert "the others are unknown" in out


def test_vulnerabilities_fail_and_a_full_clean_audit_says_so(tmp_path: Path) -> None:
    code, out = _report(tmp_path, [{"name": "pillow", "version": "1.0", "vulns": [
        {"id": "PYSEC-0000-1", "fix_versions": ["1.1"]}]}])
    assert code == 1 and "VULNERABLE pillow 1.0: PYSEC-0000-1 (fixed in 1.1)" in out
    code, out = _report(tmp_path, [{"name": "pillow", "version": "1.1", "vulns": []}])
    assert code == 0 and "No known vulnerabilities found in any installed package." in out
