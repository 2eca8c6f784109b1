"""Campaign statuses of each vendor, with their terminal sets.

Sensors, operators and the sandbox read them from here (this module imports nothing
from Airflow, so the sandbox can use it too).
"""

from __future__ import annotations

from enum import Enum


class LemlistCampaignStatus(str, Enum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"
    ARCHIVED = "archived"
    ERRORS = "errors"


class LeadlexCampaignStatus(str, Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    PENDING_APPROVAL = "pending_approval"
    COMPLETED = "completed"


class DialnexaCampaignStatus(str, Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


#: Statuses a campaign never leaves (no draft-only action is possible any more).
TERMINAL: dict[str, frozenset[str]] = {
    "lemlist": frozenset({LemlistCampaignStatus.ENDED.value, LemlistCampaignStatus.ARCHIVED.value}),
    "leadlex": frozenset({LeadlexCampaignStatus.COMPLETED.value}),
    "dialnexa": frozenset({DialnexaCampaignStatus.COMPLETED.value, DialnexaCampaignStatus.CANCELLED.value}),
}

ALL: dict[str, frozenset[str]] = {
    "lemlist": frozenset(s.value for s in LemlistCampaignStatus),
    "leadlex": frozenset(s.value for s in LeadlexCampaignStatus),
    "dialnexa": frozenset(s.value for s in DialnexaCampaignStatus),
}

#: DialNexa refuses lead removal (409) once its campaign is in one of these.
DIALNEXA_LEAD_REMOVAL_CLOSED = TERMINAL["dialnexa"]
#: The only LeadLex status in which a campaign may be deleted.
LEADLEX_DELETABLE = LeadlexCampaignStatus.DRAFT.value
