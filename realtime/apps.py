"""The app config: registers system checks and keeps the settings cache honest in tests."""

from __future__ import annotations

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """``realtime``: command views, the LISTEN/NOTIFY relay and Datastar stream views."""

    name = "realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from realtime import checks, conf

        checks.register()
        setting_changed.connect(conf.reload_config, dispatch_uid="realtime.conf.reload")
