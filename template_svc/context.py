"""What a template sees when it renders, and what stands in for the data at save time.

The data's objects and lists are copied into :class:`Data` and :class:`DataList`, which
remember their place (``data.order.items[2]``), so that :class:`StrictData` (Jinja's strict
undefined) can name in full what is missing: ``data.order.items[2].price``.

At save time, when a template declares its variables, each is a :class:`Placeholder`:
any key, call, loop or arithmetic on it gives another placeholder, so a render with them
fails only on names that were not declared and on what the sandbox refuses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

from jinja2 import StrictUndefined
from jinja2.exceptions import TemplateRuntimeError, UndefinedError
from jinja2.utils import missing

NOTIFICATION_FIELDS = ("id", "type", "title", "message", "user_id")
"""The fields of ``notification`` a template sees, beside the data's own keys."""


class Data(dict[str, Any]):
    """An object of the data that knows where it sits."""

    __slots__ = ("notify_path",)

    def __init__(self, items: Iterable[tuple[str, Any]], path: str) -> None:
        super().__init__(items)
        self.notify_path = path


class DataList(list[Any]):
    """A list of the data that knows where it sits."""

    __slots__ = ("notify_path",)

    def __init__(self, items: Iterable[Any], path: str) -> None:
        super().__init__(items)
        self.notify_path = path


# The sandbox names the type in its messages ("access to attribute 'x' of 'dict' object is
# unsafe"): give the names the template's author knows.
Data.__name__ = "dict"
DataList.__name__ = "list"


def _wrap(value: Any, path: str) -> Any:
    if isinstance(value, Mapping):
        return Data(((str(k), _wrap(v, f"{path}.{k}")) for k, v in value.items()), path)
    if isinstance(value, list | tuple):
        return DataList((_wrap(v, f"{path}[{i}]") for i, v in enumerate(value)), path)
    return value


def template_context(
    data: Mapping[str, Any] | None, notification: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The data's keys at top level, plus ``notification`` (id, type, title, message,
    user_id) when given, which wins over a data key of the same name."""
    context = {str(k): _wrap(v, f"data.{k}") for k, v in (data or {}).items()}
    if notification is not None:
        context["notification"] = Data(
            ((f, notification.get(f) or "") for f in NOTIFICATION_FIELDS), "notification"
        )
    return context


def placeholder_context(declared: Iterable[str]) -> dict[str, Any]:
    """A placeholder for each declared variable, and a ``notification`` of placeholder text."""
    context: dict[str, Any] = {v: Placeholder(f"data.{v}") for v in declared}
    context["notification"] = Data(
        ((f, f"notification.{f}") for f in NOTIFICATION_FIELDS), "notification"
    )
    return context


class MissingVariable(UndefinedError):
    """A template used a variable or key the data does not have; ``field`` names it in
    full when it is the data's (``data.…``, ``notification…``)."""

    def __init__(self, field: str | None, message: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def missing_field(obj: Any, name: Any) -> str | None:
    """The full name of a missing variable (``obj`` missing) or key of a data object."""
    if obj is missing and isinstance(name, str):
        return name if name == "notification" else f"data.{name}"
    if isinstance(obj, Data | DataList):
        path = obj.notify_path
        return f"{path}.{name}" if isinstance(name, str) else f"{path}[{name!r}]"
    return None


class StrictData(StrictUndefined):
    """Strict undefined whose error is a :class:`MissingVariable` naming what is missing."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        if exc is UndefinedError:  # not the sandbox's SecurityError: say what is missing
            error = functools.partial(MissingVariable, missing_field(obj, name))
            exc = cast(type[TemplateRuntimeError], error)
        super().__init__(hint, obj, name, exc)


class Placeholder:
    """Stands for a declared variable at save time."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    def __str__(self) -> str:
        return self._path

    def __getitem__(self, key: object) -> Placeholder:
        return Placeholder(f"{self._path}.{key}")

    def __call__(self, *args: object, **kwargs: object) -> Placeholder:
        return self

    def __iter__(self) -> Iterator[Placeholder]:
        return iter((Placeholder(f"{self._path}[0]"),))

    def __len__(self) -> int:
        return 1

    def __int__(self) -> int:
        return 1

    def __float__(self) -> float:
        return 1.0

    def __index__(self) -> int:
        return 1

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def _same(self, *other: object) -> Placeholder:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _same
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _same


Placeholder.__name__ = "str"
