"""RFC 8785, the JSON Canonicalization Scheme (JCS): the one byte string a JSON value signs as.

Why not `json.dumps(sort_keys=True)`: its bytes are Python's, not a standard's. `{"a": 1.0}`
comes out as `{"a":1.0}` where every other language's JCS writes `{"a":1}`, `1e-7` as `1e-07`,
and keys are sorted by code point where JCS sorts by UTF-16 code unit. A publisher signing
with Go, Java or JavaScript must produce the very bytes we verify, so we follow the RFC:

* no whitespace; arrays keep their order; `null`, `true`, `false` as they are;
* strings (§3.2.2.2): only `"` `\\` and the C0 controls are escaped, the seven that have a
  short form as `\\" \\\\ \\b \\f \\n \\r \\t`, the rest as `\\u00xx` (lower-case hex);
  everything else, DEL and U+2028 included, is written as UTF-8;
* numbers (§3.2.2.3): ECMAScript's Number::toString of the IEEE 754 double: the shortest
  digits that read back as the same double, `1.0` as `1`, plain notation from 1e-6 up to but
  not including 1e21 and exponent notation outside it (`1e+21`, `1e-7`), `-0` as `0`;
* object members sorted by their names as arrays of UTF-16 code units (§3.2.3).

What cannot be canonicalised is refused with CanonicalError, naming where it is:

* NaN and the infinities (§3.2.2.3: "MUST cause an error");
* integers whose canonical text would denote another number: JCS serialises the IEEE 754
  double a number denotes, so beyond ±(2**53 - 1) an integer is written as its nearest
  double (what a JavaScript publisher's JSON.parse makes of it), and it is accepted only when
  that text reads back as the very same integer (`999999999999999900000` and `1e+21` do;
  `9007199254740993` would sign as `9007199254740992`, two different integers as one text).
  I-JSON (RFC 7493 §2.2) does not let a receiver rely on such integers either, and RFC 8785
  (Appendix D) recommends writing big numbers as strings: we refuse rather than sign a value
  the reader does not get back;
* lone surrogates (I-JSON §2.1), non-string member names, and values JSON has no type for.

Strings use the C escaper of the json module (`json.encoder.encode_basestring`, the one
`ensure_ascii=False` uses), which escapes exactly the RFC's set. Signing happens on every sync,
so the common case is fast: a value with string member names, no floats, integers within
±(2**53 - 1) and no character beyond the BMP is written exactly as RFC 8785 writes it by the
json module's C encoder with sorted keys (code point order is UTF-16 order there), checked
first by one walk; anything else takes the general serialiser below. tests/test_canonical.py
holds both to the RFC's vectors, the reference implementation's test data and its number file.
"""

from __future__ import annotations

import json.encoder
import math
import re
from collections.abc import Callable
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1  # ECMAScript's Number.MAX_SAFE_INTEGER

_escape: Callable[[str], str] = json.encoder.encode_basestring
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")
_DUMPS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          check_circular=False).encode


class CanonicalError(ValueError):
    """A value RFC 8785 cannot canonicalise; `path` says where it is (`entries[3].settings.x`)."""

    def __init__(self, reason: str, path: tuple[str | int, ...] = ()) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{reason} at {format_path(path)}" if path else reason)

    def under(self, step: str | int) -> CanonicalError:
        return CanonicalError(self.reason, (step, *self.path))


def format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _NAME.match(step):
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step)}]"
    return out


def canonical_json(value: Any) -> bytes:
    """`value` (plain data: dict with str keys, list/tuple, str, int, float, bool, None) as
    RFC 8785 canonical JSON, UTF-8. Raises CanonicalError."""
    if _json_module_writes_it(value):
        text = _DUMPS(value)
        if _ASTRAL.search(text) is None:  # below U+10000, code point order is UTF-16 order
            return _utf8(text, value)
    return general(value)


def general(value: Any) -> bytes:
    """The general serialiser (floats, big integers, astral characters, other sequences)."""
    parts: list[str] = []
    _write(value, parts.append)
    return _utf8("".join(parts), value)


def _utf8(text: str, value: Any) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _surrogate_error(value) from None


def _json_module_writes_it(value: Any) -> bool:
    """True when json.dumps(sort_keys=True) writes `value` as RFC 8785 does: only str member
    names, str, bool, None, lists and integers within +-(2**53 - 1) (no float, whose repr()
    is not ECMAScript's; no subclass, whose encoding may differ)."""
    stack = [value]
    pop, push = stack.pop, stack.extend
    low, high = -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            for name in item:
                if type(name) is not str:
                    return False
            push(item.values())
        elif kind is list:
            push(item)
        elif kind is not int or not low <= item <= high:
            return False
    return True


def number(value: int | float) -> str:
    """A number as ECMAScript's Number::toString writes it (RFC 8785 §3.2.2.3)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CanonicalError(f"{value!r} is not a number")
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return str(value)
        try:
            text = number(float(value))
        except OverflowError:
            text = None
        from decimal import Decimal  # only here: importing decimal is 30 ms of every CLI start

        if text is not None and Decimal(text) == value:
            return text
        what = f"would sign as {text}" if text else "is beyond the range of an IEEE 754 double"
        raise CanonicalError(f"the integer {value} {what} (beyond +-(2**53 - 1) a JSON number is a double, "
                             "I-JSON, RFC 7493 2.2); write it as a string")
    if not math.isfinite(value):
        raise CanonicalError(f"{value!r} is not a JSON number (RFC 8785 3.2.2.3 refuses NaN and Infinity)")
    if value == 0:
        return "0"  # -0 too
    # repr() gives the shortest digits that round-trip, which is the digit string ES's
    # Number::toString chooses too; only the layout around them differs.
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    exponent = (int(exp_text) if exp_text else 0) - len(fraction)  # value = int(digits) * 10**exponent
    trimmed = digits.rstrip("0")
    exponent += len(digits) - len(trimmed)
    digits = trimmed.lstrip("0")
    k = len(digits)
    n = exponent + k  # ES: value = 0.d1d2...dk * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mark = "+" if e >= 0 else "-"
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{head}e{mark}{abs(e)}"


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _sorted_names(mapping: dict[Any, Any]) -> list[str]:
    names = list(mapping)
    for name in names:
        if type(name) is not str:
            raise CanonicalError(f"the member name {name!r} is not a string")
    if "".join(names).isascii():
        names.sort()  # ASCII: code point order is UTF-16 order
    else:
        # Python compares code points; UTF-16 code units differ for characters beyond the BMP
        # (a surrogate, 0xD800..., sorts before U+E000...U+FFFF). UTF-16BE bytes compare as units.
        names.sort(key=_utf16_key)
    return names


def _write(value: Any, out: Callable[[str], Any]) -> None:
    kind = type(value)
    if kind is str:
        out(_escape(value))
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif kind is dict:
        out("{")
        first = True
        for name in _sorted_names(value):
            if not first:
                out(",")
            first = False
            out(_escape(name))
            out(":")
            try:
                _write(value[name], out)
            except CanonicalError as exc:
                raise exc.under(name) from None
        out("}")
    elif kind is list or kind is tuple:
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            try:
                _write(item, out)
            except CanonicalError as exc:
                raise exc.under(index) from None
        out("]")
    elif kind is int:
        out(str(value) if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else number(value))
    elif kind is float:
        out(number(value))
    elif isinstance(value, (dict, list, tuple, str, int, float)):  # subclasses: as their base type
        _write(_plain(value), out)
    else:
        raise CanonicalError(f"a {kind.__name__} value, which JSON cannot carry")


def _plain(value: Any) -> Any:
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    return dict(value) if isinstance(value, dict) else list(value)


def _surrogate_error(value: Any) -> CanonicalError:
    """Where the lone surrogate is (walked only once encoding has failed)."""
    found = _find_surrogate(value, ())
    if found is None:  # pragma: no cover - encoding failed, so there is one
        return CanonicalError("the value holds text that is not valid Unicode")
    path, what, code = found
    return CanonicalError(f"{what} holds the lone surrogate U+{code:04X}, which UTF-8 and I-JSON "
                          "(RFC 7493 2.1) cannot carry", path)


def _find_surrogate(value: Any, path: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], str, int] | None:
    if isinstance(value, str):
        code = next((ord(ch) for ch in value if 0xD800 <= ord(ch) <= 0xDFFF), None)
        return None if code is None else (path, "a string", code)
    if isinstance(value, dict):
        for name, item in value.items():
            named = _find_surrogate(name, path) if isinstance(name, str) else None
            if named is not None:
                return path, "a member name", named[2]
            found = _find_surrogate(item, (*path, name))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_surrogate(item, (*path, index))
            if found is not None:
                return found
    return None


__all__ = ["MAX_SAFE_INTEGER", "CanonicalError", "canonical_json", "format_path", "general", "number"]
