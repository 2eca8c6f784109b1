"""Configuration of the sandbox: limits, latency, faults, keys, request log.

``POST /_sandbox/config`` merges any subset of these keys (shown with the defaults)::

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
  (or ``"N/SECONDS"``) counted per API key. ``[]`` (or ``null``) means unlimited; the headers
  then report a nominal window of 1,000,000 requests per 60 s. Setting limits resets the counters.
* ``latency``: seconds added to every request to a vendor mount (admin calls excluded).
* ``keys``: per vendor a key string, a list of keys, or a mapping key -> list of
  permissions (meaningful for vendors whose keys carry permissions, i.e. LeadLex; a key
  given without any gets the vendor's default ones). Only the vendors named are replaced
  (``[]`` leaves a vendor without any valid key), and their revoked keys are restored.
* ``faults``: random faults; ``null`` disables them. Replaced as a whole (not merged).
  ``kinds`` may also be a list (equal weights).
* ``log``: record vendor requests; ``log_limit`` bounds the log (oldest records dropped).

Fault kinds (random ``faults.kinds`` and scripted ``POST /_sandbox/inject`` items
``{"kind", "status"?, "retry_after"?, "phase"?, "slow_seconds"?, "location"?}``):

* an HTTP status such as ``"500"``, ``"502"``, ``"503"``, ``"401"``, ``"403"``, ``"404"``:
  the vendor's own answer for that status in its format (``"401"`` is exactly the
  vendor's bad-key answer, ``"403"`` its missing-permission answer);
  ``{"kind": "error", "status": N}`` is the same;
* ``"429"``: the vendor's rate-limit answer, ``X-RateLimit-Remaining: 0`` and a reset
  (and ``Retry-After`` where the vendor sends one) ``retry_after`` seconds ahead;
* ``"drop"``: the connection is closed without an answer;
* ``"slow"``: ``slow_seconds`` of delay, then the normal answer;
* ``"html500"``: an nginx HTML error page with ``status`` (default 500);
* ``"badjson"``: a truncated JSON body with ``status`` (default 200);
* ``"empty"``: ``status`` (default 404) with an empty body and no content type;
* ``"redirect"``: ``status`` 301/302/303/307/308 (default 302), an empty body and
  ``Location:`` the requested path (or the item's ``location``);
* ``"ok"`` (scripted only): the request is answered normally.

``phase`` ``before`` replaces the route (nothing is changed); ``after`` runs the route
(its change is applied) and replaces its answer; ``mixed`` picks one at random.
Faults apply to authenticated, not rate-limited requests inside an API base only.
"""

from __future__ import annotations

from .vendors import DEFAULT_KEYS, VENDORS

NOMINAL_WINDOW = (1000000, 60.0)

FAULT_PHASES = ("before", "after", "mixed")
#: Fault kinds besides HTTP statuses, with the status they answer by default.
SPECIAL_FAULT_KINDS = {
    "429": 429,
    "drop": None,
    "slow": None,
    "html500": 500,
    "badjson": 200,
    "empty": 404,
    "redirect": 302,
}
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
DEFAULT_FAULT_KINDS = {"500": 1, "502": 1, "503": 1, "429": 1, "drop": 1, "slow": 1}


def check_vendor(vendor) -> str:
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}")
    return vendor


# ---------------------------------------------------------------- keys
def _normalize_vendor_keys(vendor, value) -> dict:
    defaults = VENDORS[vendor].key_permissions
    if value is None:
        return {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        value = {key: None for key in value}
    if not isinstance(value, dict):
        raise TypeError(f"{vendor} keys must be a string, a list or an object")
    out = {}
    for key, perms in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{vendor} keys must be non-empty strings")
        if perms is None or perms is True:
            perms = defaults or ()
        if isinstance(perms, str):
            perms = [perms]
        if not isinstance(perms, (list, tuple)) or not all(isinstance(p, str) for p in perms):
            raise ValueError(f"{vendor} key permissions must be a list of strings")
        out[key] = list(perms) if defaults is not None else []
    return out


def normalize_keys(keys) -> dict:
    """``{vendor: {key: [permissions]}}`` (permissions only for vendors whose keys carry them)."""
    if not isinstance(keys, dict):
        raise TypeError("keys must be an object")
    unknown = set(keys) - set(VENDORS)
    if unknown:
        raise ValueError(f"unknown vendor(s) in keys: {sorted(unknown)}")
    return {v: _normalize_vendor_keys(v, keys[v]) for v in keys}


# ---------------------------------------------------------------- limits
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
        raise TypeError(f"limits for {vendor} must be a list of windows")
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


# ---------------------------------------------------------------- faults
def check_fault_kind(kind) -> str:
    kind = str(kind)
    if kind in SPECIAL_FAULT_KINDS or kind in ("ok", "error"):
        return kind
    if kind.isdigit() and 400 <= int(kind) <= 599:
        return kind
    raise ValueError(f"unknown fault kind {kind!r}")


def fault_status(kind: str, status) -> int | None:
    """The status a fault answers with; ``ValueError`` when ``status`` does not fit the kind."""
    if status is not None and (isinstance(status, bool) or not isinstance(status, (int, str))):
        raise ValueError("a fault status must be an integer")
    try:
        status = None if status is None else int(status)
    except ValueError:
        raise ValueError("a fault status must be an integer") from None
    if kind == "error":
        if status is None:
            raise ValueError("fault kind 'error' needs a status")
        kind = str(status)
    if kind in ("drop", "slow", "ok"):
        return None
    if kind == "429":
        return 429
    if kind == "redirect":
        status = status or SPECIAL_FAULT_KINDS["redirect"]
        if status not in REDIRECT_STATUSES:
            raise ValueError(f"a redirect status must be one of {REDIRECT_STATUSES}")
        return status
    if kind in SPECIAL_FAULT_KINDS:
        status = status or SPECIAL_FAULT_KINDS[kind]
        if not 200 <= status <= 599:
            raise ValueError("a fault status must be between 200 and 599")
        return status
    status = status or int(kind)
    if not 400 <= status <= 599:
        raise ValueError("an error fault status must be between 400 and 599")
    return status


def normalize_faults(value):
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        raise TypeError("faults must be an object or null")
    allowed = {"rate", "kinds", "slow_seconds", "retry_after", "vendors", "phase", "seed"}
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"unknown fault setting(s): {sorted(unknown)}")
    rate = value.get("rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError("faults.rate must be between 0 and 1")
    kinds = value.get("kinds")
    if kinds is None:
        kinds = DEFAULT_FAULT_KINDS
    if isinstance(kinds, (list, tuple)):
        kinds = {k: 1 for k in kinds}
    if not isinstance(kinds, dict) or not kinds:
        raise ValueError("faults.kinds must be a non-empty object or list")
    norm_kinds = {}
    for kind, weight in kinds.items():
        kind = check_fault_kind(kind)
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
        if not isinstance(vendors, (list, tuple)) or not all(v in VENDORS for v in vendors):
            raise ValueError(f"faults.vendors must be among {tuple(VENDORS)}")
        vendors = list(vendors)
    phase = value.get("phase", "before")
    if phase not in FAULT_PHASES:
        raise ValueError(f"faults.phase must be one of {FAULT_PHASES}")
    seed = value.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError("faults.seed must be an integer or null")
    return {
        "rate": float(rate),
        "kinds": norm_kinds,
        "slow_seconds": float(value.get("slow_seconds", 3.0)),
        "retry_after": int(value.get("retry_after", 1)),
        "vendors": vendors,
        "phase": phase,
        "seed": seed,
    }


# ---------------------------------------------------------------- whole config
CONFIG_KEYS = ("limits", "latency", "faults", "keys", "log", "log_limit")


def default_config(keys=None) -> dict:
    """Vendor defaults; ``keys`` replaces the default keys of the vendors it names."""
    return {
        "limits": {name: [dict(w) for w in cls.default_limits] for name, cls in VENDORS.items()},
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
        raise TypeError("config must be an object")
    unknown = set(update) - set(CONFIG_KEYS)
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
