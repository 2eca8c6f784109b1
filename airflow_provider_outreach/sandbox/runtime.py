"""Configuration, rate limiting, fault injection and the request log of the sandbox.

Configuration (``POST /_sandbox/config`` merges any subset of these keys)::

    {
      "limits":  {"lemlist": [{"limit": 20, "window": 2}], "leadlex": [], "dialnexa": []},
      "latency": {"lemlist": 0.0, "leadlex": 0.0, "dialnexa": 0.0},   # or one float for all
      "faults":  null | {"rate": 0.2,
                         "kinds": {"500": 1, "502": 1, "503": 1, "429": 1, "drop": 1, "slow": 1},
                         "slow_seconds": 3.0, "retry_after": 1, "vendors": null,
                         "phase": "before" | "after" | "mixed", "seed": null},
      "keys":    {"lemlist": ["sandbox-lemlist-key"],
                  "leadlex": {"wbk_sandbox_leadlex_key": ["campaigns:read", "campaigns:write"]},
                  "dialnexa": ["sandbox-dialnexa-key"]},
      "log": true,
      "log_limit": 100000
    }

* ``limits``: per vendor, a list of fixed windows ``{"limit": N, "window": SECONDS | "utc_day"}``
  counted per API key. ``[]`` (or ``null``) means unlimited; the headers then report a
  nominal window of 1,000,000 requests per 60 s. Setting limits resets the counters.
* ``keys``: per vendor a key string, a list of keys, or (LeadLex) a mapping key ->
  list of permissions. A plain LeadLex key gets ``campaigns:read`` and ``campaigns:write``.
  Only the vendors named are replaced (``[]`` leaves a vendor without any valid key).
* ``faults``: random faults; ``null`` disables them. Replaced as a whole (not merged).
  ``kinds`` may also be a list (equal weights). Fault kinds: an HTTP status string such as
  ``"500"``/``"502"``/``"503"`` (vendor error body), ``"429"``, ``"drop"``, ``"slow"``,
  ``"html500"`` and ``"badjson"``.
* ``log``: record vendor requests; ``log_limit`` bounds the log (oldest records dropped).
"""

from __future__ import annotations

import collections
import math
import random

VENDORS = ("lemlist", "leadlex", "dialnexa")

DEFAULT_KEYS = {
    "lemlist": "sandbox-lemlist-key",
    "leadlex": "wbk_sandbox_leadlex_key",
    "dialnexa": "sandbox-dialnexa-key",
}

DEFAULT_LIMITS = {"lemlist": [{"limit": 20, "window": 2}], "leadlex": [], "dialnexa": []}

LEADLEX_PERMISSIONS = ("campaigns:read", "campaigns:write")

NOMINAL_WINDOW = (1000000, 60.0)

FAULT_PHASES = ("before", "after", "mixed")
SPECIAL_FAULT_KINDS = ("429", "drop", "slow", "html500", "badjson")


# ---------------------------------------------------------------- config
def _normalize_vendor_keys(vendor, value):
    if value is None:
        return {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        out = {}
        for key in value:
            if not isinstance(key, str) or not key:
                raise ValueError(f"{vendor} keys must be non-empty strings")
            out[key] = list(LEADLEX_PERMISSIONS) if vendor == "leadlex" else []
        return out
    if isinstance(value, dict):
        out = {}
        for key, perms in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{vendor} keys must be non-empty strings")
            if perms is None or perms is True:
                perms = list(LEADLEX_PERMISSIONS) if vendor == "leadlex" else []
            if isinstance(perms, str):
                perms = [perms]
            if not isinstance(perms, (list, tuple)) or not all(isinstance(p, str) for p in perms):
                raise ValueError(f"{vendor} key permissions must be a list of strings")
            out[key] = list(perms) if vendor == "leadlex" else []
        return out
    raise ValueError(f"{vendor} keys must be a string, a list or an object")


def normalize_keys(keys) -> dict:
    """``{vendor: {key: [permissions]}}`` (permissions only meaningful for LeadLex)."""
    if not isinstance(keys, dict):
        raise ValueError("keys must be an object")
    unknown = set(keys) - set(VENDORS)
    if unknown:
        raise ValueError(f"unknown vendor(s) in keys: {sorted(unknown)}")
    return {v: _normalize_vendor_keys(v, keys[v]) for v in keys}


def parse_limit_spec(spec: str) -> dict:
    """``"20/2"`` -> ``{"limit": 20, "window": 2.0}``; ``"100/utc_day"`` (or ``/day``)."""
    try:
        limit, _, window = spec.partition("/")
        limit = int(limit)
        if window in ("utc_day", "day"):
            return {"limit": limit, "window": "utc_day"}
        return {"limit": limit, "window": float(window)}
    except ValueError:
        raise ValueError(f"invalid limit {spec!r}; expected N/SECONDS or N/utc_day") from None


def normalize_windows(vendor, windows) -> list:
    if windows is None or windows == "none":
        return []
    if isinstance(windows, (dict, str)):
        windows = [windows]
    if not isinstance(windows, (list, tuple)):
        raise ValueError(f"limits for {vendor} must be a list of windows")
    out = []
    for w in windows:
        if isinstance(w, str):
            w = parse_limit_spec(w)
        if not isinstance(w, dict) or "limit" not in w or "window" not in w:
            raise ValueError(f"a {vendor} window needs 'limit' and 'window'")
        limit = w["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"{vendor} window limit must be an integer >= 0")
        window = w["window"]
        if window in ("utc_day", "day"):
            window = "utc_day"
        elif isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
            raise ValueError(f"{vendor} window must be seconds > 0 or 'utc_day'")
        out.append({"limit": limit, "window": window})
    return out


def normalize_latency(value, current=None) -> dict:
    latency = dict(current or {v: 0.0 for v in VENDORS})
    if value is None:
        return {v: 0.0 for v in VENDORS}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("latency must be >= 0")
        return {v: float(value) for v in VENDORS}
    if isinstance(value, dict):
        for vendor, seconds in value.items():
            if vendor not in VENDORS:
                raise ValueError(f"unknown vendor {vendor!r} in latency")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
                raise ValueError("latency must be a number >= 0")
            latency[vendor] = float(seconds)
        return latency
    raise ValueError("latency must be a number or an object")


def _check_fault_kind(kind) -> str:
    kind = str(kind)
    if kind in SPECIAL_FAULT_KINDS or kind == "ok":
        return kind
    if kind.isdigit() and 400 <= int(kind) <= 599:
        return kind
    if kind == "error":
        return kind
    raise ValueError(f"unknown fault kind {kind!r}")


def normalize_faults(value):
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        raise ValueError("faults must be an object or null")
    allowed = {"rate", "kinds", "slow_seconds", "retry_after", "vendors", "phase", "seed"}
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"unknown fault setting(s): {sorted(unknown)}")
    rate = value.get("rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError("faults.rate must be between 0 and 1")
    kinds = value.get("kinds")
    if kinds is None:
        kinds = {"500": 1, "502": 1, "503": 1, "429": 1, "drop": 1, "slow": 1}
    if isinstance(kinds, (list, tuple)):
        kinds = {k: 1 for k in kinds}
    if not isinstance(kinds, dict) or not kinds:
        raise ValueError("faults.kinds must be a non-empty object or list")
    norm_kinds = {}
    for kind, weight in kinds.items():
        kind = _check_fault_kind(kind)
        if kind in ("ok", "error"):
            raise ValueError(f"fault kind {kind!r} is not allowed in random faults")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError("fault weights must be numbers >= 0")
        norm_kinds[kind] = weight
    if sum(norm_kinds.values()) <= 0:
        raise ValueError("fault weights must not all be 0")
    vendors = value.get("vendors")
    if vendors is not None:
        if isinstance(vendors, str):
            vendors = [vendors]
        if not all(v in VENDORS for v in vendors):
            raise ValueError(f"faults.vendors must be among {VENDORS}")
        vendors = list(vendors)
    phase = value.get("phase", "before")
    if phase not in FAULT_PHASES:
        raise ValueError(f"faults.phase must be one of {FAULT_PHASES}")
    seed = value.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError("faults.seed must be an integer or null")
    return {
        "rate": float(rate), "kinds": norm_kinds,
        "slow_seconds": float(value.get("slow_seconds", 3.0)),
        "retry_after": int(value.get("retry_after", 1)),
        "vendors": vendors, "phase": phase, "seed": seed,
    }


def default_config(keys=None) -> dict:
    return {
        "limits": {v: [dict(w) for w in DEFAULT_LIMITS[v]] for v in VENDORS},
        "latency": {v: 0.0 for v in VENDORS},
        "faults": None,
        "keys": {**normalize_keys(DEFAULT_KEYS), **normalize_keys(keys or {})},
        "log": True,
        "log_limit": 100000,
    }


def merge_config(current: dict, update: dict) -> dict:
    """A new config: ``current`` with ``update`` applied. Raises ``ValueError``."""
    if update is None:
        return current
    if not isinstance(update, dict):
        raise ValueError("config must be an object")
    unknown = set(update) - {"limits", "latency", "faults", "keys", "log", "log_limit"}
    if unknown:
        raise ValueError(f"unknown config key(s): {sorted(unknown)}")
    cfg = dict(current)
    if "limits" in update:
        limits = update["limits"]
        if not isinstance(limits, dict):
            raise ValueError("limits must be an object {vendor: [windows]}")
        new_limits = dict(cfg["limits"])
        for vendor, windows in limits.items():
            if vendor not in VENDORS:
                raise ValueError(f"unknown vendor {vendor!r} in limits")
            new_limits[vendor] = normalize_windows(vendor, windows)
        cfg["limits"] = new_limits
    if "latency" in update:
        cfg["latency"] = normalize_latency(update["latency"], cfg["latency"])
    if "faults" in update:
        cfg["faults"] = normalize_faults(update["faults"])
    if "keys" in update:
        cfg["keys"] = {**cfg["keys"], **normalize_keys(update["keys"])}
    if "log" in update:
        if not isinstance(update["log"], bool):
            raise ValueError("log must be true or false")
        cfg["log"] = update["log"]
    if "log_limit" in update:
        value = update["log_limit"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("log_limit must be an integer >= 1")
        cfg["log_limit"] = value
    return cfg


# ---------------------------------------------------------- rate limiting
def _window_end(window, now):
    if window == "utc_day":
        return (math.floor(now / 86400.0) + 1) * 86400.0
    return now + window


class RateLimiter:
    """Fixed windows per (vendor, key). Not thread safe: call under the state lock."""

    def __init__(self) -> None:
        self.buckets: dict = {}

    def reset(self) -> None:
        self.buckets.clear()

    @staticmethod
    def _windows(windows):
        if not windows:
            return (NOMINAL_WINDOW,)
        return tuple((w["limit"], w["window"]) for w in windows)

    def peek(self, windows, now):
        """Headers for a request that is not counted: a fresh first window."""
        limit, window = self._windows(windows)[0]
        return limit, limit, _window_end(window, now)

    def hit(self, vendor, key, windows, now):
        """Count one request. Returns ``(allowed, (limit, remaining, reset_epoch))``."""
        wins = self._windows(windows)
        bucket = self.buckets.get((vendor, key))
        if bucket is None or len(bucket) != len(wins):
            bucket = self.buckets[(vendor, key)] = [[0.0, 0] for _ in wins]
        current = []
        allowed = True
        for (limit, window), slot in zip(wins, bucket):
            if now >= slot[0]:
                count, end, expired = 0, _window_end(window, now), True
            else:
                count, end, expired = slot[1], slot[0], False
            if count >= limit:
                allowed = False
            current.append((limit, count, end, expired))
        best = None
        for (limit, count, end, expired), slot in zip(current, bucket):
            if allowed:
                if expired:
                    slot[0], slot[1] = end, 1
                else:
                    slot[1] += 1
                count += 1
            remaining = max(0, limit - count)
            if best is None or remaining < best[1] or (remaining == best[1] and end > best[2]):
                best = (limit, remaining, end)
        return allowed, best


# ------------------------------------------------------------------ faults
class Fault:
    __slots__ = ("label", "kind", "status", "retry_after", "phase", "slow_seconds")

    def __init__(self, label, kind, status, retry_after, phase, slow_seconds):
        self.label = label
        self.kind = kind          # error | 429 | drop | slow | html | badjson
        self.status = status
        self.retry_after = retry_after
        self.phase = phase        # before | after
        self.slow_seconds = slow_seconds


def _make_fault(label, status=None, retry_after=1, phase="before", slow_seconds=3.0) -> Fault:
    if label == "429":
        return Fault("429", "429", 429, retry_after, phase, slow_seconds)
    if label == "drop":
        return Fault("drop", "drop", None, retry_after, phase, slow_seconds)
    if label == "slow":
        return Fault("slow", "slow", None, retry_after, phase, slow_seconds)
    if label == "html500":
        return Fault("html500", "html", int(status or 500), retry_after, phase, slow_seconds)
    if label == "badjson":
        return Fault("badjson", "badjson", int(status or 200), retry_after, phase, slow_seconds)
    if label == "error":
        if status is None:
            raise ValueError("fault kind 'error' needs a status")
        return Fault(str(int(status)), "error", int(status), retry_after, phase, slow_seconds)
    status = int(status or label)
    if status == 429:
        return Fault("429", "429", 429, retry_after, phase, slow_seconds)
    return Fault(label, "error", status, retry_after, phase, slow_seconds)


class FaultInjector:
    """Scripted faults (per vendor queues) first, then random faults."""

    def __init__(self) -> None:
        self.scripts = {v: collections.deque() for v in VENDORS}
        self.config = None
        self.rng = random.Random()

    def reset(self) -> None:
        for q in self.scripts.values():
            q.clear()
        self.configure(None)

    def configure(self, faults) -> None:
        self.config = faults
        self.rng = random.Random(faults["seed"] if faults else None)

    def inject(self, vendor, script, phase=None, defaults=None) -> int:
        """Queue scripted items; returns the vendor's queue length. Raises ``ValueError``."""
        if vendor not in VENDORS:
            raise ValueError(f"unknown vendor {vendor!r}")
        if not isinstance(script, (list, tuple)):
            raise ValueError("script must be a list")
        if phase is not None and phase not in FAULT_PHASES:
            raise ValueError(f"phase must be one of {FAULT_PHASES}")
        defaults = defaults or {}
        items = []
        for item in script:
            if isinstance(item, (str, int)):
                item = {"kind": str(item)}
            if not isinstance(item, dict) or "kind" not in item:
                raise ValueError("a script item is a kind string or an object with 'kind'")
            unknown = set(item) - {"kind", "status", "retry_after", "phase", "slow_seconds", "seconds"}
            if unknown:
                raise ValueError(f"unknown script item field(s): {sorted(unknown)}")
            kind = _check_fault_kind(item["kind"])
            item_phase = item.get("phase", phase or "before")
            if item_phase not in FAULT_PHASES:
                raise ValueError(f"phase must be one of {FAULT_PHASES}")
            if kind == "ok":
                items.append(None)
                continue
            slow = item.get("slow_seconds", item.get("seconds", defaults.get("slow_seconds", 3.0)))
            spec = (kind, item.get("status"), int(item.get("retry_after", defaults.get("retry_after", 1))),
                    item_phase, float(slow))
            _make_fault(kind, spec[1], spec[2], "before", spec[4])  # validate now
            items.append(spec)
        self.scripts[vendor].extend(items)
        return len(self.scripts[vendor])

    def _phase(self, phase):
        if phase == "mixed":
            return "before" if self.rng.random() < 0.5 else "after"
        return phase

    def pick(self, vendor):
        queue = self.scripts[vendor]
        if queue:
            spec = queue.popleft()
            if spec is None:
                return None
            kind, status, retry_after, phase, slow = spec
            return _make_fault(kind, status, retry_after, self._phase(phase), slow)
        cfg = self.config
        if cfg is None or cfg["rate"] <= 0:
            return None
        if cfg["vendors"] is not None and vendor not in cfg["vendors"]:
            return None
        if self.rng.random() >= cfg["rate"]:
            return None
        kinds = cfg["kinds"]
        label = self.rng.choices(list(kinds), weights=list(kinds.values()))[0]
        return _make_fault(label, None, cfg["retry_after"], self._phase(cfg["phase"]),
                           cfg["slow_seconds"])

    def pending(self) -> dict:
        return {v: len(q) for v, q in self.scripts.items()}


# ------------------------------------------------------------- request log
class RequestLog:
    """Bounded log of vendor requests. Call under the state lock.

    A record is stored as the tuple ``(seq, time, vendor, method, raw_path, status,
    fault, authorized, authorization_scheme)``; the admin API derives ``path``,
    ``segments`` and ``query`` from ``raw_path`` when the log is read.
    """

    def __init__(self, limit=100000) -> None:
        self.records = collections.deque(maxlen=limit)
        self.seq = 0

    def set_limit(self, limit) -> None:
        if self.records.maxlen != limit:
            self.records = collections.deque(self.records, maxlen=limit)

    def clear(self) -> None:
        self.records.clear()

    def append(self, *fields) -> None:
        self.seq += 1
        self.records.append((self.seq,) + fields)

    def select(self, since=0, vendor=None) -> list:
        out = []
        for rec in reversed(self.records):
            if rec[0] <= since:
                break
            if vendor is None or rec[2] == vendor:
                out.append(rec)
        out.reverse()
        return out
