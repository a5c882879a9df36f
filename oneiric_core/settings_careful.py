"""The careful settings path: ruamel.yaml's round-trip parser, problems with their lines.

`settings.py` reads a valid file through a fast C/Rust parser; only a file the fast path
refuses comes here (a broken file, or one with anchors, aliases, tags or other YAML
features the fast path leaves alone), and so do the product's own edits (settings_edit.py).
Importing ruamel.yaml's round-trip machinery costs tens of milliseconds, which a console
start on valid settings never pays: `settings.py` imports this module on first use.

Parsing uses ruamel.yaml's round-trip composer so every value keeps its line and column,
and YAML tags are checked on the node tree *before* anything is constructed: a
`!!python/object/apply:...` tag is a reported problem, never code execution. Schema
errors (worded by pydantic, `schema.check`) are mapped back to the line of the offending key or value.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from . import schema
from .input_limits import DEFAULT_LIMITS, InputLimits, LimitExceeded
from .schema import Model
from .settings_model import (
    _ALLOWED_TAGS,
    _MAX_VALUES,
    ConfigProblem,
    _describe_error,
    _sorted,
)

# --------------------------------------------------------------------------- parsing


def _new_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    return yaml


def _tag_text(tag: Any) -> str:
    text = getattr(tag, "value", None) or str(tag)
    if text.startswith("tag:yaml.org,2002:"):
        return "!!" + text[len("tag:yaml.org,2002:") :]
    return text


def _mark_problem(file: Path, mark: Any, reason: str) -> ConfigProblem:
    if mark is None:
        return ConfigProblem(file, None, None, reason)
    return ConfigProblem(file, mark.line + 1, mark.column + 1, reason)


# ruamel.yaml names tokens as its parser knows them ("expected '<document start>', but found
# ('<block mapping start>',)", a Python tuple among them): these are the same in an operator's words.
_TOKEN_WORDS = {
    "<document start>": "'---' (the start of another document)",
    "<document end>": "'...' (the end of the document)",
    "<stream end>": "the end of the file",
    "<block end>": "the end of the indented block",
    "<block mapping start>": "a mapping (key: value)",
    "<block sequence start>": "a list item ('- ')",
    "<block entry>": "a list item ('- ')",
    "<flow mapping start>": "'{'",
    "<flow mapping end>": "'}'",
    "<flow sequence start>": "'['",
    "<flow sequence end>": "']'",
    "<flow entry>": "','",
    "<key>": "a key",
    "<value>": "a value (':')",
    "<scalar>": "a value",
    "<alias>": "an alias ('*')",
    "<anchor>": "an anchor ('&')",
    "<tag>": "a tag ('!')",
    "<directive>": "a directive ('%')",
}
_TOKEN = re.compile(r"\(\s*'(<[a-z ]+>)',?\s*\)|'(<[a-z ]+>)'|(<[a-z ]+>)")


def _plain_tokens(text: str) -> str:
    """`text` with ruamel.yaml's token names (quoted, bare or inside a tuple's repr) in words."""
    def word(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return _TOKEN_WORDS.get(name, name.strip("<>"))
    return _TOKEN.sub(word, text)


def _syntax_problem(file: Path, err: MarkedYAMLError) -> ConfigProblem:
    problem = _plain_tokens((err.problem or "").strip()) or _plain_tokens((err.context or "").strip()) \
        or "unreadable YAML"
    mark = err.problem_mark or err.context_mark
    context = _plain_tokens((err.context or "").strip())
    if context and err.problem and err.context_mark is not None and err.problem_mark is not None:
        problem += f" ({context} that starts at line {err.context_mark.line + 1})"
    return _mark_problem(file, mark, f"YAML syntax error: {problem}")


def _check_nodes(file: Path, root: Node, limits: InputLimits) -> tuple[list[ConfigProblem], bool]:
    """Before anything is constructed: tags (only plain data), and nesting (at most
    `limits.max_depth` levels, the top mapping being level 1). Returns the problems and
    whether the document reuses a node (an alias), which `_validate` then bounds. Iterative."""
    problems: list[ConfigProblem] = []
    seen: set[int] = set()
    aliased = False
    stack: list[tuple[Node, int, tuple[Any, ...]]] = [(root, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if id(node) in seen:
            aliased = True
            continue
        seen.add(id(node))
        tag = getattr(node.tag, "value", None) or str(node.tag)
        if tag not in _ALLOWED_TAGS:
            problems.append(
                _mark_problem(
                    file,
                    node.start_mark,
                    f"YAML tag '{_tag_text(node.tag)}' is not allowed in settings files "
                    "(only plain strings, numbers, booleans, lists and mappings)",
                )
            )
        if isinstance(node, (MappingNode, SequenceNode)) and depth > limits.max_depth:
            shown = _path_label(path, depth - 1 > len(path))
            exc = LimitExceeded("depth", str(file), depth, limits.max_depth, limits.depth_key,
                                f" (at {shown})" if shown else "")
            problems.append(_mark_problem(file, node.start_mark, exc.reason()))
            return problems, aliased  # one sentence for the whole subtree, none for its children
        child = path + ("?",) if len(path) < 4 else path
        if isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                name = str(key.value) if isinstance(key.value, (str, int)) else "?"
                stack.append((value, depth + 1, path + (name,) if len(path) < 4 else path))
                stack.append((key, depth + 1, child))  # a complex key (a mapping as a key)
        elif isinstance(node, SequenceNode):
            stack.extend((item, depth + 1, path + (f"[{i}]",) if len(path) < 4 else path)
                         for i, item in reversed(list(enumerate(node.value))))
    return problems, aliased


def _path_label(path: tuple[Any, ...], truncated: bool) -> str:
    out = ""
    for part in path:
        out += part if part.startswith("[") else ("." if out else "") + part
    return out + ("..." if truncated else "")


class _TooBig(Exception):
    pass


class _TooDeep(Exception):
    pass


def _to_plain(obj: Any, budget: list[int], depth: int = 0, max_depth: int | None = None) -> Any:
    """ruamel round-trip types -> plain dict/list/str/int/float/bool for pydantic. `budget`
    counts values down (aliases can make a document expand far beyond its text); `max_depth`
    bounds the nesting the expansion builds (an alias can nest one subtree inside another)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if isinstance(obj, dict):
        if max_depth is not None and depth >= max_depth:
            raise _TooDeep
        return {_to_plain(k, budget, depth + 1, max_depth): _to_plain(v, budget, depth + 1, max_depth)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if max_depth is not None and depth >= max_depth:
            raise _TooDeep
        items = [_to_plain(v, budget, depth + 1, max_depth) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, bool):
        return bool(obj)
    if type(obj).__name__ == "ScalarBoolean":  # anchored booleans are an int subclass
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    return obj


@dataclass
class _Parsed:
    data: CommentedMap | None
    problems: list[ConfigProblem]
    aliased: bool = True  # whether the document reuses nodes (unknown: assume it does)


def _parse_yaml(file: Path, text: str, limits: InputLimits = DEFAULT_LIMITS) -> _Parsed:
    """Syntax, tags, nesting, duplicate keys and the top-level shape; no schema."""
    yaml = _new_yaml()
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as err:
        return _Parsed(None, [_syntax_problem(file, err)])
    except YAMLError as err:
        return _Parsed(None, [ConfigProblem(file, None, None, f"YAML error: {err}")])
    except RecursionError:  # the parser is recursive: far deeper than any limit allows
        exc = LimitExceeded("depth", str(file), None, limits.max_depth, limits.depth_key)
        return _Parsed(None, [ConfigProblem(file, None, None, exc.reason())])
    if node is None:
        return _Parsed(None, [], False)
    node_problems, aliased = _check_nodes(file, node, limits)
    if node_problems:
        return _Parsed(None, node_problems)
    if not isinstance(node, MappingNode):
        return _Parsed(None, [_mark_problem(file, node.start_mark, "expected a mapping at the top of the file")])
    try:
        # Build the data from the node already composed: parsing the text twice doubled the
        # load time of large settings files (the parser is pure Python).
        data = yaml.constructor.construct_document(node)
    except MarkedYAMLError as err:
        if type(err).__name__ == "DuplicateKeyError":
            match = re.search(r'found duplicate key "(.*?)"', err.problem or "")
            key = match.group(1) if match else "?"
            reason = f"duplicate key '{key}'"
            if err.context_mark is not None:
                reason += f" (first defined at line {err.context_mark.line + 1})"
            return _Parsed(None, [_mark_problem(file, err.problem_mark, reason)])
        return _Parsed(None, [_syntax_problem(file, err)])
    except Exception as err:  # noqa: BLE001 - ruamel raises TypeError, IndexError, AttributeError too on malformed text (2001-02-30: ValueError)
        return _Parsed(None, [ConfigProblem(file, None, None, f"YAML error: {err}")])
    if not isinstance(data, CommentedMap):
        return _Parsed(None, [ConfigProblem(file, 1, 1, "expected a mapping at the top of the file")])
    return _Parsed(data, [], aliased)


def _lc(node: Any, method: str, arg: Any) -> tuple[int, int] | None:
    try:
        pos = getattr(node.lc, method)(arg)
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    if pos is None or pos[0] is None:
        return None
    return int(pos[0]), int(pos[1])


def _locate(root: CommentedMap, loc: tuple[Any, ...], on_key: bool) -> tuple[int, int] | None:
    """0-based (line, column) for a pydantic `loc`, falling back to the nearest ancestor."""
    node: Any = root
    pos: tuple[int, int] | None = None
    parts = list(loc)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        next_is_key = not last and parts[i + 1] == "[key]"
        if part == "[key]":
            return pos
        if isinstance(node, CommentedMap):
            try:
                present = part in node
            except TypeError:
                present = False
            if not present:
                return pos
            key_pos = _lc(node, "key", part)
            child = node[part]
            if next_is_key or (last and on_key):
                return key_pos or pos
            if last:
                if isinstance(child, (CommentedMap, CommentedSeq)):
                    return key_pos or pos
                return _lc(node, "value", part) or key_pos or pos
            node, pos = child, key_pos or pos
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            item_pos = _lc(node, "item", part) or pos
            if last:
                return item_pos
            node, pos = node[part], item_pos
        else:
            return pos
    return pos


def _validate(file: Path, data: CommentedMap | None, model: type[Model], *, aliased: bool = True,
              limits: InputLimits = DEFAULT_LIMITS) -> tuple[Model | None, list[ConfigProblem]]:
    """Schema-check parsed data, each problem located by line. A document with aliases is held
    to _MAX_VALUES values once expanded ("billion laughs"); one without holds no more values
    than its text, which the size limit already bounds, so it is not counted."""
    if data is None:
        return model(), []
    try:
        plain = _to_plain(data, [_MAX_VALUES if aliased else sys.maxsize], 0, limits.max_depth)
    except _TooBig:
        return None, [ConfigProblem(file, None, None, f"the file's anchors and aliases expand it to more than "
                                    f"{_MAX_VALUES:,} values; write the repeated parts out or reuse fewer")]
    except (_TooDeep, RecursionError):
        exc = LimitExceeded("depth", str(file), limits.max_depth + 1, limits.max_depth, limits.depth_key,
                            " once its aliases are expanded")
        return None, [ConfigProblem(file, None, None, exc.reason())]
    instance, errors = schema.check(model, plain)  # pydantic is imported only for a problem
    if instance is not None:
        return instance, []
    problems = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        pos = _locate(data, loc, on_key=error.get("type") == "extra_forbidden")
        if pos is None:
            pos = _lc(data, "key", next(iter(data))) if len(data) else None
        line, col = (pos[0] + 1, pos[1] + 1) if pos else (None, None)
        problems.append(ConfigProblem(file, line, col, _describe_error(model, error)))
    return None, _sorted(problems)


def parse_careful(file: Path, text: str, model: type[Model],
                  limits: InputLimits = DEFAULT_LIMITS) -> tuple[Model | None, list[ConfigProblem]]:
    """Parse and validate one file's text, wording every problem with its line and column."""
    parsed = _parse_yaml(file, text, limits)
    if parsed.problems:
        return None, _sorted(parsed.problems)
    return _validate(file, parsed.data, model, aliased=parsed.aliased, limits=limits)
