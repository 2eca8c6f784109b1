"""Sensors: wait for a campaign to reach a status, poking or deferred."""
