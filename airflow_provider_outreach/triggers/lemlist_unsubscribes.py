"""Watches lemlist's team-wide suppression list from the triggerer and emits the records
that appear in it, for an ``AssetWatcher`` (Airflow 3.0+)."""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.triggers import BaseEventTrigger  # BaseTrigger below 3.0
from airflow.triggers.base import TriggerEvent

from airflow_provider_outreach.core.retry import Action, decide
from airflow_provider_outreach.exceptions import InvalidInputError, InvalidResponseError
from airflow_provider_outreach.hooks.lemlist import UNSUBSCRIBE_LIST, UNSUBSCRIBE_PAGE_MAX, LemlistHook
from airflow_provider_outreach.triggers import polling_hook

if TYPE_CHECKING:
    from airflow_provider_outreach.core.transport import AsyncTransport

#: the sources lemlist gives a suppression record
LEMLIST_SOURCES = ("api", "bounced", "lead", "user", "abuse")
#: the source of the suppressions this provider itself makes: emitting them would echo
OWN_SOURCE = "api"
#: records re-read before the end the last poll found: they anchor the read in known territory
OVERLAP = 20
#: records each further page of one read repeats from the page before, to join the two
PAGE_OVERLAP = 10
#: ids of the list's last records kept in the persisted cursor (about 25 bytes each)
RECENT_IDS = 500
#: records in one event at most
EVENT_RECORDS = 100
#: without a persisted cursor, a start emits again the records created this long before it
RESTART_OVERLAP = 3600.0
#: longest wait between attempts after a failure no retry cures
MAX_ERROR_WAIT = 900.0
#: asset state store key of the cursor
CURSOR_KEY = "lemlist_unsubscribe_cursor"
#: reads of the list in a row that may find it moved under them before the poll gives up
READ_ATTEMPTS = 3
#: once new records were found away from the end, the list is also read whole this often (s)
WHOLE_READ_EVERY = 3600.0
_FIELDS = ("_id", "value", "source", "createdAt")


class LemlistUnsubscribeEventTrigger(BaseEventTrigger):
    """Emit the records that join lemlist's team-wide suppression list
    (``GET /v2/unsubscribes/variables``), polled every ``poll_interval`` seconds.

    Each event's payload is ``{"lemlist_conn_id", "records": [{"_id", "value", "source",
    "createdAt"}, ...]}`` with at most 100 records, in list order; a larger burst is split
    over several events, one per poll. (Airflow queues one run per asset: events that land
    together can meet the scheduler creating a run, and on a metadata database without row
    locks, SQLite, the later ones then wait for the next event. One event per poll leaves
    the scheduler a poll interval to create each run.) The cursor is saved only once every
    record it covers went out. A record is emitted at least once: duplicated events happen (after
    a restart, see below), lost records do not, so what reacts must be idempotent (a
    suppression is). Records whose source is not in ``sources`` move the cursor but are not
    emitted.

    **Cursor.** lemlist documents no order for the list. The trigger expects what lemlist
    serves, new records at the end, and checks it on every read instead of relying on it:
    a poll re-reads the last 20 records it knew and everything after them, one request
    while fewer than 80 records are new. The read must start on a known record, hold no
    unknown record before its last known one, and the list may not have grown by more than
    the new records found; otherwise records were removed (offsets shifted) or the order is
    another, and the trigger reads further back, or the whole list (list length / 90
    requests), comparing against every id it has seen, rather than skip anything. The pages
    of one read overlap by 10 records, so a removal between two requests is noticed too.
    What no tail read can see: in a list not kept in creation order, a record inserted
    before the tail while as many are removed in the same interval. So once new records
    have been found away from the end, the list is also read whole every hour (and at
    every start): such a record arrives late, never not at all.

    **Start.** Every start reads the list to its end once (list length / 90 requests) and
    keeps its ids in memory (about 100 bytes per record). Then, by Airflow version:

    * **3.3+**, run by an ``AssetWatcher``: the cursor (the list's length and its last 500
      ids, ~13 KB of JSON) is kept in the asset state store the triggerer hands watcher
      triggers. With no cursor stored (the first start) the trigger begins at the end:
      what exists is the daily sync's work. With one, it emits what joined the list since,
      however long the triggerer was away. The cursor is written one poll interval after the
      events it covers were yielded, once the triggerer has had time to store them, so a
      crash in between repeats those events rather than losing them.
    * **3.0-3.2** (or the trigger run outside a watcher, or one trigger shared by several
      assets): the cursor lives in memory only; every start, the first included, emits
      again the records created in the hour before it (``createdAt``; a record without a
      readable time counts as recent), so what joined while the triggerer was down (up to
      an hour) still arrives, as duplicates of what was already emitted.

    **Failures.** 429s (the asked wait is honoured), 5xx answers and dropped connections
    are polled through, as the campaign-status trigger does, with the polls paced in the
    key's shared budget. A failure no retry cures (a refused key, a failed certificate
    check, a base URL that is not lemlist's, a missing connection) is logged as an error
    and tried again with the connection read afresh, backing off from ``poll_interval`` to
    15 minutes: a watcher outlives its failures. Ending it would not stop it (the triggerer
    starts a watcher that ended again within seconds, in a loop), and one that fails
    silently is worse than one that logs loudly and recovers when the key is fixed.

    The serialized kwargs carry no cursor and no key, so one watcher stays one trigger.

    :param lemlist_conn_id: the lemlist connection.
    :param poll_interval: seconds between polls (a positive, finite number).
    :param sources: the sources whose records are emitted; ``None`` (default): every source
        but ``api``, this provider's own suppressions, which would echo (a source lemlist
        adds later included). Otherwise some of ``api``, ``bounced``, ``lead``, ``user``,
        ``abuse``.
    """

    def __init__(
        self,
        *,
        lemlist_conn_id: str = LemlistHook.default_conn_name,
        poll_interval: float = 60,
        sources: Collection[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(lemlist_conn_id, str) or not lemlist_conn_id:
            raise InvalidInputError(f"lemlist_conn_id must be a connection id, got {lemlist_conn_id!r}")
        self.lemlist_conn_id = lemlist_conn_id
        self.poll_interval = _seconds(poll_interval)
        self.sources = _sources(sources)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"lemlist_conn_id": self.lemlist_conn_id, "poll_interval": self.poll_interval, "sources": self.sources},
        )

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = polling_hook(LemlistHook, self.lemlist_conn_id, self.poll_interval)
        watch: ListWatch | None = None
        store: Any = None
        failures = 0
        backlog: list[dict[str, Any]] = []  # found, not emitted yet: one event per poll
        while True:
            try:
                await hook.aload_connection()
                async with hook.async_client() as client:
                    while True:
                        try:
                            if watch is None:
                                store, stored, fresh = await self._load_cursor()
                                watch, new = await self._start(hook, client, stored, fresh)
                                if store is not None and not new:
                                    await self._save_cursor(store, watch)
                            else:
                                new = await self._poll(hook, client, watch)
                        except ListMovedError as exc:
                            self.log.warning("%s; polling again", exc)
                            await self._pause(self.poll_interval)
                            continue
                        except Exception as exc:
                            decision = decide(exc, max_inline_wait=math.inf)
                            if decision.action is Action.GIVE_UP:
                                raise
                            self.log.warning("lemlist suppression list: %s; polling again", exc)
                            await self._pause(max(self.poll_interval, decision.wait or 0.0))
                            continue
                        failures = 0
                        backlog.extend(self._wanted(new))
                        if backlog:
                            yield self._event(backlog[:EVENT_RECORDS])
                            del backlog[:EVENT_RECORDS]
                        await self._pause(self.poll_interval)
                        if store is not None and not backlog:  # a restart emits again what is not out yet
                            await self._save_cursor(store, watch)
            except Exception as exc:
                failures += 1
                wait = max(self.poll_interval, min(MAX_ERROR_WAIT, self.poll_interval * 2 ** min(failures - 1, 30)))
                self.log.error(
                    "lemlist suppression list (connection %r) cannot be read: %s; no opt-out made in lemlist "
                    "is emitted until this is fixed; trying again in %.0f s (failure %d in a row)",
                    self.lemlist_conn_id,
                    exc,
                    wait,
                    failures,
                )
                await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _start(
        self, hook: LemlistHook, client: AsyncTransport, stored: ListCursor | None, fresh: bool
    ) -> tuple[ListWatch, list[dict[str, Any]]]:
        """Read the whole list; what to emit follows from the stored cursor, ``fresh`` when
        the store has never held one."""
        reading = await self._read(hook, client, 0)
        if stored is not None:
            outcome = reconcile(reading, stored.length, set(stored.recent), complete=False)
            if outcome.duplicates:
                self.log.warning(
                    "lemlist's suppression list changed in a way its cursor cannot place (records removed "
                    "or not in creation order); every record not among the %d last known is emitted again",
                    len(stored.recent),
                )
            new = outcome.records
            self.log.info(
                "lemlist suppression list: %d records, %d new since the stored cursor", reading.length, len(new)
            )
        elif fresh:
            new = []
            self.log.info("lemlist suppression list: %d records; watching from its end", reading.length)
        else:
            since = time.time() - RESTART_OVERLAP
            new = [r for r in reading.records if _created_after(r, since)]
            self.log.info(
                "lemlist suppression list: %d records; no stored cursor, so the %d created in the last %.0f s "
                "are emitted again",
                reading.length,
                len(new),
                RESTART_OVERLAP,
            )
        watch = ListWatch(saved=stored)
        watch.update(reading)
        return watch, new

    async def _poll(self, hook: LemlistHook, client: AsyncTransport, watch: ListWatch) -> list[dict[str, Any]]:
        """Read from a little before the known end; further back while the read is not anchored."""
        offset = max(0, watch.cursor.length - OVERLAP)
        if watch.out_of_order and time.monotonic() - watch.whole_read_at >= WHOLE_READ_EVERY:
            offset = 0
        while True:
            reading = await self._read(hook, client, offset)
            outcome = reconcile(reading, watch.cursor.length, watch.known, complete=True)
            if outcome.action is ReadAction.EARLIER:
                self.log.info("lemlist suppression list shrank past the re-read records; reading further back")
                offset = max(0, offset - (UNSUBSCRIBE_PAGE_MAX - PAGE_OVERLAP))
            elif outcome.action is ReadAction.WHOLE:
                self.log.info("lemlist suppression list did not only grow at its end; reading it whole")
                offset = 0
            else:
                if outcome.out_of_order and not watch.out_of_order:
                    self.log.warning(
                        "lemlist's suppression list holds new records away from its end: each change now costs "
                        "a read of the whole list, and it is read whole every %.0f s as well",
                        WHOLE_READ_EVERY,
                    )
                watch.out_of_order |= outcome.out_of_order
                watch.update(reading)
                return outcome.records

    async def _read(self, hook: LemlistHook, client: AsyncTransport, offset: int) -> ListReading:
        """The records from ``offset`` to the end; a list that moved under the read is read again."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            records: list[dict[str, Any]] = []
            at = offset
            try:
                while True:
                    page = [_record(r) for r in await hook.alist_unsubscribes(client, at, UNSUBSCRIBE_PAGE_MAX)]
                    records.extend(_after_seam(records, page) if records else page)
                    if len(page) < UNSUBSCRIBE_PAGE_MAX:
                        return ListReading(offset, records)
                    at += UNSUBSCRIBE_PAGE_MAX - PAGE_OVERLAP
            except ListMovedError:
                self.log.info("lemlist suppression list moved during a read (attempt %d); reading again", attempt)
        raise ListMovedError(f"lemlist's suppression list moved during {READ_ATTEMPTS} reads in a row")

    def _wanted(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records to emit: of a source emitted, with a value."""
        wanted = []
        for record in records:
            if not self._emits(record.get("source")):
                continue
            if not isinstance(record.get("value"), str) or not record["value"]:
                self.log.warning("lemlist suppression record %s has no value; not emitted", record["_id"])
                continue
            wanted.append(record)
        return wanted

    def _event(self, records: list[dict[str, Any]]) -> TriggerEvent:
        return TriggerEvent({"lemlist_conn_id": self.lemlist_conn_id, "records": records})

    def _emits(self, source: Any) -> bool:
        return source != OWN_SOURCE if self.sources is None else source in self.sources

    # -- the persisted cursor (Airflow 3.3+) ---------------------------------------------

    async def _load_cursor(self) -> tuple[Any, ListCursor | None, bool]:
        """The asset state store (None: none to use), the cursor stored there for this
        connection (None: none usable) and whether the store never held one."""
        store = getattr(self, "asset_state_store", None)  # Airflow 3.3+, watcher triggers only
        if store is None:
            return None, None, False
        try:
            value = await store.aget(CURSOR_KEY)
        except ValueError as exc:  # e.g. one trigger watched by several assets: no single store
            self.log.warning("the asset state store cannot be used (%s); the cursor is kept in memory only", exc)
            return None, None, False
        if value is None:
            return store, None, True
        try:
            cursor = ListCursor.from_json(value)
        except (TypeError, ValueError, KeyError) as exc:
            self.log.warning("the stored cursor is unusable (%s); replacing it", exc)
            return store, None, False
        if value.get("lemlist_conn_id") != self.lemlist_conn_id:
            self.log.warning("the stored cursor belongs to connection %r; replacing it", value["lemlist_conn_id"])
            return store, None, False
        return store, cursor, False

    async def _save_cursor(self, store: Any, watch: ListWatch) -> None:
        if watch.saved == watch.cursor:
            return
        try:
            await store.aset(CURSOR_KEY, watch.cursor.to_json(self.lemlist_conn_id))
        except Exception as exc:  # kept in memory; written again after the next poll
            self.log.warning("the cursor could not be stored (%s); trying again after the next poll", exc)
            return
        watch.saved = ListCursor(watch.cursor.length, list(watch.cursor.recent))


# -- what a read found, and what it means ----------------------------------------------------


class ListMovedError(Exception):
    """The list changed between two pages of one read more than their overlap can join."""


@dataclass(frozen=True)
class ListReading:
    """The records of the list from ``offset`` to its end, as one read found them."""

    offset: int
    records: list[dict[str, Any]]

    @property
    def length(self) -> int:
        return self.offset + len(self.records)


@dataclass
class ListCursor:
    """Where a watch stands: the list's length at the last read and the ids of its last records."""

    length: int = 0
    recent: list[str] = field(default_factory=list)

    def to_json(self, conn_id: str) -> dict[str, Any]:
        return {"version": 1, "lemlist_conn_id": conn_id, "length": self.length, "recent": self.recent}

    @classmethod
    def from_json(cls, value: Any) -> ListCursor:
        if value["version"] != 1:
            raise ValueError(f"unknown cursor version {value['version']!r}")
        length, recent = value["length"], value["recent"]
        if not isinstance(length, int) or length < 0 or not isinstance(recent, list):
            raise ValueError("not a cursor")
        if not all(isinstance(i, str) for i in recent):
            raise ValueError("not a cursor")
        return cls(length, list(recent))


@dataclass
class ListWatch:
    """The cursor, plus every id this trigger has seen (complete once it read the whole list)."""

    cursor: ListCursor = field(default_factory=ListCursor)
    known: set[str] = field(default_factory=set)
    #: the cursor last written to the store
    saved: ListCursor | None = None
    #: new records were found away from the list's end
    out_of_order: bool = False
    #: when the whole list was last read (monotonic seconds)
    whole_read_at: float = 0.0

    def update(self, reading: ListReading) -> None:
        ids = [r["_id"] for r in reading.records]
        if reading.offset == 0:
            self.known = set(ids)
            self.whole_read_at = time.monotonic()
            recent = ids
        else:
            self.known.update(ids)
            in_read = set(ids)
            recent = [i for i in self.cursor.recent if i not in in_read] + ids
        self.cursor = ListCursor(reading.length, recent[-RECENT_IDS:])


class ReadAction(enum.Enum):
    EMIT = "emit"  # the read holds every new record
    EARLIER = "earlier"  # the read must start further back
    WHOLE = "whole"  # the whole list must be read


@dataclass(frozen=True)
class Reconciled:
    action: ReadAction
    records: list[dict[str, Any]] = field(default_factory=list)
    #: records emitted may include old ones the cursor could not place
    duplicates: bool = False
    #: new records were found away from the end
    out_of_order: bool = False


def reconcile(reading: ListReading, length: int, known: set[str], *, complete: bool) -> Reconciled:
    """Which records of ``reading`` are new, given the list's ``length`` at the last read and
    the ids ``known`` then (all of them when ``complete``, else only its last ones).

    New records are expected at the end. Read from an offset, the records up to the last
    known one must all be known, and the list may have grown by no more than the new
    records after it; otherwise the read must start earlier (nothing known in it) or cover
    the whole list. Read whole against a complete memory, any unknown record is new,
    wherever it stands. Read whole against only the last ids (a restart), unknown records
    before the first known one are taken as older; if the rest does not fit, every unknown
    record is emitted (``duplicates``).
    """
    records = reading.records
    if reading.offset == 0 and complete:
        new = [r for r in records if r["_id"] not in known]
        return Reconciled(ReadAction.EMIT, new, out_of_order=bool(new) and new != records[len(records) - len(new) :])
    hits = [i for i, r in enumerate(records) if r["_id"] in known]
    if not hits:
        if reading.offset > 0:
            return Reconciled(ReadAction.EARLIER)
        return Reconciled(ReadAction.EMIT, list(records), duplicates=bool(records) and length > 0)
    first, last = (0 if complete else hits[0]), hits[-1]
    new = records[last + 1 :]
    fits = reading.length - len(new) <= length and all(r["_id"] in known for r in records[first : last + 1])
    if fits:
        return Reconciled(ReadAction.EMIT, new)
    if complete:
        return Reconciled(ReadAction.WHOLE)
    return Reconciled(ReadAction.EMIT, [r for r in records if r["_id"] not in known], duplicates=True)


def _after_seam(records: list[dict[str, Any]], page: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The part of ``page`` after the records read before it. The page starts
    ``PAGE_OVERLAP`` records before their end: removals between the two requests move that
    start to the left, one insertion to the right; more than that cannot be joined."""
    read = {r["_id"] for r in records[-PAGE_OVERLAP - 1 :]}
    seam = 0
    while seam < len(page) and page[seam]["_id"] in read:
        seam += 1
    if (page and seam == 0) or any(r["_id"] in read for r in page[seam:]):
        raise ListMovedError("lemlist's suppression list moved between two pages of one read")
    return page[seam:]


def _record(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("_id"), str) or not raw["_id"]:
        raise InvalidResponseError(
            vendor="lemlist", method="GET", path=UNSUBSCRIBE_LIST, message="a suppression record without an _id"
        )
    return {k: raw.get(k) for k in _FIELDS}


def _created_after(record: dict[str, Any], since: float) -> bool:
    """Whether the record was created after ``since`` (epoch seconds); unreadable times count as recent."""
    try:
        created = datetime.fromisoformat(str(record["createdAt"]).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return True
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created.timestamp() >= since


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidInputError(f"poll_interval must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _sources(value: Collection[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise InvalidInputError(f"sources must be a list of lemlist sources, got {value!r}")
    unknown = sorted(str(s) for s in value if s not in LEMLIST_SOURCES)
    if unknown or not value:
        raise InvalidInputError(f"sources must be some of {list(LEMLIST_SOURCES)}, got {sorted(map(str, value))!r}")
    return sorted(set(value))
