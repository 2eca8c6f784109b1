from airflow_provider_outreach.sandbox.pytest_plugin import sandbox, sandbox_server  # noqa: F401
