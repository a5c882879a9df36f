"""The themes a console may be started with (`--theme`, `:theme`): one sentence for a name
Textual does not have, asked before the screen takes over."""

from __future__ import annotations


def theme_refusal(name: str) -> str | None:
    """Why `--theme NAME` cannot be used, as one sentence naming the themes there are; None for
    a theme Textual has. Asked before the screen takes over: Textual itself would fall back to
    its default theme without a word, hiding a typo (issue 13 point 5)."""
    import difflib

    from textual.theme import BUILTIN_THEMES

    if name in BUILTIN_THEMES:
        return None
    known = sorted(BUILTIN_THEMES)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"There is no theme {name!r}{hint}; the themes are {', '.join(known)}."
