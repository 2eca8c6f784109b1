"""Start the sandbox in a process of its own (benchmarks, the demo, high-volume tests)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any


def start_sandbox_process(
    *args: str, output: IO[Any] | int = subprocess.DEVNULL, timeout: float = 30.0
) -> tuple[subprocess.Popen, str]:
    """Run ``python -m airflow_provider_outreach.sandbox ARGS`` on a free loopback port.

    :param args: more command-line options (``--demo``, ``--seed FILE``, ...).
    :param output: where its stdout and stderr go.
    :returns: the process (terminate it when done) and the sandbox's root URL (a vendor's base URL is
        ``SandboxClient(url).vendor_url(vendor)``).
    :raises RuntimeError: when it did not start within ``timeout`` seconds.
    """
    port_file = Path(tempfile.mkdtemp(prefix="outreach-sandbox-")) / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_outreach.sandbox",
            *args,
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the sandbox process did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"
