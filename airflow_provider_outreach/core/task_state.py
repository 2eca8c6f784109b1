"""Airflow's task state store (shared by every try of one task instance), or a stand-in."""

from __future__ import annotations

from typing import Any


class LocalStateStore:
    """Stands in for Airflow's task state store when an operator runs outside a task."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self._values[key] = value

    def delete(self, key: str) -> None:
        self._values.pop(key, None)


def task_state_store(operator: Any, context: Any) -> Any:
    """The task state store of ``context``, or an in-memory one kept on the operator."""
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is None:
        store = operator.__dict__.setdefault("_local_state_store", LocalStateStore())
    return store
