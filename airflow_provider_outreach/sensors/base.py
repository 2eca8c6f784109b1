"""Shared base of the campaign-status sensors."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from airflow_provider_outreach.campaign_wait import Verdict, judge
from airflow_provider_outreach.exceptions import NotFoundError
from airflow_provider_outreach.hooks.base import OutreachHook
from airflow_provider_outreach.version_compat import BaseSensorOperator, PokeReturnValue, conf


def _status_set(hook_class: type[OutreachHook], name: str, values: Iterable[str] | str) -> frozenset[str]:
    if isinstance(values, str):
        values = [values]
    chosen = frozenset(str(getattr(v, "value", v)) for v in values)
    known = frozenset(s.value for s in hook_class.campaign_statuses)
    unknown = chosen - known
    if unknown:
        raise ValueError(f"{name}: {sorted(unknown)} are not {hook_class.vendor} campaign statuses ({sorted(known)})")
    return chosen


class OutreachCampaignStatusSensor(BaseSensorOperator):
    """Wait until a campaign's status is one of ``target_statuses``.

    Fails at once, with the status in the message, when the campaign reaches one of
    ``failure_statuses`` (by default the vendor's terminal statuses that are not targets)
    or does not exist. Returns (XCom) ``{"campaign_id", "status"}``.

    :param campaign_id: the campaign (templated).
    :param target_statuses: statuses that end the wait (default ``{"draft"}``).
    :param failure_statuses: statuses that fail the task at once.
    :param deferrable: poke once, then wait on the triggerer instead of a worker slot
        (default: ``[operators] default_deferrable``).
    """

    hook_class: ClassVar[type[OutreachHook]]
    default_target_statuses: ClassVar[frozenset[str]] = frozenset({"draft"})
    ui_color = "#e7f0fd"

    def __init__(
        self,
        *,
        campaign_id: str,
        target_statuses: Iterable[str] | str | None = None,
        failure_statuses: Iterable[str] | str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.target_statuses = _status_set(
            self.hook_class,
            "target_statuses",
            self.default_target_statuses if target_statuses is None else target_statuses,
        )
        if not self.target_statuses:
            raise ValueError("target_statuses must name at least one status")
        if failure_statuses is None:
            self.failure_statuses = self.hook_class.terminal_statuses - self.target_statuses
        else:
            self.failure_statuses = _status_set(self.hook_class, "failure_statuses", failure_statuses)
        if self.target_statuses & self.failure_statuses:
            raise ValueError(
                f"{sorted(self.target_statuses & self.failure_statuses)} are both target and failure statuses"
            )
        self.deferrable = deferrable

    @property
    def conn_id(self) -> str:
        return getattr(self, self.hook_class.conn_name_attr)

    def _where(self) -> str:
        return f"{self.hook_class.vendor} campaign {self.campaign_id}"

    def poke(self, context: Any) -> PokeReturnValue:
        from airflow.providers.common.compat.sdk import AirflowFailException

        hook = self.hook_class(self.conn_id)
        try:
            campaign = hook.get_campaign(self.campaign_id)
        except NotFoundError as exc:
            raise AirflowFailException(hook.not_found_message(exc, self.campaign_id)) from None
        verdict, message = judge(
            self._where(), str(campaign.get("status")), self.target_statuses, self.failure_statuses
        )
        if verdict is Verdict.FAILED:
            raise AirflowFailException(message)
        self.log.info(message)
        if verdict is Verdict.REACHED:
            return PokeReturnValue(True, {"campaign_id": self.campaign_id, "status": str(campaign.get("status"))})
        return PokeReturnValue(False)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        from airflow_provider_outreach.triggers.campaign_status import CampaignStatusTrigger

        self.defer(
            trigger=CampaignStatusTrigger(
                hook_class=f"{self.hook_class.__module__}.{self.hook_class.__qualname__}",
                conn_id=self.conn_id,
                campaign_id=self.campaign_id,
                target_statuses=sorted(self.target_statuses),
                failure_statuses=sorted(self.failure_statuses),
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Turn the trigger's event into the task's result."""
        from airflow.providers.common.compat.sdk import (
            AirflowException,
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )

        if not event:
            raise AirflowException(f"{self._where()}: the trigger ended without an event")
        if event["status"] == "success":
            self.log.info(event["message"])
            return {"campaign_id": event["campaign_id"], "status": event["campaign_status"]}
        if event["status"] == "timeout":
            if self.soft_fail:
                raise AirflowSkipException(event["message"])
            raise AirflowSensorTimeout(event["message"])
        raise AirflowFailException(event["message"])
