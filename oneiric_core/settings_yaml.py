"""The careful settings path: ruamel.yaml's round-trip parser, and comment-keeping edits.

`settings.py` reads a valid file through a fast C/Rust parser; only a file the fast path
refuses comes here (a broken file, or one with anchors, aliases, tags or other YAML
features the fast path leaves alone), and so do the product's own edits (`edit_yaml`,
`set_selection`). Importing ruamel.yaml's round-trip machinery costs tens of
milliseconds, which a console start on valid settings never pays: `settings.py` imports
this module on first use.

Parsing uses ruamel.yaml's round-trip composer so every value keeps its line and column,
and YAML tags are checked on the node tree *before* anything is constructed: a
`!!python/object/apply:...` tag is a reported problem, never code execution. Schema
errors (worded by pydantic, `schema.check`) are mapped back to the line of the offending key or value.

`edit_yaml` / `set_selection` edit a file in place keeping comments, key order and
quoting, validate the result before writing, and replace the file atomically.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken

from . import schema
from .domains import Domain
from .errors import ConfigError
from .input_limits import DEFAULT_LIMITS, InputLimits, LimitExceeded, read_capped
from .schema import Model
from .settings import (
    _ALLOWED_TAGS,
    _MAX_VALUES,
    _NAME_RE,
    APP_FILE,
    AppSettings,
    ConfigProblem,
    _abs,
    _config_error,
    _decode,
    _describe_error,
    _missing_dir_message,
    _parse_text,
    _read_and_parse,
    _sorted,
    limits_for,
    model_for_file,
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


def _syntax_problem(file: Path, err: MarkedYAMLError) -> ConfigProblem:
    problem = (err.problem or "").strip() or (err.context or "").strip() or "unreadable YAML"
    mark = err.problem_mark or err.context_mark
    context = (err.context or "").strip()
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
    except Exception as err:  # e.g. an impossible implicit timestamp such as 2001-02-30
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


# --------------------------------------------------------------------------- editing


def _guess_indent(root: CommentedMap, text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation as used by the file, ruamel defaults otherwise."""
    lines = text.splitlines()
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    stack: list[Any] = [root]
    seen: set[int] = set()
    while stack and (mapping is None or sequence is None):
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, CommentedMap):
            if node.fa.flow_style():
                continue
            for key in node:
                child = node[key]
                key_pos = _lc(node, "key", key)
                if key_pos is None:
                    continue
                if isinstance(child, CommentedMap) and len(child) and not child.fa.flow_style():
                    first = _lc(child, "key", next(iter(child)))
                    if mapping is None and first and first[0] > key_pos[0]:
                        mapping = first[1] - key_pos[1]
                elif isinstance(child, CommentedSeq) and len(child) and not child.fa.flow_style():
                    item = _lc(child, "item", 0)
                    if sequence is None and item and item[0] < len(lines):
                        dash = lines[item[0]].rfind("-", 0, item[1])
                        if dash >= key_pos[1]:
                            sequence = item[1] - key_pos[1]
                            offset = dash - key_pos[1]
                stack.append(child)
        elif isinstance(node, CommentedSeq):
            stack.extend(node)
    mapping = mapping if mapping and mapping > 0 else 2
    if sequence is None or offset is None or sequence - offset < 2:
        sequence, offset = 2, 0
    return mapping, sequence, offset


def _atomic_write(target: Path, data: bytes, mode: int | None) -> None:
    directory = target.parent
    tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies to new files
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class _Unchanged(Exception):
    """Raised by a mutator that found nothing to change: edit_yaml then writes nothing."""


def edit_yaml(path: Path, mutate: Callable[[CommentedMap], None]) -> None:
    """Edit a settings file in place, keeping comments, key order and quoting.

    Refuses (ConfigError naming file:line:column) when the file does not parse now, and
    refuses when the result would not validate against the file's model; in both cases
    the file is left untouched. A missing file is created. The write is atomic and keeps
    the file's mode.
    """
    shown = _abs(path)
    model = model_for_file(shown)
    if model is None:
        names = ", ".join([APP_FILE] + [d.settings_file for d in Domain])
        raise ConfigError(f"{shown} is not a settings file (expected one of {names})")
    target = Path(os.path.realpath(shown)) if shown.is_symlink() else shown
    if not target.parent.is_dir():
        raise ConfigError(_missing_dir_message(target.parent))

    limits = limits_for(target, None if target.name == APP_FILE else
                        _read_and_parse(target.parent / APP_FILE, AppSettings).instance)
    try:
        raw = read_capped(target, limits)
        existed = True
    except FileNotFoundError:
        raw, existed = b"", False
    except LimitExceeded as exc:
        raise ConfigError(f"refusing to edit {shown}: {exc.reason()}") from None
    except OSError as err:
        raise ConfigError(f"{shown}: cannot read the file: {err.strerror or err}") from None
    bom = raw.startswith(codecs.BOM_UTF8)
    text, problem = _decode(shown, raw)
    if problem is not None:
        raise _config_error([problem], suffix="; fix the file before editing it")
    assert text is not None
    newline = "\r\n" if "\r\n" in text else "\n"
    text = text.replace("\r\n", "\n")

    parsed = _parse_yaml(shown, text, limits)
    if parsed.problems:
        raise _config_error(_sorted(parsed.problems), suffix="; fix the file before editing it")

    prefix = ""
    if parsed.data is None:
        data = CommentedMap()
        if text.strip():  # only comments: keep them above the new content
            prefix = text if text.endswith("\n") else text + "\n"
        indent = (2, 2, 0)
    else:
        data = parsed.data
        indent = _guess_indent(data, text)

    try:
        mutate(data)
    except _Unchanged:
        return
    if parsed.data is None and not len(data):
        return  # nothing to write into an empty (or missing) file

    yaml = _new_yaml()
    yaml.width = 4096
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    if text.startswith("---"):
        yaml.explicit_start = True
    out = io.StringIO()
    yaml.dump(data, out)
    new_text = prefix + out.getvalue()

    _, problems = _parse_text(shown, new_text, model, limits)
    if problems:
        reasons = "; ".join(p.reason for p in problems)
        err = ConfigError(f"refusing to edit {shown}: the change would make it invalid: {reasons}")
        err.problems = problems  # type: ignore[attr-defined]
        raise err

    if existed and new_text == text:
        return
    encoded = new_text.replace("\n", newline).encode("utf-8")
    if bom:
        encoded = codecs.BOM_UTF8 + encoded
    mode = stat.S_IMODE(os.stat(target).st_mode) if existed else None
    _atomic_write(target, encoded, mode)


# Comment bookkeeping: ruamel attaches the comment lines that follow a key to that key's
# value (index 2 of `ca.items[key]`: "eol comment\nfollowing lines..."). When keys are
# added or removed, those following lines are moved so they stay where they were.


def _is_collection(value: Any) -> bool:
    return isinstance(value, (CommentedMap, CommentedSeq))


def _split_post_comment(mapping: CommentedMap, key: Any) -> str:
    """Detach and return the comment lines following `key` (its own eol comment stays)."""
    entry = mapping.ca.items.get(key)
    if not entry or len(entry) < 3 or entry[2] is None:
        return ""
    token = entry[2]
    head, _, tail = token.value.partition("\n")
    if not tail:
        return ""
    if head.strip():
        token.value = head + "\n"
    else:
        entry[2] = None
        if not any(entry):
            del mapping.ca.items[key]
    return tail


def _comment_tokens(lines: str) -> list[CommentToken]:
    tokens = []
    for line in lines.splitlines():
        stripped = line.lstrip()
        column = len(line) - len(stripped)
        tokens.append(CommentToken((stripped or "") + "\n", CommentMark(column if stripped else 0), None))
    return tokens


def _place_after(mapping: CommentedMap, keys: list[Any], index: int, tail: str) -> bool:
    """Put comment lines where the key at `keys[index]` (now removed) used to end."""
    if index > 0 and not _is_collection(mapping.get(keys[index - 1])):
        prev = keys[index - 1]
        entry = mapping.ca.items.setdefault(prev, [None, None, None, None])
        token = entry[2]
        if token is None:
            entry[2] = CommentToken("\n" + tail, CommentMark(0), None)
        else:
            token.value = (token.value if token.value.endswith("\n") else token.value + "\n") + tail
        return True
    if index + 1 < len(keys):
        entry = mapping.ca.items.setdefault(keys[index + 1], [None, None, None, None])
        entry[1] = _comment_tokens(tail) + list(entry[1] or [])
        return True
    return False


def _remove_key(mapping: CommentedMap, key: Any, carried: str = "") -> str:
    """Delete `key`, keeping the comment lines that followed it; returns lines it could not place."""
    keys = list(mapping)
    index = keys.index(key)
    tail = _split_post_comment(mapping, key) + carried
    del mapping[key]
    mapping.ca.items.pop(key, None)
    if tail and _place_after(mapping, keys, index, tail):
        return ""
    return tail


def _append_key(mapping: CommentedMap, key: Any, value: Any) -> None:
    """Add `key` at the end; comment lines that followed the old last key follow the new one."""
    tail = ""
    if len(mapping) and not mapping.fa.flow_style():
        last = list(mapping)[-1]
        if not _is_collection(mapping[last]):
            tail = _split_post_comment(mapping, last)
    mapping[key] = value
    if tail:
        mapping.ca.items[key] = [None, None, CommentToken("\n" + tail, CommentMark(0), None), None]


def _same_style(old: Any, new: str) -> Any:
    """A replacement value quoted the way the old one was."""
    if isinstance(old, ScalarString):
        try:
            return type(old)(new)
        except Exception:
            return new
    return new


def set_selection(settings_dir: Path, domain: Domain | str, key: str, provider: str | None) -> Path:
    """Select `provider` for `key` in the domain's settings file (None removes the selection).

    Comments, key order and quoting are kept; the file is created if absent. Returns its path.
    """
    domain = Domain.parse(domain)
    if not _NAME_RE.fullmatch(key or ""):
        raise ConfigError(f"'{key}' is not a valid component key: use letters, digits, '_', '.' and '-'.")
    if provider is not None and not _NAME_RE.fullmatch(provider):
        raise ConfigError(f"'{provider}' is not a valid provider name: use letters, digits, '_', '.' and '-'.")
    directory = _abs(settings_dir)
    if not directory.is_dir():
        raise ConfigError(_missing_dir_message(directory))
    path = directory / domain.settings_file
    if provider is None and not path.exists():
        return path

    def mutate(root: CommentedMap) -> None:
        selections = root.get("selections")
        if selections is not None and not isinstance(selections, CommentedMap):
            line = _lc(root, "key", "selections")
            where = f"{path}:{line[0] + 1}:{line[1] + 1}" if line else str(path)
            raise ConfigError(f"{where}: 'selections' must be a mapping of key: provider")
        if provider is None:
            if selections is None or key not in selections:
                raise _Unchanged
            unplaced = _remove_key(selections, key)
            if len(selections) == 0:
                unplaced = _remove_key(root, "selections", carried=unplaced)
            if unplaced:
                root.ca.end = _comment_tokens(unplaced) + list(root.ca.end or [])
            return
        if selections is None:
            fresh = CommentedMap()
            fresh[key] = provider
            if "selections" in root:
                root["selections"] = fresh
            else:
                root.insert(0, "selections", fresh)
        elif key in selections:
            if selections[key] == provider:
                raise _Unchanged
            selections[key] = _same_style(selections[key], provider)
        else:
            _append_key(selections, key, provider)

    edit_yaml(path, mutate)
    return path
