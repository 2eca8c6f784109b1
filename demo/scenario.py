"""The demo's story around the suppression DAG: who opted out where, and what happened since.

Shared by ``make demo``, ``make airflow`` and the tests that run the example DAGs.
"""

from __future__ import annotations

from typing import Any


def lemlist_origin_people(seed: dict, taken: set[str], n: int = 5) -> list[str]:
    """People enrolled in LeadLex and queued in DialNexa, not in the CRM's opt-outs: they will
    unsubscribe inside lemlist (its link, a bounce, an abuse report) and nowhere else."""
    leadlex = {c["email"].lower() for camp in seed["leadlex"]["campaigns"] for c in camp.get("contacts", [])}
    dialnexa = {
        lead["email"].lower()
        for camp in seed["dialnexa"]["campaigns"]
        if camp.get("status") not in ("completed", "cancelled")
        for lead in camp.get("leads", [])
        if lead.get("email") and lead.get("status", "pending") != "removed"
    }
    return sorted((leadlex & dialnexa) - taken)[:n]


def enrollments_of(seed: dict[str, Any], emails: list[str]) -> list[tuple[str, str, str]]:
    """``(campaign_id, contact_id, email)`` of every LeadLex enrollment of these people."""
    wanted = {e.lower() for e in emails}
    return [
        (camp["id"], c["contact_id"], c["email"].lower())
        for camp in seed["leadlex"]["campaigns"]
        for c in camp.get("contacts", [])
        if c["email"].lower() in wanted
    ]


def people(seed: dict[str, Any]) -> dict[str, list[str]]:
    """The demo's groups of people, by email.

    * ``earlier``: opted out in the CRM before the provider was installed (one of them
      enrolled in LeadLex, to be re-added by an import later);
    * ``today``: the day's CRM opt-outs (one with odd case, one the tools never heard of);
    * ``from_lemlist``: people who unsubscribe inside lemlist today, in no CRM table.
    """
    from demo.warehouse import emails_in

    everyone = emails_in(seed)
    today = everyone[::4] + ["Person008@Example.com", "new.signup@example.org"]
    taken = {e.lower() for e in today}
    earlier = [e for e in everyone[2::9][:10] if e.lower() not in taken]
    enrolled = [c["email"].lower() for camp in seed["leadlex"]["campaigns"] for c in camp.get("contacts", [])]
    earlier += [e for e in enrolled if e not in taken and e not in earlier][:1]
    taken |= set(earlier)
    return {"earlier": earlier, "today": today, "from_lemlist": lemlist_origin_people(seed, taken)}
