"""Run-time values of expressions and the bookkeeping that bounds their evaluation.

Values are JSON-like: `Mapping`, `Sequence` (not str), str, int, float, bool, None. The
helpers here give them the semantics of the language rather than of Python where the two
differ: `true != 1`, a tuple equals a list with the same items, iterating a mapping yields
its values. Every failure is an `EvalError` with a span, never a raw Python exception.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from ..diagnostics import Span
from . import limits


class EvalError(Exception):
    """An expression could not be evaluated: a missing key, a type error at run time, a
    division by zero, or a crossed bound (step budget, size of a value)."""

    def __init__(self, message: str, span: Span | None = None):
        super().__init__(message)
        self.message = message
        self.span = span

    def __str__(self) -> str:
        return f"{self.span}: {self.message}" if self.span else self.message

    def __reduce__(self):  # picklable across processes (Ray workers)
        return (EvalError, (self.message, self.span))


class Run:
    """State of one evaluation: the scope, binder variables, and the step budget."""

    __slots__ = ("scope", "local", "steps", "budget")

    def __init__(self, scope: Mapping[str, Any], budget: int):
        self.scope = scope
        self.local: dict[str, Any] = {}
        self.steps = 0
        self.budget = budget

    def exhausted(self, span: Span) -> NoReturn:
        raise EvalError(f"evaluation exceeded its budget of {self.budget} steps", span)

    def charge(self, items: int, span: Span, per_step: int = limits.BULK_ITEMS_PER_STEP) -> None:
        """Pay for work over `items` elements: C-speed bulk work (copies, slicing) costs one
        step per `per_step` items; Python-level loops pass `per_step=1`."""
        self.steps += 1 + items // per_step
        if self.steps > self.budget:
            self.exhausted(span)


def typename(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, Mapping):
        return "dict"
    if isinstance(v, Sequence):
        return "list"
    return type(v).__name__


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_seq(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, (str, bytes))


def truth(v: Any) -> bool:
    return bool(v)


def checked_number(v: Any, span: Span) -> Any:
    """Bound every computed number: |int| < 2**256, floats finite and real."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        if v.bit_length() > limits.MAX_INT_BITS:
            raise EvalError(f"integer result is too large (at least 2**{limits.MAX_INT_BITS})",
                            span)
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise EvalError("number result is out of range", span)
        return v
    raise EvalError(f"result is not a real number ({typename(v)})", span)


def checked_size(n: int, span: Span, what: str = "value", unit: str = "elements") -> None:
    """Refuse a value of `n` elements (characters of a string, items of a list) before it is
    built: every allocation that can grow is sized first, never measured afterwards."""
    if n > limits.MAX_SIZE:
        raise EvalError(f"{what} would have {n} {unit} (at most {limits.MAX_SIZE})", span)


def need_num(v: Any, span: Span, what: str) -> Any:
    if not is_num(v):
        raise EvalError(f"{what} needs a number, got {typename(v)}", span)
    return v


def need_str(v: Any, span: Span, what: str) -> str:
    if not isinstance(v, str):
        raise EvalError(f"{what} needs a string, got {typename(v)}", span)
    return v


def need_int(v: Any, span: Span, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise EvalError(f"{what} needs an int, got {typename(v)}", span)
    return v


def iter_values(v: Any, span: Span, what: str) -> Iterable[Any]:
    """Elements of a collection: a mapping yields its values, a list its items."""
    if isinstance(v, Mapping):
        return v.values()
    if is_seq(v):
        return v
    raise EvalError(f"{what} needs a list or dict to iterate over, got {typename(v)}", span)


_SCALARS = (str, int, float, bool)


def equal(a: Any, b: Any, run: Run, span: Span) -> bool:
    """Structural equality of JSON-like values (`true != 1`, `(1,) == [1]`)."""
    if a is b:
        return True
    if type(a) is type(b) and type(a) in _SCALARS:  # the common case, decided by Python
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_num(a) or is_num(b):
        return is_num(a) and is_num(b) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return False
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if len(a) != len(b):
            return False
        run.charge(len(a), span, 1)
        return all(k in b and equal(x, b[k], run, span) for k, x in a.items())
    if is_seq(a) and is_seq(b):
        if len(a) != len(b):
            return False
        run.charge(len(a), span, 1)
        return all(equal(x, y, run, span) for x, y in zip(a, b, strict=True))
    return False


def contains(coll: Any, item: Any, run: Run, span: Span, op: str = "in") -> bool:
    """`item in coll`: key of a mapping, element of a list, substring of a string."""
    if isinstance(coll, Mapping):
        if isinstance(item, (Mapping, list)) or is_seq(item):
            return False
        try:
            return item in coll
        except TypeError:  # unhashable key
            return False
    if is_seq(coll):
        run.charge(len(coll), span, 1)
        return any(equal(item, x, run, span) for x in coll)
    if isinstance(coll, str):
        if not isinstance(item, str):
            raise EvalError(f"'{op}' on a string needs a string on the left, got "
                            f"{typename(item)}", span)
        run.charge(len(coll), span)
        return item in coll
    raise EvalError(f"'{op}' needs a list, dict or string on the right, got {typename(coll)}",
                    span)


def order(a: Any, b: Any, span: Span, op: str) -> None:
    """Raise unless `a` and `b` can be ordered (two numbers or two strings)."""
    if (is_num(a) and is_num(b)) or (isinstance(a, str) and isinstance(b, str)):
        return
    raise EvalError(f"cannot compare {typename(a)} and {typename(b)} with '{op}'", span)


def get_key(obj: Any, key: Any, span: Span, describe) -> Any:
    """`obj[key]` on a mapping, with the language's errors; `describe()` names `obj`."""
    if isinstance(key, str) and key.startswith("_"):
        raise EvalError(f"key '{key}' starts with '_' and is not accessible", span)
    if isinstance(obj, Mapping):
        try:
            return obj[key]
        except (KeyError, TypeError):
            raise EvalError(f"no key {short(key)} in {describe()}", span) from None
    raise EvalError(f"cannot look up key {short(key)} in {typename(obj)} ({describe()})", span)


def short(v: Any, width: int = 40) -> str:
    """A value's repr for messages, cut to `width` characters (values can be huge)."""
    if isinstance(v, (Mapping, list, tuple)) or is_seq(v):
        return typename(v) + f" of {len(v)}"
    r = repr(v)
    return r if len(r) <= width else r[: width - 3] + "..."


def json_preview(v: Any, width: int = 80) -> str:
    """`json.dumps(v, ensure_ascii=False, sort_keys=True)` cut to `width` characters ('...'
    when cut), written lazily: a value an expression built by repeating one big part
    (`['a' * 1000000] * 80000`) costs what is shown, not gigabytes. For failure messages."""
    out: list[str] = []
    room = width + 1
    try:
        for chunk in _json_chunks(v, room):
            out.append(chunk)
            room -= len(chunk)
            if room <= 0:
                break
    except RecursionError:
        room = 0
    text = "".join(out)
    return text if room > 0 and len(text) <= width else text[: max(width - 3, 0)] + "..."


_ENCODE = json.encoder.encode_basestring  # the C encoder when there is one


def _json_chunks(v: Any, room: int) -> Iterable[str]:
    """The pieces of `v`'s JSON text in order; strings beyond `room` characters are cut."""
    if isinstance(v, str):
        yield _ENCODE(v[:room])
    elif v is None:
        yield "null"
    elif isinstance(v, bool):
        yield "true" if v else "false"
    elif isinstance(v, int):
        yield int.__repr__(v)
    elif isinstance(v, float):
        yield json.dumps(v)
    elif isinstance(v, Mapping):
        yield "{"
        try:
            items = sorted(v.items(), key=lambda kv: kv[0])
        except TypeError:  # keys of mixed kinds: in their own order
            items = list(v.items())
        for i, (k, x) in enumerate(items):
            key = k if isinstance(k, str) else json.dumps(k) if isinstance(k, (int, float, bool)) \
                or k is None else str(k)
            yield (", " if i else "") + _ENCODE(key[:room]) + ": "
            yield from _json_chunks(x, room)
        yield "}"
    elif is_seq(v):
        yield "["
        for i, x in enumerate(v):
            if i:
                yield ", "
            yield from _json_chunks(x, room)
        yield "]"
    else:
        yield repr(v)[:room]
