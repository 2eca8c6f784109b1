"""Reliability and security suites: scale switch and an out-of-process sandbox.

``OUTREACH_LARGE=1`` runs the large scale (10,000 items per chaos run, the 100,000-item
load run); the default scale keeps the folder fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient
from airflow_provider_outreach.sandbox.process import start_sandbox_process
from tests import secrets_watch

LARGE = os.environ.get("OUTREACH_LARGE") == "1"
REPO = Path(__file__).resolve().parents[2]


def scale(default: int, large: int) -> int:
    return large if LARGE else default


def report_figures(name: str, figures: dict) -> None:
    """Print measured figures; with ``OUTREACH_FIGURES=<file>`` also append them there as JSON."""
    print(f"{name}: {figures}")
    target = os.environ.get("OUTREACH_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": name, **figures}) + "\n")


# -- the sandbox in its own process: the client's threads get the interpreter to themselves ----


@pytest.fixture(scope="session")
def sandbox_process():
    """URL of a sandbox served by a separate process (for the high-volume runs)."""
    log_path = Path(tempfile.mkdtemp(prefix="outreach-sandbox-")) / "sandbox.log"
    with open(log_path, "wb") as log:
        try:
            proc, url = start_sandbox_process(output=log)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {log_path.read_text()}") from None
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        leaks = secrets_watch.find_leaks(log_path.read_bytes())
        assert not leaks, "API key in the sandbox output: " + "; ".join(leaks)


class RemoteSandbox(SandboxClient):
    """Admin client of the out-of-process sandbox that also sets connections to it."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(url)
        self._monkeypatch = monkeypatch

    def connect(self, vendor: str, conn_id: str | None = None, key: str | None = None, **extra) -> str:
        conn_id = conn_id or f"{vendor}_default"
        payload = {
            "conn_type": vendor,
            "host": self.vendor_url(vendor),
            "password": key or DEFAULT_KEYS[vendor],
            "extra": extra,
        }
        self._monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
        return conn_id


@pytest.fixture
def remote(sandbox_process, monkeypatch):
    """The out-of-process sandbox, reset (empty, default limits, no faults, fresh log)."""
    client = RemoteSandbox(sandbox_process, monkeypatch)
    client.reset()
    try:
        yield client
    finally:
        client.close()
