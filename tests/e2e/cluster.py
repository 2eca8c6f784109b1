"""A real Airflow 3 deployment for end-to-end tests, started and stopped by the test itself.

``AirflowCluster`` runs, in an AIRFLOW_HOME of its own (never the test session's), the
four components of a deployment as separate processes, each in a session (process group)
of its own:

* ``airflow api-server`` (one worker) on a free loopback port: the REST API the test
  drives, and the Execution API every task talks to (``EXECUTION_API_SERVER_URL``);
* ``airflow scheduler`` with the LocalExecutor (``parallelism`` workers forked up front);
* ``airflow dag-processor`` parsing the given DAGs folder;
* ``airflow triggerer`` running deferred tasks' triggers.

The metadata DB is SQLite (``airflow db migrate`` runs first). By default scheduled runs
are off (``[scheduler] use_job_schedule = False``) so that the only runs are those the test
triggers, and DAGs are unpaused at creation; with ``scheduled=True`` the scheduler creates
runs on the DAGs' schedules, and DAGs start paused until the test unpauses one. Serve-logs processes are not started (their
ports bind every interface); task logs are read from the home's ``logs/`` folder.

``stop()`` sends SIGTERM to every component, waits, then SIGKILLs whatever is left of
their process groups and of every process seen under them (LocalExecutor workers,
task supervisors and task processes, trigger runners, DAG-parsing children), and finally
any process whose environment names this cluster's AIRFLOW_HOME. Nothing here knows
the DAG's tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import requests

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: a run is over in these states
FINAL_RUN_STATES = frozenset({"success", "failed"})
#: task-instance states after which the run cannot succeed within a test's time budget
#: (the retry delay of a real DAG is minutes)
HOPELESS_TI_STATES = frozenset({"failed", "up_for_retry", "upstream_failed"})


class ClusterError(RuntimeError):
    """The cluster did not start, or did not answer as expected."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


@dataclass
class Component:
    name: str
    proc: subprocess.Popen
    log_path: Path
    #: every process seen under it, to kill whatever outlives its process group (psutil
    #: processes: signalling one is safe from pid reuse)
    seen: dict[int, psutil.Process] = field(default_factory=dict)


@dataclass
class StopReport:
    seconds: float
    exit_codes: dict[str, int | None]
    killed: list[str]
    leftovers: list[str]


class AirflowCluster:
    """See the module docstring.

    :param home: the AIRFLOW_HOME (created; everything the cluster writes goes there).
    :param dags_folder: ``[core] dags_folder``.
    :param env: more environment for every component (connections, ...).
    :param parallelism: ``[core] parallelism``, the LocalExecutor's worker count.
    :param scheduled: the scheduler creates runs on the DAGs' schedules (DAGs start paused).
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        env: dict[str, str] | None = None,
        parallelism: int = 4,
        scheduled: bool = False,
    ) -> None:
        self.home = Path(home)
        self.dags_folder = Path(dags_folder)
        self.parallelism = parallelism
        self.scheduled = scheduled
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.components: dict[str, Component] = {}
        self.timings: dict[str, float] = {}
        #: the most processes, and the most resident memory (summed, shared pages counted in each), seen
        self.peak: dict[str, int] = {}
        self._password = secrets.token_urlsafe(16)
        self._token: str | None = None
        self._session = requests.Session()
        self._extra_env = dict(env or {})
        self._started_at: float | None = None

    # -- environment ---------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The components' environment: this process's, minus any Airflow setting of the test
        session, plus the cluster's own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        env.pop("PYTEST_CURRENT_TEST", None)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(self.scheduled),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret(),
                # without a schedule, only the runs the test triggers
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.scheduled),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONWARNINGS": "ignore",
            }
        )
        env.update(self._extra_env)
        return env

    def _jwt_secret(self) -> str:
        path = self.home / ".jwt_secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text()

    # -- start ---------------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """Migrate the DB, start the components, wait until the health endpoint reports each healthy."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "component-logs").mkdir(exist_ok=True)
        # the api-server keeps the generated password it finds; this one is the test's
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": self._password}))
        started = self._started_at = time.monotonic()
        env = self.environment()
        migrate_log = self.home / "component-logs" / "db-migrate.log"
        with open(migrate_log, "wb") as out:
            result = subprocess.run(
                [_airflow_bin(), "db", "migrate"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                cwd=self.home,
            )
        if result.returncode != 0:
            raise ClusterError(f"airflow db migrate failed ({result.returncode}):\n{_tail(migrate_log, 40)}")
        self.timings["db_migrate"] = time.monotonic() - started
        for name in COMPONENTS:
            self._launch(name, env)
        self.wait_healthy(deadline=started + timeout)
        self.timings["healthy"] = time.monotonic() - started

    def _launch(self, name: str, env: dict[str, str]) -> None:
        args = {
            "api-server": ["api-server", "--port", str(self.port), "--host", "127.0.0.1", "--workers", "1"],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        log_path = self.home / "component-logs" / f"{name}.log"
        out = open(log_path, "ab")  # noqa: SIM115 - closed when the process has been reaped
        try:
            proc = subprocess.Popen(
                [_airflow_bin(), *args[name]],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,  # a process group of its own: stop() can clear it
            )
        finally:
            out.close()  # the child holds its own descriptor
        previous = self.components.get(name)
        self.components[name] = Component(name, proc, log_path, seen=previous.seen if previous else {})

    def kill(self, name: str) -> None:
        """SIGKILL one component and everything under it (a crash, not a shutdown)."""
        comp = self.components[name]
        self._remember_children()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(comp.proc.pid, signal.SIGKILL)
        for proc in comp.seen.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        comp.proc.wait(timeout=30)

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start a component again (after :meth:`kill`) and wait until the cluster is healthy."""
        self._launch(name, self.environment())
        self.wait_healthy(deadline=time.monotonic() + timeout)

    def wait_healthy(self, deadline: float) -> dict[str, Any]:
        last: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            self._remember_children()
            try:
                resp = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                if resp.status_code == 200:
                    last = resp.json()
                    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    if all((last.get(p) or {}).get("status") == "healthy" for p in parts):
                        return last
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise ClusterError(f"the cluster did not become healthy in time; last health answer: {last}")

    def _check_alive(self) -> None:
        for comp in self.components.values():
            code = comp.proc.poll()
            if code is not None:
                raise ClusterError(f"airflow {comp.name} exited with {code}:\n{_tail(comp.log_path, 60)}")

    def _remember_children(self) -> None:
        """Note every process under the components (and the peak count and memory)."""
        rss = count = 0
        for comp in self.components.values():
            with contextlib.suppress(psutil.Error):
                leader = psutil.Process(comp.proc.pid)
                tree = [leader, *leader.children(recursive=True)]
                comp.seen.update((p.pid, p) for p in tree[1:])
                for proc in tree:
                    with contextlib.suppress(psutil.Error):
                        rss += proc.memory_info().rss
                        count += 1
        self.peak["processes"] = max(self.peak.get("processes", 0), count)
        self.peak["rss_mb"] = max(self.peak.get("rss_mb", 0), rss // 2**20)

    # -- REST API --------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            resp = self._session.post(
                f"{self.base_url}/auth/token", json={"username": "admin", "password": self._password}, timeout=30
            )
            if resp.status_code not in (200, 201):
                raise ClusterError(f"login failed: {resp.status_code} {resp.text[:500]}")
            self._token = resp.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def api(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        """Call the public REST API (``/api/v2`` + ``path``); the JSON answer."""
        resp = self._session.request(
            method, f"{self.base_url}/api/v2{path}", headers=self._auth(), timeout=30, **kwargs
        )
        if resp.status_code not in expect:
            raise ClusterError(f"{method} {path} answered {resp.status_code}: {resp.text[:2000]}")
        return resp.json() if resp.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail early when it is still
        missing 10 s after a DAG file failed to import (with the import errors)."""
        started = time.monotonic()
        deadline = started + timeout
        errors_since = None
        while time.monotonic() < deadline:
            self._check_alive()
            self._remember_children()
            resp = self._session.get(f"{self.base_url}/api/v2/dags/{quote(dag_id)}", headers=self._auth(), timeout=30)
            if resp.status_code == 200:
                self.timings["dag_parsed"] = time.monotonic() - (self._started_at or started)
                return resp.json()
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            if errors:
                errors_since = errors_since or time.monotonic()
                if time.monotonic() - errors_since > 10:
                    raise ClusterError(
                        f"DAG {dag_id} not parsed; import errors:\n"
                        + "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors)
                    )
            time.sleep(1.0)
        raise ClusterError(f"DAG {dag_id} was not parsed within {timeout:.0f} s")

    def trigger(self, dag_id: str, run_id: str, **body: Any) -> dict[str, Any]:
        """``POST /dags/{dag_id}/dagRuns`` (``logical_date``, ``data_interval_start``/``_end``, ``conf``)."""
        payload = {"dag_run_id": run_id, "logical_date": None, **body}
        return self.api("POST", f"/dags/{quote(dag_id)}/dagRuns", json=payload)

    def unpause(self, dag_id: str) -> dict[str, Any]:
        return self.api("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": False})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{quote(dag_id)}/dagRuns", params={"limit": 100})["dag_runs"]

    def wait_for_run_created(self, dag_id: str, run_type: str, timeout: float = 90.0) -> dict[str, Any]:
        """The first run of ``run_type`` (``scheduled``, ``manual``, ...) once the scheduler made it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            self._remember_children()
            runs = [run for run in self.dag_runs(dag_id) if run["run_type"] == run_type]
            if runs:
                return runs[0]
            time.sleep(1.0)
        raise ClusterError(f"no {run_type} run of {dag_id} within {timeout:.0f} s")

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included (one per map index)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET",
                f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                params={"limit": 100, "offset": len(found)},
            )
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 1.0) -> tuple[str, list[dict]]:
        """Poll until the run ends, a task instance can no longer succeed in time, or ``timeout``.

        :returns: the run's state (or ``"timeout"``, or ``"hopeless"``) and its task instances.
        """
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        while True:
            self._check_alive()
            self._remember_children()
            state = self.dag_run(dag_id, run_id)["state"]
            tis = self.task_instances(dag_id, run_id)
            if state in FINAL_RUN_STATES:
                self.timings["run"] = time.monotonic() - started
                return state, tis
            if any(ti["state"] in HOPELESS_TI_STATES for ti in tis):
                return "hopeless", tis
            if time.monotonic() > deadline:
                return "timeout", tis
            time.sleep(poll)

    # -- logs ------------------------------------------------------------------------------------

    def task_log_dir(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Path:
        path = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return path / f"map_index={map_index}" if map_index >= 0 else path

    def diagnostics(self, dag_id: str, run_id: str, tis: list[dict[str, Any]] | None = None, lines: int = 30) -> str:
        """The tail of every component's log, and of the logs (task and trigger) of ``tis``
        (default: every task instance of the run)."""
        parts = [f"AIRFLOW_HOME of the cluster (kept): {self.home}"]
        for comp in self.components.values():
            parts.append(
                f"===== airflow {comp.name} (exit {comp.proc.poll()}) {comp.log_path}\n{_tail(comp.log_path, lines)}"
            )
        run_dir = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        folders = (
            [self.task_log_dir(dag_id, run_id, ti["task_id"], ti["map_index"]) for ti in tis]
            if tis is not None
            else [run_dir]
        )
        for folder in folders:
            for path in sorted(folder.glob("*.log") if tis is not None else folder.rglob("*.log")):
                parts.append(f"===== {path.relative_to(run_dir)}\n{_tail(path, lines)}")
        return "\n".join(parts)

    # -- stop ------------------------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """Every live process of this cluster: the components, their descendants, and any
        process whose environment names this AIRFLOW_HOME."""
        found: dict[int, psutil.Process] = {}
        for comp in self.components.values():
            candidates = list(comp.seen.values())
            if comp.proc.poll() is None:
                with contextlib.suppress(psutil.Error):
                    candidates.append(psutil.Process(comp.proc.pid))
            for proc in candidates:
                with contextlib.suppress(psutil.Error):
                    if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:  # is_running: not a reused pid
                        found[proc.pid] = proc
                        for child in proc.children(recursive=True):
                            found[child.pid] = child
        home = str(self.home)
        me = os.getpid()
        for proc in psutil.process_iter(["pid"]):
            if proc.pid in found or proc.pid == me:
                continue
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("AIRFLOW_HOME") == home and proc.status() != psutil.STATUS_ZOMBIE:
                    found[proc.pid] = proc
        return list(found.values())

    def stop(self, grace: float = 15.0) -> StopReport:
        """SIGTERM every component (again 3 s later), wait up to ``grace`` s, SIGKILL what is
        left; reap; report what is still alive (nothing, normally)."""
        started = time.monotonic()
        self._remember_children()
        # a second SIGTERM tells a scheduler still waiting on its LocalExecutor workers, or a
        # triggerer waiting for its trigger runner (about 10 s, even when idle), not to wait
        for deadline in (started + min(3.0, grace / 2), started + grace):
            for comp in self.components.values():
                if comp.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        comp.proc.send_signal(signal.SIGTERM)
            for comp in self.components.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    comp.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        killed = []
        leaders = {comp.proc.pid for comp in self.components.values()}
        for pgid in {_pgid(proc) for proc in self.processes()} & leaders:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)  # what is left of a component's session
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                killed.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
                proc.kill()
        for comp in self.components.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.proc.wait(timeout=10)
        psutil.wait_procs(self.processes(), timeout=5)
        leftovers = [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in self.processes()]
        self.timings["stop"] = time.monotonic() - started
        return StopReport(
            seconds=self.timings["stop"],
            exit_codes={name: comp.proc.poll() for name, comp in self.components.items()},
            killed=killed,
            leftovers=leftovers,
        )

    def __enter__(self) -> AirflowCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.components:
            self.stop()
        self._session.close()


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 200 * lines))
            text = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<unreadable: {exc}>"
    return "\n".join(text.splitlines()[-lines:])
