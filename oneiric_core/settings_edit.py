"""Editing a settings file in place: comments, key order and quoting kept, the result
validated before it is written, the file replaced atomically (`edit_yaml`), and the one edit
the product makes itself, a key's selection (`set_selection`)."""

from __future__ import annotations

import codecs
import io
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken

from .domains import Domain
from .errors import ConfigError
from .input_limits import LimitExceeded, read_capped
from .settings import (
    _decode,
    _missing_dir_message,
    _parse_text,
    _read_and_parse,
    limits_for,
    model_for_file,
)
from .settings_careful import _lc, _new_yaml, _parse_yaml
from .settings_model import (
    _NAME_RE,
    APP_FILE,
    AppSettings,
    _abs,
    _config_error,
    _sorted,
)

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
        refused = ConfigError(f"refusing to edit {shown}: the change would make it invalid: {reasons}")
        refused.problems = problems
        raise refused

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
        except (TypeError, ValueError):  # a ScalarString subclass that takes no plain str
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
