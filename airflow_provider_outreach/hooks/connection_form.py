"""The connection form of each vendor hook below Airflow 3.2, where Airflow reads it from the
hook class (``get_ui_field_behaviour`` / ``get_connection_form_widgets``) instead of the provider
info. Both are derived from the provider info's ``ui-field-behaviour`` and ``conn-fields``, so
every Airflow version shows the same form. Loaded only on those versions.
"""

from __future__ import annotations

from typing import Any


def add_connection_form(hook_class: type) -> None:
    """Give ``hook_class`` the two form methods (Airflow reads them only from the registered
    class itself, not from a base class)."""
    hook_class.get_ui_field_behaviour = classmethod(ui_field_behaviour)
    hook_class.get_connection_form_widgets = classmethod(connection_form_widgets)


def _connection_type_info(hook_class: type) -> dict[str, Any]:
    """The provider info's entry for this hook's connection type: the one source of its form."""
    from airflow_provider_outreach import get_provider_info

    types = get_provider_info()["connection-types"]
    return next(entry for entry in types if entry["connection-type"] == hook_class.conn_type)


def ui_field_behaviour(hook_class: type) -> dict[str, Any]:
    """The provider info's ``ui-field-behaviour``, in the form a hook returns it."""
    behaviour = _connection_type_info(hook_class)["ui-field-behaviour"]
    return {key.replace("-", "_"): value for key, value in behaviour.items()}


def connection_form_widgets(hook_class: type) -> dict[str, Any]:
    """The provider info's ``conn-fields`` as wtforms fields.

    Only the field classes Airflow accepts: whole numbers in an ``IntegerField``, other numbers
    and text in a ``StringField`` (the hook checks them when it parses the connection), flags in
    a ``BooleanField`` with the setting's default.
    """
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import NumberRange, Optional

    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    except ImportError:  # Airflow 3.0/3.1 without the FAB provider: wtforms' own widget
        text_widget: dict[str, Any] = {}
    else:
        text_widget = {"widget": BS3TextFieldWidget()}
    widgets: dict[str, Any] = {}
    for name, field in _connection_type_info(hook_class)["conn-fields"].items():
        schema = field["schema"]
        kind = next(t for t in schema["type"] if t != "null")
        described = {"label": field["label"], "description": field["description"]}
        if kind == "boolean":
            widgets[name] = BooleanField(default=schema.get("default", False), **described)
        elif kind == "integer":
            minimum = [NumberRange(min=schema["minimum"])] if "minimum" in schema else []
            widgets[name] = IntegerField(validators=[Optional(), *minimum], **described, **text_widget)
        else:
            widgets[name] = StringField(validators=[Optional()], **described, **text_widget)
    return widgets
