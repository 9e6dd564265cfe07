"""The app config: registers system checks, connects the receivers that keep streams' authority
current (:mod:`realtime.access`), and keeps the settings cache honest in tests."""

from __future__ import annotations

import os
from importlib.util import find_spec

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """``realtime``: command views, the LISTEN/NOTIFY relay and Datastar stream views."""

    name = "realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from realtime import access, checks, conf

        checks.register()
        access.connect()
        setting_changed.connect(conf.reload_config, dispatch_uid="realtime.conf.reload")
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and find_spec("prometheus_client"):
            # Multiprocess metrics: each process copies its counters once it serves requests.
            from realtime import prometheus

            prometheus.connect()
