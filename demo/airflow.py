"""``make airflow``: the Airflow UI on loopback with the sandbox, the example DAGs and their connections.

Starts the sandbox (demo data), builds the SQLite warehouse (opt-outs recorded before the
provider was installed: the first run catches up on them), creates the connections in
Airflow's metadata DB (the UI's Connections page lists and edits them) and runs
``airflow standalone`` in a session of its own. Ctrl-C (SIGINT), SIGTERM or SIGHUP stops
everything it started, whether the output goes to a terminal, a pipe or a file, and
removes the temporary AIRFLOW_HOME; a home named with ``AIRFLOW_HOME_DIR`` is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("AIRFLOW_PORT", "18080"))
#: seconds standalone has to stop its components after SIGINT before what is left is killed
STOP_GRACE = 30.0

sys.path.insert(0, str(REPO))


def say(text: str) -> None:
    """Print, and keep going when the reader is gone (``| tee`` ended by the same Ctrl-C)."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, OSError):
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Stop(Exception):
    """A signal asked us to stop."""


def on_signal(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone starts its components as `airflow ...`
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(PORT),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{PORT}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{PORT}/execution/",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def build_warehouse(path: Path) -> None:
    import pendulum

    from demo import scenario, warehouse

    seed = json.loads((REPO / "airflow_provider_outreach" / "sandbox" / "demo_seed.json").read_text())
    who = scenario.people(seed)
    warehouse.build(path, seed)
    warehouse.add_optouts(path, who["earlier"], pendulum.today("UTC").subtract(days=30))
    warehouse.add_optouts(path, who["today"], pendulum.today("UTC").subtract(days=1))


def connections(sandbox_url: str, warehouse_db: Path) -> dict[str, dict]:
    from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient

    client = SandboxClient(sandbox_url)
    found = {
        f"{vendor}_default": {"conn_type": vendor, "host": client.vendor_url(vendor), "password": key}
        for vendor, key in DEFAULT_KEYS.items()
    }
    found["outreach_warehouse"] = {"conn_type": "sqlite", "host": str(warehouse_db)}
    return found


def healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v2/monitor/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def stop_all(home: Path, started: list[subprocess.Popen]) -> list[str]:
    """Stop every process started here and everything running with this AIRFLOW_HOME; the leftovers."""
    import psutil

    standalone = started[-1] if len(started) > 1 else None
    if standalone is not None and standalone.poll() is None:
        say("Stopping Airflow...")
        with contextlib.suppress(ProcessLookupError):
            standalone.send_signal(signal.SIGINT)  # standalone stops its components
        with contextlib.suppress(subprocess.TimeoutExpired):
            standalone.wait(timeout=STOP_GRACE)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(standalone.pid, signal.SIGKILL)  # whatever is left of its session
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
    for proc in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    mine = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get("AIRFLOW_HOME") == str(home):
                mine.append(proc)
    for proc in mine:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    gone, alive = psutil.wait_procs(mine, timeout=5)
    return [f"{p.pid}" for p in alive]


def main() -> int:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    kept = os.environ.get("AIRFLOW_HOME_DIR")
    home = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="outreach-airflow-"))
    home.mkdir(parents=True, exist_ok=True)
    env = environment(home)
    started: list[subprocess.Popen] = []
    code = 0
    try:
        port_file = home / "sandbox.port"
        port_file.unlink(missing_ok=True)
        with open(home / "sandbox.log", "wb") as log:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow_provider_outreach.sandbox", "--demo", "--port", "0"]
                    + ["--port-file", str(port_file)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
            )
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the sandbox did not start; see {home / 'sandbox.log'}")
        sandbox_url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        warehouse_db = home / "warehouse.db"
        if not warehouse_db.exists():
            build_warehouse(warehouse_db)
        say("Preparing Airflow's metadata DB and the connections...")
        with open(home / "setup.log", "wb") as log:
            subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, stdout=log, stderr=log, check=True)
            conns = home / "connections.json"
            conns.write_text(json.dumps(connections(sandbox_url, warehouse_db)))
            subprocess.run(  # the UI's Connections page shows and edits them
                [str(BIN / "airflow"), "connections", "import", "--overwrite", str(conns)],
                env=env,
                stdout=log,
                stderr=log,
                check=True,
            )
            conns.unlink()
        with open(home / "standalone.log", "wb") as log:
            started.append(
                subprocess.Popen(
                    [str(BIN / "airflow"), "standalone"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C reaches this script, which then stops it exactly once
                )
            )
        passwords = home / "simple_auth_manager_passwords.json.generated"
        for _ in range(180):
            if started[-1].poll() is not None:
                raise RuntimeError(f"airflow standalone exited; see {home / 'standalone.log'}")
            if passwords.exists() and passwords.read_text().strip() and healthy():
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"airflow did not become healthy; see {home / 'standalone.log'}")
        say(f"Airflow UI:    http://127.0.0.1:{PORT}")
        say(f"User admin, password: {json.loads(passwords.read_text())['admin']}")
        say(f"Sandbox:       {sandbox_url} (state: {sandbox_url}/_sandbox/state)")
        say(f"AIRFLOW_HOME:  {home} (logs: standalone.log)" + ("" if kept else "; removed on exit"))
        say(
            "Connections:   lemlist_default, leadlex_default, dialnexa_default, outreach_warehouse (Admin > Connections)"
        )
        say("Unpause outreach_suppression_sync (its first run catches up on every opt-out), or trigger any DAG.")
        say("Ctrl-C stops everything.")
        while all(proc.poll() is None for proc in started):
            time.sleep(1)
        say(f"a component exited; see {home}")
        code = 1
    except Stop as stop:
        say(f"{stop}: stopping")
    except Exception as exc:  # noqa: BLE001 - report, then clean up
        say(f"make airflow failed: {exc}")
        code = 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        leftovers = stop_all(home, started)
        if leftovers:
            say(f"still running: {leftovers}")
            code = 1
        if not kept:
            shutil.rmtree(home, ignore_errors=True)
        say("Stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
