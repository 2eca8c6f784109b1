"""Every hook method over real HTTP against the sandbox: success paths and documented errors."""

from __future__ import annotations

import pytest

from airflow_provider_outreach.exceptions import (
    AuthenticationError,
    ConflictError,
    ConnectionConfigError,
    InvalidRequestError,
    InvalidResponseError,
    NotFoundError,
    ServerError,
)
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook


def _last(sandbox, vendor):
    return sandbox.requests(vendor=vendor)[-1]


# -- lemlist -------------------------------------------------------------------------------


def test_lemlist_unsubscribe_lead(seeded):
    lead = LemlistHook().unsubscribe_lead("cam_running", "Ann@Example.com")
    assert lead["_id"] == "lea_ann"
    assert seeded.state()["lemlist"]["campaigns"]["cam_running"]["leads"]["lea_ann"]["state"] == "unsubscribed"
    req = _last(seeded, "lemlist")
    assert (req["method"], req["path"]) == ("DELETE", "/campaigns/cam_running/leads/Ann%40Example.com")
    assert req["authorization_scheme"] == "Basic"
    with pytest.raises(NotFoundError) as err:
        LemlistHook().unsubscribe_lead("cam_running", "ann@example.com")
    assert err.value.status_code == 404 and err.value.message == "Lead not found" and err.value.code is None


def test_lemlist_delete_lead_uses_action_remove(seeded):
    lead = LemlistHook().delete_lead("cam_running", "lea_bob")
    assert lead["_id"] == "lea_bob"
    req = _last(seeded, "lemlist")
    assert req["query"] == {"action": ["remove"]}
    assert seeded.state()["lemlist"]["campaigns"]["cam_running"]["leads"]["lea_bob"]["state"] == "removed"
    with pytest.raises(NotFoundError, match="Lead not found"):
        LemlistHook().delete_lead("cam_running", "lea_bob")
    with pytest.raises(NotFoundError, match="Campaign not found"):
        LemlistHook().delete_lead("cam_nope", "lea_cat")


def test_lemlist_mark_not_interested_returns_the_leads(seeded):
    leads = LemlistHook().mark_not_interested("cat@example.com")
    assert isinstance(leads, list) and [lead["_id"] for lead in leads] == ["lea_cat"]
    assert seeded.state()["lemlist"]["campaigns"]["cam_running"]["leads"]["lea_cat"]["notInterested"] is True
    assert LemlistHook().mark_not_interested("lea_cat")[0]["_id"] == "lea_cat"
    with pytest.raises(NotFoundError):
        LemlistHook().mark_not_interested("nobody@example.com")


def test_lemlist_add_unsubscribe_is_idempotent(seeded):
    first = LemlistHook().add_unsubscribe("Dan@Example.com")
    second = LemlistHook().add_unsubscribe("dan@example.com")
    assert first["_id"] == second["_id"] and first["variable"] == "email"
    assert LemlistHook().add_unsubscribe("@competitor.com")["variable"] == "domain"
    assert seeded.requests(vendor="lemlist")[-1]["path"] == "/v2/unsubscribes/variables/%40competitor.com"
    with pytest.raises(InvalidRequestError) as err:
        LemlistHook().add_unsubscribe("not a value")
    assert err.value.status_code == 400


def test_lemlist_get_campaign_and_probe(seeded):
    assert LemlistHook().get_campaign("cam_draft")["status"] == "draft"
    with pytest.raises(NotFoundError, match="Campaign not found"):
        LemlistHook().get_campaign("cam_missing")
    ok, message = LemlistHook().test_connection()
    assert ok, message
    assert _last(seeded, "lemlist")["path"] == "/team"


def test_lemlist_wrong_key(seeded, connections):
    connections("lemlist", "lemlist_bad", key="wrong-key")
    with pytest.raises(AuthenticationError) as err:
        LemlistHook("lemlist_bad").get_campaign("cam_draft")
    assert err.value.status_code == 401
    assert "incorrect" in err.value.message
    ok, message = LemlistHook("lemlist_bad").test_connection()
    assert not ok and "401" in message


# -- LeadLex -------------------------------------------------------------------------------


def test_leadlex_remove_contact(seeded):
    body = LeadlexHook().remove_contact("cmp_active", "ctc_ann")
    assert body["data"] == {"removed": True, "campaign_id": "cmp_active", "contact_id": "ctc_ann"}
    req = _last(seeded, "leadlex")
    assert (req["method"], req["path"], req["authorization_scheme"]) == (
        "DELETE",
        "/v1/campaigns/cmp_active/contacts/ctc_ann",
        "Bearer",
    )
    with pytest.raises(NotFoundError) as err:
        LeadlexHook().remove_contact("cmp_active", "ctc_ann")
    assert err.value.code == "enrollment_not_found"
    assert err.value.request_id and err.value.request_id.startswith("req_")
    assert err.value.request_id in str(err.value)
    with pytest.raises(NotFoundError) as err:
        LeadlexHook().remove_contact("cmp_missing", "ctc_bob")
    assert err.value.code == "campaign_not_found"


def test_leadlex_campaign_reads_delete_and_pause(seeded):
    hook = LeadlexHook()
    assert hook.get_campaign("cmp_active")["status"] == "active"
    assert hook.pause_campaign("cmp_active")["status"] == "paused"
    with pytest.raises(ConflictError) as err:
        hook.pause_campaign("cmp_active")
    assert err.value.code == "campaign_not_active"
    with pytest.raises(ConflictError) as err:
        hook.delete_campaign("cmp_done")
    assert err.value.code == "campaign_not_draft" and err.value.status_code == 409
    assert hook.delete_campaign("cmp_draft")["data"] == {"deleted": True, "id": "cmp_draft"}
    with pytest.raises(NotFoundError) as err:
        hook.get_campaign("cmp_draft")
    assert err.value.code == "campaign_not_found"
    ok, message = hook.test_connection()
    assert ok, message
    probe = _last(seeded, "leadlex")
    assert (probe["path"], probe["query"]) == ("/v1/campaigns", {"per_page": ["1"]})


def test_leadlex_auth_errors(seeded, connections):
    seeded.configure(
        keys={
            "leadlex": {"wbk_sandbox_leadlex_key": ["campaigns:read", "campaigns:write"], "wbk_ro": ["campaigns:read"]}
        }
    )
    connections("leadlex", "leadlex_ro", key="wbk_ro")
    connections("leadlex", "leadlex_bad", key="wbk_wrong")
    assert LeadlexHook("leadlex_ro").get_campaign("cmp_active")["id"] == "cmp_active"
    with pytest.raises(AuthenticationError) as err:
        LeadlexHook("leadlex_ro").remove_contact("cmp_active", "ctc_bob")
    assert (err.value.status_code, err.value.code) == (403, "insufficient_permissions")
    with pytest.raises(AuthenticationError) as err:
        LeadlexHook("leadlex_bad").get_campaign("cmp_active")
    assert (err.value.status_code, err.value.code) == (401, "invalid_key")
    ok, _ = LeadlexHook("leadlex_bad").test_connection()
    assert not ok


# -- DialNexa ------------------------------------------------------------------------------


def test_dialnexa_remove_and_read_campaign_lead(seeded):
    hook = DialnexaHook()
    assert hook.get_campaign_lead("cl_ann")["campaign_id"] == "cmp_live"
    assert hook.remove_campaign_lead("cl_ann") == {"message": "Lead removed from campaign."}
    with pytest.raises(NotFoundError) as err:
        hook.remove_campaign_lead("cl_ann")
    assert (err.value.code, err.value.status_code) == ("Not Found", 404)
    with pytest.raises(NotFoundError):
        hook.get_campaign_lead("cl_ann")
    with pytest.raises(ConflictError) as err:
        hook.remove_campaign_lead("cl_old")
    assert err.value.code == "Conflict" and "completed" in err.value.message
    assert hook.get_campaign("cmp_over")["status"] == "completed"
    with pytest.raises(NotFoundError, match="Campaign not found"):
        hook.get_campaign("cmp_missing")
    ok, message = hook.test_connection()
    assert ok, message
    assert _last(seeded, "dialnexa")["path"] == "/agents"


def test_dialnexa_wrong_key(seeded, connections):
    connections("dialnexa", "dialnexa_bad", key="nope")
    with pytest.raises(AuthenticationError) as err:
        DialnexaHook("dialnexa_bad").get_campaign("cmp_live")
    assert (err.value.status_code, err.value.code, err.value.message) == (401, "Unauthorized", "Unauthorized")


def test_dialnexa_message_list_is_joined():
    hook = DialnexaHook()
    code, message = hook.error_fields(
        {"statusCode": 400, "message": ["id must be a string", "id too long"], "error": "Bad Request"}
    )
    assert (code, message) == ("Bad Request", "id must be a string; id too long")


# -- bodies that are not what the docs promise ------------------------------------------------


def test_html_error_page_becomes_a_readable_server_error(seeded):
    seeded.inject("dialnexa", [{"kind": "html500"}] * 8)
    with pytest.raises(ServerError) as err:
        DialnexaHook(max_attempts=2, backoff=0.01).get_campaign("cmp_live")
    assert err.value.status_code == 500
    assert "<" not in err.value.message and err.value.message


def test_malformed_json_success_is_a_typed_error(seeded):
    seeded.inject("leadlex", [{"kind": "badjson"}])
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        LeadlexHook().get_campaign("cmp_active")


# -- connection problems ----------------------------------------------------------------------


def test_missing_api_key_names_the_connection(seeded, connections):
    connections("lemlist", "lemlist_nokey", key=" ")
    with pytest.raises(ConnectionConfigError, match="lemlist_nokey"):
        LemlistHook("lemlist_nokey").get_campaign("cam_draft")


def test_plain_http_to_remote_host_is_refused_before_any_request(seeded, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEADLEX_REMOTE",
        '{"conn_type": "leadlex", "host": "http://leadlex.example.com/api", "password": "wbk_sandbox_leadlex_key"}',
    )
    before = len(seeded.requests())
    with pytest.raises(ConnectionConfigError, match="plain http"):
        LeadlexHook("leadlex_remote").get_campaign("cmp_active")
    assert len(seeded.requests()) == before


def test_tls_verification_is_on_by_default(seeded):
    hook = LemlistHook()
    assert hook.get_conn().session.verify is True
