"""Settings models as plain dataclasses, with two validators that agree.

A console start reads a handful of small, valid settings files. Importing pydantic and
building its validators for the settings models cost about 140 ms of that start (more than
reading, parsing and validating the files themselves), so the models are plain dataclasses
and a valid file is checked here, in Python, against the same declarations:

* `fast_validate(cls, data)` walks the dataclass fields and returns an instance, or None
  when anything is off or unusual. It never words a problem and never guesses: None means
  "let pydantic decide".
* `validate(cls, data)` is pydantic in strict mode over a mirror of the dataclasses (a
  BaseModel per dataclass, built on first use), converted back to the dataclasses. It
  raises pydantic's `ValidationError`, whose locations and messages the settings loader
  turns into file:line:column sentences. It is also the faster of the two on big files
  (pydantic-core validates 10,000 candidates in a few milliseconds).

Constraints are declared once, as `Annotated` metadata both validators read: `Bounds`
(pydantic's gt/ge/le/min_length/max_length), `Pattern` (a whole-string regex, with our own
error type so the message can say what kind of name it is) and `Check` (a function that
returns the value or raises ValueError). A model class can also override two hooks:
`_before(data)` rewrites the raw mapping (the settings rule "an empty value means the
default" lives there) and `_after()` checks the built instance as a whole.

tests/test_schema.py holds the two validators to the same answers.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, cast

__all__ = ["Bounds", "Check", "Model", "Pattern", "check", "fast_validate", "field_names", "pydantic_model", "validate"]

M = TypeVar("M", bound="Model")

# The error type of a failed `Pattern`; `settings._describe_error` words it with the value.
PATTERN_ERROR = "oneiric_name"


class _Unsure(Exception):
    """Raised inside the fast validator: the value is not plainly valid, pydantic decides."""


# --------------------------------------------------------------------------- constraints


@dataclass(frozen=True)
class Bounds:
    """`Annotated[float, Bounds(gt=0)]`: pydantic's own numeric and length constraints."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None

    def fast_check(self) -> Callable[[Any], Any]:
        gt, ge, le, shortest, longest = self.gt, self.ge, self.le, self.min_length, self.max_length

        def bounded(value: Any) -> Any:
            if gt is not None and not value > gt:
                raise _Unsure
            if ge is not None and not value >= ge:
                raise _Unsure
            if le is not None and not value <= le:
                raise _Unsure
            if shortest is not None and len(value) < shortest:
                raise _Unsure
            if longest is not None and len(value) > longest:
                raise _Unsure
            return value

        return bounded

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        schema = handler(source)
        for name in ("gt", "ge", "le", "min_length", "max_length"):
            if getattr(self, name) is not None:
                schema[name] = getattr(self, name)
        return schema


@dataclass(frozen=True)
class Pattern:
    """`Annotated[str, Pattern(regex, kind)]`: a string that must match `regex` whole.

    Pydantic checks it with pydantic-core's own regex engine (no Python call per value), and
    a failure is an error of type PATTERN_ERROR carrying `kind` ("component key", ...)."""

    pattern: str
    kind: str

    def fast_check(self) -> Callable[[Any], Any]:
        fullmatch = re.compile(self.pattern).fullmatch

        def matches(value: str) -> str:
            if fullmatch(value) is None:
                raise _Unsure
            return value

        return matches

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        # First the plain string check (so a number still reads "Input should be a valid
        # string"), then the pattern, whose failure becomes our own error type.
        return core_schema.chain_schema([
            handler(source),
            core_schema.custom_error_schema(
                core_schema.str_schema(pattern=f"^(?:{self.pattern})$"),
                PATTERN_ERROR,
                custom_error_message=f"not a valid {self.kind}",
                custom_error_context={"kind": self.kind},
            ),
        ])


@dataclass(frozen=True)
class Check:
    """`Annotated[str, Check(fn)]`: `fn(value)` returns the value (perhaps normalised) or
    raises ValueError with the sentence to show."""

    fn: Callable[[Any], Any]

    def fast_check(self) -> Callable[[Any], Any]:
        fn = self.fn

        def checked(value: Any) -> Any:
            try:
                return fn(value)
            except ValueError:
                raise _Unsure from None

        return checked

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.fn, handler(source))


# --------------------------------------------------------------------------- the base class


class Model:
    """Base of the settings dataclasses. Unknown keys are refused by both validators.

    `empty_means_default`: a key given with no value (`lifecycle:` with nothing under it)
    means that field's default, unless the field accepts None."""

    empty_means_default: ClassVar[bool] = True
    if TYPE_CHECKING:  # every subclass is a @dataclass: what dataclasses.fields() looks for
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def _before(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Rewrite the raw mapping before it is checked."""
        if cls.empty_means_default:
            return drop_empty(cls, data)
        return data

    def _after(self) -> None:
        """Check the built instance as a whole; raise ValueError to refuse it."""


def drop_empty(cls: type[Model], data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the keys whose value is None for fields that do not accept None."""
    if None not in data.values():
        return data
    plan = _plan(cls)
    drop = [k for k, v in data.items() if v is None and k in plan.fields and not plan.fields[k].allows_none]
    return {k: v for k, v in data.items() if k not in drop} if drop else data


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# --------------------------------------------------------------------------- the fast validator


@dataclass(frozen=True)
class _Field:
    check: Callable[[Any], Any]
    required: bool
    allows_none: bool


@dataclass(frozen=True)
class _Plan:
    fields: dict[str, _Field]
    build: Callable[[Any], Any]  # raw mapping -> instance, or raises _Unsure


_PLANS: dict[type, _Plan] = {}
_LOCK = threading.RLock()  # a plan's checks build the plans of nested models


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        with _LOCK:
            hints = typing.get_type_hints(cls, include_extras=True)
            fields = {}
            for f in dataclasses.fields(cls):
                hint = hints[f.name]
                required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                fields[f.name] = _Field(_checker(hint), required, _allows_none(hint))
            plan = _PLANS[cls] = _Plan(fields, _builder(cls, fields))
    return plan


def _builder(cls: type[M], fields: dict[str, _Field]) -> Callable[[Any], M]:
    """The fast validator of one model, as one function with everything it needs bound: it
    runs once per candidate, 10,000 times on a big domain file."""
    checks = {name: f.check for name, f in fields.items()}
    required = frozenset(name for name, f in fields.items() if f.required)
    overridden = cast(Any, cls._before).__func__ is not cast(Any, Model._before).__func__  # bound classmethods
    before = cls._before if (cls.empty_means_default or overridden) else None
    after = cls._after if cls._after is not Model._after else None

    def build(data: Any) -> M:
        if type(data) is not dict:
            raise _Unsure
        if before is not None:
            data = before(data)
        try:
            values = {name: checks[name](value) for name, value in data.items()}
        except KeyError:  # an unknown key (a non-string key lands here too)
            raise _Unsure from None
        if not required <= values.keys():
            raise _Unsure
        instance = cls(**values)
        if after is not None:
            try:
                after(instance)
            except ValueError:
                raise _Unsure from None
        return instance

    return build


def _allows_none(hint: Any) -> bool:
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint is None or hint is type(None) or type(None) in typing.get_args(hint)


def _checker(hint: Any) -> Callable[[Any], Any]:
    """A function that returns `value` as pydantic's strict mode would, or raises _Unsure."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        if args[0] is str and len(args) == 2 and isinstance(args[1], Pattern):  # names: the hot case
            fullmatch = re.compile(args[1].pattern).fullmatch

            def name(value: Any) -> str:
                if type(value) is not str or fullmatch(value) is None:
                    raise _Unsure
                return value

            return name
        check = _checker(args[0])
        for item in args[1:]:  # one closure per constraint, each calling the one before
            check = _then(check, item.fast_check())
        return check
    if hint is Any:
        return lambda value: value
    if hint in (str, int, bool):
        def exact(value: Any, _type: type = hint) -> Any:
            if type(value) is not _type:  # strict: no "3" for 3, no True for 1
                raise _Unsure
            return value

        return exact
    if hint is float:
        def number(value: Any) -> float:
            kind = type(value)
            if kind is float:
                return value
            if kind is int:  # strict mode takes an int for a float, as a float
                try:
                    return float(value)
                except OverflowError:  # too large for a float: pydantic words it
                    raise _Unsure from None
            raise _Unsure

        return number
    if hint is None or hint is type(None):
        def none(value: Any) -> None:
            if value is not None:
                raise _Unsure

        return none
    if origin in (typing.Union, types.UnionType):
        options = [_checker(a) for a in args if a is not type(None)]
        nullable = type(None) in args

        def union(value: Any) -> Any:
            if value is None and nullable:
                return None
            for option in options:
                try:
                    return option(value)
                except _Unsure:
                    continue
            raise _Unsure

        return union
    if origin is Literal:
        allowed = [(type(a), a) for a in args]

        def literal(value: Any) -> Any:
            if (type(value), value) not in allowed:
                raise _Unsure
            return value

        return literal
    if origin is list:
        item = _checker(args[0])

        def listed(value: Any) -> list[Any]:
            if type(value) is not list:
                raise _Unsure
            return [item(v) for v in value]

        return listed
    if origin is dict:
        key, val = _checker(args[0]), _checker(args[1])

        def mapping(value: Any) -> dict[Any, Any]:
            if type(value) is not dict:
                raise _Unsure
            return {key(k): val(v) for k, v in value.items()}

        return mapping
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _plan(hint).build
    raise TypeError(f"the settings schema does not support {hint!r}")


def _then(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: second(first(value))


def fast_validate(cls: type[M], data: Any) -> M | None:
    """An instance of `cls` from `data` if `data` is plainly valid, else None (ask `validate`)."""
    try:
        return _plan(cls).build(data)
    except (_Unsure, TypeError, ValueError, OverflowError, RecursionError):
        # _Unsure is the expected "not plainly valid"; the others would be a value this
        # validator did not foresee: never a crash here, pydantic decides and words it.
        return None


# --------------------------------------------------------------------------- pydantic


_MIRRORS: dict[type, Any] = {}
_SOURCES: dict[Any, type] = {}
_NESTED: dict[type, list[str]] = {}


def pydantic_model(cls: type[Model]) -> Any:
    """The pydantic BaseModel that mirrors `cls` (and its nested models), built on first use."""
    mirror = _MIRRORS.get(cls)
    if mirror is not None:
        return mirror
    with _LOCK:
        return _mirror(cls)


def _mirror(cls: type[Model]) -> Any:
    if cls in _MIRRORS:
        return _MIRRORS[cls]
    from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

    hints = typing.get_type_hints(cls, include_extras=True)
    definitions: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = _mirror_hint(hints[f.name])
        if f.default_factory is not dataclasses.MISSING:
            definitions[f.name] = (hint, Field(default_factory=f.default_factory))
        elif f.default is not dataclasses.MISSING:
            definitions[f.name] = (hint, f.default)
        else:
            definitions[f.name] = (hint, ...)

    class Base(BaseModel):
        model_config = ConfigDict(extra="forbid")

        @model_validator(mode="before")
        @classmethod
        def _before_hook(cls_, data: Any) -> Any:
            return cls._before(data) if isinstance(data, dict) else data

        @model_validator(mode="after")
        def _after_hook(self) -> Any:
            if cls._after is not Model._after:
                _to_dataclass(self)._after()
            return self

    mirror = create_model(cls.__name__, __base__=Base, __module__=cls.__module__, **definitions)
    # The fields that can hold nested models: the only ones converted back, so a candidate's
    # free-form `settings:` mapping is never walked.
    _NESTED[cls] = [f.name for f in dataclasses.fields(cls) if _mentions_model(hints[f.name])]
    _MIRRORS[cls] = mirror
    _SOURCES[mirror] = cls
    return mirror


def _mirror_hint(hint: Any) -> Any:
    """`hint` with every settings dataclass in it replaced by its pydantic mirror."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return Annotated[(_mirror_hint(args[0]), *args[1:])]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and issubclass(hint, Model):
        return _mirror(hint)
    if origin is list:
        return list[_mirror_hint(args[0])]  # type: ignore[misc]  # a type built at run time
    if origin is dict:
        return dict[_mirror_hint(args[0]), _mirror_hint(args[1])]  # type: ignore[misc]  # built at run time
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_mirror_hint(a) for a in args)]  # noqa: UP007 - built at run time: no `|` spelling
    return hint


def _mentions_model(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, Model):
        return True
    return any(_mentions_model(a) for a in typing.get_args(hint))


def _to_dataclass(mirror_instance: Any) -> Any:
    """A validated mirror instance as its settings dataclass (nested ones included)."""
    source = _SOURCES[type(mirror_instance)]
    values = dict(mirror_instance.__dict__)
    for name in _NESTED[source]:
        values[name] = _convert(values[name])
    return source(**values)


def _convert(value: Any) -> Any:
    if type(value) in _SOURCES:
        return _to_dataclass(value)
    if type(value) is list:
        return [_convert(v) for v in value]
    if type(value) is dict:
        return {k: _convert(v) for k, v in value.items()}
    return value  # a default that is already a dataclass, or a plain value


def validate(cls: type[M], data: Any) -> M:
    """`data` validated by pydantic in strict mode, as an instance of `cls`. Raises
    pydantic's ValidationError (locations are the same as the dataclass fields')."""
    return _to_dataclass(pydantic_model(cls).model_validate(data, strict=True))


def check(cls: type[M], data: Any) -> tuple[M | None, list[dict[str, Any]]]:
    """(instance, []) for valid `data`, else (None, pydantic's errors as dicts): the fast
    validator first, pydantic only when it is unsure."""
    fast = fast_validate(cls, data)
    if fast is not None:
        return fast, []
    from pydantic import ValidationError

    try:
        return validate(cls, data), []
    except ValidationError as exc:
        return None, [dict(error) for error in exc.errors(include_url=False)]
