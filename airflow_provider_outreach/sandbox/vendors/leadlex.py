"""LeadLex: production ``https://data.leadlex.com/functions/v1/api-gateway``, served at
``/leadlex/functions/v1/api-gateway``.

Routes (after the API base; permission needed)::

    GET    /v1/campaigns?page=&per_page=                      campaigns:read
    GET    /v1/campaigns/{id}                                 campaigns:read
    DELETE /v1/campaigns/{id}              draft only (409)   campaigns:write
    POST   /v1/campaigns/{id}/pause        active only (409)  campaigns:write
    POST   /v1/campaigns/{id}/start        draft or paused    campaigns:write
    GET    /v1/campaigns/{id}/contacts?page=&per_page=&status=   campaigns:read
    DELETE /v1/campaigns/{id}/contacts/{contact_id}           campaigns:write

Lists answer ``{"data": {...: [...]}, "meta": {"page", "per_page", "total"}}``; pages
start at 1, ``per_page`` is 1..100 (default 20). Auth: ``Authorization: Bearer <key>``;
keys carry permissions (403 ``insufficient_permissions``). Errors:
``{"error": {"code", "message"}}``. Every answer carries ``X-Request-ID`` and
``X-RateLimit-Reset`` in epoch seconds; there is no ``Retry-After``. No default limit
(plans differ). Outside the API base the host answers the edge-function 404
``{"code": "NOT_FOUND", "message": "Requested function was not found"}``.

Seed (``"leadlex"``)::

    {"campaigns": [{"id": "...", "name": "...", "status": "draft",
                    "contacts": [{"contact_id": "...", "email": "...", "status": "active"}],
                    "removed_contacts": [...]}]}

Missing ids are UUIDs; a campaign defaults to ``active``, an enrollment to ``active``.
Snapshot: ``{"campaigns": {id: {..., "contacts": {...}, "removed_contacts": {...}}},
"deleted_campaigns": [id, ...]}``. Object kind: ``campaign`` (with its contacts).
"""

from __future__ import annotations

import time
import uuid
from typing import ClassVar

from ..wire import Response, json_response
from .base import ApiError, Messages, Vendor, int_param, iso_now, opt_str, req_dict, req_list, route

#: Campaign statuses the API documents.
CAMPAIGN_STATUSES = ("draft", "active", "paused", "completed", "pending_approval")
DELETABLE = "draft"
PAUSABLE = "active"
STARTABLE = ("draft", "paused")
PER_PAGE_MAX = 100
PER_PAGE_DEFAULT = 20
READ = "campaigns:read"
WRITE = "campaigns:write"

CODES = {
    400: "invalid_request",
    401: "invalid_key",
    403: "insufficient_permissions",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def _need(req, permission) -> None:
    if permission not in req.permissions:
        raise ApiError(403, f"Missing {permission} permission", "insufficient_permissions")


def _paging(req) -> tuple[int, int]:
    page = int_param(req.query, "page", 1, 1, 10**9, "invalid_request")
    per_page = int_param(req.query, "per_page", PER_PAGE_DEFAULT, 1, PER_PAGE_MAX, "invalid_request")
    return page, per_page


def _page(items, page, per_page) -> list:
    start = (page - 1) * per_page
    return [dict(c) for c in items[start : start + per_page]]


class Leadlex(Vendor):
    name = "leadlex"
    api_base = "/functions/v1/api-gateway"
    default_key = "wbk_sandbox_leadlex_key"
    key_permissions = (READ, WRITE)
    retry_after_on = "never"
    status_messages: ClassVar[Messages] = {
        401: ("Invalid or expired API key", "invalid_key"),
        403: ("Missing required permission", "insufficient_permissions"),
        429: ("Rate limit exceeded", "rate_limited"),
        500: ("Internal server error", "internal_error"),
    }

    # ------------------------------------------------------------ state
    def clear(self) -> None:
        super().clear()
        self.contacts: dict[str, dict[str, dict]] = {}
        self.removed: dict[str, dict[str, dict]] = {}
        self.deleted: list[str] = []

    def seed(self, doc, counts) -> None:
        now = time.time()
        for raw in req_list(doc.get("campaigns"), "leadlex.campaigns"):
            raw = req_dict(raw, "leadlex campaign")
            cid = opt_str(raw, "id", "leadlex campaign") or self.ids.uuid()
            camp = self.campaigns.get(cid)
            if camp is None:
                stamp = iso_now(now)
                camp = {
                    "id": cid,
                    "name": f"Campaign {cid}",
                    "status": "active",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "paused_at": None,
                }
                self.campaigns[cid] = camp
                self.contacts[cid] = {}
                self.removed[cid] = {}
                if cid in self.deleted:
                    self.deleted.remove(cid)
            camp.update({k: v for k, v in raw.items() if k not in ("contacts", "removed_contacts")})
            camp["id"] = cid
            self.count(counts, "campaigns")
            for target, other, key in (
                (self.contacts[cid], self.removed[cid], "contacts"),
                (self.removed[cid], self.contacts[cid], "removed_contacts"),
            ):
                for item in req_list(raw.get(key), f"leadlex campaign {key}"):
                    item = req_dict(item, "leadlex contact")
                    contact_id = opt_str(item, "contact_id", "leadlex contact") or self.ids.uuid()
                    enrollment = target.get(contact_id) or {
                        "contact_id": contact_id,
                        "email": None,
                        "status": "active",
                        "enrolled_at": iso_now(now),
                    }
                    enrollment.update(item)
                    enrollment["contact_id"] = contact_id
                    if key == "removed_contacts":
                        enrollment.setdefault("removed_at", iso_now(now))
                    other.pop(contact_id, None)
                    target[contact_id] = enrollment
                    self.count(counts, key)

    def _campaign_with_contacts(self, cid):
        camp = self.campaigns.get(cid)
        if camp is None:
            return None
        return {
            **camp,
            "contacts": {k: dict(v) for k, v in self.contacts[cid].items()},
            "removed_contacts": {k: dict(v) for k, v in self.removed[cid].items()},
        }

    def snapshot(self) -> dict:
        return {
            "campaigns": {cid: self._campaign_with_contacts(cid) for cid in self.campaigns},
            "deleted_campaigns": list(self.deleted),
        }

    def objects(self) -> dict:
        return {"campaign": (self.campaigns, self._campaign_with_contacts)}

    def stamp_status(self, camp, status, now) -> None:
        camp["updated_at"] = iso_now(now)
        if status == "paused":
            camp["paused_at"] = iso_now(now)

    # ------------------------------------------------------------ wire format
    def error(self, status, message, code=None) -> Response:
        return json_response(status, {"error": {"code": code or CODES.get(status, "error"), "message": message}})

    def extra_headers(self) -> list:
        return [("X-Request-ID", "req_" + uuid.uuid4().hex)]

    def no_route(self, req) -> Response:
        return self.error(404, "Route not found", "not_found")

    def outside_api(self, req) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "message": "Requested function was not found"})

    # ------------------------------------------------------------ routes
    def _campaign(self, cid) -> dict:
        camp = self.campaigns.get(cid)
        if camp is None:
            raise ApiError(404, "Campaign not found", "campaign_not_found")
        return camp

    @route("GET", "v1/campaigns")
    def list_campaigns(self, req):
        _need(req, READ)
        page, per_page = _paging(req)
        items = list(self.campaigns.values())
        return {
            "data": {"campaigns": _page(items, page, per_page)},
            "meta": {"page": page, "per_page": per_page, "total": len(items)},
        }

    @route("GET", "v1/campaigns/{cid}")
    def get_campaign(self, req, cid):
        _need(req, READ)
        body = {"data": {"campaign": dict(self._campaign(cid))}}
        req.campaign_read = cid
        return body

    @route("DELETE", "v1/campaigns/{cid}")
    def delete_campaign(self, req, cid):
        _need(req, WRITE)
        camp = self._campaign(cid)
        if camp["status"] != DELETABLE:
            raise ApiError(409, "Only draft campaigns can be deleted", "campaign_not_draft")
        del self.campaigns[cid], self.contacts[cid], self.removed[cid]
        self.deleted.append(cid)
        return {"data": {"deleted": True, "id": cid}}

    @route("POST", "v1/campaigns/{cid}/pause")
    def pause(self, req, cid):
        _need(req, WRITE)
        camp = self._campaign(cid)
        if camp["status"] != PAUSABLE:
            raise ApiError(409, "Only active campaigns can be paused", "campaign_not_active")
        stamp = iso_now()
        camp.update(status="paused", paused_at=stamp, updated_at=stamp)
        return {"data": {"campaign": {"id": cid, "status": "paused", "paused_at": stamp}}}

    @route("POST", "v1/campaigns/{cid}/start")
    def start(self, req, cid):
        _need(req, WRITE)
        camp = self._campaign(cid)
        if camp["status"] not in STARTABLE:
            raise ApiError(409, "Only draft or paused campaigns can be started", "campaign_not_startable")
        camp["status"] = "pending_approval" if camp.get("requires_approval") else "active"
        camp["updated_at"] = iso_now()
        return {"data": {"campaign": dict(camp)}}

    @route("GET", "v1/campaigns/{cid}/contacts")
    def list_contacts(self, req, cid):
        _need(req, READ)
        page, per_page = _paging(req)
        status = req.query.get("status", [None])[-1]
        self._campaign(cid)
        items = list(self.contacts[cid].values())
        if status is not None:
            items = [c for c in items if c.get("status") == status]
        return {
            "data": {"contacts": _page(items, page, per_page)},
            "meta": {"page": page, "per_page": per_page, "total": len(items)},
        }

    @route("DELETE", "v1/campaigns/{cid}/contacts/{contact_id}")
    def remove_contact(self, req, cid, contact_id):
        _need(req, WRITE)
        self._campaign(cid)
        enrollment = self.contacts[cid].pop(contact_id, None)
        if enrollment is None:
            raise ApiError(404, "Contact is not enrolled in this campaign", "enrollment_not_found")
        enrollment["removed_at"] = iso_now()
        self.removed[cid][contact_id] = enrollment
        return {"data": {"removed": True, "campaign_id": cid, "contact_id": contact_id}}


VENDOR = Leadlex
