"""Free the worker slot until a rate limit's reset: the one way operators and transfers wait
for a quota, on the triggerer."""

from __future__ import annotations

from typing import Any, NoReturn


def defer_until_reset(
    operator: Any, context: Any, wait: float, why: str, method_name: str = "execute_resume"
) -> NoReturn:
    """Defer ``operator`` for ``wait`` seconds (and one more); Airflow then calls
    ``method_name(context, event, **kwargs)`` in the same try. Below Airflow 3.3 (no task
    state store) the kwargs carry the progress kept in the operator's stand-in store
    (:mod:`airflow_provider_outreach.core.task_state`)."""
    from datetime import datetime, timedelta, timezone

    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    from airflow_provider_outreach.core.task_state import deferral_kwargs

    resume_at = datetime.now(timezone.utc) + timedelta(seconds=wait + 1)
    operator.log.warning("%s: deferring until %s instead of holding a worker slot", why, resume_at.isoformat())
    operator.defer(
        trigger=DateTimeTrigger(moment=resume_at), method_name=method_name, kwargs=deferral_kwargs(operator, context)
    )
    raise AssertionError("defer() returned")  # pragma: no cover  (defer always raises TaskDeferred)
