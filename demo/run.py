"""``make demo``: the suppression sync, end to end, on the local sandbox and a SQLite warehouse.

Starts the sandbox with its demo data and builds an embedded warehouse whose CRM recorded
opt-outs before the provider was installed. Then runs ``outreach_suppression_sync`` for
real (``dag.test()`` with a throwaway AIRFLOW_HOME) twice: the first run after install,
which catches up on those opt-outs, and the next day's run after the day's events (new CRM
opt-outs, people unsubscribing inside lemlist, an import re-adding an opted-out person to
LeadLex); then ``outreach_draft_campaign_cleanup``. Prints a short report and exits 0 only
when every step did what it must.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = Path(tempfile.mkdtemp(prefix="outreach-demo-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",  # the full log goes to a file; the report to the terminal
    }
)
sys.path.insert(0, str(REPO))

import pendulum  # noqa: E402

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient  # noqa: E402
from airflow_provider_outreach.sandbox.process import start_sandbox_process  # noqa: E402
from demo import scenario, verify, warehouse  # noqa: E402

SEED = REPO / "airflow_provider_outreach" / "sandbox" / "demo_seed.json"
AUDIT = "outreach_suppression_audit"


@contextmanager
def quiet(log_path: Path):
    """Send Airflow's console output to a log file while DAGs run."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def set_connections(sandbox: SandboxClient, warehouse_db: Path) -> None:
    for vendor, key in DEFAULT_KEYS.items():
        os.environ[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = json.dumps(
            {"conn_type": vendor, "host": sandbox.vendor_url(vendor), "password": key}
        )
    os.environ["AIRFLOW_CONN_OUTREACH_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(warehouse_db)})


def audit_counts(warehouse_db: Path, run_id: str) -> dict[str, dict[str, int]]:
    """Audit rows of one run, per tool and action: the count of each outcome."""
    counts: dict[str, dict[str, int]] = {}
    with sqlite3.connect(warehouse_db) as db:
        for vendor, action, outcome, n in db.execute(
            f"SELECT vendor, action, outcome, count(*) FROM {AUDIT} WHERE run_id = ? GROUP BY vendor, action, outcome",
            (run_id,),
        ):
            counts.setdefault(f"{vendor} {action}", {})[outcome] = n
    return counts


def failed_tasks(dag_run) -> set[str]:
    return {ti.task_id for ti in dag_run.get_task_instances() if ti.state == "failed"}


def main() -> int:
    started = time.monotonic()
    proc, url = start_sandbox_process("--demo")
    log_path = HOME / "airflow-demo.log"
    try:
        sandbox = SandboxClient(url)
        seed = json.loads(SEED.read_text())
        who = scenario.people(seed)
        today = pendulum.today("UTC")
        warehouse_db = HOME / "warehouse.db"
        warehouse.build(warehouse_db, seed)
        warehouse.add_optouts(warehouse_db, who["earlier"], today.subtract(days=30))
        set_connections(sandbox, warehouse_db)

        with quiet(log_path):
            from airflow.dag_processing.dagbag import DagBag
            from airflow.utils import db

            db.initdb()
            bag = DagBag(dag_folder=str(REPO / "example_dags"))
            if bag.import_errors:
                raise SystemExit(f"example DAGs failed to import: {bag.import_errors}")
            sync = bag.get_dag("outreach_suppression_sync")
            first = sync.test(logical_date=today.subtract(days=1))
        caught_up = verify.suppression_state(sandbox.state(), who["earlier"])

        # the day's events: new CRM opt-outs, unsubscribes inside lemlist, an import re-adds someone
        warehouse.add_optouts(warehouse_db, who["today"], today)
        sources = ["lead", "bounced", "abuse", "lead", "user"]
        unsubscribes = [{"value": e, "source": s} for e, s in zip(who["from_lemlist"], sources, strict=False)]
        sandbox.seed({"lemlist": {"unsubscribes": unsubscribes}})
        campaign_id, contact_id, readded = scenario.enrollments_of(seed, who["earlier"])[-1]
        sandbox.seed(
            {
                "leadlex": {
                    "campaigns": [{"id": campaign_id, "contacts": [{"contact_id": contact_id, "email": readded}]}]
                }
            }
        )
        before = sandbox.state()

        with quiet(log_path):
            second = sync.test(logical_date=today)
            campaigns = before["leadlex"]["campaigns"]
            drafts = [cid for cid, c in campaigns.items() if c["status"] == "draft"]
            pending = [cid for cid, c in campaigns.items() if c["status"] == "pending_approval"]
            completed = [cid for cid, c in campaigns.items() if c["status"] == "completed"]
            for cid in pending:  # approval is pending: it is turned back into a draft while we wait
                sandbox.set_campaign_status("leadlex", cid, "draft", after_seconds=3)
            cleanup = bag.get_dag("outreach_draft_campaign_cleanup").test(run_conf={"campaign_ids": drafts + pending})

        after = sandbox.state()
        day = who["today"] + who["from_lemlist"]
        honoured = verify.suppression_state(after, day)
        reached = verify.suppression_state(after, who["from_lemlist"])
        untouched = verify.changed(before, after, who["earlier"])
        first_counts, second_counts = (
            audit_counts(warehouse_db, first.run_id),
            audit_counts(warehouse_db, second.run_id),
        )
        with sqlite3.connect(warehouse_db) as wh:
            caught = wh.execute(
                f"SELECT vendor, item FROM {AUDIT} WHERE run_id = ? AND action = 'check' AND outcome = 'not_honoured'",
                (second.run_id,),
            ).fetchall()
            earlier_items = verify.items_of(seed, set(who["earlier"]))
            resent = [
                (vendor, item)
                for vendor, action, item in wh.execute(
                    f"SELECT vendor, action, item FROM {AUDIT} WHERE run_id = ? AND action <> 'check'", (second.run_id,)
                )
                if item.lower() in earlier_items.get((vendor, action), set())
            ]
        deleted = [cid for cid in drafts + pending if cid not in after["leadlex"]["campaigns"]]
        spared = [cid for cid in completed if cid in after["leadlex"]["campaigns"]]

        print("\nOutreach suppression loop — demo report")
        print(f"  warehouse: {len(who['earlier'])} CRM opt-outs recorded before the provider was installed")
        print(f"  first run after install: {first.state}; it caught up on them:")
        print_counts(first_counts)
        for tool, parts in caught_up.items():
            print(f"    {tool:<9} honoured {len(parts['honoured']):>3} / {len(who['earlier'])}")
        print(
            f"  the next day: {len(who['today'])} new CRM opt-outs; {len(who['from_lemlist'])} people unsubscribed "
            f"inside lemlist ({', '.join(sources)}), in no CRM table; an import re-added {readded} "
            f"(opted out earlier) to LeadLex campaign {campaign_id}"
        )
        print(f"  the next day's run: {second.state} (a check that finds an opt-out not honoured fails it)")
        for task_id in sorted(failed_tasks(second)):
            print(f"    task {task_id}: failed")
        print_counts(second_counts)
        print(f"    sent again for the earlier opt-outs: {len(resent)} (the audit proves them done: done_earlier)")
        print("  opt-outs that started in lemlist, now out of the other tools:")
        for tool in ("leadlex", "dialnexa"):
            print(f"    {tool:<9} {len(reached[tool]['honoured'])} / {len(who['from_lemlist'])}")
        for vendor, item in caught:
            print(f"    caught by the check: {vendor} {item} ({readded}: re-added after opting out)")
        print("  sandbox end state (the day's opt-outs, every tool):")
        for tool, parts in honoured.items():
            print(
                f"    {tool:<9} honoured {len(parts['honoured']):>3} / {len(day)}"
                + (f"   NOT honoured: {parts['not_honoured']}" if parts["not_honoured"] else "")
            )
        print(
            f"    earlier opt-outs changed by the next day's run: {len(untouched)}"
            + (f" {untouched}" if untouched else "")
        )
        print(
            f"  outreach_draft_campaign_cleanup run: {cleanup.state}; deleted {len(deleted)} of "
            f"{len(drafts + pending)} draft campaigns; completed campaigns left alone: {len(spared)}/{len(completed)}"
        )
        ok = (
            first.state == "success"
            and not any(parts["not_honoured"] for parts in caught_up.values())
            and failed_tasks(second) == {"check_leadlex"}  # it caught the re-added person
            and caught == [("leadlex", contact_id)]
            and not resent
            and cleanup.state == "success"
            and not any(c.get("failed") for c in [*first_counts.values(), *second_counts.values()])
            and not any(parts["not_honoured"] for parts in honoured.values())
            and all(len(reached[tool]["honoured"]) == len(who["from_lemlist"]) for tool in ("leadlex", "dialnexa"))
            and not untouched
            and len(deleted) == len(drafts + pending)
        )
        print(
            f"  result: {'OK' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s (Airflow output: {log_path})"
        )
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def print_counts(counts: dict[str, dict[str, int]]) -> None:
    for key, by_outcome in sorted(counts.items()):
        print(f"    {key:<34} " + "   ".join(f"{outcome} {n:>3}" for outcome, n in sorted(by_outcome.items())))


if __name__ == "__main__":
    sys.exit(main())
