"""Fixtures of the operator tests."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, tmp_path, monkeypatch):
    """A common-sql connection id (``audit_db``) on SQLite or on the real PostgreSQL server."""
    if request.param == "sqlite":
        monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")}))
    else:
        monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", request.getfixturevalue("postgres_db").airflow_conn_json())
    return "audit_db"
