"""Load: one operator run over many items completes, and its memory grows by a bounded amount per item.

The default run traces a small and a larger run with tracemalloc in this process (tracing
slows requests about fourfold, hence 500 items): the peak growth per item, and the
marginal growth between the two runs (what each further item costs), stay under bounds
set at a few times what was measured (1.2-1.4 KB/item overall at 500 items, most of it
the run's fixed cost; 0.5-0.8 KB per further item, the report's entry for it). With
``OUTREACH_LARGE=1`` ``bench/load_memory.py`` runs 100,000 items in its own process and
its peak RSS growth per item is held to the same overall bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tracemalloc

import pytest

from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator
from tests.conftest import RecordingTI
from tests.reliability.conftest import LARGE, REPO, report_figures

pytestmark = pytest.mark.slow

N_SMALL, N = 100, 500
MAX_BYTES_PER_ITEM = 5 * 1024  # peak growth of a run, divided by its items
MAX_MARGINAL_BYTES_PER_ITEM = 2 * 1024  # what one more item adds to the peak


def traced_peak(n: int, tag: str) -> tuple[int, dict]:
    """Peak traced memory growth (bytes) of one operator run over ``n`` new values, and its report."""
    op = LemlistAddUnsubscribeOperator(task_id="load", value=[f"{tag}{i:07d}@example.com" for i in range(n)])
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        report = op.execute({"ti": RecordingTI()})
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    return peak, report


def test_memory_per_item_is_bounded(remote):
    remote.configure(log=False, limits={"lemlist": []})
    remote.connect("lemlist", rate_limit=1_000_000, rate_limit_period=1, trust_env=False)
    traced_peak(20, "warm")  # first-use costs (imports, caches) are not per item
    small, _ = traced_peak(N_SMALL, "small")
    peak, report = traced_peak(N, "load")
    assert report["counts"] == {"done": N, "already_absent": 0, "failed": 0}
    assert len(remote.lemlist_unsubscribes()) == 20 + N_SMALL + N
    per_item, marginal = peak / N, (peak - small) / (N - N_SMALL)
    figures = {
        "items": N,
        "peak_kib": round(peak / 1024),
        "bytes_per_item": round(per_item),
        "marginal": round(marginal),
    }
    report_figures("load", figures)
    assert per_item < MAX_BYTES_PER_ITEM, figures
    assert marginal < MAX_MARGINAL_BYTES_PER_ITEM, figures


@pytest.mark.skipif(not LARGE, reason="the 100,000-item run needs OUTREACH_LARGE=1")
@pytest.mark.timeout(1800)
def test_100k_items_in_one_run():
    command = [
        sys.executable,
        str(REPO / "bench" / "load_memory.py"),
        "--items",
        "100000",
        "--no-tracemalloc",
        "--json",
    ]
    # its own process group: if the test is cut short, the run and its sandbox go with it
    bench = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True
    )
    try:
        out, err = bench.communicate(timeout=1700)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == 0, err[-2000:]
    figures = json.loads(out.strip().splitlines()[-1])
    report_figures("load 100k", figures)
    assert figures["counts"] == {"done": 100_000, "already_absent": 0, "failed": 0}
    assert figures["rss_peak_growth_per_item_bytes"] < MAX_BYTES_PER_ITEM, figures
    assert figures["xcom_bytes"] <= 64 * 1024, figures  # the report left in XCom stays bounded
