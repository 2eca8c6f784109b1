"""``make airflow`` as a new user meets it: its output through a pipe, its connections in the
UI, and Ctrl-C to the terminal's process group stopping everything it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import REPO
from tests.e2e.cluster import free_port

pytestmark = pytest.mark.e2e

READY = "Ctrl-C stops everything."


def processes_of(home: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("AIRFLOW_HOME") == home and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(300)
def test_ctrl_c_through_a_pipe_stops_everything_and_removes_the_home(tmp_path):
    log = tmp_path / "airflow.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_PORT"] = str(port)
    # a terminal's foreground job: the launcher and tee in one process group, output through a pipe
    shell = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} demo/airflow.py 2>&1 | tee {log}"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    home = None
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and READY not in (log.read_text() if log.exists() else ""):
            assert shell.poll() is None, log.read_text() if log.exists() else "no output"
            time.sleep(1)
        text = log.read_text()
        assert READY in text, text
        home = re.search(r"AIRFLOW_HOME:\s+(\S+)", text).group(1)
        password = re.search(r"password: (\S+)", text).group(1)
        base = f"http://127.0.0.1:{port}"
        token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        listed = requests.get(
            f"{base}/api/v2/connections",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        ).json()
        names = {c["connection_id"] for c in listed["connections"]}
        assert {"lemlist_default", "leadlex_default", "dialnexa_default", "outreach_warehouse"} <= names
        assert processes_of(home), "nothing runs with the launcher's AIRFLOW_HOME"

        os.killpg(shell.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group, tee included
        stopped = time.monotonic()
        shell.wait(timeout=45)
        while processes_of(home) and time.monotonic() - stopped < 45:
            time.sleep(1)
        assert processes_of(home) == [], "left running 45 s after Ctrl-C"
        assert not Path(home).exists(), "the temporary AIRFLOW_HOME was not removed"
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
        for line in processes_of(home) if home else []:
            os.kill(int(line.split()[0]), signal.SIGKILL)
