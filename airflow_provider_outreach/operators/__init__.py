"""Operators: one per delete/unsubscribe action, all built on the bulk engine."""
