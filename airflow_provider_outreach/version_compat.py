"""Which Airflow runs this package: flags for the code that differs between versions.

Computed from the installed version as Airflow's own providers do. Code that runs in tasks
imports what moved between versions through ``airflow.providers.common.compat``; the flags
mark what an older version lacks, and the few classes every DAG parse loads are imported here.
"""

from __future__ import annotations


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    from airflow import __version__
    from packaging.version import Version

    airflow_version = Version(__version__)
    return airflow_version.major, airflow_version.minor, airflow_version.micro


_VERSION = get_base_airflow_version_tuple()
AIRFLOW_V_3_0_PLUS: bool = _VERSION >= (3, 0, 0)
AIRFLOW_V_3_1_PLUS: bool = _VERSION >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS: bool = _VERSION >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS: bool = _VERSION >= (3, 3, 0)

# The base classes every DAG parse loads, from where this version keeps them. The code that
# runs in tasks takes the rest from ``airflow.providers.common.compat``; on the parse path its
# lazy lookup table would cost more than the classes themselves.
if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowException
else:
    from airflow.exceptions import AirflowException
    from airflow.hooks.base import BaseHook
if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue, task
else:
    from airflow.decorators import task
    from airflow.models.baseoperator import BaseOperator
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import AirflowFailException
else:
    from airflow.configuration import conf
    from airflow.exceptions import AirflowFailException

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "PokeReturnValue",
    "conf",
    "task",
]
