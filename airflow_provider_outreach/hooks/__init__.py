"""Hooks: one per vendor, all built on :class:`~airflow_provider_outreach.hooks.base.OutreachHook`."""
