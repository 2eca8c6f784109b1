"""In-memory model of the three outreach APIs served by the sandbox.

Everything here is guarded by one lock, ``SandboxState.lock``. The HTTP layer
(``app.py``) takes it around every read or write; the methods below assume the
caller holds it (they never take it themselves, so the lock is re-entrant-free
and cheap).

Seed document (``seed()``; also the format of ``demo_seed.json``)::

    {
      "lemlist": {
        "campaigns": [{"_id": "cam_1", "name": "Q4", "status": "running",
                       "leads": [{"_id": "lea_1", "email": "a@x.com", "state": "active"}]}],
        "leads": [{"_id": "lea_2", "campaignId": "cam_1", "email": "b@x.com"}],
        "unsubscribes": [{"value": "x@y.com", "source": "lead"}]
      },
      "leadlex": {
        "campaigns": [{"id": "…", "name": "…", "status": "draft",
                       "contacts": [{"contact_id": "…", "email": "…", "status": "active"}]}]
      },
      "dialnexa": {
        "campaigns": [{"id": "cmp_1", "name": "…", "status": "active",
                       "leads": [{"id": "cld_1", "phone_number": "+15550001", "status": "pending"}]}],
        "leads": [{"id": "cld_2", "campaign_id": "cmp_1", "phone_number": "+15550002"}],
        "agents": [{"id": "agt_1", "name": "Ava"}]
      }
    }

Every field but the lemlist unsubscribe ``value`` is optional: missing ids are
generated with the vendor prefixes (``cam_``, ``lea_``, ``ctc_``, ``uns_`` for
lemlist, UUIDs for LeadLex, ``cmp_``, ``cld_``, ``agt_`` for DialNexa), missing
statuses default to ``running`` (lemlist), ``active`` (LeadLex, DialNexa
campaigns; LeadLex enrollments), ``pending`` (DialNexa leads) and ``active``
(lemlist lead ``state``). Unknown extra fields are kept and returned by the
API. Seeding merges: an object whose id already exists is updated field by
field, its leads/contacts are upserted by id.

Snapshot (``snapshot()``, served as ``GET /_sandbox/state``)::

    {
      "lemlist": {
        "team": {"_id": "tea_sandbox", "name": "Sandbox team"},
        "campaigns": {campaign_id: {...campaign, "leads": {lead_id: lead}}},
        "unsubscribes": {lowercased_value: {"_id", "value", "variable", "source", "createdAt"}}
      },
      "leadlex": {
        "campaigns": {campaign_id: {...campaign,
                                    "contacts": {contact_id: enrollment},
                                    "removed_contacts": {contact_id: {...enrollment, "removed_at"}}}},
        "deleted_campaigns": [campaign_id, ...]
      },
      "dialnexa": {
        "campaigns": {campaign_id: campaign},
        "leads": {lead_id: lead},
        "agents": [agent, ...]
      },
      "pending_status_changes": [{"vendor", "id", "status", "due", "reads_left"}]
    }

A lemlist lead is ``{_id, email, firstName, lastName, companyName, campaignId,
contactId, isPaused, emailStatus, state, notInterested, ...}`` with ``state`` one
of ``active``, ``unsubscribed``, ``removed``. A LeadLex enrollment is
``{contact_id, email, status, enrolled_at, ...}``. A DialNexa lead is ``{id,
campaign_id, status, phone_number, name, created_at, ...}``.
"""

from __future__ import annotations

import random
import re
import threading
import time

from airflow_provider_outreach.statuses import (
    DIALNEXA_LEAD_REMOVAL_CLOSED,
    LEADLEX_DELETABLE,
    DialnexaCampaignStatus,
    LeadlexCampaignStatus,
    LemlistCampaignStatus,
)

VENDORS = ("lemlist", "leadlex", "dialnexa")

LEMLIST_CAMPAIGN_STATUSES = tuple(s.value for s in LemlistCampaignStatus)
LEMLIST_LEAD_STATES = ("active", "unsubscribed", "removed")
LEADLEX_CAMPAIGN_STATUSES = tuple(s.value for s in LeadlexCampaignStatus)
LEADLEX_ENROLLMENT_STATUSES = ("active", "completed", "bounced")
DIALNEXA_CAMPAIGN_STATUSES = tuple(s.value for s in DialnexaCampaignStatus)
DIALNEXA_LEAD_STATUSES = ("pending", "in_progress", "completed", "failed", "removed")
DIALNEXA_TERMINAL = DIALNEXA_LEAD_REMOVAL_CLOSED

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_EMAIL_RE = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")
_DOMAIN_RE = re.compile(r"^@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_PHONE_RE = re.compile(r"^\+[0-9][0-9 \-]*[0-9]$")


class ApiError(Exception):
    """A documented error answer: HTTP status, human message, machine code."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def iso_now(now: float | None = None) -> str:
    """``2026-11-25T14:53:23.123Z``."""
    if now is None:
        now = time.time()
    ms = int((now % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % ms


def unsubscribe_variable(value: str) -> str | None:
    """Classify a lemlist unsubscribe value; ``None`` when it is not valid."""
    if not value or value != value.strip():
        return None
    low = value.lower()
    if "linkedin.com/" in low and not any(c.isspace() for c in value):
        return "linkedinUrl"
    if value.startswith("@"):
        return "domain" if _DOMAIN_RE.match(value) else None
    if _EMAIL_RE.match(value):
        return "email"
    if _PHONE_RE.match(value) and sum(c.isdigit() for c in value) >= 6:
        return "phone"
    return None


def _req_dict(obj, what):
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be an object")
    return obj


def _req_list(obj, what):
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise ValueError(f"{what} must be a list")
    return obj


def _opt_str(obj, key, what):
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what}.{key} must be a string")
    return value


class SandboxState:
    """The data of the three fake vendors. Use ``with state.lock:`` around calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clear()

    # ------------------------------------------------------------------ setup
    def clear(self) -> None:
        self._rng = random.Random(20261125)
        # lemlist
        self.lemlist_team = {"_id": "tea_sandbox", "name": "Sandbox team"}
        self.lemlist_campaigns: dict[str, dict] = {}
        self.lemlist_leads: dict[str, dict[str, dict]] = {}  # campaign id -> lead id -> lead
        self.lemlist_lead_campaign: dict[str, str] = {}  # lead id -> campaign id
        self.lemlist_by_email: dict[str, dict[str, None]] = {}  # email lower -> ordered lead ids
        self.lemlist_contact_ids: dict[str, str] = {}  # email lower -> ctc_ id
        self.lemlist_unsubscribes: dict[str, dict] = {}  # lowercased value -> record
        # LeadLex
        self.leadlex_campaigns: dict[str, dict] = {}
        self.leadlex_contacts: dict[str, dict[str, dict]] = {}
        self.leadlex_removed: dict[str, dict[str, dict]] = {}
        self.leadlex_deleted: list[str] = []
        # DialNexa
        self.dialnexa_campaigns: dict[str, dict] = {}
        self.dialnexa_leads: dict[str, dict] = {}
        self.dialnexa_agents: dict[str, dict] = {}
        # scheduled status changes
        self.status_changes: list[dict] = []

    def new_id(self, prefix: str, length: int = 17) -> str:
        choice = self._rng.choice
        return prefix + "".join(choice(_ALNUM) for _ in range(length))

    def new_uuid(self) -> str:
        r = self._rng.getrandbits
        return "%08x-%04x-4%03x-%04x-%012x" % (
            r(32), r(16), r(12), 0x8000 | r(14), r(48))

    # ------------------------------------------------------------------ seed
    def seed(self, doc) -> dict:
        """Merge a seed document; returns counts of what was loaded."""
        if doc is None:
            return {}
        _req_dict(doc, "seed")
        unknown = set(doc) - set(VENDORS)
        if unknown:
            raise ValueError(f"unknown vendor(s) in seed: {sorted(unknown)}")
        counts: dict[str, int] = {}
        if doc.get("lemlist") is not None:
            self._seed_lemlist(_req_dict(doc["lemlist"], "lemlist"), counts)
        if doc.get("leadlex") is not None:
            self._seed_leadlex(_req_dict(doc["leadlex"], "leadlex"), counts)
        if doc.get("dialnexa") is not None:
            self._seed_dialnexa(_req_dict(doc["dialnexa"], "dialnexa"), counts)
        return counts

    def _seed_lemlist(self, doc, counts):
        now = time.time()
        if "team" in doc and doc["team"] is not None:
            self.lemlist_team.update(_req_dict(doc["team"], "lemlist.team"))
        for raw in _req_list(doc.get("campaigns"), "lemlist.campaigns"):
            raw = _req_dict(raw, "lemlist campaign")
            cid = _opt_str(raw, "_id", "lemlist campaign") or self.new_id("cam_")
            fields = {k: v for k, v in raw.items() if k != "leads"}
            camp = self.lemlist_campaigns.get(cid)
            if camp is None:
                camp = {"_id": cid, "name": f"Campaign {cid}", "status": "running",
                        "hasError": False, "errors": [], "createdAt": iso_now(now)}
                self.lemlist_campaigns[cid] = camp
                self.lemlist_leads[cid] = {}
            camp.update(fields)
            camp["_id"] = cid
            counts["lemlist_campaigns"] = counts.get("lemlist_campaigns", 0) + 1
            for lead in _req_list(raw.get("leads"), "lemlist campaign leads"):
                self._upsert_lemlist_lead(cid, _req_dict(lead, "lemlist lead"))
                counts["lemlist_leads"] = counts.get("lemlist_leads", 0) + 1
        for lead in _req_list(doc.get("leads"), "lemlist.leads"):
            lead = _req_dict(lead, "lemlist lead")
            cid = lead.get("campaignId")
            if cid not in self.lemlist_campaigns:
                raise ValueError(f"lemlist lead refers to unknown campaign {cid!r}")
            self._upsert_lemlist_lead(cid, lead)
            counts["lemlist_leads"] = counts.get("lemlist_leads", 0) + 1
        for raw in _req_list(doc.get("unsubscribes"), "lemlist.unsubscribes"):
            if isinstance(raw, str):
                raw = {"value": raw}
            raw = _req_dict(raw, "lemlist unsubscribe")
            value = _opt_str(raw, "value", "lemlist unsubscribe")
            variable = unsubscribe_variable(value or "")
            if variable is None:
                raise ValueError(f"invalid lemlist unsubscribe value {value!r}")
            record = self._new_unsubscribe(value, variable, now)
            record.update({k: v for k, v in raw.items() if k != "value"})
            self.lemlist_unsubscribes[value.lower()] = record
            counts["lemlist_unsubscribes"] = counts.get("lemlist_unsubscribes", 0) + 1

    def _upsert_lemlist_lead(self, cid, raw):
        lid = _opt_str(raw, "_id", "lemlist lead") or self.new_id("lea_")
        email = _opt_str(raw, "email", "lemlist lead")
        state = raw.get("state", None)
        if state is not None and state not in LEMLIST_LEAD_STATES:
            raise ValueError(f"lemlist lead state must be one of {LEMLIST_LEAD_STATES}")
        old_cid = self.lemlist_lead_campaign.get(lid)
        lead = None
        if old_cid is not None:
            lead = self.lemlist_leads[old_cid].pop(lid)
            self._unindex_lemlist_email(lead)
        if lead is None:
            lead = {"_id": lid, "email": None, "firstName": "", "lastName": "",
                    "companyName": "", "campaignId": cid, "contactId": None,
                    "isPaused": False, "emailStatus": "deliverable",
                    "state": "active", "notInterested": False}
        lead.update(raw)
        lead["_id"] = lid
        lead["campaignId"] = cid
        if lead.get("email"):
            key = lead["email"].lower()
            if not lead.get("contactId"):
                ctc = self.lemlist_contact_ids.get(key)
                if ctc is None:
                    ctc = self.lemlist_contact_ids[key] = self.new_id("ctc_")
                lead["contactId"] = ctc
            self.lemlist_by_email.setdefault(key, {})[lid] = None
        elif not lead.get("contactId"):
            lead["contactId"] = self.new_id("ctc_")
        self.lemlist_leads[cid][lid] = lead
        self.lemlist_lead_campaign[lid] = cid

    def _unindex_lemlist_email(self, lead):
        email = lead.get("email")
        if email:
            ids = self.lemlist_by_email.get(email.lower())
            if ids is not None:
                ids.pop(lead["_id"], None)
                if not ids:
                    del self.lemlist_by_email[email.lower()]

    def _new_unsubscribe(self, value, variable, now):
        if variable in ("email", "domain"):
            value = value.lower()
        return {"_id": self.new_id("uns_"), "value": value, "variable": variable,
                "source": "api", "createdAt": iso_now(now)}

    def _seed_leadlex(self, doc, counts):
        now = time.time()
        for raw in _req_list(doc.get("campaigns"), "leadlex.campaigns"):
            raw = _req_dict(raw, "leadlex campaign")
            cid = _opt_str(raw, "id", "leadlex campaign") or self.new_uuid()
            fields = {k: v for k, v in raw.items() if k not in ("contacts", "removed_contacts")}
            camp = self.leadlex_campaigns.get(cid)
            if camp is None:
                stamp = iso_now(now)
                camp = {"id": cid, "name": f"Campaign {cid}", "status": "active",
                        "created_at": stamp, "updated_at": stamp, "paused_at": None}
                self.leadlex_campaigns[cid] = camp
                self.leadlex_contacts[cid] = {}
                self.leadlex_removed[cid] = {}
                if cid in self.leadlex_deleted:
                    self.leadlex_deleted.remove(cid)
            camp.update(fields)
            camp["id"] = cid
            counts["leadlex_campaigns"] = counts.get("leadlex_campaigns", 0) + 1
            for target, key in ((self.leadlex_contacts[cid], "contacts"),
                                (self.leadlex_removed[cid], "removed_contacts")):
                for item in _req_list(raw.get(key), f"leadlex campaign {key}"):
                    item = _req_dict(item, "leadlex contact")
                    contact_id = _opt_str(item, "contact_id", "leadlex contact") or self.new_uuid()
                    enrollment = target.get(contact_id) or {
                        "contact_id": contact_id, "email": None, "status": "active",
                        "enrolled_at": iso_now(now)}
                    enrollment.update(item)
                    enrollment["contact_id"] = contact_id
                    if key == "removed_contacts":
                        enrollment.setdefault("removed_at", iso_now(now))
                        self.leadlex_contacts[cid].pop(contact_id, None)
                    else:
                        self.leadlex_removed[cid].pop(contact_id, None)
                    target[contact_id] = enrollment
                    counts["leadlex_" + key] = counts.get("leadlex_" + key, 0) + 1

    def _seed_dialnexa(self, doc, counts):
        now = time.time()
        for raw in _req_list(doc.get("agents"), "dialnexa.agents"):
            raw = _req_dict(raw, "dialnexa agent")
            aid = _opt_str(raw, "id", "dialnexa agent") or self.new_id("agt_", 12)
            agent = self.dialnexa_agents.get(aid) or {"id": aid, "name": f"Agent {aid}"}
            agent.update(raw)
            agent["id"] = aid
            self.dialnexa_agents[aid] = agent
            counts["dialnexa_agents"] = counts.get("dialnexa_agents", 0) + 1
        leads = []
        for raw in _req_list(doc.get("campaigns"), "dialnexa.campaigns"):
            raw = _req_dict(raw, "dialnexa campaign")
            cid = _opt_str(raw, "id", "dialnexa campaign") or self.new_id("cmp_", 12)
            camp = self.dialnexa_campaigns.get(cid)
            if camp is None:
                stamp = iso_now(now)
                camp = {"id": cid, "name": f"Campaign {cid}", "status": "active",
                        "agent_id": None, "created_at": stamp, "updated_at": stamp}
                self.dialnexa_campaigns[cid] = camp
            camp.update({k: v for k, v in raw.items() if k != "leads"})
            camp["id"] = cid
            counts["dialnexa_campaigns"] = counts.get("dialnexa_campaigns", 0) + 1
            for lead in _req_list(raw.get("leads"), "dialnexa campaign leads"):
                lead = dict(_req_dict(lead, "dialnexa lead"))
                lead["campaign_id"] = cid
                leads.append(lead)
        leads.extend(_req_list(doc.get("leads"), "dialnexa.leads"))
        for raw in leads:
            raw = _req_dict(raw, "dialnexa lead")
            cid = raw.get("campaign_id")
            if cid not in self.dialnexa_campaigns:
                raise ValueError(f"dialnexa lead refers to unknown campaign {cid!r}")
            status = raw.get("status")
            if status is not None and status not in DIALNEXA_LEAD_STATUSES:
                raise ValueError(f"dialnexa lead status must be one of {DIALNEXA_LEAD_STATUSES}")
            lid = _opt_str(raw, "id", "dialnexa lead") or self.new_id("cld_", 12)
            lead = self.dialnexa_leads.get(lid) or {
                "id": lid, "campaign_id": cid, "status": "pending", "phone_number": None,
                "name": None, "created_at": iso_now(now)}
            lead.update(raw)
            lead["id"] = lid
            self.dialnexa_leads[lid] = lead
            counts["dialnexa_leads"] = counts.get("dialnexa_leads", 0) + 1

    # -------------------------------------------------------------- snapshot
    def snapshot(self) -> dict:
        lem_campaigns = {}
        for cid, camp in self.lemlist_campaigns.items():
            item = dict(camp)
            item["leads"] = {lid: dict(lead) for lid, lead in self.lemlist_leads[cid].items()}
            lem_campaigns[cid] = item
        ll_campaigns = {}
        for cid, camp in self.leadlex_campaigns.items():
            item = dict(camp)
            item["contacts"] = {k: dict(v) for k, v in self.leadlex_contacts[cid].items()}
            item["removed_contacts"] = {k: dict(v) for k, v in self.leadlex_removed[cid].items()}
            ll_campaigns[cid] = item
        return {
            "lemlist": {
                "team": dict(self.lemlist_team),
                "campaigns": lem_campaigns,
                "unsubscribes": {k: dict(v) for k, v in self.lemlist_unsubscribes.items()},
            },
            "leadlex": {
                "campaigns": ll_campaigns,
                "deleted_campaigns": list(self.leadlex_deleted),
            },
            "dialnexa": {
                "campaigns": {k: dict(v) for k, v in self.dialnexa_campaigns.items()},
                "leads": {k: dict(v) for k, v in self.dialnexa_leads.items()},
                "agents": [dict(a) for a in self.dialnexa_agents.values()],
            },
            "pending_status_changes": [dict(c) for c in self.status_changes],
        }

    def lookup(self, vendor: str, kind: str, oid: str | None):
        """One object (or all objects of a kind when ``oid`` is None) for the admin API.

        Kinds: lemlist ``campaign`` (with ``leads``), ``lead``, ``unsubscribe``
        (by value, case-insensitive); leadlex ``campaign`` (with ``contacts`` and
        ``removed_contacts``); dialnexa ``campaign``, ``lead``, ``agent``.
        Returns ``None`` when missing; raises ``KeyError`` for an unknown kind.
        """
        if vendor == "lemlist" and kind == "campaign":
            def one(cid):
                camp = self.lemlist_campaigns.get(cid)
                if camp is None:
                    return None
                item = dict(camp)
                item["leads"] = {k: dict(v) for k, v in self.lemlist_leads[cid].items()}
                return item
            keys = self.lemlist_campaigns
        elif vendor == "lemlist" and kind == "lead":
            def one(lid):
                cid = self.lemlist_lead_campaign.get(lid)
                return None if cid is None else dict(self.lemlist_leads[cid][lid])
            keys = self.lemlist_lead_campaign
        elif vendor == "lemlist" and kind == "unsubscribe":
            def one(value):
                rec = self.lemlist_unsubscribes.get(value.lower())
                return None if rec is None else dict(rec)
            keys = self.lemlist_unsubscribes
        elif vendor == "leadlex" and kind == "campaign":
            def one(cid):
                camp = self.leadlex_campaigns.get(cid)
                if camp is None:
                    return None
                item = dict(camp)
                item["contacts"] = {k: dict(v) for k, v in self.leadlex_contacts[cid].items()}
                item["removed_contacts"] = {k: dict(v) for k, v in self.leadlex_removed[cid].items()}
                return item
            keys = self.leadlex_campaigns
        elif vendor == "dialnexa" and kind in ("campaign", "lead", "agent"):
            table = {"campaign": self.dialnexa_campaigns, "lead": self.dialnexa_leads,
                     "agent": self.dialnexa_agents}[kind]

            def one(oid_):
                obj = table.get(oid_)
                return None if obj is None else dict(obj)
            keys = table
        else:
            raise KeyError(f"unknown object kind {vendor}/{kind}")
        if oid is None:
            return {k: one(k) for k in list(keys)}
        return one(oid)

    # ------------------------------------------------------- status changes
    def _campaign_table(self, vendor):
        return {"lemlist": self.lemlist_campaigns, "leadlex": self.leadlex_campaigns,
                "dialnexa": self.dialnexa_campaigns}[vendor]

    def has_campaign(self, vendor: str, cid: str) -> bool:
        return cid in self._campaign_table(vendor)

    def set_campaign_status(self, vendor: str, cid: str, status: str, now: float | None = None) -> bool:
        camp = self._campaign_table(vendor).get(cid)
        if camp is None:
            return False
        now = time.time() if now is None else now
        camp["status"] = status
        if vendor in ("leadlex", "dialnexa"):
            camp["updated_at"] = iso_now(now)
        if vendor == "leadlex" and status == "paused":
            camp["paused_at"] = iso_now(now)
        return True

    def schedule_status_change(self, vendor, cid, status, after_seconds=None, after_reads=None,
                               now=None) -> dict:
        """Change a campaign's status now, after a delay, after N served reads, or both.

        With both ``after_seconds`` and ``after_reads`` the change happens once
        both conditions hold. Raises ``KeyError`` for an unknown campaign.
        """
        if vendor not in VENDORS:
            raise ValueError(f"unknown vendor {vendor!r}")
        if not isinstance(status, str) or not status:
            raise ValueError("status must be a non-empty string")
        if not self.has_campaign(vendor, cid):
            raise KeyError(cid)
        now = time.time() if now is None else now
        due = None
        if after_seconds is not None:
            after_seconds = float(after_seconds)
            if after_seconds < 0:
                raise ValueError("after_seconds must be >= 0")
            due = now + after_seconds
        reads = int(after_reads or 0)
        if reads < 0:
            raise ValueError("after_reads must be >= 0")
        change = {"vendor": vendor, "id": cid, "status": status, "due": due, "reads_left": reads}
        if (due is None or due <= now) and reads == 0:
            self.set_campaign_status(vendor, cid, status, now)
            change["applied"] = True
        else:
            self.status_changes.append(change)
            change = dict(change, applied=False)
        return change

    def apply_due(self, now: float) -> None:
        if not self.status_changes:
            return
        keep = []
        for change in self.status_changes:
            if change["reads_left"] <= 0 and change["due"] is not None and change["due"] <= now:
                self.set_campaign_status(change["vendor"], change["id"], change["status"], now)
            else:
                keep.append(change)
        self.status_changes = keep

    def note_read(self, vendor: str, cid: str) -> None:
        """A GET of this campaign was served to a client."""
        if not self.status_changes:
            return
        now = time.time()
        keep = []
        for change in self.status_changes:
            if change["vendor"] == vendor and change["id"] == cid and change["reads_left"] > 0:
                change["reads_left"] -= 1
                if change["reads_left"] <= 0 and (change["due"] is None or change["due"] <= now):
                    self.set_campaign_status(vendor, cid, change["status"], now)
                    continue
            keep.append(change)
        self.status_changes = keep

    # ================================================================ lemlist
    def lemlist_get_team(self) -> dict:
        return dict(self.lemlist_team)

    def _lemlist_campaign(self, cid) -> dict:
        camp = self.lemlist_campaigns.get(cid)
        if camp is None:
            raise ApiError(404, "Campaign not found")
        return camp

    def lemlist_get_campaign(self, cid) -> dict:
        return dict(self._lemlist_campaign(cid))

    def lemlist_set_running(self, cid, running: bool) -> dict:
        camp = self._lemlist_campaign(cid)
        state = "running" if running else "paused"
        camp["status"] = state
        return {"_id": cid, "state": state}

    def lemlist_unsubscribe_lead(self, cid, email) -> dict:
        self._lemlist_campaign(cid)
        found = None
        for lid in self.lemlist_by_email.get(email.lower(), ()):
            if self.lemlist_lead_campaign.get(lid) != cid:
                continue
            lead = self.lemlist_leads[cid][lid]
            if lead["state"] == "active":
                lead["state"] = "unsubscribed"
                if found is None:
                    found = lead
        if found is None:
            raise ApiError(404, "Lead not found")
        return dict(found)

    def lemlist_remove_lead(self, cid, lid) -> dict:
        self._lemlist_campaign(cid)
        lead = self.lemlist_leads[cid].get(lid)
        if lead is None or lead["state"] == "removed":
            raise ApiError(404, "Lead not found")
        lead["state"] = "removed"
        return dict(lead)

    def lemlist_not_interested(self, key) -> list:
        cid = self.lemlist_lead_campaign.get(key)
        if cid is not None:
            lead = self.lemlist_leads[cid][key]
            if lead["state"] == "removed":
                raise ApiError(404, "Lead not found")
            email = lead.get("email")
            ids = list(self.lemlist_by_email.get(email.lower(), ())) if email else [key]
        else:
            ids = list(self.lemlist_by_email.get(key.lower(), ()))
        out = []
        for lid in ids:
            lead = self.lemlist_leads[self.lemlist_lead_campaign[lid]][lid]
            if lead["state"] == "removed":
                continue
            lead["notInterested"] = True
            out.append(dict(lead))
        if not out:
            raise ApiError(404, "Lead not found")
        return out

    def lemlist_add_unsubscribe(self, value) -> dict:
        variable = unsubscribe_variable(value)
        if variable is None:
            raise ApiError(400, "Invalid value")
        key = value.lower()
        record = self.lemlist_unsubscribes.get(key)
        if record is None:
            record = self.lemlist_unsubscribes[key] = self._new_unsubscribe(
                value, variable, time.time())
        return dict(record)

    def lemlist_get_unsubscribe(self, value) -> dict:
        record = self.lemlist_unsubscribes.get(value.lower())
        if record is None:
            raise ApiError(404, "Unsubscribe not found")
        return dict(record)

    def lemlist_delete_unsubscribe(self, value) -> dict:
        key = value.lower()
        record = self.lemlist_unsubscribes.get(key)
        if record is None:
            raise ApiError(404, "Unsubscribe not found")
        if record.get("source") in ("lead", "abuse"):
            raise ApiError(409, "Cannot delete an unsubscribe whose source is lead")
        del self.lemlist_unsubscribes[key]
        return dict(record)

    # ================================================================ LeadLex
    def _leadlex_campaign(self, cid) -> dict:
        camp = self.leadlex_campaigns.get(cid)
        if camp is None:
            raise ApiError(404, "Campaign not found", "campaign_not_found")
        return camp

    def leadlex_get_campaign(self, cid) -> dict:
        return {"data": {"campaign": dict(self._leadlex_campaign(cid))}}

    @staticmethod
    def _page(items, page, per_page):
        start = (page - 1) * per_page
        return items[start:start + per_page]

    def leadlex_list_campaigns(self, page, per_page) -> dict:
        items = list(self.leadlex_campaigns.values())
        return {"data": {"campaigns": [dict(c) for c in self._page(items, page, per_page)]},
                "meta": {"page": page, "per_page": per_page, "total": len(items)}}

    def leadlex_delete_campaign(self, cid) -> dict:
        camp = self._leadlex_campaign(cid)
        if camp["status"] != LEADLEX_DELETABLE:
            raise ApiError(409, "Only draft campaigns can be deleted", "campaign_not_draft")
        del self.leadlex_campaigns[cid]
        del self.leadlex_contacts[cid]
        del self.leadlex_removed[cid]
        self.leadlex_deleted.append(cid)
        return {"data": {"deleted": True, "id": cid}}

    def leadlex_pause(self, cid) -> dict:
        camp = self._leadlex_campaign(cid)
        if camp["status"] != "active":
            raise ApiError(409, "Only active campaigns can be paused", "campaign_not_active")
        stamp = iso_now()
        camp["status"] = "paused"
        camp["paused_at"] = stamp
        camp["updated_at"] = stamp
        return {"data": {"campaign": {"id": cid, "status": "paused", "paused_at": stamp}}}

    def leadlex_start(self, cid) -> dict:
        camp = self._leadlex_campaign(cid)
        if camp["status"] not in ("draft", "paused"):
            raise ApiError(409, "Only draft or paused campaigns can be started",
                           "campaign_not_startable")
        camp["status"] = "pending_approval" if camp.get("requires_approval") else "active"
        camp["updated_at"] = iso_now()
        return {"data": {"campaign": dict(camp)}}

    def leadlex_list_contacts(self, cid, page, per_page, status=None) -> dict:
        self._leadlex_campaign(cid)
        items = list(self.leadlex_contacts[cid].values())
        if status is not None:
            items = [c for c in items if c.get("status") == status]
        return {"data": {"contacts": [dict(c) for c in self._page(items, page, per_page)]},
                "meta": {"page": page, "per_page": per_page, "total": len(items)}}

    def leadlex_remove_contact(self, cid, contact_id) -> dict:
        self._leadlex_campaign(cid)
        enrollment = self.leadlex_contacts[cid].pop(contact_id, None)
        if enrollment is None:
            raise ApiError(404, "Contact is not enrolled in this campaign", "enrollment_not_found")
        enrollment["removed_at"] = iso_now()
        self.leadlex_removed[cid][contact_id] = enrollment
        return {"data": {"removed": True, "campaign_id": cid, "contact_id": contact_id}}

    # =============================================================== DialNexa
    def dialnexa_list_agents(self) -> dict:
        agents = [dict(a) for a in self.dialnexa_agents.values()]
        return {"data": agents, "total": len(agents)}

    def dialnexa_get_campaign(self, cid) -> dict:
        camp = self.dialnexa_campaigns.get(cid)
        if camp is None:
            raise ApiError(404, "Campaign not found")
        return dict(camp)

    def _dialnexa_lead(self, lid) -> dict:
        lead = self.dialnexa_leads.get(lid)
        if lead is None or lead.get("status") == "removed":
            raise ApiError(404, "Campaign lead not found")
        return lead

    def dialnexa_get_lead(self, lid) -> dict:
        return dict(self._dialnexa_lead(lid))

    def dialnexa_remove_lead(self, lid) -> dict:
        lead = self._dialnexa_lead(lid)
        cid = lead.get("campaign_id")
        camp = self.dialnexa_campaigns.get(cid)
        if camp is not None and camp.get("status") in DIALNEXA_TERMINAL:
            raise ApiError(409, f"Campaign {cid} is {camp['status']}; leads can no longer be removed")
        lead["status"] = "removed"
        lead["removed_at"] = iso_now()
        return {"message": "Lead removed from campaign."}
