"""The sandbox's request pipeline, independent of the socket layer and of any vendor.

A request to a vendor mount ``/<vendor>/...`` is either inside the vendor's API base
(``/lemlist/api/...``) or outside it. Outside: the vendor's production-host answer
(no authentication, rate limit or fault; latency applies; logged with
``outside_api: true``). Inside:

1. scheduled campaign status changes that are due are applied;
2. authentication (unauthenticated requests, revoked keys included, are answered 401
   and not counted);
3. rate limiting per vendor and key (refused requests are answered 429, not counted);
4. a fault is picked: the vendor's scripted queue first, then the random faults;
5. latency is slept (outside the lock);
6. the route runs (unless a fault with phase ``before`` replaces it), then a fault
   with phase ``after`` replaces the answer; ``slow`` sleeps and answers normally;
7. the request is appended to the request log (never a credential).
"""

from __future__ import annotations

import copy
import json
import os
import time

from .config import check_vendor, default_config, merge_config
from .faults import FaultInjector
from .limits import RateLimiter
from .requestlog import RequestLog
from .state import SandboxState
from .wire import Request, Response, decode_segments, join_path

_RESET_TO_STARTUP = object()


def load_seed(seed):
    """A seed document from a dict, a JSON file path, or None."""
    if seed is None or isinstance(seed, dict):
        return copy.deepcopy(seed)
    if isinstance(seed, (str, os.PathLike)):
        with open(seed, encoding="utf-8") as fh:
            return json.load(fh)
    raise TypeError("seed must be a dict, a path to a JSON file or None")


def scheme_label(header: str | None) -> str | None:
    """``Basic``, ``Bearer`` or ``other`` for an ``Authorization`` header (None without one)."""
    if header is None:
        return None
    scheme = header.strip().partition(" ")[0].lower()
    return {"basic": "Basic", "bearer": "Bearer"}.get(scheme, "other")


class SandboxApp:
    """State, config, limiter, faults and log of one sandbox, and the pipeline over them."""

    def __init__(self, seed=None, keys=None, config=None):
        self.state = SandboxState()
        self.vendors = self.state.vendors
        self.lock = self.state.lock
        self.limiter = RateLimiter()
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.revoked: dict[str, dict[str, int]] = {name: {} for name in self.vendors}
        self.startup_config = merge_config(default_config(keys), config or {})
        self.startup_seed = load_seed(seed)
        self.config = self.startup_config
        self.reset()

    # ---------------------------------------------------------- management
    def _apply_config(self, cfg, update=None) -> None:
        """Install a config; setting limits/faults resets the counters/fault RNG, keys their revocations."""
        self.config = cfg
        if update is None or "limits" in update:
            self.limiter.reset()
        if update is None or "faults" in update:
            self.faults.configure(cfg["faults"])
        for name in self.vendors if update is None else (update.get("keys") or {}):
            self.revoked[name].clear()
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

    def revoke_key(self, vendor, key=None, after_requests=None) -> dict:
        """Refuse ``key`` (default: the vendor's default key) now or after N more authenticated requests."""
        check_vendor(vendor)
        if key is None:
            key = self.vendors[vendor].default_key
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty string")
        after = 0 if after_requests is None else after_requests
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError("after_requests must be an integer >= 0")
        with self.lock:
            if key not in self.config["keys"][vendor]:
                raise LookupError(f"no such {vendor} key")
            self.revoked[vendor][key] = after
        return {"ok": True, "vendor": vendor, "revoked": after == 0, "requests_left": after}

    # ------------------------------------------------------------ requests
    def request(self, vendor, method, raw_target, raw_segments, raw_query, body, auth_header) -> Request:
        """A ``Request`` for ``/<vendor>/<raw_segments...>``, inside or outside the API base."""
        base = self.vendors[vendor].base_segments()
        n = len(base)
        if tuple(raw_segments[:n]) == base:
            tail = raw_segments[n:]
            path, skip, outside = join_path(tail), 1 + n, False
        else:
            tail = raw_segments
            path, skip, outside = "/" + "/".join(tail), 1, True
        return Request(
            vendor, method, raw_target, path, decode_segments(tail), raw_query, body, auth_header, outside, skip
        )

    def _authenticate(self, vendor, req) -> bool:
        """Check the key the request presents; on success fill ``req.key``/``req.permissions``."""
        if req.auth_header is None:
            return False
        key = vendor.credential(req.auth_header)
        keys = self.config["keys"].get(vendor.name, {})
        if key is None or key not in keys:
            return False
        revoked = self.revoked[vendor.name]
        if key in revoked:
            if revoked[key] <= 0:
                return False
            revoked[key] -= 1
        req.key, req.permissions = key, keys[key]
        return True

    def _log(self, now, req, status, fault, authorized) -> None:
        if self.config["log"]:
            self.log.append(
                now,
                req.vendor,
                req.method,
                req.raw_path,
                status,
                fault,
                authorized,
                scheme_label(req.auth_header),
                req.outside,
                req.skip,
            )

    def handle_vendor(self, req: Request) -> Response | None:
        """Answer one vendor request; ``None`` means: drop the connection."""
        vendor = self.vendors[req.vendor]
        now = time.time()
        if req.outside:
            with self.lock:
                latency = self.config["latency"][vendor.name]
                resp = vendor.outside_api(req)
                self._log(now, req, resp.status, None, None)
            if latency > 0:
                time.sleep(latency)
            return resp

        fault = None
        early = None
        with self.lock:
            self.state.apply_due(now)
            cfg = self.config
            latency = cfg["latency"][vendor.name]
            windows = cfg["limits"][vendor.name]
            ok = self._authenticate(vendor, req)
            if not ok:
                limit, remaining, reset = self.limiter.peek(windows, now)
                early = vendor.unauthorized(req.auth_header is not None)
            else:
                allowed, (limit, remaining, reset) = self.limiter.hit(vendor.name, req.key, windows, now)
                if not allowed:
                    early = vendor.too_many()
                else:
                    fault = self.faults.pick(vendor.name)
            if early is not None:
                self._log(now, req, early.status, None, ok)
        if latency > 0:
            time.sleep(latency)
        if early is not None:
            early.headers = vendor.rate_headers(early.status, limit, remaining, reset, time.time()) + early.headers
            return early

        kind = fault.kind if fault is not None else None
        if kind == "slow" and fault.phase == "before":
            time.sleep(fault.slow_seconds)
        retry_after = None
        resp = None
        with self.lock:
            if fault is None or kind == "slow" or fault.phase == "after":
                req.deliver = kind in (None, "slow")
                resp = vendor.handle(req)
                if req.deliver and req.campaign_read is not None and resp.status == 200:
                    self.state.note_read(vendor.name, req.campaign_read)
            if fault is not None and kind != "slow":
                resp = fault.response(vendor, req)
                if kind == "429":
                    retry_after = fault.retry_after
                    remaining, reset = 0, time.time() + fault.retry_after
            self._log(now, req, resp.status if resp is not None else None, fault.label if fault else None, True)
        if kind == "slow" and fault.phase == "after":
            time.sleep(fault.slow_seconds)
        if resp is not None:
            resp.headers = (
                vendor.rate_headers(resp.status, limit, remaining, reset, time.time(), retry_after) + resp.headers
            )
        return resp


__all__ = ["SandboxApp", "load_seed"]
