"""The maintenance calendar (issue 17 point 3): due, done and history across processes (each
command a fresh process, so across restarts), windows and their notices, and the errors a
user can make. Real subprocesses on a copy of the demo."""

from __future__ import annotations

from oneiric_core.errors import ExitCode


def test_every_default_task_is_due_on_a_fresh_state_and_done_moves_it_on(run_cli):
    due = run_cli("maintenance", "--json").json()["tasks"]
    assert {t["id"] for t in due} >= {"review-logs-metrics", "security-updates", "archive-observability-data",
                                      "architecture-review"}
    assert all(t["status"] == "due" and t["last_done_at"] is None for t in due)
    assert next(t for t in due if t["id"] == "review-logs-metrics")["runbook"] == "proc-health-checks"
    done = run_cli("maintenance", "done", "review-logs-metrics", "--note", "no anomalies")
    assert done.returncode == 0 and done.stdout.startswith("Marked review-logs-metrics (Review logs and metrics) "
                                                           "done by ") and "(tester); next due " in done.stdout
    listed = {t["id"]: t for t in run_cli("maintenance", "list", "--json").json()["tasks"]}
    weekly = listed["review-logs-metrics"]
    assert weekly["status"] == "ok" and weekly["last_done_by"].endswith("(tester)")
    assert weekly["last_note"] == "no anomalies"
    assert round((weekly["due_at"] - weekly["last_done_at"]) / 86400) == 7
    assert "review-logs-metrics" not in {t["id"] for t in run_cli("maintenance", "due", "--json").json()["tasks"]}
    journal = run_cli("journal", "--kind", "maintenance-done", "--json").json()["events"]
    assert journal[0]["actor"].endswith("(tester)") and journal[0]["data"]["task"] == "review-logs-metrics"
    history = run_cli("maintenance", "history")
    assert "maintenance task review-logs-metrics (Review logs and metrics) done by " in history.stdout
    assert "(tester): no anomalies" in history.stdout


def test_a_window_and_its_notices(run_cli):
    declared = run_cli("maintenance", "window", "--start", "+1h", "--end", "+3h", "--key", "adapter/cache",
                       "--note", "redis upgrade")
    assert declared.returncode == 0 and declared.stdout.startswith("Declared maintenance window #1: ")
    windows = run_cli("maintenance", "windows", "--json").json()["windows"]
    assert windows[0]["state"] == "upcoming" and windows[0]["keys"] == ["adapter/cache"]
    pre = run_cli("maintenance", "notice", "pre").stdout
    assert "Scheduled maintenance window #1" in pre and "Affected: adapter/cache." in pre and "redis upgrade" in pre
    assert "72 h ahead" in pre
    post = run_cli("maintenance", "notice", "post", "--window", "1").stdout
    assert "is complete" in post and "all resumed and serving" in post
    assert run_cli("maintenance", "cancel", "1").returncode == 0
    assert run_cli("maintenance", "windows", "--json").json()["windows"][0]["state"] == "cancelled"
    none = run_cli("maintenance", "notice", "pre")
    assert none.returncode == ExitCode.USAGE and "No maintenance window is open or coming" in none.stderr


def test_what_a_user_gets_wrong_is_one_sentence(run_cli, demo_settings):
    unknown = run_cli("maintenance", "done", "nosuch")
    assert unknown.returncode == ExitCode.NOT_FOUND and "No maintenance task 'nosuch'" in unknown.stderr
    backwards = run_cli("maintenance", "window", "--start", "+3h", "--end", "+1h")
    assert backwards.returncode == ExitCode.USAGE
    assert "ends" in backwards.stderr and "before it starts" in backwards.stderr
    nokey = run_cli("maintenance", "window", "--start", "+1h", "--end", "+2h", "--key", "adapter/nosuch")
    assert nokey.returncode == ExitCode.NOT_FOUND
    badtime = run_cli("maintenance", "window", "--start", "soon", "--end", "+2h")
    assert badtime.returncode == ExitCode.USAGE and "'soon' is not a time" in badtime.stderr
    read_only = run_cli("--read-only", "maintenance", "done", "security-updates")
    assert read_only.returncode == ExitCode.ERROR and "Read-only" in read_only.stderr
    (demo_settings / "maintenance.yml").write_text("tasks:\n  - id: x\n    title: X\n    every: fortnightly\n")
    broken = run_cli("maintenance")
    assert broken.returncode == ExitCode.ERROR and broken.stderr.count("\n") == 1
    assert "'fortnightly' is not a cadence" in broken.stderr and "maintenance.yml: task #0 (x)" in broken.stderr
    (demo_settings / "maintenance.yml").write_text("tasks:\n  - id: fortnight\n    title: Fortnightly review\n"
                                                   "    every: 14d\n")
    custom = run_cli("maintenance", "--json").json()["tasks"]
    assert [t["id"] for t in custom] == ["fortnight"]


def test_doctor_reports_the_calendar(run_cli):
    before = next(c for c in run_cli("doctor", "--json").json()["checks"] if c["area"] == "maintenance")
    assert before["status"] == "warning" and "review-logs-metrics" in before["sentence"]
    for task in [t["id"] for t in run_cli("maintenance", "--json").json()["tasks"]]:
        assert run_cli("maintenance", "done", task).returncode == 0
    after = next(c for c in run_cli("doctor", "--json").json()["checks"] if c["area"] == "maintenance")
    assert after["status"] == "ok" and "none due" in after["sentence"]
