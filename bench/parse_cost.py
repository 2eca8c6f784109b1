"""DAG-parse cost: the import time every operator and sensor module adds after ``airflow.sdk``.

The scheduler's DAG processor imports the operator modules of a DAG file on every parse, so
this is paid per DAG file per parse. Each sample is a fresh interpreter that imports
``airflow.sdk`` (not counted), then every operator and sensor module of the provider
(counted); the best of ``--runs`` samples is quoted, with the median beside it. It also
lists which heavy modules (HTTP clients, retry library, triggers) those imports pulled in.

    python bench/parse_cost.py [--runs 9] [--repo PATH] [--target-ms 15]

``--repo`` measures another checkout of the provider (e.g. an older commit, for a
before/after figure). Exits 1 when the best figure is above the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = (
    "requests",
    "httpx",
    "tenacity",
    "urllib3",
    "airflow.triggers.base",
    "airflow.providers.standard.triggers.temporal",
    "airflow_provider_outreach.triggers.campaign_status",
)

CHILD = """
import importlib, json, sys, time
import airflow.sdk
from airflow_provider_outreach import get_provider_info
info = get_provider_info()
modules = [m for kind in ("operators", "sensors") for entry in info[kind] for m in entry["python-modules"]]
before = set(sys.modules)
started = time.perf_counter()
for name in modules:
    importlib.import_module(name)
elapsed = time.perf_counter() - started
heavy = [h for h in HEAVY if h in sys.modules and h not in before]
print(json.dumps({"seconds": elapsed, "modules": modules, "heavy": heavy}))
"""


def sample(repo: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="outreach-parse-"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONWARNINGS": "ignore",
    }
    code = f"HEAVY = {HEAVY!r}\n" + CHILD
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=repo)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--target-ms", type=float, default=15.0)
    args = parser.parse_args()
    samples = [sample(args.repo) for _ in range(args.runs)]
    times = sorted(s["seconds"] * 1000 for s in samples)
    best, median = times[0], statistics.median(times)
    print(
        f"DAG-parse cost of {len(samples[0]['modules'])} operator and sensor modules after airflow.sdk ({args.repo}):"
    )
    print(f"  best of {args.runs} fresh interpreters: {best:.1f} ms   median: {median:.1f} ms")
    print(f"  heavy modules loaded by those imports: {', '.join(samples[0]['heavy']) or 'none'}")
    met = best <= args.target_ms
    print(f"  target <= {args.target_ms:.0f} ms: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
