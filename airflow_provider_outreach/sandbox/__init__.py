"""A local HTTP sandbox of the lemlist, LeadLex and DialNexa APIs.

``SandboxServer`` serves the three APIs (and an admin API under ``/_sandbox``)
on one port; ``SandboxClient`` drives the admin API. The server uses the
standard library only; ``SandboxClient`` needs ``requests`` and is imported
lazily.
"""

from .runtime import DEFAULT_KEYS
from .server import SandboxServer

__all__ = ["SandboxServer", "SandboxClient", "DEFAULT_KEYS"]


def __getattr__(name):
    if name == "SandboxClient":
        from .client import SandboxClient

        return SandboxClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
