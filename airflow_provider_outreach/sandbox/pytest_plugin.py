"""Pytest fixtures for the outreach sandbox.

Enable with ``pytest_plugins = ["airflow_provider_outreach.sandbox.pytest_plugin"]``.

* ``sandbox_server`` (session): a ``SandboxServer`` on 127.0.0.1 and a free port.
* ``sandbox`` (function): a ``SandboxClient`` for it, reset before the test, so
  each test starts with empty state, default keys, limits and no faults.
  ``sandbox.vendor_url("lemlist")`` is the base URL to give a lemlist client.
"""

import pytest

from .client import SandboxClient
from .server import SandboxServer


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxServer(host="127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    client = SandboxClient(sandbox_server.url)
    client.reset()
    try:
        yield client
    finally:
        client.close()
