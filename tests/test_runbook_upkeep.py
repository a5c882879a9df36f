"""Runbooks kept alive (issue 17 point 4): a post-mortem follow-up that names a runbook flags it
until its `reviewed` date moves past the incident; `runbook show` gives the tree file's git
history and its drills' last results. Real subprocesses, a real git repository."""

from __future__ import annotations

import datetime
import re
import subprocess


def _close_with_follow_up(run_cli, text: str) -> None:
    assert run_cli("incident", "open", "--severity", "P2", "--title", "redis rollbacks").returncode == 0
    assert run_cli("incident", "close", "1", "--resolution", "memory again", "--follow-up", text).returncode == 0


def test_a_follow_up_flags_its_runbook_until_the_review_date_moves(run_cli, demo_settings):
    _close_with_follow_up(run_cli, "update hot-swap-failed with the redis case")
    listed = {r["id"]: r for r in run_cli("runbook", "list", "--json").json()["runbooks"]}
    assert [f["incident"] for f in listed["hot-swap-failed"]["follow_ups"]] == [1]
    assert listed["proc-hot-swap"]["follow_ups"] == []  # a whole id only: not every tree with "hot-swap" in it
    text = run_cli("runbook", "list").stdout
    assert re.search(r"hot-swap-failed .* FOLLOW-UP from #1", text)
    shown = run_cli("runbook", "show", "hot-swap-failed").stdout
    assert "follow-up from incident #1 (redis rollbacks): update hot-swap-failed with the redis case" in shown
    tree = demo_settings / "runbooks" / "hot-swap-failed.yml"
    today = datetime.date.today().isoformat()
    tree.write_text(re.sub(r"^reviewed: .*$", f"reviewed: {today}", tree.read_text(), count=1, flags=re.M))
    listed = {r["id"]: r for r in run_cli("runbook", "list", "--json").json()["runbooks"]}
    assert listed["hot-swap-failed"]["follow_ups"] == []
    assert "FOLLOW-UP" not in run_cli("runbook", "list").stdout


def test_runbook_show_gives_the_file_history_and_the_drills(run_cli, demo_settings):
    before = run_cli("runbook", "show", "high-rollback-rate").stdout
    assert "history: the settings directory is not a git repository" in before
    assert "drill quiet: never run" in before
    git = ["git", "-C", str(demo_settings), "-c", "user.name=carol", "-c", "user.email=carol@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "runbooks/high-rollback-rate.yml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "lower the rollback threshold"], check=True)
    assert run_cli("runbook", "drill", "high-rollback-rate").returncode == 0
    after = run_cli("runbook", "show", "high-rollback-rate").stdout
    assert re.search(r"^  \d{4}-\d{2}-\d{2} [0-9a-f]{7,} carol: lower the rollback threshold$", after, re.M), after
    assert re.search(r"^drill quiet: passed \d{4}-\d{2}-\d{2} \d{2}:\d{2}$", after, re.M), after
