"""HTTP server of the outreach sandbox (standard library only).

One port serves every vendor under a mount of its own, ``/<vendor>``, standing for the
vendor's production host; the API sits at the production path below it, so a client
configured with ``SandboxServer.vendor_url(vendor)`` sends exactly the vendor's
documented paths after it:

* lemlist:  ``http://HOST:PORT/lemlist/api``  (``https://api.lemlist.com/api``)
* LeadLex:  ``http://HOST:PORT/leadlex/functions/v1/api-gateway``
  (``https://data.leadlex.com/functions/v1/api-gateway``; paths start ``/v1/``)
* DialNexa: ``http://HOST:PORT/dialnexa/v1``  (``https://api.dialnexa.com/v1``)
* admin:    ``/_sandbox/...`` (see ``admin.py``)

A path under a mount but outside its API base gets what the production host answers
there (see the vendor modules). Paths are split on ``/`` first and each segment is
percent-decoded on its own, so ``a%2Fb`` is the single segment ``a/b`` and can never
reach another route. Every response carries ``Content-Length``; connections are kept alive.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import traceback
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from .admin import handle_admin
from .app import SandboxApp
from .vendors import vendor_class
from .wire import JSON_CT, Response, decode_segments, dumps, parse_query, reason, split_target

if TYPE_CHECKING:
    from typing_extensions import Self

MAX_BODY = 256 * 1024 * 1024
MAX_LINE = 65536
MAX_HEADERS = 100


class _BadRequest(Exception):
    pass


_date_cache = [0, ""]


def _http_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[1] = formatdate(now, usegmt=True)
        _date_cache[0] = now
    return _date_cache[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "outreach-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this

    # quiet unless the access log is on
    def log_message(self, format, *args):
        if self.server.access_log:
            sys.stderr.write(f"{self.address_string()} - - [{self.log_date_time_string()}] {format % args}\n")

    def handle_one_request(self) -> None:
        """Read one request (request line + headers) and answer it.

        A small replacement of the base class's parser: headers go into a dict
        keyed by lowercased name (the last occurrence wins).
        """
        self.requestline = ""
        self.command = None
        try:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                self.close_connection = True
                return
            if len(line) > MAX_LINE:
                self._reject(414, "request line too long")
                return
            self.raw_requestline = line
            self.requestline = line.decode("iso-8859-1").rstrip("\r\n")
            parts = self.requestline.split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self.request_version = "HTTP/1.0"
                self._reject(400, "bad request line")
                return
            self.command, self.path, self.request_version = parts
            headers = {}
            for _ in range(MAX_HEADERS + 1):
                raw = self.rfile.readline(MAX_LINE + 1)
                if raw in (b"\r\n", b"\n", b""):
                    break
                if len(raw) > MAX_LINE:
                    self._reject(431, "header line too long")
                    return
                name, sep, value = raw.decode("iso-8859-1").partition(":")
                if not sep:
                    self._reject(400, "bad header line")
                    return
                headers[name.strip().lower()] = value.strip()
            else:
                self._reject(431, "too many headers")
                return
            self.headers = headers
            connection = headers.get("connection", "").lower()
            if self.request_version == "HTTP/1.0":
                self.close_connection = "keep-alive" not in connection
            else:
                self.close_connection = "close" in connection
            if headers.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            method = self.command
            if method not in ("GET", "POST", "DELETE", "PUT", "PATCH"):
                self._reject(501, f"unsupported method {method}")
                return
            self._handle(method)
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    def _reject(self, status, message) -> None:
        self.close_connection = True
        self._write(Response(status, JSON_CT, dumps({"error": message})))

    # ------------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = self.headers.get("transfer-encoding")
        if te and "chunked" in te.lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise _BadRequest("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("content-length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if n < 0 or n > MAX_BODY:
            raise _BadRequest("bad Content-Length")
        return self.rfile.read(n) if n else b""

    def _write(self, resp: Response) -> None:
        body = resp.body or b""
        if self.command == "HEAD":
            body = b""
        lines = [f"HTTP/1.1 {resp.status} {reason(resp.status)}", "Date: " + _http_date()]
        if resp.ctype:
            lines.append("Content-Type: " + resp.ctype)
        for name, value in resp.headers:
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head + body)
        if self.server.access_log:
            self.log_message('"%s" %d %d', self.requestline, resp.status, len(body))

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.server.access_log:
            self.log_message('"%s" dropped', self.requestline)

    def _handle(self, method: str) -> None:
        try:
            self._dispatch(method)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - a bug in the sandbox: answer 500 and keep serving
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._write(Response(500, JSON_CT, dumps({"error": "sandbox error"})))
            except OSError:
                pass

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._write(Response(400, JSON_CT, dumps({"error": str(exc)})))
            return
        raw = self.path
        path, parts, raw_query = split_target(raw)
        if path is None:
            self._write(Response(400, JSON_CT, dumps({"error": "bad request target"})))
            return
        head = (decode_segments(parts[:1]) or [None])[0]
        app = self.server.app
        if head == "_sandbox":
            resp = handle_admin(app, method, decode_segments(parts[1:]), parse_query(raw_query), body)
        elif head in app.vendors:
            req = app.request(head, method, raw, parts[1:], raw_query, body, self.headers.get("authorization"))
            resp = app.handle_vendor(req)
            if resp is None:
                self._drop()
                return
        else:
            mounts = ", ".join(type(v).base_path() for v in app.vendors.values())
            resp = Response(404, JSON_CT, dumps({"error": "not found", "hint": f"use {mounts} or /_sandbox"}))
        self._write(resp)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    block_on_close = False

    def __init__(self, address, app, access_log):
        self.app = app
        self.access_log = access_log
        self._conns = set()
        self._conns_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request_thread(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conns_lock:
                self._conns.discard(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SandboxServer:
    """The fake vendor APIs on one port, with in-memory state.

    ``seed`` is a seed document (dict) or the path of a JSON file; ``keys``
    replaces ``DEFAULT_KEYS`` for the vendors it names (see
    ``config.normalize_keys``); ``config`` is a partial config applied at
    startup. Startup seed, keys and config are what ``POST /_sandbox/reset``
    restores. ``access_log=True`` writes one line per request to stderr.
    ``.app`` is the in-process ``SandboxApp`` (state, config, log).
    """

    def __init__(self, host="127.0.0.1", port=0, seed=None, keys=None, config=None, access_log=False):
        self.app = SandboxApp(seed=seed, keys=keys, config=config)
        self._httpd = _HTTPServer((host, port), self.app, access_log)
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = None
        self._stopped = threading.Event()
        self._stop_requested = threading.Event()
        self._stop_lock = threading.Lock()

    @property
    def url(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @staticmethod
    def vendor_path(vendor: str) -> str:
        """Path of a vendor's API on the sandbox, e.g. ``/lemlist/api``; ``ValueError`` if unknown."""
        return vendor_class(vendor).base_path()

    def vendor_url(self, vendor: str) -> str:
        """Base URL to give a client of one vendor, e.g. ``http://127.0.0.1:N/lemlist/api``."""
        return self.url + self.vendor_path(vendor)

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.2},
                name=f"outreach-sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped.is_set():
                return
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=10)
            self._httpd.close_connections()
            self._httpd.server_close()
            self._stopped.set()

    def request_stop(self) -> None:
        """Ask ``serve_forever()`` to return; safe to call from a signal handler."""
        self._stop_requested.set()

    def serve_forever(self) -> None:
        """Serve until ``request_stop()``/``stop()`` is called or Ctrl-C."""
        self.start()
        try:
            while not self._stop_requested.wait(0.5) and not self._stopped.is_set():
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
