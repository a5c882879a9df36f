"""The one boundary where a string from outside the code becomes something to show (§12).

Operator names, notes, reasons, comments, incident titles, provider and key names, provider
messages, file paths and manifest fields are data. Shown raw, such a string can drive the
operator's terminal: an ESC starts a control sequence (`ESC ] 0 ; title BEL` retitles the
window, `ESC [ 2 J` wipes the screen, `ESC ] 8` makes a hidden hyperlink), a bidi override
makes `txt.exe` read as `exe.txt` ("Trojan Source"), and Rich parses `[bold red]` or
`[link=http://evil]` in any str it is handed as markup. So every such string goes through
this module before it reaches a terminal, a Rich renderable or a Markdown file:

* `one_line` / `multi_line`: the string as plain text, with every HIDDEN character shown as
  a visible escape (`\\x1b`, `\\x07`, `\\x9b`, `\\u202e`). `one_line` also shows newline and
  tab as `\\n` and `\\t` (a table cell, a log line, a status bar stay one line); `multi_line`
  keeps them (a note, a summary). A backslash is left as it is: paths and patterns read
  naturally, and nothing a backslash does reaches the terminal.
* `plain`: a `rich.text.Text` of an outside value (never parsed as markup).
* `styled`: a `Text` from a template of our own markup with outside values put in as plain
  text, so call sites stay readable: `styled("[b]{name}[/b] paused {ref}", name=..., ref=...)`.
* `markdown`: for the Markdown exports: escaped as above, and Markdown's own metacharacters
  escaped too, so a note cannot become a heading, a link or raw HTML.

HIDDEN, the characters that never reach the output as themselves:

* C0 controls U+0000-U+001F (ESC, BEL, CR, backspace...), DEL U+007F and C1 controls
  U+0080-U+009F (U+009B is a one-character CSI): Unicode category Cc.
* Format characters, category Cf: the bidi embeddings, overrides and isolates
  (U+202A-U+202E, U+2066-U+2069), the marks U+200E, U+200F, U+061C, zero-width space and
  joiners (U+200B-U+200D), word joiner and invisible operators (U+2060-U+2064), the BOM
  U+FEFF, the soft hyphen U+00AD, tag characters (U+E0000 block), interlinear annotations.
  They draw nothing, and so make two different strings look alike. The price: an emoji ZWJ
  sequence shows its parts with `\\u200d` between them.
* Line and paragraph separators U+2028, U+2029 (Zl, Zp): line breaks in some terminals.
* Lone surrogates (Cs): what Python makes of invalid UTF-8 in argv and the environment;
  printed raw they raise UnicodeEncodeError instead of showing anything.
* Code points this Python's Unicode database does not know (Cn): a newer Unicode may make
  them format characters; what cannot be classified is not trusted.
* The Hangul fillers U+115F, U+1160, U+3164, U+FFA0: letters that draw as blank space, the
  classic invisible identifier.

Spaces (including no-break and ideographic spaces), combining marks, private-use characters
and every other printable character stay as they are. Confusable letters (Cyrillic `а` for
Latin `a`) are a question of identity, not of display: the principal rules refuse them.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Rich is imported where a Text is made: the quick CLI paths never pay for it
    from rich.text import Text

_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# Anything but printable ASCII gets a closer look (most text is printable ASCII: no call).
_SUSPECT = re.compile(r"[^\x20-\x7e]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def hidden(char: str) -> bool:
    """Whether `char` (one character) is HIDDEN: never written to the output as itself."""
    return char in _BLANK_LETTERS or unicodedata.category(char) in _HIDDEN_CATEGORIES


def escape_char(char: str) -> str:
    """The visible form of one character: `\\n`, `\\x1b`, `\\u202e`, `\\U000e0041`."""
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _one(match: re.Match[str]) -> str:
    char = match.group()
    return escape_char(char) if hidden(char) else char


def _multi(match: re.Match[str]) -> str:
    char = match.group()
    return char if char in "\n\t" or not hidden(char) else escape_char(char)


def one_line(value: object) -> str:
    """`value` as one line of plain text: every HIDDEN character, newline and tab included,
    becomes a visible escape. For cells, log lines, names, titles."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text
    return _SUSPECT.sub(_one, text)


def clause(value: object) -> str:
    """`value` as one line to put inside a sentence: its own closing full stop dropped, so
    "rolled back: health check refused.; memory keeps serving" cannot happen."""
    return one_line(value).rstrip().rstrip(".")


def multi_line(value: object) -> str:
    """`value` as plain text that keeps its newlines and tabs (a note, a summary, a sentence
    of several lines); every other HIDDEN character, CR included, becomes a visible escape."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text
    return _SUSPECT.sub(_multi, text)


def plain(value: object, style: str = "", *, multiline: bool = False) -> Text:
    """A Rich Text showing `value` exactly (escaped as above), never read as markup."""
    from rich.text import Text

    return Text(multi_line(value) if multiline else one_line(value), style=style)


# `styled` puts a placeholder for each value into the template, lets Rich parse the markup,
# then replaces each placeholder with its value: the value never meets the markup parser.
# The placeholders are private-use characters no template of ours contains.
_PLACEHOLDER_BASE = 0x10_0000
_FORMATTER = string.Formatter()


def styled(template: str, /, *, multiline: bool = False, **values: Any) -> Text:
    """A Text from `template`, our own Rich markup with `{name}` / `{name:spec}` fields, the
    values put in as plain text (escaped as `one_line`, or `multi_line` with multiline=True).

    `styled("[b]{name}[/b] paused {ref}", name="[red]x", ref=ref)` shows `[red]x` in bold.
    `{{` and `}}` are literal braces; `[` of our own is escaped as Rich markup wants (`\\[`).
    Fields go in text, never inside a tag: `[link={url}]` is not a thing here, as an outside
    value never becomes a style, a link or an action.
    """
    from rich.text import Text

    clean = multi_line if multiline else one_line
    markup: list[str] = []
    inserted: list[str] = []
    for literal, field, spec, conversion in _FORMATTER.parse(template):
        markup.append(literal)
        if field is None:
            continue
        value = _FORMATTER.convert_field(_FORMATTER.get_field(field, (), values)[0], conversion)
        inserted.append(clean(_FORMATTER.format_field(value, spec or "")))
        markup.append(chr(_PLACEHOLDER_BASE + len(inserted) - 1))
    parsed = Text.from_markup("".join(markup), emoji=False)
    if not inserted:
        return parsed
    plain_text = parsed.plain
    offsets = [i for i, char in enumerate(plain_text) if ord(char) >= _PLACEHOLDER_BASE]
    cuts = sorted({*offsets, *(i + 1 for i in offsets)})
    pieces = parsed.divide(cuts)
    out = Text()
    for piece in pieces:
        if len(piece) == 1 and ord(piece.plain) >= _PLACEHOLDER_BASE:
            value = Text(inserted[ord(piece.plain) - _PLACEHOLDER_BASE])
            for span in piece.spans:  # the styles around the field apply to its value
                value.stylize(span.style, 0, len(value))
            out.append_text(value)
        else:
            out.append_text(piece)
    return out


# Markdown: characters that start inline markup anywhere (emphasis, code, links and images,
# raw HTML and autolinks, table cells, strikethrough, entity references such as `&#x202e;`)
# are backslash-escaped everywhere; the ones that start a block (heading, quote, list item,
# setext underline) only at the start of a line, where they act.
_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
_MD_LINE_START = re.compile(r"^([ \t]*)([#+=-]|\d+(?=[.)]))", re.MULTILINE)


def markdown(value: object, *, multiline: bool = False) -> str:
    """`value` as Markdown text that renders as exactly these characters: escaped like
    `one_line` (or `multi_line`), then Markdown's metacharacters backslash-escaped."""
    text = multi_line(value) if multiline else one_line(value)
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_LINE_START.sub(_md_line_start, text)


def _md_line_start(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker.isdigit():  # `1.` / `1)`: an ordered list item; escape the punctuation after it
        return f"{indent}{marker}\\"
    return f"{indent}\\{marker}"


def json_text(data: Any, **options: Any) -> str:
    """`data` as JSON with every non-ASCII character escaped (`ensure_ascii`): a raw ESC, C1
    or bidi character can never reach the reader's terminal, and the value is unchanged."""
    return json.dumps(data, ensure_ascii=True, default=str, **options)


LONG_LIST = 64  # items; a longer list is laid out one compact item per line (json_document)
_ITEM_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str, separators=(", ", ": "))  # json_text's options


def json_document(data: Any) -> str:
    """A `--json` document for a reader and a script alike: indented by two, except that a
    list of more than LONG_LIST items puts each item on one line of its own, compact.

    Why: with `indent`, CPython's json falls back to its pure-Python encoder, which spent 0.3 s
    of 1.1 s of `oneiric status --json` at 10,000 components; each item encoded by the C
    encoder costs a tenth of that, and one component per line still greps and diffs well.
    Escaping is json_text's (ASCII only), so nothing a provider wrote can reach a terminal."""
    return _layout(data, "")


def _layout(value: Any, pad: str) -> str:
    inner = pad + "  "
    if isinstance(value, dict) and value:
        body = ",\n".join(f"{inner}{_key(k)}: {_layout(v, inner)}" for k, v in value.items())
        return "{\n" + body + "\n" + pad + "}"
    if isinstance(value, list | tuple) and value:
        if len(value) > LONG_LIST:
            encode = _ITEM_ENCODER.encode  # one encoder for every item (json.dumps makes one per call)
            body = ",\n".join(inner + encode(item) for item in value)
        else:
            body = ",\n".join(inner + _layout(item, inner) for item in value)
        return "[\n" + body + "\n" + pad + "]"
    return json_text(value)


def _key(key: Any) -> str:
    """A mapping key as json writes it (None -> "null", True -> "true", 3 -> "3")."""
    return json_text(key if isinstance(key, str) else json_text(key))


__all__ = ["escape_char", "hidden", "json_document", "json_text", "markdown", "multi_line", "one_line", "plain",
           "styled"]
