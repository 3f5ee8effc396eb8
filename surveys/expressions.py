"""A small, safe expression language for XLSForm rules: relevance (skip logic),
constraints, calculations, defaults, choice filters and repeat counts.

The syntax is the subset of XLSForm/XPath that survey authors use::

    ${age_band} = '60-69' or ${age_band} = '70+'
    selected(${topics}, 'other')
    count-selected(.) <= 3 and not(selected(., 'none') and count-selected(.) > 1)
    . >= 1 and . <= 365 and . <= today()
    if(${trained} = 'yes', ${times}, 0) > 2
    concat(${first-name}, ' ', jr:choice-name(${district}, '${district}'))
    regex(., '^1[0-9]{10}$')
    district = ${district}                 (a choice filter: a column of the choice)

Text is turned into tokens, tokens into a tree of frozen dataclasses by a
recursive-descent parser, and the tree is evaluated by a plain interpreter.
Nothing is ever handed to ``eval``/``exec`` and there is no attribute access or
name lookup other than ``${question}`` references (and, in a choice filter, the
choice's own columns), so a definition file cannot run code.  Why our own parser:
the grammar is small, errors must name the position in the author's text, and the
same tree serves the static checks done at import (references, types, choice
values).

Grammar (lowest precedence first; all binary operators are left-associative)::

    expr     := or
    or       := and ('or' and)*
    and      := equality ('and' equality)*
    equality := relation (('=' | '!=') relation)*
    relation := sum (('<' | '<=' | '>' | '>=') sum)*
    sum      := product (('+' | '-') product)*
    product  := unary (('*' | 'div' | 'mod') unary)*
    unary    := '-' unary | primary
    primary  := NUMBER | STRING | '${' name '}' | '.' | '(' expr ')'
              | function '(' [expr (',' expr)*] ')'
              | column                      (only with ``parse(text, columns=True)``)

A ``name`` is an XML-style name: a letter or ``_``, then letters, digits, ``_``, ``-``
or ``.``, at most 64 characters (``${hh-size}``, ``${q1.a}``, ``${_x}``).  A *column* is
a bare name not followed by ``(`` (never a function's name): in a choice filter it
is a column of the choice being filtered (its ``name`` or an extra column of the
choices sheet), a :class:`Column` node read from ``evaluate(..., columns=...)``.
Elsewhere a bare name is a :class:`ParseError` that says to write ``${name}``.
Strings are quoted with ``'`` or ``"`` and have no escapes (as in XPath).

Functions (ODK/XPath semantics; ``ARITY`` gives each one's fewest and most arguments,
a call with another number is a :class:`ParseError`).  "Empty" is an unanswered
question (None) or ``''``; text of a value is XPath ``string()`` (numbers without a
trailing ``.0``, NaN as ``NaN``, a multiple choice as its names joined by spaces):

* ``not(x)``, ``boolean(x)``: XPath ``boolean()`` of x (false for empty, 0, NaN);
  ``true()``, ``false()``;
* ``if(c, a, b)``: a when c is true, else b (only the branch taken is evaluated);
* ``selected(ref, 'v')``: v is a chosen name of a multiple choice (or the value of a
  single choice); false when empty.  ``count-selected(ref)``: how many are chosen, 0
  when empty.  ``selected-at(ref, n)``: the n-th chosen name, 0-based; ``''`` when
  empty, when n is past the end, negative or not a number;
* ``string-length(x)``: length of the text of x (0 when empty);
* ``concat(a, ...)``: the texts of one or more values joined (empty is ``''``);
* ``string(x)``: the text of x (``''`` when empty);
* ``number(x)``: x as a number; NaN when empty or not a number (``'12 '`` is 12);
* ``int(x)``: number(x) truncated toward zero; NaN stays NaN (so empty gives NaN);
* ``round(x)``, ``round(x, digits)``: number(x) rounded to ``digits`` decimals
  (default 0, negative allowed), halves away from zero as ODK does (``round(-2.5)`` is
  -3); NaN when x or digits is empty;
* ``coalesce(a, b)``: a unless a is empty, else b;
* ``contains(s, t)``, ``starts-with(s, t)``, ``ends-with(s, t)``: on the texts; an
  empty t is contained in everything;
* ``substr(s, start[, end])``: characters ``start`` (0-based) up to, not including,
  ``end`` (default: the end) of the text of s; a negative index counts from the end,
  indexes are clamped to the text, a non-number index counts as 0;
* ``regex(s, pattern)``: the pattern is found in the text of s (search, as JavaRosa's
  ``find()``: anchor with ``^...$`` for a whole match); false when the text is
  empty and the pattern needs a character.  Patterns are at most
  ``REGEX_MAX_PATTERN`` characters with repetition counts of at most 1000, texts at
  most ``REGEX_MAX_TEXT`` characters, and a search gives up after ``REGEX_TIMEOUT``
  seconds (the ``regex`` package's timeout, so no catastrophic backtracking): these
  raise :class:`EvaluationError`; an invalid literal pattern is a :class:`ParseError`;
* ``today()``: the date ``YYYY-MM-DD`` of ``now`` (a type ``date``, comparable with
  date answers: ``. <= today()``); ``now()``: ``now`` as ISO text with its UTC offset,
  to the second (``2024-05-01T09:30:00+08:00``).  ``now`` is the datetime given to
  :func:`evaluate` (naive means local time), by default the local time at the call;
* ``jr:choice-name(value, '${q}')``: the label, in the current language, of the choice
  ``value`` of question q, from the ``choice_label(q, value)`` callback given to
  :func:`evaluate` (``''`` when value is empty or not a choice of q; without a
  callback it raises :class:`EvaluationError`).

Unanswered questions (value ``None``) follow XLSForm/XPath 1.0:

* an empty value is the empty string ``''`` for string comparisons and NaN for
  numbers, so ``=``, ``<``, ``<=``, ``>``, ``>=`` with an empty operand are
  **false** (``${age} > 60`` and ``${age} <= 60`` are both false when age is
  unanswered); ``${q} = ''`` is the test for "not answered";
* ``!=`` is the negation of ``=``: ``${sex} != 'male'`` is **true** when sex is
  unanswered, exactly as in ODK/KoboToolbox; write
  ``${sex} != '' and ${sex} != 'male'`` when that is not wanted;
* ``selected(empty, 'x')`` is false and ``count-selected(empty)`` is 0;
* arithmetic with an empty operand gives NaN (so any comparison on it is false);
  ``x div 0`` is +-infinity (NaN for ``0 div 0``), ``x mod 0`` is NaN;
* ``and``/``or`` treat values as XPath ``boolean()``: false for ``''``, 0, NaN.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import numpy as np
import regex  # Python's re has no timeout; regex's timeout= bounds backtracking

__all__ = [
    "ARITY",
    "FUNCTIONS",
    "NAME_RE",
    "REGEX_MAX_PATTERN",
    "REGEX_MAX_TEXT",
    "REGEX_TIMEOUT",
    "Binary",
    "Call",
    "Column",
    "Current",
    "EvaluationError",
    "Expr",
    "Num",
    "ParseError",
    "Ref",
    "Selection",
    "Str",
    "Unary",
    "VarType",
    "check_types",
    "columns",
    "evaluate",
    "evaluate_columns",
    "infer_type",
    "is_date",
    "is_true",
    "parse",
    "references",
    "to_source",
    "uses_current",
]

#: function name -> (fewest, most) arguments; most None = any number
ARITY: dict[str, tuple[int, int | None]] = {
    "not": (1, 1), "selected": (2, 2), "count-selected": (1, 1), "if": (3, 3),
    "string-length": (1, 1), "true": (0, 0), "false": (0, 0), "boolean": (1, 1),
    "today": (0, 0), "now": (0, 0), "concat": (1, None), "int": (1, 1), "round": (1, 2),
    "number": (1, 1), "string": (1, 1), "coalesce": (2, 2), "regex": (2, 2),
    "selected-at": (2, 2), "jr:choice-name": (2, 2), "contains": (2, 2),
    "starts-with": (2, 2), "ends-with": (2, 2), "substr": (2, 3),
}
#: function name -> the fewest arguments it takes (kept for callers that build calls)
FUNCTIONS: dict[str, int] = {name: low for name, (low, _high) in ARITY.items()}

_KEYWORD_OPS = {"and", "or", "div", "mod"}
_PRECEDENCE = {"or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "+": 5, "-": 5, "*": 6, "div": 6, "mod": 6}
_UNARY_PRECEDENCE = 7
MAX_LENGTH = 2000  # characters; definitions hold short rules, this bounds parser work
MAX_DEPTH = 60  # nesting of parentheses, calls and unary minus
MAX_NAME = 64  # characters of a ${name} or a bare column name
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
#: a function name (with an optional ``jr:`` style prefix) or a bare column name
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*(?::[A-Za-z_][A-Za-z0-9_.\-]*)?")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MONTH_RE = re.compile(r"[0-9]{4}-[0-9]{2}")
_QUOTED_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]{0,63})\}")
REGEX_MAX_PATTERN = 500  # characters of a regex() pattern
REGEX_MAX_TEXT = 10_000  # characters of the text regex() searches
REGEX_TIMEOUT = 0.1  # seconds one regex() search may take
_REGEX_MAX_COUNT = 1000  # largest {n,m} count; regex expands counts when compiling
_REGEX_MAX_PRODUCT = 10_000  # product of the least counts of all {n,m} of one pattern
_REGEX_COUNT_RE = re.compile(r"(?<!\\)\{([0-9]+)(?:,([0-9]*))?\}")


class ParseError(ValueError):
    """The text is not a valid expression; ``position`` is the 0-based offset of the fault."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.message = message
        self.position = position


class EvaluationError(ValueError):
    """An expression that passed no type check met values it cannot combine."""


# ---------------------------------------------------------------------- tree


@dataclass(frozen=True)
class Num:
    """A number literal (never negative: ``-1`` is ``Unary('-', Num(1))``)."""

    value: int | float


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Ref:
    """``${name}``: the value of a question."""

    name: str


@dataclass(frozen=True)
class Column:
    """A bare ``name`` in a choice filter: that column of the choice being filtered."""

    name: str


@dataclass(frozen=True)
class Current:
    """``.``: the value being checked by a constraint."""


@dataclass(frozen=True)
class Unary:
    op: str  # only "-"
    operand: Expr


@dataclass(frozen=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]


Expr = Num | Str | Ref | Column | Current | Unary | Binary | Call


# ----------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # num, str, ref, dot, op, name, "(", ")", ",", end
    value: Any
    pos: int


_OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "+", "-", "*")


def _tokens(text: str) -> Iterator[_Token]:
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if ch == "$":
            if not text.startswith("${", i):
                raise ParseError("'$' must start a reference like ${name}", i)
            end = text.find("}", i + 2)
            if end < 0:
                raise ParseError("reference ${... is not closed with '}'", i)
            name = text[i + 2:end].strip()
            if not NAME_RE.fullmatch(name):
                why = (f" (a name has at most {MAX_NAME} characters)"
                       if NAME_RE.fullmatch(name[:MAX_NAME]) else "")
                raise ParseError(f"{text[i:end + 1]!r} is not a valid question reference{why}",
                                 i)
            yield _Token("ref", name, i)
            i = end + 1
            continue
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                raise ParseError("string is not closed", i)
            yield _Token("str", text[i + 1:end], i)
            i = end + 1
            continue
        m = _NUMBER_RE.match(text, i)
        if m:
            raw = m.group()
            value = float(raw) if "." in raw else int(raw)
            if isinstance(value, float) and math.isinf(value):
                raise ParseError("number too large", i)
            yield _Token("num", value, i)
            i = m.end()
            continue
        if ch == ".":
            yield _Token("dot", ".", i)
            i += 1
            continue
        if ch in "(),":
            yield _Token(ch, ch, i)
            i += 1
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            yield _Token("op", op, i)
            i += len(op)
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            word = m.group()
            head = re.split(r"[.:]", word, maxsplit=1)[0]
            if head in _KEYWORD_OPS:  # "div.5" is div .5, not a name
                word = head
            yield _Token("op" if word in _KEYWORD_OPS else "name", word, i)
            i += len(word)
            continue
        raise ParseError(f"unexpected character {ch!r}", i)
    yield _Token("end", None, n)


# -------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, columns: bool) -> None:
        self.tokens = list(_tokens(text))
        self.i = 0
        self.depth = 0
        self.columns = columns

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"nested more than {MAX_DEPTH} levels deep", self.tok.pos)

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> _Token:
        if self.tok.kind != kind:
            raise ParseError(f"expected {what}, found {_describe(self.tok)}", self.tok.pos)
        return self.take()

    def expression(self, min_prec: int = 1) -> Expr:
        left = self.unary()
        while self.tok.kind == "op" and _PRECEDENCE[self.tok.value] >= min_prec:
            op = self.take().value
            right = self.expression(_PRECEDENCE[op] + 1)
            left = Binary(op, left, right)
        return left

    def unary(self) -> Expr:
        if self.tok.kind == "op" and self.tok.value == "-":
            self.take()
            self.deeper()
            operand = self.unary()
            self.depth -= 1
            return Unary("-", operand)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.take()
        if tok.kind == "num":
            return Num(tok.value)
        if tok.kind == "str":
            return Str(tok.value)
        if tok.kind == "ref":
            return Ref(tok.value)
        if tok.kind == "dot":
            return Current()
        if tok.kind == "(":
            self.deeper()
            inner = self.expression()
            self.expect(")", "')'")
            self.depth -= 1
            return inner
        if tok.kind == "name":
            if self.tok.kind != "(":
                return self.bare_name(tok)
            return self.call(tok)
        raise ParseError(f"expected a value, found {_describe(tok)}", tok.pos)

    def bare_name(self, tok: _Token) -> Column:
        name = tok.value
        if tok.value in ARITY:
            raise ParseError(f"expected '(' after {name}, found {_describe(self.tok)}",
                             self.tok.pos)
        if not self.columns:
            hint = f"${{{name}}}" if NAME_RE.fullmatch(name) else "${name}"
            raise ParseError(f"unknown word {name!r}: write a question as {hint} (bare "
                             "names are columns of the choices, only in a choice filter)",
                             tok.pos)
        if ":" in name or not NAME_RE.fullmatch(name):
            raise ParseError(f"{name!r} is not a column name (a letter or '_', then "
                             f"letters, digits, '_', '-' or '.', at most {MAX_NAME})",
                             tok.pos)
        return Column(name)

    def call(self, tok: _Token) -> Call:
        name = tok.value
        if name not in ARITY:
            raise ParseError(f"unknown function {name!r} (functions: {', '.join(ARITY)}; "
                             "questions are written ${name})", tok.pos)
        self.expect("(", f"'(' after {name}")
        self.deeper()
        args: list[Expr] = []
        starts: list[int] = []
        if self.tok.kind != ")":
            starts.append(self.tok.pos)
            args.append(self.expression())
            while self.tok.kind == ",":
                self.take()
                starts.append(self.tok.pos)
                args.append(self.expression())
        self.expect(")", "')' or ','")
        self.depth -= 1
        low, high = ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            raise ParseError(f"{name}() takes {_arity_text(low, high)}, got {len(args)}",
                             tok.pos)
        if name == "regex" and isinstance(args[1], Str):
            problem = _pattern_problem(args[1].value)
            if problem:
                raise ParseError(f"regex() pattern {args[1].value!r}: {problem}", starts[1])
        return Call(name, tuple(args))


def _arity_text(low: int, high: int | None) -> str:
    def count(k: int) -> str:
        return f"{k} argument" + ("" if k == 1 else "s")

    if high is None:
        return f"at least {count(low)}"
    if low == high:
        return count(low)
    return f"{low} or {count(high)}" if high == low + 1 else f"{low} to {count(high)}"


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    if tok.kind == "ref":
        return f"${{{tok.value}}}"
    if tok.kind == "str":
        return f"string {tok.value!r}"
    return repr(str(tok.value))


def parse(text: str, columns: bool = False) -> Expr:
    """Parse an expression; raise :class:`ParseError` (and nothing else) on bad text.

    ``columns=True`` reads a choice filter: bare names are :class:`Column` nodes.
    """
    if not isinstance(text, str):
        raise ParseError("an expression must be text", 0)
    if len(text) > MAX_LENGTH:
        raise ParseError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(text, columns)
    if parser.tok.kind == "end":
        raise ParseError("the expression is empty", 0)
    tree = parser.expression()
    if parser.tok.kind != "end":
        raise ParseError(f"unexpected {_describe(parser.tok)}", parser.tok.pos)
    return tree


def _pattern_problem(pattern: str) -> str | None:
    """Why a regex() pattern is refused (too long, counts too large, invalid), or None."""
    if len(pattern) > REGEX_MAX_PATTERN:
        return f"longer than {REGEX_MAX_PATTERN} characters"
    product = 1
    for m in _REGEX_COUNT_RE.finditer(pattern):
        counts = [int(c) for c in m.groups() if c]
        if max(counts) > _REGEX_MAX_COUNT:
            return f"a repetition count above {_REGEX_MAX_COUNT} ({m.group()})"
        product *= max(counts[0], 1)
        if product > _REGEX_MAX_PRODUCT:
            return "its repetition counts multiply to more than " \
                   f"{_REGEX_MAX_PRODUCT}"
    try:
        _compiled(pattern)
    except regex.error as exc:
        return f"not a valid regular expression ({exc})"
    return None


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    """The compiled pattern (cached: the same rules run on every answer)."""
    return regex.compile(pattern)


# ------------------------------------------------------------------- printer


def _number_text(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"cannot write number {value!r} in an expression")
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


def _precedence(node: Expr) -> int:
    if isinstance(node, Binary):
        return _PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return _UNARY_PRECEDENCE
    return 99


def to_source(node: Expr) -> str:
    """Canonical text of a tree, with only the parentheses it needs.

    ``parse(to_source(tree)) == tree`` for every tree :func:`parse` can make;
    used to normalise expressions before comparing two definitions.
    """
    if isinstance(node, Num):
        return _number_text(node.value)
    if isinstance(node, Str):
        if "'" not in node.value:
            return f"'{node.value}'"
        if '"' not in node.value:
            return f'"{node.value}"'
        raise ValueError("a string cannot hold both kinds of quote")
    if isinstance(node, Ref):
        return f"${{{node.name}}}"
    if isinstance(node, Column):
        return node.name
    if isinstance(node, Current):
        return "."
    if isinstance(node, Unary):
        inner = to_source(node.operand)
        if _precedence(node.operand) < _UNARY_PRECEDENCE:
            inner = f"({inner})"
        return f"-{inner}" if not inner.startswith("-") else f"- {inner}"
    if isinstance(node, Binary):
        prec = _PRECEDENCE[node.op]
        left, right = to_source(node.left), to_source(node.right)
        if _precedence(node.left) < prec:
            left = f"({left})"
        if _precedence(node.right) <= prec:
            right = f"({right})"
        return f"{left} {node.op} {right}"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_source(a) for a in node.args)})"
    raise TypeError(f"not an expression node: {node!r}")


def _walk(node: Expr) -> Iterator[Expr]:
    yield node
    if isinstance(node, Unary):
        yield from _walk(node.operand)
    elif isinstance(node, Binary):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from _walk(arg)


def references(node: Expr) -> list[str]:
    """Question names referenced with ``${...}``, in order of first appearance.

    The question named by the quoted ``'${q}'`` of ``jr:choice-name(v, '${q}')``
    counts: the rule depends on that question's choices.
    """
    seen: dict[str, None] = {}
    for sub in _walk(node):
        if isinstance(sub, Ref):
            seen.setdefault(sub.name)
        elif isinstance(sub, Call) and sub.name == "jr:choice-name":
            for name in references(sub.args[0]):  # in the order they are written
                seen.setdefault(name)
            quoted = _quoted_question(sub.args[1])
            if quoted is not None:
                seen.setdefault(quoted)
    return list(seen)


def columns(node: Expr) -> list[str]:
    """Bare column names of a choice filter (:class:`Column`), in order of first appearance."""
    seen: dict[str, None] = {}
    for sub in _walk(node):
        if isinstance(sub, Column):
            seen.setdefault(sub.name)
    return list(seen)


def _quoted_question(node: Expr) -> str | None:
    """q of the literal ``'${q}'`` (the second argument of jr:choice-name), else None."""
    if isinstance(node, Str):
        m = _QUOTED_REF_RE.fullmatch(node.value.strip())
        if m:
            return m.group(1)
    return None


def uses_current(node: Expr) -> bool:
    return any(isinstance(sub, Current) for sub in _walk(node))


# --------------------------------------------------------------- type checks


@dataclass(frozen=True)
class VarType:
    """What an expression knows about a value.

    ``kind``: ``number``, ``string``, ``date``, ``month``, ``choice`` (one choice,
    compared as a string, or as a number when every choice name is a number),
    ``multi`` (several choices), ``boolean``.  ``choices`` lists the allowed
    values of ``choice``/``multi``; ``label`` names the value in messages.
    """

    kind: str
    choices: tuple[str, ...] = ()
    label: str = ""

    @property
    def numeric_choices(self) -> bool:
        return self.kind == "choice" and bool(self.choices) and all(
            _as_number(c) is not None for c in self.choices)


def _as_number(text: str) -> float | None:
    if "_" in text:  # Python reads 1_000, XPath does not
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_NUMBER = VarType("number")
_STRING = VarType("string")
_BOOLEAN = VarType("boolean")


def _what(t: VarType) -> str:
    names = {"number": "a number", "string": "text", "date": "a date", "month": "a month",
             "choice": "a single choice", "multi": "a multiple choice",
             "boolean": "a condition"}
    return f"{t.label} ({names[t.kind]})" if t.label else names[t.kind]


_WANTS = ("boolean", "number", "any")


def check_types(node: Expr, lookup: Callable[[str], VarType | None],
                current: VarType | None = None, want: str = "boolean", *,
                columns: Callable[[str], VarType | None] | None = None) -> list[str]:
    """Every type problem of an expression, as messages (empty when it is well typed).

    ``lookup(name)`` gives the type of ``${name}`` or None for names that the
    caller reports itself (unknown or misplaced references are not repeated
    here).  ``current`` is the type of ``.``; None means ``.`` is not allowed
    (relevance).  ``want`` is what the whole expression must give: ``boolean`` (a
    relevance, constraint or choice filter), ``number`` (a repeat count: a number, or
    text that number() reads) or ``any`` (a calculation or default).  ``columns(name)``
    gives the type of a bare column of a choice filter (None: reported by the caller);
    without it a :class:`Column` is a problem.
    """
    if want not in _WANTS:
        raise ValueError(f"want must be one of {', '.join(_WANTS)}, not {want!r}")
    problems: list[str] = []
    result = _Checker(lookup, current, problems, columns).infer(node)
    if result is not None and want == "boolean" and result.kind != "boolean":
        problems.append(f"must be a condition (true or false), but gives {_what(result)}")
    if result is not None and want == "number" and not (
            _Checker.numeric(result) or result.kind in ("string", "choice")):
        problems.append(f"must be a number, but gives {_what(result)}")
    return problems


def infer_type(node: Expr, lookup: Callable[[str], VarType | None],
               current: VarType | None = None, *,
               columns: Callable[[str], VarType | None] | None = None) -> VarType | None:
    """The type an expression gives (None when a reference's type is unknown), e.g. the
    type of a ``calculate`` question from its calculation.  Problems are ignored: see
    :func:`check_types`."""
    result = _Checker(lookup, current, [], columns).infer(node)
    return None if result is None else VarType(result.kind, result.choices)


class _Checker:
    def __init__(self, lookup: Callable[[str], VarType | None], current: VarType | None,
                 problems: list[str],
                 columns: Callable[[str], VarType | None] | None = None) -> None:
        self.lookup, self.current, self.problems = lookup, current, problems
        self.columns = columns

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def infer(self, node: Expr) -> VarType | None:
        if isinstance(node, Num):
            return _NUMBER
        if isinstance(node, Str):
            return VarType("string", label=repr(node.value))
        if isinstance(node, Ref):
            t = self.lookup(node.name)
            return None if t is None else VarType(t.kind, t.choices, f"${{{node.name}}}")
        if isinstance(node, Column):
            if self.columns is None:
                self.fail(f"bare name {node.name!r}: only a choice filter reads columns of "
                          f"the choices; write a question as ${{{node.name}}}")
                return None
            t = self.columns(node.name)
            return None if t is None else VarType(t.kind, t.choices, f"column {node.name!r}")
        if isinstance(node, Current):
            if self.current is None:
                self.fail("'.' (the current answer) is only allowed in a constraint")
                return None
            return VarType(self.current.kind, self.current.choices, "'.'")
        if isinstance(node, Unary):
            t = self.infer(node.operand)
            if t is not None and not self.numeric(t):
                self.fail(f"'-' needs a number, not {_what(t)}")
            return _NUMBER
        if isinstance(node, Binary):
            return self.binary(node)
        return self.call(node)

    @staticmethod
    def numeric(t: VarType) -> bool:
        return t.kind == "number" or t.numeric_choices

    def binary(self, node: Binary) -> VarType | None:
        left, right = self.infer(node.left), self.infer(node.right)
        op = node.op
        if op in ("and", "or"):
            for t in (left, right):
                if t is not None and t.kind != "boolean":
                    self.fail(f"'{op}' joins conditions, but got {_what(t)}")
            return _BOOLEAN
        if op in ("+", "-", "*", "div", "mod"):
            for t in (left, right):
                if t is not None and not self.numeric(t):
                    self.fail(f"'{op}' needs numbers, not {_what(t)}")
            return _NUMBER
        if left is not None and right is not None:
            if op in ("=", "!="):
                self.equality(op, left, node.left, right, node.right)
            else:
                self.ordering(op, left, node.left, right, node.right)
        return _BOOLEAN

    def equality(self, op: str, lt: VarType, ln: Expr, rt: VarType, rn: Expr) -> None:
        for t, other in ((lt, rn), (rt, ln)):
            if isinstance(other, Str) and other.value == "" and t.kind != "boolean":
                return  # "= ''" tests whether a question was answered
            if t.kind == "multi":
                self.fail(f"use selected() or count-selected() with {_what(t)}, "
                          f"not '{op}'")
                return
        kinds = {lt.kind, rt.kind}
        if kinds == {"boolean"} or kinds == {"number"}:
            return
        if "boolean" in kinds:
            self.fail(f"cannot compare {_what(lt)} with {_what(rt)}")
            return
        for t, n, other_t in ((lt, ln, rt), (rt, rn, lt)):
            if t.kind == "choice" and isinstance(n, Ref | Current):
                self.choice_literal(t, other_t, self._literal(ln if n is rn else rn), op)
                return
        self.compatible(op, lt, ln, rt, rn)

    @staticmethod
    def _literal(node: Expr) -> Expr | None:
        return node if isinstance(node, Num | Str) else None

    def choice_literal(self, choice: VarType, other: VarType, literal: Expr | None,
                       op: str) -> None:
        if other.kind == "number":
            if not choice.numeric_choices:
                self.fail(f"compares {_what(choice)} with a number; its choices are text, "
                          "write the choice name in quotes")
            elif isinstance(literal, Num) and not any(
                    _as_number(c) == literal.value for c in choice.choices):
                self.fail(f"{to_source(literal)} is not a choice of {choice.label}")
            return
        if isinstance(literal, Str) and literal.value not in choice.choices:
            self.fail(f"{literal.value!r} is not a choice of {choice.label} "
                      f"(choices: {', '.join(choice.choices)})")
        elif other.kind in ("date", "month"):
            self.fail(f"cannot compare {_what(choice)} with {_what(other)}")

    def compatible(self, op: str, lt: VarType, ln: Expr, rt: VarType, rn: Expr) -> None:
        """Equality/ordering between two non-choice, non-multi, non-boolean values."""
        for t, other_t, other_n in ((lt, rt, rn), (rt, lt, ln)):
            if t.kind in ("date", "month"):
                pattern = DATE_RE if t.kind == "date" else MONTH_RE
                if other_t.kind == t.kind:
                    return
                if isinstance(other_n, Str):
                    if not pattern.fullmatch(other_n.value) or not _valid_iso(other_n.value):
                        form = "'YYYY-MM-DD'" if t.kind == "date" else "'YYYY-MM'"
                        self.fail(f"compares {_what(t)} with {other_n.value!r}; write the "
                                  f"{t.kind} as {form}")
                    return
                self.fail(f"cannot compare {_what(t)} with {_what(other_t)}")
                return
        if {lt.kind, rt.kind} == {"number", "string"}:
            num, text = (lt, rt) if lt.kind == "number" else (rt, lt)
            self.fail(f"compares {_what(num)} with {_what(text)}")

    def ordering(self, op: str, lt: VarType, ln: Expr, rt: VarType, rn: Expr) -> None:
        if self.numeric(lt) and self.numeric(rt):
            return
        if lt.kind in ("date", "month") or rt.kind in ("date", "month"):
            self.compatible(op, lt, ln, rt, rn)
            return
        bad = lt if not self.numeric(lt) else rt
        self.fail(f"'{op}' compares numbers (or dates), not {_what(bad)}")

    def call(self, node: Call) -> VarType | None:
        name, args = node.name, node.args
        if name in ("true", "false"):
            return _BOOLEAN
        if name == "today":
            return VarType("date", label="today()")
        if name == "now":
            return VarType("string", label="now()")
        if name == "not":
            t = self.infer(args[0])
            if t is not None and t.kind != "boolean":
                self.fail(f"not() needs a condition, not {_what(t)}")
            return _BOOLEAN
        if name == "if":
            cond, yes, no = (self.infer(a) for a in args)
            if cond is not None and cond.kind != "boolean":
                self.fail(f"the first argument of if() must be a condition, not {_what(cond)}")
            return self.alike("if", yes, no)
        if name == "coalesce":
            first, second = (self.infer(a) for a in args)
            return self.alike("coalesce", first, second)
        if name in ("boolean", "string", "concat"):
            for a in args:
                self.infer(a)
            return _BOOLEAN if name == "boolean" else _STRING
        if name in ("string-length", "contains", "starts-with", "ends-with", "regex"):
            for a in args:
                self.text(name, self.infer(a))
            return _NUMBER if name == "string-length" else _BOOLEAN
        if name == "substr":
            self.text(name, self.infer(args[0]))
            for a in args[1:]:
                self.number(name, self.infer(a), "its start and end")
            return _STRING
        if name in ("int", "round", "number"):
            self.number(name, self.infer(args[0]), "")
            if len(args) > 1:
                self.number(name, self.infer(args[1]), "its digits")
            return _NUMBER
        if name == "jr:choice-name":
            return self.choice_name(args)
        target = args[0]
        t = self.infer(target)
        if not isinstance(target, Ref | Current):
            example = {"selected": "selected(${q}, 'value')",
                       "selected-at": "selected-at(${q}, 0)"}.get(name, f"{name}(${{q}})")
            self.fail(f"{name}() needs a question, like {example}")
            t = None
        if name == "count-selected":
            if t is not None and t.kind != "multi":
                self.fail(f"count-selected() needs a multiple-choice question, not {_what(t)}")
            return _NUMBER
        if name == "selected-at":
            self.number(name, self.infer(args[1]), "its position")
            if t is not None and t.kind not in ("choice", "multi"):
                self.fail(f"selected-at() needs a choice question, not {_what(t)}")
                return _STRING
            return _STRING if t is None else VarType("choice", t.choices)
        # selected(q, 'value')
        value = args[1]
        self.infer(value)
        if t is not None and t.kind not in ("choice", "multi"):
            self.fail(f"selected() needs a choice question, not {_what(t)}")
        elif isinstance(value, Column):
            pass  # a choice filter: "selected(${crops}, name)"
        elif not isinstance(value, Str):
            self.fail("the second argument of selected() must be a choice name in quotes")
        elif t is not None and value.value not in t.choices:
            self.fail(f"{value.value!r} is not a choice of {t.label} "
                      f"(choices: {', '.join(t.choices)})")
        return _BOOLEAN

    def alike(self, name: str, yes: VarType | None, no: VarType | None) -> VarType | None:
        """The type of if()/coalesce(), whose two values must be of one kind."""
        if yes is not None and no is not None:
            ky = "number" if self.numeric(yes) and yes.kind != "choice" else yes.kind
            kn = "number" if self.numeric(no) and no.kind != "choice" else no.kind
            simple = {"choice": "string"}
            if simple.get(ky, ky) != simple.get(kn, kn):
                self.fail(f"{name}() gives {_what(yes)} or {_what(no)}; both must be alike")
            return VarType(simple.get(ky, ky))
        return yes or no

    def text(self, name: str, t: VarType | None) -> None:
        """An argument that a function reads as text."""
        if t is not None and t.kind in ("multi", "boolean"):
            hint = "; use selected() with a multiple choice" if t.kind == "multi" else ""
            self.fail(f"{name}() needs text, not {_what(t)}{hint}")

    def number(self, name: str, t: VarType | None, what: str) -> None:
        """An argument that a function reads as a number (text is read by number())."""
        if t is not None and not (self.numeric(t) or t.kind in ("string", "choice")):
            of = f" as {what}" if what else ""
            self.fail(f"{name}() needs a number{of}, not {_what(t)}")

    def choice_name(self, args: tuple[Expr, ...]) -> VarType:
        """``jr:choice-name(value, '${q}')``: q must be a choice question, in quotes."""
        self.text("jr:choice-name", self.infer(args[0]))
        quoted = _quoted_question(args[1])
        if quoted is None:
            self.infer(args[1])
            self.fail("the second argument of jr:choice-name() must be the question in "
                      "quotes, like jr:choice-name(${q}, '${q}')")
            return _STRING
        t = self.lookup(quoted)
        if t is not None and t.kind not in ("choice", "multi"):
            self.fail(f"jr:choice-name() needs a choice question, not "
                      f"${{{quoted}}} ({_what(VarType(t.kind))})")
        return _STRING


def is_date(text: str) -> bool:
    """Whether the text is a real calendar date written ``YYYY-MM-DD``."""
    return bool(DATE_RE.fullmatch(text)) and _valid_iso(text)


def _valid_iso(text: str) -> bool:
    try:
        if DATE_RE.fullmatch(text):
            dt.date.fromisoformat(text)
        else:
            dt.date.fromisoformat(text + "-01")
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- evaluation


def is_true(value: Any) -> bool:
    """XPath ``boolean()``: false for None, '', 0, NaN and empty selections."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str | list | tuple):
        return len(value) > 0
    raise EvaluationError(f"not a value: {value!r}")


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an int beyond the float range
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        n = _as_number(value.strip()) if value.strip() else None
        return math.nan if n is None else n
    return math.nan  # a selection is not a number


def _string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer():
            return str(int(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return is_true(a) == is_true(b)
    if isinstance(a, int | float) or isinstance(b, int | float):
        return _number(a) == _number(b)  # NaN == x is False
    return _string(a) == _string(b)


def _order(op: str, a: Any, b: Any) -> bool:
    sa, sb = _string(a), _string(b)
    for pattern in (DATE_RE, MONTH_RE):  # ISO dates and months order as text
        if pattern.fullmatch(sa) and pattern.fullmatch(sb):
            x: Any
            y: Any
            x, y = sa, sb
            break
    else:
        x, y = _number(a), _number(b)
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    return x >= y


def _arith(op: str, a: Any, b: Any) -> float:
    x, y = _number(a), _number(b)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "div":
        if y == 0:
            return math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x)
        return x / y
    if y == 0 or math.isinf(x):
        return math.nan
    return math.fmod(x, y)


def evaluate(node: Expr, values: Mapping[str, Any] | Callable[[str], Any],
             current: Any = None, *, columns: Mapping[str, Any] | None = None,
             choice_label: Callable[[str, str], str | None] | None = None,
             now: dt.datetime | None = None) -> Any:
    """Value of an expression.

    ``values`` maps question names to answers (None or missing = unanswered):
    str for text and single choice, list of choice names for multiple choice,
    int/float for numbers, ISO text for dates (``YYYY-MM-DD``) and months
    (``YYYY-MM``).  ``current`` is the value of ``.``.  ``columns`` holds the
    columns of the choice a choice filter is looking at (``{'name': ..., 'district':
    ...}``; a missing column is empty).  ``choice_label(question, value)`` gives the
    label of a choice in the current language for ``jr:choice-name()`` (None: not a
    choice).  ``now`` is the time of ``today()`` and ``now()`` (default: the clock,
    read once per call).  Use :func:`is_true` on the result of a relevance,
    constraint or choice filter.
    """
    get = values.get if isinstance(values, Mapping) else values
    return _eval(node, _Context(get, current, columns, choice_label, now))


class _Context:
    """What an evaluation reads besides the tree: answers, '.', choice columns, labels
    and the time (read from the clock at most once)."""

    def __init__(self, get: Callable[[str], Any], current: Any,
                 columns: Mapping[str, Any] | None,
                 choice_label: Callable[[str, str], str | None] | None,
                 now: dt.datetime | None) -> None:
        self.get, self.current, self.columns = get, current, columns
        self.choice_label, self._now = choice_label, now

    def column(self, name: str) -> Any:
        if self.columns is None:
            raise EvaluationError(f"column {name!r}: a choice filter needs the choice's "
                                  "columns (evaluate(..., columns=...))")
        return self.columns.get(name)

    def now(self) -> dt.datetime:
        """The time of today()/now(), with its UTC offset (naive means local time)."""
        if self._now is None:
            self._now = dt.datetime.now().astimezone()
        elif self._now.tzinfo is None or self._now.utcoffset() is None:
            self._now = self._now.astimezone()
        return self._now


def _eval(node: Expr, ctx: _Context) -> Any:
    if isinstance(node, Num | Str):
        return node.value
    if isinstance(node, Ref):
        return ctx.get(node.name)
    if isinstance(node, Current):
        return ctx.current
    if isinstance(node, Column):
        return ctx.column(node.name)
    if isinstance(node, Unary):
        return -_number(_eval(node.operand, ctx))
    if isinstance(node, Binary):
        op = node.op
        if op == "and":
            return is_true(_eval(node.left, ctx)) and is_true(_eval(node.right, ctx))
        if op == "or":
            return is_true(_eval(node.left, ctx)) or is_true(_eval(node.right, ctx))
        a, b = _eval(node.left, ctx), _eval(node.right, ctx)
        if op == "=":
            return _equal(a, b)
        if op == "!=":
            return not _equal(a, b)
        if op in ("<", "<=", ">", ">="):
            return _order(op, a, b)
        return _arith(op, a, b)
    if isinstance(node, Call):
        return _call(node, ctx)
    raise EvaluationError(f"not an expression node: {node!r}")


def _call(node: Call, ctx: _Context) -> Any:
    name, args = node.name, node.args
    if name == "if":
        branch = args[1] if is_true(_eval(args[0], ctx)) else args[2]
        return _eval(branch, ctx)
    values = [_eval(a, ctx) for a in args]
    return _ROW_FUNCTIONS[name](ctx, *values)


def _count_selected(value: Any) -> int:
    if value is None or value == "":
        return 0
    return len(value) if isinstance(value, list | tuple) else 1


def _selected(value: Any, wanted_value: Any) -> bool:
    wanted = _string(wanted_value)
    if value is None:
        return False
    if isinstance(value, list | tuple):
        return wanted in [str(v) for v in value]
    return wanted in _string(value).split(" ")


def _selected_at(value: Any, index: Any) -> str:
    if value is None:
        return ""
    names = [str(v) for v in value] if isinstance(value, list | tuple) else \
        _string(value).split()
    i = _number(index)
    if not math.isfinite(i):
        return ""
    i = math.trunc(i)
    return names[i] if 0 <= i < len(names) else ""


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple) and len(value) == 0)


def _int(value: Any) -> int | float:
    x = _number(value)
    return math.trunc(x) if math.isfinite(x) else x


def _round(value: Any, digits: Any = 0) -> int | float:
    """ODK round(): halves away from zero, at ``digits`` decimals (negative: tens...)."""
    x, d = _number(value), _number(digits)
    if math.isnan(d):
        return math.nan
    if not math.isfinite(x):
        return x
    if math.isinf(d):
        return x if d > 0 else 0
    d = math.trunc(d)
    if d > 20:  # past a float's precision: nothing to round
        return x
    if d < -400:
        return 0
    with localcontext() as context:
        context.prec = 800
        rounded = Decimal(repr(x)).quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP)
    return int(rounded) if d <= 0 else float(rounded)


_OMITTED = object()


def _substr(value: Any, start: Any, end: Any = _OMITTED) -> str:
    """JavaRosa substr(): 0-based, ``end`` excluded, negative from the end, clamped."""
    text = _string(value)
    length = len(text)

    def index(v: Any) -> int:
        if v is _OMITTED:
            return length
        x = _number(v)
        if math.isnan(x):
            return 0
        i = max(min(x, length + 1), -length - 1)  # infinities included
        i = math.trunc(i)
        return max(0, min(length, i + length if i < 0 else i))

    first, last = index(start), index(end)
    return text[first:last] if first < last else ""


def _regex(value: Any, pattern_value: Any) -> bool:
    text, pattern = _string(value), _string(pattern_value)
    problem = _pattern_problem(pattern)
    if problem:
        raise EvaluationError(f"regex() pattern {pattern!r}: {problem}")
    if len(text) > REGEX_MAX_TEXT:
        raise EvaluationError(f"regex() is given {len(text)} characters of text, at most "
                              f"{REGEX_MAX_TEXT} are searched")
    try:
        return _compiled(pattern).search(text, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        raise EvaluationError(f"regex() pattern {pattern!r} took longer than "
                              f"{REGEX_TIMEOUT} s on a text of {len(text)} characters") \
            from None


def _choice_name(ctx: _Context, value: Any, question: Any) -> str:
    text = _string(question).strip()
    m = _QUOTED_REF_RE.fullmatch(text)
    if m is None:
        raise EvaluationError(f"jr:choice-name() needs the question as '${{q}}', not {text!r}")
    if _empty(value):
        return ""
    if ctx.choice_label is None:
        raise EvaluationError("jr:choice-name() needs the choice labels "
                              "(evaluate(..., choice_label=...))")
    label = ctx.choice_label(m.group(1), _string(value))
    return "" if label is None else label


#: the functions whose arguments are all evaluated: name -> fn(context, *values)
_ROW_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "true": lambda ctx: True,
    "false": lambda ctx: False,
    "not": lambda ctx, x: not is_true(x),
    "boolean": lambda ctx, x: is_true(x),
    "today": lambda ctx: ctx.now().date().isoformat(),
    "now": lambda ctx: ctx.now().isoformat(timespec="seconds"),
    "concat": lambda ctx, *xs: "".join(map(_string, xs)),
    "string": lambda ctx, x: _string(x),
    "string-length": lambda ctx, x: len(_string(x)),
    "number": lambda ctx, x: _number(x),
    "int": lambda ctx, x: _int(x),
    "round": lambda ctx, *xs: _round(*xs),
    "coalesce": lambda ctx, a, b: b if _empty(a) else a,
    "contains": lambda ctx, a, b: _string(b) in _string(a),
    "starts-with": lambda ctx, a, b: _string(a).startswith(_string(b)),
    "ends-with": lambda ctx, a, b: _string(a).endswith(_string(b)),
    "substr": lambda ctx, *xs: _substr(*xs),
    "regex": lambda ctx, a, b: _regex(a, b),
    "selected": lambda ctx, a, b: _selected(a, b),
    "count-selected": lambda ctx, a: _count_selected(a),
    "selected-at": lambda ctx, a, b: _selected_at(a, b),
    "jr:choice-name": _choice_name,
}


# ------------------------------------------------------ evaluation on whole columns
#
# evaluate_columns gives, for every row at once, what is_true(evaluate(tree, row)) gives
# row by row.  Each node's value is a _Vec: one kind of value for the whole column (plus
# "unanswered" rows), so the operators become numpy operations.  The kinds follow the
# Python types the row path dispatches on (bool before number, number before text, see
# _equal); a value whose rows mix types, or whose type the row path treats specially
# (dates, Decimal, big integers), is an "obj" column and its operators apply the row
# path's own functions row by row.  Rows that raise EvaluationError are carried in an
# error mask; 'and', 'or' and if() mask out the errors of the operand they skip.

_EXACT_INT = 2 ** 53  # integers beyond this have no exact float, so stay "obj"


@dataclass(frozen=True)
class Selection:
    """A multiple-choice question as a column for :func:`evaluate_columns`.

    Row ``i``'s value is the list of ``choices[j]`` with ``chosen[i, j]`` (in the order
    of ``choices``), or None (unanswered) where ``unanswered[i]``.
    """

    choices: tuple[str, ...]
    chosen: np.ndarray  # bool, n x len(choices)
    unanswered: np.ndarray  # bool, n


@dataclass
class _Vec:
    """One node's value for every row.

    ``kind`` and ``values``: "none" (every row unanswered, values None), "num" (float64,
    NaN where unanswered), "str" (object array of str, '' where unanswered), "bool"
    (False where unanswered), "sel" (a Selection), "obj" (object array of the row
    path's values, None where unanswered).  ``none``: the row's value is None;
    ``err``: evaluating the row raised EvaluationError.
    """

    kind: str
    values: Any
    none: np.ndarray
    err: np.ndarray


def evaluate_columns(node: Expr, columns: Mapping[str, Any], n: int, current: Any = None,
                     missing_as_nan: bool = False, *,
                     choice_label: Callable[[str, str], str | None] | None = None,
                     now: dt.datetime | None = None) -> np.ndarray:
    """``is_true(evaluate(node, row))`` for every row of a table at once: 1.0, 0.0 or NaN.

    ``columns`` maps question names to ``n`` values each: a numpy array (in a float
    array NaN is unanswered, as None), a list or object array of the values
    :func:`evaluate` takes (None unanswered), or a :class:`Selection` for a multiple
    choice.  A missing name is unanswered in every row.  NaN marks rows whose
    evaluation raised :class:`EvaluationError`, and with ``missing_as_nan`` rows where
    every referenced question is unanswered.  Same result as the row path, row for row
    (``choice_label`` and ``now`` as for :func:`evaluate`).  A choice filter's bare
    columns are not table columns: a :class:`Column` raises ValueError.
    """
    ev = _ColumnEvaluator(columns, n, current,
                          _Context(lambda _name: None, current, None, choice_label, now))
    vec = ev.eval(node)
    truth, err = _truth(vec)
    out = truth.astype(float)
    out[err | vec.err] = math.nan
    refs = references(node)
    if missing_as_nan and refs:
        unanswered = np.ones(n, dtype=bool)
        for name in refs:
            unanswered &= ev.ref(name).none
        out[unanswered] = math.nan
    return out


def _no(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


def _column_vec(name: str, values: Any, n: int) -> _Vec:
    if isinstance(values, Selection):
        chosen = np.asarray(values.chosen, dtype=bool)
        unanswered = np.asarray(values.unanswered, dtype=bool)
        if chosen.shape != (n, len(values.choices)) or unanswered.shape != (n,):
            raise ValueError(f"column {name!r}: a selection of {n} rows x "
                             f"{len(values.choices)} choices was expected, got "
                             f"{chosen.shape} and {unanswered.shape}")
        return _Vec("sel", Selection(tuple(values.choices), chosen, unanswered),
                    unanswered.copy(), _no(n))
    arr = values if isinstance(values, np.ndarray) else _object_array(values)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"column {name!r}: {n} values expected, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        x = arr.astype(np.float64)
        return _Vec("num", x, np.isnan(x), _no(n))
    if arr.dtype.kind in "iu":
        if n and (int(arr.max()) > _EXACT_INT or int(arr.min()) < -_EXACT_INT):
            return _objects_vec(_object_array(arr.tolist()))
        return _Vec("num", arr.astype(np.float64), _no(n), _no(n))
    if arr.dtype.kind == "b":
        return _Vec("bool", arr.astype(bool), _no(n), _no(n))
    if arr.dtype.kind == "U":
        return _Vec("str", arr.astype(object), _no(n), _no(n))
    if arr.dtype.kind == "O":
        return _objects_vec(arr)
    raise ValueError(f"column {name!r}: values of dtype {arr.dtype} are not expression "
                     "values (numbers, text, true/false or lists of choices)")


_PLAIN_TYPES = {type(None), str, np.str_, bool, int, float, np.float64}


def _object_array(values: Iterable[Any]) -> np.ndarray:
    """A 1-d object array holding each value as it is (lists stay single elements)."""
    return np.fromiter(values, dtype=object)


def _objects_vec(arr: np.ndarray, err: np.ndarray | None = None) -> _Vec:
    """The _Vec of an object array of row values, of the narrowest kind that holds them."""
    n = len(arr)
    err = _no(n) if err is None else err
    types = set(map(type, arr))
    if types <= _PLAIN_TYPES:  # == None is "is None" for these (and fast)
        none = np.equal(arr, None).astype(bool)
    else:
        none = np.fromiter((v is None for v in arr), dtype=bool, count=n)
    types.discard(type(None))
    if not types:
        return _Vec("none", None, none, err)
    if types <= {str, np.str_}:  # numpy's text is a str, and evaluates as one
        values = arr.copy()
        values[none] = ""
        return _Vec("str", values, none, err)
    if types == {bool}:
        values = _no(n)
        values[~none] = arr[~none].astype(bool)
        return _Vec("bool", values, none, err)
    if types <= {int, float, np.float64}:
        present = arr[~none]
        if int in types and any(type(v) is int and abs(v) > _EXACT_INT for v in present):
            return _Vec("obj", arr, none, err)
        values = np.full(n, math.nan)
        values[~none] = present.astype(np.float64)
        return _Vec("num", values, none, err)
    return _Vec("obj", arr, none, err)


def _scalar_vec(value: Any, n: int) -> _Vec:
    if value is None:
        return _Vec("none", None, np.ones(n, dtype=bool), _no(n))
    if type(value) is bool:
        return _Vec("bool", np.full(n, value), _no(n), _no(n))
    if type(value) is float or (type(value) is int and abs(value) <= _EXACT_INT):
        return _Vec("num", np.full(n, float(value)), _no(n), _no(n))
    # text and other values: one read-only element seen n times
    return _Vec("str" if type(value) is str else "obj", _repeat(value, n), _no(n), _no(n))


def _repeat(value: Any, n: int) -> np.ndarray:
    """A read-only object array of ``n`` times ``value`` (no copies)."""
    one = np.empty((), dtype=object)
    one[()] = value
    return np.broadcast_to(one, (n,))


def _map_distinct(fn: Callable[[Any], Any], values: Iterable[Any]) -> list[Any]:
    """``[fn(v) for v in values]``, calling ``fn`` once per distinct value."""
    values = list(values)
    table = {v: fn(v) for v in dict.fromkeys(values)}
    return list(map(table.__getitem__, values))


def _objects(v: _Vec) -> np.ndarray:
    """The row path's value of every row (None where unanswered)."""
    n = len(v.none)
    if v.kind == "obj":
        return v.values
    if v.kind == "none":
        return np.full(n, None, dtype=object)
    if v.kind == "sel":
        names = v.values.choices
        arr = np.empty(n, dtype=object)
        for i, row in enumerate(v.values.chosen):
            arr[i] = None if v.none[i] else [c for c, on in zip(names, row, strict=True) if on]
        return arr
    arr = v.values.astype(object)
    arr[v.none] = None
    return arr


def _truth(v: _Vec) -> tuple[np.ndarray, np.ndarray]:
    """(is_true per row, rows where is_true raised EvaluationError)."""
    n = len(v.none)
    if v.kind == "none":
        return _no(n), _no(n)
    if v.kind == "bool":
        return v.values, _no(n)
    if v.kind == "num":
        return (v.values != 0) & ~np.isnan(v.values), _no(n)
    if v.kind == "str":
        return v.values.astype(bool), _no(n)
    if v.kind == "sel":
        return v.values.chosen.any(axis=1) & ~v.none, _no(n)
    out, err = _no(n), _no(n)
    for i, value in enumerate(v.values):
        try:
            out[i] = is_true(value)
        except EvaluationError:
            err[i] = True
    return out, err


def _numbers(v: _Vec) -> np.ndarray:
    """``_number`` of every row's value."""
    n = len(v.none)
    if v.kind == "num":
        return v.values
    if v.kind == "bool":
        return np.where(v.none, math.nan, v.values.astype(float))
    if v.kind == "str":
        return np.array(_map_distinct(_number, v.values), dtype=float).reshape(n)
    if v.kind == "obj":
        return np.fromiter(map(_number, v.values), dtype=float, count=n)
    return np.full(n, math.nan)  # unanswered or a selection


def _texts(v: _Vec) -> np.ndarray:
    """``_string`` of every row's value (object array of str)."""
    n = len(v.none)
    if v.kind == "str":
        return v.values
    if v.kind == "none":
        return np.full(n, "", dtype=object)
    if v.kind == "num":
        out = _object_array(_map_distinct(_string, v.values.tolist()))
    elif v.kind == "bool":
        out = np.where(v.values, "true", "false").astype(object)
    else:
        out = _object_array(map(_string, _objects(v)))
    out[v.none] = ""
    return out


def _is(kind: str, v: _Vec) -> np.ndarray:
    """Rows whose value has the row path's type ``kind`` (not unanswered)."""
    return ~v.none if v.kind == kind else _no(len(v.none))


def _row_by_row(fn: Callable[..., Any], n: int, *vecs: _Vec) -> _Vec:
    """The row path's ``fn`` applied to each row's values (an "obj" operation)."""
    out = np.empty(n, dtype=object)
    err = _no(n)
    for i, args in enumerate(zip(*(_objects(v) for v in vecs), strict=True)):
        try:
            out[i] = fn(*args)
        except EvaluationError:
            err[i] = True
    for v in vecs:
        err |= v.err
    return _objects_vec(out, err)


def _date_class(text: str) -> int:
    return 1 if DATE_RE.fullmatch(text) else 2 if MONTH_RE.fullmatch(text) else 0


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


class _ColumnEvaluator:
    def __init__(self, columns: Mapping[str, Any], n: int, current: Any,
                 ctx: _Context) -> None:
        self.columns, self.n, self.current, self.ctx = columns, n, current, ctx
        self.refs: dict[str, _Vec] = {}

    def ref(self, name: str) -> _Vec:
        if name not in self.refs:
            values = self.columns.get(name)
            self.refs[name] = (_scalar_vec(None, self.n) if values is None
                               else _column_vec(name, values, self.n))
        return self.refs[name]

    def eval(self, node: Expr) -> _Vec:
        n = self.n
        if isinstance(node, Num | Str):
            return _scalar_vec(node.value, n)
        if isinstance(node, Ref):
            return self.ref(node.name)
        if isinstance(node, Current):
            return _scalar_vec(self.current, n)
        if isinstance(node, Unary):
            a = self.eval(node.operand)
            return _Vec("num", -_numbers(a), _no(n), a.err.copy())
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Column):
            raise ValueError(f"column {node.name!r} of a choice filter: evaluate_columns "
                             "evaluates answers, evaluate(..., columns=...) choice filters")
        raise EvaluationError(f"not an expression node: {node!r}")

    def binary(self, node: Binary) -> _Vec:
        op, n = node.op, self.n
        a, b = self.eval(node.left), self.eval(node.right)
        if op in ("and", "or"):
            ta, ea = _truth(a)
            tb, eb = _truth(b)
            ea, eb = ea | a.err, eb | b.err
            if op == "and":  # the right side is evaluated only where the left is true
                return _Vec("bool", ta & tb, _no(n), ea | (ta & eb))
            return _Vec("bool", ta | tb, _no(n), ea | (~ta & eb))
        if op in ("=", "!="):
            if "obj" in (a.kind, b.kind):
                eq = _row_by_row(_equal, n, a, b)
                same, err = _truth(eq)[0], eq.err
            else:
                same, err = self.equal(a, b), a.err | b.err
            return _Vec("bool", same if op == "=" else ~same, _no(n), err)
        if op in _COMPARE:
            if "obj" in (a.kind, b.kind):
                return _row_by_row(lambda x, y: _order(op, x, y), n, a, b)
            return _Vec("bool", self.order(op, a, b), _no(n), a.err | b.err)
        x, y = _numbers(a), _numbers(b)
        with np.errstate(all="ignore"):
            if op == "+":
                z = x + y
            elif op == "-":
                z = x - y
            elif op == "*":
                z = x * y
            elif op == "div":
                z = np.where(y == 0, np.where((x == 0) | np.isnan(x), math.nan,
                                              np.copysign(math.inf, x)), x / y)
            else:  # mod
                z = np.where((y == 0) | np.isinf(x), math.nan, np.fmod(x, y))
        return _Vec("num", z, _no(n), a.err | b.err)

    def equal(self, a: _Vec, b: _Vec) -> np.ndarray:
        """``_equal`` row by row: as truth values if either is a bool, as numbers if either
        is a number, else as text."""
        as_bool = _is("bool", a) | _is("bool", b)
        as_num = ~as_bool & (_is("num", a) | _is("num", b))
        as_text = ~as_bool & ~as_num
        if as_text.all():  # the usual ${question} = 'code'
            return np.asarray(_texts(a) == _texts(b), dtype=bool)
        if as_num.all():
            return _numbers(a) == _numbers(b)
        out = _no(self.n)
        if as_bool.any():
            out[as_bool] = (_truth(a)[0] == _truth(b)[0])[as_bool]
        if as_num.any():
            out[as_num] = (_numbers(a) == _numbers(b))[as_num]
        if as_text.any():
            out[as_text] = (_texts(a)[as_text] == _texts(b)[as_text]).astype(bool)
        return out

    def order(self, op: str, a: _Vec, b: _Vec) -> np.ndarray:
        """``_order``: ISO dates (or months) on both sides order as text, else numbers."""
        compare = _COMPARE[op]
        with np.errstate(invalid="ignore"):
            out = compare(_numbers(a), _numbers(b))
        if a.kind in ("str", "sel") and b.kind in ("str", "sel"):  # others never look like dates
            sa, sb = _texts(a), _texts(b)
            ca = np.array(_map_distinct(_date_class, sa), dtype=int).reshape(self.n)
            cb = np.array(_map_distinct(_date_class, sb), dtype=int).reshape(self.n)
            as_text = (ca == cb) & (ca > 0)
            if as_text.any():
                out[as_text] = compare(sa[as_text], sb[as_text]).astype(bool)
        return out

    def call(self, node: Call) -> _Vec:
        name, n = node.name, self.n
        if not node.args:  # true(), false(), today(), now(): one value for every row
            return _scalar_vec(_ROW_FUNCTIONS[name](self.ctx), n)
        args = [self.eval(a) for a in node.args]
        if name not in ("not", "if", "string-length", "count-selected", "selected"):
            fn = _ROW_FUNCTIONS[name]
            return _row_by_row(lambda *values: fn(self.ctx, *values), n, *args)
        if name == "not":
            t, err = _truth(args[0])
            return _Vec("bool", ~t, _no(n), err | args[0].err)
        if name == "if":
            return self.choose(*args)
        a = args[0]
        if a.kind == "obj":
            fn = {"string-length": lambda v: len(_string(v)), "count-selected": _count_selected,
                  "selected": _selected}[name]
            return _row_by_row(fn, n, *args)
        if name == "string-length":
            lengths = np.fromiter(map(len, _texts(a)), dtype=float, count=n)
            return _Vec("num", lengths, _no(n), a.err.copy())
        if name == "count-selected":
            if a.kind == "sel":
                count = a.values.chosen.sum(axis=1).astype(float)
            elif a.kind == "str":
                count = (a.values != "").astype(float)
            else:  # a number or true/false counts as one choice
                count = np.ones(n)
            count[a.none] = 0
            return _Vec("num", count, _no(n), a.err.copy())
        return _Vec("bool", self.selected(a, args[1]), _no(n), a.err | args[1].err)

    def selected(self, a: _Vec, wanted: _Vec) -> np.ndarray:
        """``selected(a, wanted)``: a choice of a selection, else a word of its text."""
        n = self.n
        w = _texts(wanted)
        if a.kind == "none" or n == 0:
            return _no(n)
        if a.kind == "sel" and (w == w[0]).all():
            sel = a.values
            hits = [j for j, c in enumerate(sel.choices) if str(c) == w[0]]
            return sel.chosen[:, hits].any(axis=1) & ~a.none
        if a.kind == "sel":
            return _truth(_row_by_row(_selected, n, a, wanted))[0]
        pairs = list(zip(_texts(a), w, strict=True))
        found = _map_distinct(lambda p: p[1] in p[0].split(" "), pairs)
        return np.array(found, dtype=bool).reshape(n) & ~a.none

    def choose(self, cond: _Vec, yes: _Vec, no: _Vec) -> _Vec:
        """``if(cond, yes, no)``: the errors of the branch not taken are dropped."""
        t, et = _truth(cond)
        err = cond.err | et | (t & yes.err) | (~t & no.err)
        none = np.where(t, yes.none, no.none)
        kinds = {yes.kind, no.kind} - {"none"}
        if not kinds:
            return _Vec("none", None, none, err)
        kind = kinds.pop() if len(kinds) == 1 else "obj"
        if kind in ("num", "str", "bool"):
            blank = {"num": math.nan, "str": "", "bool": False}[kind]
            yv = yes.values if yes.kind == kind else np.full(self.n, blank, dtype=object)
            nv = no.values if no.kind == kind else np.full(self.n, blank, dtype=object)
            values = np.where(t, yv, nv)
            if kind != "str":
                values = values.astype(float if kind == "num" else bool)
            return _Vec(kind, values, none, err)
        if kind == "sel" and yes.kind == no.kind == "sel" \
                and yes.values.choices == no.values.choices:
            chosen = np.where(t[:, None], yes.values.chosen, no.values.chosen)
            return _Vec("sel", Selection(yes.values.choices, chosen, none), none, err)
        return _objects_vec(np.where(t, _objects(yes), _objects(no)), err)
