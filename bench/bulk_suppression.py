"""lemlist team-wide suppression in bulk, side by side with one request per value.

Starts the sandbox in its own process with lemlist's documented limit (20 requests / 2 s)
and 300 ms of latency, then in one run:

* ``LemlistAddUnsubscribeOperator`` over ``--values`` values through lemlist's bulk route
  (10,000 values per request), and
* the same action one request per value (the single-value route) on a sample of
  ``--sample`` other values, extrapolated to ``--values`` (the full run would take hours).

Prints requests, wall time and values/s of each, and the ratio; exits 1 when the bulk run
needed more than 15 requests or failed any value.

    python bench/bulk_suppression.py [--values 100000] [--sample 200] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="outreach-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient  # noqa: E402
from airflow_provider_outreach.sandbox.process import start_sandbox_process  # noqa: E402


class _TI:
    dag_id = run_id = "bench"
    map_index = -1
    try_number = 1

    def xcom_push(self, key, value):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    proc, url = start_sandbox_process("--latency", str(args.latency))
    try:
        sandbox = SandboxClient(url)
        sandbox.configure(log_limit=1_000_000)
        os.environ["AIRFLOW_CONN_LEMLIST_DEFAULT"] = json.dumps(
            {"conn_type": "lemlist", "host": sandbox.vendor_url("lemlist"), "password": DEFAULT_KEYS["lemlist"]}
        )
        from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator

        class OnePerValue(LemlistAddUnsubscribeOperator):
            """The same action, one request per value (the single-value route)."""

            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.spec = replace(self.spec, batch_size=None)

            def apply(self, hook, value):
                return hook.add_unsubscribe(value)

        def run(op) -> dict:
            since = (sandbox.requests() or [{"seq": 0}])[-1]["seq"]
            started = time.monotonic()
            report = op.execute({"ti": _TI()})
            seconds = time.monotonic() - started
            log = [r for r in sandbox.requests(since=since, vendor="lemlist") if r["method"] == "POST"]
            return {
                "values": sum(report["counts"].values()),
                "requests": len(log),
                "429s": sum(1 for r in log if r["status"] == 429),
                "failed": report["counts"]["failed"],
                "seconds": seconds,
            }

        bulk_values = [f"bulk{i:06d}@example.com" for i in range(args.values)]
        bulk = run(LemlistAddUnsubscribeOperator(task_id="bulk", value=bulk_values, max_workers=4))
        sample_values = [f"single{i:06d}@example.com" for i in range(args.sample)]
        single = run(OnePerValue(task_id="single", value=sample_values, max_workers=8))
        per_value_rate = single["values"] / single["seconds"]
        extrapolated = args.values / per_value_rate
        print(f"lemlist team-wide suppression, limit 20 requests / 2 s, latency {args.latency * 1000:.0f} ms:")
        print(
            f"  bulk route:       {bulk['values']:>7} values in {bulk['requests']:>3} requests, {bulk['seconds']:7.1f} s, "
            f"{bulk['values'] / bulk['seconds']:9.0f} values/s, 429s {bulk['429s']}, failed {bulk['failed']}"
        )
        print(
            f"  one per value:    {single['values']:>7} values in {single['requests']:>3} requests, "
            f"{single['seconds']:7.1f} s, {per_value_rate:9.1f} values/s, 429s {single['429s']}, failed {single['failed']}"
        )
        print(
            f"  one per value, extrapolated from the {args.sample}-value sample to {args.values}: "
            f"{extrapolated:,.0f} s ({extrapolated / 3600:.1f} h); bulk is {extrapolated / bulk['seconds']:,.0f}x faster"
        )
        met = bulk["requests"] <= 15 and bulk["failed"] == 0 and bulk["values"] == args.values
        print(f"  target <= 15 requests for {args.values} values, none failed: {'met' if met else 'NOT met'}")
        return 0 if met else 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
