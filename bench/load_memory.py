"""One operator run over 100,000 items: throughput and peak memory.

Starts the sandbox in its own process without a rate limit and with its request log
off, then runs ``LemlistAddUnsubscribeOperator`` (or ``DialnexaRemoveCampaignLeadOperator``)
over N items in this process and prints items, seconds, items/s, the peak RSS growth
(``VmHWM``) and the tracemalloc peak (with its per-item share).

    python bench/load_memory.py [--items 100000] [--operator add_unsubscribe|remove_campaign_lead]
                                [--workers 8] [--no-tracemalloc] [--no-trust-env] [--json]

tracemalloc traces every allocation and slows the run about fourfold; its own bookkeeping
is in the RSS figures unless ``--no-tracemalloc`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="outreach-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient, SandboxServer  # noqa: E402
from airflow_provider_outreach.sandbox.process import start_sandbox_process  # noqa: E402


class _TI:
    dag_id = run_id = "bench"
    map_index = -1

    def xcom_push(self, key, value):
        pass

    def xcom_pull(self, **_):
        return None


def vm_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` figure of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def set_connection(vendor: str, url: str, **extra) -> None:
    payload = {
        "conn_type": vendor,
        "host": url + SandboxServer.vendor_path(vendor),
        "password": DEFAULT_KEYS[vendor],
        "extra": extra,
    }
    os.environ[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = json.dumps(payload)


def build_operator(name: str, n: int, workers: int, sandbox: SandboxClient, url: str, **extra):
    if name == "add_unsubscribe":
        from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator

        sandbox.configure(limits={"lemlist": []})
        set_connection("lemlist", url, rate_limit=1_000_000, rate_limit_period=1, **extra)
        values = [f"load{i:07d}@example.com" for i in range(n)]
        return LemlistAddUnsubscribeOperator(task_id="load", value=values, max_workers=workers)
    from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator

    for start in range(0, n, 20_000):
        leads = [{"id": f"cld_{i:07d}"} for i in range(start, min(n, start + 20_000))]
        sandbox.seed({"dialnexa": {"campaigns": [{"id": "cmp_load", "status": "active", "leads": leads}]}})
    set_connection("dialnexa", url, **extra)
    return DialnexaRemoveCampaignLeadOperator(
        task_id="load", campaign_lead_id=[f"cld_{i:07d}" for i in range(n)], max_workers=workers
    )


def reset_peak_rss() -> None:
    """Start ``VmHWM`` afresh from the current RSS (Linux 4.0+), so it shows this run's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def measure(op, trace: bool) -> dict:
    """Run the operator once; the report's counts, time and memory figures."""
    reset_peak_rss()
    rss_before = vm_kib("VmRSS")
    if trace:
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
    started = time.monotonic()
    report = op.execute({"ti": _TI()})
    seconds = time.monotonic() - started
    figures = {"counts": report["counts"], "seconds": round(seconds, 2), "xcom_bytes": len(json.dumps(report))}
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        figures["tracemalloc_peak_growth_kib"] = round((peak - traced_before) / 1024)
        figures["tracemalloc_overhead_kib"] = round(tracemalloc.get_tracemalloc_memory() / 1024)
        tracemalloc.stop()
    figures["rss_peak_growth_kib"] = vm_kib("VmHWM") - rss_before
    del report
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--operator", choices=("add_unsubscribe", "remove_campaign_lead"), default="add_unsubscribe")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false")
    parser.add_argument(
        "--no-trust-env",
        dest="trust_env",
        action="store_false",
        help="connection extra trust_env=false (no proxy look-up)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    proc, url = start_sandbox_process()
    try:
        sandbox = SandboxClient(url)
        sandbox.reset()
        sandbox.configure(log=False)
        extra = {} if args.trust_env else {"trust_env": False}
        op = build_operator(args.operator, args.items, args.workers, sandbox, url, **extra)
        figures = measure(op, args.trace)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    n = args.items
    figures.update(
        operator=type(op).__name__,
        items=n,
        items_per_second=round(n / figures["seconds"], 1),
        rss_peak_growth_per_item_bytes=round(figures["rss_peak_growth_kib"] * 1024 / n),
    )
    if args.trace:
        figures["tracemalloc_peak_growth_per_item_bytes"] = round(figures["tracemalloc_peak_growth_kib"] * 1024 / n)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['operator']}: {n} items in {figures['seconds']} s = {figures['items_per_second']} items/s")
        print(f"  outcomes: {figures['counts']}")
        print(
            f"  peak RSS growth: {figures['rss_peak_growth_kib'] / 1024:.1f} MiB "
            f"({figures['rss_peak_growth_per_item_bytes']} B/item)"
        )
        if args.trace:
            print(
                f"  tracemalloc peak growth: {figures['tracemalloc_peak_growth_kib'] / 1024:.1f} MiB "
                f"({figures['tracemalloc_peak_growth_per_item_bytes']} B/item; "
                f"tracemalloc's own bookkeeping {figures['tracemalloc_overhead_kib'] / 1024:.1f} MiB)"
            )
    return 0 if figures["counts"].get("failed", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
