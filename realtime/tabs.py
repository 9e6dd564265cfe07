"""Tab ids: the private id each page gives its tab, and the topic its private notices travel on.

A page tag (``{% realtime_page %}``) issues a fresh id per rendered page; the tab sends it with its
stream's GET and with every command (the ``TAB_SIGNAL`` signal or form field). A command's
rejection is published on the tab's topic (``tab.<id>``), which only that tab's stream watches.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from realtime.conf import get_config

_TAB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def new_tab_id() -> str:
    """A fresh, unguessable id for a tab being rendered."""
    return secrets.token_urlsafe(16)


def pop_tab(data: Any) -> str | None:
    """Remove the tab id from ``data`` (signals, or a form's ``QueryDict``) and return it when it
    is well formed."""
    name = get_config().TAB_SIGNAL
    value = data.get(name)
    data.pop(name, None)
    if isinstance(value, str) and _TAB_ID.fullmatch(value):
        return value
    return None


def tab_topic(tab: str) -> str:
    """The private topic of one browser tab (errors of its commands travel on it)."""
    return f"tab.{tab}"
