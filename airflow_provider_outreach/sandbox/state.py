"""In-memory state of the sandbox: one table set per vendor, plus scheduled status changes.

Everything is guarded by ``SandboxState.lock``; the methods assume the caller holds it.

Seed document (``seed()``; also the format of ``demo_seed.json``): ``{vendor: vendor
seed}``, each described in its vendor module. Every field is optional but the lemlist
unsubscribe ``value``; missing ids are generated deterministically (the sequence restarts
on ``clear()``); unknown extra fields are kept and returned by the API. Seeding merges:
an object whose id already exists is updated field by field.

Snapshot (``snapshot()``, served as ``GET /_sandbox/state``)::

    {vendor: vendor snapshot, ...,
     "pending_status_changes": [{"vendor", "id", "status", "due", "reads_left"}]}
"""

from __future__ import annotations

import threading
import time

from .vendors import VENDORS
from .vendors.base import Ids, Vendor, req_dict


class SandboxState:
    """The data of the fake vendors. Use ``with state.lock:`` around calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = Ids()
        self.vendors: dict[str, Vendor] = {name: cls(self.ids) for name, cls in VENDORS.items()}
        self.status_changes: list[dict] = []

    def clear(self) -> None:
        self.ids.reset()
        for vendor in self.vendors.values():
            vendor.clear()
        self.status_changes = []

    def vendor(self, name) -> Vendor:
        """The vendor ``name``; ``ValueError`` for an unknown one."""
        try:
            return self.vendors[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown vendor {name!r}") from None

    def seed(self, doc) -> dict:
        """Merge a seed document; returns counts of what was loaded (``{"lemlist_leads": n, ...}``)."""
        if doc is None:
            return {}
        req_dict(doc, "seed")
        unknown = set(doc) - set(self.vendors)
        if unknown:
            raise ValueError(f"unknown vendor(s) in seed: {sorted(unknown)}")
        counts: dict[str, int] = {}
        for name, vendor in self.vendors.items():
            if doc.get(name) is not None:
                vendor.seed(req_dict(doc[name], name), counts)
        return counts

    def snapshot(self) -> dict:
        snap = {name: vendor.snapshot() for name, vendor in self.vendors.items()}
        snap["pending_status_changes"] = [dict(c) for c in self.status_changes]
        return snap

    def lookup(self, vendor: str, kind: str, oid: str | None):
        """One object (all of a kind when ``oid`` is None); None if missing, ``KeyError`` for an unknown kind."""
        if vendor not in self.vendors:
            raise KeyError(f"unknown vendor {vendor!r}")
        return self.vendors[vendor].lookup(kind, oid)

    def remove(self, vendor: str, kind: str, oid: str):
        """Delete one object; returns it, or None if missing. ``KeyError`` for an unknown vendor or
        kind, ``ValueError`` for a kind that cannot be removed."""
        if vendor not in self.vendors:
            raise KeyError(f"unknown vendor {vendor!r}")
        return self.vendors[vendor].remove(kind, oid)

    # ------------------------------------------------------- status changes
    def schedule_status_change(self, vendor, cid, status, after_seconds=None, after_reads=None, now=None) -> dict:
        """Change a campaign's status now, after a delay, after N served reads, or both.

        With both ``after_seconds`` and ``after_reads`` the change happens once both
        conditions hold. Raises ``KeyError`` for an unknown campaign.
        """
        target = self.vendor(vendor)
        if not isinstance(status, str) or not status:
            raise ValueError("status must be a non-empty string")
        if not isinstance(cid, str) or not target.has_campaign(cid):
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
            target.set_campaign_status(cid, status, now)
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
                self.vendors[change["vendor"]].set_campaign_status(change["id"], change["status"], now)
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
                    self.vendors[vendor].set_campaign_status(cid, change["status"], now)
                    continue
            keep.append(change)
        self.status_changes = keep
