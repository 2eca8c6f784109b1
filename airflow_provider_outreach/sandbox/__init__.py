"""A local HTTP sandbox of the lemlist, LeadLex and DialNexa APIs.

``SandboxServer`` serves every vendor under ``/<vendor>`` (its API at the production
path below that: ``SandboxServer.vendor_url(vendor)``) and an admin API under
``/_sandbox`` on one port; ``SandboxClient`` drives the admin API;
``start_sandbox_process`` runs a server in a process of its own. The server uses the
standard library only; ``SandboxClient`` needs ``requests`` and is imported lazily.
Each vendor lives in ``vendors/<vendor>.py``.
"""

from .server import SandboxServer
from .vendors import DEFAULT_KEYS

__all__ = ["DEFAULT_KEYS", "SandboxClient", "SandboxServer", "start_sandbox_process"]


def __getattr__(name):
    if name == "SandboxClient":
        from .client import SandboxClient

        return SandboxClient
    if name == "start_sandbox_process":
        from .process import start_sandbox_process

        return start_sandbox_process
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
