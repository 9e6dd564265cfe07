"""The suite runs in two pytest runs (``make test`` does both), one per settings module.

- ``pytest --ds tests.realtime.settings tests/realtime``: the reusable app alone, on minimal
  settings (tests/realtime/settings.py).
- ``pytest``: everything else, on the demo's settings plus test URLs (tests/project/settings.py).

Each run leaves out the other's directories, so a bare ``pytest`` runs the demo's tests and never
the app's tests on the wrong settings. Helpers live in tests/helpers.py, not here.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from tests.helpers import REALTIME_SETTINGS

_HERE = Path(__file__).parent
_APP_ONLY = settings.SETTINGS_MODULE == REALTIME_SETTINGS

collect_ignore = (
    [str(p.relative_to(_HERE)) for p in _HERE.iterdir() if p.is_dir() and p.name != "realtime"]
    if _APP_ONLY
    else ["realtime"]
)
