"""Match a message or a response body against a pact's spec, and make examples from the spec.

A spec is an example value, matched by TYPE (as Pact's `like`): a string matches any string, an
integer any integer, a float any number, an object every key it lists (more keys are fine: a
provider may add fields, never drop one a consumer reads), a list item by item (same length).
Objects with one `$`-key say more:

    {"$decimal": "44.48"}          a number, or a string holding one (how a Decimal travels)
    {"$equals": "out_of_stock"}    exactly this value (`${name}` filled from the provider state)
    {"$regex": "^Bearer .+", "example": "Bearer ${token}"}   a string matching the pattern
    {"$optional": "p-1"}           the key may be absent or null; if present, like the example
    {"$eachLike": {...}}           a list of one or more items, each like the example
    {"$fromRequest": "order_id"}   the value the request carried in that field (a correlation
                                   id); checked as a non-empty string when no request is at hand

`match` returns every problem as "<path>: <what is wrong>"; an empty list means a match.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from re import fullmatch
from string import Template
from typing import Any

Params = dict[str, str]
_MARKERS = ("$decimal", "$equals", "$regex", "$optional", "$eachLike", "$fromRequest")


def _marker(spec: Any) -> str | None:
    if isinstance(spec, dict):
        return next((k for k in spec if k in _MARKERS), None)
    return None


def _fill(value: Any, state: Params) -> Any:
    return Template(value).safe_substitute(state) if isinstance(value, str) else value


def example(spec: Any, *, request: dict[str, Any] | None = None, state: Params | None = None) -> Any:
    """The smallest value the spec allows: optional keys left out, one item per `$eachLike`."""
    state = state or {}
    match _marker(spec):
        case "$decimal" | "$equals":
            return _fill(next(iter(spec.values())), state)
        case "$regex":
            return _fill(spec["example"], state)
        case "$eachLike":
            return [example(spec["$eachLike"], request=request, state=state)]
        case "$fromRequest":
            if request is None:
                raise ValueError(f"{spec} needs the request it answers")
            return request[spec["$fromRequest"]]
    if isinstance(spec, dict):
        return {
            k: example(v, request=request, state=state) for k, v in spec.items() if _marker(v) != "$optional"
        }
    if isinstance(spec, list):
        return [example(v, request=request, state=state) for v in spec]
    return _fill(spec, state)


def match(
    spec: Any,
    actual: Any,
    *,
    request: dict[str, Any] | None = None,
    state: Params | None = None,
    path: str = "$",
) -> list[str]:
    """Every way `actual` falls short of `spec` (see the module docstring)."""
    state = state or {}

    def again(s: Any, a: Any, at: str) -> list[str]:
        return match(s, a, request=request, state=state, path=at)

    marker = _marker(spec)
    if marker == "$decimal":
        return _unless(
            _is_decimal(actual), path, f"expected a decimal (number or numeric string), got {actual!r}"
        )
    if marker == "$equals":
        wanted = _fill(spec["$equals"], state)
        return _unless(actual == wanted, path, f"expected {wanted!r}, got {actual!r}")
    if marker == "$regex":
        ok = isinstance(actual, str) and fullmatch(spec["$regex"], actual) is not None
        return _unless(ok, path, f"expected a string matching {spec['$regex']!r}, got {actual!r}")
    if marker == "$optional":
        return [] if actual is None else again(spec["$optional"], actual, path)
    if marker == "$eachLike":
        if not isinstance(actual, list) or not actual:
            return [f"{path}: expected a non-empty list, got {actual!r}"]
        return [p for i, item in enumerate(actual) for p in again(spec["$eachLike"], item, f"{path}[{i}]")]
    if marker == "$fromRequest":
        field = spec["$fromRequest"]
        if request is None:
            ok = isinstance(actual, str) and actual != ""
            return _unless(ok, path, f"expected a non-empty string (the request's {field}), got {actual!r}")
        wanted = request.get(field)
        return _unless(actual == wanted, path, f"expected the request's {field} {wanted!r}, got {actual!r}")
    if isinstance(spec, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems: list[str] = []
        for key, sub in spec.items():
            if key not in actual and _marker(sub) != "$optional":
                problems.append(f"{path}.{key}: missing (the consumer reads it)")
            elif key in actual:
                problems += again(sub, actual[key], f"{path}.{key}")
        return problems
    if isinstance(spec, list):
        if not isinstance(actual, list) or len(actual) != len(spec):
            return [f"{path}: expected a list of {len(spec)} item(s), got {actual!r}"]
        return [
            p for i, (s, a) in enumerate(zip(spec, actual, strict=True)) for p in again(s, a, f"{path}[{i}]")
        ]
    return _like(spec, actual, path)


def _unless(ok: bool, path: str, problem: str) -> list[str]:
    return [] if ok else [f"{path}: {problem}"]


def _like(spec: Any, actual: Any, path: str) -> list[str]:
    """A scalar example matched by its type (bool is not a number; an int is a float's number)."""
    if isinstance(spec, bool):
        ok = isinstance(actual, bool)
    elif isinstance(spec, int):
        ok = isinstance(actual, int) and not isinstance(actual, bool)
    elif isinstance(spec, float):
        ok = isinstance(actual, int | float) and not isinstance(actual, bool)
    elif spec is None:
        ok = actual is None
    else:
        ok = isinstance(actual, type(spec))
    return _unless(ok, path, f"expected {_kind(spec)} like {spec!r}, got {actual!r}")


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _is_decimal(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False
