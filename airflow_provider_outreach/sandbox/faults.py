"""Fault injection: scripted faults per vendor first, then random faults (kinds: see ``config``)."""

from __future__ import annotations

import collections
import random

from .config import FAULT_PHASES, check_fault_kind, fault_status
from .vendors import VENDORS
from .vendors.base import Vendor
from .wire import Request, Response, bad_json, nginx_error

SCRIPT_FIELDS = {"kind", "status", "retry_after", "phase", "slow_seconds", "seconds", "location"}


class Fault:
    """One fault to apply: ``label`` is logged, ``kind`` decides the answer."""

    __slots__ = ("kind", "label", "location", "phase", "retry_after", "slow_seconds", "status")

    def __init__(self, label, kind, status, retry_after=1, phase="before", slow_seconds=3.0, location=None):
        self.label = label
        self.kind = kind  # error | 429 | drop | slow | html500 | badjson | empty | redirect
        self.status = status
        self.retry_after = retry_after
        self.phase = phase  # before | after
        self.slow_seconds = slow_seconds
        self.location = location

    def response(self, vendor: Vendor, req: Request) -> Response | None:
        """The answer replacing the route's; ``None`` for a dropped connection."""
        kind = self.kind
        if kind == "drop":
            return None
        if kind == "429":
            return vendor.too_many()
        if kind == "html500":
            return nginx_error(self.status)
        if kind == "badjson":
            return bad_json(self.status)
        if kind == "empty":
            return Response(self.status)
        if kind == "redirect":
            return Response(self.status, headers=[("Location", self.location or req.raw_path)])
        return vendor.status_error(self.status)


def make_fault(label, status=None, retry_after=1, phase="before", slow_seconds=3.0, location=None) -> Fault:
    """A ``Fault`` from a kind (see ``config``); raises ``ValueError`` for a bad kind or status."""
    label = check_fault_kind(label)
    status = fault_status(label, status)
    kind = label
    if label == "error" or label.isdigit():
        label = str(status)
        kind = "429" if status == 429 else "error"
    if kind == "429":
        label = "429"
    if location is not None and (not isinstance(location, str) or not location or any(c in location for c in "\r\n")):
        raise ValueError("a redirect location must be a non-empty single-line string")
    return Fault(label, kind, status, retry_after, phase, slow_seconds, location)


class FaultInjector:
    """Scripted faults (per-vendor queues) first, then random faults. Call under the sandbox lock."""

    def __init__(self) -> None:
        self.scripts = {v: collections.deque() for v in VENDORS}
        self.config = None
        self.rng = random.Random()

    def reset(self) -> None:
        self.clear_scripts()
        self.configure(None)

    def clear_scripts(self) -> None:
        for q in self.scripts.values():
            q.clear()

    def configure(self, faults) -> None:
        self.config = faults
        self.rng = random.Random(faults["seed"] if faults else None)

    def inject(self, vendor, script, phase=None, defaults=None) -> int:
        """Queue scripted items; returns the vendor's queue length. Raises ``ValueError``/``TypeError``."""
        if vendor not in VENDORS:
            raise ValueError(f"unknown vendor {vendor!r}")
        if not isinstance(script, (list, tuple)):
            raise TypeError("script must be a list")
        if phase is not None and phase not in FAULT_PHASES:
            raise ValueError(f"phase must be one of {FAULT_PHASES}")
        defaults = defaults or {}
        items = []
        for item in script:
            if isinstance(item, (str, int)) and not isinstance(item, bool):
                item = {"kind": str(item)}
            if not isinstance(item, dict) or "kind" not in item:
                raise ValueError("a script item is a kind string or an object with 'kind'")
            unknown = set(item) - SCRIPT_FIELDS
            if unknown:
                raise ValueError(f"unknown script item field(s): {sorted(unknown)}")
            kind = check_fault_kind(item["kind"])
            item_phase = item.get("phase", phase or "before")
            if item_phase not in FAULT_PHASES:
                raise ValueError(f"phase must be one of {FAULT_PHASES}")
            if kind == "ok":
                items.append(None)
                continue
            slow = item.get("slow_seconds", item.get("seconds", defaults.get("slow_seconds", 3.0)))
            spec = (
                kind,
                item.get("status"),
                int(item.get("retry_after", defaults.get("retry_after", 1))),
                item_phase,
                float(slow),
                item.get("location"),
            )
            make_fault(*spec)  # validate now
            items.append(spec)
        self.scripts[vendor].extend(items)
        return len(self.scripts[vendor])

    def _phase(self, phase):
        if phase == "mixed":
            return "before" if self.rng.random() < 0.5 else "after"
        return phase

    def pick(self, vendor):
        """The fault for the next request of ``vendor``, or None."""
        queue = self.scripts[vendor]
        if queue:
            spec = queue.popleft()
            if spec is None:
                return None
            kind, status, retry_after, phase, slow, location = spec
            return make_fault(kind, status, retry_after, self._phase(phase), slow, location)
        cfg = self.config
        if cfg is None or cfg["rate"] <= 0:
            return None
        if cfg["vendors"] is not None and vendor not in cfg["vendors"]:
            return None
        if self.rng.random() >= cfg["rate"]:
            return None
        kinds = cfg["kinds"]
        label = self.rng.choices(list(kinds), weights=list(kinds.values()))[0]
        return make_fault(label, None, cfg["retry_after"], self._phase(cfg["phase"]), cfg["slow_seconds"])

    def pending(self) -> dict:
        return {v: len(q) for v, q in self.scripts.items()}
