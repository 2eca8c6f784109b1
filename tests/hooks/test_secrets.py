"""The API key never shows in logs, exception texts or reprs."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_outreach.exceptions import OutreachAPIError
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.sandbox import DEFAULT_KEYS
from tests.seeds import base_seed

WRONG_KEY = "wrong-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("hook_cls", "vendor", "call"),
    [
        (LemlistHook, "lemlist", lambda h: h.get_campaign("cam_missing")),
        (LeadlexHook, "leadlex", lambda h: h.delete_campaign("cmp_active")),
        (DialnexaHook, "dialnexa", lambda h: h.remove_campaign_lead("cl_old")),
    ],
)
def test_key_absent_from_logs_errors_and_reprs(sandbox, connections, caplog, capfd, hook_cls, vendor, call):
    sandbox.seed(base_seed())
    connections(vendor, f"{vendor}_wrong", key=WRONG_KEY)
    caplog.set_level(logging.DEBUG)
    sandbox.inject(vendor, ["503", "drop", {"kind": "429", "retry_after": 0}])
    texts = []
    hook = hook_cls(backoff=0.01)
    with pytest.raises(OutreachAPIError) as err:
        call(hook)
    texts += [
        str(err.value),
        repr(err.value),
        repr(hook),
        repr(hook.get_conn().session.auth),
        repr(hook.get_conn().session.headers),
        repr(hook.settings),
    ]
    bad = hook_cls(f"{vendor}_wrong")
    with pytest.raises(OutreachAPIError) as err:
        call(bad)
    texts += [str(err.value), repr(err.value), repr(bad), str(bad.test_connection())]
    printed = capfd.readouterr()
    texts += [caplog.text, printed.out, printed.err]
    assert "retrying" in printed.out + printed.err + caplog.text  # the retries were logged
    for text in texts:
        assert DEFAULT_KEYS[vendor] not in text
        assert WRONG_KEY not in text
        assert "Authorization" not in text and "Basic " not in text and "Bearer " not in text
