"""Bulk throughput against the sandbox's rate limits, side by side with a naive loop.

Starts the sandbox in its own process with lemlist's documented limit (20 requests / 2 s)
and 150 ms of latency, then in one run:

* a naive sequential ``requests.delete`` loop (what one would otherwise write), and
* ``LemlistUnsubscribeLeadOperator`` over the same number of leads;

then LeadLex with a limit the operator is not told (it paces from the headers).
Prints requests/s, the ratio to the limit, 429s received and items failed.

    python bench/bulk_throughput.py [--items 400] [--latency 0.15]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="outreach-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import requests  # noqa: E402

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient  # noqa: E402
from airflow_provider_outreach.sandbox.process import start_sandbox_process  # noqa: E402


class _TI:
    dag_id = run_id = "bench"
    map_index = -1

    def xcom_push(self, key, value):
        pass

    def xcom_pull(self, **_):
        return None


def leads_seed(campaign: str, n: int) -> dict:
    leads = [{"_id": f"lea_{campaign}_{i}", "email": f"{campaign}.{i}@example.com"} for i in range(n)]
    return {"lemlist": {"campaigns": [{"_id": campaign, "name": campaign, "status": "running", "leads": leads}]}}


def stats(sandbox: SandboxClient, vendor: str, since: int, elapsed: float, limit_rps: float, failed: int) -> dict:
    log = sandbox.requests(since=since, vendor=vendor)
    rps = len(log) / elapsed
    return {
        "requests": len(log),
        "seconds": elapsed,
        "rps": rps,
        "ratio": rps / limit_rps,
        "429s": sum(1 for r in log if r["status"] == 429),
        "failed": failed,
    }


def show(name: str, s: dict) -> None:
    print(
        f"  {name:<34} {s['requests']:>5} requests in {s['seconds']:6.1f} s = {s['rps']:5.2f} req/s, "
        f"{s['ratio']:.3f} of the limit, {s['429s']} x 429, {s['failed']} items failed"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--leadlex-limit", default="100/10", help="N/SECONDS the LeadLex operator is not told")
    args = parser.parse_args()
    n = args.items

    proc, url = start_sandbox_process()
    try:
        sandbox = SandboxClient(url)
        sandbox.reset()
        sandbox.configure(latency=args.latency, limits={"lemlist": [{"limit": 20, "window": 2}]})
        sandbox.seed(leads_seed("cam_naive", n))
        sandbox.seed(leads_seed("cam_op", n))
        key = DEFAULT_KEYS["lemlist"]
        os.environ["AIRFLOW_CONN_LEMLIST_DEFAULT"] = (
            f'{{"conn_type": "lemlist", "host": "{sandbox.vendor_url("lemlist")}", "password": "{key}"}}'
        )
        print(f"lemlist: {n} unsubscribes, documented limit 20 requests / 2 s, latency {args.latency * 1000:.0f} ms")

        # baseline: the sequential loop a user would otherwise write
        since = sandbox.requests()[-1]["seq"] if sandbox.requests() else 0
        failed = 0
        lemlist_url = sandbox.vendor_url("lemlist")
        started = time.monotonic()
        for i in range(n):
            r = requests.delete(
                f"{lemlist_url}/campaigns/cam_naive/leads/cam_naive.{i}@example.com", auth=("", key), timeout=30
            )
            failed += r.status_code != 200
        naive = stats(sandbox, "lemlist", since, time.monotonic() - started, 10.0, failed)

        from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator

        since = sandbox.requests()[-1]["seq"]
        op = LemlistUnsubscribeLeadOperator(
            task_id="bench", email=[f"cam_op.{i}@example.com" for i in range(n)], campaign_id="cam_op", max_workers=8
        )
        started = time.monotonic()
        report = op.execute({"ti": _TI()})
        operator = stats(sandbox, "lemlist", since, time.monotonic() - started, 10.0, report["counts"]["failed"])
        show("naive sequential requests.delete", naive)
        show("LemlistUnsubscribeLeadOperator", operator)
        print(f"  operator / naive throughput: {operator['rps'] / naive['rps']:.2f}x")

        # LeadLex: a limit the operator is not told; it paces from X-RateLimit-* headers
        limit, period = args.leadlex_limit.split("/")
        limit_rps = int(limit) / float(period)
        contacts = [{"contact_id": f"ctc_{i}", "email": f"c{i}@example.com"} for i in range(n)]
        sandbox.seed(
            {"leadlex": {"campaigns": [{"id": "cmp_bench", "name": "b", "status": "active", "contacts": contacts}]}}
        )
        sandbox.configure(limits={"leadlex": [{"limit": int(limit), "window": float(period)}]})
        os.environ["AIRFLOW_CONN_LEADLEX_DEFAULT"] = (
            f'{{"conn_type": "leadlex", "host": "{sandbox.vendor_url("leadlex")}", "password": "{DEFAULT_KEYS["leadlex"]}"}}'
        )
        from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator

        since = sandbox.requests()[-1]["seq"]
        op = LeadlexRemoveContactOperator(
            task_id="bench", contact_id=[f"ctc_{i}" for i in range(n)], campaign_id="cmp_bench", max_workers=8
        )
        started = time.monotonic()
        report = op.execute({"ti": _TI()})
        leadlex = stats(sandbox, "leadlex", since, time.monotonic() - started, limit_rps, report["counts"]["failed"])
        print(f"LeadLex: {n} contact removals, sandbox limit {limit} / {period} s (not told to the operator)")
        show("LeadlexRemoveContactOperator", leadlex)
        ok = operator["ratio"] >= 0.97 and operator["failed"] == 0
        print(f"target >= 0.97 of lemlist's limit with no failed items: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
