"""The real-server fixtures of ``tests.servers``: PostgreSQL and Redis, through Airflow's own hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent


# -- PostgreSQL ------------------------------------------------------------------------------------


def test_postgres_server_is_real_and_reached_over_tcp(postgres_server):
    assert postgres_server.uri == (
        f"postgresql://{postgres_server.user}:{postgres_server.password}"
        f"@127.0.0.1:{postgres_server.port}/{postgres_server.dbname}"
    )
    with postgres_server.connect() as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        addr, port = conn.execute("SELECT inet_server_addr()::text, inet_server_port()").fetchone()
    assert version.startswith("PostgreSQL 18")
    assert (addr, port) == ("127.0.0.1/32", postgres_server.port)  # TCP, not a Unix socket
    server = psutil.Process(postgres_server.pid)
    assert server.pid != os.getpid() and server.is_running() and server.name() == "postgres"


def test_postgres_password_is_checked(postgres_server):
    import psycopg

    wrong = postgres_server.uri.replace(f":{postgres_server.password}@", ":wrong@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10).close()


def test_postgres_hook_run_insert_rows_get_records(postgres_db):
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = BaseHook.get_hook(postgres_db.conn_id)
    assert isinstance(hook, PostgresHook)
    assert json.loads(os.environ["AIRFLOW_CONN_OUTREACH_PG"])["schema"] == postgres_db.dbname

    hook.run("CREATE TABLE opt_out (email VARCHAR(10) PRIMARY KEY, source TEXT NOT NULL)")
    hook.insert_rows("opt_out", [("a@x.io", "lemlist"), ("b@x.io", "dialnexa")], target_fields=["email", "source"])
    hook.run(
        "INSERT INTO opt_out (email, source) VALUES (%(email)s, %(source)s)",
        parameters={"email": "c@x.io", "source": "leadlex"},
    )
    assert hook.get_records("SELECT email, source FROM opt_out ORDER BY email") == [
        ("a@x.io", "lemlist"),
        ("b@x.io", "dialnexa"),
        ("c@x.io", "leadlex"),
    ]
    assert hook.get_first("SELECT current_database()") == (postgres_db.dbname,)


def test_postgres_rejects_what_sqlite_forgives(postgres_db):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_db.conn_id)
    hook.run("CREATE TABLE opt_out (email VARCHAR(10) NOT NULL)")
    with pytest.raises(Exception, match=r"value too long for type character varying\(10\)") as excinfo:
        hook.insert_rows("opt_out", [("x" * 11,)], target_fields=["email"])
    sqlstate = getattr(excinfo.value, "sqlstate", None) or getattr(excinfo.value, "pgcode", None)
    assert sqlstate == "22001"  # string_data_right_truncation
    hook.insert_rows("opt_out", [("x" * 10,)], target_fields=["email"])
    assert hook.get_records("SELECT email FROM opt_out") == [("x" * 10,)]


@pytest.mark.parametrize("round_", [1, 2])
def test_postgres_db_is_fresh_for_each_test(postgres_db, round_):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_db.conn_id)
    assert hook.get_records("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'") == []
    hook.run("CREATE TABLE leftover (n INT)")  # would break the other round if the database were shared


# -- Redis -----------------------------------------------------------------------------------------


def test_redis_server_is_a_separate_live_process(redis_server):
    client = redis_server.client()
    server = psutil.Process(redis_server.pid)
    assert redis_server.pid != os.getpid()
    assert server.is_running() and server.status() != psutil.STATUS_ZOMBIE
    assert server.name() == "redis-server"
    assert client.info("server")["process_id"] == redis_server.pid  # the server we talk to is that process
    assert any(c.laddr.port == redis_server.port for c in server.net_connections(kind="tcp4"))
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_redis_client_set_get_incr(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    key = f"test:{uuid.uuid4().hex}"
    assert client.set(key, "opted-out")
    assert client.get(key) == b"opted-out"
    assert client.incr(f"{key}:n") == 1
    assert client.incr(f"{key}:n", 4) == 5
    client.delete(key, f"{key}:n")


def test_redis_hook(redis_server, monkeypatch):
    from airflow.providers.redis.hooks.redis import RedisHook

    monkeypatch.setenv("AIRFLOW_CONN_OUTREACH_REDIS", redis_server.airflow_conn_json())
    conn = RedisHook(redis_conn_id="outreach_redis").get_conn()
    key = f"test:{uuid.uuid4().hex}"
    conn.set(key, "suppressed")
    assert conn.get(key) == b"suppressed"
    assert conn.incr(f"{key}:n") == 1
    assert conn.incr(f"{key}:n") == 2
    assert redis_server.client().get(key) == b"suppressed"  # the same server, seen from another client
    conn.delete(key, f"{key}:n")


@pytest.mark.multiprocess
def test_redis_server_dies_with_a_killed_test_process(tmp_path):
    """A test process killed with SIGKILL (no teardown, no atexit) leaves no redis-server behind."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from tests.servers import start_redis
        server = start_redis({str(tmp_path / "redis")!r})
        print(server.pid, flush=True)
        time.sleep(120)
        """
    )
    starter = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        pid = int(starter.stdout.readline())
        server = psutil.Process(pid)
        assert server.name() == "redis-server"
        starter.kill()
        starter.wait(timeout=10)
        deadline = time.monotonic() + 10
        while server.is_running() and server.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, "orphaned redis-server"
    finally:
        starter.kill()
        starter.wait(timeout=10)
