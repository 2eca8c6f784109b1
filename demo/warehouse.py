"""The demo's embedded SQLite warehouse: the CRM's opt-outs and the dialer's lead export.

Built from a sandbox seed document. The tables the tools fill (lemlist's unsubscribes,
LeadLex's enrollments) are pulled in by the suppression DAG itself.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pendulum

SCHEMA = """
CREATE TABLE crm_optouts (email TEXT NOT NULL, opted_out_at TEXT NOT NULL, batch_id TEXT);
CREATE TABLE dialnexa_campaign_leads (email TEXT NOT NULL, campaign_lead_id TEXT NOT NULL);
"""


def emails_in(seed: dict[str, Any]) -> list[str]:
    """Every person's email in the seed, in a stable order."""
    found = set()
    for campaign in seed.get("lemlist", {}).get("campaigns", []):
        found.update(lead["email"].lower() for lead in campaign.get("leads", []))
    for campaign in seed.get("leadlex", {}).get("campaigns", []):
        for key in ("contacts", "removed_contacts"):
            found.update(c["email"].lower() for c in campaign.get(key, []))
    for campaign in seed.get("dialnexa", {}).get("campaigns", []):
        found.update(lead["email"].lower() for lead in campaign.get("leads", []) if lead.get("email"))
    return sorted(found)


def build(path: Path, seed: dict[str, Any]) -> None:
    """Create the warehouse with no opt-outs yet and the dialer's export of the seed's leads."""
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        for campaign in seed.get("dialnexa", {}).get("campaigns", []):
            db.executemany(
                "INSERT INTO dialnexa_campaign_leads VALUES (?, ?)",
                [(lead["email"], lead["id"]) for lead in campaign.get("leads", []) if lead.get("email")],
            )
    db.close()


def add_optouts(path: Path, emails: list[str], start: pendulum.DateTime, batch_id: str | None = None) -> None:
    """Record ``emails`` as opted out in the CRM, spread over the day from ``start``."""
    step = min(7 * 60, 86_400 // max(1, len(emails)))  # seconds: every opt-out inside the one day
    rows = [(e, start.add(seconds=step * i).isoformat(), batch_id) for i, e in enumerate(emails)]
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO crm_optouts VALUES (?, ?, ?)", rows)
    db.close()
