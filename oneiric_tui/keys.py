"""Vim-style movement keys, the same in every pane, each with its own binding id
(`<pane>.down`, `<pane>.up`, `<pane>.top`, `<pane>.bottom`) so users can remap them."""

from __future__ import annotations

from textual.binding import Binding


def vim_keys(pane: str, *, down: str = "cursor_down", up: str = "cursor_up",
             top: str | None = "scroll_home", bottom: str | None = "scroll_end") -> list[Binding]:
    keys = [Binding("j", down, "Down", show=False, id=f"{pane}.down"),
            Binding("k", up, "Up", show=False, id=f"{pane}.up")]
    if top:
        keys.append(Binding("g", top, "Top", show=False, id=f"{pane}.top"))
    if bottom:
        keys.append(Binding("G", bottom, "Bottom", show=False, id=f"{pane}.bottom"))
    return keys
