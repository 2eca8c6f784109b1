"""Triggers: async pollers that run on the triggerer while a task is deferred."""
