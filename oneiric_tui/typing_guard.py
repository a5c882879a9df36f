"""Keys meant for a text box never act as commands.

While a text box (`Input`) has focus, Textual itself keeps the keys it types away from the
bindings. The gap is the moment after it loses focus without the operator closing it: a
mouse click that only meant to focus the terminal window, a dialog opening on its own, the
box being hidden or removed. The operator is still typing (`sqlite` into the log filter)
and every letter now reaches the bindings: `s` opens a picker, `q` quit the console.

`TypingGuard` looks at every key before the bindings do (OneiricApp.on_event). After a text
box lost focus that way, printable keys typed within `GRACE_S` (each one extending the
window, so a word typed on is caught whole) go back to that box when it is still shown on the
current screen (it is focused again and the key typed into it), and are dropped otherwise.
Leaving the box with a key (`enter`, `esc`, `tab`, ...) is deliberate: the next key is a
command, as it always was. A non-printable key after the loss (an arrow, `esc`) ends the
window too: the operator is no longer typing.

`Typeahead` covers the other end: the keys typed right after the key that opens a box (`:`
the command line, `/` a filter). Textual runs that key's binding after the keys already
queued behind it have gone to whatever had focus, so `:q` typed fast quit nothing and `:fleet`
typed fast opened the `e` dialog. Those keys are held until the box has focus and then typed
into it, or, when no box opened within HOLD_S, handled as if nothing had held them.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from enum import Enum

from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

GRACE_S = 1.0
# Keys that edit the text in a box without leaving it (the box's own bindings, but `enter`,
# which submits it): any other non-printable key typed into a box (enter, escape, tab,
# ctrl+p, ...) leaves it on purpose.
EDITING_KEYS = frozenset(key for binding in Input.BINDINGS if isinstance(binding, Binding)
                         for key in binding.key.split(",")) - {"enter"}


class Verdict(Enum):
    PASS = "pass"  # handle the key as usual
    REFOCUS = "refocus"  # give the box its focus back, then the key (it is typed into it)
    DROP = "drop"  # the box is gone: the key is dropped


@dataclass(frozen=True)
class Route:
    verdict: Verdict
    box: Input | None = None  # REFOCUS: the box to focus again
    first: bool = False  # DROP: the first key dropped since typing stopped reaching a box


def is_text_box(widget: Widget | None) -> bool:
    return isinstance(widget, Input)


class TypingGuard:
    """Remembers the last text box typed into and whether it was left on purpose."""

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self.grace_s = grace_s
        self._box: weakref.ref[Input] | None = None
        self._typed_at = 0.0
        self._left_on_purpose = True
        self._lost_at: float | None = None
        self._until = 0.0
        self._dropped = False

    def lost_focus(self, widget: Widget, now: float | None = None) -> None:
        """A widget lost focus (the app saw its `DescendantBlur`): when it is the box typed in
        last, the window starts now (not at the next key, which may come minutes later)."""
        if self._box is not None and self._box() is widget and self._lost_at is None:
            self._lost_at = time.monotonic() if now is None else now

    def route(self, event: events.Key, focused: Widget | None, screen: Screen,
              now: float | None = None) -> Route:
        """What to do with `event`, given what has focus now and the screen on top."""
        now = time.monotonic() if now is None else now
        if is_text_box(focused):
            assert isinstance(focused, Input)
            if self._box is None or self._box() is not focused:
                self._box = weakref.ref(focused)
            self._typed_at, self._lost_at, self._until, self._dropped = now, None, 0.0, False
            self._left_on_purpose = not event.is_printable and event.key not in EDITING_KEYS
            return Route(Verdict.PASS)
        box = self._box() if self._box is not None else None
        if box is None or self._left_on_purpose:
            return Route(Verdict.PASS)
        # Focus left the box without a key saying so. A dialog pushed over it sends no blur:
        # then the window runs from the last key typed into it.
        since = self._lost_at if self._lost_at is not None else self._typed_at
        if not event.is_printable or (now - since > self.grace_s and now > self._until):
            self._forget()
            return Route(Verdict.PASS)
        self._until = now + self.grace_s
        shown = box.is_attached and box.screen is screen and box.display and box.region.area > 0
        if shown and box.focusable:  # (region: a box in a hidden pane has none)
            self._typed_at, self._lost_at, self._until = now, None, 0.0  # typing goes on in the box
            return Route(Verdict.REFOCUS, box=box)
        first = not self._dropped
        self._dropped = True
        return Route(Verdict.DROP, first=first)

    def _forget(self) -> None:
        self._box = None
        self._left_on_purpose = True
        self._lost_at = None
        self._until = 0.0
        self._dropped = False


OPENING_KEYS = frozenset({"colon", "slash"})  # keys whose bindings open a text box
HOLD_S = 0.5


class Typeahead:
    """Holds the keys typed between a key that opens a text box and the box taking focus."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        self.hold_s = hold_s
        self._held: list[events.Key] = []
        self._since: float | None = None

    def opened_by(self, event: events.Key, focused: Widget | None, now: float | None = None) -> None:
        """`event` is about to be handled: when it is `:` or `/` outside a box, hold what follows."""
        if event.key in OPENING_KEYS and not is_text_box(focused):
            self._since = time.monotonic() if now is None else now
            self._held.clear()

    def hold(self, event: events.Key, focused: Widget | None, now: float | None = None) -> bool:
        """True when `event` is held for the box about to open (the app then handles it later)."""
        if self._since is None:
            return False
        if is_text_box(focused):  # the box opened before this key came: it is the box's
            self._since = None
            return False
        now = time.monotonic() if now is None else now
        if now - self._since > self.hold_s:
            self._since = None
            return False
        self._held.append(event)
        return True

    @property
    def held(self) -> int:
        return len(self._held)

    def release(self) -> list[events.Key]:
        """The held keys, in order; nothing is held after this."""
        keys, self._held, self._since = self._held, [], None
        return keys
