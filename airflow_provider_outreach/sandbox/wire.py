"""HTTP building blocks shared by the server, the pipeline and the vendors.

``Request`` is one parsed vendor request, ``Response`` one answer. The helpers
parse request targets (split on ``/`` before percent-decoding, so an encoded
``%2F`` stays inside its segment) and build the vendor-neutral answers that
faults produce (nginx HTML page, broken JSON).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote

JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"

REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    414: "URI Too Long",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Response:
    """Status, content type (``None``: no ``Content-Type`` header), body bytes, extra headers."""

    __slots__ = ("body", "ctype", "headers", "status")

    def __init__(self, status, ctype=None, body=b"", headers=None):
        self.status = status
        self.ctype = ctype
        self.body = body
        self.headers = headers if headers is not None else []


class Request:
    """One request to a vendor mount.

    ``raw_path`` is the request target as received; ``path`` and ``segments`` are relative
    to the vendor's API base (``segments`` decoded one by one, ``None`` when one does not
    decode), or, for a request ``outside`` the API base, relative to the vendor mount.
    The pipeline fills ``key``/``permissions`` after authentication and ``deliver``
    (the route's answer reaches the client); a route sets ``campaign_read`` to the id of
    a campaign it served.
    """

    __slots__ = (
        "auth_header",
        "body",
        "campaign_read",
        "deliver",
        "key",
        "method",
        "outside",
        "path",
        "permissions",
        "query",
        "raw_path",
        "raw_query",
        "segments",
        "skip",
        "vendor",
    )

    def __init__(self, vendor, method, raw_path, path, segments, raw_query, body, auth_header, outside, skip):
        self.vendor = vendor
        self.method = method
        self.raw_path = raw_path
        self.path = path
        self.segments = segments
        self.raw_query = raw_query
        self.query = parse_query(raw_query)
        self.body = body
        self.auth_header = auth_header
        self.outside = outside
        self.skip = skip
        self.key = None
        self.permissions = ()
        self.deliver = True
        self.campaign_read = None


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(status, obj, headers=None) -> Response:
    return Response(status, JSON_CT, dumps(obj), headers)


def text_response(status, text, headers=None) -> Response:
    return Response(status, TEXT_CT, text.encode("utf-8"), headers)


def reason(status) -> str:
    return REASONS.get(status, "Error")


def nginx_error(status) -> Response:
    """The HTML error page an nginx in front of the API would answer."""
    title = f"{status} {reason(status)}"
    body = (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1>"
        f"</center><hr><center>nginx</center></body></html>\n"
    )
    return Response(status, HTML_CT, body.encode("utf-8"))


def bad_json(status=200) -> Response:
    """A JSON content type with a truncated body."""
    return Response(status, JSON_CT, b'{"data": ')


_HTML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})


def escape_html(text: str) -> str:
    """HTML-escape as Express does (``escape-html``)."""
    return text.translate(_HTML_ESCAPES)


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


def join_path(raw_segments) -> str:
    return "/" + "/".join(raw_segments) if raw_segments else ""


def describe_target(raw: str, skip: int, outside: bool = False):
    """``(raw path after the first ``skip`` segments, their decoded segments, query)`` for the log.

    An ``outside`` path is never empty (``/`` for the mount itself), as a host root would see it.
    """
    path, parts, raw_query = split_target(raw)
    if path is None:
        return path, None, parse_query(raw_query)
    rest = parts[skip:]
    rel = join_path(rest) or ("/" if outside else "")
    return rel, decode_segments(rest), parse_query(raw_query)
