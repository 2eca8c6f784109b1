"""DialNexa (campaigns API): production ``https://api.dialnexa.com/v1``, served at ``/dialnexa/v1``.

Routes (after the API base)::

    GET    /agents                  -> {"data": [agent, ...], "total": n}
    GET    /campaigns/{id}          -> campaign
    GET    /campaigns-leads/{id}    404 when missing or removed
    DELETE /campaigns-leads/{id}    -> {"message": "Lead removed from campaign."};
                                    404 missing or removed, 409 campaign completed/cancelled

Auth: ``Authorization: Bearer <key>``. Errors are NestJS's
``{"statusCode", "message", "error"}``; an unknown route, or a known path with another
method, is ``Cannot <METHOD> <url>`` with the URL as requested from the host root
(``/v1/...``), as is any path outside ``/v1``. ``X-RateLimit-Reset`` is in epoch
seconds; a 429 adds ``Retry-After``. No default limit (numbers are not published).

Seed (``"dialnexa"``)::

    {"campaigns": [{"id": "cmp_1", "name": "...", "status": "active",
                    "leads": [{"id": "cld_1", "phone_number": "+15550001", "status": "pending"}]}],
     "leads": [{"id": "cld_2", "campaign_id": "cmp_1", "phone_number": "+15550002"}],
     "agents": [{"id": "agt_1", "name": "Ava"}]}

Missing ids get the prefixes ``cmp_``, ``cld_``, ``agt_``; a campaign defaults to
``active``, a lead to ``pending``. Snapshot: ``{"campaigns": {id: campaign}, "leads":
{id: lead}, "agents": [agent, ...]}``. Object kinds: ``campaign``, ``lead``, ``agent``.
"""

from __future__ import annotations

import time
from typing import ClassVar

from ..wire import Response, json_response, reason
from .base import ApiError, Messages, Vendor, iso_now, opt_str, req_dict, req_list, route

#: Campaign statuses the API documents; the last two are terminal.
CAMPAIGN_STATUSES = ("draft", "active", "running", "paused", "completed", "cancelled")
#: A lead can no longer be removed once its campaign is in one of these (409).
TERMINAL = ("completed", "cancelled")
LEAD_STATUSES = ("pending", "in_progress", "completed", "failed", "removed")


class Dialnexa(Vendor):
    name = "dialnexa"
    api_base = "/v1"
    default_key = "sandbox-dialnexa-key"
    method_not_allowed = False
    status_messages: ClassVar[Messages] = {
        401: ("Unauthorized", None),
        403: ("Forbidden resource", None),
        429: ("ThrottlerException: Too Many Requests", None),
    }

    # ------------------------------------------------------------ state
    def clear(self) -> None:
        super().clear()
        self.leads: dict[str, dict] = {}
        self.agents: dict[str, dict] = {}

    def seed(self, doc, counts) -> None:
        now = time.time()
        for raw in req_list(doc.get("agents"), "dialnexa.agents"):
            raw = req_dict(raw, "dialnexa agent")
            aid = opt_str(raw, "id", "dialnexa agent") or self.ids.new("agt_", 12)
            agent = self.agents.get(aid) or {"id": aid, "name": f"Agent {aid}"}
            agent.update(raw)
            agent["id"] = aid
            self.agents[aid] = agent
            self.count(counts, "agents")
        leads = []
        for raw in req_list(doc.get("campaigns"), "dialnexa.campaigns"):
            raw = req_dict(raw, "dialnexa campaign")
            cid = opt_str(raw, "id", "dialnexa campaign") or self.ids.new("cmp_", 12)
            camp = self.campaigns.get(cid)
            if camp is None:
                stamp = iso_now(now)
                camp = {
                    "id": cid,
                    "name": f"Campaign {cid}",
                    "status": "active",
                    "agent_id": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                self.campaigns[cid] = camp
            camp.update({k: v for k, v in raw.items() if k != "leads"})
            camp["id"] = cid
            self.count(counts, "campaigns")
            for lead in req_list(raw.get("leads"), "dialnexa campaign leads"):
                leads.append({**req_dict(lead, "dialnexa lead"), "campaign_id": cid})
        leads.extend(req_list(doc.get("leads"), "dialnexa.leads"))
        for raw in leads:
            raw = req_dict(raw, "dialnexa lead")
            cid = raw.get("campaign_id")
            if cid not in self.campaigns:
                raise ValueError(f"dialnexa lead refers to unknown campaign {cid!r}")
            status = raw.get("status")
            if status is not None and status not in LEAD_STATUSES:
                raise ValueError(f"dialnexa lead status must be one of {LEAD_STATUSES}")
            lid = opt_str(raw, "id", "dialnexa lead") or self.ids.new("cld_", 12)
            lead = self.leads.get(lid) or {
                "id": lid,
                "campaign_id": cid,
                "status": "pending",
                "phone_number": None,
                "name": None,
                "created_at": iso_now(now),
            }
            lead.update(raw)
            lead["id"] = lid
            self.leads[lid] = lead
            self.count(counts, "leads")

    def snapshot(self) -> dict:
        return {
            "campaigns": {k: dict(v) for k, v in self.campaigns.items()},
            "leads": {k: dict(v) for k, v in self.leads.items()},
            "agents": [dict(a) for a in self.agents.values()],
        }

    def objects(self) -> dict:
        def reader(table):
            return lambda oid: None if table.get(oid) is None else dict(table[oid])

        return {
            "campaign": (self.campaigns, reader(self.campaigns)),
            "lead": (self.leads, reader(self.leads)),
            "agent": (self.agents, reader(self.agents)),
        }

    def stamp_status(self, camp, status, now) -> None:
        camp["updated_at"] = iso_now(now)

    # ------------------------------------------------------------ wire format
    def error(self, status, message, code=None) -> Response:
        return json_response(status, {"statusCode": status, "message": message, "error": reason(status)})

    def _cannot(self, req, url) -> Response:
        if req.raw_query:
            url += "?" + req.raw_query
        return self.error(404, f"Cannot {req.method} {url}")

    def no_route(self, req) -> Response:
        return self._cannot(req, self.api_base + req.path)

    def outside_api(self, req) -> Response:
        return self._cannot(req, req.path)

    # ------------------------------------------------------------ routes
    def _lead(self, lid) -> dict:
        lead = self.leads.get(lid)
        if lead is None or lead.get("status") == "removed":
            raise ApiError(404, "Campaign lead not found")
        return lead

    @route("GET", "agents")
    def list_agents(self, req):
        agents = [dict(a) for a in self.agents.values()]
        return {"data": agents, "total": len(agents)}

    @route("GET", "campaigns/{cid}")
    def get_campaign(self, req, cid):
        camp = self.campaigns.get(cid)
        if camp is None:
            raise ApiError(404, "Campaign not found")
        req.campaign_read = cid
        return dict(camp)

    @route("GET", "campaigns-leads/{lid}")
    def get_lead(self, req, lid):
        return dict(self._lead(lid))

    @route("DELETE", "campaigns-leads/{lid}")
    def remove_lead(self, req, lid):
        lead = self._lead(lid)
        cid = lead.get("campaign_id")
        camp = self.campaigns.get(cid)
        if camp is not None and camp.get("status") in TERMINAL:
            raise ApiError(409, f"Campaign {cid} is {camp['status']}; leads can no longer be removed")
        lead["status"] = "removed"
        lead["removed_at"] = iso_now()
        return {"message": "Lead removed from campaign."}


VENDOR = Dialnexa
