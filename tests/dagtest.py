"""Run DAGs for real in tests: ``dag.test()`` against the SQLite metadata DB of the session.

The one place where the tests meet what differs between Airflow versions in parsing and
running DAGs: where ``DagBag`` lives (``airflow.dag_processing.dagbag`` from 3.2, before that
``airflow.models.dagbag``), how a DAG gets to the DB with its assets (``sync_bag_to_db`` from 3.1,
``DagBag.sync_to_db`` on 3.0, ``DAG.sync_to_db`` on 2.11), the run's date
argument (``execution_date`` on 2.11) and where XComs are stored.
"""

from __future__ import annotations

from typing import Any

import pendulum

from airflow_provider_outreach.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS


def dag_bag(folder: str, **kwargs: Any):
    """A ``DagBag`` of ``folder``, parsed as the DAG processor does."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=folder, **kwargs)


def sync_dag(dag) -> None:
    """Write a DAG to the DB as the DAG processor does (its assets registered and active)."""
    if not AIRFLOW_V_3_0_PLUS:
        dag.sync_to_db()
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = dag_bag("/nonexistent", collect_dags=False)
    bag.bag_dag(dag)
    if not AIRFLOW_V_3_1_PLUS:
        dag.relative_fileloc = dag.relative_fileloc or dag.fileloc  # as 3.0's DagBag sets it
        bag.sync_to_db("dags-folder", None)
        return
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    else:
        from airflow.models.dagbag import sync_bag_to_db
    sync_bag_to_db(bag, "dags-folder", None)


def run_dag(dag, **kwargs: Any):
    """Run ``dag`` end to end; returns the DagRun (check ``state``: dag.test() does not raise)."""
    sync_dag(dag)
    if not AIRFLOW_V_3_0_PLUS and "logical_date" in kwargs:
        kwargs["execution_date"] = kwargs.pop("logical_date")
    return dag.test(**kwargs)


def xcom(dag_run, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """An XCom value of a finished run, read from the metadata DB."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel
    else:
        from airflow.models.xcom import XCom as XComModel

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
                XComModel.map_index == map_index,
            )
        ).first()
        if row is None:
            return None
        # 2.11's XCom rows are deserialized as they load
        return XComModel.deserialize_value(row) if AIRFLOW_V_3_0_PLUS else row.value


def task_states(dag_run) -> dict[str, str]:
    return {
        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti.state
        for ti in dag_run.get_task_instances()
    }


def new_dag(dag_id: str, **kwargs: Any):
    from airflow.providers.common.compat.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, **kwargs)
