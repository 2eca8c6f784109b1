"""Vendor routes and the vendors' answer formats.

``route()`` maps an already authenticated request (vendor, method, decoded path
segments after the vendor prefix, parsed query) onto ``SandboxState`` and
returns a ``Response``. It must be called with the state lock held.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from urllib.parse import parse_qs, unquote

from .state import ApiError

JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"

REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
    413: "Payload Too Large", 414: "URI Too Long", 422: "Unprocessable Entity",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

LEADLEX_CODES = {
    400: "invalid_request", 401: "invalid_key", 403: "insufficient_permissions",
    404: "not_found", 405: "method_not_allowed", 409: "conflict", 429: "rate_limited",
    500: "internal_error", 502: "bad_gateway", 503: "service_unavailable",
    504: "gateway_timeout",
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Response:
    __slots__ = ("status", "ctype", "body", "headers")

    def __init__(self, status, ctype=None, body=b"", headers=None):
        self.status = status
        self.ctype = ctype
        self.body = body
        self.headers = headers if headers is not None else []


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(status, obj) -> Response:
    return Response(status, JSON_CT, dumps(obj))


def reason(status) -> str:
    return REASONS.get(status, "Error")


def js_date(epoch: float) -> str:
    """JavaScript ``Date.prototype.toString()`` of an instant, in UTC."""
    t = time.gmtime(math.ceil(epoch))
    return "%s %s %02d %04d %02d:%02d:%02d GMT+0000 (Coordinated Universal Time)" % (
        _DAYS[t.tm_wday], _MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


def vendor_error(vendor, status, message, code=None) -> Response:
    """An error in the vendor's format (lemlist text, LeadLex envelope, NestJS)."""
    if vendor == "lemlist":
        if message is None:
            return Response(status)
        return Response(status, TEXT_CT, message.encode("utf-8"))
    if vendor == "leadlex":
        return json_response(status, {"error": {"code": code or LEADLEX_CODES.get(status, "error"),
                                                "message": message}})
    return json_response(status, {"statusCode": status, "message": message,
                                  "error": reason(status)})


def unauthorized(vendor, header_present) -> Response:
    if vendor == "lemlist":
        return vendor_error("lemlist", 401,
                            "The authentication you supplied is incorrect" if header_present else None)
    if vendor == "leadlex":
        return vendor_error("leadlex", 401, "Invalid or expired API key", "invalid_key")
    return vendor_error("dialnexa", 401, "Unauthorized")


def too_many(vendor) -> Response:
    if vendor == "lemlist":
        return vendor_error("lemlist", 429, "Too many requests, please try again later.")
    if vendor == "leadlex":
        return vendor_error("leadlex", 429, "Rate limit exceeded", "rate_limited")
    return vendor_error("dialnexa", 429, "ThrottlerException: Too Many Requests")


def server_error(vendor, status) -> Response:
    if vendor == "leadlex":
        text = {500: "Internal server error"}.get(status, reason(status))
        return vendor_error(vendor, status, text)
    return vendor_error(vendor, status, reason(status))


def html_error(status) -> Response:
    title = f"{status} {reason(status)}"
    body = (f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1>"
            f"</center><hr><center>nginx</center></body></html>\n")
    return Response(status, HTML_CT, body.encode("utf-8"))


def bad_json(status=200) -> Response:
    return Response(status, JSON_CT, b'{"data": ')


def rate_headers(vendor, status, limit, remaining, reset, now, retry_after=None) -> list:
    """``X-RateLimit-*`` (+ ``Retry-After``, ``X-Request-ID``) as the vendor sends them."""
    if vendor == "lemlist":
        wait = retry_after if retry_after is not None else max(1, math.ceil(reset - now))
        return [("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
                ("X-RateLimit-Reset", js_date(reset)), ("Retry-After", str(wait))]
    headers = [("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
               ("X-RateLimit-Reset", str(math.ceil(reset)))]
    if vendor == "leadlex":
        headers.append(("X-Request-ID", "req_" + uuid.uuid4().hex))
    elif status == 429:
        wait = retry_after if retry_after is not None else max(1, math.ceil(reset - now))
        headers.append(("Retry-After", str(wait)))
    return headers


# ------------------------------------------------------------ request target
def split_target(raw: str):
    """``(path, raw_segments, raw_query)`` of a request target; ``path`` is None if unusable.

    The query starts at the first ``?``; the path is split on ``/`` BEFORE any
    percent-decoding, so an encoded ``%2F`` stays inside its segment.
    """
    target = raw
    if target.startswith(("http://", "https://")):
        slash = target.find("/", target.find("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    path, _, raw_query = target.partition("?")
    if not path.startswith("/"):
        return None, [], raw_query
    return path, path.split("/")[1:], raw_query


def decode_segments(raw_segments):
    """Percent-decode each segment on its own (UTF-8, strict); None if one is invalid."""
    try:
        return [unquote(seg, errors="strict") for seg in raw_segments]
    except UnicodeDecodeError:
        return None


def parse_query(raw_query) -> dict:
    return parse_qs(raw_query, keep_blank_values=True) if raw_query else {}


def describe_target(raw: str):
    """``(vendor-relative raw path, decoded segments after the prefix, query)`` for the log."""
    path, parts, raw_query = split_target(raw)
    if path is None or not parts:
        return path, None, parse_query(raw_query)
    return path[len(parts[0]) + 1:], decode_segments(parts[1:]), parse_query(raw_query)


# ------------------------------------------------------------------ routing
def route(state, vendor, method, segs, query, rel_path, perms, deliver) -> Response:
    """Answer one vendor request. ``segs`` is None when the path did not decode."""
    try:
        if segs is None:
            raise ApiError(400, "Invalid path encoding", "invalid_request")
        if vendor == "lemlist":
            return _lemlist(state, method, segs, query, deliver)
        if vendor == "leadlex":
            return _leadlex(state, method, segs, query, perms, deliver)
        return _dialnexa(state, method, segs, rel_path, deliver)
    except ApiError as exc:
        return vendor_error(vendor, exc.status, exc.message, exc.code)


def _allow(method, *allowed, code=None):
    if method not in allowed:
        raise ApiError(405, "Method not allowed", code)


def _lemlist(state, method, segs, query, deliver) -> Response:
    n = len(segs)
    head = segs[0] if n and all(segs) else None
    if head == "team" and n == 1:
        _allow(method, "GET")
        return json_response(200, state.lemlist_get_team())
    if head == "campaigns":
        if n == 2:
            _allow(method, "GET")
            camp = state.lemlist_get_campaign(segs[1])
            if deliver:
                state.note_read("lemlist", segs[1])
            return json_response(200, camp)
        if n == 3 and segs[2] in ("pause", "start"):
            _allow(method, "POST")
            return json_response(200, state.lemlist_set_running(segs[1], segs[2] == "start"))
        if n == 4 and segs[2] == "leads":
            _allow(method, "DELETE")
            if query.get("action", [""])[-1] == "remove":
                return json_response(200, state.lemlist_remove_lead(segs[1], segs[3]))
            return json_response(200, state.lemlist_unsubscribe_lead(segs[1], segs[3]))
    if head == "leads" and n == 3 and segs[1] == "notinterested":
        _allow(method, "POST")
        return json_response(200, state.lemlist_not_interested(segs[2]))
    if head == "v2" and n == 4 and segs[1] == "unsubscribes" and segs[2] == "variables":
        _allow(method, "GET", "POST", "DELETE")
        if method == "POST":
            return json_response(200, state.lemlist_add_unsubscribe(segs[3]))
        if method == "GET":
            return json_response(200, state.lemlist_get_unsubscribe(segs[3]))
        return json_response(200, state.lemlist_delete_unsubscribe(segs[3]))
    raise ApiError(404, "Not found")


def _need(perms, perm):
    if perm not in perms:
        raise ApiError(403, f"Missing {perm} permission", "insufficient_permissions")


def _int_param(query, name, default, low, high):
    values = query.get(name)
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise ApiError(400, f"{name} must be an integer", "invalid_request") from None
    if value < low or value > high:
        raise ApiError(400, f"{name} must be between {low} and {high}", "invalid_request")
    return value


def _leadlex(state, method, segs, query, perms, deliver) -> Response:
    n = len(segs)
    if not (n >= 2 and all(segs) and segs[0] == "v1" and segs[1] == "campaigns"):
        raise ApiError(404, "Route not found", "not_found")
    allowed = None
    if n == 2:
        allowed = ("GET",)
    elif n == 3:
        allowed = ("GET", "DELETE")
    elif n == 4 and segs[3] in ("pause", "start"):
        allowed = ("POST",)
    elif n == 4 and segs[3] == "contacts":
        allowed = ("GET",)
    elif n == 5 and segs[3] == "contacts":
        allowed = ("DELETE",)
    if allowed is None:
        raise ApiError(404, "Route not found", "not_found")
    _allow(method, *allowed, code="method_not_allowed")
    _need(perms, "campaigns:read" if method == "GET" else "campaigns:write")
    if n == 2:
        page = _int_param(query, "page", 1, 1, 10 ** 9)
        per_page = _int_param(query, "per_page", 20, 1, 100)
        return json_response(200, state.leadlex_list_campaigns(page, per_page))
    cid = segs[2]
    if n == 3:
        if method == "GET":
            body = state.leadlex_get_campaign(cid)
            if deliver:
                state.note_read("leadlex", cid)
            return json_response(200, body)
        return json_response(200, state.leadlex_delete_campaign(cid))
    if n == 4 and segs[3] == "pause":
        return json_response(200, state.leadlex_pause(cid))
    if n == 4 and segs[3] == "start":
        return json_response(200, state.leadlex_start(cid))
    if n == 4:
        page = _int_param(query, "page", 1, 1, 10 ** 9)
        per_page = _int_param(query, "per_page", 20, 1, 100)
        status = query.get("status", [None])[-1]
        return json_response(200, state.leadlex_list_contacts(cid, page, per_page, status))
    return json_response(200, state.leadlex_remove_contact(cid, segs[4]))


def _dialnexa(state, method, segs, rel_path, deliver) -> Response:
    n = len(segs)
    head = segs[0] if n and all(segs) else None
    if head == "agents" and n == 1 and method == "GET":
        return json_response(200, state.dialnexa_list_agents())
    if head == "campaigns" and n == 2 and method == "GET":
        camp = state.dialnexa_get_campaign(segs[1])
        if deliver:
            state.note_read("dialnexa", segs[1])
        return json_response(200, camp)
    if head == "campaigns-leads" and n == 2:
        if method == "GET":
            return json_response(200, state.dialnexa_get_lead(segs[1]))
        if method == "DELETE":
            return json_response(200, state.dialnexa_remove_lead(segs[1]))
    raise ApiError(404, f"Cannot {method} /v1{rel_path}")
