"""Read the sandbox's end state and check that every opt-out is honoured in every tool."""

from __future__ import annotations

from typing import Any

#: DialNexa's documented terminal campaign statuses: their leads can no longer be removed (409)
DIALNEXA_CLOSED = frozenset({"completed", "cancelled"})


def suppression_state(state: dict[str, Any], emails: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per tool, which of ``emails`` are honoured and which are not."""
    wanted = {e.lower() for e in emails}
    result = {tool: {"honoured": set(), "not_honoured": set()} for tool in ("lemlist", "leadlex", "dialnexa")}

    suppressed = {v.lower() for v in state["lemlist"]["unsubscribes"]}
    lemlist_leads = [lead for c in state["lemlist"]["campaigns"].values() for lead in c["leads"].values()]
    for email in wanted:
        leads = [lead for lead in lemlist_leads if lead["email"].lower() == email]
        ok = email in suppressed and all(lead.get("notInterested") or lead["state"] == "removed" for lead in leads)
        result["lemlist"]["honoured" if ok else "not_honoured"].add(email)

    for campaign in state["leadlex"]["campaigns"].values():
        for contact in campaign["contacts"].values():
            if contact["email"].lower() in wanted:
                result["leadlex"]["not_honoured"].add(contact["email"].lower())
    result["leadlex"]["honoured"] = wanted - result["leadlex"]["not_honoured"]

    campaigns = state["dialnexa"]["campaigns"]
    for lead in state["dialnexa"]["leads"].values():
        email = (lead.get("email") or "").lower()
        if email in wanted:
            closed = campaigns.get(lead["campaign_id"], {}).get("status") in DIALNEXA_CLOSED
            if lead["status"] != "removed" and not closed:
                result["dialnexa"]["not_honoured"].add(email)
    result["dialnexa"]["honoured"] = wanted - result["dialnexa"]["not_honoured"]
    return {tool: {k: sorted(v) for k, v in parts.items()} for tool, parts in result.items()}


def fingerprint(state: dict[str, Any], email: str) -> tuple:
    """Everything the three tools hold about one person."""
    email = email.lower()
    lemlist = sorted(
        (lead["_id"], lead["state"], bool(lead.get("notInterested")))
        for c in state["lemlist"]["campaigns"].values()
        for lead in c["leads"].values()
        if lead["email"].lower() == email
    )
    leadlex = sorted(
        (cid, contact["contact_id"])
        for cid, c in state["leadlex"]["campaigns"].items()
        for contact in c["contacts"].values()
        if contact["email"].lower() == email
    )
    dialnexa = sorted(
        (lead["id"], lead["status"])
        for lead in state["dialnexa"]["leads"].values()
        if (lead.get("email") or "").lower() == email
    )
    return (email in {v.lower() for v in state["lemlist"]["unsubscribes"]}, lemlist, leadlex, dialnexa)


def changed(before: dict[str, Any], after: dict[str, Any], emails: list[str]) -> list[str]:
    """Which of ``emails`` (people who did not opt out in the synced day) were changed anyway."""
    return sorted(e for e in emails if fingerprint(before, e) != fingerprint(after, e))


def items_of(seed: dict[str, Any], emails: set[str], removed_too: bool = False) -> dict[tuple[str, str], set[str]]:
    """The audit items of each removal action for these people (lowercased emails)."""
    emails = {e.lower() for e in emails}
    keys = ("contacts", "removed_contacts") if removed_too else ("contacts",)
    return {
        ("lemlist", "add_unsubscribe"): set(emails),
        ("lemlist", "mark_not_interested"): set(emails),
        ("leadlex", "remove_contact"): {
            c["contact_id"]
            for campaign in seed["leadlex"]["campaigns"]
            for key in keys
            for c in campaign.get(key, [])
            if c["email"].lower() in emails
        },
        ("dialnexa", "remove_campaign_lead"): {
            lead["id"]
            for campaign in seed["dialnexa"]["campaigns"]
            for lead in campaign.get("leads", [])
            if (lead.get("email") or "").lower() in emails
        },
    }
