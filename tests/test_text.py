"""Outside text as plain text (oneiric_core/text.py): control characters shown as escapes,
markup never read, Markdown inert."""

from __future__ import annotations

import io
import json
import sys
import unicodedata

import pytest
from rich.console import Console
from rich.text import Text

from oneiric_core.text import (
    LONG_LIST,
    escape_char,
    hidden,
    json_document,
    markdown,
    multi_line,
    one_line,
    plain,
    styled,
)

C0 = [chr(c) for c in range(0x20)]
C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064", "\ufeff",
             "\u00ad", "\u2028", "\u2029", "\U000e0041", "\u3164", "\u115f", "\u1160", "\uffa0", "\udc80"]
HOSTILE_NAME = "mallory\x1b]0;pwned\x07\x1b[2J[bold red]RED[/]"


def rendered(renderable, *, terminal: bool = True) -> str:
    """What a colour terminal receives for `renderable` (escape codes included)."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, color_system="truecolor" if terminal else None,
                      width=200, legacy_windows=False)
    console.print(renderable)
    return out.getvalue()


@pytest.mark.parametrize("char", [*C0, "\x7f", *C1], ids=lambda c: f"U+{ord(c):04X}")
def test_every_c0_and_c1_control_and_del_becomes_a_visible_escape(char):
    shown = one_line(f"a{char}b")
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    visible = named.get(char, f"\\x{ord(char):02x}")
    assert shown == f"a{visible}b"
    assert shown.isascii() and shown.isprintable()


@pytest.mark.parametrize("char", BIDI + INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_controls_and_invisible_characters_become_escapes(char):
    shown = one_line(f"txt{char}exe")
    assert shown == f"txt{escape_char(char)}exe" and shown.isascii() and shown.isprintable()
    assert escape_char(char).startswith(("\\u", "\\U", "\\x"))


def test_the_trojan_source_override_cannot_reorder_what_is_shown():
    assert one_line("invoice\u202eexe.pdf") == "invoice\\u202eexe.pdf"
    assert one_line("access \u2066level\u2069") == "access \\u2066level\\u2069"


def test_every_control_format_and_separator_character_of_unicode_is_hidden():
    """The rule is the Unicode categories, so the whole database is covered, not a hand list."""
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            assert hidden(char), f"U+{code:04X}"


def test_printable_text_of_any_script_and_spaces_stay_as_they_are():
    for text in ("plain ascii ~!@#$%^&*()", "Ж аlice 日本語 ünïcödé", "a\u00a0b\u3000c", "e\u0301", "🙂",
                 "C:\\path\\x1b literally", "\\"):
        assert one_line(text) == text and multi_line(text) == text


def test_one_line_shows_newlines_and_tabs_and_multi_line_keeps_them():
    note = "first\n\tsecond\r\nthird\x1b[2J"
    assert one_line(note) == "first\\n\\tsecond\\r\\nthird\\x1b[2J"
    assert multi_line(note) == "first\n\tsecond\\r\nthird\\x1b[2J"


def test_any_value_is_turned_into_text_first():
    assert one_line(42) == "42" and one_line(None) == "None"
    assert one_line(ValueError("bad \x1b name")) == "bad \\x1b name"


def test_the_escaped_form_prints_on_any_utf8_stream_even_from_lone_surrogates():
    """argv and the environment carry invalid UTF-8 as lone surrogates; raw they cannot be printed."""
    value = "op\udcff\udc80"
    with pytest.raises(UnicodeEncodeError):
        value.encode("utf-8")
    assert one_line(value).encode("utf-8") == b"op\\udcff\\udc80"


@pytest.mark.parametrize("markup", [
    "[bold red]x[/]", "[link=http://evil]x[/link]", "[/]", "[/bold]", "[b]", "\\[b]x",
    "x\\", "[@click=app.quit]x[/]", ":smile:", "[red", "]", "[[b]]",
])
def test_plain_never_reads_markup_or_emoji_codes(markup):
    text = plain(markup)
    assert text.plain == markup and not text.spans and text.style == ""
    out = rendered(text)
    assert markup in out
    assert "\x1b]8;" not in out  # no OSC 8 hyperlink


def test_plain_of_a_hostile_name_sends_no_control_sequence_to_the_terminal():
    out = rendered(plain(HOSTILE_NAME, "bold"))
    # The only ESCs are Rich's own style (bold and reset); the name's are text.
    assert out.replace("\x1b[1m", "").replace("\x1b[0m", "").count("\x1b") == 0
    assert "mallory\\x1b]0;pwned\\x07\\x1b[2J[bold red]RED[/]" in out


def test_plain_multiline_keeps_lines():
    assert plain("a\nb\x07", multiline=True).plain == "a\nb\\x07"


def test_styled_applies_our_markup_and_puts_values_in_as_plain_text():
    text = styled("[b]{name}[/b] paused {ref}", name="[red]x[/red]", ref="adapter/cache")
    assert text.plain == "[red]x[/red] paused adapter/cache"
    bold = [(s.start, s.end, str(s.style)) for s in text.spans]
    assert bold == [(0, len("[red]x[/red]"), "bold")]
    out = rendered(text)
    assert "[red]x[/red]" in out and "\x1b[31m" not in out


@pytest.mark.parametrize("value", ["[/]", "[link=http://evil]x[/link]", "\\", "x\\", "\\[b]", "{name}", "}{"])
def test_styled_values_never_reach_the_markup_parser(value):
    text = styled("[dim]<{v}>[/dim] [b]{v}[/b]", v=value)
    assert text.plain == f"<{value}> {value}"
    assert {str(s.style) for s in text.spans} == {"dim", "bold"}


def test_styled_escapes_control_characters_and_formats_fields():
    text = styled("{who} {n:>4} {n!r} {{literal}}", who=HOSTILE_NAME, n=7)
    assert text.plain == "mallory\\x1b]0;pwned\\x07\\x1b[2J[bold red]RED[/]    7 7 {literal}"
    assert styled("{note}", note="a\nb", multiline=True).plain == "a\nb"
    assert styled("{note}", note="a\nb").plain == "a\\nb"


def test_styled_without_fields_is_our_markup():
    text = styled("[bold]Ready[/bold]")
    assert isinstance(text, Text) and text.plain == "Ready" and text.spans


@pytest.mark.parametrize(("value", "expected"), [
    ("[x](http://evil)", "\\[x\\](http://evil)"),
    ("![img](http://evil/a.png)", "!\\[img\\](http://evil/a.png)"),
    ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
    ("*bold* _em_ `code` ~~gone~~", "\\*bold\\* \\_em\\_ \\`code\\` \\~\\~gone\\~\\~"),
    ("a | b", "a \\| b"),
    ("&#x202e; &amp;", "\\&#x202e; \\&amp;"),
    ("# heading", "\\# heading"),
    ("- item", "\\- item"),
    ("1. first", "1\\. first"),
    ("back\\slash", "back\\\\slash"),
    ("esc\x1b[31m", "esc\\\\x1b\\[31m"),
    ("line\nbreak", "line\\\\nbreak"),
    ("plain words, a.b-c/d", "plain words, a.b-c/d"),
])
def test_markdown_escapes_metacharacters_and_control_characters(value, expected):
    assert markdown(value) == expected


def test_markdown_multiline_keeps_lines_and_escapes_every_line_start():
    text = markdown("summary\n# not a heading\n  - not a list\n===\n> no quote\n2) no list", multiline=True)
    assert text == "summary\n\\# not a heading\n  \\- not a list\n\\===\n\\> no quote\n2\\) no list"


def test_markdown_renders_as_exactly_the_original_characters():
    """Rendered by a real CommonMark renderer (markdown-it, which Textual ships), the escaped
    text is the original characters and nothing else: no link, no HTML, no heading."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    for value in ("[x](http://evil)", "<b>x</b>", "# h", "*a* _b_ `c`", "&lt;", "1. x", "a|b", "\\"):
        html = md.render(markdown(value))
        assert html.startswith("<p>") and "<a " not in html and "<b>" not in html and "<em>" not in html, html
        inner = html.removeprefix("<p>").removesuffix("</p>\n")
        assert inner == value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), html


def test_module_imports_rich_only_when_a_text_is_made():
    """The quick CLI paths (a command answered by the host) never pay for importing Rich."""
    import subprocess

    code = ("import sys; import oneiric_core.text as t; t.one_line('x'); t.markdown('x');"
            " print('rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_json_output_escapes_every_control_and_non_ascii_character_and_keeps_the_value():
    import json

    from oneiric_core.cli.output import json_text

    value = {"note": "\x1b[2J\x07\x7f\x85\x9b\u202e\u2028 ok Ж", "who": HOSTILE_NAME}
    text = json_text(value, indent=2)
    assert text.isascii() and all(line.isprintable() for line in text.splitlines())
    assert "\\u001b" in text and "\\u009b" in text and "\\u007f" in text and json.loads(text) == value


SHORT_DOCS = [
    {"a": 1, "b": [1, 2, {"c": None}], "d": {}, "e": [], None: 1, True: 2, 3: 4, "é": "\x1b[31m"},
    [{"x": i, "y": [i]} for i in range(LONG_LIST)], [], {}, "text", 1.5, None,
]


@pytest.mark.parametrize("doc", SHORT_DOCS)
def test_a_json_document_without_long_lists_is_exactly_json_indented_by_two(doc):
    assert json_document(doc) == json.dumps(doc, indent=2, ensure_ascii=True)


def test_a_long_list_has_one_compact_item_per_line_and_reads_back_the_same():
    doc = {"host": None, "components": [{"ref": f"adapter/k{i}", "name": "ré\x1b", "n": [i]}
                                        for i in range(LONG_LIST + 1)]}
    text = json_document(doc)
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert lines[:3] == ["{", '  "host": null,', '  "components": [']
    assert lines[3] == '    {"ref": "adapter/k0", "name": "r\\u00e9\\u001b", "n": [0]},'
    assert len(lines) == 3 + LONG_LIST + 1 + 2 and text.isascii()
