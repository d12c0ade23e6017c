"""The ``NOTIFY_*`` namespace: which names are settings, and refusing the ones that are not.

The settings themselves are declared beside the code that parses them
(:mod:`notify_core.settings_decl`); the composition root collects every group and hands
their names here, so the core checks a service's names without importing the service.
Start-up refuses a ``NOTIFY_*`` name in the environment or ``.env`` that nobody declared (a
typo), naming the nearest known one; the parsers read the environment through
:class:`DeclaredEnv`, which refuses a name read but not declared.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping

from notify_core.errors import ConfigError

PREFIX = "NOTIFY_"
NOT_SETTINGS = ("NOTIFY_TEST_",)
"""Prefixes of ``NOTIFY_*`` names that are not settings of the service (the test suite's)."""


def is_setting_name(name: str) -> bool:
    """Whether ``name`` is in the settings' namespace (``NOTIFY_*``, not the test suite's)."""
    return name.startswith(PREFIX) and not name.startswith(NOT_SETTINGS)


def nearest(name: str, known: Collection[str]) -> str:
    """The known setting whose name is most like ``name``."""
    return difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.0)[0]


def check_known(env: Mapping[str, str], known: Collection[str]) -> None:
    """:class:`ConfigError` naming the first ``NOTIFY_*`` name of ``env`` that is not in
    ``known``, and the known one it most resembles."""
    for name in sorted(env):
        if is_setting_name(name) and name not in known:
            raise ConfigError(
                f"{name} is not a setting of Notify; did you mean {nearest(name, known)}?"
            )


class DeclaredEnv(Mapping[str, str]):
    """The environment as the parsers see it: reading a name not in ``known`` raises
    ``LookupError`` (a setting read but not declared is a bug, found by any test)."""

    def __init__(self, values: Mapping[str, str], known: Collection[str]) -> None:
        self._values = dict(values)
        self._known = frozenset(known)

    def _declared(self, name: str) -> str:
        if name not in self._known:
            raise LookupError(f"{name} is read but not declared in any settings group")
        return name

    def __getitem__(self, name: str) -> str:
        return self._values[self._declared(name)]  # Mapping.get and `in` come through here

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
