"""The Airflow version matrix: ``make compat`` (all versions) or ``make compat AIRFLOW=3.0.6`` (one).

For each version it builds ``.compat/<version>`` with uv from PyPI (Airflow pinned by
``compat/constraints-<version>.txt``) and checks, printing one line each:

1. resolver: ``apache-airflow==<version>`` together with the package resolves, as a new user
   would install it today (no cut-off date), and keeps that Airflow version;
2. imports: every module of the package and every example DAG file import, with no
   deprecated Airflow import path (FutureWarning);
3. tests: the part of the suite every version runs (:data:`MATRIX_TESTS`, SQLite only); a test
   that needs what a version lacks is skipped by a named marker, whose reason is listed.

    python -m compat.run [--airflow 3.0.6] [--jobs 2] [--floors]

``--floors`` (``make compat-floors``) installs each direct dependency of the package at the lowest
version pyproject.toml allows, everything else as the constraints file pins it: it proves the
floors are honest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from compat.freeze import uv
from compat.versions import (
    ENVS_DIR,
    PYTHON_VERSION,
    REPO,
    VERSIONS,
    constraints_file,
    floor_constraints,
    requirements,
)

#: the version-independent part of the suite: hooks, operators (a deferral and a retry among
#: them), sensors and the trigger, the audit trail and the transfers on SQLite, the example
#: DAGs run through dag.test(), and what differs between versions.
MATRIX_TESTS = (
    "tests/test_version_compat.py",
    "tests/test_provider_info.py",
    "tests/test_import_weight.py",
    "tests/hooks/test_hooks_sandbox.py",
    "tests/hooks/test_secrets.py",
    "tests/core/test_core_units.py",
    "tests/operators/test_operators.py",
    "tests/operators/test_operator_dags.py",
    "tests/test_audit.py",
    "tests/operators/test_checks.py",
    "tests/bulk/test_engine_edges.py",
    "tests/operators/test_guarded_delete.py",
    "tests/sensors",
    "tests/triggers/test_campaign_status.py",
    "tests/transfers",
    "tests/example_dags/test_outreach_suppression.py::test_example_dags_parse_without_a_network_connection",
    "tests/example_dags/test_outreach_suppression.py::test_the_first_run_catches_up_and_a_manual_run_sends_only_new_optouts",
    "tests/example_dags/test_outreach_suppression.py::test_asset_triggered_suppression_handles_the_producers_batch",
    "tests/example_dags/test_outreach_draft_campaign_cleanup.py",
    "tests/test_sync_dag.py",
)
#: the real PostgreSQL and Redis servers are not installed in the matrix
NOT_ON_SQLITE = "not postgres and not redis"


@dataclass
class Outcome:
    airflow: str
    seconds: float = 0.0
    resolver: str = "not run"
    imports: str = "not run"
    counts: Counter = field(default_factory=Counter)
    skips: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, **kwargs)


def build_env(airflow: str, floors: bool) -> Path:
    """A fresh virtualenv with this Airflow, the test tools and the package (editable): pinned by
    the version's constraints file, or with ``floors`` every direct dependency at its floor."""
    env = ENVS_DIR / (f"{airflow}-floors" if floors else airflow)
    shutil.rmtree(env, ignore_errors=True)
    done = run([*uv(), "venv", "--quiet", "--python", PYTHON_VERSION, str(env)])
    if done.returncode:
        raise RuntimeError(f"uv venv failed: {done.stderr.strip()}")
    with tempfile.TemporaryDirectory(prefix="matrix-") as scratch:
        spec, pins = Path(scratch) / "requirements.txt", Path(scratch) / "constraints.txt"
        spec.write_text("\n".join(requirements(airflow)) + "\n")
        pins.write_text(floor_constraints(airflow) if floors else constraints_file(airflow).read_text())
        command = [*uv(), "pip", "install", "--quiet", "--python", str(env / "bin" / "python")]
        command += ["--resolution", "lowest-direct"] if floors else []
        command += ["--constraint", str(pins), "--requirement", str(spec), "--editable", "."]
        done = run(command)
    if done.returncode:
        raise RuntimeError(f"uv pip install failed: {done.stderr.strip()[-2000:]}")
    return env


def check_resolver(airflow: str) -> str:
    """``apache-airflow==<version>`` and the package, resolved as PyPI stands today."""
    spec = f"apache-airflow=={airflow}\nairflow-provider-outreach @ {REPO.as_uri()}\n"
    done = run([*uv(), "pip", "compile", "-", "--quiet", "--no-header", "--python-version", PYTHON_VERSION], input=spec)
    if done.returncode:
        raise RuntimeError(f"does not resolve: {done.stderr.strip()[-1500:]}")
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", done.stdout, re.MULTILINE))
    if pins.get("apache-airflow") != airflow:
        raise RuntimeError(f"the resolution changes Airflow to {pins.get('apache-airflow')}")
    shown = ("apache-airflow-providers-common-compat", "apache-airflow-providers-common-sql")
    return "ok (" + ", ".join(f"{name.removeprefix('apache-airflow-providers-')} {pins[name]}" for name in shown) + ")"


def check_imports(env: Path) -> str:
    done = run([str(env / "bin" / "python"), "compat/check_imports.py"], env={**os.environ, "PYTHONWARNINGS": ""})
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the import check did not finish: {done.stderr.strip()[-1500:]}") from None
    problems = [*result["failures"], *(f"deprecated: {w}" for w in result["warnings"])]
    if problems:
        raise RuntimeError("; ".join(problems))
    return f"ok ({result['modules']} modules, {result['dag_files']} DAG files: {len(result['dags'])} DAGs)"


def run_tests(env: Path, outcome: Outcome, floors: bool) -> None:
    report = env / "junit.xml"
    # two workers: most of the time is spent waiting on rate limits, not on the CPU
    command = [str(env / "bin" / "python"), "-m", "pytest", *MATRIX_TESTS, "-m", NOT_ON_SQLITE, "-q", "-n", "2"]
    if floors:  # an old provider at its floor may import paths a newer Airflow deprecates: shown, not fatal
        command += ["-W", "default::FutureWarning"]
    done = run([*command, f"--junitxml={report}"])
    if not report.exists():
        outcome.failures.append(f"pytest did not run: {(done.stdout + done.stderr).strip()[-1500:]}")
        return
    for case in ET.parse(report).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        skipped = case.find("skipped")
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        if skipped is not None:
            outcome.counts["skipped"] += 1
            outcome.skips[skipped.get("message", "").removeprefix("Skipped: ")] += 1
        elif failed is not None:
            outcome.counts["failed"] += 1
            outcome.failures.append(f"{name}: {failed.get('message', '')[:300]}")
        else:
            outcome.counts["passed"] += 1
    # the workers' summary names no deselected tests: count them by collecting only those
    python = str(env / "bin" / "python")
    left_out = run([python, "-m", "pytest", *MATRIX_TESTS, "-m", f"not ({NOT_ON_SQLITE})", "--collect-only", "-q"])
    collected = re.search(r"(\d+)/\d+ tests? collected", left_out.stdout)
    outcome.counts["deselected"] = int(collected.group(1)) if collected else 0


def check(airflow: str, floors: bool = False) -> Outcome:
    """Every check of one version; a failed step is recorded and the others still run where they can."""
    outcome = Outcome(f"{airflow} (dependencies at their floors)" if floors else airflow)
    started = time.monotonic()
    print(f"Airflow {outcome.airflow}: resolving, building its environment, importing, testing ...", flush=True)
    try:
        outcome.resolver = check_resolver(airflow)
    except RuntimeError as exc:
        outcome.resolver = "FAILED"
        outcome.failures.append(f"resolver: {exc}")
    try:
        env = build_env(airflow, floors)
    except RuntimeError as exc:
        outcome.failures.append(f"environment: {exc}")
    else:
        try:
            outcome.imports = check_imports(env)
        except RuntimeError as exc:
            outcome.imports = "FAILED"
            outcome.failures.append(f"imports: {exc}")
        run_tests(env, outcome, floors)
    outcome.seconds = time.monotonic() - started
    print(f"Airflow {outcome.airflow}: {'ok' if outcome.ok else 'FAILED'} in {outcome.seconds:.0f} s", flush=True)
    return outcome


def report(outcome: Outcome) -> None:
    counts = outcome.counts
    print(f"Airflow {outcome.airflow}: {'ok' if outcome.ok else 'FAILED'} in {outcome.seconds:.0f} s", flush=True)
    print(f"  resolver: {outcome.resolver}")
    print(f"  imports:  {outcome.imports}")
    print(
        f"  pytest:   {counts['passed']} passed, {counts['skipped']} skipped, {counts['failed']} failed"
        f" ({counts['deselected']} deselected: {NOT_ON_SQLITE}, run by make test)"
    )
    for reason, n in sorted(outcome.skips.items()):
        print(f"    skipped {n}: {reason}")
    for failure in outcome.failures:
        print(f"  FAILED {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--airflow", choices=sorted(VERSIONS), help="one version (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="versions checked at once (default 2)")
    parser.add_argument(
        "--floors",
        action="store_true",
        help="each direct dependency at the lowest version pyproject.toml allows, instead of the constraints",
    )
    args = parser.parse_args()
    versions = [args.airflow] if args.airflow else list(VERSIONS)
    started = time.monotonic()
    uv()  # installed once, before the versions run at once
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda airflow: check(airflow, args.floors), versions))
    print()
    for outcome in outcomes:
        report(outcome)
    failed = [o.airflow for o in outcomes if not o.ok]
    total = time.monotonic() - started
    print(
        f"\nmatrix of {len(outcomes)} versions: {'FAILED on ' + ', '.join(failed) if failed else 'ok'} in {total:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
