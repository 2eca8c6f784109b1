"""The bounded log of vendor requests (never any credential)."""

from __future__ import annotations

import collections

from .wire import describe_target


class RequestLog:
    """Bounded log of vendor requests. Call under the sandbox lock.

    A record is stored as the tuple ``(seq, time, vendor, method, raw_path, status, fault,
    authorized, authorization_scheme, outside_api, skip)``; ``skip`` is the number of path
    segments before the API base (or the mount). ``record()`` derives ``path``,
    ``segments`` and ``query`` when the log is read.
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


def record(rec) -> dict:
    """The admin API's view of a stored record."""
    seq, when, vendor, method, raw_path, status, fault, authorized, scheme, outside, skip = rec
    path, segments, query = describe_target(raw_path, skip, outside)
    return {
        "seq": seq,
        "time": when,
        "vendor": vendor,
        "method": method,
        "raw_path": raw_path,
        "path": path,
        "segments": segments,
        "query": query,
        "status": status,
        "fault": fault,
        "authorized": authorized,
        "authorization_scheme": scheme,
        "outside_api": outside,
    }
