"""The framed box every modal of the console shares, so dialogs look alike."""

from __future__ import annotations


def dialog_box_css(screen: str) -> str:
    """CSS centring `<screen> #dialog` as a framed box that fits 80x24 and scrolls if taller."""
    return f"""
    {screen} {{
        align: center middle;
    }}
    {screen} #dialog {{
        width: 100%;
        max-width: 76;
        height: auto;
        max-height: 100%;
        overflow-y: auto;
        border: solid $primary;
        background: $surface;
        padding: 0 1;
    }}
"""
