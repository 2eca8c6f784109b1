"""``outreach_suppression_sync`` under a real scheduler: LocalExecutor, triggerer, sandbox.

Two runs of the example DAG on a deployment the test starts and stops itself (see
``tests/e2e/cluster.py``): api-server, scheduler with the LocalExecutor, dag-processor and
triggerer, each a process of its own, against the sandbox (its own process) and a SQLite
warehouse built by ``demo/warehouse.py``; the scheduler creates runs on the DAG's schedule.

1. **The first scheduled run of a fresh install**: unpausing the DAG makes the scheduler
   create it. The warehouse holds opt-outs recorded before the provider was installed, never
   pushed to the tools: the run catches up on them and its checks are green.
2. **A manual run with no logical date** (what the UI's "Trigger" and an upstream
   pipeline's trigger do): more than 1,000 new opt-outs, spread over lemlist, LeadLex
   (several campaigns: several map indexes) and DialNexa. LeadLex now has a small request
   cap whose window outlasts the operators' ``max_inline_wait`` (set in the run's conf), so
   a LeadLex task must defer and be resumed by the real triggerer. What the first run proved
   is not sent again.

Nothing below depends on the DAG's task list beyond the vendor prefix of task ids
(``lemlist_``, ``leadlex_``: the lemlist tasks, the mapped LeadLex removal) and the audit's
vendor/action names; the cluster machinery knows no task at all. On failure the tails of
the components' logs and of the unfinished tasks' logs are printed; the cluster's
AIRFLOW_HOME is kept under pytest's basetemp.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient
from airflow_provider_outreach.sandbox.process import start_sandbox_process
from demo import verify, warehouse
from demo.verify import items_of
from tests import secrets_watch
from tests.conftest import REPO
from tests.e2e.cluster import AirflowCluster

pytestmark = pytest.mark.e2e

DAG_ID = "outreach_suppression_sync"
AUDIT_TABLE = "outreach_suppression_audit"
PARALLELISM = 8  # every task of the fan-out at once: 2 lemlist, the LeadLex map indexes, DialNexa
PEOPLE = 1300
#: the manual run's conf sets the operators' max_inline_wait (default 60 s) to this
MAX_INLINE_WAIT = 10.0
#: the LeadLex cap's window must reset more than MAX_INLINE_WAIT after the cap is hit, so the
#: first LeadLex request of the run (the pull) must come less than QUOTA_SLACK s before that
QUOTA_SLACK = 30.0
LEADLEX_WINDOW = MAX_INLINE_WAIT + QUOTA_SLACK
#: lemlist at a higher plan's limit than its documented 20 / 2 s (1,000+ single-lead calls)
LEMLIST_LIMIT = (100, 2.0)
MAX_429_PER_VENDOR = 2
BEFORE_INSTALL = pendulum.datetime(2026, 10, 1, tz="UTC")
RUN_TIMEOUT = 330.0

OK_OUTCOMES = {"done", "already_absent", "honoured"}


# -- data ------------------------------------------------------------------------------------------


def email(i: int) -> str:
    return f"e2e.person{i:05d}@example.com"


def groups(n: int = PEOPLE) -> dict[str, list[int]]:
    """Who is who, by person number.

    * ``before_install``: opted out in the CRM before the provider was installed and never
      suppressed in the tools: the first run must catch up on them;
    * ``earlier``: opted out before the install too, and already suppressed everywhere (by
      hand, so also on lemlist's unsubscribe list): acting on them again changes nothing;
    * ``lemlist_origin``: unsubscribed inside lemlist only (its link, a bounce, an abuse
      report), still enrolled in LeadLex or queued in DialNexa: the loop must reach them too;
    * ``crm``: opted out in the CRM after the first run (more than 1,000): the manual run's work;
    * ``untouched``: everyone else.
    """
    crm = [i for i in range(n) if i % 6 != 5]
    rest = [i for i in range(n) if i % 6 == 5]
    earlier = rest[:30]
    lemlist_origin = [i for i in rest[30:] if in_leadlex(i) or in_dialnexa(i)][:15]
    before_install = [i for i in rest[30:] if i not in lemlist_origin and (in_leadlex(i) or i % 2)][:60]
    taken = set(crm) | set(earlier) | set(lemlist_origin) | set(before_install)
    return {
        "crm": crm,
        "earlier": earlier,
        "lemlist_origin": lemlist_origin,
        "before_install": before_install,
        "untouched": [i for i in range(n) if i not in taken],
    }


def in_lemlist(i: int) -> bool:
    return i % 2 == 0 or not (in_leadlex(i) or in_dialnexa(i))


def in_leadlex(i: int) -> bool:
    return i % 8 == 1


def in_dialnexa(i: int) -> bool:
    return i % 3 == 0 or i % 7 == 5


def build_seed(n: int = PEOPLE) -> dict[str, Any]:
    """lemlist leads (3 campaigns), LeadLex enrollments (4 campaigns: 4 map indexes), DialNexa
    leads (3 campaigns, one completed), for ``groups(n)``."""
    who = groups(n)
    earlier, origin = set(who["earlier"]), set(who["lemlist_origin"])
    lemlist = [
        {"_id": f"cam_e2e{k}", "name": f"E2E lemlist {k}", "status": status, "leads": []}
        for k, status in enumerate(("running", "paused", "ended"))
    ]
    leadlex = [
        {"id": f"llx-e2e-{k}", "name": f"E2E LeadLex {k}", "status": status, "contacts": [], "removed_contacts": []}
        for k, status in enumerate(("active", "paused", "active", "completed"))
    ]
    dialnexa = [
        {"id": f"cmp_e2e{k}", "name": f"E2E calls {k}", "status": status, "agent_id": "agt_e2e", "leads": []}
        for k, status in enumerate(("active", "running", "completed"))
    ]
    unsubscribes = []
    for i in range(n):
        done = i in earlier  # suppressed by earlier runs
        if in_lemlist(i):
            lead = {"_id": f"lea_e2e{i:05d}", "email": email(i), "firstName": "E", "notInterested": done}
            lemlist[(i // 2) % 3]["leads"].append(lead)
            if i % 10 == 0:  # in two campaigns
                lemlist[(i // 2 + 1) % 3]["leads"].append({"_id": f"lea_e2f{i:05d}", "email": email(i)})
        if done or i % 50 == 0:
            unsubscribes.append({"value": email(i), "source": "api"})
        if i in origin:
            unsubscribes.append({"value": email(i), "source": ("lead", "bounced", "abuse")[i % 3]})
        if in_leadlex(i):
            where = "removed_contacts" if done else "contacts"
            leadlex[(i // 8) % 4][where].append({"contact_id": f"ctc-e2e-{i:05d}", "email": email(i)})
            if i % 40 == 1:  # enrolled twice
                leadlex[(i // 8 + 1) % 4][where].append({"contact_id": f"ctc-e2f-{i:05d}", "email": email(i)})
        if in_dialnexa(i):
            dialnexa[(i // 3) % 3]["leads"].append(
                {
                    "id": f"cld_e2e{i:05d}",
                    "phone_number": f"+1555{i:07d}",
                    "email": email(i),
                    "status": "removed" if done else "pending",
                }
            )
    return {
        "lemlist": {"campaigns": lemlist, "unsubscribes": unsubscribes},
        "leadlex": {"campaigns": leadlex},
        "dialnexa": {"campaigns": dialnexa, "agents": [{"id": "agt_e2e", "name": "Eve"}]},
    }


def leadlex_cap(seed: dict[str, Any], to_remove: set[str]) -> int:
    """About two thirds of the LeadLex removals: the cap is hit once, and the next window holds
    the rest and the reads around them (the pull, the preflights, the check)."""
    removals = len(items_of(seed, to_remove)[("leadlex", "remove_contact")])
    return math.ceil(0.65 * (removals + len(seed["leadlex"]["campaigns"])))


# -- evidence ------------------------------------------------------------------------------------


def read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def deferral_evidence(cluster: AirflowCluster, run_id: str, ti: dict[str, Any]) -> dict[str, Any]:
    """What the task log and the triggerer's log file of one task instance say about a deferral.

    The ``attempt=N.log.trigger.<id>.log`` file is written by the triggerer process only.
    """
    folder = cluster.task_log_dir(DAG_ID, run_id, ti["task_id"], ti["map_index"])
    task_log = read_log(folder / f"attempt={ti['try_number']}.log")
    trigger_logs = sorted(folder.glob(f"attempt={ti['try_number']}.log.trigger.*.log"))
    trigger_text = "\n".join(read_log(p) for p in trigger_logs)
    paused = task_log.find("Pausing task as DEFERRED")
    return {
        "deferred": paused >= 0,
        "resumed": paused >= 0 and task_log.find("Resuming", paused) > paused,
        "trigger_logs": [p.name for p in trigger_logs],
        "trigger_fired": "Trigger fired event" in trigger_text and "trigger completed" in trigger_text,
    }


def overlapping(intervals: list[tuple[str, str]]) -> bool:
    """Whether any two [start, end] intervals overlap."""
    spans = sorted((pendulum.parse(a), pendulum.parse(b)) for a, b in intervals if a and b)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


# -- the test ------------------------------------------------------------------------------------


def run_report(tis: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: (
            ti["state"],
            ti["try_number"],
        )
        for ti in tis
    }


def final_audit_rows(warehouse_db: Path, run_id: str) -> dict[tuple, list[str]]:
    """Per (vendor, action, task, map index, item) of one run: its final outcomes, oldest first."""
    rows = (
        sqlite3.connect(warehouse_db)
        .execute(
            f"SELECT vendor, action, item, outcome, task_id, map_index FROM {AUDIT_TABLE} "
            "WHERE run_id = ? ORDER BY recorded_at",
            (run_id,),
        )
        .fetchall()
    )
    final: dict[tuple, list[str]] = defaultdict(list)
    for vendor, action, item, outcome, task_id, map_index in rows:
        if outcome in OK_OUTCOMES or outcome in {"failed", "not_honoured"}:
            final[(vendor, action, task_id, map_index, item)].append(outcome)
    return final


@pytest.mark.timeout(720)
def test_suppression_sync_under_a_real_scheduler(tmp_path_factory):
    started = time.monotonic()
    home = tmp_path_factory.mktemp("e2e-airflow-home")
    seed = build_seed()
    who = {name: [email(i) for i in people] for name, people in groups().items()}
    assert len(who["crm"]) >= 1000
    seed_path = home / "seed.json"
    seed_path.write_text(json.dumps(seed))
    warehouse_db = home / "warehouse.db"
    warehouse.build(warehouse_db, seed)
    warehouse.add_optouts(warehouse_db, who["before_install"] + who["earlier"], BEFORE_INSTALL)
    # lemlist's list holds some people from the start: the first run's pull brings them in
    listed = {u["value"] for u in seed["lemlist"]["unsubscribes"]}
    new_people = set(who["crm"]) - listed
    cap = leadlex_cap(seed, new_people)

    sandbox_log = open(home / "sandbox.log", "wb")  # closed in the finally below
    sandbox_proc, sandbox_url = start_sandbox_process(
        "--seed",
        str(seed_path),
        "--lemlist-limit",
        f"{LEMLIST_LIMIT[0]}/{LEMLIST_LIMIT[1]:g}",
        output=sandbox_log,
    )
    sandbox = SandboxClient(sandbox_url)
    cluster = None
    run_id, tis = "", []
    report: dict[str, Any] = {"leadlex_cap": f"{cap} requests / {LEADLEX_WINDOW:g} s in the manual run"}
    try:
        before = sandbox.state()
        conns = {
            f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT": json.dumps(
                {"conn_type": vendor, "host": sandbox.vendor_url(vendor), "password": key}
                | (
                    {"extra": {"rate_limit": LEMLIST_LIMIT[0], "rate_limit_period": LEMLIST_LIMIT[1]}}
                    if vendor == "lemlist"
                    else {}
                )
            )
            for vendor, key in DEFAULT_KEYS.items()
        }
        conns["AIRFLOW_CONN_OUTREACH_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(warehouse_db)})
        cluster = AirflowCluster(home, REPO / "example_dags", env=conns, parallelism=PARALLELISM, scheduled=True)
        cluster.start()
        cluster.wait_for_dag(DAG_ID)

        # -- 1. the first scheduled run of a fresh install catches up on the earlier opt-outs
        cluster.unpause(DAG_ID)
        run_id = cluster.wait_for_run_created(DAG_ID, "scheduled")["dag_run_id"]
        state, tis = cluster.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
        report["first_run"] = {"run_id": run_id, "task_instances": run_report(tis)}
        assert state == "success", f"the first scheduled run ended {state}: {run_report(tis)}"
        assert all(ti["try_number"] == 1 for ti in tis), f"a task needed a retry: {run_report(tis)}"
        caught_up = sorted(set(who["before_install"] + who["earlier"]) | listed)
        for tool, parts in verify.suppression_state(sandbox.state(), caught_up).items():
            assert parts["not_honoured"] == [], f"first run, {tool}: {len(parts['not_honoured'])} not honoured"
        first_rows = final_audit_rows(warehouse_db, run_id)
        assert {(v, a) for v, a, *_ in first_rows} >= {
            ("lemlist", "check"),
            ("leadlex", "check"),
            ("dialnexa", "check"),
        }

        # -- 2. a manual run with no logical date: the new opt-outs, under LeadLex's cap
        sandbox.configure(limits={"leadlex": [{"limit": cap, "window": LEADLEX_WINDOW}]})
        warehouse.add_optouts(warehouse_db, who["crm"], BEFORE_INSTALL.add(days=40))
        run_id = "e2e_manual"
        created = cluster.trigger(DAG_ID, run_id, conf={"max_inline_wait": MAX_INLINE_WAIT})
        assert created["logical_date"] is None
        state, tis = cluster.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
        after = sandbox.state()
        log = {vendor: sandbox.requests(vendor=vendor) for vendor in DEFAULT_KEYS}
        report["429s"] = {vendor: sum(1 for r in records if r["status"] == 429) for vendor, records in log.items()}
        report["requests"] = {vendor: len(records) for vendor, records in log.items()}
        report["task_instances"] = run_report(tis)

        # -- the run and its task instances
        assert state == "success", f"run ended {state}: {report['task_instances']}"
        assert tis and all(ti["state"] == "success" for ti in tis), report["task_instances"]
        assert all(ti["try_number"] == 1 for ti in tis), f"a task needed a retry: {report['task_instances']}"
        leadlex_mapped = [ti for ti in tis if ti["task_id"].startswith("leadlex") and ti["map_index"] >= 0]
        assert len({ti["map_index"] for ti in leadlex_mapped}) >= 3, "LeadLex work is mapped per campaign"

        # -- in parallel on each key
        lemlist_tis = [(ti["start_date"], ti["end_date"]) for ti in tis if ti["task_id"].startswith("lemlist")]
        assert overlapping(lemlist_tis), f"lemlist tasks did not run in parallel: {lemlist_tis}"
        assert overlapping([(ti["start_date"], ti["end_date"]) for ti in leadlex_mapped])
        removals_per_campaign: dict[str, list[float]] = defaultdict(list)
        manual_started = pendulum.parse(min(ti["start_date"] for ti in tis if ti["start_date"])).float_timestamp
        for r in log["leadlex"]:
            if r["method"] == "DELETE" and "/contacts/" in r["path"] and r["time"] >= manual_started:
                removals_per_campaign[r["path"].split("/campaigns/")[1].split("/")[0]].append(r["time"])
        spans = [
            (pendulum.from_timestamp(min(t)).isoformat(), pendulum.from_timestamp(max(t)).isoformat())
            for t in removals_per_campaign.values()
        ]
        assert overlapping(spans), f"LeadLex campaigns were not worked on at the same time: {spans}"

        # -- one quota deferral, resumed by the real triggerer, in the same try
        evidence = {f"{ti['task_id']}[{ti['map_index']}]": deferral_evidence(cluster, run_id, ti) for ti in tis}
        report["deferrals"] = {k: v for k, v in evidence.items() if v["deferred"] or v["trigger_logs"]}
        resumed = [
            k
            for k, v in evidence.items()
            if k.startswith("leadlex") and v["deferred"] and v["resumed"] and v["trigger_logs"] and v["trigger_fired"]
        ]
        assert resumed, f"no LeadLex task deferred and was resumed by the triggerer: {report['deferrals']}"

        # -- at most two 429s per vendor (the pacers share each key's budget across processes)
        assert all(n <= MAX_429_PER_VENDOR for n in report["429s"].values()), report["429s"]

        # -- the sandbox's end state: every opt-out honoured everywhere, nobody else touched
        opted_out = sorted(set(who["crm"]) | set(caught_up))
        for tool, parts in verify.suppression_state(after, opted_out).items():
            assert parts["not_honoured"] == [], f"{tool}: {len(parts['not_honoured'])} not honoured"
        assert verify.changed(before, after, who["untouched"] + who["earlier"]) == []

        # -- the audit: one final row per person per vendor and action, nothing failed, and only
        # the new opt-outs sent: what the first run proved is not sent again
        final = final_audit_rows(warehouse_db, run_id)
        bad = {k: v for k, v in final.items() if v[-1] not in OK_OUTCOMES}
        assert not bad, f"{len(bad)} audit items did not end well, e.g. {list(bad.items())[:5]}"
        twice = {k: v for k, v in final.items() if len(v) != 1}
        assert not twice, f"{len(twice)} items have more than one final row, e.g. {list(twice.items())[:5]}"
        audited: dict[tuple[str, str], set[str]] = defaultdict(set)
        for vendor, action, _task, _index, item in final:
            audited[(vendor, action)].add(item)
        new = items_of(seed, new_people)
        for key, items in new.items():
            assert items <= audited[key], f"{key}: {len(items - audited[key])} opted-out people not acted on"
            extra = audited[key] - items
            assert not extra, f"{key}: {len(extra)} items sent again or never opted out, e.g. {sorted(extra)[:5]}"
        assert set(opted_out) <= audited[("lemlist", "check")], "the check reads every opt-out back"
        report["audit_rows"] = {f"{v} {a}": len(items) for (v, a), items in sorted(audited.items())}
    except BaseException:  # a failed assertion, a cluster error, pytest-timeout's interruption
        if cluster is not None:
            unfinished = [ti for ti in tis if ti["state"] != "success"]
            print(cluster.diagnostics(DAG_ID, run_id, unfinished or None, lines=60 if unfinished else 15))
        raise
    finally:
        if cluster is not None:
            stop = cluster.stop()
            report["stop"] = {"seconds": round(stop.seconds, 1), "exit_codes": stop.exit_codes, "killed": stop.killed}
        sandbox.close()
        sandbox_proc.terminate()
        sandbox_proc.wait(timeout=10)
        sandbox_log.close()
        report["peak"] = cluster.peak if cluster else {}
        report["seconds"] = {k: round(v, 1) for k, v in (cluster.timings if cluster else {}).items()}
        report["seconds"]["total"] = round(time.monotonic() - started, 1)
        print("\ne2e report:")
        for key, value in report.items():
            print(f"  {key}: {json.dumps(value, default=str)}")

    # -- every process of the deployment is gone, and no API key is in anything it wrote
    assert stop.leftovers == [], f"processes left behind: {stop.leftovers}"
    leaks = secrets_watch.leaks_in_files(p for p in home.rglob("*") if p.is_file() and p.name != "airflow.cfg")
    assert not leaks, "API key leaked: " + "; ".join(leaks)
