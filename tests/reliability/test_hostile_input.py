"""Hostile ids, emails and server answers: encoded exactly, rejected clearly, or a typed error.

Property-based: every path parameter and bulk item drawn from text full of ``/``, ``..``,
``?``, ``#``, ``%``, spaces, CR/LF, unicode, lone surrogates and very long runs either
reaches the sandbox as exactly that value in exactly the intended path segment of the
intended endpoint (checked in the sandbox's request log), or is refused before any
request with an :class:`InvalidInputError` that names the parameter.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_outreach.core.paths import MAX_PATH_PARAM_LENGTH
from airflow_provider_outreach.exceptions import (
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    ServerError,
)
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import (
    LemlistMarkNotInterestedOperator,
    LemlistUnsubscribeLeadOperator,
)
from tests.conftest import RecordingTI

# fmt: off
PIECES = [
    "/", "//", ".", "..", "../", "/..", "?", "#", "%", "%2F", "%2e%2e", "%00", "%%", " ", "\t", "\r", "\n", "\r\n",
    "\x00", "\x7f", "&", "=", "+", ";", ",", "\\", "@", "~", "é", "ß", "日本", "😀", "\u202e", "\u2028", "\ufeff",
    "\ud800", "\udfff", "lea_1", "cam", "Host: x",
]
# fmt: on
hostile = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=8).map("".join),
    st.builds(lambda piece, n: piece * n, st.sampled_from(["x", "é", "😀", "/", "%"]), st.integers(2000, 2100)),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
#: an operator run per example costs more than one call: fewer examples, same explicit ones
OPERATOR_SETTINGS = settings(SETTINGS, max_examples=30)
# fmt: off
EXAMPLES = [
    "", " ", "\r\n", ".", "..", "../..", "a/b", "../../admin", "?x=1", "#top", "%", "%2F..%2F", "a b", "a\r\nHost: evil",
    "\x00", "é😀", "\ud800", "x" * MAX_PATH_PARAM_LENGTH, "x" * (MAX_PATH_PARAM_LENGTH + 1), "😀" * MAX_PATH_PARAM_LENGTH,
]
# fmt: on


def with_examples(fn):
    for value in EXAMPLES:
        fn = example(value)(fn)
    return fn


def refusable(value: str) -> bool:
    """What encoding cannot protect: nothing left after stripping, a dot segment, too long, not text."""
    if not value.strip() or value in (".", "..") or len(value) > MAX_PATH_PARAM_LENGTH:
        return True
    return any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def check_one_call(sandbox, vendor, call, params: dict[str, str], template: str) -> None:
    """``call()`` reached ``template`` with exactly ``params``, or was refused naming a parameter."""
    sandbox.clear_requests()
    bad = [name for name, value in params.items() if refusable(value)]
    try:
        call()
    except InvalidInputError as exc:
        assert bad, f"refused a usable value: {exc}"
        assert any(name in str(exc) for name in bad), f"the error does not name the parameter: {exc}"
        assert sandbox.requests() == [], "a request was sent for a refused value"
        return
    except NotFoundError:
        pass  # nothing of that id in the sandbox: the request is what matters
    assert not bad, f"{bad} should have been refused"
    (record,) = sandbox.requests()
    assert record["vendor"] == vendor
    expected = template.format(**{name: quote(value, safe="") for name, value in params.items()})
    assert record["path"] == expected
    assert record["segments"] == [
        params[part[1:-1]] if part.startswith("{") else part for part in template.strip("/").split("/")
    ]


@pytest.fixture
def api(sandbox, connections):
    """The in-process sandbox, with connections to it (lemlist's rate limit lifted)."""
    sandbox.configure(limits={"lemlist": []})
    connections("lemlist", rate_limit=100_000, rate_limit_period=1)
    return sandbox


# -- the hooks' path parameters ------------------------------------------------------------


@SETTINGS
@given(campaign_id=hostile, contact_id=hostile)
@example(campaign_id="cmp", contact_id="..")
@example(campaign_id="../v1/campaigns", contact_id="x")
@example(campaign_id="a/b", contact_id="c?d#e")
def test_leadlex_remove_contact(api, campaign_id, contact_id):
    check_one_call(
        api,
        "leadlex",
        lambda: LeadlexHook().remove_contact(campaign_id, contact_id),
        {"campaign_id": campaign_id, "contact_id": contact_id},
        "/v1/campaigns/{campaign_id}/contacts/{contact_id}",
    )


@SETTINGS
@given(campaign_id=hostile, email=hostile)
@example(campaign_id="cam_1", email="ann@example.com/../../team")
@example(campaign_id="cam_1", email="ann@example.com?action=remove")
def test_lemlist_unsubscribe_lead(api, campaign_id, email):
    check_one_call(
        api,
        "lemlist",
        lambda: LemlistHook().unsubscribe_lead(campaign_id, email),
        {"campaign_id": campaign_id, "email": email},
        "/campaigns/{campaign_id}/leads/{email}",
    )


@SETTINGS
@given(lead=hostile)
@with_examples
def test_lemlist_mark_not_interested(api, lead):
    check_one_call(
        api, "lemlist", lambda: LemlistHook().mark_not_interested(lead), {"lead": lead}, "/leads/notinterested/{lead}"
    )


@SETTINGS
@given(campaign_lead_id=hostile)
@with_examples
def test_dialnexa_get_campaign_lead(api, campaign_lead_id):
    check_one_call(
        api,
        "dialnexa",
        lambda: DialnexaHook().get_campaign_lead(campaign_lead_id),
        {"campaign_lead_id": campaign_lead_id},
        "/campaigns-leads/{campaign_lead_id}",
    )


@settings(SETTINGS, max_examples=25)
@given(campaign_id=hostile)
@with_examples
def test_async_campaign_read(api, campaign_id):
    """The trigger's path (httpx) encodes exactly like the sync one (requests)."""

    async def read():
        hook = DialnexaHook()
        await hook.aload_connection()
        async with hook.async_client() as client:
            return await hook.aget_campaign(client, campaign_id)

    check_one_call(
        api, "dialnexa", lambda: asyncio.run(read()), {"campaign_id": campaign_id}, "/campaigns/{campaign_id}"
    )


# -- the bulk operators' items ---------------------------------------------------------------


def run_items(sandbox, op) -> tuple[dict, list[dict]]:
    """The report and the item requests (the connection check's GET left out)."""
    sandbox.clear_requests()
    report = op.execute({"ti": RecordingTI()})
    return report, [r for r in sandbox.requests() if r["method"] != "GET"]


def unique_stripped(ids: list[str]) -> list[str]:
    """The operator's items: surrounding whitespace stripped (a CHAR(n) column pads), then de-duplicated."""
    return list(dict.fromkeys(i.strip() for i in ids))


def check_items(report: dict, log: list[dict], invalid_expected: set[str]) -> None:
    """Invalid items failed with reason ``invalid`` and were never sent; the others were sent once, exactly."""
    invalid = set(report["items"]["failed"])
    assert invalid == invalid_expected, "a valid item failed, or an invalid one was sent"
    assert all(
        f["reason"] == "invalid" and f["status"] is None and f["message"].startswith("id ") for f in report["failures"]
    )
    sent = [record["segments"][-1] for record in log]
    assert sorted(sent) == sorted(item for items in report["items"].values() for item in items if item not in invalid)


@OPERATOR_SETTINGS
@given(ids=st.lists(hostile, max_size=6))
@example(ids=["ctc_1", "", " ", ".", "..", "a/b", "a\nb", "x" * 3000, "\ud800", "ctc_1", "%2F"])
def test_leadlex_operator_items(api, ids):
    api.seed({"leadlex": {"campaigns": [{"id": "cmp_h", "status": "active"}]}})
    op = LeadlexRemoveContactOperator(task_id="t", contact_id=ids, campaign_id="cmp_h", fail_on_error=False)
    report, log = run_items(api, op)
    unique = unique_stripped(ids)
    check_items(report, log, {i for i in unique if refusable(i)})
    assert report["duplicates"] == len(ids) - len(unique)
    assert all(r["segments"][:4] == ["v1", "campaigns", "cmp_h", "contacts"] and len(r["segments"]) == 5 for r in log)


@OPERATOR_SETTINGS
@given(ids=st.lists(hostile, max_size=6))
@example(ids=["cl_1", "../campaigns/cmp_1", "?", "#", "cl_1\r\n"])
def test_dialnexa_operator_items(api, ids):
    op = DialnexaRemoveCampaignLeadOperator(task_id="t", campaign_lead_id=ids, fail_on_error=False)
    report, log = run_items(api, op)
    check_items(report, log, {i for i in unique_stripped(ids) if refusable(i)})
    assert all(r["segments"][0] == "campaigns-leads" and len(r["segments"]) == 2 for r in log)


emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    hostile,
    st.one_of(st.just("example.com"), hostile.map(lambda d: d + ".com")),
)
PLAIN_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@OPERATOR_SETTINGS
@given(values=st.lists(st.one_of(emails, hostile), max_size=6))
@example(
    values=["ann@example.com", " ANN@example.com ", "a/b@example.com", "a@b@example.com", "\r\n@x.com", "x@y.com\n"]
)
def test_lemlist_email_items(api, values):
    op = LemlistUnsubscribeLeadOperator(task_id="t", email=values, campaign_id="cam_h", fail_on_error=False)
    api.seed({"lemlist": {"campaigns": [{"_id": "cam_h"}]}})
    report, log = run_items(api, op)
    failures = {f["item"]: f for f in report["failures"]}
    assert {f["reason"] for f in failures.values()} <= {"invalid"}
    for record in log:
        assert record["segments"][:3] == ["campaigns", "cam_h", "leads"] and len(record["segments"]) == 4
        assert PLAIN_EMAIL.fullmatch(record["segments"][-1]), f"sent as an email: {record['segments'][-1]!r}"
    sent = sorted(r["segments"][-1] for r in log)
    assert sent == sorted(item for item in report["items"]["already_absent"])
    assert sum(report["counts"].values()) + report["duplicates"] == len(values)


@OPERATOR_SETTINGS
@given(values=st.lists(st.one_of(emails, hostile), max_size=6))
@example(values=["lea_1", "ann@example.com\n", "ann@example.com\r\n", "@example.com", "lea_1\n"])
def test_lemlist_id_or_email_items(api, values):
    """An item sent as an email is a plain address (no stray whitespace); an id is sent exactly."""
    op = LemlistMarkNotInterestedOperator(task_id="t", lead=values, fail_on_error=False)
    report, log = run_items(api, op)
    for record in log:
        item = record["segments"][-1]
        assert record["segments"][:2] == ["leads", "notinterested"] and len(record["segments"]) == 3
        assert "@" not in item or PLAIN_EMAIL.fullmatch(item), f"sent as an email: {item!r}"
    failures = {f["item"]: f for f in report["failures"]}
    assert {f["reason"] for f in failures.values()} <= {"invalid"}
    assert sorted(r["segments"][-1] for r in log) == sorted(report["items"]["already_absent"])


# -- hostile answers: malformed JSON and HTML error pages -------------------------------------


HOOK_CALLS = {
    "lemlist": lambda hook: hook.get_campaign("cam_1"),
    "leadlex": lambda hook: hook.get_campaign("cmp_1"),
    "dialnexa": lambda hook: hook.get_campaign("cmp_1"),
}
HOOKS = {"lemlist": LemlistHook, "leadlex": LeadlexHook, "dialnexa": DialnexaHook}


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_malformed_json_is_an_invalid_response_error(api, vendor):
    api.inject(vendor, [{"kind": "badjson"}])
    with pytest.raises(InvalidResponseError) as err:
        HOOK_CALLS[vendor](HOOKS[vendor](backoff=0.01))
    assert err.value.status_code == 200
    assert "not valid JSON" in str(err.value) and '{"data":' in str(err.value)
    assert len(api.requests()) == 1, "a malformed answer is not retried"


@pytest.mark.parametrize("vendor", sorted(HOOKS))
@pytest.mark.parametrize("status", [500, 502])
def test_html_error_page_is_a_server_error_with_its_title(api, vendor, status):
    api.inject(vendor, [{"kind": "html500", "status": status}] * 2)
    with pytest.raises(ServerError) as err:
        HOOK_CALLS[vendor](HOOKS[vendor](backoff=0.01, max_attempts=2))
    text = str(err.value)
    assert err.value.status_code == status
    assert err.value.message.startswith(f"{status} ") and "<" not in text and "nginx" not in text
    assert [r["status"] for r in api.requests()] == [status, status]


def _fast(operator_cls):
    class Fast(operator_cls):
        def get_hook(self):
            return self.spec.hook_class(
                self.conn_id, max_inline_wait=self.max_inline_wait, backoff=0.01, max_attempts=2
            )

    return Fast


def test_a_garbled_success_to_a_delete_is_done(api):
    """Any 2xx to a state-changing call means the action happened, whatever its body."""
    api.seed({"dialnexa": {"campaigns": [{"id": "cmp_1", "status": "active", "leads": [{"id": "cl_1"}]}]}})
    api.inject("dialnexa", ["ok", {"kind": "badjson", "phase": "after"}])
    op = _fast(DialnexaRemoveCampaignLeadOperator)(task_id="t", campaign_lead_id=["cl_1"], max_workers=1)
    report = op.execute({"ti": RecordingTI()})
    assert report["items"]["done"] == ["cl_1"]
    assert api.state()["dialnexa"]["leads"]["cl_1"]["status"] == "removed"


def test_a_garbled_success_to_the_connection_check_stops_before_any_item(api):
    api.seed({"dialnexa": {"campaigns": [{"id": "cmp_1", "status": "active", "leads": [{"id": "cl_1"}]}]}})
    api.inject("dialnexa", [{"kind": "badjson"}])
    op = _fast(DialnexaRemoveCampaignLeadOperator)(task_id="t", campaign_lead_id=["cl_1"], max_workers=1)
    with pytest.raises(AirflowFailException, match="answers like no known dialnexa API.*not valid JSON"):
        op.execute({"ti": RecordingTI()})
    assert [r["method"] for r in api.requests()] == ["GET"]


@pytest.mark.parametrize(
    ("script", "error", "words"),
    [
        ([{"kind": "html500"}] * 2, ServerError, "HTTP 500: 500 Internal Server Error"),
    ],
)
def test_hostile_answers_through_a_bulk_operator(api, script, error, words):
    api.seed(
        {"dialnexa": {"campaigns": [{"id": "cmp_1", "status": "active", "leads": [{"id": "cl_1"}, {"id": "cl_2"}]}]}}
    )
    api.inject("dialnexa", ["ok", *script])  # the connection check passes
    op = _fast(DialnexaRemoveCampaignLeadOperator)(
        task_id="t", campaign_lead_id=["cl_1", "cl_2"], max_workers=1, fail_on_error=False
    )
    report = op.execute({"ti": RecordingTI()})
    leads = api.state()["dialnexa"]["leads"]
    assert report["items"]["done"] == ["cl_2"] and leads["cl_2"]["status"] == "removed"
    (failure,) = report["failures"]
    assert failure["item"] == "cl_1" and failure["reason"] == error.__name__
    assert words in failure["message"] and "<" not in failure["message"]
    assert leads["cl_1"]["status"] == "pending"
