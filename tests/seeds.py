"""Small seed documents for the sandbox, shared by the tests."""

from __future__ import annotations

import copy

BASE_SEED = {
    "lemlist": {
        "campaigns": [
            {
                "_id": "cam_running",
                "name": "Spring outreach",
                "status": "running",
                "leads": [
                    {"_id": "lea_ann", "email": "ann@example.com", "firstName": "Ann"},
                    {"_id": "lea_bob", "email": "bob@example.com", "firstName": "Bob"},
                    {"_id": "lea_cat", "email": "cat@example.com", "firstName": "Cat"},
                ],
            },
            {"_id": "cam_draft", "name": "Draft", "status": "draft", "leads": []},
        ],
        "unsubscribes": [{"value": "abuse@example.com", "source": "abuse"}],
    },
    "leadlex": {
        "campaigns": [
            {
                "id": "cmp_active",
                "name": "Q3 nurture",
                "status": "active",
                "contacts": [
                    {"contact_id": "ctc_ann", "email": "ann@example.com"},
                    {"contact_id": "ctc_bob", "email": "bob@example.com"},
                ],
            },
            {"id": "cmp_draft", "name": "Draft", "status": "draft", "contacts": []},
            {"id": "cmp_done", "name": "Old", "status": "completed", "contacts": []},
        ]
    },
    "dialnexa": {
        "campaigns": [
            {
                "id": "cmp_live",
                "name": "Renewals",
                "status": "active",
                "leads": [
                    {"id": "cl_ann", "phone_number": "+15550001", "status": "pending"},
                    {"id": "cl_bob", "phone_number": "+15550002", "status": "pending"},
                ],
            },
            {
                "id": "cmp_over",
                "name": "Finished",
                "status": "completed",
                "leads": [{"id": "cl_old", "phone_number": "+15550009", "status": "completed"}],
            },
        ],
        "agents": [{"id": "agt_1", "name": "Ava"}],
    },
}


def base_seed() -> dict:
    return copy.deepcopy(BASE_SEED)


def lemlist_bulk_seed(n: int, campaign_id: str = "cam_bulk") -> dict:
    leads = [{"_id": f"lea_{i:06d}", "email": f"person{i:06d}@example.com"} for i in range(n)]
    return {"lemlist": {"campaigns": [{"_id": campaign_id, "name": "Bulk", "status": "running", "leads": leads}]}}
