"""Every bulk operator under 20 % random faults: each item one outcome, matching the sandbox.

The sandbox answers one request in five with a 500, 502, 503, a 429, a dropped
connection or an answer slower than the connection's read timeout; half the faults hit
after the change was applied ("after" phase). Each operator processes 2,000 unique items
(10,000 with ``OUTREACH_LARGE=1``; ``OUTREACH_CHAOS_ITEMS=N`` sets any number), a fifth of
which do not exist, plus duplicates. The hook gets two attempts per item, so some items
exhaust them and fail. Asserted:

* every unique item has exactly one outcome, and nothing was sent for anything else;
* ``done`` items hold in the sandbox (and got a real 200); ``already_absent`` items that
  existed hold too (an earlier attempt of the same run applied them); items that did not
  exist are never ``done`` nor created; items not in the input are untouched;
* a ``failed`` item was tried exactly twice and each attempt met a fault; it may or may
  not hold in the sandbox (an "after" or slow fault applies the change, then the client
  sees the fault);
* a task retry (the same operator on the same input and task state store, the outage
  over) resumes: it sends only the failed items, once each, and keeps every other item's
  outcome; a failed item that holds comes back ``already_absent`` (``done`` for the
  idempotent actions), one that does not comes back ``done``.

429s carry ``Retry-After: 0`` here: each 429 correctly holds every worker of the key for
the wait it names, so a second per 429 would turn this into a test of waiting
(``test_trigger_chaos`` uses ``Retry-After: 1``).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import (
    LemlistAddUnsubscribeOperator,
    LemlistDeleteLeadOperator,
    LemlistMarkNotInterestedOperator,
    LemlistUnsubscribeLeadOperator,
)
from tests.conftest import MemoryStateStore, RecordingTI
from tests.reliability.conftest import report_figures, scale
from tests.seeds import base_seed

pytestmark = pytest.mark.slow

N_ITEMS = int(os.environ.get("OUTREACH_CHAOS_ITEMS") or scale(2_000, 10_000))
N_DUPLICATES = 50
N_BYSTANDERS = 20
GHOST_SHARE = 0.2
ATTEMPTS = 2
SLOW_SECONDS = 1.0
FAULTS = {
    "rate": 0.2,
    "kinds": {"500": 1, "502": 1, "503": 1, "429": 1, "drop": 1, "slow": 1},
    "slow_seconds": SLOW_SECONDS,
    "retry_after": 0,
    "vendors": None,
    "phase": "mixed",
    "seed": 7,
}
CONNECTION = {"timeout": 0.5, "trust_env": False}
#: LeadLex sends no Retry-After: a 429 holds every worker until its window's next whole-second
#: reset, so LeadLex gets fewer random ones, and two for sure (one after the change applied)
LEADLEX_FAULTS = {**FAULTS, "kinds": {**FAULTS["kinds"], "429": 0.1}}
LEADLEX_SCRIPT = [{"kind": "429", "retry_after": 0, "phase": "after"}, {"kind": "429", "retry_after": 0}]


def fast_retries(operator_cls: type) -> type:
    """The operator with a short back-off and two attempts per item (hook arguments)."""

    class Fast(operator_cls):
        def __init__(self, **kwargs):
            # every item and failure listed, to check each one
            super().__init__(report_item_limit=10**6, report_failure_limit=10**6, **kwargs)

        def get_hook(self):
            return self.spec.hook_class(
                self.conn_id, max_inline_wait=self.max_inline_wait, backoff=0.02, max_attempts=ATTEMPTS
            )

        def _preflight(self, hook):
            # the connection check reads once, patiently: the chaos is for the items
            return super()._preflight(self.spec.hook_class(self.conn_id, backoff=0.02, max_attempts=12))

    Fast.__name__ = Fast.__qualname__ = operator_cls.__name__
    return Fast


@dataclass
class Case:
    """One operator under chaos: its input, what the sandbox shows applied, what must stay."""

    name: str
    vendor: str
    operator: type
    kwargs: Callable[[list[str]], dict[str, Any]]
    seed: dict
    targets: list[str]  # items that exist (or, for add_unsubscribe, every item)
    ghosts: list[str]  # items that do not exist
    duplicates: list[str]
    applied: Callable[[dict], set[str]]  # input items the sandbox shows applied
    untouched: Callable[[dict], bool]  # the bystanders (not in the input) are unchanged
    endpoint: Callable[[list[str]], bool]  # the request addressed the action's endpoint
    idempotent: bool = False
    extra_connection: dict = field(default_factory=dict)
    faults: dict = field(default_factory=lambda: FAULTS)
    script: list = field(default_factory=list)  # scripted faults for the first requests

    @property
    def items(self) -> list[str]:
        return self.targets + self.ghosts


def _split(n: int) -> tuple[int, int]:
    ghosts = int(n * GHOST_SHARE)
    return n - ghosts, ghosts


def _lemlist_leads(n: int) -> tuple[dict, list[dict]]:
    leads = [{"_id": f"lea_{i:06d}", "email": f"lead{i:06d}@example.com"} for i in range(n)]
    keep = [{"_id": f"lea_keep{i:03d}", "email": f"keep{i:03d}@example.com"} for i in range(N_BYSTANDERS)]
    seed = {
        "lemlist": {"campaigns": [{"_id": "cam_chaos", "name": "Chaos", "status": "running", "leads": leads + keep}]}
    }
    return seed, leads


def _lemlist_lead_states(state: dict) -> dict[str, dict]:
    return state["lemlist"]["campaigns"]["cam_chaos"]["leads"]


def _keep_active(state: dict) -> bool:
    leads = _lemlist_lead_states(state)
    return all(
        leads[f"lea_keep{i:03d}"]["state"] == "active" and not leads[f"lea_keep{i:03d}"]["notInterested"]
        for i in range(N_BYSTANDERS)
    )


def unsubscribe_lead(n: int) -> Case:
    existing, ghosts = _split(n)
    seed, leads = _lemlist_leads(existing)
    targets = [lead["email"] for lead in leads]
    return Case(
        name="lemlist unsubscribe_lead",
        vendor="lemlist",
        operator=LemlistUnsubscribeLeadOperator,
        kwargs=lambda items: {"email": items, "campaign_id": "cam_chaos"},
        seed=seed,
        targets=targets,
        ghosts=[f"ghost{i:06d}@example.com" for i in range(ghosts)],
        duplicates=[email.upper() for email in targets[:N_DUPLICATES]],
        applied=lambda state: {
            lead["email"] for lead in _lemlist_lead_states(state).values() if lead["state"] == "unsubscribed"
        },
        untouched=_keep_active,
        endpoint=lambda segs: segs[:3] == ["campaigns", "cam_chaos", "leads"] and len(segs) == 4,
        extra_connection={"rate_limit": 100_000, "rate_limit_period": 1},
    )


def delete_lead(n: int) -> Case:
    existing, ghosts = _split(n)
    seed, leads = _lemlist_leads(existing)
    targets = [lead["_id"] for lead in leads]
    return Case(
        name="lemlist delete_lead",
        vendor="lemlist",
        operator=LemlistDeleteLeadOperator,
        kwargs=lambda items: {"lead_id": items, "campaign_id": "cam_chaos"},
        seed=seed,
        targets=targets,
        ghosts=[f"lea_ghost{i:06d}" for i in range(ghosts)],
        duplicates=targets[:N_DUPLICATES],
        applied=lambda state: {lid for lid, lead in _lemlist_lead_states(state).items() if lead["state"] == "removed"},
        untouched=_keep_active,
        endpoint=lambda segs: segs[:3] == ["campaigns", "cam_chaos", "leads"] and len(segs) == 4,
        extra_connection={"rate_limit": 100_000, "rate_limit_period": 1},
    )


def mark_not_interested(n: int) -> Case:
    existing, ghosts = _split(n)
    seed, leads = _lemlist_leads(existing)
    targets = [lead["_id"] if i % 2 else lead["email"] for i, lead in enumerate(leads)]  # ids and emails

    def applied(state: dict) -> set[str]:
        marked = [lead for lead in _lemlist_lead_states(state).values() if lead["notInterested"]]
        return {lead["_id"] for lead in marked} | {lead["email"] for lead in marked}

    return Case(
        name="lemlist mark_not_interested",
        vendor="lemlist",
        operator=LemlistMarkNotInterestedOperator,
        kwargs=lambda items: {"lead": items},
        seed=seed,
        targets=targets,
        ghosts=[f"lea_ghost{i:06d}" if i % 2 else f"ghost{i:06d}@example.com" for i in range(ghosts)],
        duplicates=targets[:N_DUPLICATES],
        applied=applied,
        untouched=_keep_active,
        endpoint=lambda segs: segs[:2] == ["leads", "notinterested"] and len(segs) == 3,
        idempotent=True,
        extra_connection={"rate_limit": 100_000, "rate_limit_period": 1},
    )


class AddUnsubscribeOnePerValue(LemlistAddUnsubscribeOperator):
    """The same action through the single-value route, so that each request names its value
    (the bulk route's chaos: ``test_bulk_suppression_under_random_faults``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.spec = replace(self.spec, batch_size=None)

    def apply(self, hook, value):
        return hook.add_unsubscribe(value)


def add_unsubscribe(n: int) -> Case:
    new, present = _split(n)  # a fifth of the values are suppressed already
    domains = 50
    targets = [f"new{i:06d}@example.com" for i in range(new - domains)] + [
        f"@dom{i:03d}.example.org" for i in range(domains)
    ]
    targets += [f"pre{i:06d}@example.com" for i in range(present)]
    keep = [f"keep{i:03d}@example.com" for i in range(N_BYSTANDERS)]
    seed = {"lemlist": {"unsubscribes": [{"value": v} for v in targets[new:] + keep]}}
    return Case(
        name="lemlist add_unsubscribe",
        vendor="lemlist",
        operator=AddUnsubscribeOnePerValue,
        kwargs=lambda items: {"value": items},
        seed=seed,
        targets=targets,
        ghosts=[],
        duplicates=[v.upper() for v in targets[:N_DUPLICATES]],
        applied=lambda state: set(state["lemlist"]["unsubscribes"]),
        untouched=lambda state: set(keep) <= set(state["lemlist"]["unsubscribes"]),
        endpoint=lambda segs: segs[:3] == ["v2", "unsubscribes", "variables"] and len(segs) == 4,
        idempotent=True,
        extra_connection={"rate_limit": 100_000, "rate_limit_period": 1},
    )


def remove_contact(n: int) -> Case:
    existing, ghosts = _split(n)
    targets = [f"ctc_{i:06d}" for i in range(existing)]
    keep = [f"ctc_keep{i:03d}" for i in range(N_BYSTANDERS)]
    contacts = [{"contact_id": c, "email": f"{c}@example.com"} for c in targets + keep]
    seed = {"leadlex": {"campaigns": [{"id": "cmp_chaos", "name": "Chaos", "status": "active", "contacts": contacts}]}}
    return Case(
        name="leadlex remove_contact",
        vendor="leadlex",
        operator=LeadlexRemoveContactOperator,
        kwargs=lambda items: {"contact_id": items, "campaign_id": "cmp_chaos"},
        seed=seed,
        targets=targets,
        ghosts=[f"ctc_ghost{i:06d}" for i in range(ghosts)],
        duplicates=targets[:N_DUPLICATES],
        applied=lambda state: set(state["leadlex"]["campaigns"]["cmp_chaos"]["removed_contacts"]),
        untouched=lambda state: set(keep) <= set(state["leadlex"]["campaigns"]["cmp_chaos"]["contacts"]),
        endpoint=lambda segs: segs[:4] == ["v1", "campaigns", "cmp_chaos", "contacts"] and len(segs) == 5,
        faults=LEADLEX_FAULTS,
        script=LEADLEX_SCRIPT,
    )


def remove_campaign_lead(n: int) -> Case:
    existing, ghosts = _split(n)
    targets = [f"cld_{i:06d}" for i in range(existing)]
    keep = [f"cld_keep{i:03d}" for i in range(N_BYSTANDERS)]
    leads = [{"id": lid, "phone_number": "+15550000001", "status": "pending"} for lid in targets + keep]
    seed = {"dialnexa": {"campaigns": [{"id": "cmp_chaos", "name": "Chaos", "status": "active", "leads": leads}]}}
    return Case(
        name="dialnexa remove_campaign_lead",
        vendor="dialnexa",
        operator=DialnexaRemoveCampaignLeadOperator,
        kwargs=lambda items: {"campaign_lead_id": items},
        seed=seed,
        targets=targets,
        ghosts=[f"cld_ghost{i:06d}" for i in range(ghosts)],
        duplicates=targets[:N_DUPLICATES],
        applied=lambda state: {lid for lid, lead in state["dialnexa"]["leads"].items() if lead["status"] == "removed"},
        untouched=lambda state: all(state["dialnexa"]["leads"][lid]["status"] == "pending" for lid in keep),
        endpoint=lambda segs: segs[0] == "campaigns-leads" and len(segs) == 2,
    )


CASES = [unsubscribe_lead, delete_lead, mark_not_interested, add_unsubscribe, remove_contact, remove_campaign_lead]


def run_task(op, ti: RecordingTI, store: MemoryStateStore) -> dict:
    """Run the operator as a task try; returns its report (from XCom when the try failed)."""
    try:
        return op.execute({"ti": ti, "task_state_store": store})
    except AirflowException as exc:
        assert "items failed" in str(exc), exc
        return ti.xcoms["report"]


def attempts_by_item(log: list[dict], case: Case) -> dict[str, list[dict]]:
    by_item: dict[str, list[dict]] = defaultdict(list)
    for record in log:
        if record["method"] == "GET":
            continue  # the connection check before the items
        assert record["method"] in ("DELETE", "POST") and case.endpoint(record["segments"]), record["path"]
        by_item[record["segments"][-1]].append(record)
    return by_item


def _outcomes(report: dict) -> dict[str, str]:
    return {item: name for name, listed in report["items"].items() for item in listed}


def check_every_item_has_one_outcome(report: dict, unique: set[str]) -> None:
    listed = [item for items in report["items"].values() for item in items]
    assert len(listed) == len(set(listed)), "an item has two outcomes"
    assert set(listed) == unique, (
        f"missing: {sorted(unique - set(listed))[:5]}, unexpected: {sorted(set(listed) - unique)[:5]}"
    )
    assert sum(report["counts"].values()) == len(unique)
    assert {k: len(v) for k, v in report["items"].items()} == report["counts"]
    assert sorted(f["item"] for f in report["failures"]) == sorted(report["items"]["failed"])


@pytest.mark.timeout(1800)  # the large scale takes minutes per operator
@pytest.mark.parametrize("make_case", CASES, ids=lambda make: make.__name__)
def test_bulk_operator_under_random_faults(remote, make_case):
    case = make_case(N_ITEMS)
    unique = set(case.items)
    assert len(unique) == N_ITEMS
    items = list(case.items)
    random.Random(3).shuffle(items)
    items += case.duplicates  # the same items again (other case for emails): dropped, counted
    remote.seed(case.seed)
    remote.configure(limits={"lemlist": []}, faults=case.faults)
    if case.script:
        remote.inject(case.vendor, case.script)
    remote.connect(case.vendor, **CONNECTION, **case.extra_connection)
    op = fast_retries(case.operator)(task_id="chaos", max_workers=16, **case.kwargs(items))

    store = MemoryStateStore()  # what every try of one task instance shares
    started = time.monotonic()
    first = run_task(op, RecordingTI(), store)
    first_seconds = time.monotonic() - started
    time.sleep(SLOW_SECONDS + 1.5)  # slow answers the client gave up on finish, with room for a loaded machine
    log = remote.requests()
    state = remote.state()

    outcome = {item: name for name, listed in first["items"].items() for item in listed}
    done, absent, failed = (set(first["items"][name]) for name in ("done", "already_absent", "failed"))
    check_every_item_has_one_outcome(first, unique)
    assert first["duplicates"] == N_DUPLICATES
    assert failed, "two attempts under 20 % faults should exhaust some items"
    assert all(f["reason"] in ("ServerError", "TransportError", "RateLimitError") for f in first["failures"])

    # the request log: only the input's items, each tried at most twice, and every
    # reported answer was really given
    attempts = attempts_by_item(log, case)
    assert set(attempts) <= unique
    assert max(len(tries) for tries in attempts.values()) <= ATTEMPTS
    assert all(any(r["status"] == 200 and not r["fault"] for r in attempts[i]) for i in done), "done without a 200"
    assert all(any(r["status"] == 404 and not r["fault"] for r in attempts[i]) for i in absent), "absent without a 404"
    for item in failed:
        tries = attempts[item]
        assert len(tries) == ATTEMPTS and all(r["fault"] for r in tries), (item, tries)
    faults = Counter(r["fault"] for r in log if r["fault"])
    assert set(faults) == {"500", "502", "503", "429", "drop", "slow"}

    # the sandbox holds what was reported, and nothing else changed
    applied = case.applied(state) & unique
    assert done <= applied, f"reported done, not applied: {sorted(done - applied)[:5]}"
    existed_and_absent = absent & set(case.targets)
    if case.idempotent:
        assert not existed_and_absent, "an existing item was reported absent by an idempotent action"
    else:
        assert existed_and_absent <= applied, sorted(existed_and_absent - applied)[:5]
    assert failed & applied and failed - applied, "the run exercised both sides of the failed rule"
    assert not (applied & set(case.ghosts)), "an item that did not exist was applied"
    assert {outcome[i] for i in case.ghosts} <= {"already_absent", "failed"}, "a missing item reported done"
    assert case.untouched(state), "an item not in the input was changed"

    # the task's retry: same operator, same input, the outage over; it resumes, it does not repeat
    remote.configure(faults=None)
    since = log[-1]["seq"] if log else 0
    started = time.monotonic()
    second = op.execute({"ti": RecordingTI(), "task_state_store": store})
    retry_seconds = time.monotonic() - started
    check_every_item_has_one_outcome(second, unique)
    assert second["counts"]["failed"] == 0
    retried = attempts_by_item(remote.requests(since=since), case)
    assert set(retried) == failed and all(len(tries) == 1 for tries in retried.values()), "only the failed, once"
    assert all(second_outcome == outcome[i] for i, second_outcome in _outcomes(second).items() if i not in failed)
    expected_done = done | {i for i in failed if i in set(case.targets) and (case.idempotent or i not in applied)}
    assert set(second["items"]["done"]) == expected_done
    assert set(second["items"]["already_absent"]) == unique - expected_done
    final = remote.state()
    assert case.applied(final) & unique == set(case.targets)
    assert case.untouched(final)

    figures = {
        "items": len(unique),
        "first": dict(first["counts"]),
        "failed_but_applied": len(failed & applied),
        "requests": len(log),
        "faults": dict(faults),
        "seconds": round(first_seconds, 1),
        "retry": dict(second["counts"]),
        "retry_seconds": round(retry_seconds, 1),
    }
    report_figures(f"chaos {case.name}", figures)


def test_a_short_429_window_does_not_stall_the_pacer(sandbox, connections):
    """An answer from the API's long window, arriving after a 429 that announced a short one,
    lets requests flow again: the pacer does not wait out the long window."""
    sandbox.seed(base_seed())
    DialnexaHook().get_campaign("cmp_live")  # the pacer learns the API's window (no limit: 60 s)
    sandbox.inject(
        "dialnexa", [{"kind": "slow", "phase": "before", "slow_seconds": 0.6}, {"kind": "429", "retry_after": 1}]
    )
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(DialnexaHook(max_inline_wait=5).get_campaign, "cmp_live")  # answered after the 429
        time.sleep(0.2)
        limited = pool.submit(DialnexaHook(max_inline_wait=5).get_campaign, "cmp_live")  # 429, then a retry
        assert slow.result()["id"] == limited.result()["id"] == "cmp_live"
    assert DialnexaHook(max_inline_wait=5).get_campaign("cmp_live")["id"] == "cmp_live"
    assert time.monotonic() - started < 30  # the long window is 60 s
    assert [r["fault"] for r in sandbox.requests(vendor="dialnexa")].count("429") == 1


def test_bulk_suppression_under_random_faults(remote):
    """lemlist's bulk route under the same faults: every value one outcome, the values of a
    failed chunk failed together, and the task's retry resumes with exactly those."""
    values = [f"bulk{i:05d}@example.com" for i in range(N_ITEMS)]
    remote.reset()
    remote.configure(limits={"lemlist": []}, faults=FAULTS)
    remote.connect("lemlist", **CONNECTION)
    # beyond the random faults, the first 16 requests after the preflight fail: 8 workers send
    # them, so at least one worker's chunk fails both its attempts, whatever the threads' order
    remote.inject("lemlist", ["ok"] + ["500"] * (ATTEMPTS * 8))
    op = fast_retries(LemlistAddUnsubscribeOperator)(task_id="chaos", value=values, chunk_size=50, max_workers=8)
    store = MemoryStateStore()
    first = run_task(op, RecordingTI(), store)
    time.sleep(SLOW_SECONDS + 1.5)
    check_every_item_has_one_outcome(first, set(values))
    failed = set(first["items"]["failed"])
    assert failed, "the scripted faults exhaust at least one chunk's attempts"
    assert len(failed) % 50 == 0  # a chunk fails as a whole
    assert all(f["reason"] in ("ServerError", "TransportError", "RateLimitError") for f in first["failures"])
    suppressed = set(remote.state()["lemlist"]["unsubscribes"])
    assert set(first["items"]["done"]) <= suppressed

    remote.configure(faults=None)
    since = remote.requests()[-1]["seq"]
    second = op.execute({"ti": RecordingTI(), "task_state_store": store})
    check_every_item_has_one_outcome(second, set(values))
    assert second["counts"] == {"done": N_ITEMS, "already_absent": 0, "failed": 0}
    posts = [r for r in remote.requests(since=since) if r["method"] == "POST"]
    assert len(posts) == len(failed) // 50  # only the failed chunks again, once each
    assert set(values) <= set(remote.state()["lemlist"]["unsubscribes"])
