"""`make audit`: pip-audit over the installed packages, reported honestly.

pip-audit says "No known vulnerabilities found" even when it could check nothing (an index
mirror without vulnerability data answers every package "not found", and without network
every lookup fails). This says how many packages were really checked, names the ones that
were not, and never calls an unchecked environment clean.

Exit status: 1 when a vulnerability is found; 0 otherwise, so that CI without network
passes, unless --strict (then 2 when any package could not be checked).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def run_pip_audit() -> tuple[dict | None, str]:
    command = [str(Path(sys.executable).with_name("pip-audit")), "--skip-editable",
               "--progress-spinner", "off", "--format", "json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pip-audit did not run: {exc}"
    try:
        return json.loads(done.stdout), done.stderr.strip()
    except json.JSONDecodeError:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return None, lines[-1] if lines else "pip-audit gave no output"


def report(result: dict | None, problem: str, strict: bool) -> int:
    if result is None:
        print(f"AUDIT NOT DONE: {problem}")
        print("No package was checked for known vulnerabilities.")
        return 2 if strict else 0
    # The project itself (installed editable) is not on any index: not a gap.
    dependencies = [d for d in result.get("dependencies", [])
                    if "editable" not in d.get("skip_reason", "")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    checked = [d for d in dependencies if not d.get("skip_reason")]
    vulnerable = [d for d in checked if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE {dep['name']} {dep.get('version', '?')}: {vuln.get('id')} "
                  f"(fixed in {fixes})")
    print(f"Checked {len(checked)} of {len(dependencies)} installed packages for known "
          "vulnerabilities.")
    if skipped:
        names = ", ".join(sorted(d["name"] for d in skipped))
        print(f"NOT CHECKED ({len(skipped)}): {names}")
        reasons = {d["skip_reason"].split(":")[0] for d in skipped}
        print("Why: " + "; ".join(sorted(reasons)) + ". The package index this machine uses "
              "may have no vulnerability data, or there is no network.")
    if vulnerable:
        return 1
    if not checked:
        print("AUDIT NOT DONE: nothing could be checked, so this is not a clean result.")
    elif skipped:
        print(f"No known vulnerabilities in the {len(checked)} packages checked; the others "
              "are unknown.")
    else:
        print("No known vulnerabilities found in any installed package.")
    return 2 if strict and skipped else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true",
                        help="fail (2) when any package could not be checked")
    parser.add_argument("--from-json", type=Path,
                        help="report on a saved `pip-audit --format json` output instead")
    args = parser.parse_args()
    if args.from_json:
        result, problem = json.loads(args.from_json.read_text()), ""
    else:
        result, problem = run_pip_audit()
    return report(result, problem, args.strict)


if __name__ == "__main__":
    sys.exit(main())
