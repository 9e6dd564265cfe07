"""Reading what a Datastar (or htmx) request carries: its signals and the tab's private id."""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import HttpRequest

from realtime.conf import get_config

_TAB_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class BadSignals(ValueError):
    """The request's signals are not a JSON object."""


def read_signals(request: HttpRequest) -> dict[str, Any]:
    """The Datastar signals of ``request``: the ``datastar`` query parameter on GET, the JSON body
    otherwise. Missing signals are ``{}``; malformed ones raise :class:`BadSignals`."""
    if request.method == "GET":
        raw: str | bytes | None = request.GET.get("datastar")
    else:
        raw = request.body
    if not raw:
        return {}
    try:
        signals = json.loads(raw)
    except RecursionError as exc:
        raise BadSignals("The request's signals are nested too deeply.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadSignals(f"The request's signals are not valid JSON ({exc}).") from exc
    if not isinstance(signals, dict):
        raise BadSignals("The request's signals must be a JSON object.")
    return signals


def pop_tab(data: dict[str, Any]) -> str | None:
    """Remove the tab-id signal from ``data`` and return it when it is well formed."""
    value = data.pop(get_config().TAB_SIGNAL, None)
    if isinstance(value, str) and _TAB_ID.fullmatch(value):
        return value
    return None


def tab_topic(tab: str) -> str:
    """The private topic of one browser tab (errors of its commands travel on it)."""
    return f"tab.{tab}"
