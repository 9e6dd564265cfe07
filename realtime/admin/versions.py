"""The stale-edit guard's versions: what a change form was opened from, and what changed since.

A change form carries a *version token*: the values of the fields it edits as they were read when
the form was rendered, signed with the project's ``SECRET_KEY`` (so a token names exactly one
object's values, and a client can only send back a token the server gave it). At save the server
reads the row again under ``SELECT ... FOR UPDATE``, in the admin's own transaction, and compares:
a field that changed since the form was opened makes the save stale. Nothing depends on the
browser: an old tab, a form posted with JavaScript off or a script all meet the same check.

:func:`version_hash` is a short digest of the same values: the live change form's stream carries
it in its URL (a token can be as large as the object) and says "changed since you opened it" when
the row's digest moves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db import models
from django.utils.text import Truncator
from django.utils.translation import gettext as _

#: Values of the fields a form edits, as JSON-able canonical strings (``None`` for NULL).
Values = dict[str, Any]

_SALT = "realtime.admin.version"
#: Longest value shown in a difference (longer ones are cut with an ellipsis).
SHOWN_CHARS = 120


class BadVersion(Exception):
    """A version token that was not issued for this object (missing, tampered, another row)."""


def edited_fields(model: type[models.Model], names: Iterable[str]) -> list[models.Field[Any, Any]]:
    """The model fields among ``names`` (a form's field names), in model order."""
    wanted = set(names)
    meta = model._meta
    return [
        field
        for field in [*meta.concrete_fields, *meta.many_to_many]
        if field.name in wanted and field.editable
    ]


def snapshot(instance: models.Model, fields: Iterable[models.Field[Any, Any]]) -> Values:
    """The canonical values of ``fields`` on ``instance`` (many-to-many: the sorted keys)."""
    values: Values = {}
    for field in fields:
        if field.many_to_many:
            related = getattr(instance, field.name).values_list("pk", flat=True)
            values[field.name] = sorted(str(pk) for pk in related)
        else:
            value = field.value_from_object(instance)
            values[field.name] = None if value is None else field.value_to_string(instance)
    return values


def version_hash(values: Mapping[str, Any]) -> str:
    """A short digest of ``values``: equal values, equal digests."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def make_token(instance: models.Model, values: Values) -> str:
    """The signed version token of ``instance`` read with ``values``."""
    return signing.dumps(
        {"m": instance._meta.label_lower, "pk": str(instance.pk), "v": values},
        salt=_SALT,
        compress=True,
    )


def read_token(token: str, instance: models.Model) -> Values:
    """The values a token issued for ``instance`` holds; raises :class:`BadVersion`."""
    if not token:
        raise BadVersion("no version")
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature as exc:
        raise BadVersion("a version this server did not issue") from exc
    if (
        not isinstance(data, dict)
        or data.get("m") != instance._meta.label_lower
        or data.get("pk") != str(instance.pk)
        or not isinstance(data.get("v"), dict)
    ):
        raise BadVersion("a version of another object")
    values: Values = data["v"]
    return values


@dataclass(frozen=True)
class Change:
    """One field that differs between two versions, as a person reads it."""

    name: str
    label: str
    old: str
    new: str


def changes(
    model: type[models.Model],
    fields: Iterable[models.Field[Any, Any]],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
) -> list[Change]:
    """The fields whose value differs between ``old`` and ``new``, displayed (choices by their
    label, related objects by their ``str``, long text cut)."""
    found = []
    for field in fields:
        before, after = old.get(field.name, _MISSING), new.get(field.name, _MISSING)
        if before != after:
            found.append(
                Change(
                    field.name,
                    str(field.verbose_name),
                    _display(field, before),
                    _display(field, after),
                )
            )
    return found


_MISSING = object()


def _display(field: models.Field[Any, Any], value: Any) -> str:
    if value is _MISSING:
        return _("(unknown)")
    if value is None or value == "" or value == []:
        return _("(empty)")
    if field.many_to_many:
        return _shorten(", ".join(_related(field, pk) for pk in value))
    if field.is_relation:
        return _shorten(_related(field, value))
    if field.flatchoices:
        labels = {str(key): str(label) for key, label in field.flatchoices}
        return _shorten(labels.get(value, value))
    if isinstance(field, models.BooleanField):
        return _("yes") if value == "True" else _("no")
    return _shorten(str(value))


def _related(field: models.Field[Any, Any], pk: str) -> str:
    model = field.related_model
    assert isinstance(model, type)
    found = model._base_manager.filter(pk=pk).first()
    return str(found) if found is not None else _("#%(pk)s (deleted)") % {"pk": pk}


def _shorten(text: str) -> str:
    return Truncator(text).chars(SHOWN_CHARS)
