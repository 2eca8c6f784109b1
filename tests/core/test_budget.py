"""One budget per API key across processes: on one host (the file store), through a real Redis
server, and off; the fixed mode honouring what the API says is left; the store's settings."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from airflow_provider_outreach.core.budget import FileStore, RedisStore, budget_name, budget_spec, open_store
from airflow_provider_outreach.core.pacing import Pacer, PacingWait
from airflow_provider_outreach.core.rate_state import RateInfo
from airflow_provider_outreach.exceptions import ConnectionConfigError
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.sandbox import DEFAULT_KEYS
from tests import secrets_watch
from tests.conftest import REPO, MemoryStateStore, RecordingTI, connection_settings
from tests.seeds import lemlist_bulk_seed

pytestmark = pytest.mark.timing

LEMLIST_RPS = 10.0  # the sandbox's default lemlist limit: 20 requests / 2 s
LATENCY = 0.3
ITEMS = 100  # per process

#: one worker process: its own leads of cam_bulk; starts when the parent writes a line
CHILD = r"""
import json, sys
from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator

first, count, task_id = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class TI:
    dag_id, run_id, task_id, map_index, try_number = "shared_budget", "run", task_id, -1, 1
    def xcom_push(self, key, value):
        pass

op = LemlistUnsubscribeLeadOperator(
    task_id=task_id,
    email=[f"person{i:06d}@example.com" for i in range(first, first + count)],
    campaign_id="cam_bulk",
    max_workers=8,
    fail_on_error=False,
)
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps(op.execute({"ti": TI()})["counts"]), flush=True)
"""


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """The on-host store of this test alone."""
    path = tmp_path / "rate-limits"
    monkeypatch.setenv("OUTREACH_RATE_LIMIT_DIR", str(path))
    return path


@pytest.fixture
def redis_conn(redis_server, monkeypatch):
    """``outreach_redis``: an Airflow redis connection to the session's server, our keys cleared."""
    monkeypatch.setenv("AIRFLOW_CONN_OUTREACH_REDIS", redis_server.airflow_conn_json())
    client = redis_server.client()
    for key in client.scan_iter("outreach:pacing:*"):
        client.delete(key)
    yield "outreach_redis"
    client.close()


def _run_two_processes(sandbox) -> dict:
    """Two OS processes, each an operator over its own ITEMS leads of one key, started together."""
    sandbox.seed(lemlist_bulk_seed(2 * ITEMS))
    sandbox.configure(latency={"lemlist": LATENCY})
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(i * ITEMS), str(ITEMS), f"worker_{i}"],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", secrets_watch.redact(proc.communicate()[0][-3000:])
        for proc in procs:  # both at once
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=240)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    counts = []
    for out in outputs:
        reports = [line for line in out.splitlines() if line.startswith("{")]
        assert reports, secrets_watch.redact(out[-3000:])
        counts.append(json.loads(reports[-1]))
    log = sandbox.requests(vendor="lemlist")
    times = [r["time"] for r in log]
    span = max(times) - min(times)
    return {
        "requests": len(log),
        "span": span,
        "rps": len(log) / span,
        "429s": sum(1 for r in log if r["status"] == 429),
        "failed": sum(c["failed"] for c in counts),
        "done": sum(c["done"] for c in counts),
    }


def _assert_shared_budget_met(figures: dict) -> None:
    assert figures["done"] == 2 * ITEMS and figures["failed"] == 0, figures
    assert figures["429s"] <= 2, figures
    assert figures["rps"] >= 0.90 * LEMLIST_RPS, figures


# -- two processes, one key --------------------------------------------------------------------------


@pytest.mark.multiprocess
def test_two_processes_share_one_budget_on_one_host(sandbox, connections, store_dir):
    figures = _run_two_processes(sandbox)
    _assert_shared_budget_met(figures)
    files = sorted(p.name for p in store_dir.iterdir())
    assert files and all(name.startswith(budget_name("lemlist", DEFAULT_KEYS["lemlist"])) for name in files)


@pytest.mark.multiprocess
def test_two_processes_share_one_budget_through_redis(sandbox, connections, store_dir, redis_conn, redis_server):
    connections("lemlist", redis_conn_id=redis_conn)
    figures = _run_two_processes(sandbox)
    _assert_shared_budget_met(figures)
    assert not store_dir.exists(), "the on-host store was used instead of Redis"
    keys = [k.decode() for k in redis_server.client().scan_iter("outreach:pacing:*")]
    name = budget_name("lemlist", DEFAULT_KEYS["lemlist"])
    assert sorted(keys) == [f"outreach:pacing:{name}:requests", f"outreach:pacing:{name}:state"]


@pytest.mark.multiprocess
def test_without_sharing_two_processes_collide(sandbox, connections, store_dir):
    """The control: the same run, each process pacing alone, draws many 429s."""
    connections("lemlist", shared_rate_limit=False)
    figures = _run_two_processes(sandbox)
    assert figures["failed"] == 0, figures
    assert figures["429s"] >= 10, figures
    assert not store_dir.exists()


# -- fixed mode: another user of the key -------------------------------------------------------------


@pytest.mark.parametrize("headers", ["honoured", "ignored"])
def test_fixed_mode_waits_when_another_user_spent_the_window(sandbox, connections, store_dir, monkeypatch, headers):
    """Another user of the key spends 16 of the 20 requests of a window just before the task
    starts: the answers' X-RateLimit-Remaining holds the task back until the API's reset. The
    control ("ignored") shows the same run drawing 429s when the pacer goes by its own count
    alone. (A 4 s window: room for a loaded machine between the other user and the task.)"""
    if headers == "ignored":
        monkeypatch.setattr(Pacer, "_foreign", lambda *args: False)
    sandbox.seed(lemlist_bulk_seed(40))
    sandbox.configure(latency={"lemlist": LATENCY}, limits={"lemlist": [{"limit": 20, "window": 4}]})
    connections("lemlist", rate_limit=20, rate_limit_period=4)
    base, key = sandbox.vendor_url("lemlist"), DEFAULT_KEYS["lemlist"]
    with ThreadPoolExecutor(max_workers=16) as pool:
        other = list(
            pool.map(lambda _: requests.get(f"{base}/team", auth=("", key), timeout=10).status_code, range(16))
        )
    assert other == [200] * 16

    from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator

    op = LemlistUnsubscribeLeadOperator(
        task_id="t", email=[f"person{i:06d}@example.com" for i in range(40)], campaign_id="cam_bulk", max_workers=8
    )
    op.fail_on_error = False
    report = op.execute({"ti": RecordingTI(), "task_state_store": MemoryStateStore()})
    assert report["counts"]["done"] == 40
    ours = [r for r in sandbox.requests(vendor="lemlist") if "/campaigns/" in r["path"]]
    refused = sum(1 for r in ours if r["status"] == 429)
    if headers == "honoured":
        assert refused <= 2, [r["status"] for r in ours]
    else:
        assert refused >= 3, [r["status"] for r in ours]


def test_own_requests_are_paced_by_the_window_not_the_coarse_reset(store_dir):
    """Spent by our own requests, the window log says when to go on (to the millisecond), not
    the API's reset header (one-second resolution); spent by someone else, the reset does."""
    for store in (None, "file"):
        pacer = Pacer(20, 2.0)
        if store:
            pacer.share(budget_spec_for(store_dir), "lemlist", f"own-{store}")
        tickets = [pacer.acquire() for _ in range(20)]
        pacer.release(tickets[-1], RateInfo(limit=20, remaining=0, reset_in=10.0))
        with pytest.raises(PacingWait) as ours:
            pacer.acquire(max_wait=0)
        assert 1.5 < ours.value.wait <= 2.1, store

        other = Pacer(20, 2.0)
        if store:
            other.share(budget_spec_for(store_dir), "lemlist", f"other-{store}")
        ticket = other.acquire()
        other.release(ticket, RateInfo(limit=20, remaining=0, reset_in=10.0))  # 19 requests not ours
        with pytest.raises(PacingWait) as foreign:
            other.acquire(max_wait=0)
        assert 9 < foreign.value.wait <= 10.1, store


# -- the shared record: adaptive mode, 429 holds, the window across processes -------------------------


def budget_spec_for(directory: Path):
    from airflow_provider_outreach.core.budget import BudgetSpec

    return BudgetSpec("file", str(directory))


def _two_stores(kind: str, directory: Path, redis_server=None, limit=None, period=None):
    """Two stores of one key, as two processes open them."""
    from airflow_provider_outreach.core.budget import BudgetSpec

    name = budget_name("leadlex", "two-process-key")
    if kind == "file":
        return [open_store(BudgetSpec("file", str(directory)), name, limit, period, 0.05) for _ in range(2)]
    return [RedisStore(redis_server.client(), name, limit, period, 0.05) for _ in range(2)]


@pytest.fixture(params=["file", "redis"])
def two_stores(request, tmp_path):
    def make(limit=None, period=None):
        server = request.getfixturevalue("redis_server") if request.param == "redis" else None
        stores = _two_stores(request.param, tmp_path, server, limit, period)
        stores[0].flush()
        return stores

    return make


def test_adaptive_processes_spend_one_remaining_count(two_stores):
    first, second = (Pacer(store=store) for store in two_stores())
    first.release(first.acquire(), RateInfo(limit=10, remaining=2, reset_in=30))
    second.acquire(max_wait=0)
    first.acquire(max_wait=0)  # the two left, one each
    for pacer in (first, second):
        with pytest.raises(PacingWait) as wait:
            pacer.acquire(max_wait=1)
        assert 28 < wait.value.wait <= 30


def test_a_429_holds_every_process_of_the_key(two_stores):
    first, second = (Pacer(store=store) for store in two_stores())
    first.release(first.acquire(), RateInfo(retry_after=5), 429)
    with pytest.raises(PacingWait) as wait:
        second.acquire(max_wait=1)
    assert 4 < wait.value.wait <= 5


def test_fixed_window_counts_every_process(two_stores):
    first, second = (Pacer(3, 1.0, store=store) for store in two_stores(3, 1.0))
    first.acquire(max_wait=0)
    second.acquire(max_wait=0)
    first.acquire(max_wait=0)
    with pytest.raises(PacingWait) as wait:
        second.acquire(max_wait=0)
    assert 0.5 < wait.value.wait <= 1.06


# -- every store, one contract: the process's own, the file and Redis --------------------------------


@pytest.fixture(params=["local", "file", "redis"])
def store(request, tmp_path):
    """A store of one key, 3 requests per second (margin 0.05 s), nothing in it."""
    from airflow_provider_outreach.core.budget import LocalStore

    name = budget_name("leadlex", "contract-key")
    if request.param == "local":
        store = LocalStore(3, 1.0, 0.05)
    elif request.param == "file":
        store = FileStore(tmp_path, name, 3, 1.0, 0.05)
    else:
        store = RedisStore(request.getfixturevalue("redis_server").client(), name, 3, 1.0, 0.05)
    store.flush()
    yield store
    store.close()


def test_every_store_keeps_one_window_log(store):
    now = store.now()
    assert [store.put(now + i / 100) for i in range(3)] == [0, 0, 0]
    assert 0.95 < store.put(now + 0.1) <= 1.06  # the first start leaves the window after 1.05 s
    assert store.count(now, now + 1) == 3  # a refused request is not counted
    assert store.count(now + 0.005, now + 0.02) == 2
    assert store.count(now + 0.03, now + 1) == 0
    store.set_rate(5, 1.0)
    assert [store.put(now + 0.1), store.put(now + 0.1)] == [0, 0]
    assert store.put(now + 0.1) > 0
    with store.locked():  # a sequence of steps holds the store; each step takes it again
        assert store.put(now + 1.2) == 0
        assert store.count(now, now + 2) == 6


def test_every_store_keeps_one_record(store):
    from airflow_provider_outreach.core.rate_state import PacingState

    assert store.read() == PacingState()

    def block(state):
        state.block(123.5)
        return "blocked"

    assert store.update(block) == "blocked"
    snapshot = store.read()
    assert snapshot.blocked_until == 123.5
    snapshot.blocked_until = 0.0  # a copy: changing it changes nothing in the store
    assert store.read().blocked_until == 123.5

    def fails(state):
        state.tokens = 7
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError):
        store.update(fails)
    assert store.read().tokens is None  # a change that fails is not kept


def test_every_store_changes_its_record_atomically(store):
    store.update(lambda state: setattr(state, "tokens", 0))

    def add_one(state):
        tokens = state.tokens
        time.sleep(0.001)  # room for another thread to come between read and write
        state.tokens = tokens + 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: store.update(add_one), range(200)))
    assert store.read().tokens == 200


def test_every_store_forgets_window_and_record(store):
    now = store.now()
    store.put(now)
    store.update(lambda state: state.block(now + 5))
    store.flush()
    assert store.count(now - 1, now + 1) == 0
    assert store.read().blocked_until == 0.0


# -- settings, names, rights -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "  "])
def test_null_or_empty_sharing_fields_mean_the_default(value, store_dir):
    settings = connection_settings(
        LemlistHook, {"shared_rate_limit": value, "redis_conn_id": value, "rate_limit_dir": value}
    )
    assert (settings.shared_rate_limit, settings.redis_conn_id, settings.rate_limit_dir) == (True, None, None)
    spec = budget_spec(settings)
    assert (spec.kind, spec.location) == ("file", str(store_dir))


def test_where_the_budget_is_shared(tmp_path, monkeypatch):
    monkeypatch.delenv("OUTREACH_RATE_LIMIT_DIR", raising=False)
    home = os.environ["AIRFLOW_HOME"]
    assert budget_spec(connection_settings(LemlistHook, {})).location == str(Path(home) / "outreach-rate-limits")
    assert budget_spec(connection_settings(LemlistHook, {"rate_limit_dir": str(tmp_path)})).location == str(tmp_path)
    spec = budget_spec(connection_settings(LemlistHook, {"redis_conn_id": "my_redis", "rate_limit_dir": str(tmp_path)}))
    assert (spec.kind, spec.location) == ("redis", "my_redis")
    assert (
        budget_spec(connection_settings(LemlistHook, {"shared_rate_limit": "false", "redis_conn_id": "my_redis"}))
        is None
    )
    with pytest.raises(ConnectionConfigError, match="redis_conn_id"):
        connection_settings(LemlistHook, {"redis_conn_id": 3})


def test_store_files_name_no_key_and_every_worker_user_can_use_them(store_dir):
    key = "a-secret-api-key"
    store = FileStore(store_dir, budget_name("lemlist", key), 20, 2.0, 0.05)
    try:
        assert store.put(time.time()) == 0
    finally:
        store.close()
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o777  # not sticky: the file lock refuses others' files there
    for path in store_dir.iterdir():
        assert key not in path.name and "secret" not in path.name
        assert key.encode() not in path.read_bytes()
    for suffix in ("", ".lock"):
        assert stat.S_IMODE(Path(f"{store.path}{suffix}").stat().st_mode) == 0o666


def test_redis_without_the_provider_is_a_clear_configuration_error(sandbox, connections, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "airflow.providers.redis" else find_spec(name, *a)
    )
    connections("lemlist", redis_conn_id="my_redis")
    with pytest.raises(ConnectionConfigError, match=r"redis provider is not installed.*\[redis\]"):
        LemlistHook().get_conn()


def test_redis_connection_that_does_not_exist_is_a_configuration_error(seeded, connections):
    connections("leadlex", redis_conn_id="no_such_redis")
    with pytest.raises(ConnectionConfigError, match="no_such_redis"):
        LeadlexHook().get_campaign("cmp_active")
    assert seeded.requests() == []


def test_an_unusable_directory_paces_per_process(seeded, connections, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    connections("leadlex", rate_limit_dir=str(blocker / "limits"))
    assert LeadlexHook().get_campaign("cmp_active")["id"] == "cmp_active"
    assert "pacing per process" in caplog.text


# -- the shared store fails mid-run -------------------------------------------------------------------


@pytest.mark.parametrize("headers", ["honoured", "ignored"])
def test_redis_refusing_writes_mid_run_paces_on_in_the_process(
    sandbox, connections, store_dir, tmp_path, monkeypatch, caplog, headers
):
    """Redis runs out of memory (it refuses every write at once) while 8 threads spend
    lemlist's 20 per 2 s through it: the pacer goes on in this process alone, and the first
    answers after the switch (their starts unknown there) gate it by what the API says is left,
    so the switch draws no burst of 429s. The control ("ignored") shows the same run drawing
    them when the window of this process alone paces."""
    from tests.servers import start_redis

    if headers == "ignored":
        monkeypatch.setattr(Pacer, "_foreign", lambda *args: False)
    server = start_redis(tmp_path / "redis")
    try:
        monkeypatch.setenv("AIRFLOW_CONN_OUTREACH_REDIS_DOWN", server.airflow_conn_json())
        connections("lemlist", redis_conn_id="outreach_redis_down")
        sandbox.seed(lemlist_bulk_seed(90))
        sandbox.configure(latency={"lemlist": LATENCY})
        hook = LemlistHook()
        done = []

        def unsubscribe(i: int) -> None:
            hook.unsubscribe_lead("cam_bulk", f"person{i:06d}@example.com")
            done.append(i)
            if len(done) == 30:
                with server.client() as admin:
                    admin.config_set("maxmemory-policy", "noeviction")
                    admin.config_set("maxmemory", 1)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(unsubscribe, range(90)))
    finally:
        server.stop()
    assert len(done) == 90
    assert "pacing per process from now on" in caplog.text
    statuses = [r["status"] for r in sandbox.requests(vendor="lemlist")]
    refused = statuses.count(429)
    if headers == "honoured":
        assert refused <= 2, statuses
    else:
        assert refused >= 3, statuses
