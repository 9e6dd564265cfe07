"""The stale-edit guard on a change form: a save based on an old version is refused.

:func:`guarded_form` extends the ``ModelForm`` class the admin builds with three fields the live
change form template renders itself (they are in no fieldset):

- ``realtime_version``: the version token the form was opened from (:mod:`.versions`);
- ``realtime_seen``: after a refusal, the digest of the version the person was shown;
- ``realtime_overwrite``: ticked to save over that version on purpose.

Its ``clean()`` locks the row (``SELECT ... FOR UPDATE``, inside the transaction the admin opens
around every save) and compares. A save goes through when nothing the form edits changed since
the token's version, or when ``realtime_overwrite`` is ticked and the row is still exactly the
version the refusal showed (so an overwrite never silently covers a third change).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from realtime.admin.versions import (
    BadVersion,
    Change,
    Values,
    changes,
    edited_fields,
    read_token,
    snapshot,
    version_hash,
)

VERSION_FIELD, SEEN_FIELD, OVERWRITE_FIELD = (
    "realtime_version",
    "realtime_seen",
    "realtime_overwrite",
)
GUARD_FIELDS = (VERSION_FIELD, SEEN_FIELD, OVERWRITE_FIELD)


class StaleEdit:
    """Why a save was refused: the version it was based on, and the row now."""

    def __init__(self, changes: list[Change], current_hash: str, *, unknown_base: bool) -> None:
        #: The fields that changed since the form's version (empty when that version is unknown).
        self.changes = changes
        #: The digest of the row as it is now: what an overwrite must be based on.
        self.current_hash = current_hash
        #: The form carried no valid version (sent by a script, or opened before the guard).
        self.unknown_base = unknown_base


def guarded_form(form_class: type[forms.ModelForm[Any]]) -> type[forms.ModelForm[Any]]:
    """``form_class`` with the guard's fields and check (see the module docstring)."""

    def clean(self: forms.ModelForm[Any]) -> dict[str, Any] | None:
        cleaned: dict[str, Any] | None = form_class.clean(self)
        stale = _check(self)
        self.realtime_stale = stale  # type: ignore[attr-defined]
        if stale is not None:
            raise forms.ValidationError(_message(stale), code="stale")
        return cleaned

    attrs: dict[str, Any] = {
        "__module__": form_class.__module__,
        "clean": clean,
        "realtime_stale": None,
        VERSION_FIELD: forms.CharField(required=False, widget=forms.HiddenInput),
        SEEN_FIELD: forms.CharField(required=False, widget=forms.HiddenInput),
        OVERWRITE_FIELD: forms.BooleanField(required=False),
    }
    metaclass: Any = type(form_class)
    guarded: type[forms.ModelForm[Any]] = metaclass(form_class.__name__, (form_class,), attrs)
    return guarded


def _check(form: forms.ModelForm[Any]) -> StaleEdit | None:
    instance = form.instance
    if instance.pk is None:
        return None
    model = type(instance)
    fields = edited_fields(model, form.fields)
    try:
        row = _locked(instance)
    except model.DoesNotExist:
        raise forms.ValidationError(
            _("Someone else deleted this while you were editing it. Nothing was saved."),
            code="deleted",
        ) from None
    current = snapshot(row, fields)
    current_hash = version_hash(current)
    data: dict[str, Any] = form.cleaned_data or {}
    base: Values | None
    try:
        base = read_token(data.get(VERSION_FIELD) or "", instance)
    except BadVersion:
        base = None
    if base is not None and all(base.get(f.name) == current[f.name] for f in fields):
        return None
    if data.get(OVERWRITE_FIELD) and data.get(SEEN_FIELD) == current_hash:
        return None
    return StaleEdit(
        changes(model, fields, base, current) if base is not None else [],
        current_hash,
        unknown_base=base is None,
    )


def _locked(instance: models.Model) -> models.Model:
    """``instance``'s row read again and locked until the admin's transaction ends."""
    manager = type(instance)._base_manager.using(instance._state.db)
    return manager.select_for_update().get(pk=instance.pk)


def _message(stale: StaleEdit) -> str:
    if stale.unknown_base:
        return str(
            _(
                "This form does not say which version it edits (it was opened before live "
                "editing was on, or sent by a script). Reload the page to edit the current "
                "version, or tick “Save mine anyway” and save again."
            )
        )
    listed = "; ".join(f"{c.label}: “{c.old}” → “{c.new}”" for c in stale.changes)
    return str(
        _(
            "Someone else changed this since you opened it: %(changes)s. Nothing was saved. "
            "Reload the page to edit their version, or tick “Save mine anyway” and save again "
            "to replace it with yours."
        )
        % {"changes": listed}
    )
