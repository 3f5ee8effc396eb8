"""JSON-schema checks compiled once, for the API's request bodies and parameters.

openapi-core validates a request in about 5 ms (it walks the document through
``jsonschema-path`` on every call); a schema compiled here into nested Python closures
checks a body in microseconds. The compiled check is a shortcut, never the judge: it
knows a subset of JSON Schema (the keywords in :data:`KEYWORDS`) and refuses, by
raising :class:`Refused`, anything it is not sure of (a float where an integer is asked,
a value it cannot compare...). The caller then hands the request to openapi-core, which
accepts it or words the error, so the API answers exactly as before. A schema with any
other keyword (``format``, ``oneOf``, ``pattern``, ``default``...) does not compile at
all (:func:`compile_schema` returns ``None``).

What a check returns equals what openapi-core's unmarshalling returns for such schemas:
the same values, objects as dicts with the schema's properties first, in the schema's
order, then the other keys in the order sent.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

#: the JSON Schema keywords a compiled check understands (others: no compiled check)
KEYWORDS = frozenset({
    "type", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength",
    "properties", "required", "additionalProperties", "minProperties", "maxProperties",
    "items", "minItems", "maxItems",
    "$ref", "description", "title", "example", "examples",
})
#: how deep ``$ref`` chains may go (a recursive schema does not compile)
MAX_DEPTH = 20

Check = Callable[[Any], Any]


class Refused(Exception):
    """The value does not pass (or the check cannot tell): ask the full validator."""


class _NotCompilable(Exception):
    """The schema uses something a compiled check does not know."""


def compile_schema(schema: Mapping[str, Any], components: Mapping[str, Any] | None = None
                   ) -> Check | None:
    """A check for ``schema`` (``$ref`` resolved in the document's ``components``):
    returns the value as openapi-core would unmarshal it, or raises :class:`Refused`.

    ``None`` when the schema uses a keyword outside :data:`KEYWORDS`.
    """
    try:
        return _compile(schema, components or {}, 0)
    except _NotCompilable:
        return None


def _is_number(value: Any) -> bool:
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value)


#: JSON type name -> test (an integer is an int, never a bool or a float here)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``; lists and objects compare member by member."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return a == b


def _resolve(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema["$ref"]
    prefix = "#/components/"
    if len(schema) != 1 or not isinstance(ref, str) or not ref.startswith(prefix):
        raise _NotCompilable(ref)
    found: Any = components
    for part in ref[len(prefix):].split("/"):
        if not isinstance(found, Mapping) or part not in found:
            raise _NotCompilable(ref)
        found = found[part]
    return found


def _compile(schema: Any, components: Mapping[str, Any], depth: int) -> Check:
    if schema is True:
        return _any
    if depth > MAX_DEPTH or not isinstance(schema, Mapping) or set(schema) - KEYWORDS:
        raise _NotCompilable(schema)
    if "$ref" in schema:
        return _compile(_resolve(schema, components), components, depth + 1)
    tests: list[Callable[[Any], None]] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not names or any(name not in _TYPES for name in names):
            raise _NotCompilable(kinds)
        type_tests = [_TYPES[name] for name in names]

        def check_type(value: Any) -> None:
            if not any(test(value) for test in type_tests):
                raise Refused
        tests.append(check_type)
    if "enum" in schema:
        allowed = list(schema["enum"])

        def check_enum(value: Any) -> None:
            if not any(_json_equal(value, choice) for choice in allowed):
                raise Refused
        tests.append(check_enum)
    if "const" in schema:
        const = schema["const"]

        def check_const(value: Any) -> None:
            if not _json_equal(value, const):
                raise Refused
        tests.append(check_const)
    tests += _number_tests(schema) + _string_tests(schema)
    to_object = _object_part(schema, components, depth, tests)
    to_array = _array_part(schema, components, depth, tests)

    def check(value: Any) -> Any:
        for test in tests:
            test(value)
        kind = type(value)
        if kind is dict:
            return to_object(value)
        if kind is list:
            return to_array(value)
        if kind is float and not math.isfinite(value):
            raise Refused  # NaN, infinity: not JSON; let the full validator say
        return value

    return check


def _any(value: Any) -> Any:
    """Any JSON value; containers copied as openapi-core copies them."""
    kind = type(value)
    if kind is dict:
        return {k: _any(v) for k, v in value.items()}
    if kind is list:
        return [_any(v) for v in value]
    if kind is float and not math.isfinite(value):
        raise Refused
    return value


def _bound(schema: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = schema.get(key)
    if value is not None and (type(value) is bool or not isinstance(value, kind)):
        raise _NotCompilable(key)
    return value


def _number_tests(schema: Mapping[str, Any]) -> list[Callable[[Any], None]]:
    bounds = [(key, _bound(schema, key, (int, float))) for key in
              ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")]
    bounds = [(key, value) for key, value in bounds if value is not None]
    if not bounds:
        return []

    def check_bounds(value: Any) -> None:
        if not _is_number(value):
            return
        for key, limit in bounds:
            if (key == "minimum" and value < limit) or (key == "maximum" and value > limit) \
                    or (key == "exclusiveMinimum" and value <= limit) \
                    or (key == "exclusiveMaximum" and value >= limit):
                raise Refused
    return [check_bounds]


def _string_tests(schema: Mapping[str, Any]) -> list[Callable[[Any], None]]:
    shortest = _bound(schema, "minLength", int)
    longest = _bound(schema, "maxLength", int)
    if shortest is None and longest is None:
        return []
    low = shortest or 0
    high = math.inf if longest is None else longest

    def check_length(value: Any) -> None:
        if type(value) is str and not low <= len(value) <= high:
            raise Refused
    return [check_length]


def _object_part(schema: Mapping[str, Any], components: Mapping[str, Any], depth: int,
                 tests: list[Callable[[Any], None]]) -> Check:
    """Object keywords; returns what builds the checked object (schema properties first)."""
    raw_properties = schema.get("properties", {})
    if not isinstance(raw_properties, Mapping):
        raise _NotCompilable("properties")
    properties = {name: _compile(sub, components, depth + 1)
                  for name, sub in raw_properties.items()}
    required = list(schema.get("required", []))
    extra = schema.get("additionalProperties", True)
    extra_check = None if extra is False else _compile(extra, components, depth + 1)
    fewest = _bound(schema, "minProperties", int) or 0
    most = _bound(schema, "maxProperties", int)

    if required or fewest or most is not None:
        def check_counts(value: Any) -> None:
            if type(value) is not dict:
                return
            if any(name not in value for name in required) or len(value) < fewest or \
                    (most is not None and len(value) > most):
                raise Refused
        tests.append(check_counts)

    def to_object(value: dict) -> dict:
        out = {name: check(value[name]) for name, check in properties.items()
               if name in value}
        if len(out) != len(value):
            if extra_check is None:
                raise Refused
            for name, item in value.items():
                if name not in out:
                    out[name] = extra_check(item)
        return out

    return to_object


def _array_part(schema: Mapping[str, Any], components: Mapping[str, Any], depth: int,
                tests: list[Callable[[Any], None]]) -> Check:
    """Array keywords; returns what builds the checked list."""
    item_check = _compile(schema.get("items", True), components, depth + 1)
    fewest = _bound(schema, "minItems", int) or 0
    most = _bound(schema, "maxItems", int)

    if fewest or most is not None:
        def check_counts(value: Any) -> None:
            if type(value) is list and (len(value) < fewest or
                                        (most is not None and len(value) > most)):
                raise Refused
        tests.append(check_counts)

    def to_array(value: list) -> list:
        return [item_check(item) for item in value]

    return to_array
