"""Tests of the outreach sandbox server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import base64
import calendar
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient, SandboxServer
from airflow_provider_outreach.sandbox.client import SandboxError

REPO = Path(__file__).resolve().parents[2]
JS_DATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{2} \d{4} \d{2}:\d{2}:\d{2} GMT\+0000 \(Coordinated Universal Time\)$"
)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

SEED = {
    "lemlist": {
        "campaigns": [
            {
                "_id": "cam_1",
                "name": "One",
                "status": "running",
                "leads": [
                    {"_id": "lea_a1", "email": "ann@example.com", "firstName": "Ann"},
                    {"_id": "lea_b1", "email": "bob@example.com", "firstName": "Bob"},
                    {"_id": "lea_c1", "email": "cat@example.com", "state": "unsubscribed"},
                    {"_id": "lea_d1", "email": "dan@example.com", "state": "removed"},
                ],
            },
            {
                "_id": "cam_2",
                "name": "Two",
                "status": "paused",
                "leads": [
                    {"_id": "lea_a2", "email": "ANN@example.com"},
                    {"_id": "lea_d2", "email": "dan@example.com"},
                ],
            },
        ],
        "unsubscribes": [
            {"value": "lead@example.com", "source": "lead"},
            {"value": "abuse@example.com", "source": "abuse"},
            {"value": "api@example.com", "source": "api"},
        ],
    },
    "leadlex": {
        "campaigns": [
            {
                "id": "ll_active",
                "name": "Active",
                "status": "active",
                "contacts": [
                    {
                        "contact_id": f"ct_{i}",
                        "email": f"p{i}@example.com",
                        "status": "bounced" if i % 5 == 0 else "active",
                    }
                    for i in range(1, 26)
                ],
            },
            {"id": "ll_draft", "name": "Draft", "status": "draft"},
            {"id": "ll_paused", "name": "Paused", "status": "paused"},
            {"id": "ll_done", "name": "Done", "status": "completed"},
        ],
    },
    "dialnexa": {
        "agents": [{"id": "agt_1", "name": "Ava"}],
        "campaigns": [
            {
                "id": "cmp_live",
                "name": "Live",
                "status": "active",
                "leads": [
                    {"id": "cld_1", "phone_number": "+15550001", "name": "One"},
                    {"id": "cld_2", "phone_number": "+15550002", "status": "removed"},
                ],
            },
            {
                "id": "cmp_done",
                "name": "Done",
                "status": "completed",
                "leads": [{"id": "cld_3", "phone_number": "+15550003", "status": "completed"}],
            },
            {
                "id": "cmp_gone",
                "name": "Cancelled",
                "status": "cancelled",
                "leads": [{"id": "cld_4", "phone_number": "+15550004"}],
            },
        ],
    },
}


class Api:
    """One pooled session per vendor, with the vendor's auth."""

    def __init__(self, sandbox: SandboxClient):
        self.sandbox = sandbox
        self.base = sandbox.base_url
        self.lem = requests.Session()
        self.lem.auth = ("", DEFAULT_KEYS["lemlist"])
        self.ll = requests.Session()
        self.ll.headers["Authorization"] = f"Bearer {DEFAULT_KEYS['leadlex']}"
        self.dn = requests.Session()
        self.dn.headers["Authorization"] = f"Bearer {DEFAULT_KEYS['dialnexa']}"
        self.raw = requests.Session()

    def url(self, vendor, path):
        return self.sandbox.vendor_url(vendor) + path

    def lemlist(self, method, path, **kw):
        return self.lem.request(method, self.url("lemlist", path), timeout=10, **kw)

    def leadlex(self, method, path, **kw):
        return self.ll.request(method, self.url("leadlex", path), timeout=10, **kw)

    def dialnexa(self, method, path, **kw):
        return self.dn.request(method, self.url("dialnexa", path), timeout=10, **kw)

    def close(self):
        for s in (self.lem, self.ll, self.dn, self.raw):
            s.close()


@pytest.fixture
def api(sandbox):
    sandbox.reset(SEED)
    client = Api(sandbox)
    yield client
    client.close()


def basic(login, password):
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


# ---------------------------------------------------------------------- auth
def test_lemlist_auth(api):
    url = api.url("lemlist", "/team")
    ok = api.lemlist("GET", "/team")
    assert ok.status_code == 200
    assert ok.json() == {"_id": "tea_sandbox", "name": "Sandbox team"}

    missing = api.raw.get(url)
    assert missing.status_code == 401 and missing.content == b""

    for header in (
        basic("", "wrong"),
        basic("user", DEFAULT_KEYS["lemlist"]),
        f"Bearer {DEFAULT_KEYS['lemlist']}",
        "Basic !!notbase64!!",
    ):
        bad = api.raw.get(url, headers={"Authorization": header})
        assert bad.status_code == 401, header
        assert bad.headers["Content-Type"].startswith("text/plain")
        assert bad.text == "The authentication you supplied is incorrect"


def test_leadlex_auth_and_permissions(api, sandbox):
    url = api.url("leadlex", "/v1/campaigns/ll_active")
    assert api.leadlex("GET", "/v1/campaigns/ll_active").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wbk_wrong"}, {"Authorization": basic("", DEFAULT_KEYS["leadlex"])}):
        resp = api.raw.get(url, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"error": {"code": "invalid_key", "message": "Invalid or expired API key"}}
        assert resp.headers["X-Request-ID"].startswith("req_")

    sandbox.configure(keys={"leadlex": {"wbk_ro": ["campaigns:read"], "wbk_wo": ["campaigns:write"], "wbk_full": None}})
    ro = {"Authorization": "Bearer wbk_ro"}
    assert api.raw.get(url, headers=ro).status_code == 200
    denied = api.raw.delete(api.url("leadlex", "/v1/campaigns/ll_draft"), headers=ro)
    assert denied.status_code == 403
    assert denied.json() == {
        "error": {"code": "insufficient_permissions", "message": "Missing campaigns:write permission"}
    }
    assert sandbox.leadlex_campaign("ll_draft") is not None
    wo = api.raw.get(url, headers={"Authorization": "Bearer wbk_wo"})
    assert wo.status_code == 403 and "campaigns:read" in wo.json()["error"]["message"]
    full = api.raw.post(
        api.url("leadlex", "/v1/campaigns/ll_active/pause"), headers={"Authorization": "Bearer wbk_full"}
    )
    assert full.status_code == 200
    # the default key was replaced by the configured ones
    assert api.leadlex("GET", "/v1/campaigns").status_code == 401


def test_dialnexa_auth_and_several_keys(api, sandbox):
    url = api.url("dialnexa", "/agents")
    assert api.dialnexa("GET", "/agents").json() == {"data": [{"id": "agt_1", "name": "Ava"}], "total": 1}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": DEFAULT_KEYS["dialnexa"]}):
        resp = api.raw.get(url, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"statusCode": 401, "message": "Unauthorized", "error": "Unauthorized"}
    sandbox.configure(keys={"dialnexa": ["k1", "k2"], "lemlist": ["l1", "l2"]})
    for key in ("k1", "k2"):
        assert api.raw.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert api.raw.get(api.url("lemlist", "/team"), auth=("", "l2")).status_code == 200
    assert api.dialnexa("GET", "/agents").status_code == 401


# ------------------------------------------------------------------- lemlist
def test_lemlist_campaign_pause_start(api):
    resp = api.lemlist("GET", "/campaigns/cam_1")
    assert resp.status_code == 200
    camp = resp.json()
    assert camp["_id"] == "cam_1" and camp["status"] == "running"
    assert camp["hasError"] is False and camp["errors"] == [] and "leads" not in camp
    missing = api.lemlist("GET", "/campaigns/cam_nope")
    assert (missing.status_code, missing.text) == (404, "Campaign not found")
    assert missing.headers["Content-Type"].startswith("text/plain")
    assert api.lemlist("POST", "/campaigns/cam_1/pause").json() == {"_id": "cam_1", "state": "paused"}
    assert api.lemlist("POST", "/campaigns/cam_1/pause").json() == {"_id": "cam_1", "state": "paused"}
    assert api.lemlist("GET", "/campaigns/cam_1").json()["status"] == "paused"
    assert api.lemlist("POST", "/campaigns/cam_1/start").json() == {"_id": "cam_1", "state": "running"}
    assert api.lemlist("POST", "/campaigns/cam_x/start").status_code == 404


def test_lemlist_unsubscribe_lead_by_email(api, sandbox):
    resp = api.lemlist("DELETE", "/campaigns/cam_1/leads/ANN%40Example.com")
    assert resp.status_code == 200
    lead = resp.json()
    assert lead["_id"] == "lea_a1" and lead["state"] == "unsubscribed"
    assert lead["campaignId"] == "cam_1" and lead["contactId"].startswith("ctc_")
    # the same person in the other campaign is untouched
    assert sandbox.lemlist_lead("lea_a2")["state"] == "active"
    again = api.lemlist("DELETE", "/campaigns/cam_1/leads/ann%40example.com")
    assert (again.status_code, again.text) == (404, "Lead not found")
    for path in (
        "/campaigns/cam_1/leads/cat%40example.com",  # already unsubscribed
        "/campaigns/cam_1/leads/dan%40example.com",  # removed
        "/campaigns/cam_1/leads/zed%40example.com",  # never there
        "/campaigns/cam_1/leads/lea_b1",
    ):  # an id needs action=remove
        resp = api.lemlist("DELETE", path)
        assert (resp.status_code, resp.text) == (404, "Lead not found"), path
    unknown = api.lemlist("DELETE", "/campaigns/cam_x/leads/ann%40example.com")
    assert (unknown.status_code, unknown.text) == (404, "Campaign not found")
    assert sandbox.lemlist_lead("lea_b1")["state"] == "active"


def test_lemlist_remove_lead_by_id(api, sandbox):
    resp = api.lemlist("DELETE", "/campaigns/cam_1/leads/lea_b1", params={"action": "remove"})
    assert resp.status_code == 200 and resp.json()["state"] == "removed"
    assert sandbox.lemlist_lead("lea_b1")["state"] == "removed"
    again = api.lemlist("DELETE", "/campaigns/cam_1/leads/lea_b1?action=remove")
    assert (again.status_code, again.text) == (404, "Lead not found")
    # an unsubscribed lead can still be removed; an email is not an id; another campaign's lead is not found
    assert api.lemlist("DELETE", "/campaigns/cam_1/leads/lea_c1?action=remove").status_code == 200
    assert api.lemlist("DELETE", "/campaigns/cam_1/leads/ann%40example.com?action=remove").status_code == 404
    assert api.lemlist("DELETE", "/campaigns/cam_1/leads/lea_a2?action=remove").status_code == 404
    assert api.lemlist("DELETE", "/campaigns/cam_x/leads/lea_a1?action=remove").text == "Campaign not found"


def test_lemlist_not_interested(api, sandbox):
    resp = api.lemlist("POST", "/leads/notinterested/ann%40EXAMPLE.com")
    assert resp.status_code == 200
    leads = resp.json()
    assert isinstance(leads, list)
    assert sorted(lead["_id"] for lead in leads) == ["lea_a1", "lea_a2"]
    assert all(lead["notInterested"] for lead in leads)
    assert api.lemlist("POST", "/leads/notinterested/ann%40example.com").status_code == 200
    by_id = api.lemlist("POST", "/leads/notinterested/lea_d2")
    # dan is removed in cam_1: only the cam_2 lead is marked
    assert [lead["_id"] for lead in by_id.json()] == ["lea_d2"]
    assert sandbox.lemlist_lead("lea_d1")["notInterested"] is False
    for key in ("lea_d1", "nobody%40example.com", "lea_zzz"):
        resp = api.lemlist("POST", f"/leads/notinterested/{key}")
        assert (resp.status_code, resp.text) == (404, "Lead not found")
    assert api.lemlist("GET", "/leads/notinterested/lea_a1").status_code == 405


def test_lemlist_unsubscribe_variables(api, sandbox):
    created = api.lemlist("POST", "/v2/unsubscribes/variables/New.Person%40Example.com")
    assert created.status_code == 200
    rec = created.json()
    assert rec["_id"].startswith("uns_") and rec["value"] == "new.person@example.com"
    assert rec["variable"] == "email" and rec["source"] == "api" and rec["createdAt"].endswith("Z")
    again = api.lemlist("POST", "/v2/unsubscribes/variables/new.person%40example.com")
    assert again.status_code == 200 and again.json()["_id"] == rec["_id"]
    cases = {
        "%40competitor.example": "domain",
        "https%3A%2F%2Fwww.linkedin.com%2Fin%2Fjane-doe": "linkedinUrl",
        "%2B33%206%2012-34-56-78": "phone",
    }
    for encoded, variable in cases.items():
        resp = api.lemlist("POST", f"/v2/unsubscribes/variables/{encoded}")
        assert resp.status_code == 200 and resp.json()["variable"] == variable, encoded
    assert (
        api.lemlist("POST", "/v2/unsubscribes/variables/%2B33%206%2012-34-56-78").json()["value"] == "+33 6 12-34-56-78"
    )
    assert "https://www.linkedin.com/in/jane-doe" in [r["value"] for r in sandbox.lemlist_unsubscribes().values()]
    for bad in ("not-an-email", "%40", "12345", "a%20b%40c.com"):
        resp = api.lemlist("POST", f"/v2/unsubscribes/variables/{bad}")
        assert (resp.status_code, resp.text) == (400, "Invalid value"), bad

    got = api.lemlist("GET", "/v2/unsubscribes/variables/NEW.PERSON%40example.com")
    assert got.status_code == 200 and got.json()["_id"] == rec["_id"]
    deleted = api.lemlist("DELETE", "/v2/unsubscribes/variables/new.person%40example.com")
    assert deleted.status_code == 200 and deleted.json()["_id"] == rec["_id"]
    for method in ("GET", "DELETE"):
        gone = api.lemlist(method, "/v2/unsubscribes/variables/new.person%40example.com")
        assert (gone.status_code, gone.text) == (404, "Unsubscribe not found")
    for value in ("lead%40example.com", "abuse%40example.com"):
        resp = api.lemlist("DELETE", f"/v2/unsubscribes/variables/{value}")
        assert (resp.status_code, resp.text) == (409, "Cannot delete an unsubscribe whose source is lead")
    assert api.lemlist("DELETE", "/v2/unsubscribes/variables/api%40example.com").status_code == 200
    assert set(sandbox.lemlist_unsubscribes()) >= {"lead@example.com", "abuse@example.com"}


def test_lemlist_unknown_route(api):
    resp = api.lemlist("GET", "/nothing/here")
    assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("text/plain")
    assert api.lemlist("GET", "/team/").status_code == 404


# ------------------------------------------------------------------- LeadLex
def test_leadlex_campaign_list_and_get(api):
    resp = api.leadlex("GET", "/v1/campaigns", params={"per_page": 2, "page": 2})
    body = resp.json()
    assert resp.status_code == 200
    assert [c["id"] for c in body["data"]["campaigns"]] == ["ll_paused", "ll_done"]
    assert body["meta"] == {"page": 2, "per_page": 2, "total": 4}
    camp = api.leadlex("GET", "/v1/campaigns/ll_active").json()["data"]["campaign"]
    assert camp["id"] == "ll_active" and camp["status"] == "active" and "created_at" in camp
    missing = api.leadlex("GET", "/v1/campaigns/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "campaign_not_found"
    assert api.leadlex("GET", "/v1/campaigns", params={"per_page": 101}).status_code == 400
    unknown = api.leadlex("GET", "/v1/other")
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_leadlex_delete_only_drafts(api, sandbox):
    for cid in ("ll_active", "ll_paused", "ll_done"):
        resp = api.leadlex("DELETE", f"/v1/campaigns/{cid}")
        assert resp.status_code == 409
        assert resp.json() == {
            "error": {"code": "campaign_not_draft", "message": "Only draft campaigns can be deleted"}
        }
    resp = api.leadlex("DELETE", "/v1/campaigns/ll_draft")
    assert resp.status_code == 200 and resp.json() == {"data": {"deleted": True, "id": "ll_draft"}}
    again = api.leadlex("DELETE", "/v1/campaigns/ll_draft")
    assert again.status_code == 404 and again.json()["error"]["code"] == "campaign_not_found"
    state = sandbox.state()["leadlex"]
    assert "ll_draft" not in state["campaigns"] and state["deleted_campaigns"] == ["ll_draft"]


def test_leadlex_pause_and_start(api):
    resp = api.leadlex("POST", "/v1/campaigns/ll_active/pause")
    camp = resp.json()["data"]["campaign"]
    assert resp.status_code == 200 and camp["id"] == "ll_active" and camp["status"] == "paused"
    assert camp["paused_at"].endswith("Z")
    again = api.leadlex("POST", "/v1/campaigns/ll_active/pause")
    assert again.status_code == 409 and again.json()["error"]["code"] == "campaign_not_active"
    started = api.leadlex("POST", "/v1/campaigns/ll_active/start")
    assert started.status_code == 200 and started.json()["data"]["campaign"]["status"] == "active"
    assert api.leadlex("POST", "/v1/campaigns/ll_draft/start").json()["data"]["campaign"]["status"] == "active"
    for cid in ("ll_active", "ll_done"):
        resp = api.leadlex("POST", f"/v1/campaigns/{cid}/start")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "campaign_not_startable"
    assert api.leadlex("POST", "/v1/campaigns/nope/pause").status_code == 404


def test_leadlex_contacts(api, sandbox):
    resp = api.leadlex("GET", "/v1/campaigns/ll_active/contacts", params={"per_page": 10, "page": 3})
    body = resp.json()
    assert [c["contact_id"] for c in body["data"]["contacts"]] == [f"ct_{i}" for i in range(21, 26)]
    assert body["meta"] == {"page": 3, "per_page": 10, "total": 25}
    bounced = api.leadlex("GET", "/v1/campaigns/ll_active/contacts?status=bounced&per_page=100").json()
    assert bounced["meta"]["total"] == 5 and all(c["status"] == "bounced" for c in bounced["data"]["contacts"])
    too_many = api.leadlex("GET", "/v1/campaigns/ll_active/contacts", params={"per_page": 101})
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "invalid_request"
    assert api.leadlex("GET", "/v1/campaigns/nope/contacts").json()["error"]["code"] == "campaign_not_found"

    removed = api.leadlex("DELETE", "/v1/campaigns/ll_active/contacts/ct_3")
    assert removed.status_code == 200
    assert removed.json() == {"data": {"removed": True, "campaign_id": "ll_active", "contact_id": "ct_3"}}
    again = api.leadlex("DELETE", "/v1/campaigns/ll_active/contacts/ct_3")
    assert again.status_code == 404
    assert again.json() == {
        "error": {"code": "enrollment_not_found", "message": "Contact is not enrolled in this campaign"}
    }
    other = api.leadlex("DELETE", "/v1/campaigns/nope/contacts/ct_3")
    assert other.json()["error"]["code"] == "campaign_not_found"
    camp = sandbox.leadlex_campaign("ll_active")
    assert "ct_3" not in camp["contacts"] and camp["removed_contacts"]["ct_3"]["email"] == "p3@example.com"
    assert api.leadlex("GET", "/v1/campaigns/ll_active/contacts").json()["meta"]["total"] == 24


# ------------------------------------------------------------------ DialNexa
def test_dialnexa_routes(api, sandbox):
    camp = api.dialnexa("GET", "/campaigns/cmp_live")
    assert camp.status_code == 200 and camp.json()["status"] == "active"
    missing = api.dialnexa("GET", "/campaigns/cmp_x")
    assert missing.json() == {"statusCode": 404, "message": "Campaign not found", "error": "Not Found"}
    lead = api.dialnexa("GET", "/campaigns-leads/cld_1").json()
    assert lead["campaign_id"] == "cmp_live" and lead["phone_number"] == "+15550001"
    assert lead["status"] == "pending"
    deleted = api.dialnexa("DELETE", "/campaigns-leads/cld_1")
    assert deleted.status_code == 200 and deleted.json() == {"message": "Lead removed from campaign."}
    assert sandbox.dialnexa_lead("cld_1")["status"] == "removed"
    not_found = {"statusCode": 404, "message": "Campaign lead not found", "error": "Not Found"}
    for method, lid in (("GET", "cld_1"), ("DELETE", "cld_1"), ("DELETE", "cld_2"), ("DELETE", "cld_x")):
        resp = api.dialnexa(method, f"/campaigns-leads/{lid}")
        assert resp.status_code == 404 and resp.json() == not_found
    for lid, cid, status in (("cld_3", "cmp_done", "completed"), ("cld_4", "cmp_gone", "cancelled")):
        resp = api.dialnexa("DELETE", f"/campaigns-leads/{lid}")
        assert resp.status_code == 409
        assert resp.json() == {
            "statusCode": 409,
            "error": "Conflict",
            "message": f"Campaign {cid} is {status}; leads can no longer be removed",
        }
    unknown = api.dialnexa("GET", "/nothing")
    assert unknown.status_code == 404 and unknown.json()["message"] == "Cannot GET /v1/nothing"


# ------------------------------------------------------------ path decoding
def test_path_segments_are_decoded_one_by_one(api, sandbox):
    ids = ["a/b", "what?now", "hash#tag", "100%", "caf\u00e9-\u65e5\u672c", "cam_1/pause"]
    sandbox.seed({"dialnexa": {"campaigns": [{"id": i, "name": i} for i in ids]}})
    encoded = ["a%2Fb", "what%3Fnow", "hash%23tag", "100%25", "caf%C3%A9-%E6%97%A5%E6%9C%AC", "cam_1%2Fpause"]
    sandbox.clear_requests()
    for cid, enc in zip(ids, encoded, strict=True):
        resp = api.dialnexa("GET", f"/campaigns/{enc}")
        assert resp.status_code == 200 and resp.json()["id"] == cid, enc
    log = sandbox.requests(vendor="dialnexa")
    assert [r["segments"][1] for r in log] == ids
    assert log[0]["path"] == "/campaigns/a%2Fb" and log[0]["raw_path"] == "/dialnexa/v1/campaigns/a%2Fb"
    bad = api.dialnexa("GET", "/campaigns/%FF%FE")
    assert bad.status_code == 400


def test_encoded_slash_does_not_reach_another_route(api, sandbox):
    # "cam_1/leads/ann@example.com" is one campaign id, not the unsubscribe route
    resp = api.lemlist("DELETE", "/campaigns/cam_1%2Fleads%2Fann%40example.com")
    assert resp.status_code == 405
    resp = api.lemlist("GET", "/campaigns/cam_1%2Fleads%2Fann%40example.com")
    assert (resp.status_code, resp.text) == (404, "Campaign not found")
    resp = api.lemlist("POST", "/campaigns/cam_1%2Fpause")
    assert resp.status_code == 405
    assert sandbox.lemlist_lead("lea_a1")["state"] == "active"
    assert sandbox.lemlist_campaign("cam_1")["status"] == "running"
    resp = api.leadlex("DELETE", "/v1/campaigns/ll_active%2Fcontacts%2Fct_1")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "campaign_not_found"
    assert "ct_1" in sandbox.leadlex_campaign("ll_active")["contacts"]
    # a literal "?" in an id must be encoded; "%3F" never starts the query
    resp = api.lemlist("DELETE", "/campaigns/cam_1/leads/lea_b1%3Faction=remove")
    assert (resp.status_code, resp.text) == (404, "Lead not found")
    assert sandbox.lemlist_lead("lea_b1")["state"] == "active"


# -------------------------------------------------------------- rate limits
def test_lemlist_rate_limit_and_headers(api, sandbox):
    sandbox.configure(limits={"lemlist": [{"limit": 3, "window": 1}]})
    assert api.raw.get(api.url("lemlist", "/team")).status_code == 401  # not counted
    seen = []
    for _ in range(4):
        seen.append(api.lemlist("GET", "/team"))
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
    limited = seen[-1]
    assert limited.text == "Too many requests, please try again later."
    assert limited.headers["Content-Type"].startswith("text/plain")
    for resp in seen:
        assert resp.headers["X-RateLimit-Limit"] == "3"
        assert JS_DATE.match(resp.headers["X-RateLimit-Reset"]), resp.headers["X-RateLimit-Reset"]
        assert int(resp.headers["Retry-After"]) >= 1
    reset = limited.headers["X-RateLimit-Reset"]
    parts = reset.split()
    stamp = time.strptime(f"{parts[3]} {MONTHS.index(parts[1]) + 1} {parts[2]} {parts[4]}", "%Y %m %d %H:%M:%S")
    reset_epoch = calendar.timegm(stamp)
    assert 0 <= reset_epoch - time.time() <= 2.5
    time.sleep(max(0.0, reset_epoch - time.time()) + 0.05)
    assert api.lemlist("GET", "/team").status_code == 200


def test_leadlex_rate_limit_windows(api, sandbox):
    sandbox.configure(limits={"leadlex": [{"limit": 5, "window": 60}, {"limit": 3, "window": "utc_day"}]})
    codes = [api.leadlex("GET", "/v1/campaigns") for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    last = codes[-1]
    assert last.json() == {"error": {"code": "rate_limited", "message": "Rate limit exceeded"}}
    assert "Retry-After" not in last.headers
    assert last.headers["X-Request-ID"].startswith("req_")
    # the daily window is the most constraining one: it resets at the next midnight UTC
    assert last.headers["X-RateLimit-Limit"] == "3" and last.headers["X-RateLimit-Remaining"] == "0"
    assert int(last.headers["X-RateLimit-Reset"]) == (int(time.time()) // 86400 + 1) * 86400
    first = codes[0]
    assert first.headers["X-RateLimit-Remaining"] == "2"
    # another key has its own counters
    sandbox.configure(keys={"leadlex": [DEFAULT_KEYS["leadlex"], "wbk_other"]})
    other = api.raw.get(api.url("leadlex", "/v1/campaigns"), headers={"Authorization": "Bearer wbk_other"})
    assert other.status_code == 200


def test_dialnexa_rate_limit_and_nominal_headers(api, sandbox):
    ok = api.dialnexa("GET", "/agents")
    assert ok.headers["X-RateLimit-Limit"] == "1000000"
    assert ok.headers["X-RateLimit-Remaining"] == "999999"
    assert 55 <= int(ok.headers["X-RateLimit-Reset"]) - time.time() <= 61
    assert "Retry-After" not in ok.headers
    sandbox.configure(limits={"dialnexa": [{"limit": 2, "window": 30}]})
    codes = [api.dialnexa("GET", "/agents") for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert "Retry-After" not in codes[1].headers
    limited = codes[2]
    assert limited.json() == {
        "statusCode": 429,
        "message": "ThrottlerException: Too Many Requests",
        "error": "Too Many Requests",
    }
    reset = int(limited.headers["X-RateLimit-Reset"])
    assert 28 <= reset - time.time() <= 31
    assert 29 <= int(limited.headers["Retry-After"]) <= 30


def test_rate_limit_is_exact_under_concurrency(api, sandbox):
    sandbox.configure(limits={"dialnexa": [{"limit": 30, "window": 60}]})
    results = []
    lock = threading.Lock()

    def work():
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {DEFAULT_KEYS['dialnexa']}"
            codes = [s.get(api.url("dialnexa", "/agents"), timeout=10).status_code for _ in range(10)]
        with lock:
            results.extend(codes)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 30 and results.count(429) == 50


def test_concurrent_writes_are_consistent(sandbox):
    n = 400
    sandbox.reset(
        {
            "lemlist": {
                "campaigns": [
                    {"_id": "cam_c", "leads": [{"_id": f"lea_{i}", "email": f"u{i}@example.com"} for i in range(n)]}
                ]
            }
        }
    )
    sandbox.configure(limits={"lemlist": []}, log=False)
    errors = []

    def work(k):
        with requests.Session() as s:
            s.auth = ("", DEFAULT_KEYS["lemlist"])
            for i in range(k, n, 8):
                r = s.delete(f"{sandbox.vendor_url('lemlist')}/campaigns/cam_c/leads/u{i}%40example.com", timeout=10)
                if r.status_code != 200:
                    errors.append(r.status_code)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    leads = sandbox.lemlist_campaign("cam_c")["leads"]
    assert all(lead["state"] == "unsubscribed" for lead in leads.values())
    assert sandbox.requests() == []


# ---------------------------------------------------------- latency, faults
def test_latency_applies_to_vendor_requests_only(api, sandbox):
    sandbox.configure(latency={"dialnexa": 1.5})
    t0 = time.monotonic()
    assert api.dialnexa("GET", "/agents").status_code == 200
    assert time.monotonic() - t0 >= 1.5
    t0 = time.monotonic()
    api.lemlist("GET", "/team")
    sandbox.state()
    assert time.monotonic() - t0 < 1.4  # neither waits the dialnexa latency
    assert sandbox.config()["latency"] == {"lemlist": 0.0, "leadlex": 0.0, "dialnexa": 1.5}


def test_scripted_faults_each_kind(api, sandbox):
    sandbox.inject(
        "lemlist", ["503", "500", "html500", {"kind": "badjson"}, {"kind": "slow", "slow_seconds": 0.3}, "ok", "drop"]
    )
    r = api.lemlist("GET", "/team")
    assert (r.status_code, r.text) == (503, "Service Unavailable")
    r = api.lemlist("GET", "/team")
    assert (r.status_code, r.text) == (500, "Internal Server Error")
    r = api.lemlist("GET", "/team")
    assert r.status_code == 500 and r.headers["Content-Type"].startswith("text/html")
    assert "<title>500 Internal Server Error</title>" in r.text
    r = api.lemlist("GET", "/team")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        r.json()
    t0 = time.monotonic()
    r = api.lemlist("GET", "/team")
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.3
    assert api.lemlist("GET", "/team").status_code == 200  # "ok"
    with pytest.raises(requests.ConnectionError):
        api.lemlist("GET", "/team")
    assert api.lemlist("GET", "/team").status_code == 200  # the session recovers
    faults = [rec["fault"] for rec in sandbox.requests(vendor="lemlist")]
    assert faults == ["503", "500", "html500", "badjson", "slow", None, "drop", None]
    drop = sandbox.requests(vendor="lemlist")[6]
    assert drop["status"] is None


def test_scripted_429_per_vendor(api, sandbox):
    sandbox.inject("lemlist", [{"kind": "429", "retry_after": 7}])
    sandbox.inject("leadlex", [{"kind": "429", "retry_after": 7}])
    sandbox.inject("dialnexa", [{"kind": "429", "retry_after": 7}])
    lem = api.lemlist("GET", "/team")
    assert lem.status_code == 429 and lem.headers["Retry-After"] == "7"
    assert lem.headers["X-RateLimit-Remaining"] == "0"
    ll = api.leadlex("GET", "/v1/campaigns")
    assert ll.status_code == 429 and "Retry-After" not in ll.headers
    assert ll.json()["error"]["code"] == "rate_limited"
    assert ll.headers["X-RateLimit-Remaining"] == "0"
    assert 6 <= int(ll.headers["X-RateLimit-Reset"]) - time.time() <= 8
    dn = api.dialnexa("GET", "/agents")
    assert dn.status_code == 429 and dn.headers["Retry-After"] == "7"
    assert dn.json()["statusCode"] == 429


def test_fault_phase_before_and_after(api, sandbox):
    sandbox.inject("dialnexa", ["503"], phase="before")
    assert api.dialnexa("DELETE", "/campaigns-leads/cld_1").status_code == 503
    assert sandbox.dialnexa_lead("cld_1")["status"] == "pending"
    sandbox.inject("dialnexa", [{"kind": "502", "phase": "after"}])
    resp = api.dialnexa("DELETE", "/campaigns-leads/cld_1")
    assert resp.status_code == 502
    assert resp.json() == {"statusCode": 502, "message": "Bad Gateway", "error": "Bad Gateway"}
    assert sandbox.dialnexa_lead("cld_1")["status"] == "removed"
    sandbox.inject("leadlex", ["drop"], phase="after")
    with pytest.raises(requests.ConnectionError):
        api.leadlex("DELETE", "/v1/campaigns/ll_active/contacts/ct_1")
    assert "ct_1" in sandbox.leadlex_campaign("ll_active")["removed_contacts"]
    assert api.leadlex("DELETE", "/v1/campaigns/ll_active/contacts/ct_1").status_code == 404


def test_faults_skip_unauthenticated_and_admin(api, sandbox):
    sandbox.inject("lemlist", ["503"])
    assert api.raw.get(api.url("lemlist", "/team")).status_code == 401
    assert sandbox.health()
    assert sandbox.config()["faults"] is None
    assert api.lemlist("GET", "/team").status_code == 503


def test_random_faults_rate_and_seed(api, sandbox):
    def run():
        sandbox.configure(faults={"rate": 0.3, "kinds": {"503": 1, "500": 1}, "seed": 7, "vendors": ["dialnexa"]})
        return [api.dialnexa("GET", "/agents").status_code for _ in range(300)]

    first = run()
    faulted = sum(1 for c in first if c != 200)
    assert 60 <= faulted <= 120
    assert set(first) == {200, 500, 503}
    assert run() == first  # same seed, same sequence
    assert all(api.lemlist("GET", "/team").status_code == 200 for _ in range(10))
    sandbox.configure(faults=None)
    assert all(api.dialnexa("GET", "/agents").status_code == 200 for _ in range(20))


def test_invalid_config_is_rejected(sandbox):
    for bad in (
        {"limits": {"lemlist": [{"limit": -1, "window": 2}]}},
        {"faults": {"rate": 2}},
        {"faults": {"kinds": {"teapot": 1}}},
        {"latency": "fast"},
        {"nope": 1},
        {"keys": {"acme": "k"}},
    ):
        with pytest.raises(SandboxError) as info:
            sandbox.configure(**bad)
        assert info.value.status == 400
    with pytest.raises(SandboxError):
        sandbox.inject("lemlist", ["explode"])


# ------------------------------------------------------------ status changes
def test_status_change_after_reads(api, sandbox):
    sandbox.set_campaign_status("leadlex", "ll_active", "completed", after_reads=1)
    first = api.leadlex("GET", "/v1/campaigns/ll_active").json()["data"]["campaign"]["status"]
    second = api.leadlex("GET", "/v1/campaigns/ll_active").json()["data"]["campaign"]["status"]
    assert (first, second) == ("active", "completed")

    sandbox.set_campaign_status("lemlist", "cam_1", "ended", after_reads=2)
    statuses = [api.lemlist("GET", "/campaigns/cam_1").json()["status"] for _ in range(3)]
    assert statuses == ["running", "running", "ended"]

    # a read replaced by a fault is not a served read
    sandbox.set_campaign_status("dialnexa", "cmp_live", "paused", after_reads=1)
    sandbox.inject("dialnexa", ["503"])
    assert api.dialnexa("GET", "/campaigns/cmp_live").status_code == 503
    assert api.dialnexa("GET", "/campaigns/cmp_live").json()["status"] == "active"
    assert api.dialnexa("GET", "/campaigns/cmp_live").json()["status"] == "paused"


def test_status_change_now_and_after_seconds(api, sandbox):
    change = sandbox.set_campaign_status("dialnexa", "cmp_live", "running")
    assert change["applied"] is True
    assert api.dialnexa("GET", "/campaigns/cmp_live").json()["status"] == "running"
    sandbox.set_campaign_status("dialnexa", "cmp_live", "completed", after_seconds=0.3)
    assert api.dialnexa("GET", "/campaigns/cmp_live").json()["status"] == "running"
    assert sandbox.state()["pending_status_changes"][0]["status"] == "completed"
    time.sleep(0.35)
    assert api.dialnexa("GET", "/campaigns/cmp_live").json()["status"] == "completed"
    with pytest.raises(SandboxError) as info:
        sandbox.set_campaign_status("dialnexa", "cmp_nope", "paused")
    assert info.value.status == 404


# -------------------------------------------------------------- request log
def test_request_log(api, sandbox):
    sandbox.clear_requests()
    api.lemlist("DELETE", "/campaigns/cam_1/leads/ann%40example.com?x=1&x=2")
    api.raw.get(api.url("leadlex", "/v1/campaigns"), headers={"Authorization": "Bearer wbk_secret_guess"})
    api.dialnexa("GET", "/agents")
    sandbox.health()
    log = sandbox.requests()
    assert len(log) == 3
    first = log[0]
    assert set(first) == {
        "seq",
        "time",
        "vendor",
        "method",
        "raw_path",
        "path",
        "segments",
        "query",
        "status",
        "fault",
        "authorized",
        "authorization_scheme",
        "outside_api",
    }
    assert first["vendor"] == "lemlist" and first["method"] == "DELETE"
    assert first["raw_path"] == "/lemlist/api/campaigns/cam_1/leads/ann%40example.com?x=1&x=2"
    assert first["path"] == "/campaigns/cam_1/leads/ann%40example.com"
    assert first["segments"] == ["campaigns", "cam_1", "leads", "ann@example.com"]
    assert first["query"] == {"x": ["1", "2"]}
    assert (first["status"], first["fault"], first["authorized"], first["outside_api"]) == (200, None, True, False)
    assert first["authorization_scheme"] == "Basic"
    assert abs(first["time"] - time.time()) < 5
    assert (log[1]["status"], log[1]["authorized"], log[1]["authorization_scheme"]) == (401, False, "Bearer")
    assert log[2]["authorization_scheme"] == "Bearer"
    dumped = json.dumps(log)
    for secret in list(DEFAULT_KEYS.values()) + [
        "wbk_secret_guess",
        base64.b64encode(b":sandbox-lemlist-key").decode(),
    ]:
        assert secret not in dumped
    assert [r["vendor"] for r in sandbox.requests(since=first["seq"])] == ["leadlex", "dialnexa"]
    assert [r["seq"] for r in sandbox.requests(vendor="dialnexa")] == [log[2]["seq"]]
    sandbox.clear_requests()
    assert sandbox.requests() == []
    sandbox.configure(log=False)
    api.dialnexa("GET", "/agents")
    assert sandbox.requests() == []


def test_reset_restores_everything(api, sandbox):
    sandbox.configure(
        limits={"lemlist": [{"limit": 1, "window": 60}]},
        latency=0.01,
        faults={"rate": 1.0, "kinds": ["503"], "vendors": ["leadlex"]},
        keys={"dialnexa": "other"},
    )
    assert api.lemlist("POST", "/v2/unsubscribes/variables/x%40y.com").status_code == 200
    sandbox.inject("lemlist", ["drop", "drop"])
    sandbox.reset()
    assert sandbox.state()["lemlist"]["campaigns"] == {}
    assert sandbox.lemlist_unsubscribes() == {}
    assert sandbox.requests() == []
    cfg = sandbox.config()
    assert cfg["limits"] == {"lemlist": [{"limit": 20, "window": 2}], "leadlex": [], "dialnexa": []}
    assert cfg["faults"] is None and cfg["log"] is True
    assert cfg["latency"] == {"lemlist": 0.0, "leadlex": 0.0, "dialnexa": 0.0}
    assert list(cfg["keys"]["dialnexa"]) == [DEFAULT_KEYS["dialnexa"]]
    assert api.lemlist("GET", "/team").status_code == 200  # no scripted drop left
    assert api.dialnexa("GET", "/agents").status_code == 200
    sandbox.reset({"dialnexa": {"agents": [{"id": "agt_9", "name": "Zed"}]}})
    assert api.dialnexa("GET", "/agents").json()["data"] == [{"id": "agt_9", "name": "Zed"}]


def test_seed_defaults_and_merge(sandbox):
    sandbox.reset(
        {
            "lemlist": {
                "campaigns": [{"name": "Generated", "leads": [{"email": "x@example.com"}, {"email": "X@example.com"}]}]
            }
        }
    )
    ((cid, camp),) = sandbox.state()["lemlist"]["campaigns"].items()
    assert cid.startswith("cam_") and camp["status"] == "running"
    leads = list(camp["leads"].values())
    assert all(lid.startswith("lea_") for lid in camp["leads"])
    assert leads[0]["contactId"] == leads[1]["contactId"] and leads[0]["contactId"].startswith("ctc_")
    assert leads[0]["state"] == "active" and leads[0]["notInterested"] is False
    sandbox.seed({"lemlist": {"campaigns": [{"_id": cid, "status": "paused"}]}})
    camp = sandbox.lemlist_campaign(cid)
    assert camp["status"] == "paused" and camp["name"] == "Generated" and len(camp["leads"]) == 2
    with pytest.raises(SandboxError):
        sandbox.seed({"dialnexa": {"leads": [{"id": "cld_x", "campaign_id": "missing"}]}})
    assert sandbox.get("lemlist", "lead", "lea_missing") is None


def test_demo_seed_loads(sandbox):
    path = REPO / "airflow_provider_outreach" / "sandbox" / "demo_seed.json"
    counts = sandbox.reset(json.loads(path.read_text()))["counts"]
    assert counts["lemlist_leads"] >= 150
    assert counts["leadlex_contacts"] + counts.get("leadlex_removed_contacts", 0) == 120
    assert counts["dialnexa_leads"] == 100
    state = sandbox.state()
    statuses = {v: {c["status"] for c in state[v]["campaigns"].values()} for v in ("lemlist", "leadlex", "dialnexa")}
    assert statuses["lemlist"] == {"running", "paused", "draft", "ended", "archived", "errors"}
    assert statuses["leadlex"] == {"draft", "active", "paused", "completed", "pending_approval"}
    assert statuses["dialnexa"] == {"draft", "active", "running", "paused", "completed", "cancelled"}
    lem = {lead["email"] for c in state["lemlist"]["campaigns"].values() for lead in c["leads"].values()}
    ll = {e["email"] for c in state["leadlex"]["campaigns"].values() for e in c["contacts"].values()}
    dn = {lead["email"] for lead in state["dialnexa"]["leads"].values()}
    assert lem & ll & dn


# -------------------------------------------------------------- HTTP basics
def test_keep_alive_and_content_length(sandbox_server, api):
    conn = http.client.HTTPConnection("127.0.0.1", sandbox_server.port, timeout=10)
    auth = {"Authorization": basic("", DEFAULT_KEYS["lemlist"])}
    for path in ("/lemlist/api/team", "/lemlist/api/nothing", "/lemlist/team", "/_sandbox/health", "/nowhere"):
        conn.request("GET", path, headers=auth)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.version == 11 and int(resp.getheader("Content-Length")) == len(body)
        assert resp.getheader("Connection") is None
    conn.request("GET", "/lemlist/api/team")  # 401 with an empty body, still kept alive
    resp = conn.getresponse()
    assert resp.status == 401 and resp.read() == b"" and resp.getheader("Content-Length") == "0"
    conn.request("GET", "/_sandbox/health")
    assert conn.getresponse().read() == b'{"ok":true}'
    conn.close()


def test_server_object_and_custom_keys():
    with SandboxServer(keys={"lemlist": "k-lem"}, config={"limits": {"lemlist": "5/1"}}) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.vendor_url("leadlex") == f"{server.url}/leadlex/functions/v1/api-gateway"
        r = requests.get(f"{server.vendor_url('lemlist')}/team", auth=("", "k-lem"), timeout=10)
        assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "5"
        # vendors not named in keys= keep their default key
        r = requests.get(
            f"{server.vendor_url('dialnexa')}/agents",
            headers={"Authorization": f"Bearer {DEFAULT_KEYS['dialnexa']}"},
            timeout=10,
        )
        assert r.status_code == 200
        client = SandboxClient(server.url)
        client.configure(keys={"lemlist": "changed"})
        client.reset()
        assert requests.get(f"{server.vendor_url('lemlist')}/team", auth=("", "k-lem"), timeout=10).status_code == 200
        client.close()


def test_cli_starts_and_stops(tmp_path):
    port_file = tmp_path / "port"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_outreach.sandbox",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--demo",
            "--latency",
            "0",
            "--leadlex-limit",
            "10/60",
            "--leadlex-limit",
            "100/utc_day",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        line = proc.stdout.readline().decode().strip()
        match = re.fullmatch(r"outreach-sandbox listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert port_file.read_text().strip() == match.group(1)
        client = SandboxClient(f"http://127.0.0.1:{match.group(1)}")
        assert client.health()
        assert client.config()["limits"]["leadlex"] == [
            {"limit": 10, "window": 60.0},
            {"limit": 100, "window": "utc_day"},
        ]
        assert len(client.state()["dialnexa"]["leads"]) == 100
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------ vendor layout
SANDBOX_DIR = REPO / "airflow_provider_outreach" / "sandbox"


def test_each_vendor_is_one_module_and_generic_code_names_none():
    from airflow_provider_outreach.sandbox.vendors import VENDORS

    assert list(VENDORS) == ["lemlist", "leadlex", "dialnexa"]
    assert all((SANDBOX_DIR / "vendors" / f"{name}.py").is_file() for name in VENDORS)
    vendor_test = re.compile(r"""(==|!=|\bin)\s*\(?["'](lemlist|leadlex|dialnexa)["']""")
    for path in SANDBOX_DIR.glob("*.py"):
        assert not vendor_test.search(path.read_text()), f"vendor-specific branch in {path.name}"
    # the sandbox shares nothing with the client but the vendor name list
    imports = re.compile(r"^\s*(?:from|import)\s+(airflow_provider_outreach[\w.]*)(.*)$", re.M)
    for path in SANDBOX_DIR.rglob("*.py"):
        for module, rest in imports.findall(path.read_text()):
            if not module.startswith("airflow_provider_outreach.sandbox"):
                assert (module, rest.strip()) == ("airflow_provider_outreach", "import VENDOR_NAMES"), path


def test_vendor_urls_follow_the_production_paths(sandbox_server, sandbox):
    expected = {"lemlist": "/lemlist/api", "leadlex": "/leadlex/functions/v1/api-gateway", "dialnexa": "/dialnexa/v1"}
    for vendor, path in expected.items():
        assert sandbox_server.vendor_path(vendor) == path
        assert sandbox_server.vendor_url(vendor) == sandbox_server.url + path
        assert sandbox.vendor_url(vendor) == sandbox_server.url + path
    for bad in ("acme", "", "_sandbox"):
        with pytest.raises(ValueError):
            sandbox_server.vendor_url(bad)
        with pytest.raises(ValueError):
            sandbox.vendor_url(bad)


# ------------------------------------------------------ outside the API base
def test_lemlist_outside_api_is_an_express_404(api, sandbox):
    sandbox.configure(limits={"lemlist": [{"limit": 1, "window": 60}]})
    sandbox.inject("lemlist", ["503"])
    sandbox.clear_requests()
    host = sandbox.base_url + "/lemlist"
    for method, path in (("GET", "/team"), ("POST", "/campaigns/cam_1/pause"), ("GET", "/a&b'c%3C"), ("GET", "")):
        resp = api.raw.request(method, host + path + "?x=1", timeout=10)
        assert resp.status_code == 404
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        shown = (path or "/").replace("&", "&amp;").replace("'", "&#39;")
        assert resp.text.startswith("<!DOCTYPE html>")
        assert f"<pre>Cannot {method} {shown}</pre>" in resp.text
        assert "X-RateLimit-Limit" not in resp.headers and "Retry-After" not in resp.headers
    # with a key too: neither authenticated nor counted, and no fault consumed
    assert api.lem.get(host + "/team", timeout=10).status_code == 404
    assert api.lemlist("GET", "/team").status_code == 503
    log = sandbox.requests(vendor="lemlist")
    outside = log[0]
    assert (outside["path"], outside["segments"], outside["query"]) == ("/team", ["team"], {"x": ["1"]})
    assert outside["raw_path"] == "/lemlist/team?x=1"
    assert (outside["status"], outside["outside_api"], outside["authorized"], outside["fault"]) == (
        404,
        True,
        None,
        None,
    )
    assert log[3]["path"] == "/" and log[4]["authorization_scheme"] == "Basic"
    assert (log[-1]["path"], log[-1]["outside_api"], log[-1]["fault"]) == ("/team", False, "503")
    assert DEFAULT_KEYS["lemlist"] not in json.dumps(log)


def test_leadlex_outside_api_is_an_edge_function_404(api, sandbox):
    not_found = {"code": "NOT_FOUND", "message": "Requested function was not found"}
    host = sandbox.base_url + "/leadlex"
    for path in ("/v1/campaigns", "/functions/v1/campaigns", "/functions/v1/other/v1/campaigns", "/functions"):
        resp = api.ll.get(host + path, timeout=10)
        assert (resp.status_code, resp.json()) == (404, not_found), path
        assert "X-Request-ID" not in resp.headers
    assert api.leadlex("GET", "/v1/campaigns").status_code == 200
    (record,) = sandbox.requests(vendor="leadlex")[:1]
    assert record["outside_api"] is True and record["path"] == "/v1/campaigns"


def test_dialnexa_outside_api_is_a_nestjs_404(api, sandbox):
    host = sandbox.base_url + "/dialnexa"
    resp = api.dn.get(host + "/campaigns/x", timeout=10)
    assert resp.json() == {"statusCode": 404, "message": "Cannot GET /campaigns/x", "error": "Not Found"}
    resp = api.raw.delete(host + "/campaigns-leads/cld_1?force=1", timeout=10)
    assert resp.status_code == 404
    assert resp.json() == {
        "statusCode": 404,
        "message": "Cannot DELETE /campaigns-leads/cld_1?force=1",
        "error": "Not Found",
    }
    assert sandbox.dialnexa_lead("cld_1")["status"] == "pending"
    assert [r["path"] for r in sandbox.requests(vendor="dialnexa")] == ["/campaigns/x", "/campaigns-leads/cld_1"]


def test_unknown_routes_inside_the_api_differ_from_absent_items(api):
    lem = api.lemlist("GET", "/nothing/here")
    assert (lem.status_code, lem.text) == (404, "Not found")
    assert api.lemlist("GET", "/campaigns/cam_x").text == "Campaign not found"
    assert api.lemlist("DELETE", "/campaigns/cam_1/leads/x%40y.com").text == "Lead not found"
    ll = api.leadlex("GET", "/v1/other")
    assert ll.json() == {"error": {"code": "not_found", "message": "Route not found"}}
    assert api.leadlex("GET", "/v1/campaigns/nope").json()["error"]["code"] == "campaign_not_found"
    assert (
        api.leadlex("DELETE", "/v1/campaigns/ll_active/contacts/nope").json()["error"]["code"] == "enrollment_not_found"
    )
    assert api.leadlex("PUT", "/v1/campaigns/ll_active").json()["error"]["code"] == "method_not_allowed"
    cases = {
        ("DELETE", "/campaigns-leads"): "Cannot DELETE /v1/campaigns-leads",
        ("POST", "/campaigns/cmp_live"): "Cannot POST /v1/campaigns/cmp_live",
        ("GET", "/nothing?page=2"): "Cannot GET /v1/nothing?page=2",
        ("GET", "/campaigns-leads/cld_2"): "Campaign lead not found",  # removed
        ("GET", "/campaigns-leads/cld_x"): "Campaign lead not found",  # missing
        ("GET", "/campaigns/cmp_x"): "Campaign not found",
    }
    for (method, path), message in cases.items():
        resp = api.dialnexa(method, path)
        assert resp.json() == {"statusCode": 404, "message": message, "error": "Not Found"}, path


# ------------------------------------------------------- lemlist suppression
def test_lemlist_bulk_unsubscribe(api, sandbox):
    values = [
        "New@Example.com",
        "@example.org",
        "https://www.linkedin.com/in/someone",
        "+1234567890",
        "new@example.com",
        "lead@example.com",
    ]
    resp = api.lemlist("POST", "/v2/unsubscribes/variables", json={"values": values})
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == "Variables unsubscribed"
    records = sandbox.lemlist_unsubscribes()
    for key in ("new@example.com", "@example.org", "https://www.linkedin.com/in/someone", "+1234567890"):
        assert records[key]["source"] == "api" and records[key]["_id"].startswith("uns_")
    assert records["lead@example.com"]["source"] == "lead"  # an existing record is kept as it is
    assert records["+1234567890"]["variable"] == "phone"
    before = sandbox.lemlist_unsubscribes()
    assert api.lemlist("POST", "/v2/unsubscribes/variables", json={"values": values}).status_code == 200
    assert sandbox.lemlist_unsubscribes() == before
    assert api.lemlist("POST", "/v2/unsubscribes/variables", json={"values": []}).json() == "Variables unsubscribed"


def test_lemlist_bulk_unsubscribe_limits_and_validation(api, sandbox):
    def post(**kw):
        return api.lemlist("POST", "/v2/unsubscribes/variables", **kw)

    before = sandbox.lemlist_unsubscribes()
    too_many = post(json={"values": [f"u{i}@example.com" for i in range(10_001)]})
    assert too_many.status_code == 400 and too_many.headers["Content-Type"].startswith("text/plain")
    assert "10000" in too_many.text
    for kw in (
        {"json": ["a@example.com"]},
        {"json": {"value": ["a@example.com"]}},
        {"json": {"values": "a@x.com"}},
        {"data": b"{not json"},
        {},
    ):
        resp = post(**kw)
        assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("text/plain"), kw
    mixed = post(json={"values": ["ok@example.com", "x", "@", 12, "y", "also.ok@example.com"]})
    assert (mixed.status_code, mixed.text) == (400, 'Invalid values: "x", "@", 12, "y"')
    many = post(json={"values": [f"bad{i}" for i in range(15)] + ["fine@example.com"]})
    assert many.status_code == 400
    assert many.text == "Invalid values: " + ", ".join(f'"bad{i}"' for i in range(10)) + " (and 5 more)"
    assert sandbox.lemlist_unsubscribes() == before  # nothing applied
    full = post(json={"values": [f"u{i}@example.com" for i in range(10_000)]})
    assert full.status_code == 200
    assert len(sandbox.lemlist_unsubscribes()) == len(before) + 10_000


def test_lemlist_list_unsubscribes(api, sandbox):
    sandbox.reset(
        {
            "lemlist": {
                "unsubscribes": [
                    {"value": "b@example.com", "source": "bounced", "createdAt": "2024-01-02T00:00:00.000Z"},
                    {"value": "u@example.com", "source": "user"},
                    {"value": "@example.net", "source": "abuse"},
                    "l@example.com",
                ]
            }
        }
    )
    values = [f"p{i}@example.com" for i in range(150)]
    assert api.lemlist("POST", "/v2/unsubscribes/variables", json={"values": values}).status_code == 200
    first = api.lemlist("GET", "/v2/unsubscribes/variables")
    assert first.status_code == 200
    page = first.json()
    assert len(page) == 100
    assert [r["value"] for r in page[:5]] == [
        "b@example.com",
        "u@example.com",
        "@example.net",
        "l@example.com",
        "p0@example.com",
    ]
    assert all(set(r) == {"_id", "value", "source", "createdAt"} for r in page)
    assert [r["source"] for r in page[:5]] == ["bounced", "user", "abuse", "api", "api"]
    assert page[0]["createdAt"] == "2024-01-02T00:00:00.000Z"
    rest = api.lemlist("GET", "/v2/unsubscribes/variables", params={"offset": 100, "limit": 100}).json()
    assert len(rest) == 54 and rest[-1]["value"] == "p149@example.com"
    window = api.lemlist("GET", "/v2/unsubscribes/variables?offset=3&limit=2").json()
    assert [r["value"] for r in window] == ["l@example.com", "p0@example.com"]
    assert api.lemlist("GET", "/v2/unsubscribes/variables?offset=1000").json() == []
    for query in ("limit=0", "limit=101", "limit=x", "offset=-1", "offset=1.5", "limit="):
        resp = api.lemlist("GET", f"/v2/unsubscribes/variables?{query}")
        assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("text/plain"), query
    one = api.lemlist("GET", "/v2/unsubscribes/variables/U%40example.com")
    assert one.status_code == 200 and one.json()["source"] == "user"
    with pytest.raises(SandboxError):
        sandbox.seed({"lemlist": {"unsubscribes": [{"value": "z@example.com", "source": "import"}]}})


def test_lemlist_unsubscribe_records_added_removed_and_their_list_order(api, sandbox):
    """Records lemlist makes itself (with a source and a time) join the end of the list, whatever
    their createdAt; a removal moves every later record one offset down; the other order the
    sandbox can serve is the exact reverse."""

    def listed(offset=0, limit=100):
        resp = api.lemlist("GET", "/v2/unsubscribes/variables", params={"offset": offset, "limit": limit})
        assert resp.status_code == 200
        return [(r["value"], r["source"], r["createdAt"]) for r in resp.json()]

    before = [v for v, _, _ in listed()]
    assert before == ["lead@example.com", "abuse@example.com", "api@example.com"]
    added = sandbox.add_lemlist_unsubscribes(
        [
            {"value": "click@example.com", "source": "lead", "createdAt": "2026-12-01T10:00:00.000Z"},
            {"value": "old@example.com", "source": "bounced", "createdAt": "2020-01-01T00:00:00.000Z"},
            "plain@example.com",
        ]
    )
    assert [r["source"] for r in added] == ["lead", "bounced", "api"]
    assert all(r["_id"].startswith("uns_") for r in added) and len({r["_id"] for r in added}) == 3
    assert listed()[3:] == [
        ("click@example.com", "lead", "2026-12-01T10:00:00.000Z"),
        ("old@example.com", "bounced", "2020-01-01T00:00:00.000Z"),  # the end, though created long ago
        ("plain@example.com", "api", added[2]["createdAt"]),
    ]
    # seeding an existing value updates it in place: same id, same offset
    again = sandbox.add_lemlist_unsubscribes([{"value": "CLICK@example.com", "source": "abuse"}])
    assert again[0]["_id"] == added[0]["_id"] and listed(3, 1)[0][:2] == ("click@example.com", "abuse")

    # a removal the API itself refuses (source lead) happens through the admin API
    assert api.lemlist("DELETE", "/v2/unsubscribes/variables/lead%40example.com").status_code == 409
    removed = sandbox.remove_lemlist_unsubscribe("LEAD@example.com")
    assert removed["source"] == "lead" and removed["value"] == "lead@example.com"
    assert [v for v, _, _ in listed()] == [
        "abuse@example.com",
        "api@example.com",
        "click@example.com",
        "old@example.com",
        "plain@example.com",
    ]
    assert listed(2, 1)[0][0] == "click@example.com"  # was at offset 3
    assert sandbox.remove_lemlist_unsubscribe("lead@example.com") is None
    with pytest.raises(SandboxError) as refused:
        sandbox.remove("lemlist", "campaign", "cam_1")
    assert refused.value.status == 400
    unknown = requests.delete(f"{sandbox.base_url}/_sandbox/objects/lemlist/nothing/x", timeout=10)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown object kind lemlist/nothing"})

    sandbox.seed({"lemlist": {"unsubscribe_order": "newest_first"}})
    assert [v for v, _, _ in listed()] == [
        "plain@example.com",
        "old@example.com",
        "click@example.com",
        "api@example.com",
        "abuse@example.com",
    ]
    sandbox.add_lemlist_unsubscribes([{"value": "newest@example.com", "source": "user"}])
    assert listed(0, 2) == [("newest@example.com", "user", listed(0, 1)[0][2]), listed(1, 1)[0]]
    assert listed(1, 1)[0][0] == "plain@example.com"  # every other record moved one offset up
    assert sandbox.state()["lemlist"]["unsubscribe_order"] == "newest_first"
    for bad in ({"unsubscribe_order": "by_value"}, {"unsubscribes": [{"value": "t@example.com", "createdAt": 5}]}):
        with pytest.raises(SandboxError):
            sandbox.seed({"lemlist": bad})
    sandbox.reset(SEED)
    assert sandbox.state()["lemlist"]["unsubscribe_order"] == "created"


def test_leadlex_paging_follows_the_readme(api):
    default = api.leadlex("GET", "/v1/campaigns/ll_active/contacts").json()
    assert default["meta"] == {"page": 1, "per_page": 20, "total": 25} and len(default["data"]["contacts"]) == 20
    beyond = api.leadlex("GET", "/v1/campaigns?page=3&per_page=2").json()
    assert beyond == {"data": {"campaigns": []}, "meta": {"page": 3, "per_page": 2, "total": 4}}
    assert api.leadlex("GET", "/v1/campaigns?per_page=1").json()["meta"] == {"page": 1, "per_page": 1, "total": 4}
    for path in ("/v1/campaigns", "/v1/campaigns/ll_active/contacts"):
        for query in ("page=0", "per_page=0", "per_page=101", "page=x", "page=-1"):
            resp = api.leadlex("GET", f"{path}?{query}")
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_request", (path, query)


# ------------------------------------------------------------- new faults
def test_redirect_and_empty_faults(api, sandbox):
    sandbox.inject(
        "lemlist", ["redirect", {"kind": "redirect", "status": 307, "location": "/lemlist/api/campaigns/cam_1"}]
    )
    sandbox.inject("dialnexa", ["empty", {"kind": "empty", "status": 502}, {"kind": "html500", "status": 404}])
    first = api.lemlist("GET", "/team?x=1", allow_redirects=False)
    assert first.status_code == 302 and first.content == b"" and "Content-Type" not in first.headers
    assert first.headers["Location"] == "/lemlist/api/team?x=1"
    second = api.lemlist("DELETE", "/campaigns/cam_1/leads/ann%40example.com", allow_redirects=False)
    assert second.status_code == 307 and second.headers["Location"] == "/lemlist/api/campaigns/cam_1"
    assert sandbox.lemlist_lead("lea_a1")["state"] == "active"
    for status in (404, 502):
        resp = api.dialnexa("GET", "/agents")
        assert (resp.status_code, resp.content) == (status, b"") and "Content-Type" not in resp.headers
    page = api.dialnexa("GET", "/agents")
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    assert "<title>404 Not Found</title>" in page.text and "nginx" in page.text
    faults = [r["fault"] for r in sandbox.requests()]
    assert faults == ["redirect", "redirect", "empty", "empty", "html500"]
    for bad in (
        {"kind": "redirect", "status": 200},
        {"kind": "redirect", "location": "/x\r\nSet-Cookie: a=b"},
        {"kind": "empty", "status": 99},
        {"kind": "500", "status": "many"},
    ):
        with pytest.raises(SandboxError) as info:
            sandbox.inject("leadlex", [bad])
        assert info.value.status == 400


def test_random_redirect_and_empty_faults(api, sandbox):
    sandbox.configure(faults={"rate": 1.0, "kinds": ["redirect", "empty"], "seed": 3, "vendors": ["leadlex"]})
    seen = {api.leadlex("GET", "/v1/campaigns", allow_redirects=False).status_code for _ in range(20)}
    assert seen == {302, 404}


def test_scripted_401_and_403_are_the_vendors_own(api, sandbox):
    for vendor in ("lemlist", "leadlex", "dialnexa"):
        sandbox.inject(vendor, ["401", {"kind": "error", "status": 403}])
    lem = [api.lemlist("GET", "/team") for _ in range(2)]
    assert (lem[0].status_code, lem[0].text) == (401, "The authentication you supplied is incorrect")
    assert (lem[1].status_code, lem[1].text) == (403, "Forbidden")
    ll = [api.leadlex("GET", "/v1/campaigns") for _ in range(2)]
    assert ll[0].status_code == 401 and ll[0].json() == {
        "error": {"code": "invalid_key", "message": "Invalid or expired API key"}
    }
    assert ll[1].status_code == 403 and ll[1].json()["error"]["code"] == "insufficient_permissions"
    dn = [api.dialnexa("GET", "/agents") for _ in range(2)]
    assert dn[0].json() == {"statusCode": 401, "message": "Unauthorized", "error": "Unauthorized"}
    assert dn[1].json() == {"statusCode": 403, "message": "Forbidden resource", "error": "Forbidden"}


# ------------------------------------------------------------ key revocation
def test_revoke_key_now_and_after_requests(api, sandbox):
    sandbox.configure(keys={"dialnexa": [DEFAULT_KEYS["dialnexa"], "other-key"]})
    result = sandbox.revoke_key("lemlist")
    assert result == {"ok": True, "vendor": "lemlist", "revoked": True, "requests_left": 0}
    resp = api.lemlist("GET", "/team")
    assert (resp.status_code, resp.text) == (401, "The authentication you supplied is incorrect")
    sandbox.revoke_key("leadlex", DEFAULT_KEYS["leadlex"])
    assert api.leadlex("GET", "/v1/campaigns").json()["error"]["code"] == "invalid_key"
    assert sandbox.revoke_key("dialnexa", after_requests=2)["requests_left"] == 2
    codes = [api.dialnexa("GET", "/agents").status_code for _ in range(4)]
    assert codes == [200, 200, 401, 401]
    assert api.dialnexa("GET", "/agents").json()["message"] == "Unauthorized"
    other = api.raw.get(api.url("dialnexa", "/agents"), headers={"Authorization": "Bearer other-key"})
    assert other.status_code == 200  # only that key is revoked
    log = sandbox.requests()
    assert log[0]["authorized"] is False and log[0]["status"] == 401
    assert not any(key in json.dumps(log) for key in DEFAULT_KEYS.values())
    sandbox.reset(SEED)
    assert api.lemlist("GET", "/team").status_code == 200
    assert api.leadlex("GET", "/v1/campaigns").status_code == 200
    assert api.dialnexa("GET", "/agents").status_code == 200


def test_revoke_key_errors_and_config_restores(api, sandbox):
    for kwargs, status in (
        ({"vendor": "acme"}, 400),
        ({"vendor": "lemlist", "key": "not-a-key"}, 404),
        ({"vendor": "lemlist", "after_requests": -1}, 400),
    ):
        vendor = kwargs.pop("vendor")
        with pytest.raises(SandboxError) as info:
            sandbox.revoke_key(vendor, **kwargs)
        assert info.value.status == status
        assert "not-a-key" not in str(info.value)
    sandbox.revoke_key("lemlist")
    assert api.lemlist("GET", "/team").status_code == 401
    sandbox.configure(keys={"lemlist": DEFAULT_KEYS["lemlist"]})  # keys set again: usable again
    assert api.lemlist("GET", "/team").status_code == 200
