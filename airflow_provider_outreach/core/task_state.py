"""Airflow's task state store (shared by every try of one task instance), or a stand-in.

Airflow has the store from 3.3 on. Below 3.3, and outside a task, an in-memory stand-in kept on
the operator takes its place; it lives as long as the worker's copy of the operator, so what it
holds travels through a deferral in the deferral's kwargs (:func:`deferral_kwargs`) and is put
back by the resumed method (:func:`restore_carried_state`). A new try starts with an empty one.
"""

from __future__ import annotations

from typing import Any

#: the keyword argument of a resumed method that brings back the stand-in store's values
CARRIED_STATE = "carried_state"


class LocalStateStore:
    """Stands in for Airflow's task state store where there is none (below 3.3, outside a task)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self._values[key] = value

    def delete(self, key: str) -> None:
        self._values.pop(key, None)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._values)


def task_state_store(operator: Any, context: Any) -> Any:
    """The task state store of ``context``, or an in-memory one kept on the operator."""
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is None:
        store = operator.__dict__.setdefault("_local_state_store", LocalStateStore())
    return store


def deferral_kwargs(operator: Any, context: Any) -> dict[str, Any] | None:
    """The kwargs a deferral carries to the resumed method: the stand-in store's values when
    Airflow keeps no task state store (they would be lost with the worker); else none."""
    store = task_state_store(operator, context)
    return {CARRIED_STATE: store.snapshot()} if isinstance(store, LocalStateStore) else None


def restore_carried_state(operator: Any, context: Any, carried: dict[str, Any] | None, *, required: bool) -> None:
    """Put back what :func:`deferral_kwargs` carried through the deferral.

    :param required: the resume needs it (no audit table holds the progress).
    :raises AirflowException: Airflow keeps no task state store and the kwargs did not come
        back, so the progress is lost: the task fails instead of starting over (which after
        a quota wait would meet the same quota again, and again).
    """
    store = task_state_store(operator, context)
    if carried is None:
        if required and isinstance(store, LocalStateStore):
            from airflow.providers.common.compat.sdk import AirflowException

            raise AirflowException(
                f"{operator.task_id}: cannot resume: the progress this Airflow (no task state store) keeps "
                "in the deferral's kwargs did not come back (dag.test() below Airflow 3.3 drops them)"
            )
        return
    for key, value in carried.items():
        store.set(key, value)
