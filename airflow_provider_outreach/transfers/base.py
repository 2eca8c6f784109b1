"""What both copies share: run, pause for a rate-limit reset, resume where they stopped.

A copy subclasses :class:`ResumableCopyOperator`, names its progress (a dataclass of
:class:`CopyProgress`) and writes :meth:`~ResumableCopyOperator.copy`, which raises
:class:`QuotaPause` when the rate limit asks for a wait longer than ``max_inline_wait``.
The base saves the progress in the task state store (carried in the deferral's kwargs
below Airflow 3.3), frees the worker slot until the reset, and on resume hands the saved
progress back to ``copy``; it clears the progress when the task ends, whichever way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, NoReturn, TypeVar

from airflow_provider_outreach.core.task_state import restore_carried_state, task_state_store
from airflow_provider_outreach.transfers import checked_table_name
from airflow_provider_outreach.version_compat import AirflowException, BaseOperator


@dataclass
class CopyProgress:
    """What a copy has done so far; saved while the task waits for a rate-limit reset."""

    requests: int = 0

    def saved(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def restored(cls, saved: dict[str, Any]) -> CopyProgress:
        return cls(**saved)


P = TypeVar("P", bound=CopyProgress)


class QuotaPause(Exception):
    """The rate limit asks for ``wait`` seconds, longer than the worker sleeps: defer."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the rate limit asks for {wait:.0f} s")
        self.wait = wait


class ResumableCopyOperator(BaseOperator, Generic[P]):
    """Copy a vendor's list into a warehouse table, pausing on the triggerer for a rate-limit
    reset and resuming where it stopped.

    :param sql_conn_id: common-sql connection of the warehouse.
    :param table: target table, ``name`` or ``schema.name``.
    :param max_inline_wait: longest rate-limit wait slept in the worker, in seconds (templated).
    """

    #: the task state store key of the saved progress
    PROGRESS_KEY: ClassVar[str]
    #: the progress this copy keeps
    PROGRESS: ClassVar[type[CopyProgress]]
    ui_color = "#e7f0fd"

    def __init__(self, *, sql_conn_id: str, table: str, max_inline_wait: float | str = 60.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.max_inline_wait = max_inline_wait

    # -- what a copy provides ------------------------------------------------------------------

    def start(self) -> P:
        """The progress of a copy that has done nothing yet (inputs checked here)."""
        return self.PROGRESS()

    def copy(self, progress: P) -> dict[str, Any]:
        """Go on from ``progress`` (updated as it goes); the task's result.

        :raises QuotaPause: the rate limit asks for a longer wait than ``max_inline_wait``.
        """
        raise NotImplementedError

    def save(self, store: Any, progress: P) -> None:
        store.set(self.PROGRESS_KEY, progress.saved())

    def load(self, store: Any) -> P | None:
        saved = store.get(self.PROGRESS_KEY)
        return self.PROGRESS.restored(saved) if saved else None

    def clear(self, store: Any) -> None:
        store.delete(self.PROGRESS_KEY)

    # -- the skeleton --------------------------------------------------------------------------

    @property
    def inline_wait(self) -> float:
        """``max_inline_wait`` as rendered, in seconds."""
        from airflow_provider_outreach.core.retry import inline_wait_seconds

        return inline_wait_seconds(self.max_inline_wait)

    def execute(self, context: Any) -> dict[str, Any]:
        checked_table_name(self.table)
        progress = self.start()
        self.clear(task_state_store(self, context))
        return self._run(context, progress)

    def execute_resume(
        self, context: Any, event: Any = None, carried_state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Continue after a rate-limit reset from the saved progress."""
        restore_carried_state(self, context, carried_state, required=True)
        progress = self.load(task_state_store(self, context))
        if progress is None:
            raise AirflowException(f"{self.task_id}: cannot resume, the saved progress is missing")
        self.log.info("Resuming after the rate-limit reset: %s", progress)
        return self._run(context, progress)

    def _run(self, context: Any, progress: P) -> dict[str, Any]:
        from airflow_provider_outreach.core.deferral import defer_until_reset

        store = task_state_store(self, context)
        try:
            result = self.copy(progress)
        except QuotaPause as pause:
            self.save(store, progress)
            defer_until_reset(self, context, pause.wait, f"the rate limit is used up ({progress})")
        except BaseException:
            self.clear(store)
            raise
        self.clear(store)
        return result


def pause_or_raise(exc: BaseException, max_inline_wait: float) -> NoReturn:
    """Raise :class:`QuotaPause` when ``exc`` is a rate-limit wait too long to sleep in the
    worker; else ``exc`` itself."""
    from airflow_provider_outreach.transfers import quota_wait

    wait = quota_wait(exc, max_inline_wait)
    if wait is None:
        raise exc
    raise QuotaPause(wait) from None
