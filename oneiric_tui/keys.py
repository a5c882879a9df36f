"""The console's keys: the vim-style movement keys every pane shares, and the help's map of
every key to the task it serves.

Movement keys are the same in every pane, each with its own binding id (`<pane>.down`,
`<pane>.up`, `<pane>.top`, `<pane>.bottom`) so users can remap them. The help
(screens/help.py) is grouped by what an operator wants to do, from `KEY_HELP`: each row
names binding ids (the keys shown are the live ones, after any keymap) and says, in more
words than the key bar has room for, what they do. A widget's own keys appear only where
a row asks for them (`also`: the arrows beside j/k); Textual's other widget internals
(`shift+left Cursor to parent`) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

BindingList = list[BindingType]  # what a widget's BINDINGS holds (Textual's own element type)


def vim_keys(pane: str, *, down: str = "cursor_down", up: str = "cursor_up",
             top: str | None = "scroll_home", bottom: str | None = "scroll_end") -> BindingList:
    keys: BindingList = [Binding("j", down, "Down", show=False, id=f"{pane}.down"),
            Binding("k", up, "Up", show=False, id=f"{pane}.up")]
    if top:
        keys.append(Binding("g", top, "Top", show=False, id=f"{pane}.top"))
    if bottom:
        keys.append(Binding("G", bottom, "Bottom", show=False, id=f"{pane}.bottom"))
    return keys


@dataclass(frozen=True)
class HelpRow:
    """One line of the help: the keys of these bindings, and what they do."""

    text: str
    ids: tuple[str, ...] = ()  # binding ids; "*.down" matches every pane's `<pane>.down`
    actions: tuple[str, ...] = ()  # bindings without an id, by action (Textual's ctrl+p)
    also: tuple[str, ...] = ()  # a widget's own keys doing the same on the same pane (arrows)
    each: bool = False  # list every binding as "key description" after the text (pane numbers)


@dataclass(frozen=True)
class HelpTask:
    """A titled group of the help: what the operator wants to do."""

    title: str
    rows: tuple[HelpRow, ...]


PANE_IDS = ("pane.tree", "pane.detail", "pane.health", "pane.log", "pane.approvals", "pane.remote")

KEY_HELP: tuple[HelpTask, ...] = (
    HelpTask("Move around", (
        HelpRow("Go to", ids=PANE_IDS, each=True),
        HelpRow("Next / previous pane", ids=("pane.next", "pane.previous")),
        HelpRow("Go to the approvals", ids=("approvals.open",)),
        HelpRow("Zoom the active pane full-screen, and back", ids=("pane.zoom",)),
        HelpRow("Down / up a line", ids=("*.down", "*.up"), also=("down", "up")),
        HelpRow("First / last line", ids=("*.top", "*.bottom")),
        HelpRow("Open or close a domain or a key", ids=("tree.select", "tree.toggle")),
    )),
    HelpTask("Look, without changing anything", (
        HelpRow("Probe the highlighted component: one health check now, journaled", ids=("component.probe",)),
        HelpRow("In Health: the key's history, latency over time with swaps, rollbacks, health changes "
                "(:history KEY)", ids=("health.history",)),
        HelpRow("Filter the focused list (tree, health, approvals, remote, log, the runbook picker): rows holding "
                "every word; the log also takes kind:, domain:, key:, sev:",
                ids=("pane.filter", "log.filter", "journal.filter", "incident.filter")),
        HelpRow("Clear the filter (in its box, or in the filtered pane)",
                ids=("pane.clear_filter", "log.clear_filter")),
        HelpRow("Incident panel: walk a runbook (a look until o or a change opens an incident), notes, "
                "post-mortem", ids=("incident.open", "pane.incident")),
        HelpRow("Incidents: every open one with its age and walk; resume, close (C) or message (M) any of them",
                ids=("incidents.view",)),
        HelpRow("Upkeep: maintenance due or overdue, upstream Oneiric settings not read", ids=("upkeep.open",)),
        HelpRow("The journal, full screen: every event (:log at 14:02 opens it at that time)",
                ids=("journal.open",)),
        HelpRow("In the journal: follow the newest, fold long lines, copy the line (OSC 52)",
                ids=("journal.follow", "journal.wrap", "journal.copy")),
        HelpRow("Notifications of this session (proposals from elsewhere, incidents opened), with their time",
                ids=("notices.open",)),
    )),
    HelpTask("Change the highlighted component (each asks first)", (
        HelpRow("Swap: pick another provider, health-gated, rolled back on failure", ids=("component.swap",)),
        HelpRow("Select: write a provider into its settings file (permanent)", ids=("component.edit_selection",)),
        HelpRow("Pause: new work fails until resumed", ids=("component.pause",)),
        HelpRow("Drain: refuse new work, wait for work in flight", ids=("component.drain",)),
        HelpRow("Resume: accept work again", ids=("component.resume",)),
    )),
    HelpTask("Approvals, remote sources, maintenance (each asks first)", (
        HelpRow("Approve the highlighted proposal", ids=("approvals.approve",)),
        HelpRow("Reject the highlighted proposal", ids=("approvals.reject",)),
        HelpRow("Sync the highlighted remote source now", ids=("remote.sync",)),
        HelpRow("Mark the highlighted maintenance task done (asks for a note; journaled)",
                ids=("maintenance.done",)),
    )),
    HelpTask("The console", (
        HelpRow("This help", ids=("app.help", "upkeep.help", "journal.help", "notices.help")),
        HelpRow("Back to the main view", ids=("upkeep.leave", "journal.leave", "notices.leave")),
        HelpRow("Command line: :swap cache redis, :approve 7, :pause KEY, :log kind:swap-rollback, :theme, :q "
                "(tab completes)", ids=("command.open",)),
        HelpRow("Command palette: every : command by name (approve #N, incidents, runbooks, themes, help)",
                actions=("command_palette",)),
        HelpRow("Quit (as the host: asks first, since it stops the providers)",
                ids=("app.quit", "upkeep.quit", "journal.quit", "notices.quit")),
        HelpRow("Quit, even from a text box", ids=("app.hard_quit",)),
    )),
)
