"""The shared HTTP core's pure parts: encoding, base URLs, headers, error mapping, pacing."""

from __future__ import annotations

import pickle
import threading
import time

import pendulum
import pytest

from airflow_provider_outreach.core.connection import resolve_base_url
from airflow_provider_outreach.core.pacing import Pacer, PacingWait, parse_rate_headers, parse_reset, parse_retry_after
from airflow_provider_outreach.core.paths import build_path, encode_path_param
from airflow_provider_outreach.exceptions import (
    AuthenticationError,
    ConflictError,
    ConnectionConfigError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    OutreachAPIError,
    RateLimitError,
    ServerError,
    error_class_for,
)
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from tests.conftest import connection_settings


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
        ("ann@example.com", "ann%40example.com"),
        ("é ü", "%C3%A9%20%C3%BC"),
        ("..x", "..x"),
        ("a\r\nb", "a%0D%0Ab"),
        (42, "42"),
    ],
)
def test_path_params_are_one_encoded_segment(value, encoded):
    assert encode_path_param("lead_id", value) == encoded


@pytest.mark.parametrize("value", ["", "   ", "\t", ".", "..", None, 1.5, True, ["x"], "x" * 5000])
def test_unprotectable_path_params_are_rejected_naming_the_parameter(value):
    with pytest.raises(InvalidInputError, match="contact_id"):
        build_path("/v1/campaigns/{campaign_id}/contacts/{contact_id}", campaign_id="c", contact_id=value)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://api.lemlist.com/api"),
        ("", None, "https://api.lemlist.com/api"),
        ("http://127.0.0.1:8750/lemlist", None, "http://127.0.0.1:8750/lemlist"),
        ("http://localhost:9/lemlist/", None, "http://localhost:9/lemlist"),
        ("http://[::1]:9/x", None, "http://[::1]:9/x"),
        ("api.example.com/api", None, "https://api.example.com/api"),
        ("proxy.example.com", 8443, "https://proxy.example.com:8443"),
        ("https://eu.example.com/api", None, "https://eu.example.com/api"),
    ],
)
def test_base_url_resolution(host, port, expected):
    assert resolve_base_url(host, port, conn_id="c", vendor="lemlist", default=LemlistHook.default_base_url) == expected


@pytest.mark.parametrize("host", ["http://api.lemlist.com/api", "http://10.0.0.5/x", "http://example.com"])
def test_plain_http_to_a_remote_host_is_refused(host):
    with pytest.raises(ConnectionConfigError, match="plain http"):
        resolve_base_url(host, None, conn_id="prod", vendor="lemlist", default=LemlistHook.default_base_url)


def test_non_http_scheme_is_refused():
    with pytest.raises(ConnectionConfigError, match="http"):
        resolve_base_url("ftp://example.com", None, conn_id="c", vendor="leadlex", default=LeadlexHook.default_base_url)


def test_hooks_do_no_lookup_in_init_and_name_their_connection():
    hook = DialnexaHook(dialnexa_conn_id="does_not_exist")
    assert hook.dialnexa_conn_id == "does_not_exist"
    assert repr(hook) == "DialnexaHook(dialnexa_conn_id='does_not_exist')"
    assert LemlistHook().lemlist_conn_id == "lemlist_default"
    assert LeadlexHook().leadlex_conn_id == "leadlex_default"


def test_retry_after_and_reset_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    in_5 = pendulum.now("UTC").add(seconds=5)
    http_date = in_5.format("ddd, DD MMM YYYY HH:mm:ss") + " GMT"
    assert 3.5 < parse_retry_after(http_date) <= 5.0
    # lemlist: a JavaScript date string, in any zone
    paris = in_5.in_tz("Europe/Paris")
    js = paris.format("ddd MMM DD YYYY HH:mm:ss") + " GMT" + paris.format("ZZ") + " (Central European Standard Time)"
    assert 3.5 < parse_reset(js) <= 5.0
    # LeadLex / DialNexa: epoch seconds
    assert 8.5 < parse_reset(str(int(time.time()) + 10)) <= 10.0
    assert parse_reset("not a date") is None
    info = parse_rate_headers({"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "7", "Retry-After": "2"})
    assert (info.limit, info.remaining, info.retry_after) == (20, 7, 2.0)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, InvalidRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_typed_error(status, cls):
    assert error_class_for(status) is cls


def test_error_message_is_for_people_and_survives_pickling():
    err = ConflictError(
        vendor="leadlex",
        status_code=409,
        code="campaign_not_draft",
        message="Only draft campaigns can be deleted",
        request_id="req_1",
        method="DELETE",
        path="/v1/campaigns/c1",
    )
    text = str(err)
    for part in ("leadlex", "DELETE", "/v1/campaigns/c1", "409", "campaign_not_draft", "Only draft", "req_1"):
        assert part in text
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, ConflictError) and isinstance(clone, OutreachAPIError)
    assert (clone.code, clone.status_code, str(clone)) == ("campaign_not_draft", 409, text)


def test_fixed_pacer_never_starts_more_than_limit_per_window_across_threads():
    pacer = Pacer(5, 0.5)
    starts: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            ticket = pacer.acquire()
            with lock:
                starts.append(time.monotonic())
            pacer.release(ticket)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert len(starts) == 20
    for i in range(len(starts) - 5):
        assert starts[i + 5] - starts[i] >= 0.5


def test_pacer_raises_instead_of_sleeping_past_max_wait():
    pacer = Pacer(1, 30)
    pacer.acquire()
    with pytest.raises(PacingWait) as info:
        pacer.acquire(max_wait=1)
    assert 29 < info.value.wait <= 30.1


def test_adaptive_pacer_waits_for_reset_when_remaining_is_spent():
    from airflow_provider_outreach.core.rate_state import RateInfo

    pacer = Pacer()
    pacer.release(pacer.acquire(), RateInfo(limit=3, remaining=0, reset_in=0.4))
    started = time.monotonic()
    ticket = pacer.acquire()
    assert time.monotonic() - started >= 0.35
    pacer.release(ticket, RateInfo(limit=3, remaining=0, reset_in=3600))
    with pytest.raises(PacingWait):
        pacer.acquire(max_wait=60)


def test_adaptive_pacer_discounts_requests_still_in_flight():
    from airflow_provider_outreach.core.rate_state import RateInfo

    pacer = Pacer()
    first, second, third = pacer.acquire(), pacer.acquire(), pacer.acquire()
    pacer.release(first, RateInfo(limit=10, remaining=2, reset_in=30))
    # two requests sent after the first are not yet counted: nothing left to spend
    with pytest.raises(PacingWait):
        pacer.acquire(max_wait=1)
    pacer.release(third, RateInfo(limit=10, remaining=0, reset_in=30))
    # an answer arriving out of order never gives back what was spent
    pacer.release(second, RateInfo(limit=10, remaining=1, reset_in=30))
    with pytest.raises(PacingWait):
        pacer.acquire(max_wait=1)


def test_adaptive_pacer_refills_at_reset():
    from airflow_provider_outreach.core.rate_state import RateInfo

    pacer = Pacer()
    pacer.release(pacer.acquire(), RateInfo(limit=3, remaining=0, reset_in=0.3))
    for _ in range(3):
        pacer.acquire(max_wait=1)
    with pytest.raises(PacingWait):
        pacer.acquire(max_wait=0.01)


# -- connection settings: parsed once, empty or null means the default ------------------------


@pytest.mark.parametrize("value", [None, "", "  "])
def test_null_or_empty_tls_and_proxy_fields_mean_the_default(value):
    settings = connection_settings(LemlistHook, {"verify_ssl": value, "trust_env": value, "timeout": value})
    assert (settings.verify, settings.trust_env, settings.timeout) == (True, True, (10.0, 30.0))


@pytest.mark.parametrize("value", [False, "false", "0", "off"])
def test_tls_verification_is_off_only_when_asked(value):
    assert connection_settings(LemlistHook, {"verify_ssl": value}).verify is False


def test_rate_limit_period_alone_applies_to_the_default_limit():
    assert connection_settings(LemlistHook, {"rate_limit": None, "rate_limit_period": 4}).rate_limit == (20, 4.0)
    assert connection_settings(LemlistHook, {"rate_limit": 5, "rate_limit_period": None}).rate_limit == (5, 2.0)
    assert connection_settings(LeadlexHook, {}).rate_limit is None
    with pytest.raises(ConnectionConfigError, match="rate_limit_period"):
        connection_settings(LeadlexHook, {"rate_limit_period": 60})


def test_settings_repr_hides_the_key():
    settings = connection_settings(LemlistHook, {})
    assert "k" not in repr(settings).replace("conn_id", "").replace("timeout", "").replace("api.lemlist", "")


def test_one_budget_per_key_whatever_the_limits_of_each_connection():
    from airflow_provider_outreach.core.pacing import get_pacer

    loose = get_pacer("lemlist", "same-key", (20, 2.0))
    strict = get_pacer("lemlist", "same-key", (5, 2.0))
    assert loose is strict
    assert (strict.limit, strict.period) == (5, 2.0)  # the strictest limit applies
    assert get_pacer("lemlist", "same-key", (20, 2.0)).limit == 5
    assert get_pacer("lemlist", "other-key", (20, 2.0)) is not strict
    assert get_pacer("leadlex", "same-key", None) is not strict


def test_the_connection_pool_holds_every_worker():
    from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator

    op = LeadlexRemoveContactOperator(task_id="t", contact_id="c", campaign_id="x", max_workers=100)
    assert op.get_hook().pool_size >= 100


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_a_timeout_that_is_no_positive_finite_number_is_refused(value):
    with pytest.raises(ConnectionConfigError, match="'timeout' must be positive"):
        connection_settings(LemlistHook, {"timeout": value})


def test_an_odd_wait_asked_by_an_answer_is_bounded():
    """One header asking for years (or infinity) must not block a key for every worker,
    through the shared store, for years: the wait is read as at most two days."""
    from airflow_provider_outreach.core.pacing import MAX_ASKED_WAIT

    assert MAX_ASKED_WAIT == 2 * 86400
    for value in ("1e12", "inf", "nan", "Thu, 01 Jan 2099 00:00:00 GMT"):
        assert parse_retry_after(value) == MAX_ASKED_WAIT, value
    assert parse_reset("1e15") == MAX_ASKED_WAIT  # epoch milliseconds far ahead
    assert parse_reset("nan") is None


def test_leadlex_probe_with_no_data_is_not_the_api():
    assert LeadlexHook().probe_ok({"data": None}) is False
    assert LeadlexHook().probe_ok({"data": {"campaigns": []}}) is True
