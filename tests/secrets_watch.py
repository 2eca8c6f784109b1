"""Watch for API keys in everything a test leaves behind.

A key is looked for in the forms it could leak in: the key itself, its ``Bearer``
header and its HTTP Basic credential (``base64(":" + key)``, with or without ``Basic``).
Findings name the key's owner, never the key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

import pytest

from airflow_provider_outreach.sandbox import DEFAULT_KEYS

#: owner -> key; tests add the other keys they use (``watch(...)``)
WATCHED: dict[str, str] = {f"{vendor} sandbox key": key for vendor, key in DEFAULT_KEYS.items()}


def watch(owner: str, key: str) -> None:
    """Watch one more key (e.g. a deliberately wrong one) for the rest of the session."""
    WATCHED[owner] = key


def forms(key: str) -> dict[str, str]:
    basic = base64.b64encode(f":{key}".encode()).decode()
    return {"key": key, "Bearer header": f"Bearer {key}", "Basic credential": basic}


def find_leaks(text: str | bytes | None) -> list[str]:
    """``["<owner> (<form>)", ...]`` for every watched key found in ``text``."""
    if not text:
        return []
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = []
    for owner, key in WATCHED.items():
        for form, value in forms(key).items():
            if value in text:
                found.append(f"{owner} ({form})")
    return found


def redact(text: str) -> str:
    for key in WATCHED.values():
        for value in sorted(forms(key).values(), key=len, reverse=True):
            text = text.replace(value, "***")
    return text


def leaks_in_report(report: pytest.TestReport) -> list[str]:
    """Leaks in a test report: captured stdout, stderr and log of its phase, and the failure text."""
    found = []
    for title, content in report.sections:
        if title.endswith(f" {report.when}"):  # a report also carries the sections of earlier phases
            found += [f"{leak} in {title!r}" for leak in find_leaks(content)]
    if report.longrepr is not None:
        found += [f"{leak} in the failure text" for leak in find_leaks(report.longreprtext)]
    return found


def check_report(report: pytest.TestReport) -> None:
    """Turn a report that shows a watched key into a failure that says where (not what)."""
    if getattr(report, "_secrets_checked", False):
        return
    report._secrets_checked = True
    leaks = leaks_in_report(report)
    if not leaks:
        return
    original = redact(report.longreprtext) if report.longrepr is not None else ""
    report.outcome = "failed"
    report.longrepr = "API key leaked: " + "; ".join(leaks) + (f"\n\n{original}" if original else "")
    report.sections = [(title, redact(content)) for title, content in report.sections]


def leaks_in_files(paths: Iterable[Path]) -> list[str]:
    """Leaks in files (task logs, the metadata DB): ``["<owner> (<form>) in <path>", ...]``."""
    found = []
    for path in paths:
        if path.is_file():
            found += [f"{leak} in {path}" for leak in find_leaks(path.read_bytes())]
    return found
