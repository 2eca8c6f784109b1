"""Request pipeline and admin API of the sandbox, independent of the socket layer.

Vendor request pipeline (``SandboxApp.handle_vendor``):

1. scheduled campaign status changes that are due are applied;
2. authentication (unauthenticated requests are answered 401 and not counted);
3. rate limiting per vendor and key (refused requests are answered 429, not counted);
4. a fault is picked: the vendor's scripted queue first, then the random faults;
5. latency is slept (outside the lock);
6. the route runs (unless a fault with phase ``before`` replaces it), then a fault
   with phase ``after`` replaces the answer; ``slow`` sleeps and answers normally;
7. the request is appended to the request log.

Admin API (JSON, no auth, never rate limited, faulted or logged)::

    GET    /_sandbox/health                      {"ok": true}
    POST   /_sandbox/reset            {"seed"?}  state, config, log, counters, scripts cleared;
                                                 then seeded with "seed" if the key is given
                                                 (null = empty) else with the startup seed
    POST   /_sandbox/seed             seed doc   merged into the state -> {"ok", "counts"}
    GET    /_sandbox/state                       snapshot (see state.py)
    GET    /_sandbox/requests?since=&vendor=     {"requests": [record, ...]}
    DELETE /_sandbox/requests                    clears the log (sequence numbers continue)
    GET    /_sandbox/config                      current config (see runtime.py)
    POST   /_sandbox/config           partial    merged -> current config
    GET    /_sandbox/inject                      {"pending": {vendor: n}}
    POST   /_sandbox/inject  {"vendor", "script", "phase"?}  -> {"pending": n}
    DELETE /_sandbox/inject                      drops every queued scripted fault
    POST   /_sandbox/campaign-status {"vendor", "id", "status", "after_seconds"?, "after_reads"?}
    GET    /_sandbox/objects/{vendor}/{kind}[/{id}]  one object or {id: object}; 404 if missing
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import time

from . import routes
from .routes import Response, dumps
from .runtime import (
    VENDORS, FaultInjector, RateLimiter, RequestLog, default_config, merge_config,
)
from .state import SandboxState

_RESET_TO_STARTUP = object()


def load_seed(seed):
    """A seed document from a dict, a JSON file path, or None."""
    if seed is None or isinstance(seed, dict):
        return copy.deepcopy(seed)
    if isinstance(seed, (str, os.PathLike)):
        with open(seed, encoding="utf-8") as fh:
            return json.load(fh)
    raise TypeError("seed must be a dict, a path to a JSON file or None")


def _admin_json(status, obj) -> Response:
    return Response(status, routes.JSON_CT, dumps(obj))


def _admin_error(status, message) -> Response:
    return _admin_json(status, {"error": message})


class SandboxApp:
    def __init__(self, seed=None, keys=None, config=None):
        self.state = SandboxState()
        self.lock = self.state.lock
        self.limiter = RateLimiter()
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.startup_config = merge_config(default_config(keys), config or {})
        self.startup_seed = load_seed(seed)
        self.config = self.startup_config
        self.reset()

    # ---------------------------------------------------------- management
    def _apply_config(self, cfg, update=None) -> None:
        """Install a config; limits/faults being set resets the counters/fault RNG."""
        self.config = cfg
        if update is None or "limits" in update:
            self.limiter.reset()
        if update is None or "faults" in update:
            self.faults.configure(cfg["faults"])
        self.log.set_limit(cfg["log_limit"])

    def reset(self, seed=_RESET_TO_STARTUP) -> dict:
        if seed is _RESET_TO_STARTUP:
            seed = self.startup_seed
        with self.lock:
            self.state.clear()
            self.limiter.reset()
            self.faults.reset()
            self.log.clear()
            self._apply_config(self.startup_config)
            return self.state.seed(copy.deepcopy(seed))

    def configure(self, update) -> dict:
        with self.lock:
            self._apply_config(merge_config(self.config, update), update)
            return self.public_config()

    def public_config(self) -> dict:
        return copy.deepcopy(self.config)

    # -------------------------------------------------------------- auth
    def _auth(self, vendor, header):
        """``(ok, key, permissions, scheme_label, header_present)``; never keeps the header."""
        if header is None:
            return False, None, (), None, False
        scheme, _, cred = header.strip().partition(" ")
        low = scheme.lower()
        label = "Basic" if low == "basic" else "Bearer" if low == "bearer" else "other"
        keys = self.config["keys"].get(vendor, {})
        cred = cred.strip()
        if vendor == "lemlist":
            if low != "basic":
                return False, None, (), label, True
            try:
                decoded = base64.b64decode(cred, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return False, None, (), label, True
            login, sep, password = decoded.partition(":")
            if sep and login == "" and password in keys:
                return True, password, (), label, True
            return False, None, (), label, True
        if low == "bearer" and cred in keys:
            return True, cred, keys[cred], label, True
        return False, None, (), label, True

    # ------------------------------------------------------------ vendors
    def handle_vendor(self, vendor, method, raw_path, rel_path, segs, query, auth_header):
        """Answer one vendor request; ``None`` means: drop the connection."""
        now = time.time()
        fault = None
        early = None
        with self.lock:
            self.state.apply_due(now)
            cfg = self.config
            latency = cfg["latency"][vendor]
            windows = cfg["limits"][vendor]
            ok, key, perms, scheme, present = self._auth(vendor, auth_header)
            if not ok:
                limit, remaining, reset = self.limiter.peek(windows, now)
                early = routes.unauthorized(vendor, present)
            else:
                allowed, (limit, remaining, reset) = self.limiter.hit(vendor, key, windows, now)
                if not allowed:
                    early = routes.too_many(vendor)
                else:
                    fault = self.faults.pick(vendor)
            if early is not None and cfg["log"]:
                self.log.append(now, vendor, method, raw_path, early.status, None, ok, scheme)
        if latency > 0:
            time.sleep(latency)
        if early is not None:
            early.headers = routes.rate_headers(vendor, early.status, limit, remaining, reset,
                                                time.time())
            return early

        kind = fault.kind if fault is not None else None
        if kind == "slow" and fault.phase == "before":
            time.sleep(fault.slow_seconds)
        retry_after = None
        resp = None
        with self.lock:
            if fault is None or kind == "slow" or fault.phase == "after":
                resp = routes.route(self.state, vendor, method, segs, query, rel_path, perms,
                                    deliver=kind in (None, "slow"))
            if fault is not None and kind != "slow":
                if kind == "drop":
                    resp = None
                elif kind == "429":
                    resp = routes.too_many(vendor)
                    retry_after = fault.retry_after
                    remaining, reset = 0, time.time() + fault.retry_after
                elif kind == "html":
                    resp = routes.html_error(fault.status)
                elif kind == "badjson":
                    resp = routes.bad_json(fault.status)
                else:
                    resp = routes.server_error(vendor, fault.status)
            if self.config["log"]:
                self.log.append(now, vendor, method, raw_path,
                                resp.status if resp is not None else None,
                                fault.label if fault is not None else None, True, scheme)
        if kind == "slow" and fault.phase == "after":
            time.sleep(fault.slow_seconds)
        if resp is not None:
            resp.headers = routes.rate_headers(
                vendor, resp.status, limit, remaining, reset, time.time(),
                retry_after=None if vendor == "leadlex" else retry_after) + resp.headers
        return resp

    # -------------------------------------------------------------- admin
    def handle_admin(self, method, segs, query, body) -> Response:
        try:
            return self._admin(method, segs, query, body)
        except (ValueError, TypeError) as exc:
            return _admin_error(400, str(exc))

    def _admin(self, method, segs, query, body) -> Response:
        if segs is None:
            return _admin_error(400, "invalid path encoding")
        name = segs[0] if segs else ""
        n = len(segs)
        if n == 1 and name == "health" and method == "GET":
            return _admin_json(200, {"ok": True})
        if n == 1 and name == "state" and method == "GET":
            with self.lock:
                self.state.apply_due(time.time())
                snap = self.state.snapshot()
            return _admin_json(200, snap)
        if n == 1 and name == "reset" and method == "POST":
            doc = _parse_body(body)
            counts = self.reset(doc["seed"]) if "seed" in doc else self.reset()
            return _admin_json(200, {"ok": True, "counts": counts})
        if n == 1 and name == "seed" and method == "POST":
            doc = _parse_body(body)
            with self.lock:
                counts = self.state.seed(doc)
            return _admin_json(200, {"ok": True, "counts": counts})
        if n == 1 and name == "requests" and method == "GET":
            try:
                since = int(query.get("since", ["0"])[-1] or 0)
            except ValueError:
                raise ValueError("since must be an integer") from None
            vendor = query.get("vendor", [None])[-1] or None
            with self.lock:
                records = self.log.select(since, vendor)
                last = self.log.seq
            return _admin_json(200, {"requests": [_log_record(r) for r in records],
                                     "last_seq": last})
        if n == 1 and name == "requests" and method == "DELETE":
            with self.lock:
                self.log.clear()
            return _admin_json(200, {"ok": True})
        if n == 1 and name == "config" and method == "GET":
            with self.lock:
                return _admin_json(200, self.public_config())
        if n == 1 and name == "config" and method == "POST":
            return _admin_json(200, self.configure(_parse_body(body)))
        if n == 1 and name == "inject":
            if method == "GET":
                with self.lock:
                    return _admin_json(200, {"pending": self.faults.pending()})
            if method == "DELETE":
                with self.lock:
                    for q in self.faults.scripts.values():
                        q.clear()
                return _admin_json(200, {"ok": True})
            if method == "POST":
                doc = _parse_body(body)
                defaults = {}
                with self.lock:
                    if self.config["faults"]:
                        defaults = self.config["faults"]
                    pending = self.faults.inject(doc.get("vendor"), doc.get("script"),
                                                 doc.get("phase"), defaults)
                return _admin_json(200, {"pending": pending})
        if n == 1 and name == "campaign-status" and method == "POST":
            doc = _parse_body(body)
            try:
                with self.lock:
                    change = self.state.schedule_status_change(
                        doc.get("vendor"), doc.get("id"), doc.get("status"),
                        doc.get("after_seconds"), doc.get("after_reads"))
            except KeyError:
                return _admin_error(404, f"campaign {doc.get('id')!r} not found")
            return _admin_json(200, change)
        if name == "objects" and n in (3, 4) and method == "GET":
            try:
                with self.lock:
                    self.state.apply_due(time.time())
                    obj = self.state.lookup(segs[1], segs[2], segs[3] if n == 4 else None)
            except KeyError as exc:
                return _admin_error(404, str(exc.args[0]))
            if obj is None:
                return _admin_error(404, "not found")
            return _admin_json(200, obj)
        return _admin_error(404, f"no admin route {method} /_sandbox/{'/'.join(segs)}")


def _log_record(rec) -> dict:
    seq, when, vendor, method, raw_path, status, fault, authorized, scheme = rec
    path, segments, query = routes.describe_target(raw_path)
    return {"seq": seq, "time": when, "vendor": vendor, "method": method, "raw_path": raw_path,
            "path": path, "segments": segments, "query": query, "status": status,
            "fault": fault, "authorized": authorized, "authorization_scheme": scheme}


def _parse_body(body) -> dict:
    if not body or not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("body must be a JSON object")
    return doc


__all__ = ["SandboxApp", "load_seed", "VENDORS"]
