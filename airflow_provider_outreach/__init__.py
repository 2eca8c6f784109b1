"""Apache Airflow provider for the lemlist, LeadLex and DialNexa outreach APIs.

This module stays free of imports: Airflow loads :func:`get_provider_info` through the
``apache_airflow_provider`` entry point whenever it lists providers.
"""

from __future__ import annotations

__version__ = "0.2.0"

#: The one registry of vendors. A vendor ``name`` is its connection type and the module name of
#: its ``hooks``, ``operators``, ``sensors`` and ``sandbox.vendors`` modules.
#: (name, display name, hook class in ``hooks/<name>.py``, documentation)
VENDORS = (
    ("lemlist", "lemlist", "LemlistHook", "https://developer.lemlist.com/"),
    ("leadlex", "LeadLex", "LeadlexHook", "https://docs.leadlex.com/"),
    ("dialnexa", "DialNexa", "DialnexaHook", "https://docs.dialnexa.com/"),
)
VENDOR_NAMES = tuple(name for name, *_ in VENDORS)

#: Module kinds the package ships, per vendor (``<kind>/<vendor>.py``).
_MODULE_KINDS = ("hooks", "operators", "sensors")
#: Trigger modules: the campaign-status trigger serves every vendor; event triggers (for an
#: asset's watcher) one vendor each.
_CAMPAIGN_TRIGGER = "airflow_provider_outreach.triggers.campaign_status"
_EVENT_TRIGGERS = {"lemlist": ("airflow_provider_outreach.triggers.lemlist_unsubscribes",)}

_CONN_FIELDS = {
    "rate_limit": {
        "label": "Rate limit (requests per period)",
        "description": "Client-side limit for this API key; empty for the vendor's default "
        "(lemlist 20 per 2 s; LeadLex and DialNexa pace from the API's rate-limit headers).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "rate_limit_period": {
        "label": "Rate limit period (seconds)",
        "description": "Window of the rate limit above.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "redis_conn_id": {
        "label": "Redis connection for the shared rate limit",
        "description": "An Airflow redis connection through which every host shares this API key's budget. "
        "Empty: the processes of one host share it in a directory ($OUTREACH_RATE_LIMIT_DIR, else "
        "$AIRFLOW_HOME/outreach-rate-limits; the extra field rate_limit_dir overrides both); "
        'the extra field "shared_rate_limit": false turns sharing off.',
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "Connect and read timeout; empty for 10 s connect, 30 s read.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "description": "Leave on; turn off only for a proxy you trust that presents its own certificate.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
}


def _connection_type(conn_type: str, name: str, hook: str) -> dict:
    return {
        "connection-type": conn_type,
        "hook-class-name": f"airflow_provider_outreach.hooks.{conn_type}.{hook}",
        "hook-name": name,
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port"],
            "relabeling": {"host": "API base URL (optional)", "password": "API key"},
            "placeholders": {
                "host": f"empty for {name}'s production API",
                "password": f"your {name} API key",
                "extra": '{"rate_limit": null, "timeout": null}',
            },
        },
        "conn-fields": _CONN_FIELDS,
    }


def get_provider_info() -> dict:
    """Provider metadata read by Airflow's ``ProvidersManager``."""
    info: dict = {
        "package-name": "airflow-provider-outreach",
        "name": "Outreach (lemlist, LeadLex, DialNexa)",
        "description": "Remove, unsubscribe and suppress people in lemlist, LeadLex and DialNexa; "
        "watch campaign status; watch lemlist's opt-outs for an asset; delete draft campaigns safely.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": name, "external-doc-url": doc, "tags": ["service"]} for _, name, _, doc in VENDORS
        ],
        "connection-types": [_connection_type(conn_type, name, hook) for conn_type, name, hook, _ in VENDORS],
    }
    info["triggers"] = [
        {"integration-name": name, "python-modules": [_CAMPAIGN_TRIGGER, *_EVENT_TRIGGERS.get(conn_type, ())]}
        for conn_type, name, _, _ in VENDORS
    ]
    for kind in _MODULE_KINDS:
        info[kind] = [
            {"integration-name": name, "python-modules": [f"airflow_provider_outreach.{kind}.{conn_type}"]}
            for conn_type, name, _, _ in VENDORS
        ]
    # "Common SQL" is the integration of apache-airflow-providers-common-sql
    info["transfers"] = [
        {
            "source-integration-name": "lemlist",
            "target-integration-name": "Common SQL",
            "python-module": "airflow_provider_outreach.transfers.lemlist_to_sql",
        },
        {
            "source-integration-name": "LeadLex",
            "target-integration-name": "Common SQL",
            "python-module": "airflow_provider_outreach.transfers.leadlex_to_sql",
        },
    ]
    return info
