"""Admin API of the sandbox under ``/_sandbox`` (JSON, no auth, never rate limited, faulted or logged)::

    GET    /_sandbox/health                      {"ok": true}
    POST   /_sandbox/reset            {"seed"?}  state, config, keys, log, counters, scripts cleared;
                                                 then seeded with "seed" if the key is given
                                                 (null = empty) else with the startup seed
    POST   /_sandbox/seed             seed doc   merged into the state -> {"ok", "counts"}
    GET    /_sandbox/state                       snapshot (see state.py)
    GET    /_sandbox/requests?since=&vendor=     {"requests": [record, ...], "last_seq"}
    DELETE /_sandbox/requests                    clears the log (sequence numbers continue)
    GET    /_sandbox/config                      current config (see config.py)
    POST   /_sandbox/config           partial    merged -> current config
    GET    /_sandbox/inject                      {"pending": {vendor: n}}
    POST   /_sandbox/inject  {"vendor", "script", "phase"?}  -> {"pending": n}
    DELETE /_sandbox/inject                      drops every queued scripted fault
    POST   /_sandbox/campaign-status {"vendor", "id", "status", "after_seconds"?, "after_reads"?}
    POST   /_sandbox/keys/revoke {"vendor", "key"?, "after_requests"?}
                                                 the key (default: the vendor's default key) is
                                                 refused with the vendor's 401 from now on, or
                                                 after N more authenticated requests with it
    GET    /_sandbox/objects/{vendor}/{kind}[/{id}]  one object or {id: object}; 404 if missing
    DELETE /_sandbox/objects/{vendor}/{kind}/{id}    removes it as the vendor might (whatever the
                                                 API allows) -> the object; 404 if missing, 400
                                                 for a kind that cannot be removed

A request-log record: ``{seq, time, vendor, method, raw_path, path, segments, query,
status, fault, authorized, authorization_scheme, outside_api}``; ``path`` and
``segments`` are relative to the vendor's API base (to its mount when ``outside_api``),
``status`` is null for a dropped connection, ``authorized`` null outside the API base.
"""

from __future__ import annotations

import json
import time

from . import requestlog
from .wire import Response, json_response


def _error(status, message) -> Response:
    return json_response(status, {"error": message})


def _parse_body(body) -> dict:
    if not body or not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise TypeError("body must be a JSON object")
    return doc


def handle_admin(app, method, segs, query, body) -> Response:
    """Answer one admin request (``segs``: decoded segments after ``/_sandbox``)."""
    try:
        return _admin(app, method, segs, query, body)
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))


def _admin(app, method, segs, query, body) -> Response:
    if segs is None:
        return _error(400, "invalid path encoding")
    name = segs[0] if segs else ""
    n = len(segs)
    if n == 1 and name == "health" and method == "GET":
        return json_response(200, {"ok": True})
    if n == 1 and name == "state" and method == "GET":
        with app.lock:
            app.state.apply_due(time.time())
            snap = app.state.snapshot()
        return json_response(200, snap)
    if n == 1 and name == "reset" and method == "POST":
        doc = _parse_body(body)
        counts = app.reset(doc["seed"]) if "seed" in doc else app.reset()
        return json_response(200, {"ok": True, "counts": counts})
    if n == 1 and name == "seed" and method == "POST":
        doc = _parse_body(body)
        with app.lock:
            counts = app.state.seed(doc)
        return json_response(200, {"ok": True, "counts": counts})
    if n == 1 and name == "requests" and method == "GET":
        try:
            since = int(query.get("since", ["0"])[-1] or 0)
        except ValueError:
            raise ValueError("since must be an integer") from None
        vendor = query.get("vendor", [None])[-1] or None
        with app.lock:
            records = app.log.select(since, vendor)
            last = app.log.seq
        return json_response(200, {"requests": [requestlog.record(r) for r in records], "last_seq": last})
    if n == 1 and name == "requests" and method == "DELETE":
        with app.lock:
            app.log.clear()
        return json_response(200, {"ok": True})
    if n == 1 and name == "config" and method == "GET":
        with app.lock:
            return json_response(200, app.public_config())
    if n == 1 and name == "config" and method == "POST":
        return json_response(200, app.configure(_parse_body(body)))
    if n == 1 and name == "inject":
        if method == "GET":
            with app.lock:
                return json_response(200, {"pending": app.faults.pending()})
        if method == "DELETE":
            with app.lock:
                app.faults.clear_scripts()
            return json_response(200, {"ok": True})
        if method == "POST":
            doc = _parse_body(body)
            with app.lock:
                defaults = app.config["faults"] or {}
                pending = app.faults.inject(doc.get("vendor"), doc.get("script"), doc.get("phase"), defaults)
            return json_response(200, {"pending": pending})
    if n == 1 and name == "campaign-status" and method == "POST":
        doc = _parse_body(body)
        try:
            with app.lock:
                change = app.state.schedule_status_change(
                    doc.get("vendor"),
                    doc.get("id"),
                    doc.get("status"),
                    doc.get("after_seconds"),
                    doc.get("after_reads"),
                )
        except KeyError:
            return _error(404, f"campaign {doc.get('id')!r} not found")
        return json_response(200, change)
    if n == 2 and segs == ["keys", "revoke"] and method == "POST":
        doc = _parse_body(body)
        unknown = set(doc) - {"vendor", "key", "after_requests"}
        if unknown:
            raise ValueError(f"unknown field(s): {sorted(unknown)}")
        try:
            result = app.revoke_key(doc.get("vendor"), doc.get("key"), doc.get("after_requests"))
        except LookupError as exc:
            return _error(404, str(exc))
        return json_response(200, result)
    if name == "objects" and n in (3, 4) and method == "GET":
        try:
            with app.lock:
                app.state.apply_due(time.time())
                obj = app.state.lookup(segs[1], segs[2], segs[3] if n == 4 else None)
        except KeyError as exc:
            return _error(404, str(exc.args[0]))
        if obj is None:
            return _error(404, "not found")
        return json_response(200, obj)
    if name == "objects" and n == 4 and method == "DELETE":
        try:
            with app.lock:
                obj = app.state.remove(segs[1], segs[2], segs[3])
        except KeyError as exc:
            return _error(404, str(exc.args[0]))
        if obj is None:
            return _error(404, "not found")
        return json_response(200, obj)
    return _error(404, f"no admin route {method} /_sandbox/{'/'.join(segs)}")
