"""A ``NOTIFY_*`` setting declared once: its name, parser (with its bounds), default and doc.

Each package declares its own settings beside the code that uses them, as module-level
:class:`Setting` values gathered in a :class:`SettingsGroup`: the core's in
:mod:`notify_core.config`, the email and webhook settings in ``delivery_svc``, each email
provider's in its provider module, the digests' in ``digest_svc``. Loading reads every
value through its declaration (:meth:`Setting.read`: unset or blank is the default, any
other value goes through the parser, whose :class:`ConfigError` names the variable), the
settings dataclasses take their defaults from it, the composition root collects the
groups to refuse a ``NOTIFY_*`` name nobody declared, and the README's configuration table
is generated from the same groups (:func:`markdown_table`), so none of them can drift.

The parsers below are the small reusable ones; a setting whose value has a shape of its
own (rate limits, a provider's key) declares a :class:`Parser` around its own function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from notify_core.errors import ConfigError
from notify_core.redact import MASK, redact, redact_url

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
N = TypeVar("N", int, float)

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
TO = "\N{EN DASH}"
"""Between the bounds of a range, as the README writes them (an en dash)."""


def show_value(value: object) -> str:
    """How a value is written in the README and in a dump: ``30``, ``true``, ``a,b``."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={show_value(v)}" for k, v in value.items())
    if isinstance(value, (tuple, list, frozenset)):
        return ",".join(show_value(v) for v in value) or "none"
    return str(value)


@dataclass(frozen=True, slots=True)
class Parser(Generic[T_co]):
    """Turns one non-blank raw value into a ``T``, or raises :class:`ConfigError` naming
    the variable (``parse(raw, name)``)."""

    parse: Callable[[str, str], T_co]
    bounds: str = ""
    """The allowed range as the README shows it (``1-1000``, with :data:`TO`); may be empty."""
    show: Callable[[Any], str] = show_value
    """How a value of this parser is written (the README's default column, dumps)."""
    options: tuple[str, ...] = ()
    """The values allowed, for a choice (the bounds name them unless the doc does)."""


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """One ``NOTIFY_*`` variable: read with :meth:`read`, documented by ``doc``."""

    name: str
    parser: Parser[T]
    default: T
    """The value when the variable is unset or blank."""
    doc: str
    """What it means, one sentence or two: the README's meaning column (bounds appended)."""
    shown_default: str | None = None
    """The README's default column when the value alone does not say it ("the JWT secret")."""
    secret: bool = False
    """Never shown: a dump writes ``***`` (and its dataclass field should be ``repr=False``)."""

    def is_set(self, env: Mapping[str, str]) -> bool:
        """Whether ``env`` gives this setting a value (unset and blank are the default)."""
        raw = env.get(self.name)
        return raw is not None and bool(raw.strip())

    def read(self, env: Mapping[str, str]) -> T:
        """The value of this setting in ``env``, checked; the default when unset or blank."""
        raw = env.get(self.name)
        if raw is None or not raw.strip():
            return self.default
        return self.parser.parse(raw, self.name)

    def show(self, value: T) -> str:
        """``value`` as a dump shows it: secrets masked, passwords in URLs redacted."""
        if self.secret and value:
            return MASK
        return redact(self.parser.show(value) if value is not None else "unset")

    def default_text(self) -> str:
        """The README's default column."""
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "unset"
        return f"`{self.parser.show(self.default)}`"

    def meaning(self) -> str:
        """The README's meaning column: the doc, and the bounds when the parser has some."""
        options = self.parser.options
        if not self.parser.bounds or (options and all(f"`{o}`" in self.doc for o in options)):
            return self.doc
        return f"{self.doc} ({self.parser.bounds})"


@dataclass(frozen=True, slots=True)
class SettingsGroup:
    """The settings one module parses, in the order the README lists them."""

    owner: str
    """The module that declares and parses them (``delivery_svc/providers/smtp.py``)."""
    settings: tuple[Setting[Any], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    def dump(self, env: Mapping[str, str]) -> dict[str, str]:
        """Each setting's value in ``env`` as it may be shown (secrets masked)."""
        return {s.name: s.show(s.read(env)) for s in self.settings}


def required(setting: Setting[T | None], env: Mapping[str, str], when: str) -> T:
    """The value of a setting that is optional until something needs it; unset raises
    ``ConfigError("<name> is required when <when>")``."""
    value = setting.read(env)
    if value is None:
        raise ConfigError(f"{setting.name} is required when {when}")
    return value


def markdown_table(groups: Iterable[SettingsGroup]) -> str:
    """The README's configuration table: one row per setting of ``groups``, in order."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for group in groups:
        for s in group.settings:
            rows.append(f"| `{s.name}` | {s.meaning()} | {s.default_text()} |")
    return "\n".join(rows) + "\n"


TABLE_BEGIN = "<!-- settings table: generated by scripts/settings_table.py; do not edit -->"
TABLE_END = "<!-- end of settings table -->"


def with_table(text: str, table: str) -> str:
    """``text`` (the README) with ``table`` between :data:`TABLE_BEGIN` and :data:`TABLE_END`."""
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start == -1 or end < start:
        raise ValueError(f"the markers {TABLE_BEGIN!r} and {TABLE_END!r} are missing")
    return f"{text[: start + len(TABLE_BEGIN)]}\n{table}{text[end:]}"


# --- parsers ------------------------------------------------------------------------------


def _num(value: float) -> str:
    """``8080``, ``0.1``, ``86400``: a bound or value as people write it."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _number(kind: Callable[[str], N], what: str, lo: N, hi: N, unit: str = "") -> Parser[N]:
    def parse(raw: str, name: str) -> N:
        try:
            value = kind(raw.strip().removesuffix(unit) if unit else raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(
                f"{name} must be between {_num(lo)} and {_num(hi)}{unit}, got {_num(value)}"
            )
        return value

    return Parser(parse, f"{_num(lo)}{TO}{_num(hi)}")


def whole(lo: int, hi: int) -> Parser[int]:
    """A whole number in ``[lo, hi]``."""
    return _number(int, "a whole number", lo, hi)


def seconds(lo: float, hi: float) -> Parser[float]:
    """A number of seconds in ``[lo, hi]`` (``2.5``; a trailing ``s`` is allowed)."""
    return _number(float, "a number of seconds", float(lo), float(hi), "s")


def parse_duration(raw: str, name: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"250ms"`` → seconds."""
    m = _DURATION_RE.match(raw.strip())
    if m is None:
        raise ConfigError(f"{name}: {raw.strip()!r} is not a duration like 30s, 15m, 1h or 1d")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "s"]


def format_duration(value: float) -> str:
    """Seconds in the largest unit that writes them whole: ``300`` → ``5m``, ``0.25`` →
    ``250ms``."""
    for unit in ("d", "h", "m", "s"):
        count = value / _UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return "0s" if value == 0 else f"{value * 1000:g}ms"


def duration(lo: float, hi: float) -> Parser[float]:
    """A duration (``30s``, ``15m``, ``1h``, ``1d``, ``250ms``; a bare number is seconds)."""

    def parse(raw: str, name: str) -> float:
        value = parse_duration(raw, name)
        if not lo <= value <= hi:
            raise ConfigError(f"{name} must be between {lo:g}s and {hi:g}s, got {raw.strip()!r}")
        return value

    return Parser(parse, f"{format_duration(lo)}{TO}{format_duration(hi)}", format_duration)


def _flag(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


FLAG: Parser[bool] = Parser(_flag)
"""``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""


def _text(raw: str, name: str) -> str:
    return raw.strip()


TEXT: Parser[str] = Parser(_text)
"""Any text, stripped."""


def _raw(raw: str, name: str) -> str:
    return raw


RAW: Parser[str] = Parser(_raw)
"""The value exactly as given (a password may start or end with a space)."""


def text(check: Callable[[str, str], None]) -> Parser[str]:
    """Text, stripped, that ``check(value, name)`` accepts (it raises ConfigError if not)."""

    def parse(raw: str, name: str) -> str:
        value = raw.strip()
        check(value, name)
        return value

    return Parser(parse)


def at_least(length: int) -> Callable[[str, str], None]:
    """A check for :func:`text`: at least ``length`` characters."""

    def check(value: str, name: str) -> None:
        if len(value) < length:
            raise ConfigError(f"{name} must be at least {length} characters long")

    return check


def choice(*options: str, upper: bool = False) -> Parser[str]:
    """One of ``options``, compared in lower case (or upper, for ``upper``)."""

    def parse(raw: str, name: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
        return value

    return Parser(parse, ", ".join(f"`{o}`" for o in options), options=options)


def url(*schemes: str, trim_slash: bool = False) -> Parser[str]:
    """A URL with one of ``schemes``; shown without its password in every message."""
    prefixes = tuple(f"{s}://" for s in schemes)

    def parse(raw: str, name: str) -> str:
        value = raw.strip()
        if not value.startswith(prefixes):
            allowed = ", ".join(prefixes)
            raise ConfigError(f"{name} must start with one of {allowed}; got {redact_url(value)!r}")
        return value.rstrip("/") if trim_slash else value

    return Parser(parse, show=redact_url)


def items(item: Callable[[str, str], T], sep: str = r",") -> Parser[tuple[T, ...]]:
    """A list split on ``sep`` (a regular expression), blanks dropped, each item parsed by
    ``item(value, name)``."""

    def parse(raw: str, name: str) -> tuple[T, ...]:
        return tuple(item(p.strip(), name) for p in re.split(sep, raw) if p.strip())

    return Parser(parse)


def path(must_exist: bool = True) -> Parser[Path]:
    """A file path; with ``must_exist``, a readable file (checked at start, not at first use)."""

    def parse(raw: str, name: str) -> Path:
        value = Path(raw.strip()).expanduser()
        if must_exist and not value.is_file():
            raise ConfigError(f"{name}: no file at {str(value)!r}")
        return value

    return Parser(parse)
