"""The bulk engine: one list of items, one API call each, every item exactly one outcome.

``items`` (kinds, validation, de-duplication), ``report`` (the outcomes), ``engine``
(concurrent calls under a :class:`~airflow_provider_outreach.bulk.engine.BulkPolicy`).
"""
