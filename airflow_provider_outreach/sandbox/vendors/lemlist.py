"""lemlist: production ``https://api.lemlist.com/api``, served at ``/lemlist/api``.

Routes (after the API base)::

    GET    /team
    GET    /campaigns/{campaignId}
    POST   /campaigns/{campaignId}/pause | /start            -> {_id, state}
    DELETE /campaigns/{campaignId}/leads/{email}             unsubscribe the lead (by email)
    DELETE /campaigns/{campaignId}/leads/{leadId}?action=remove
    POST   /leads/notinterested/{leadIdOrEmail}              -> [lead, ...]
    POST   /v2/unsubscribes/variables/{value}                idempotent -> record
    GET    /v2/unsubscribes/variables/{value}                404 "Unsubscribe not found"
    DELETE /v2/unsubscribes/variables/{value}                409 when source is lead/abuse
    POST   /v2/unsubscribes/variables   {"values": [...]}    <= 10,000, all or nothing
    GET    /v2/unsubscribes/variables?offset=&limit=         limit 1..100, in the seed's
                                                             unsubscribe_order (see below)

Auth: HTTP Basic, empty login, API key as password. Errors are ``text/plain`` without a
code (a 401 without an ``Authorization`` header has no body). Every answer carries
``Retry-After`` and ``X-RateLimit-Reset`` as a JavaScript date string. Default limit:
20 requests per 2 s per key. Outside ``/api`` the host answers Express's 404 page.

Seed (``"lemlist"`` in a seed document)::

    {"team": {...},
     "campaigns": [{"_id": "cam_1", "name": "Q4", "status": "running",
                    "leads": [{"_id": "lea_1", "email": "a@x.com", "state": "active"}]}],
     "leads": [{"_id": "lea_2", "campaignId": "cam_1", "email": "b@x.com"}],
     "unsubscribes": [{"value": "x@y.com", "source": "lead", "createdAt": "..."}],
     "unsubscribe_order": "created"}

Missing ids get the prefixes ``cam_``, ``lea_``, ``ctc_``, ``uns_``; a campaign defaults
to ``running``, a lead to ``state`` ``active``, an unsubscribe to source ``api`` and
``createdAt`` the time it was seeded (any ISO string may be given: the list's order is
the order records were added, whatever their ``createdAt``). Seeding a value that exists
updates its record in place (same ``_id`` and position unless given).

lemlist does not document the order of its unsubscribe list. The sandbox serves the order
records were added (``"unsubscribe_order": "created"``, the default: a new record joins the
end) or, when seeded with ``"newest_first"``, the reverse (a new record enters at offset 0
and shifts every other one), so a client can be shown not to depend on either.

Snapshot: ``{"team", "campaigns": {id: {..., "leads": {id: lead}}}, "unsubscribes":
{lowercased value: record}, "unsubscribe_order"}``. Object kinds: ``campaign`` (with
``leads``), ``lead``, ``unsubscribe`` (by value, case-insensitive; the admin API may also
remove one whatever its source, as when lemlist deletes a contact's data).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
import time
from typing import ClassVar

from ..wire import HTML_CT, TEXT_CT, Response, escape_html, json_response
from .base import ApiError, Messages, Vendor, int_param, iso_now, opt_str, req_dict, req_list, route

#: Campaign statuses the API documents.
CAMPAIGN_STATUSES = ("running", "paused", "draft", "ended", "archived", "errors")
#: A lead's state in its campaign (sandbox model).
LEAD_STATES = ("active", "unsubscribed", "removed")
#: Where an unsubscribe record comes from.
UNSUBSCRIBE_SOURCES = ("api", "bounced", "lead", "user", "abuse")
#: Sources whose records cannot be lifted (409).
LOCKED_SOURCES = ("lead", "abuse")
#: Orders the sandbox can serve the unsubscribe list in (lemlist documents none).
UNSUBSCRIBE_ORDERS = ("created", "newest_first")
BULK_MAX_VALUES = 10_000
LIST_MAX_LIMIT = 100
INVALID_VALUES_SHOWN = 10

_EMAIL_RE = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")
_DOMAIN_RE = re.compile(r"^@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_PHONE_RE = re.compile(r"^\+[0-9][0-9 \-]*[0-9]$")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_EXPRESS_404 = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
    "</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
)


def js_date(epoch: float) -> str:
    """JavaScript ``Date.prototype.toString()`` of an instant, in UTC."""
    t = time.gmtime(math.ceil(epoch))
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT+0000 (Coordinated Universal Time)"
    )


def unsubscribe_variable(value) -> str | None:
    """Kind of an unsubscribe value (``email``, ``domain``, ``linkedinUrl``, ``phone``); None if invalid."""
    if not isinstance(value, str) or not value or value != value.strip():
        return None
    if "linkedin.com/" in value.lower() and not any(c.isspace() for c in value):
        return "linkedinUrl"
    if value.startswith("@"):
        return "domain" if _DOMAIN_RE.match(value) else None
    if _EMAIL_RE.match(value):
        return "email"
    if _PHONE_RE.match(value) and sum(c.isdigit() for c in value) >= 6:
        return "phone"
    return None


class Lemlist(Vendor):
    name = "lemlist"
    api_base = "/api"
    default_key = "sandbox-lemlist-key"
    default_limits = ({"limit": 20, "window": 2},)
    retry_after_on = "always"
    status_messages: ClassVar[Messages] = {
        401: ("The authentication you supplied is incorrect", None),
        429: ("Too many requests, please try again later.", None),
    }

    # ------------------------------------------------------------ state
    def clear(self) -> None:
        super().clear()
        self.team = {"_id": "tea_sandbox", "name": "Sandbox team"}
        self.leads: dict[str, dict[str, dict]] = {}  # campaign id -> lead id -> lead
        self.lead_campaign: dict[str, str] = {}  # lead id -> campaign id
        self.by_email: dict[str, dict[str, None]] = {}  # email lower -> ordered lead ids
        self.contact_ids: dict[str, str] = {}  # email lower -> ctc_ id
        self.unsubscribes: dict[str, dict] = {}  # lowercased value -> record, in creation order
        self.unsubscribe_order = UNSUBSCRIBE_ORDERS[0]

    def seed(self, doc, counts) -> None:
        now = time.time()
        if doc.get("team") is not None:
            self.team.update(req_dict(doc["team"], "lemlist.team"))
        for raw in req_list(doc.get("campaigns"), "lemlist.campaigns"):
            raw = req_dict(raw, "lemlist campaign")
            cid = opt_str(raw, "_id", "lemlist campaign") or self.ids.new("cam_")
            camp = self.campaigns.get(cid)
            if camp is None:
                camp = {
                    "_id": cid,
                    "name": f"Campaign {cid}",
                    "status": "running",
                    "hasError": False,
                    "errors": [],
                    "createdAt": iso_now(now),
                }
                self.campaigns[cid] = camp
                self.leads[cid] = {}
            camp.update({k: v for k, v in raw.items() if k != "leads"})
            camp["_id"] = cid
            self.count(counts, "campaigns")
            for lead in req_list(raw.get("leads"), "lemlist campaign leads"):
                self._upsert_lead(cid, req_dict(lead, "lemlist lead"))
                self.count(counts, "leads")
        for lead in req_list(doc.get("leads"), "lemlist.leads"):
            lead = req_dict(lead, "lemlist lead")
            cid = lead.get("campaignId")
            if cid not in self.campaigns:
                raise ValueError(f"lemlist lead refers to unknown campaign {cid!r}")
            self._upsert_lead(cid, lead)
            self.count(counts, "leads")
        for raw in req_list(doc.get("unsubscribes"), "lemlist.unsubscribes"):
            if isinstance(raw, str):
                raw = {"value": raw}
            raw = req_dict(raw, "lemlist unsubscribe")
            value = opt_str(raw, "value", "lemlist unsubscribe")
            variable = unsubscribe_variable(value)
            if variable is None:
                raise ValueError(f"invalid lemlist unsubscribe value {value!r}")
            if raw.get("source", "api") not in UNSUBSCRIBE_SOURCES:
                raise ValueError(f"lemlist unsubscribe source must be one of {UNSUBSCRIBE_SOURCES}")
            opt_str(raw, "createdAt", "lemlist unsubscribe")
            opt_str(raw, "_id", "lemlist unsubscribe")
            record = self.unsubscribes.get(value.lower()) or self._new_unsubscribe(value, variable, now)
            record.update({k: v for k, v in raw.items() if k != "value"})
            self.unsubscribes[value.lower()] = record
            self.count(counts, "unsubscribes")
        order = doc.get("unsubscribe_order")
        if order is not None:
            if order not in UNSUBSCRIBE_ORDERS:
                raise ValueError(f"lemlist unsubscribe_order must be one of {UNSUBSCRIBE_ORDERS}")
            self.unsubscribe_order = order

    def _upsert_lead(self, cid, raw) -> None:
        lid = opt_str(raw, "_id", "lemlist lead") or self.ids.new("lea_")
        opt_str(raw, "email", "lemlist lead")
        state = raw.get("state")
        if state is not None and state not in LEAD_STATES:
            raise ValueError(f"lemlist lead state must be one of {LEAD_STATES}")
        old_cid = self.lead_campaign.get(lid)
        lead = None
        if old_cid is not None:
            lead = self.leads[old_cid].pop(lid)
            self._unindex_email(lead)
        if lead is None:
            lead = {
                "_id": lid,
                "email": None,
                "firstName": "",
                "lastName": "",
                "companyName": "",
                "campaignId": cid,
                "contactId": None,
                "isPaused": False,
                "emailStatus": "deliverable",
                "state": "active",
                "notInterested": False,
            }
        lead.update(raw)
        lead["_id"] = lid
        lead["campaignId"] = cid
        if lead.get("email"):
            key = lead["email"].lower()
            if not lead.get("contactId"):
                ctc = self.contact_ids.get(key)
                if ctc is None:
                    ctc = self.contact_ids[key] = self.ids.new("ctc_")
                lead["contactId"] = ctc
            self.by_email.setdefault(key, {})[lid] = None
        elif not lead.get("contactId"):
            lead["contactId"] = self.ids.new("ctc_")
        self.leads[cid][lid] = lead
        self.lead_campaign[lid] = cid

    def _unindex_email(self, lead) -> None:
        email = lead.get("email")
        if email:
            ids = self.by_email.get(email.lower())
            if ids is not None:
                ids.pop(lead["_id"], None)
                if not ids:
                    del self.by_email[email.lower()]

    def _new_unsubscribe(self, value, variable, now) -> dict:
        if variable in ("email", "domain"):
            value = value.lower()
        return {
            "_id": self.ids.new("uns_"),
            "value": value,
            "variable": variable,
            "source": "api",
            "createdAt": iso_now(now),
        }

    def _campaign_with_leads(self, cid):
        camp = self.campaigns.get(cid)
        if camp is None:
            return None
        return {**camp, "leads": {k: dict(v) for k, v in self.leads[cid].items()}}

    def snapshot(self) -> dict:
        return {
            "team": dict(self.team),
            "campaigns": {cid: self._campaign_with_leads(cid) for cid in self.campaigns},
            "unsubscribes": {k: dict(v) for k, v in self.unsubscribes.items()},
            "unsubscribe_order": self.unsubscribe_order,
        }

    def objects(self) -> dict:
        def lead(lid):
            cid = self.lead_campaign.get(lid)
            return None if cid is None else dict(self.leads[cid][lid])

        def unsubscribe(value):
            rec = self.unsubscribes.get(value.lower())
            return None if rec is None else dict(rec)

        return {
            "campaign": (self.campaigns, self._campaign_with_leads),
            "lead": (self.lead_campaign, lead),
            "unsubscribe": (self.unsubscribes, unsubscribe),
        }

    def removers(self) -> dict:
        return {"unsubscribe": lambda value: self.unsubscribes.pop(value.lower(), None)}

    # ------------------------------------------------------------ wire format
    def credential(self, header):
        scheme, _, cred = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        login, sep, password = decoded.partition(":")
        return password if sep and login == "" and password else None

    def error(self, status, message, code=None) -> Response:
        if message is None:
            return Response(status)
        return Response(status, TEXT_CT, message.encode("utf-8"))

    def unauthorized(self, header_present) -> Response:
        return self.status_error(401) if header_present else self.error(401, None)

    def format_reset(self, reset) -> str:
        return js_date(reset)

    def outside_api(self, req) -> Response:
        body = _EXPRESS_404.format(method=escape_html(req.method), path=escape_html(req.path))
        headers = [("Content-Security-Policy", "default-src 'none'"), ("X-Content-Type-Options", "nosniff")]
        return Response(404, HTML_CT, body.encode("utf-8"), headers)

    # ------------------------------------------------------------ routes
    def _campaign(self, cid) -> dict:
        camp = self.campaigns.get(cid)
        if camp is None:
            raise ApiError(404, "Campaign not found")
        return camp

    @route("GET", "team")
    def get_team(self, req):
        return dict(self.team)

    @route("GET", "campaigns/{cid}")
    def get_campaign(self, req, cid):
        camp = dict(self._campaign(cid))
        req.campaign_read = cid
        return camp

    @route("POST", "campaigns/{cid}/pause")
    def pause(self, req, cid):
        self._campaign(cid)["status"] = "paused"
        return {"_id": cid, "state": "paused"}

    @route("POST", "campaigns/{cid}/start")
    def start(self, req, cid):
        self._campaign(cid)["status"] = "running"
        return {"_id": cid, "state": "running"}

    @route("DELETE", "campaigns/{cid}/leads/{lead}")
    def delete_lead(self, req, cid, lead):
        self._campaign(cid)
        if req.query.get("action", [""])[-1] == "remove":
            return self._remove_lead(cid, lead)
        return self._unsubscribe_lead(cid, lead)

    def _unsubscribe_lead(self, cid, email) -> dict:
        found = None
        for lid in self.by_email.get(email.lower(), ()):
            if self.lead_campaign.get(lid) != cid:
                continue
            lead = self.leads[cid][lid]
            if lead["state"] == "active":
                lead["state"] = "unsubscribed"
                if found is None:
                    found = lead
        if found is None:
            raise ApiError(404, "Lead not found")
        return dict(found)

    def _remove_lead(self, cid, lid) -> dict:
        lead = self.leads[cid].get(lid)
        if lead is None or lead["state"] == "removed":
            raise ApiError(404, "Lead not found")
        lead["state"] = "removed"
        return dict(lead)

    @route("POST", "leads/notinterested/{key}")
    def not_interested(self, req, key):
        cid = self.lead_campaign.get(key)
        if cid is not None:
            lead = self.leads[cid][key]
            if lead["state"] == "removed":
                raise ApiError(404, "Lead not found")
            email = lead.get("email")
            ids = list(self.by_email.get(email.lower(), ())) if email else [key]
        else:
            ids = list(self.by_email.get(key.lower(), ()))
        out = []
        for lid in ids:
            lead = self.leads[self.lead_campaign[lid]][lid]
            if lead["state"] == "removed":
                continue
            lead["notInterested"] = True
            out.append(dict(lead))
        if not out:
            raise ApiError(404, "Lead not found")
        return out

    def _add_unsubscribe(self, value, variable, now) -> dict:
        key = value.lower()
        record = self.unsubscribes.get(key)
        if record is None:
            record = self.unsubscribes[key] = self._new_unsubscribe(value, variable, now)
        return record

    @route("POST", "v2/unsubscribes/variables/{value}")
    def add_unsubscribe(self, req, value):
        variable = unsubscribe_variable(value)
        if variable is None:
            raise ApiError(400, "Invalid value")
        return dict(self._add_unsubscribe(value, variable, time.time()))

    @route("GET", "v2/unsubscribes/variables/{value}")
    def get_unsubscribe(self, req, value):
        record = self.unsubscribes.get(value.lower())
        if record is None:
            raise ApiError(404, "Unsubscribe not found")
        return dict(record)

    @route("DELETE", "v2/unsubscribes/variables/{value}")
    def delete_unsubscribe(self, req, value):
        key = value.lower()
        record = self.unsubscribes.get(key)
        if record is None:
            raise ApiError(404, "Unsubscribe not found")
        if record.get("source") in LOCKED_SOURCES:
            raise ApiError(409, "Cannot delete an unsubscribe whose source is lead")
        del self.unsubscribes[key]
        return dict(record)

    @route("POST", "v2/unsubscribes/variables")
    def add_unsubscribes(self, req):
        try:
            doc = json.loads(req.body) if req.body else None
        except (ValueError, UnicodeDecodeError):
            doc = None
        values = doc.get("values") if isinstance(doc, dict) else None
        if not isinstance(values, list):
            raise ApiError(400, 'Body must be a JSON object {"values": [...]}')
        if len(values) > BULK_MAX_VALUES:
            raise ApiError(400, f"Too many values: at most {BULK_MAX_VALUES} per request")
        kinds = [unsubscribe_variable(v) for v in values]
        invalid = [v for v, kind in zip(values, kinds, strict=True) if kind is None]
        if invalid:
            shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in invalid[:INVALID_VALUES_SHOWN])
            more = len(invalid) - INVALID_VALUES_SHOWN
            raise ApiError(400, f"Invalid values: {shown}" + (f" (and {more} more)" if more > 0 else ""))
        now = time.time()
        for value, kind in zip(values, kinds, strict=True):
            self._add_unsubscribe(value, kind, now)
        return json_response(200, "Variables unsubscribed")

    @route("GET", "v2/unsubscribes/variables")
    def list_unsubscribes(self, req):
        offset = int_param(req.query, "offset", 0, 0, 10**15)
        limit = int_param(req.query, "limit", LIST_MAX_LIMIT, 1, LIST_MAX_LIMIT)
        records = self.unsubscribes.values()
        if self.unsubscribe_order == "newest_first":
            records = reversed(records)
        page = itertools.islice(records, offset, offset + limit)
        return [{k: rec.get(k) for k in ("_id", "value", "source", "createdAt")} for rec in page]


VENDOR = Lemlist
