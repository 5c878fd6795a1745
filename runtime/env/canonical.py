"""Canonical data of a domain's types: what τ²-bench's pydantic models make of the same data.

τ²-bench holds its databases and tool results as pydantic models; what a caller sees of them
is `model_dump()`: fields in declaration order, every optional field present (its default
when unset), an int in a float field as a float, a datetime as `str(datetime)`. A `Canon`
compiles the models of one `eigenlang.types.Schema` into pydantic-core validators (Rust) that
check data and produce exactly that canonical form in one pass:

- `Canon.load(json_bytes_or_data, type)` → state nodes (`Obj`/`Arr`, ready for `State`):
  loading a 7 MB database is one `validate_json` call, no separate freeze walk;
- `Canon.dump(data, type)` → plain canonical data;
- `tool_content(value, returns, schema)` → the text a caller sees, as τ²-bench's
  `Environment.to_json_str` prints it.

Validation is strict (JSON types: no str→int coercion, no bool as int) except that an int is
a valid float, as in pydantic's strict mode. Errors are located: `CanonError.problems` lists
`path: message` with the path in the data (`reservations.4WQ150.flights[0].price`).
"""

from __future__ import annotations

import datetime as _dt
import json
import weakref
from typing import Any

from pydantic_core import PydanticCustomError, SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from eigenlang.types import ANY, NONE, DictT, EnumT, ListT, ModelT, Prim, Schema, Type, UnionT

from .nodes import Arr, Obj, freeze, new_arr, new_obj, plain


class CanonError(ValueError):
    """Data that does not match its type; `problems` are `path: message` lines."""

    def __init__(self, problems: list[str], total: int | None = None, syntax: bool = False) -> None:
        self.problems = problems
        self.total = len(problems) if total is None else total
        self.syntax = syntax  # the text is not JSON at all (problems[0] says where)
        super().__init__("\n".join(problems))

    def render(self, limit: int = 10) -> str:
        shown = "\n  ".join(self.problems[:limit])
        more = f"\n  (+{self.total - limit} more)" if self.total > limit else ""
        return f"  {shown}{more}"


# ------------------------------------------------------------------------------ builders
def _obj(value: dict) -> Obj:
    return new_obj(value, None)


def _arr(value: list) -> Arr:
    return new_arr(value, None)


def _frozen(value: Any) -> Any:
    return freeze(value, None)


def _datetime_text(value: Any) -> str:
    """A datetime as τ²-bench dumps it: `str(datetime)` ('2025-01-20 14:30:00')."""
    if isinstance(value, _dt.datetime):
        return str(value)
    if isinstance(value, str):
        try:
            return str(_dt.datetime.fromisoformat(value))
        except ValueError:
            pass
    raise PydanticCustomError("datetime_type", "Input should be an ISO date-time")


def _date_text(value: Any) -> str:
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise PydanticCustomError("date_type", "Input should be an ISO date")


class _Builder:
    """One core schema for one type; models become shared definitions (recursion works)."""

    def __init__(self, schema: Schema, nodes: bool) -> None:
        self.schema, self.nodes = schema, nodes
        self.defs: dict[str, Any] = {}

    def build(self, t: Type) -> Any:
        core = self.type(t)
        return cs.definitions_schema(core, list(self.defs.values())) if self.defs else core

    def type(self, t: Type) -> Any:
        options = self.schema.options(t)
        nullable = NONE in options and len(options) > 1
        rest = [o for o in options if o != NONE] if nullable else options
        core = self.one(rest[0]) if len(rest) == 1 else self.union(rest)
        return cs.nullable_schema(core) if nullable else core

    def one(self, t: Type) -> Any:
        if isinstance(t, Prim):
            return self.prim(t.name)
        if isinstance(t, EnumT):
            return cs.literal_schema(list(t.values))
        if isinstance(t, ListT):
            return self.wrap(cs.list_schema(self.type(t.item), strict=True), _arr)
        if isinstance(t, DictT):
            return self.wrap(cs.dict_schema(self.key(t.key), self.type(t.value), strict=True), _obj)
        if isinstance(t, ModelT) and t.name in self.schema.models:
            return self.model(t.name)
        if isinstance(t, UnionT):
            return self.type(t)
        return self.prim("any")  # unknown or circular (the checker reported it)

    def prim(self, name: str) -> Any:
        if name == "str":
            return cs.str_schema(strict=True)
        if name == "int":
            return cs.int_schema(strict=True)
        if name == "float":
            return cs.float_schema(strict=True)  # accepts an int, gives a float
        if name == "bool":
            return cs.bool_schema(strict=True)
        if name == "none":
            return cs.none_schema()
        if name == "date":
            return cs.no_info_plain_validator_function(_date_text)
        if name == "datetime":
            return cs.no_info_plain_validator_function(_datetime_text)
        return self.wrap(cs.any_schema(), _frozen)

    def key(self, t: Type) -> Any:
        t = self.schema.resolve(t)
        if isinstance(t, EnumT):
            return cs.literal_schema(list(t.values))
        if t == Prim("int"):
            return cs.str_schema(strict=True, pattern=r"^-?[0-9]+$")
        return cs.str_schema(strict=True)

    def wrap(self, core: Any, fn: Any) -> Any:
        return cs.no_info_after_validator_function(fn, core) if self.nodes else core

    def model(self, name: str) -> Any:
        if name not in self.defs:
            self.defs[name] = None  # a placeholder: a recursive reference finds it
            fields = {}
            for fname, f in self.schema.models[name].items():
                inner = self.type(f.type)
                if f.required:
                    fields[fname] = cs.typed_dict_field(inner, required=True)
                else:
                    default = f.default
                    fields[fname] = cs.typed_dict_field(
                        cs.with_default_schema(inner, default=default, validate_default=default is not None),
                        required=False)
            body = cs.typed_dict_schema(fields, extra_behavior="forbid", strict=True)
            self.defs[name] = {**self.wrap(body, _obj), "ref": name}
        return cs.definition_reference_schema(name)

    def union(self, options: list[Type]) -> Any:
        tag = _discriminator(self.schema, options)
        if tag is not None:
            field, values = tag
            return cs.tagged_union_schema({v: self.one(o) for v, o in zip(values, options)}, field)
        return cs.union_schema([(self.one(o), str(o)) for o in options], mode="smart")


def _discriminator(schema: Schema, options: list[Type]) -> tuple[str, list[str]] | None:
    """A field that every option (all models) fixes to its own single enum value, such as
    `status` of the flight-date models or `source` of the payment methods."""
    if not all(isinstance(o, ModelT) and o.name in schema.models for o in options):
        return None
    first = schema.models[options[0].name]
    for fname, f in first.items():
        values = []
        for o in options:
            g = schema.models[o.name].get(fname)
            t = schema.resolve(g.type) if g is not None and g.required else None
            if not (isinstance(t, EnumT) and len(t.values) == 1):
                break
            values.append(t.values[0])
        else:
            if len(set(values)) == len(values):
                return fname, values
    return None


# ------------------------------------------------------------------------------ Canon
class Canon:
    """The compiled validators of one schema (one per type and output kind), built on first
    use; get it with `canon(schema)` so that every user of a schema shares them."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._validators: dict[tuple[Type, bool], SchemaValidator] = {}

    def validator(self, t: Type, nodes: bool) -> SchemaValidator:
        v = self._validators.get((t, nodes))
        if v is None:
            v = SchemaValidator(_Builder(self.schema, nodes).build(t))
            self._validators[(t, nodes)] = v
        return v

    def load(self, data: Any, t: Type) -> Any:
        """State nodes of `data` (JSON text as str/bytes, or JSON-like Python data, e.g. from
        a generator or TOML), canonical and checked; raises CanonError."""
        v = self.validator(t, True)
        try:
            if isinstance(data, (bytes, bytearray, str)):
                return v.validate_json(data)
            return v.validate_python(data)
        except ValidationError as exc:
            raise self.error(exc, t) from None

    def dump(self, data: Any, t: Type) -> Any:
        """Plain canonical data of `data` (views are fine); raises CanonError."""
        try:
            return self.validator(t, False).validate_python(plain(data))
        except ValidationError as exc:
            raise self.error(exc, t) from None

    def error(self, exc: ValidationError, t: Type, limit: int = 50) -> CanonError:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            return CanonError([errors[0]["msg"].removeprefix("Invalid JSON: ")], syntax=True)
        problems = [f"{_locate(self.schema, t, e['loc'])}: {_message(e)}" for e in errors[:limit]]
        return CanonError(problems, total=len(errors))


_CANONS: dict[int, tuple[weakref.ref, Canon]] = {}


def canon(schema: Schema) -> Canon:
    """The shared `Canon` of a schema (kept as long as the schema lives)."""
    key = id(schema)
    hit = _CANONS.get(key)
    if hit is not None and hit[0]() is schema:
        return hit[1]
    made = Canon(schema)
    _CANONS[key] = (weakref.ref(schema, lambda _r, k=key: _forget(k)), made)
    return made


def _forget(key: int) -> None:
    if _CANONS is not None:  # None while the interpreter shuts down
        _CANONS.pop(key, None)


# ------------------------------------------------------------------------------ errors
def _locate(schema: Schema, t: Type | None, loc: tuple) -> str:
    """The data path of a pydantic error location: union tags and labels dropped."""
    out = ""
    items = list(loc)
    i = 0
    while i < len(items):
        item = items[i]
        options = schema.options(t) if t is not None else []
        rest = [o for o in options if o != NONE]
        if len(rest) > 1:  # a union: this item names the option that was tried
            t = next((o for o in rest if str(o) == item), None) or _tagged(schema, rest, item)
            i += 1
            continue
        cur = rest[0] if rest else None
        if isinstance(item, int):
            out += f"[{item}]"
        elif item.replace("_", "").replace("-", "").isalnum():
            out += ("." if out else "") + item
        else:
            out += f"[{item!r}]"
        if isinstance(cur, ModelT) and cur.name in schema.models:
            f = schema.models[cur.name].get(item)
            t = f.type if f is not None else None
        elif isinstance(cur, ListT):
            t = cur.item
        elif isinstance(cur, DictT):
            t = cur.value
            if i + 1 < len(items) and items[i + 1] == "[key]":
                out += " (key)"
                i += 1
        else:
            t = None
        i += 1
    return out or "(root)"


def _tagged(schema: Schema, options: list[Type], tag: Any) -> Type | None:
    found = _discriminator(schema, options)
    if found is None:
        return None
    _, values = found
    return options[values.index(tag)] if tag in values else None


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _message(e: dict) -> str:
    kind = e["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (the schema does not declare it)"
    if kind == "json_invalid":
        return e["msg"]
    return f"{e['msg']}, got {_short(e.get('input'))}"


# ------------------------------------------------------------------------------ content
def tool_content(value: Any, returns: Type | None, schema: Schema | None) -> str:
    """The text a caller sees of a tool's result, as τ²-bench prints it
    (`Environment.to_json_str`): a string as it is; anything else as `json.dumps` (default
    separators, ASCII) of the value where every model is dumped canonically (declared field
    order, optional fields present) and every number or boolean outside a model becomes its
    `str()` (τ²-bench's `_process` does this to plain dicts and lists). A result that does
    not match its declared type is printed as plain JSON rather than refused."""
    if isinstance(value, str):
        return value
    data = plain(value)
    if returns is None or schema is None:
        return json.dumps(data)  # nothing declared: the data as it is
    try:
        shaped = _process(data, returns, canon(schema))
    except _Mismatch:
        shaped = data
    return json.dumps(shaped, default=str)


class _Mismatch(Exception):
    pass


def _process(data: Any, t: Type, c: Canon) -> Any:
    options = c.schema.options(t)
    if data is None and (NONE in options or ANY in options):
        return None
    rest = [o for o in options if o != NONE]
    if len(rest) > 1:
        for o in rest:
            try:
                return _process(data, o, c)
            except _Mismatch:
                continue
        raise _Mismatch
    if not rest:
        raise _Mismatch
    t = rest[0]
    if isinstance(t, ModelT) and t.name in c.schema.models:
        try:
            return c.validator(t, False).validate_python(data)
        except ValidationError:
            raise _Mismatch from None
    if isinstance(t, ListT):
        if not isinstance(data, list):
            raise _Mismatch
        return [_process(x, t.item, c) for x in data]
    if isinstance(t, DictT):
        if not isinstance(data, dict):
            raise _Mismatch
        return {k: _process(v, t.value, c) for k, v in data.items()}
    if isinstance(t, EnumT):
        if data not in t.values:
            raise _Mismatch
        return data
    if isinstance(t, Prim):
        return _scalar(data, t.name)
    raise _Mismatch


def _scalar(data: Any, name: str) -> Any:
    """A scalar outside any model, as τ²-bench's `_process` prints it."""
    if name == "any":
        return _untyped(data)
    ok = {"str": isinstance(data, str), "bool": isinstance(data, bool), "none": data is None,
          "int": isinstance(data, int) and not isinstance(data, bool),
          "float": isinstance(data, (int, float)) and not isinstance(data, bool),
          "date": isinstance(data, str), "datetime": isinstance(data, str)}.get(name, False)
    if not ok:
        raise _Mismatch
    if name == "float":
        return str(float(data))
    if name in ("int", "bool"):
        return str(data)
    if name in ("date", "datetime"):
        try:
            parsed = _dt.date.fromisoformat(data) if name == "date" else _dt.datetime.fromisoformat(data)
        except ValueError:
            raise _Mismatch from None
        return parsed.isoformat()
    return data


def _untyped(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _untyped(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_untyped(v) for v in data]
    if isinstance(data, (bool, int, float)):
        return str(data)
    return data
