"""Names a module re-exports and imports only when one is asked for.

Each service's public module (`<service>_svc/api.py`) re-exports what other services use of
it. Importing every home module up front would make a pure core that names one function of
another service (`digest_svc/schedule.py` takes `local_instant` from the router) pull in
that service's stores, SQLAlchemy and providers with it. Instead the public module sets its
module `__getattr__` (PEP 562) to `lazy_exports(...)`: `from router_svc.api import
local_instant` imports `router_svc.quiet_hours` and nothing else. The public module also
imports the same names under `TYPE_CHECKING`, so mypy and the import graph see their real
homes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(module: str, homes: Mapping[str, tuple[str, ...]]) -> Callable[[str], object]:
    """The `__getattr__` of `module`: each name of `homes[home]` is read from module `home`
    when first asked for; any other name is an `AttributeError`, as for a plain module."""
    home_of = {name: home for home, names in homes.items() for name in names}

    def load(name: str) -> object:
        home = home_of.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(import_module(home), name)

    return load
