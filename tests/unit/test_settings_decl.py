"""Declared settings: the reusable parsers, defaults, bounds and secrets kept out of dumps."""

from __future__ import annotations

from pathlib import Path

import pytest

from notify_app.settings import GROUPS, dump
from notify_core.config import DELIVERY_CONCURRENCY, RETRY_SCHEDULE, WS_SEND_QUEUE, Settings
from notify_core.errors import ConfigError
from notify_core.settings_decl import (
    FLAG,
    TEXT,
    Setting,
    SettingsGroup,
    choice,
    duration,
    format_duration,
    items,
    markdown_table,
    path,
    required,
    seconds,
    url,
    whole,
)


def test_unset_and_blank_are_the_default() -> None:
    port = Setting("NOTIFY_X_PORT", whole(1, 9), 5, "a port")
    assert port.read({}) == 5 and port.read({"NOTIFY_X_PORT": "  "}) == 5
    assert port.read({"NOTIFY_X_PORT": " 7 "}) == 7
    assert not port.is_set({"NOTIFY_X_PORT": ""}) and port.is_set({"NOTIFY_X_PORT": "1"})


@pytest.mark.parametrize(
    ("parser", "raw", "words"),
    [
        (whole(1, 9), "ten", "must be a whole number, got 'ten'"),
        (whole(1, 9), "10", "must be between 1 and 9, got 10"),
        (seconds(0.1, 300), "soon", "must be a number of seconds"),
        (seconds(0.1, 300), "0", "must be between 0.1 and 300s, got 0"),
        (duration(1, 60), "2m", "must be between 1s and 60s"),
        (duration(1, 60), "later", "is not a duration"),
        (FLAG, "maybe", "must be true or false"),
        (choice("a", "b"), "c", "must be one of a, b, got 'c'"),
        (url("https"), "http://u:pw@h/", "must start with one of https://; got 'http://u:***@h/'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(parser: object, raw: str, words: str) -> None:
    setting = Setting("NOTIFY_X", parser, None, "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        setting.read({"NOTIFY_X": raw})
    assert caught.value.message.startswith("NOTIFY_X") and words in caught.value.message


def test_values_are_parsed() -> None:
    assert seconds(0, 10).parse("2.5s", "N") == 2.5
    assert duration(0, 86_400).parse("15m", "N") == 900.0
    assert FLAG.parse("Yes", "N") is True and FLAG.parse("off", "N") is False
    assert choice("DEBUG", "INFO", upper=True).parse("info", "N") == "INFO"
    assert url("https", trim_slash=True).parse(" https://x.test/ ", "N") == "https://x.test"
    assert items(lambda v, n: v.upper()).parse("a, b,,c", "N") == ("A", "B", "C")


def test_a_setting_required_by_another_names_both() -> None:
    key: Setting[str | None] = Setting("NOTIFY_X_KEY", TEXT, None, "a key")
    assert required(key, {"NOTIFY_X_KEY": "k"}, "NOTIFY_X_ON is set") == "k"
    with pytest.raises(ConfigError) as caught:
        required(key, {"NOTIFY_X_KEY": " "}, "NOTIFY_X_ON is set")
    assert caught.value.message == "NOTIFY_X_KEY is required when NOTIFY_X_ON is set"


def test_a_path_must_name_a_file(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("k")
    assert path().parse(str(key), "NOTIFY_X_FILE") == key
    with pytest.raises(ConfigError, match="NOTIFY_X_FILE: no file at"):
        path().parse(str(tmp_path / "missing.pem"), "NOTIFY_X_FILE")


def test_durations_are_written_in_their_largest_whole_unit() -> None:
    assert [format_duration(s) for s in (30, 120, 3600, 86_400, 0.25, 0)] == [
        "30s",
        "2m",
        "1h",
        "1d",
        "250ms",
        "0s",
    ]


def test_the_settings_take_their_defaults_from_the_declarations() -> None:
    assert Settings().ws_send_queue == WS_SEND_QUEUE.default == 1_000
    assert Settings().retry_schedule == RETRY_SCHEDULE.default == (60.0, 300.0, 900.0)
    assert Settings().delivery_concurrency == {"high": 250, "normal": 150, "low": 100}
    assert DELIVERY_CONCURRENCY.default_text() == "`high=250,normal=150,low=100`"
    assert RETRY_SCHEDULE.default_text() == "`1m,5m,15m`"


def test_a_row_carries_the_doc_the_bounds_and_the_default() -> None:
    group = SettingsGroup("x.py", (Setting("NOTIFY_X_POOL", whole(1, 100), 4, "connections"),))
    assert markdown_table([group]).splitlines()[2] == (
        "| `NOTIFY_X_POOL` | connections (1\N{EN DASH}100) | `4` |"
    )


def test_a_dump_masks_secrets_and_url_passwords() -> None:
    env = {
        "NOTIFY_JWT_SECRET": "j" * 20,
        "NOTIFY_SMTP_USERNAME": "user",
        "NOTIFY_SMTP_PASSWORD": "smtp-secret-value",
        "NOTIFY_SENDGRID_API_KEY": "SG.secret-value",
        "NOTIFY_REDIS_URL": "redis://:redis-pw@cache:6379/0",
    }
    shown = dump(env, env_file=None)
    assert set(shown) == {s.name for group in GROUPS for s in group.settings}
    assert shown["NOTIFY_JWT_SECRET"] == shown["NOTIFY_SMTP_PASSWORD"] == "***"
    assert shown["NOTIFY_SMTP_USERNAME"] == "user"
    assert shown["NOTIFY_REDIS_URL"] == "redis://:***@cache:6379/0"
    assert shown["NOTIFY_SMTP_PORT"] == "25" and shown["NOTIFY_WEBHOOK_SECRET"] == "none"
    text = repr(shown)
    assert "secret-value" not in text and "redis-pw" not in text and "j" * 20 not in text
