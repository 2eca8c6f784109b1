"""Stores for the rate-limit budget of one API key, built on ``pyrate-limiter``.

A pacer keeps a key's budget in exactly one store. Every process pacing one API key (same
vendor and key, whatever the connection id) meets in one shared store, chosen by the
connection's extra:

* **on the host** (the default): a SQLite database per key, behind a file lock
  (pyrate-limiter's ``SQLiteBucket`` with ``use_file_lock``), in the directory
  ``rate_limit_dir`` of the extra, else ``$OUTREACH_RATE_LIMIT_DIR``, else
  ``$AIRFLOW_HOME/outreach-rate-limits`` (one directory for every worker of a deployment,
  apart per test session). It must be on a local disk: SQLite's write-ahead log does not
  work over NFS. No server to run.
* **across hosts**: Redis, when the extra names an Airflow redis connection in
  ``redis_conn_id`` (pyrate-limiter's ``RedisBucket``; the client comes from the redis
  provider's ``RedisHook``). The hosts' clocks must agree (NTP): times are epoch seconds.
* **in the process** (``shared_rate_limit: false``): a :class:`LocalStore` in memory
  (pyrate-limiter's ``InMemoryBucket``); each process paces on its own.

A store holds two things for its key: the sliding-window log of request starts (the
library's bucket: an atomic check-and-insert, used in fixed mode) and one small record of
what the API's headers said (:class:`~airflow_provider_outreach.core.rate_state.PacingState`:
remaining, reset, blocked-until), read and rewritten atomically (under the bucket's file
lock, a Redis ``WATCH`` transaction, or a thread lock in memory). The key is named by the
vendor and a SHA-256 of the API key, never the key itself.

The directory is created world-writable (0777, not sticky: the file lock refuses lock files
of other users in a sticky directory) and its files 0666, so workers running as different
users share it; it holds only request times. A directory that already exists keeps its
rights (create it beforehand, e.g. 2770 with a shared group, to restrict it). A shared
store that cannot be opened or fails later is logged, and the pacer goes on with a fresh
:class:`LocalStore`: it paces per process.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_outreach.core.rate_state import PacingState
from airflow_provider_outreach.exceptions import ConnectionConfigError

if TYPE_CHECKING:
    from airflow_provider_outreach.core.connection import ConnectionSettings

__all__ = [
    "DIR_ENV",
    "BudgetSpec",
    "BudgetStore",
    "FileStore",
    "LocalStore",
    "RedisStore",
    "budget_name",
    "budget_spec",
    "check_spec",
    "default_dir",
    "open_store",
]

T = TypeVar("T")

#: environment variable naming the directory of the on-host store
DIR_ENV = "OUTREACH_RATE_LIMIT_DIR"
#: request starts kept after they leave the window (to attribute late answers), seconds
KEEP = 120.0
#: a key's Redis entries expire after this long unused, milliseconds
REDIS_TTL_MS = 2 * 86_400_000
#: how often old request starts are deleted, seconds
LEAK_EVERY = 10.0


@dataclass(frozen=True)
class BudgetSpec:
    """Where the budget of a connection's key is shared: ``kind`` ``"file"`` (``location``
    is a directory) or ``"redis"`` (``location`` is an Airflow redis connection id)."""

    kind: str
    location: str


def default_dir() -> Path:
    """``$OUTREACH_RATE_LIMIT_DIR``, else ``$AIRFLOW_HOME/outreach-rate-limits``."""
    configured = os.environ.get(DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get("AIRFLOW_HOME", "").strip() or "~/airflow"
    return Path(home).expanduser() / "outreach-rate-limits"


def budget_spec(settings: ConnectionSettings) -> BudgetSpec | None:
    """Where the connection's key shares its budget; ``None`` when sharing is off."""
    if not settings.shared_rate_limit:
        return None
    if settings.redis_conn_id:
        return BudgetSpec("redis", settings.redis_conn_id)
    return BudgetSpec(
        "file", str(Path(settings.rate_limit_dir).expanduser() if settings.rate_limit_dir else default_dir())
    )


def budget_name(vendor: str, api_key: str) -> str:
    """The store's name for a key: the vendor and a hash of the key, never the key."""
    digest = hashlib.sha256(b"outreach-rate-limit\0" + api_key.encode()).hexdigest()[:32]
    return f"{vendor}-{digest}"


def _rate(limit: int, period: float, margin: float) -> Any:
    from pyrate_limiter import Rate

    return Rate(limit, max(1, round((period + margin) * 1000)))


class BudgetStore:
    """The budget of one key; times are epoch seconds unless :meth:`now` says otherwise."""

    kind = ""

    def __init__(self, name: str, margin: float) -> None:
        self.name = name
        self.margin = margin
        self.bucket: Any = None
        self._last_leak = 0.0

    def now(self) -> float:
        return time.time()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store for a sequence of steps (a no-op where each step is atomic)."""
        yield

    def read(self) -> PacingState:
        raise NotImplementedError

    def update(self, change: Callable[[PacingState], T]) -> T:
        """Apply ``change`` to the record atomically; ``change`` may run more than once."""
        raise NotImplementedError

    def put(self, now: float) -> float:
        """Count a request start at ``now`` if the window has room: 0; else the seconds to wait."""
        from pyrate_limiter import RateItem

        with self.locked():
            decision = self.bucket.put_decision(RateItem("request", round(now * 1000)))
            if decision.allowed:
                self._maybe_leak(now)
                return 0.0
        wait_ms = decision.retry_after_ms
        return max(0.001, (wait_ms if wait_ms is not None and wait_ms >= 0 else 50) / 1000)

    def count(self, start: float, end: float) -> int:
        """Request starts counted between ``start`` and ``end``."""
        raise NotImplementedError

    def set_rate(self, limit: int, period: float) -> None:
        with self.locked():
            self.bucket.rates = [_rate(limit, period, self.margin)]

    def flush(self) -> None:
        """Forget the key's window and record."""
        raise NotImplementedError

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.bucket.close()

    def _maybe_leak(self, now: float) -> None:
        if now - self._last_leak >= LEAK_EVERY:
            self._last_leak = now
            self._leak(now)

    def _leak(self, now: float) -> None:
        self.bucket.leak(round((now - KEEP) * 1000))


def _state_from(raw: Any) -> PacingState:
    return PacingState.from_json(raw)


# -- on the host: SQLite behind a file lock ---------------------------------------------------------


_STATE_TABLE = "CREATE TABLE IF NOT EXISTS pacing_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)"


def _shared_dir(path: Path) -> Path:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another user made it meanwhile
            path.chmod(0o777)
    return path


def _shared_file(path: Path) -> None:
    """Create ``path`` readable and writable by every user, unless it exists."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o666)  # whatever the umask
    finally:
        os.close(fd)


class FileStore(BudgetStore):
    """The budget in ``<dir>/<vendor>-<hash>.sqlite``, locked by ``<same>.lock``."""

    kind = "file"

    def __init__(self, directory: Path, name: str, limit: int | None, period: float | None, margin: float) -> None:
        super().__init__(name, margin)
        from pyrate_limiter import SQLiteBucket

        directory = _shared_dir(directory)
        self.path = directory / f"{name}.sqlite"
        for path in (self.path, Path(f"{self.path}.lock")):
            _shared_file(path)
        # adaptive mode counts nothing in the bucket: its rate is a placeholder
        self.bucket = SQLiteBucket.init_from_file(
            [_rate(limit or 1, period or 1.0, margin)],
            table="requests",
            db_path=str(self.path),
            use_file_lock=True,
        )
        self._file_lock = self.bucket.lock
        self._conn = self.bucket.conn
        self._thread_lock = threading.RLock()  # the connection is shared by this process's threads
        with self.locked():
            self._conn.execute(_STATE_TABLE)
            self._conn.commit()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._thread_lock:
            self._file_lock.acquire(poll_interval=0.002)
            try:
                yield
            finally:
                self._file_lock.release()

    def read(self) -> PacingState:
        with self.locked():
            row = self._conn.execute("SELECT state FROM pacing_state WHERE id = 1").fetchone()
            self._conn.commit()
        return _state_from(row[0] if row else None)

    def update(self, change: Callable[[PacingState], T]) -> T:
        with self.locked():
            row = self._conn.execute("SELECT state FROM pacing_state WHERE id = 1").fetchone()
            state = _state_from(row[0] if row else None)
            result = change(state)
            self._conn.execute("INSERT OR REPLACE INTO pacing_state (id, state) VALUES (1, ?)", (state.to_json(),))
            self._conn.commit()
        return result

    def count(self, start: float, end: float) -> int:
        with self.locked():
            row = self._conn.execute(
                'SELECT COUNT(*) FROM "requests" WHERE item_timestamp >= ? AND item_timestamp <= ?',
                (round(start * 1000), round(end * 1000)),
            ).fetchone()
            self._conn.commit()
        return int(row[0])

    def flush(self) -> None:
        with self.locked():
            self.bucket.flush()
            self._conn.execute("DELETE FROM pacing_state")
            self._conn.commit()

    def close(self) -> None:
        with self._thread_lock:
            super().close()


# -- across hosts: Redis ----------------------------------------------------------------------------


class RedisStore(BudgetStore):
    """The budget in Redis: ``outreach:pacing:<vendor>-<hash>:requests`` (the bucket's sorted
    set) and ``...:state`` (the record, JSON)."""

    kind = "redis"

    def __init__(self, client: Any, name: str, limit: int | None, period: float | None, margin: float) -> None:
        super().__init__(name, margin)
        from pyrate_limiter import RedisBucket

        self.client = client
        prefix = f"outreach:pacing:{name}"
        self.bucket_key = f"{prefix}:requests"
        self.state_key = f"{prefix}:state"
        self.bucket = RedisBucket.init([_rate(limit or 1, period or 1.0, margin)], client, self.bucket_key)

    def read(self) -> PacingState:
        return _state_from(self.client.get(self.state_key))

    def update(self, change: Callable[[PacingState], T]) -> T:
        def transaction(pipe: Any) -> T:
            state = _state_from(pipe.get(self.state_key))
            result = change(state)
            pipe.multi()
            pipe.set(self.state_key, state.to_json(), px=REDIS_TTL_MS)
            return result

        return self.client.transaction(transaction, self.state_key, value_from_callable=True)

    def count(self, start: float, end: float) -> int:
        return int(self.client.zcount(self.bucket_key, round(start * 1000), round(end * 1000)))

    def flush(self) -> None:
        self.client.delete(self.bucket_key, self.state_key)

    def _leak(self, now: float) -> None:
        super()._leak(now)
        self.client.pexpire(self.bucket_key, REDIS_TTL_MS)


# -- in the process: memory ---------------------------------------------------------------------------


class LocalStore(BudgetStore):
    """The budget in this process alone: the window log in pyrate-limiter's ``InMemoryBucket``,
    the record in memory; times are ``time.monotonic`` seconds."""

    kind = "local"

    def __init__(self, limit: int | None, period: float | None, margin: float) -> None:
        super().__init__("process", margin)
        from pyrate_limiter import InMemoryBucket

        # adaptive mode counts nothing in the bucket: its rate is a placeholder
        self.bucket = InMemoryBucket([_rate(limit or 1, period or 1.0, margin)])
        self._lock = threading.RLock()
        self._state = PacingState()

    def now(self) -> float:
        return time.monotonic()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def read(self) -> PacingState:
        with self._lock:
            return dataclasses.replace(self._state)

    def update(self, change: Callable[[PacingState], T]) -> T:
        with self._lock:
            state = dataclasses.replace(self._state)
            result = change(state)
            self._state = state
        return result

    def count(self, start: float, end: float) -> int:
        with self._lock:
            starts = self.bucket.items
            first = bisect.bisect_left(starts, round(start * 1000), key=_timestamp)
            return bisect.bisect_right(starts, round(end * 1000), key=_timestamp) - first

    def flush(self) -> None:
        with self._lock:
            self.bucket.flush()
            self._state = PacingState()


def _timestamp(item: Any) -> int:
    return item.timestamp


def check_spec(spec: BudgetSpec) -> None:
    """:raises ConnectionConfigError: ``spec`` names Redis and the redis provider is missing."""
    import importlib.util

    if spec.kind == "redis" and importlib.util.find_spec("airflow.providers.redis") is None:
        raise ConnectionConfigError(
            f"extra 'redis_conn_id' names {spec.location!r}, but the redis provider is not installed: "
            "pip install 'airflow-provider-outreach[redis]'"
        )


def _redis_client(conn_id: str) -> Any:
    check_spec(BudgetSpec("redis", conn_id))
    from airflow.providers.common.compat.sdk import AirflowNotFoundException
    from airflow.providers.redis.hooks.redis import RedisHook

    try:
        return RedisHook(redis_conn_id=conn_id).get_conn()
    except AirflowNotFoundException:
        raise ConnectionConfigError(f"extra 'redis_conn_id': there is no Airflow connection {conn_id!r}") from None


def open_store(spec: BudgetSpec, name: str, limit: int | None, period: float | None, margin: float) -> BudgetStore:
    """Open the store ``spec`` names for the key called ``name`` (see :func:`budget_name`).

    :raises ConnectionConfigError: ``redis_conn_id`` set without the redis provider, or
        naming no connection.
    """
    if spec.kind == "redis":
        return RedisStore(_redis_client(spec.location), name, limit, period, margin)
    return FileStore(Path(spec.location), name, limit, period, margin)


def describe(store: BudgetStore) -> str:
    """Where a store lives, for logs (no key)."""
    if isinstance(store, FileStore):
        return f"{store.path}"
    return f"Redis ({store.state_key})"
