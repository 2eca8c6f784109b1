"""The shape every sandbox vendor shares; a vendor module says only what differs.

A vendor is a ``Vendor`` subclass with:

* identity and mount: ``name`` (served under ``/<name>``) and ``api_base``, the path of
  the API on the production host (``/api`` for ``https://api.lemlist.com/api``);
* defaults: ``default_key``, ``default_limits`` and, for vendors whose keys carry
  permissions, ``key_permissions`` (what a key gets when none are given);
* state: ``clear()``, ``seed()``, ``snapshot()``, ``objects()`` (kinds of the admin
  ``objects`` route), ``removers()`` (the kinds it may delete) and a ``campaigns`` table
  for scheduled status changes;
* wire format: ``error()``, ``status_messages``, ``credential()`` (the key presented in
  an ``Authorization`` header), rate-limit headers, the answers to an unknown route
  (``no_route()``) and to a path outside the API base (``outside_api()``);
* routes: methods decorated with ``@route(METHOD, "segment/{param}/...")``.

Instances are used under the sandbox lock only.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterable
from typing import ClassVar

from ..wire import Request, Response, json_response, reason

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INT_RE = re.compile(r"^-?[0-9]{1,18}$")


#: ``{status: (message, code)}``
Messages = dict[int, tuple[str | None, str | None]]


class ApiError(Exception):
    """A documented error answer: HTTP status, human message, machine code."""

    def __init__(self, status: int, message: str | None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class Ids:
    """Deterministic id generator shared by the vendors; ``reset()`` restarts the sequence."""

    def __init__(self, seed: int = 20261125) -> None:
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        self._rng = random.Random(self._seed)

    def new(self, prefix: str, length: int = 17) -> str:
        choice = self._rng.choice
        return prefix + "".join(choice(_ALNUM) for _ in range(length))

    def uuid(self) -> str:
        r = self._rng.getrandbits
        return f"{r(32):08x}-{r(16):04x}-4{r(12):03x}-{0x8000 | r(14):04x}-{r(48):012x}"


def iso_now(now: float | None = None) -> str:
    """``2026-11-25T14:53:23.123Z``."""
    if now is None:
        now = time.time()
    ms = int((now % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{ms:03d}Z"


# ------------------------------------------------------------------ seeding
def req_dict(obj, what):
    if not isinstance(obj, dict):
        raise TypeError(f"{what} must be an object")
    return obj


def req_list(obj, what):
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise TypeError(f"{what} must be a list")
    return obj


def opt_str(obj, key, what):
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what}.{key} must be a string")
    return value


# ------------------------------------------------------------------ routing
class Route:
    """One method on one path pattern; ``{name}`` matches a non-empty segment."""

    __slots__ = ("handler", "method", "parts")

    def __init__(self, method: str, pattern: str, handler: Callable) -> None:
        self.method = method
        self.parts = tuple(pattern.strip("/").split("/"))
        self.handler = handler

    def match(self, segments) -> dict | None:
        if len(segments) != len(self.parts):
            return None
        params = {}
        for part, seg in zip(self.parts, segments, strict=True):
            if part.startswith("{"):
                if not seg:
                    return None
                params[part[1:-1]] = seg
            elif part != seg:
                return None
        return params


def route(method: str, pattern: str):
    """Declare a vendor route; the handler gets the ``Request`` and the path parameters.

    A handler returns a JSON-able object (answered 200) or a ``Response``, or raises ``ApiError``.
    """

    def mark(fn):
        fn.__dict__.setdefault("_sandbox_routes", []).append((method, pattern))
        return fn

    return mark


class Vendor:
    """Base of the sandbox vendors (see the module docstring)."""

    name: ClassVar[str]
    api_base: ClassVar[str]
    default_key: ClassVar[str]
    default_limits: ClassVar[tuple[dict, ...]] = ()
    #: Permissions of a key given without any; ``None``: the vendor's keys carry none.
    key_permissions: ClassVar[tuple[str, ...] | None] = None
    #: Answer 405 to a known path with another method (else the unknown-route answer).
    method_not_allowed: ClassVar[bool] = True
    #: When ``Retry-After`` is sent: ``"always"``, ``"429"`` or ``"never"``.
    retry_after_on: ClassVar[str] = "429"
    #: ``{status: (message, code)}`` of the vendor's stock error answers.
    status_messages: ClassVar[Messages] = {}
    routes: ClassVar[tuple[Route, ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        found = []
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for method, pattern in getattr(attr, "_sandbox_routes", ()):
                    found.append(Route(method, pattern, attr))
        cls.routes = tuple(found)

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self.clear()

    # ------------------------------------------------------------ mount
    @classmethod
    def mount(cls) -> str:
        """Path of the vendor's host on the sandbox: ``/<name>``."""
        return f"/{cls.name}"

    @classmethod
    def base_segments(cls) -> tuple[str, ...]:
        return tuple(seg for seg in cls.api_base.split("/") if seg)

    @classmethod
    def base_path(cls) -> str:
        """Path a client appends to the sandbox URL: mount + API base."""
        return cls.mount() + cls.api_base

    # ------------------------------------------------------------ state
    def clear(self) -> None:
        self.campaigns: dict[str, dict] = {}

    def seed(self, doc: dict, counts: dict) -> None:
        raise NotImplementedError

    def snapshot(self) -> dict:
        raise NotImplementedError

    def objects(self) -> dict[str, tuple[Iterable, Callable]]:
        """``{kind: (ids, one)}`` for the admin ``objects`` route; ``one(id)`` is None if missing."""
        return {}

    def removers(self) -> dict[str, Callable]:
        """``{kind: remove}`` for the admin ``objects`` route's DELETE; ``remove(id)`` returns the
        removed object, or None if missing."""
        return {}

    def count(self, counts: dict, what: str) -> None:
        key = f"{self.name}_{what}"
        counts[key] = counts.get(key, 0) + 1

    def lookup(self, kind: str, oid: str | None):
        """One object, or ``{id: object}`` when ``oid`` is None; ``KeyError`` for an unknown kind."""
        try:
            ids, one = self.objects()[kind]
        except KeyError:
            raise KeyError(f"unknown object kind {self.name}/{kind}") from None
        if oid is None:
            return {k: one(k) for k in list(ids)}
        return one(oid)

    def remove(self, kind: str, oid: str):
        """Delete one object as if it went away on the vendor's side; returns it, or None if
        missing. ``KeyError`` for an unknown kind, ``ValueError`` for one that cannot be removed."""
        if kind not in self.objects():
            raise KeyError(f"unknown object kind {self.name}/{kind}")
        remover = self.removers().get(kind)
        if remover is None:
            raise ValueError(f"{self.name}/{kind} objects cannot be removed")
        return remover(oid)

    def has_campaign(self, cid: str) -> bool:
        return cid in self.campaigns

    def set_campaign_status(self, cid: str, status: str, now: float) -> bool:
        camp = self.campaigns.get(cid)
        if camp is None:
            return False
        camp["status"] = status
        self.stamp_status(camp, status, now)
        return True

    def stamp_status(self, camp: dict, status: str, now: float) -> None:
        """Update a campaign's timestamps after a status change."""

    # ------------------------------------------------------------ auth
    def credential(self, header: str) -> str | None:
        """The API key an ``Authorization`` header presents (Bearer by default)."""
        scheme, _, cred = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return cred.strip() or None

    # ------------------------------------------------------------ answers
    def error(self, status: int, message: str | None, code: str | None = None) -> Response:
        raise NotImplementedError

    def status_error(self, status: int) -> Response:
        """The vendor's stock answer for a status (faults, 401, 403, 429)."""
        message, code = self.status_messages.get(status, (reason(status), None))
        return self.error(status, message, code)

    def unauthorized(self, header_present: bool) -> Response:
        return self.status_error(401)

    def too_many(self) -> Response:
        return self.status_error(429)

    def no_route(self, req: Request) -> Response:
        """Answer to an unknown route inside the API base."""
        return self.error(404, "Not found")

    def outside_api(self, req: Request) -> Response:
        """Answer of the production host to a path outside the API base."""
        raise NotImplementedError

    def format_reset(self, reset: float) -> str:
        return str(math.ceil(reset))

    def extra_headers(self) -> list:
        return []

    def rate_headers(self, status, limit, remaining, reset, now, retry_after=None) -> list:
        """``X-RateLimit-*`` (+ ``Retry-After`` and the vendor's extra headers)."""
        headers = [
            ("X-RateLimit-Limit", str(limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", self.format_reset(reset)),
        ]
        if self.retry_after_on == "always" or (self.retry_after_on == "429" and status == 429):
            wait = retry_after if retry_after is not None else max(1, math.ceil(reset - now))
            headers.append(("Retry-After", str(wait)))
        return headers + self.extra_headers()

    # ------------------------------------------------------------ routing
    def handle(self, req: Request) -> Response:
        """Answer an authenticated request inside the API base."""
        try:
            if req.segments is None:
                raise ApiError(400, "Invalid path encoding", "invalid_request")
            known_path = False
            for r in self.routes:
                params = r.match(req.segments)
                if params is None:
                    continue
                if r.method == req.method:
                    result = r.handler(self, req, **params)
                    return result if isinstance(result, Response) else json_response(200, result)
                known_path = True
            if known_path and self.method_not_allowed:
                raise ApiError(405, "Method not allowed", "method_not_allowed")
            return self.no_route(req)
        except ApiError as exc:
            return self.error(exc.status, exc.message, exc.code)


def int_param(query: dict, name: str, default: int, low: int, high: int, code: str | None = None) -> int:
    """An integer query parameter within ``[low, high]``; ``ApiError(400)`` otherwise."""
    values = query.get(name)
    if not values:
        return default
    if not _INT_RE.match(values[-1]):
        raise ApiError(400, f"{name} must be an integer", code)
    value = int(values[-1])
    if value < low or value > high:
        raise ApiError(400, f"{name} must be between {low} and {high}", code)
    return value
