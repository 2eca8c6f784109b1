"""The lemlist suppression-list event trigger, run as the triggerer runs it (its own thread and
event loop) over real HTTP against the sandbox."""

from __future__ import annotations

import asyncio
import bisect
import json
import threading
import time
import uuid
from collections import Counter

import pendulum
import pytest

from airflow_provider_outreach.exceptions import InvalidInputError
from airflow_provider_outreach.sandbox import DEFAULT_KEYS
from airflow_provider_outreach.triggers import lemlist_unsubscribes as module
from airflow_provider_outreach.triggers.lemlist_unsubscribes import CURSOR_KEY, LemlistUnsubscribeEventTrigger

CLASSPATH = "airflow_provider_outreach.triggers.lemlist_unsubscribes.LemlistUnsubscribeEventTrigger"
POLL = 0.2
LIST = "/v2/unsubscribes/variables"
#: records created a year ago: a start without a stored cursor does not emit them again
OLD = "2025-06-01T00:00:00.000Z"
EXISTING = 130
SOURCES = ("lead", "bounced", "abuse", "user", "api")


def existing(created_at: str | None = OLD) -> list[dict]:
    records = [{"value": f"old{i}@example.com", "source": SOURCES[i % 5]} for i in range(EXISTING)]
    if created_at is not None:
        for record in records:
            record["createdAt"] = created_at
    return records


def fresh(prefix: str, count: int, sources=SOURCES[:4]) -> list[dict]:
    return [{"value": f"{prefix}{i}@example.com", "source": sources[i % len(sources)]} for i in range(count)]


class Watcher:
    """A trigger's ``run()`` in a thread and event loop of its own, as the triggerer runs it.

    Each pause is timed, so the sandbox's request log can be split into polls.
    """

    def __init__(self, trigger: LemlistUnsubscribeEventTrigger, store=None) -> None:
        self.trigger = trigger
        if store is not None:
            trigger.asset_state_store = store  # what a 3.3 triggerer does for a watcher trigger
        self.payloads: list[dict] = []
        self.pauses: list[tuple[float, float]] = []  # (when it began, seconds)
        self.error: BaseException | None = None
        pause = trigger._pause

        async def timed(seconds: float) -> None:
            self.pauses.append((time.time(), seconds))
            await pause(seconds)

        trigger._pause = timed
        self.emitted_after: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _main(self) -> None:
        async def consume() -> None:
            async for event in self.trigger.run():
                self.payloads.append(json.loads(json.dumps(event.payload)))  # JSON only, as stored
                self.emitted_after.append(len(self.pauses))  # the poll that emitted it

        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(consume())
        self._started.set()
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self.error = exc
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    def records(self) -> list[dict]:
        return [record for payload in self.payloads for record in payload["records"]]

    def values(self) -> list[str]:
        return [record["value"] for record in self.records()]

    def wait(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.error is None, f"the trigger ended: {self.error!r}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def wait_polls(self, n: int) -> None:
        target = len(self.pauses) + n
        self.wait(lambda: len(self.pauses) >= target, f"{n} more polls")

    def wait_values(self, values) -> None:
        wanted = {v if isinstance(v, str) else v["value"] for v in values}
        self.wait(lambda: wanted <= set(self.values()), f"{sorted(wanted - set(self.values()))[:5]} emitted")

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(15)
        assert not self._thread.is_alive()
        assert self.error is None, f"the trigger ended: {self.error!r}"


def list_requests(sandbox) -> list[dict]:
    return [r for r in sandbox.requests(vendor="lemlist") if r["method"] == "GET" and r["path"] == LIST]


def requests_per_poll(watcher: Watcher, requests: list[dict]) -> list[list[dict]]:
    """The list requests each poll made (the start's first): those before each pause."""
    bounds = [when for when, _ in watcher.pauses]
    polls: list[list[dict]] = [[] for _ in bounds]
    for request in requests:
        i = bisect.bisect_left(bounds, request["time"])
        if i < len(bounds):
            polls[i].append(request)
    return polls


@pytest.fixture
def lemlist(sandbox, connections):
    """The sandbox holding a suppression list of 130 records, created a year ago."""
    sandbox.reset({"lemlist": {"unsubscribes": existing()}})
    return sandbox


@pytest.fixture
def watch():
    started: list[Watcher] = []

    def start(trigger: LemlistUnsubscribeEventTrigger | None = None, store=None) -> Watcher:
        watcher = Watcher(trigger or LemlistUnsubscribeEventTrigger(poll_interval=POLL), store)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        if watcher._thread.is_alive():
            watcher._loop.call_soon_threadsafe(watcher._task.cancel)
            watcher._thread.join(15)


# -- the asset state store of Airflow 3.3 -------------------------------------------------------


class InProcessComms:
    """The triggerer supervisor's end of a trigger runner's socket, for what a watcher's asset
    state store sends: Airflow's own request handlers answer, through its in-process execution
    API, on the session's SQLite metadata DB. Only the socket is left out."""

    def __init__(self) -> None:
        from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

        self.client = InProcessTestSupervisor._api_client()
        self.lock = threading.Lock()
        self.sets = 0

    def send(self, msg):
        from airflow.sdk.execution_time import comms
        from airflow.sdk.execution_time import request_handlers as handlers
        from airflow.sdk.execution_time.supervisor import set_supervisor_comms

        # the supervisor's side runs with no comms of its own, as in its own process
        with self.lock, set_supervisor_comms(None):
            if isinstance(msg, comms.GetAssetStateStoreByName):
                return handlers.handle_get_asset_state_store_by_name(self.client, msg)[0]
            if isinstance(msg, comms.SetAssetStateStoreByName):
                handlers.handle_set_asset_state_store_by_name(self.client, msg)
                self.sets += 1
                return comms.OKResponse(ok=True)
            if isinstance(msg, comms.MaskSecret):
                handlers.handle_mask_secret(msg)
                return None
        raise AssertionError(f"unexpected message {type(msg).__name__}")

    async def asend(self, msg):
        return self.send(msg)


class AssetStore:
    """One watched asset, its watcher DAG synced to the metadata DB."""

    def __init__(self, name: str, comms: InProcessComms) -> None:
        self.name = name
        self.comms = comms

    def accessor(self):
        """What the triggerer hands a watcher trigger at each start (triggerer_job_runner.py)."""
        from airflow.sdk import Asset
        from airflow.sdk.execution_time.context import AssetStateStoreAccessors

        return AssetStateStoreAccessors(inlets=[Asset(name=self.name, uri=self.name)])

    def value(self):
        return self.accessor().get(CURSOR_KEY)


def watcher_dag(asset_name: str, trigger: LemlistUnsubscribeEventTrigger):
    from airflow.sdk import DAG, Asset, AssetWatcher, task

    asset = Asset(asset_name, watchers=[AssetWatcher(name=f"{asset_name}_watcher", trigger=trigger)])
    with DAG(
        f"react_to_{asset_name}",
        schedule=[asset],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:

        @task
        def opted_out(triggering_asset_events=None) -> list[str]:
            return [r["value"] for e in triggering_asset_events[asset] for r in e.extra["payload"]["records"]]

        opted_out()
    return dag


@pytest.fixture
def asset_store(airflow_db, monkeypatch):
    from airflow.sdk.execution_time import task_runner

    from tests.dagtest import sync_dag

    name = f"lemlist_opt_outs_{uuid.uuid4().hex[:8]}"
    sync_dag(watcher_dag(name, LemlistUnsubscribeEventTrigger(poll_interval=POLL)))
    comms = InProcessComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    return AssetStore(name, comms)


# -- construction ---------------------------------------------------------------------------------


def test_serialize_is_exactly_the_constructor_arguments():
    from airflow.triggers.base import BaseEventTrigger

    trigger = LemlistUnsubscribeEventTrigger(lemlist_conn_id="lemlist_eu", poll_interval=5, sources=["lead", "abuse"])
    assert isinstance(trigger, BaseEventTrigger)
    expected = (CLASSPATH, {"lemlist_conn_id": "lemlist_eu", "poll_interval": 5.0, "sources": ["abuse", "lead"]})
    assert trigger.serialize() == expected
    again = LemlistUnsubscribeEventTrigger(**trigger.serialize()[1])
    assert again.serialize() == expected
    assert BaseEventTrigger.hash(*again.serialize()) == BaseEventTrigger.hash(*expected)
    assert LemlistUnsubscribeEventTrigger().serialize() == (
        CLASSPATH,
        {"lemlist_conn_id": "lemlist_default", "poll_interval": 60.0, "sources": None},
    )


@pytest.mark.parametrize("value", [0, -1, -0.5, float("inf"), float("nan"), "60", None, True, [60]])
def test_a_poll_interval_that_is_no_positive_finite_number_of_seconds_is_refused_by_name(value):
    with pytest.raises(InvalidInputError, match=r"^poll_interval must be a positive, finite number of seconds"):
        LemlistUnsubscribeEventTrigger(poll_interval=value)


@pytest.mark.parametrize(
    "kwargs,named",
    [
        ({"sources": "lead"}, "sources"),
        ({"sources": ["leads"]}, "sources"),
        ({"sources": []}, "sources"),
        ({"lemlist_conn_id": ""}, "lemlist_conn_id"),
    ],
)
def test_other_bad_arguments_are_refused_by_name(kwargs, named):
    with pytest.raises(InvalidInputError, match=f"^{named} must be"):
        LemlistUnsubscribeEventTrigger(**kwargs)


def test_a_dag_with_the_watcher_parses_and_registers_the_trigger(airflow_db, tmp_path):
    """A DAG file with an AssetWatcher on this trigger parses in a DagBag; synced unpaused,
    its watcher is one trigger row with exactly the serialized kwargs."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.dagtest import sync_dag

    name = f"opt_outs_{uuid.uuid4().hex[:8]}"
    (tmp_path / "watch.py").write_text(
        "from airflow.sdk import DAG, Asset, AssetWatcher\n"
        "from airflow_provider_outreach.triggers.lemlist_unsubscribes import LemlistUnsubscribeEventTrigger\n"
        f"opt_outs = Asset({name!r}, watchers=[AssetWatcher(name='lemlist', trigger=LemlistUnsubscribeEventTrigger("
        "lemlist_conn_id='lemlist_default', poll_interval=60))])\n"
        f"dag = DAG({'react_' + name!r}, schedule=[opt_outs], is_paused_upon_creation=False)\n"
    )
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    dag = bag.get_dag(f"react_{name}")
    sync_dag(dag)
    with create_session() as session:
        rows = [
            (t.classpath, t.kwargs)
            for t in session.scalars(select(Trigger))
            if any(w.asset.name == name for w in t.asset_watchers)
        ]
    assert rows == [(CLASSPATH, {"lemlist_conn_id": "lemlist_default", "poll_interval": 60.0, "sources": None})]


# -- what is emitted ------------------------------------------------------------------------------


def test_the_first_start_begins_at_the_end_of_the_list(sandbox, connections, asset_store, watch):
    """On 3.3 with no stored cursor nothing that exists is emitted, even records created just
    now (which the restart overlap of 3.0-3.2 would emit again); the cursor is stored at once."""
    sandbox.reset({"lemlist": {"unsubscribes": existing(created_at=None)}})
    watcher = watch(LemlistUnsubscribeEventTrigger(poll_interval=1.0), store=asset_store.accessor())
    watcher.wait_polls(1)
    stored = asset_store.value()  # before the first pause ends: a restart now would resume here
    last = list(sandbox.lemlist_unsubscribes().values())[-1]
    assert (stored["length"], stored["recent"][-1], stored["lemlist_conn_id"]) == (
        EXISTING,
        last["_id"],
        "lemlist_default",
    )
    watcher.wait_polls(2)
    assert watcher.payloads == []
    (added,) = sandbox.add_lemlist_unsubscribes([{"value": "click@example.com", "source": "lead"}])
    watcher.wait_values([added])
    assert watcher.records() == [{k: added[k] for k in ("_id", "value", "source", "createdAt")}]


def test_new_records_are_emitted_with_their_source_and_time_but_not_the_providers_own(lemlist, watch):
    watcher = watch()
    watcher.wait_polls(2)
    added = lemlist.add_lemlist_unsubscribes(
        [
            {"value": "clicked@example.com", "source": "lead", "createdAt": "2026-12-01T09:00:00.000Z"},
            {"value": "bounced@example.com", "source": "bounced", "createdAt": "2026-12-01T09:00:01.000Z"},
            {"value": "ours@example.com", "source": "api", "createdAt": "2026-12-01T09:00:02.000Z"},
            {"value": "@spam.example.com", "source": "abuse", "createdAt": "2026-12-01T09:00:03.000Z"},
            {"value": "https://www.linkedin.com/in/ann", "source": "user", "createdAt": "2026-12-01T09:00:04.000Z"},
        ]
    )
    emitted = [{k: r[k] for k in ("_id", "value", "source", "createdAt")} for r in added if r["source"] != "api"]
    watcher.wait_values(emitted)
    watcher.wait_polls(3)  # the provider's own record had every chance to be emitted
    assert watcher.records() == emitted
    assert [p["lemlist_conn_id"] for p in watcher.payloads] == ["lemlist_default"] * len(watcher.payloads)


def test_the_sources_parameter_chooses_what_is_emitted(lemlist, watch):
    watcher = watch(LemlistUnsubscribeEventTrigger(poll_interval=POLL, sources=["lead", "api"]))
    watcher.wait_polls(2)
    lemlist.add_lemlist_unsubscribes(fresh("mixed", 10, sources=SOURCES))
    watcher.wait_values(["mixed0@example.com", "mixed4@example.com", "mixed5@example.com", "mixed9@example.com"])
    watcher.wait_polls(3)
    assert sorted(watcher.values()) == [
        "mixed0@example.com",
        "mixed4@example.com",
        "mixed5@example.com",
        "mixed9@example.com",
    ]


def test_250_records_added_at_once_all_arrive_in_bounded_events(lemlist, watch):
    watcher = watch()
    watcher.wait_polls(2)
    added = lemlist.add_lemlist_unsubscribes(fresh("burst", 250))
    watcher.wait_values(added)
    assert len(watcher.payloads) >= 3
    assert all(0 < len(p["records"]) <= 100 for p in watcher.payloads)
    # one event per poll: the scheduler has a poll interval to queue a run for each
    assert len(set(watcher.emitted_after)) == len(watcher.emitted_after), watcher.emitted_after
    assert Counter(watcher.values()) == Counter(r["value"] for r in added)  # each exactly once


def test_steady_polling_costs_one_request_per_poll(lemlist, watch):
    watcher = watch()
    watcher.wait_polls(12)
    polls = requests_per_poll(watcher, list_requests(lemlist))
    start, steady = polls[0], polls[1:]
    assert [r["query"] for r in start] == [{"offset": ["0"], "limit": ["100"]}, {"offset": ["90"], "limit": ["100"]}]
    assert len(steady) >= 11
    assert [len(p) for p in steady] == [1] * len(steady)
    assert {json.dumps(p[0]["query"]) for p in steady} == {json.dumps({"offset": ["110"], "limit": ["100"]})}
    assert watcher.payloads == []


@pytest.mark.parametrize(
    "removed",
    [
        pytest.param(["old5@example.com"], id="one-before-the-re-read-tail"),
        pytest.param(["old125@example.com", "old129@example.com"], id="inside-the-re-read-tail"),
        pytest.param([f"old{i}@example.com" for i in range(60, 100)], id="more-than-the-re-read-tail"),
        pytest.param([f"old{i}@example.com" for i in range(100, 130)], id="the-whole-end"),
    ],
)
def test_a_removal_that_shifts_offsets_loses_nothing(lemlist, watch, removed):
    watcher = watch()
    watcher.wait_polls(2)
    first = lemlist.add_lemlist_unsubscribes(fresh("first", 3))
    watcher.wait_values(first)
    for value in removed:  # records lemlist let go of; the later ones move to lower offsets
        assert lemlist.remove_lemlist_unsubscribe(value) is not None
    second = lemlist.add_lemlist_unsubscribes(fresh("second", 3))
    watcher.wait_values(second)
    assert lemlist.remove_lemlist_unsubscribe("first1@example.com") is not None
    third = lemlist.add_lemlist_unsubscribes(fresh("third", 3))
    watcher.wait_values(third)
    assert Counter(watcher.values()) == Counter(r["value"] for r in first + second + third)


@pytest.mark.parametrize("moved", [3, 15], ids=["within-the-page-overlap", "beyond-it"])
def test_a_removal_between_two_pages_of_one_read_loses_nothing(lemlist, watch, monkeypatch, moved):
    """Records removed from the part already read while the next page is requested move that
    page's records to lower offsets: the pages' overlap finds the seam, or the read starts
    over; no record is skipped."""
    from airflow_provider_outreach.hooks.lemlist import LemlistHook

    real = LemlistHook.alist_unsubscribes
    first_page = EXISTING - module.OVERLAP  # the next poll's first page: offsets 110 to 209
    armed = {"offset": first_page + module.UNSUBSCRIBE_PAGE_MAX - module.PAGE_OVERLAP}
    gone: list[str] = []

    async def between_pages(self, client, offset=0, limit=100):
        if armed and offset == armed["offset"]:
            armed.clear()
            for value in gone:
                await asyncio.to_thread(lemlist.remove_lemlist_unsubscribe, value)
        return await real(self, client, offset, limit)

    monkeypatch.setattr(LemlistHook, "alist_unsubscribes", between_pages)
    watcher = watch()
    watcher.wait_polls(2)
    burst = lemlist.add_lemlist_unsubscribes(fresh("burst", 200))  # offsets 130 to 329
    gone += [r["value"] for r in burst[40 : 40 + moved]]  # offsets 170 on: read by the first page
    survivors = [r["value"] for r in burst if r["value"] not in gone]
    watcher.wait_values(survivors)
    assert not armed  # the removal did happen between the two pages
    assert set(watcher.values()) - set(survivors) <= set(gone)
    later = lemlist.add_lemlist_unsubscribes(fresh("later", 5))
    watcher.wait_values(later)


def test_a_list_served_newest_first_loses_nothing_either(sandbox, connections, watch, monkeypatch):
    """lemlist documents no order: served newest first, every change is found by reading the
    list whole; once that was seen, the list is also read whole periodically, which catches a
    record added while another is removed in one interval (the tail alone cannot)."""
    monkeypatch.setattr(module, "WHOLE_READ_EVERY", 1.0)
    sandbox.reset({"lemlist": {"unsubscribes": existing(), "unsubscribe_order": "newest_first"}})
    watcher = watch(LemlistUnsubscribeEventTrigger(poll_interval=0.5))
    watcher.wait_polls(2)
    first = sandbox.add_lemlist_unsubscribes(fresh("first", 5))
    watcher.wait_values(first)
    watcher.wait_polls(1)  # both changes below fall within one pause
    (swapped,) = sandbox.add_lemlist_unsubscribes([{"value": "swapped@example.com", "source": "lead"}])
    assert sandbox.remove_lemlist_unsubscribe("old3@example.com") is not None  # the length is unchanged
    watcher.wait_values([swapped])
    assert Counter(watcher.values()) == Counter(r["value"] for r in [*first, swapped])


# -- restarts ---------------------------------------------------------------------------------------


def test_a_restart_on_3_3_emits_what_was_added_while_no_trigger_ran(lemlist, asset_store, watch):
    first = watch(store=asset_store.accessor())
    first.wait_polls(2)
    before = lemlist.add_lemlist_unsubscribes(fresh("before", 2))
    first.wait_values(before)
    first.wait_polls(2)  # the cursor is written one pause after the events it covers
    first.stop()
    assert first.trigger.serialize() == LemlistUnsubscribeEventTrigger(poll_interval=POLL).serialize()
    while_down = lemlist.add_lemlist_unsubscribes(fresh("down", 3))
    assert lemlist.remove_lemlist_unsubscribe("old7@example.com") is not None
    second = watch(LemlistUnsubscribeEventTrigger(**first.trigger.serialize()[1]), store=asset_store.accessor())
    second.wait_values(while_down)
    second.wait_polls(2)
    assert second.values() == [r["value"] for r in while_down]  # and nothing from before the restart
    stored = asset_store.value()
    assert stored["length"] == EXISTING + 2 + 3 - 1 and stored["recent"][-1] == while_down[-1]["_id"]
    assert len(json.dumps(stored)) < 65535  # [state_store] max_value_storage_bytes


def test_a_trigger_stopped_before_its_cursor_was_written_repeats_records_and_loses_none(lemlist, asset_store, watch):
    first = watch(LemlistUnsubscribeEventTrigger(poll_interval=3.0), store=asset_store.accessor())
    first.wait_polls(1)
    sets = asset_store.comms.sets
    emitted = lemlist.add_lemlist_unsubscribes(fresh("emitted", 2))
    first.wait_values(emitted)
    first.stop()  # within the pause after the events: the triggerer may not have stored them
    assert asset_store.comms.sets == sets
    while_down = lemlist.add_lemlist_unsubscribes(fresh("down", 2))
    second = watch(store=asset_store.accessor())
    second.wait_values(emitted + while_down)
    assert Counter(second.values()) == Counter(r["value"] for r in emitted + while_down)


@pytest.mark.parametrize(
    "stored",
    [{"version": 7}, "not a cursor", {"version": 1, "lemlist_conn_id": "lemlist_eu", "length": 3, "recent": ["x"]}],
    ids=["another-version", "not-an-object", "another-connection"],
)
def test_a_stored_cursor_that_cannot_be_used_is_replaced_and_the_last_hour_emitted_again(
    lemlist, asset_store, watch, capfd, stored
):
    asset_store.accessor().set(CURSOR_KEY, stored)
    recent = lemlist.add_lemlist_unsubscribes(fresh("recent", 2))
    watcher = watch(store=asset_store.accessor())
    watcher.wait_values(recent)
    watcher.wait_polls(2)
    assert sorted(watcher.values()) == sorted(r["value"] for r in recent)
    assert "[warning  ] the stored cursor" in capfd.readouterr().out
    assert asset_store.value()["length"] == EXISTING + 2 and asset_store.value()["lemlist_conn_id"] == "lemlist_default"


def test_below_3_3_a_start_emits_the_last_hour_again(lemlist, watch):
    """No asset state store (3.0-3.2): the cursor lives in memory, and a start emits again the
    records created in the hour before it, so what was added while no trigger ran arrives."""
    first = watch()
    first.wait_polls(2)
    before = lemlist.add_lemlist_unsubscribes(fresh("before", 2))
    first.wait_values(before)
    first.stop()
    while_down = lemlist.add_lemlist_unsubscribes(fresh("down", 2))
    lemlist.add_lemlist_unsubscribes([{"value": "yesterday@example.com", "source": "lead", "createdAt": OLD}])
    second = watch(LemlistUnsubscribeEventTrigger(**first.trigger.serialize()[1]))
    second.wait_values(while_down)
    second.wait_polls(2)
    assert sorted(second.values()) == sorted(r["value"] for r in before + while_down)


def test_one_trigger_watched_by_several_assets_keeps_its_cursor_in_memory(lemlist, asset_store, watch, capfd):
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    two = AssetStateStoreAccessors(inlets=[Asset(name=asset_store.name), Asset(name="another_asset")])
    watcher = watch(store=two)
    watcher.wait_polls(2)
    added = lemlist.add_lemlist_unsubscribes(fresh("new", 2))
    watcher.wait_values(added)
    assert "[warning  ] the asset state store cannot be used" in capfd.readouterr().out
    assert asset_store.value() is None


# -- failures -------------------------------------------------------------------------------------


def test_429_5xx_and_dropped_connections_are_ridden_out(lemlist, watch, capfd):
    """Transient failures are polled through, each failed poll followed by a pause, with a
    warning: no error, no lost record."""
    watcher = watch()
    watcher.wait_polls(2)
    since = len(lemlist.requests(vendor="lemlist"))
    lemlist.inject("lemlist", ["503", "drop", {"kind": "429", "retry_after": 1}, "500", "drop", "502"] * 2)
    started = time.monotonic()
    added = lemlist.add_lemlist_unsubscribes(fresh("through", 3))
    watcher.wait_values(added)
    log = lemlist.requests(vendor="lemlist")[since:]
    assert len([r for r in log if r["fault"]]) == 12  # every injected fault was met and ridden out
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # the 429's wait was honoured
    assert len(log) <= 12 + elapsed / POLL + 3  # never polls without pausing
    assert max(len(p) for p in requests_per_poll(watcher, log)) <= 3  # the hook's attempts, then a pause
    assert Counter(watcher.values()) == Counter(r["value"] for r in added)
    out = capfd.readouterr().out
    assert "[warning  ] lemlist suppression list: lemlist GET" in out and "polling again" in out
    assert "cannot be read" not in out


def test_a_refused_key_is_logged_as_an_error_retried_with_backoff_and_loses_nothing(lemlist, watch, capfd):
    watcher = watch()
    watcher.wait_polls(2)
    lemlist.revoke_key("lemlist")
    while_refused = lemlist.add_lemlist_unsubscribes(fresh("refused", 2))
    watcher.wait(lambda: any(seconds >= 8 * POLL for _, seconds in watcher.pauses), "a fourth failure")
    logged = [line for line in capfd.readouterr().out.splitlines() if "cannot be read" in line]
    assert len(logged) >= 4 and all("[error    ]" in line for line in logged)
    assert "HTTP 401" in logged[0] and "failure 1 in a row" in logged[0]
    waits = [round(seconds / POLL) for _, seconds in watcher.pauses]
    assert waits[waits.index(2) - 1 : waits.index(8) + 1] == [1, 2, 4, 8]  # backing off, from poll_interval
    assert watcher.payloads == []
    lemlist.configure(keys={"lemlist": [DEFAULT_KEYS["lemlist"]]})  # the key works again
    watcher.wait_values(while_refused)
    after = lemlist.add_lemlist_unsubscribes(fresh("after", 2))
    watcher.wait_values(after)
    assert Counter(watcher.values()) == Counter(r["value"] for r in while_refused + after)


def test_the_trigger_never_uses_the_sync_connection_lookup(lemlist, watch, monkeypatch):
    from airflow.sdk import BaseHook

    def forbidden(*args, **kwargs):
        raise AssertionError("sync connection lookup inside the event loop")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(forbidden))
    watcher = watch()
    watcher.wait_polls(2)
    added = lemlist.add_lemlist_unsubscribes(fresh("async", 1))
    watcher.wait_values(added)


# -- the decision on one read, on its own ---------------------------------------------------------


def _reading(offset: int, ids: str) -> module.ListReading:
    return module.ListReading(offset, [{"_id": i} for i in ids])


def _ids(outcome: module.Reconciled) -> str:
    return "".join(r["_id"] for r in outcome.records)


@pytest.mark.parametrize(
    "reading,length,known,complete,action,new,flags",
    [
        # a tail read: the known records, then the new ones
        pytest.param((3, "defXY"), 6, "abcdef", True, "emit", "XY", (False, False), id="appended"),
        pytest.param((3, "dfXY"), 6, "abcdef", True, "emit", "XY", (False, False), id="appended-after-a-removal"),
        pytest.param((3, "XY"), 6, "abcdef", True, "earlier", "", (False, False), id="nothing-known-read-earlier"),
        pytest.param((3, "dXfY"), 6, "abcdef", True, "whole", "", (False, False), id="new-before-a-known-one"),
        pytest.param((3, "cdef"), 6, "abcdef", True, "whole", "", (False, False), id="grown-elsewhere"),
        # the whole list against a complete memory: exact, wherever the new records stand
        pytest.param((0, "XabcYdef"), 6, "abcdef", True, "emit", "XY", (False, True), id="whole-out-of-order"),
        pytest.param((0, "abcdefXY"), 6, "abcdef", True, "emit", "XY", (False, False), id="whole-in-order"),
        # a restart: only the last ids are known, older ones before them are not new
        pytest.param((0, "abcdefXY"), 6, "def", False, "emit", "XY", (False, False), id="restart"),
        pytest.param((0, "abdXefY"), 6, "def", False, "emit", "abXY", (True, False), id="restart-cannot-place"),
        pytest.param((0, "XYZ"), 6, "def", False, "emit", "XYZ", (True, False), id="restart-nothing-known-left"),
        pytest.param((0, "XYZ"), 0, "", False, "emit", "XYZ", (False, False), id="restart-on-an-empty-list"),
    ],
)
def test_what_one_read_means(reading, length, known, complete, action, new, flags):
    outcome = module.reconcile(_reading(*reading), length, set(known), complete=complete)
    assert (outcome.action.value, _ids(outcome), (outcome.duplicates, outcome.out_of_order)) == (action, new, flags)


@pytest.mark.parametrize(
    "page,joined",
    [
        pytest.param("GHIJKLMNOPQRS", "QRS", id="as-asked"),
        pytest.param("HJKLMNOPQRS", "QRS", id="records-removed-before-the-seam"),
        pytest.param("FGHIJKLMNOPQRS", "QRS", id="one-inserted-before-the-seam"),
        pytest.param("", "", id="the-list-ended"),
    ],
)
def test_a_page_joins_the_one_before(page, joined):
    before = [{"_id": i} for i in "ABCDEFGHIJKLMNOP"]  # the page overlap is 10: the next page starts at G
    assert "".join(r["_id"] for r in module._after_seam(before, [{"_id": i} for i in page])) == joined


@pytest.mark.parametrize("page", ["QRS", "GHIQJKLMNOPRS"], ids=["moved-past-the-overlap", "reordered"])
def test_a_page_that_does_not_continue_the_one_before_is_read_again(page):
    before = [{"_id": i} for i in "ABCDEFGHIJKLMNOP"]
    with pytest.raises(module.ListMovedError):
        module._after_seam(before, [{"_id": i} for i in page])
