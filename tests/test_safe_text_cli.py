"""Property: whatever text an operator or a manifest sends in, the CLI shows it as plain text.

Arbitrary strings (control characters, ESC sequences, bidi overrides, Rich markup) go in
through every door a real `oneiric` subprocess has: the operator name (ONEIRIC_OPERATOR),
a note (`pause --note`), a reason (`swap --reason`), a comment (`reject --comment`), and
provider and key names of a manifest entry the engine rejects (settings only accept plain
names, a manifest can carry anything). Then every read command, text and `--json`, and
every stderr, must hold no ESC, no C1 and no other hidden character (oneiric_core.text),
and each string must appear as its visible escaped form: verbatim markup, not styles or
hyperlinks.

Each example is one state directory and about a dozen CLI processes, so the example count
is small; the strings are batched (six per example) and built from pieces that matter.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from oneiric_core.text import hidden, multi_line, one_line
from tests.test_change_control import hosts, ready_host  # noqa: F401  (hosts: the fixture)

PIECES = [
    "\x1b", "\x1b[31m", "\x1b[2J", "\x1b]0;pwned\x07", "\x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\", "\x9b2J",
    "\x07", "\x08", "\r", "\n", "\t", "\x7f", "\x85", "\u202e", "\u2066", "\u200b", "\ufeff",
    "[bold red]", "[/]", "[/bold]", "[link=http://evil]", "[/link]", "\\", "\\[b]", ":smile:", "[", "]",
]
ANY_CHAR = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")  # argv/env cannot carry NUL
HOSTILE = st.lists(st.one_of(st.sampled_from(PIECES), st.text(ANY_CHAR, min_size=1, max_size=4)),
                   min_size=1, max_size=5).map("".join).filter(lambda s: s.strip() != "")
ISSUE_OPERATOR = "mallory\x1b]0;pwned\x07\x1b[2J[bold red]RED[/]"
ISSUE_NOTE = "[link=http://evil]x[/link]"
_runs = itertools.count()


def assert_plain(result, where: str) -> None:
    """No character of the output can drive a terminal: no ESC, C1, bidi or other hidden one."""
    for stream in (result.stdout, result.stderr):
        bad = sorted({f"U+{ord(c):04X}" for c in stream if hidden(c) and c not in "\n\t"})
        assert not bad, f"{where}: {bad}\n{result}"


def seen(value: str, output: str, *, table: bool = True) -> bool:
    """`value` appears as its visible form (one line in a table cell, kept lines in a
    sentence), as a reader sees it: runs of blanks count as one. Compared without what
    Python's strip() removes (the operator name is stripped, and \\x1c-\\x1f, \\x85 are blanks
    to it), which leaves a part of the shown form for every other value."""
    value = value.strip()
    shown = one_line(value) if table else multi_line(value)
    return " ".join(shown.split()) in " ".join(output.split())


def hostile_manifest(settings_dir: Path, provider: str, key: str) -> None:
    """A second, unsigned remote source whose one entry has the hostile names (rejected: names
    must be plain, and these always hold a control character) beside a good entry (so the
    source itself syncs)."""
    entries = [
        {"domain": "adapter", "key": key, "provider": provider,
         "factory": "oneiric_core.providers.cache_memory:create"},
        {"domain": "adapter", "key": "cache", "provider": "memory-ok",
         "factory": "oneiric_core.providers.cache_memory:create"},
    ]
    manifest = {"name": "hostile", "version": 1, "generated_at": "2025-01-01T00:00:00Z", "entries": entries}
    (settings_dir / "manifests" / "hostile.json").write_text(json.dumps(manifest), encoding="utf-8")
    app = (settings_dir / "app.yml").read_text()
    app = app.replace("  trusted_keys:", "    - name: hostile\n      uri: file:manifests/hostile.json\n"
                      "      signature_required: false\n  trusted_keys:")
    (settings_dir / "app.yml").write_text(app)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(operator=HOSTILE, note=HOSTILE, reason=HOSTILE, comment=HOSTILE, provider=HOSTILE, key=HOSTILE)
@example(operator=ISSUE_OPERATOR, note=ISSUE_NOTE, reason="[bold red]x[/] \x9b2J", comment="[/]",
         provider="p\x1b]0;t\x07[link=http://evil]x[/link]", key="k\u202eyek\\")
def test_no_cli_output_carries_control_characters_or_reads_markup(run_cli, tmp_path, operator, note, reason,
                                                                   comment, provider, key):
    run = next(_runs)
    settings_dir = tmp_path / f"settings-{run}"
    shutil.copytree(tmp_path / "settings", settings_dir)
    provider, key = f"\x9b{provider}", f"{key}\x1b"  # never a valid name: always rejected
    hostile_manifest(settings_dir, provider, key)
    state = tmp_path / f"state-{run}"
    wide = {"COLUMNS": "3000"}  # no cell wraps

    def cli(*args, env=None):
        result = run_cli(*args, settings=settings_dir, state_dir=state, env={**wide, **(env or {})})
        assert_plain(result, " ".join(map(str, args)))
        return result

    paused = cli("pause", "--domain", "adapter", "--key", "http", f"--note={note}", env={"ONEIRIC_OPERATOR": operator})
    operator_shown = paused.returncode == 0  # a display name may be refused (with a plain sentence)
    if not operator_shown:
        assert paused.returncode == 2 and paused.stderr.startswith("oneiric: "), paused
        paused = cli("pause", "--domain", "adapter", "--key", "http", f"--note={note}")
    assert paused.returncode == 0, paused
    swapped = cli("swap", "--domain", "adapter", "--key", "cache", "--provider", "sqlite", f"--reason={reason}")
    assert swapped.returncode == 0, swapped
    proposal = cli("approvals", "--json").json()["pending"][0]["id"]
    assert cli("reject", proposal, f"--comment={comment}").returncode == 0
    synced = cli("remote-sync")
    assert synced.returncode in (0, 6), synced

    activity, approvals, journal = cli("activity"), cli("approvals"), cli("journal", "--limit", "100")
    remote = cli("remote-status")
    for result in (cli("status"), cli("explain", "--domain", "adapter", "--key", "cache"),
                   cli("journal", "--json"), cli("activity", "--json"), cli("remote-status", "--json"),
                   cli("status", "--json")):
        assert result.returncode in (0, 6), result
    assert seen(note, activity.stdout), activity
    if operator_shown:
        assert seen(operator, activity.stdout) and seen(operator, journal.stdout), activity
    assert seen(reason, journal.stdout), journal
    assert seen(comment, approvals.stdout), approvals
    rejected = remote.stdout[remote.stdout.index("hostile:"):]
    assert "rejected: 1" in rejected and seen(provider, rejected, table=False), remote
    assert seen(key, rejected, table=False), remote


def test_the_hosts_json_lines_and_answers_carry_no_control_character(hosts, run_cli, demo_settings, tmp_path):
    """`oneiric run` prints every journal event as a JSON line (journald, a terminal): a hostile
    note sent through the running host is escaped there, and in the client's answer."""
    import signal

    host = ready_host(hosts, demo_settings, tmp_path)
    note = f"{ISSUE_NOTE}\x1b[2J\x9b\u202e"
    paused = run_cli("pause", "--domain", "adapter", "--key", "http", f"--note={note}",
                     env={"ONEIRIC_OPERATOR": ISSUE_OPERATOR})
    assert_plain(paused, "pause through the host")
    if paused.returncode == 2:  # a display name may be refused, in a plain sentence
        paused = run_cli("pause", "--domain", "adapter", "--key", "http", f"--note={note}")
    else:
        assert seen(ISSUE_OPERATOR, paused.stdout, table=False), paused  # the host's answer names who
    assert paused.returncode == 0 and "running host" in paused.stdout, paused
    host.proc.send_signal(signal.SIGTERM)
    assert host.proc.wait(30) == 0
    raw = host.stdout_path.read_text(encoding="utf-8")
    assert raw.isascii() and all(line.isprintable() for line in raw.splitlines()), raw
    notes = [e["data"].get("note") for e in host.events() if e["kind"] == "activity-changed"]
    assert note in notes  # the data itself is kept exactly
