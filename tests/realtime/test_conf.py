"""Settings: one dict over documented defaults, cached, reloaded by ``override_settings``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from realtime.conf import Config, get_config


def test_defaults() -> None:
    with override_settings(REALTIME={}):
        config = get_config()
    assert config == Config()
    assert config.BACKEND == "realtime.relay.postgres.PostgresBackend"
    assert config.DATABASE == "default"
    assert config.CHANNEL == "realtime"
    assert config.HEARTBEAT == 15.0
    assert config.STALL_TIMEOUT == 30.0
    assert config.DATASTAR_URL is None  # the bundled client
    assert config.DATASTAR_INTEGRITY is None
    assert config.TAB_SIGNAL == "tab"
    assert config.STREAM_COMPRESSION == "gzip"


def test_missing_setting_means_defaults(settings: Any) -> None:
    # Deleting a setting sends no setting_changed: clear the cache by hand, before and after.
    del settings.REALTIME
    get_config.cache_clear()
    try:
        assert get_config() == Config()
    finally:
        get_config.cache_clear()


def test_test_project_settings_apply() -> None:
    assert get_config().HEARTBEAT == 1.0


def test_cached_until_the_setting_changes() -> None:
    first = get_config()
    assert get_config() is first
    with override_settings(REALTIME={"CHANNEL": "other"}):
        assert get_config().CHANNEL == "other"
        with override_settings(REALTIME={"CHANNEL": "third", "HEARTBEAT": 2}):
            assert (get_config().CHANNEL, get_config().HEARTBEAT) == ("third", 2)
        assert get_config().CHANNEL == "other"
    assert get_config() == first


def test_other_settings_do_not_clear_the_cache() -> None:
    first = get_config()
    with override_settings(DEBUG=True):
        assert get_config() is first


def test_every_key_is_documented_in_the_reference() -> None:
    from pathlib import Path

    reference = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
    if not reference.exists():
        pytest.skip("docs/reference.md is not written yet")
    text = reference.read_text()
    missing = [f.name for f in fields(Config) if f.name not in text]
    assert missing == []


@pytest.mark.parametrize(
    ("realtime", "message"),
    [
        ({"NOPE": 1, "ALSO": 2}, "Unknown key(s) in settings.REALTIME: ALSO, NOPE. Known: BACKEND"),
        ({"HEARTBEAT": -1}, "REALTIME['HEARTBEAT'] must be a non-negative number"),
        ({"STALL_TIMEOUT": "30"}, "REALTIME['STALL_TIMEOUT'] must be a non-negative number"),
        ({"RECONNECT_DELAY": True}, "REALTIME['RECONNECT_DELAY'] must be a non-negative number"),
        ({"RECONNECT_MAX_DELAY": None}, "REALTIME['RECONNECT_MAX_DELAY']"),
        ({"BACKEND": ""}, "REALTIME['BACKEND'] must be a non-empty string"),
        ({"DATASTAR_URL": ""}, "REALTIME['DATASTAR_URL'] must be None or a non-empty string"),
        ({"DATASTAR_INTEGRITY": 1}, "REALTIME['DATASTAR_INTEGRITY'] must be None or a non-empty"),
        ({"DATABASE": 1}, "REALTIME['DATABASE'] must be a non-empty string"),
        ({"CHANNEL": "x" * 64}, "63-byte"),
        ({"TAB_SIGNAL": "_tab"}, "REALTIME['TAB_SIGNAL'] must be letters and digits"),
        ({"TAB_SIGNAL": "tab-id"}, "REALTIME['TAB_SIGNAL']"),
        ({"TAB_SIGNAL": "tab\n"}, "REALTIME['TAB_SIGNAL']"),
        ({"STREAM_COMPRESSION": "br"}, "'gzip', 'middleware' or 'off'"),
        (
            {"MAX_STREAM_SIGNALS_BYTES": 0},
            "REALTIME['MAX_STREAM_SIGNALS_BYTES'] must be a positive",
        ),
        ({"MAX_SIGNALS_DEPTH": True}, "REALTIME['MAX_SIGNALS_DEPTH'] must be a positive"),
        ({"MAX_SIGNALS_DEPTH": 2.5}, "REALTIME['MAX_SIGNALS_DEPTH'] must be a positive"),
        ({"LISTEN_DATABASE": ""}, "REALTIME['LISTEN_DATABASE'] must be None or a database alias"),
        ({"LISTEN_DATABASE": 1}, "REALTIME['LISTEN_DATABASE'] must be None or a database alias"),
        ({"METRICS_TOKEN": "short"}, "REALTIME['METRICS_TOKEN'] must be None or a secret"),
        ({"METRICS_TOKEN": 1234567890123456789}, "REALTIME['METRICS_TOKEN']"),
        ({"COMMAND_THREADS": 0}, "REALTIME['COMMAND_THREADS'] must be None or a positive"),
        ({"COMMAND_THREADS": True}, "REALTIME['COMMAND_THREADS'] must be None or a positive"),
        ({"COMMAND_THREADS": "8"}, "REALTIME['COMMAND_THREADS'] must be None or a positive"),
    ],
)
def test_invalid_settings_name_the_key(realtime: dict[str, Any], message: str) -> None:
    with override_settings(REALTIME=realtime), pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert message in str(info.value)


def test_not_a_dict() -> None:
    with (
        override_settings(REALTIME=[("HEARTBEAT", 1)]),
        pytest.raises(ImproperlyConfigured, match="must be a dict"),
    ):
        get_config()


def test_zero_is_a_valid_number_of_seconds() -> None:
    with override_settings(REALTIME={"HEARTBEAT": 0, "STALL_TIMEOUT": 0.0}):
        assert get_config().HEARTBEAT == 0


def test_config_is_immutable() -> None:
    with pytest.raises(AttributeError):
        get_config().HEARTBEAT = 3  # type: ignore[misc]
