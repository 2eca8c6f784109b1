"""Retries, waits and pacing, measured against the sandbox's real rate limits and faults."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_outreach.exceptions import (
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from tests.seeds import base_seed, lemlist_bulk_seed

pytestmark = pytest.mark.timing


def _statuses(sandbox, vendor):
    return [r["status"] for r in sandbox.requests(vendor=vendor)]


def test_lemlist_429_waits_exactly_retry_after(seeded):
    seeded.inject("lemlist", [{"kind": "429", "retry_after": 2}])
    started = time.monotonic()
    assert LemlistHook().get_campaign("cam_draft")["_id"] == "cam_draft"
    waited = time.monotonic() - started
    assert 2.0 <= waited < 3.5
    assert _statuses(seeded, "lemlist") == [429, 200]


def test_leadlex_429_waits_for_the_reset_header(seeded):
    seeded.inject("leadlex", [{"kind": "429", "retry_after": 2}])
    started = time.monotonic()
    assert LeadlexHook().get_campaign("cmp_active")["id"] == "cmp_active"
    waited = time.monotonic() - started
    first = seeded.requests(vendor="leadlex")[0]
    assert first["status"] == 429
    assert 1.0 <= waited < 3.5  # epoch-second resolution of the reset header
    assert _statuses(seeded, "leadlex") == [429, 200]


def test_dialnexa_429_honours_retry_after(seeded):
    seeded.inject("dialnexa", [{"kind": "429", "retry_after": 1}])
    started = time.monotonic()
    DialnexaHook().get_campaign("cmp_live")
    assert time.monotonic() - started >= 1.0
    assert _statuses(seeded, "dialnexa") == [429, 200]


def test_a_wait_longer_than_max_inline_wait_raises_at_once(seeded):
    seeded.inject("dialnexa", [{"kind": "429", "retry_after": 600}])
    started = time.monotonic()
    with pytest.raises(RateLimitError) as err:
        DialnexaHook(max_inline_wait=60).get_campaign("cmp_live")
    assert time.monotonic() - started < 30  # far below the 600 s asked for
    assert err.value.status_code == 429 and err.value.retry_after >= 590
    assert _statuses(seeded, "dialnexa") == [429]


@pytest.mark.parametrize("fault", ["500", "502", "503", "drop"])
def test_transient_faults_are_retried(seeded, fault):
    seeded.inject("leadlex", [fault, fault])
    assert LeadlexHook(backoff=0.05).remove_contact("cmp_active", "ctc_bob")["data"]["removed"] is True
    assert _statuses(seeded, "leadlex") == [None if fault == "drop" else int(fault)] * 2 + [200]


def test_timeout_is_retried(seeded, connections):
    connections("dialnexa", "dialnexa_fast", timeout=0.5)
    seeded.configure(faults=None)
    seeded.inject("dialnexa", [{"kind": "slow", "phase": "before", "slow_seconds": 6}])
    started = time.monotonic()
    assert DialnexaHook("dialnexa_fast", backoff=0.05).get_campaign_lead("cl_bob")["id"] == "cl_bob"
    assert time.monotonic() - started < 5.0, "the slow answer was not waited for"
    deadline = time.monotonic() + 10
    while len(seeded.requests(vendor="dialnexa")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the slow answer is logged when the sandbox finishes it
    assert sorted(r["fault"] or "ok" for r in seeded.requests(vendor="dialnexa")) == ["ok", "slow"]


def test_dropped_connection_after_the_change_reads_as_not_found_on_retry(seeded):
    seeded.inject("dialnexa", [{"kind": "drop", "phase": "after"}])
    with pytest.raises(NotFoundError):
        DialnexaHook(backoff=0.05).remove_campaign_lead("cl_bob")
    assert seeded.state()["dialnexa"]["leads"]["cl_bob"]["status"] == "removed"


def test_retries_are_bounded(seeded):
    seeded.inject("lemlist", ["503"] * 10)
    with pytest.raises(ServerError) as err:
        LemlistHook(max_attempts=3, backoff=0.01).get_campaign("cam_draft")
    assert err.value.status_code == 503
    assert _statuses(seeded, "lemlist") == [503, 503, 503]


def test_transport_error_after_retries(seeded):
    seeded.inject("lemlist", ["drop"] * 5)
    with pytest.raises(TransportError) as err:
        LemlistHook(max_attempts=2, backoff=0.01).get_campaign("cam_draft")
    assert err.value.status_code is None and "connection" in err.value.message


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda: LemlistHook().get_campaign("cam_missing"), 404),
        (lambda: LeadlexHook().delete_campaign("cmp_active"), 409),
        (lambda: LemlistHook().add_unsubscribe("bad value"), 400),
        (lambda: DialnexaHook().remove_campaign_lead("cl_old"), 409),
    ],
)
def test_client_errors_are_never_retried(seeded, call, status):
    with pytest.raises(Exception) as err:
        call()
    assert err.value.status_code == status
    assert len(seeded.requests()) == 1


def test_burst_of_60_lemlist_calls_stays_inside_20_per_2s(sandbox, connections):
    sandbox.seed(lemlist_bulk_seed(60))
    hook = LemlistHook()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda i: hook.unsubscribe_lead("cam_bulk", f"person{i:06d}@example.com"), range(60)))
    elapsed = time.monotonic() - started
    assert len(results) == 60
    log = sandbox.requests(vendor="lemlist")
    # the sandbox enforces lemlist's 20 per 2 s: no request was refused or retried
    assert [r["status"] for r in log] == [200] * 60, "no 429 and no retry"
    # and the requests were spread over the windows (arrival times jitter by a few ms under load)
    times = sorted(r["time"] for r in log)
    for i in range(len(times) - 20):
        assert times[i + 20] - times[i] >= 1.9, "more than 20 requests reached the server within 2 s"
    assert elapsed >= 4.0


def test_adaptive_pacing_from_headers_avoids_429(sandbox, connections):
    sandbox.seed(base_seed())
    sandbox.configure(limits={"leadlex": [{"limit": 5, "window": 2}]})
    hook = LeadlexHook()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: hook.get_campaign("cmp_active"), range(12)))
    statuses = _statuses(sandbox, "leadlex")
    assert statuses.count(200) == 12
    assert statuses.count(429) <= 1, statuses  # the very first window is unknown until a response arrives


def test_rate_limit_from_connection_extra(sandbox, connections):
    sandbox.seed(base_seed())
    sandbox.configure(limits={"dialnexa": [{"limit": 4, "window": 1}]})
    connections("dialnexa", "dialnexa_paced", rate_limit=4, rate_limit_period=1)
    hook = DialnexaHook("dialnexa_paced")
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: hook.get_campaign("cmp_live"), range(12)))
    assert _statuses(sandbox, "dialnexa") == [200] * 12


def test_async_calls_are_paced_in_the_same_budget_as_sync_calls(sandbox, connections):
    """What the triggers use: 30 async reads at once on a key limited to 4 per second, while
    a sync caller of the same key sends too. No 429: the async reads wait for their turn."""
    import asyncio

    sandbox.seed(base_seed())
    sandbox.configure(limits={"dialnexa": [{"limit": 4, "window": 1}]})
    connections("dialnexa", "dialnexa_paced", rate_limit=4, rate_limit_period=1)

    async def reads() -> list:
        hook = DialnexaHook("dialnexa_paced")
        await hook.aload_connection()
        async with hook.async_client() as client:
            return await asyncio.gather(*(hook.aget_campaign(client, "cmp_live") for _ in range(30)))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        sync = pool.submit(lambda: [DialnexaHook("dialnexa_paced").get_campaign("cmp_live") for _ in range(6)])
        campaigns = asyncio.run(reads())
        sync.result()
    assert [c["id"] for c in campaigns] == ["cmp_live"] * 30
    assert _statuses(sandbox, "dialnexa") == [200] * 36
    assert time.monotonic() - started >= (36 - 4) / 4  # the rate was honoured: at least 8 s for 36 requests


def test_a_redirect_loop_on_a_read_is_not_retried(seeded):
    """A read that redirects to itself on and on (a misconfigured proxy): requests gives up
    after 30 hops, and that is an answer no API gives, not a blip to retry 8 times."""
    from airflow_provider_outreach.exceptions import UnexpectedResponseError

    seeded.inject("dialnexa", [{"kind": "redirect", "status": 302}] * 200)
    with pytest.raises(UnexpectedResponseError, match="redirected too many times"):
        DialnexaHook(backoff=0.01).get_campaign("cmp_live")
    assert len(seeded.requests(vendor="dialnexa")) <= 31
