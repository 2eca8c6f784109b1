"""The vendors the sandbox serves: one module per vendor, ``vendors/<name>.py``.

A vendor module defines a ``base.Vendor`` subclass and names it ``VENDOR``; adding a
vendor to the sandbox is adding its module (and its name to the vendor list).
"""

from __future__ import annotations

import importlib

from airflow_provider_outreach import VENDOR_NAMES

from .base import Vendor


def _load(names) -> dict[str, type[Vendor]]:
    classes = {}
    for name in names:
        cls = importlib.import_module(f"{__name__}.{name}").VENDOR
        if not (isinstance(cls, type) and issubclass(cls, Vendor)) or cls.name != name:
            raise TypeError(f"{__name__}.{name}.VENDOR must be the Vendor subclass named {name!r}")
        classes[name] = cls
    return classes


#: ``{name: Vendor subclass}`` in ``VENDOR_NAMES`` order.
VENDORS: dict[str, type[Vendor]] = _load(VENDOR_NAMES)

#: The API key each vendor accepts unless configured otherwise.
DEFAULT_KEYS: dict[str, str] = {name: cls.default_key for name, cls in VENDORS.items()}


def vendor_class(name: str) -> type[Vendor]:
    """The vendor class of ``name``; ``ValueError`` for an unknown vendor."""
    try:
        return VENDORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown vendor {name!r}") from None


__all__ = ["DEFAULT_KEYS", "VENDORS", "VENDOR_NAMES", "Vendor", "vendor_class"]
