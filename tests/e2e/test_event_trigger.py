"""The event-driven path under a real scheduler and triggerer: an opt-out made inside lemlist
reaches LeadLex and DialNexa within minutes.

``outreach_lemlist_optouts_on_event`` (its asset's watcher polls lemlist's unsubscribe list
every 5 s here) runs on a deployment the test starts and stops itself (see
``tests/e2e/cluster.py``), against the sandbox (its own process) and a SQLite warehouse
holding the dialer's export and the LeadLex enrollments a daily pull would have written.

* a record with source ``lead`` reaches "removed" in LeadLex and DialNexa within 90 s;
* a record with source ``api`` (the provider's own suppressions) starts nothing;
* the triggerer killed, a record added while it is down, the triggerer started again, one
  more record: both reach the other tools (the cursor is in the asset state store);
* 250 records added at once all arrive;
* while nothing changes, the watcher makes one request per poll.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient
from airflow_provider_outreach.sandbox.process import start_sandbox_process
from airflow_provider_outreach.transfers.leadlex_to_sql import enrollment_table_sql
from demo import warehouse
from tests import secrets_watch
from tests.conftest import REPO
from tests.e2e.cluster import AirflowCluster

pytestmark = pytest.mark.e2e

DAG_ID = "outreach_lemlist_optouts_on_event"
POLL_SECONDS = 5
PEOPLE = 300
#: the issue's bound on how long an opt-out made in lemlist takes to reach the other tools
REACH_WITHIN = 90.0
LIST_PATH = "/v2/unsubscribes/variables"


def email(i: int) -> str:
    return f"event.person{i:04d}@example.com"


def build_seed() -> dict[str, Any]:
    """Everyone enrolled in one of two LeadLex campaigns and queued in one DialNexa campaign;
    lemlist's list already holds ten records (the daily sync's work, never emitted)."""
    return {
        "lemlist": {"unsubscribes": [{"value": f"before{i}@example.com", "source": "lead"} for i in range(10)]},
        "leadlex": {
            "campaigns": [
                {
                    "id": f"llx-ev-{k}",
                    "status": "active",
                    "contacts": [
                        {"contact_id": f"ctc-ev-{i:04d}", "email": email(i)} for i in range(PEOPLE) if i % 2 == k
                    ],
                }
                for k in (0, 1)
            ]
        },
        "dialnexa": {
            "campaigns": [
                {
                    "id": "cmp_ev",
                    "status": "active",
                    "leads": [
                        {"id": f"cld_ev{i:04d}", "phone_number": f"+1555{i:07d}", "email": email(i)}
                        for i in range(PEOPLE)
                    ],
                }
            ]
        },
    }


def build_warehouse(path: Path, seed: dict[str, Any]) -> None:
    """The dialer's export, and the LeadLex enrollments as the daily sync's pull writes them."""
    warehouse.build(path, seed)
    with sqlite3.connect(path) as db:
        db.execute(enrollment_table_sql("leadlex_enrollments"))
        db.executemany(
            "INSERT INTO leadlex_enrollments VALUES (?, ?, ?, 'active', '2026-12-01T00:00:00.000000+00:00')",
            [(c["id"], x["contact_id"], x["email"]) for c in seed["leadlex"]["campaigns"] for x in c["contacts"]],
        )
    db.close()


def removed(state: dict[str, Any], i: int) -> dict[str, bool]:
    """Whether person ``i`` is out of LeadLex and out of DialNexa's queue."""
    enrolled = any(f"ctc-ev-{i:04d}" in c["contacts"] for c in state["leadlex"]["campaigns"].values())
    lead = state["dialnexa"]["leads"][f"cld_ev{i:04d}"]
    return {"leadlex": not enrolled, "dialnexa": lead["status"] == "removed"}


def wait_until_removed(sandbox: SandboxClient, people: list[int], timeout: float) -> float:
    """Seconds until every one of ``people`` is out of both tools."""
    started = time.monotonic()
    while True:
        state = sandbox.state()
        left = [i for i in people if not all(removed(state, i).values())]
        if not left:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{len(left)} not removed in {timeout:.0f} s, e.g. {left[:5]}"
        time.sleep(0.5)


def list_reads(sandbox: SandboxClient, since: int = 0) -> list[dict]:
    return [
        r
        for r in sandbox.requests(since=since, vendor="lemlist")
        if r["method"] == "GET" and r["path"].endswith(LIST_PATH)
    ]


@pytest.mark.timeout(600)
def test_an_opt_out_made_in_lemlist_reaches_the_other_tools_within_minutes(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-event-home")
    seed = build_seed()
    seed_path = home / "seed.json"
    seed_path.write_text(json.dumps(seed))
    warehouse_db = home / "warehouse.db"
    build_warehouse(warehouse_db, seed)
    sandbox_log = open(home / "sandbox.log", "wb")  # closed in the finally below
    sandbox_proc, sandbox_url = start_sandbox_process("--seed", str(seed_path), output=sandbox_log)
    sandbox = SandboxClient(sandbox_url)
    cluster = None
    report: dict[str, Any] = {}
    try:
        env = {
            f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT": json.dumps(
                {"conn_type": vendor, "host": sandbox.vendor_url(vendor), "password": key}
            )
            for vendor, key in DEFAULT_KEYS.items()
        }
        env["AIRFLOW_CONN_OUTREACH_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(warehouse_db)})
        env["OUTREACH_LEMLIST_POLL_SECONDS"] = str(POLL_SECONDS)
        cluster = AirflowCluster(home, REPO / "example_dags", env=env, parallelism=6, scheduled=True)
        cluster.start()
        cluster.wait_for_dag(DAG_ID)
        cluster.unpause(DAG_ID)  # the watcher runs while a DAG scheduled on its asset is unpaused
        deadline = time.monotonic() + 90
        while len(list_reads(sandbox)) < 2:
            assert time.monotonic() < deadline, "the watcher did not start polling"
            time.sleep(0.5)

        # -- a person unsubscribes through lemlist's link; the provider's own suppression is no event
        sandbox.add_lemlist_unsubscribes([{"value": email(0), "source": "lead"}, {"value": email(1), "source": "api"}])
        latency = wait_until_removed(sandbox, [0], timeout=REACH_WITHIN)
        report["latency_s"] = round(latency, 1)
        runs_after_first = len(cluster.dag_runs(DAG_ID))
        sandbox.add_lemlist_unsubscribes([{"value": email(2), "source": "api"}])
        time.sleep(3 * POLL_SECONDS)
        state = sandbox.state()
        assert removed(state, 1) == {"leadlex": False, "dialnexa": False}, "a record with source api was acted on"
        assert removed(state, 2) == {"leadlex": False, "dialnexa": False}
        assert len(cluster.dag_runs(DAG_ID)) == runs_after_first, "a record with source api started a run"

        # -- the triggerer is killed; a record joins while it is down; it starts again; one more record
        cluster.kill("triggerer")
        sandbox.add_lemlist_unsubscribes([{"value": email(3), "source": "bounced"}])
        time.sleep(2 * POLL_SECONDS)
        cluster.restart("triggerer")
        sandbox.add_lemlist_unsubscribes([{"value": email(4), "source": "abuse"}])
        report["after_restart_s"] = round(wait_until_removed(sandbox, [3, 4], timeout=2 * REACH_WITHIN), 1)

        # -- 250 records at once
        burst = list(range(10, 260))
        sandbox.add_lemlist_unsubscribes([{"value": email(i), "source": "lead"} for i in burst])
        report["burst_250_s"] = round(wait_until_removed(sandbox, burst, timeout=240), 1)
        untouched = [i for i in range(260, PEOPLE) if any(removed(sandbox.state(), i).values())]
        assert untouched == [], f"people who did not opt out were removed: {untouched[:5]}"

        # -- nothing changes: one request per poll
        time.sleep(POLL_SECONDS)  # the last runs' own requests are over; the cursor is saved
        since = sandbox.requests()[-1]["seq"]
        quiet = 4 * POLL_SECONDS
        time.sleep(quiet)
        reads = list_reads(sandbox, since=since)
        report["quiet_reads"] = f"{len(reads)} list reads in {quiet} s (poll every {POLL_SECONDS} s)"
        assert quiet / POLL_SECONDS - 1 <= len(reads) <= quiet / POLL_SECONDS + 1, report["quiet_reads"]
        report["runs"] = len(cluster.dag_runs(DAG_ID))
        assert all(run["state"] in ("success", "running", "queued") for run in cluster.dag_runs(DAG_ID))
    except BaseException:
        if cluster is not None:
            print(cluster.diagnostics(DAG_ID, "", None, lines=40))
        raise
    finally:
        stop = cluster.stop() if cluster is not None else None
        sandbox.close()
        sandbox_proc.terminate()
        sandbox_proc.wait(timeout=10)
        sandbox_log.close()
        print("\nevent e2e report:", json.dumps(report))
    assert stop is not None and stop.leftovers == [], f"processes left behind: {stop.leftovers}"
    assert report["latency_s"] <= REACH_WITHIN
    leaks = secrets_watch.leaks_in_files(p for p in home.rglob("*") if p.is_file() and p.name != "airflow.cfg")
    assert not leaks, "API key leaked: " + "; ".join(leaks)
