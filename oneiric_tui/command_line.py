"""The `:` command line (k9s-style): what an operator types, read into a typed command.

Why a command line beside the keys: at 3 a.m. `:swap cache redis` or `:approve 7` says the
whole intent in one line, without finding the key in the tree first, and it is the same
words the CLI takes (`oneiric swap cache redis`, `oneiric approve 7`). Every command here
does what a key or a palette entry does; the screen runs it through the same paths (the
confirmation dialog, the approval path), so nothing changes without being asked.

This module only reads words: `parse` turns a line into a `ConsoleCommand` or one sentence
saying what is wrong, `complete` proposes the next word from `Vocabulary` (the keys,
providers, proposals, runbooks and themes the console knows right now). `CommandLine` is
the box; main_screen.py runs the command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from textual.suggester import Suggester
from textual.widgets import Input


@dataclass(frozen=True)
class CommandSpec:
    """One command: its words after the name (`key`, `provider`, ...), how many are needed,
    the line the help and a usage error show, and how the command palette lists it (palette.py
    builds the palette from this table, so every command is in both).

    `title` is the palette entry for the command alone ("" when it needs a word); `each` the
    entry for each word its first argument takes now ("Pause {word}": one per key; "" none).
    `anywhere`: it needs no pane of the main view, so the palette offers it on every screen."""

    name: str
    args: tuple[str, ...]
    required: int
    usage: str
    summary: str
    aliases: tuple[str, ...] = ()
    title: str = ""
    each: str = ""
    anywhere: bool = False


SPECS = (
    CommandSpec("swap", ("key", "provider"), 1, ":swap KEY [PROVIDER]",
                "swap a key: to PROVIDER (the approval dialog next), else the picker", each="Swap {word}"),
    CommandSpec("approve", ("proposal",), 1, ":approve N", "approve pending proposal #N (asks first)",
                each="Approve #{word} {note}"),
    CommandSpec("reject", ("proposal",), 1, ":reject N", "reject pending proposal #N (asks first)",
                each="Reject #{word} {note}"),
    CommandSpec("pause", ("key",), 1, ":pause KEY", "pause a key: no new work", each="Pause {word}"),
    CommandSpec("drain", ("key",), 1, ":drain KEY", "drain a key: no new work, wait for work in flight",
                each="Drain {word}"),
    CommandSpec("resume", ("key",), 1, ":resume KEY", "resume a paused or drained key", each="Resume {word}"),
    CommandSpec("probe", ("key",), 1, ":probe KEY", "run a key's health check now", each="Probe {word}"),
    CommandSpec("explain", ("key",), 1, ":explain KEY", "highlight a key: Explain shows why its provider wins",
                each="Explain {word}"),
    CommandSpec("history", ("key",), 1, ":history KEY",
                "a key's health latency over time, with its swaps, rollbacks and health changes",
                each="History {word}"),
    CommandSpec("incidents", (), 0, ":incidents", "every open incident: resume, close or message any of them",
                title="Incidents", anywhere=True),
    CommandSpec("incident", ("incident",), 0, ":incident [N]", "the incident panel (N: that incident)",
                title="Incident panel", each="Incident #{word} {note}"),
    CommandSpec("runbook", ("runbook",), 0, ":runbook [ID]", "the incident panel, to walk runbook ID",
                each="Runbook {word}"),
    CommandSpec("log", ("filter",), 0, ":log [FILTER] | :log at HH:MM",
                "the swap log, filtered (kind:swap-rollback, key:cache, sev:error, words; empty clears); "
                "at HH:MM: the full journal at that time", title="Log: every change (no filter)",
                each="Log: {word}"),
    CommandSpec("journal", (), 0, ":journal", "every event, full screen: follow, wrap, copy a line",
                title="Journal", anywhere=True),
    CommandSpec("notifications", (), 0, ":notifications", "this session's notifications with their time",
                title="Notifications ({notices})", anywhere=True),
    CommandSpec("rollout", ("key", "provider"), 0, ":rollout [KEY PROVIDER]",
                "the fleet's rollouts, live (KEY PROVIDER: start one over every live node, asks first)",
                title="Rollouts: the fleet's, live", anywhere=True),
    CommandSpec("ctx", ("context",), 0, ":ctx [NAME]",
                "the contexts of the contexts file; NAME: this console moves to that one (as the host, asks first)",
                title="Contexts: the places this console can switch to"),
    CommandSpec("fleet", (), 0, ":fleet", "the fleet: each node's health, the provider each serves per key, drift",
                title="Fleet: nodes, what each serves, drift", anywhere=True),
    CommandSpec("node", ("node",), 0, ":node [NAME]",
                "that node's panes: the console shows node NAME of this fleet store (as the host, asks first); "
                "no NAME: the fleet view, where enter opens a node", title="Node: open another node's panes",
                each="Node: {word}"),
    CommandSpec("upkeep", (), 0, ":upkeep", "the maintenance calendar and the settings not read",
                ("maintenance",), title="Upkeep: maintenance calendar ({due}), settings not read", anywhere=True),
    CommandSpec("theme", ("theme",), 0, ":theme [NAME]", "switch theme (no NAME: the theme picker)",
                title="Theme", each="Theme: {word}", anywhere=True),
    CommandSpec("help", (), 0, ":help", "every key and command, grouped by task", title="Help: keys",
                anywhere=True),
    CommandSpec("quit", (), 0, ":q", "quit the console (as the host it asks first: it stops the providers)",
                ("q",), title="Quit", anywhere=True),
)
BY_NAME = {name: spec for spec in SPECS for name in (spec.name, *spec.aliases)}


@dataclass(frozen=True)
class ConsoleCommand:
    """A line read: the command's name (aliases resolved) and its words."""

    name: str
    words: tuple[str, ...] = ()

    def word(self, index: int) -> str | None:
        return self.words[index] if index < len(self.words) else None


@dataclass
class Vocabulary:
    """What the console knows now, for completion and for naming a key: "cache" or
    "adapter/cache" for a key, the candidates of each key, pending proposals, runbooks,
    incidents, themes."""

    keys: Sequence[str] = ()  # "domain/key"
    providers: Callable[[str], Sequence[str]] = field(default=lambda ref: ())
    proposals: Sequence[int] = ()
    incidents: Sequence[int] = ()
    runbooks: Sequence[str] = ()
    themes: Sequence[str] = ()
    nodes: Sequence[str] = ()  # a fleet store's nodes (none on one host's store)
    notes: Mapping[str, str] = field(default_factory=dict)  # "proposal:7" -> "adapter/cache a -> b"
    counts: Mapping[str, str] = field(default_factory=dict)  # palette titles' {notices}, {due}

    def resolve_key(self, word: str) -> str:
        """The "domain/key" a word names, or ValueError with the sentence to show."""
        if word in self.keys:
            return word
        matches = [ref for ref in self.keys if ref.split("/", 1)[-1] == word]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ValueError(f"'{word}' is a key of {len(matches)} domains ({', '.join(matches)}): "
                             f"type it as domain/key.")
        raise ValueError(f"No component '{word}': type a key the tree shows (tab completes).")

    def choices(self, kind: str, before: Sequence[str]) -> list[str]:
        """The words that may come in an argument of `kind`, given the words before it."""
        if kind == "key":
            return sorted({ref.split("/", 1)[1] for ref in self.keys} | set(self.keys))
        if kind == "provider" and before:
            try:
                return list(self.providers(self.resolve_key(before[-1])))
            except ValueError:
                return []
        if kind == "proposal":
            return [str(i) for i in self.proposals]
        if kind == "incident":
            return [str(i) for i in self.incidents]
        if kind == "runbook":
            return list(self.runbooks)
        if kind == "theme":
            return list(self.themes)
        if kind == "node":
            return list(self.nodes)
        if kind == "filter":
            return ["at", *LOG_FILTERS]
        return []

    def words(self, kind: str) -> list[str]:
        """Each whole word an argument of `kind` can be, for the palette: every key by its
        full name, the log filters that need nothing more (not `at`, which needs a time)."""
        if kind == "key":
            return list(self.keys)
        if kind == "filter":
            return list(LOG_FILTERS)
        return self.choices(kind, ())


LOG_FILTERS = ("kind:swap-rollback", "kind:swap-complete", "sev:error", "sev:warning")


def parse(line: str) -> ConsoleCommand | str:
    """`line` (without the `:`) as a command, or the one sentence saying what is wrong."""
    words = line.split()
    if not words:
        return "Type a command after ':' (tab completes; :help lists them)."
    name, rest = words[0], words[1:]
    spec = BY_NAME.get(name)
    if spec is None:
        close = sorted(n for n in BY_NAME if n.startswith(name[:2]))
        hint = f" (did you mean :{close[0]}?)" if close else ""
        return f"No command ':{name}'{hint}; the commands are {', '.join(s.name for s in SPECS)}."
    if spec.name == "log" and rest[:1] == ["at"]:  # `:log at 14:02`: the journal at a time
        if len(rest) != 2:
            return f":log at takes a time of day: {spec.usage}"
        return ConsoleCommand("log", ("at", rest[1]))
    if spec.name == "log":  # the filter is free text: every word belongs to it
        return ConsoleCommand("log", (" ".join(rest),) if rest else ())
    if len(rest) < spec.required:
        return f":{spec.name} needs {spec.args[len(rest)]}: {spec.usage}"
    if len(rest) > len(spec.args):
        return f":{spec.name} takes at most {len(spec.args)} word(s) after it: {spec.usage}"
    for kind, word in zip(spec.args, rest, strict=False):
        if kind in ("proposal", "incident") and not word.lstrip("#").isdigit():
            return f":{spec.name} takes a number, not '{word}': {spec.usage}"
    return ConsoleCommand(spec.name, tuple(w.lstrip("#") if k in ("proposal", "incident") else w
                                           for k, w in zip(spec.args, rest, strict=False)))


def complete(line: str, vocabulary: Vocabulary) -> list[str]:
    """Whole lines that complete `line`'s last word, best first (the command names first,
    then the words its arguments take)."""
    words = line.split(" ")
    if len(words) == 1:
        return [name for name in sorted(BY_NAME) if name.startswith(words[0]) and name != words[0]]
    spec = BY_NAME.get(words[0])
    position = len(words) - 2  # the argument being typed
    if spec is None or position >= len(spec.args):
        return []
    stem, done = words[-1], words[1:-1]
    head = " ".join(words[:-1])
    return [f"{head} {choice}" for choice in vocabulary.choices(spec.args[position], done)
            if choice.startswith(stem) and choice != stem]


class CommandSuggester(Suggester):
    """The first completion, shown greyed after the cursor (right arrow or tab takes it)."""

    def __init__(self, vocabulary: Callable[[], Vocabulary]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._vocabulary = vocabulary

    async def get_suggestion(self, value: str) -> str | None:
        found = complete(value, self._vocabulary())
        return found[0] if found else None


class CommandLine(Input):
    """The `:` box at the foot of the main screen: shown by `:`, closed by `enter` (which runs
    the line) or `esc`. Tab takes the suggestion shown."""

    def __init__(self, vocabulary: Callable[[], Vocabulary], **kwargs: object) -> None:
        super().__init__(placeholder="command: swap KEY [PROVIDER], approve N, pause KEY, log kind:..., "
                                     "theme, q (tab completes)",
                         suggester=CommandSuggester(vocabulary), **kwargs)  # type: ignore[arg-type]

    def take_suggestion(self) -> None:
        """Tab: the suggestion shown becomes the text, with a space to type the next word."""
        if self._suggestion and self._suggestion != self.value:
            self.value = self._suggestion + " "
            self.cursor_position = len(self.value)


__all__ = ["BY_NAME", "SPECS", "CommandLine", "CommandSpec", "ConsoleCommand", "Vocabulary", "complete", "parse"]
