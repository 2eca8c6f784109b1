"""Run DAGs for real in tests: ``dag.test()`` against the SQLite metadata DB of the session."""

from __future__ import annotations

from typing import Any

import pendulum


def sync_dag(dag) -> None:
    """Serialize a DAG defined in a test module so ``dag.test()`` can run it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder="/nonexistent", collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def run_dag(dag, **kwargs: Any):
    """Run ``dag`` end to end; returns the DagRun (check ``state``: dag.test() does not raise)."""
    sync_dag(dag)
    return dag.test(**kwargs)


def xcom(dag_run, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """An XCom value of a finished run, read from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

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
        return None if row is None else XComModel.deserialize_value(row)


def task_states(dag_run) -> dict[str, str]:
    return {
        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti.state
        for ti in dag_run.get_task_instances()
    }


def new_dag(dag_id: str, **kwargs: Any):
    from airflow.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, **kwargs)
