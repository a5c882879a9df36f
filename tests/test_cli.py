"""The `oneiric` CLI, end to end: every test runs the real command in a subprocess.

Each test works on its own copy of the demo settings (tmp_path/"settings") and its own
state directory (tmp_path/"state"), so nothing is written into the repository. Several
assertions share one subprocess where that keeps the file fast.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import shown

# -- the JSON shapes (a change to any of these sets must fail a test) ----------------------------

STATUS_KEYS = {"settings_dir", "state_dir", "host", "read_only", "watcher", "telemetry", "config_problems", "warnings",
               "not_read", "journal_retention", "components"}
COMPONENT_KEYS = {
    "domain", "key", "winner", "winner_source", "selection", "misconfigured", "candidates", "shadowed",
    "serving", "serving_source", "state", "inflight", "activity", "activity_note", "activity_actor",
    "health", "latency_ms", "health_message", "health_checked_at", "last_error", "last_swap", "proposal",
}
RANKED_KEYS = {
    "rank", "provider", "source", "factory", "priority", "stack_level", "effective_stack_level",
    "registration", "selected", "winner", "rung", "reason",
}
LIST_KEYS = {"domain", "key"} | RANKED_KEYS
EXPLAIN_KEYS = {"domain", "key", "winner", "winner_source", "selection", "selection_file", "misconfigured",
                "candidates"}
HEALTH_KEYS = {"probed", "host", "results"}
HEALTH_RESULT_KEYS = {"domain", "key", "provider", "status", "latency_ms", "message", "checked_at"}
ACTIVITY_KEYS = {"activity", "totals"}
ACTIVITY_RECORD_KEYS = {"domain", "key", "state", "note", "actor", "updated_at"}
TOTALS_KEYS = {"paused", "draining", "drained"}
JOURNAL_KEYS = {"events"}
EVENT_KEYS = {"id", "ts", "kind", "severity", "domain", "key", "provider", "actor", "outcome", "duration_ms",
              "message", "data", "node"}
VALIDATE_KEYS = {"settings_dir", "valid", "problems", "warnings", "not_read"}
PROBLEM_KEYS = {"file", "line", "column", "reason", "message"}
RUNGS = {"only candidate", "selection", "stack_level", "priority", "registration order"}

# What the demo settings resolve to: component -> (winner, winner_source).
DEMO_WINNERS = {
    "adapter/cache": ("memory", "builtin"),
    "adapter/http": ("httpx", "builtin"),
    "adapter/storage": ("scratch", "settings"),
    "service/scheduler": ("interval", "builtin"),
    "task/runner": ("inline", "builtin"),
    "event/bus": ("memory", "builtin"),
    "workflow/runner": ("inline", "builtin"),
    "action/compress": ("gzip", "builtin"),
}
COMMANDS = ("status", "list", "explain", "health", "activity", "pause", "resume", "drain", "journal", "config")


# -- helpers --------------------------------------------------------------------------------------

def ok(res):
    """Exit 0, no traceback; returns the result for chaining."""
    assert res.returncode == 0, str(res)
    assert "Traceback" not in res.stderr, str(res)
    return res


def ok_json(res):
    return ok(res).json()


def assert_error(res, code: int, *needles: str) -> None:
    """A failed command: the expected exit code and one `oneiric: ...` sentence on stderr."""
    assert res.returncode == code, str(res)
    assert "Traceback" not in res.stderr, str(res)
    assert "Traceback" not in res.stdout, str(res)
    err = res.stderr.strip()
    assert err.startswith("oneiric: "), str(res)
    assert "\n" not in err, f"error is not one line:\n{res}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in stderr:\n{res}"


def ref(row: dict) -> str:
    return f"{row['domain']}/{row['key']}"


def replace_once(path: Path, old: str, new: str) -> int:
    """Replace the one line-anchored occurrence of `old`; returns its 1-based line number."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- 1. JSON shapes of the read commands ----------------------------------------------------------

def test_status_json_shape_and_demo_values(run_cli, demo_settings, tmp_path):
    data = ok_json(run_cli("status", "--json"))
    assert set(data) == STATUS_KEYS
    assert data["settings_dir"] == str(demo_settings)
    assert data["state_dir"] == str((tmp_path / "state").resolve())
    assert data["host"] is None
    assert data["journal_retention"] is None  # no host has pruned this journal yet
    assert data["read_only"] is False
    assert data["config_problems"] == []
    assert data["warnings"] == []  # a state dir this program made is private (tests/test_private_files.py)

    rows = {ref(c): c for c in data["components"]}
    assert len(rows) == len(data["components"]), "a component is listed twice"
    assert set(DEMO_WINNERS) <= set(rows)
    for c in data["components"]:
        assert set(c) == COMPONENT_KEYS, ref(c)
    for name, (winner, source) in DEMO_WINNERS.items():
        c = rows[name]
        assert (c["winner"], c["winner_source"]) == (winner, source), name
        # no host: nothing serves, nothing is in flight, health was never checked
        assert c["serving"] is None and c["serving_source"] is None, name
        assert c["state"] == "inactive" and c["inflight"] == 0, name
        assert c["activity"] == "active" and c["activity_note"] is None and c["activity_actor"] is None
        assert c["health"] == "unknown" and c["latency_ms"] is None and c["health_checked_at"] is None
        assert c["misconfigured"] is None and c["last_error"] is None and c["last_swap"] is None
        assert c["shadowed"] == c["candidates"] - 1

    cache = rows["adapter/cache"]
    assert (cache["selection"], cache["candidates"], cache["shadowed"]) == ("memory", 4, 3)
    storage = rows["adapter/storage"]
    assert (storage["selection"], storage["candidates"]) == (None, 2)

    # --domain filters the rows; the shape is the same
    adapters = ok_json(run_cli("status", "--json", "--domain", "adapter"))
    assert set(adapters) == STATUS_KEYS
    assert {c["domain"] for c in adapters["components"]} == {"adapter"}
    assert {"adapter/cache", "adapter/http", "adapter/storage"} <= {ref(c) for c in adapters["components"]}


def test_list_json_shape_and_shadowed(run_cli):
    rows = ok_json(run_cli("list", "--json"))["candidates"]
    assert rows
    for r in rows:
        assert set(r) == LIST_KEYS, r
        assert r["rung"] in RUNGS, r
        assert r["winner"] is (r["rank"] == 1), r
    by_ref: dict[str, list[dict]] = {}
    for r in rows:
        by_ref.setdefault(ref(r), []).append(r)
    assert set(DEMO_WINNERS) <= set(by_ref)
    for name, group in by_ref.items():
        assert [r["rank"] for r in group] == list(range(1, len(group) + 1)), name
        assert [r["winner"] for r in group].count(True) == 1, name
    for name, (winner, source) in DEMO_WINNERS.items():
        first = by_ref[name][0]
        assert (first["provider"], first["source"]) == (winner, source), name

    shadowed = ok_json(run_cli("list", "--json", "--shadowed"))
    assert set(shadowed) == {"candidates"}
    for r in shadowed["candidates"]:
        assert set(r) == LIST_KEYS, r
        assert r["winner"] is False and r["rank"] > 1, r
    losers = {(ref(r), r["provider"], r["source"]) for r in rows if not r["winner"]}
    assert {(ref(r), r["provider"], r["source"]) for r in shadowed["candidates"]} == losers
    assert ("adapter/cache", "memory", "builtin") not in losers
    assert ("adapter/storage", "local", "builtin") in losers


def test_explain_cache_json(run_cli):
    data = ok_json(run_cli("explain", "--domain", "adapter", "--key", "cache", "--json"))
    assert set(data) == EXPLAIN_KEYS
    assert (data["domain"], data["key"]) == ("adapter", "cache")
    assert (data["winner"], data["winner_source"]) == ("memory", "builtin")
    assert data["selection"] == "memory"
    assert data["selection_file"].endswith("adapters.yml")
    assert data["misconfigured"] is None

    cands = data["candidates"]
    for c in cands:
        assert set(c) == RANKED_KEYS, c
    # rank order: the selection, then priority (memory-large 5 > 0), then later registration
    assert [c["provider"] for c in cands] == ["memory", "memory-large", "redis", "sqlite"]
    assert [c["rank"] for c in cands] == [1, 2, 3, 4]
    assert [c["source"] for c in cands] == ["builtin", "settings", "builtin", "builtin"]
    assert [c["selected"] for c in cands] == [True, False, False, False]
    assert [c["winner"] for c in cands] == [True, False, False, False]
    assert [c["rung"] for c in cands] == ["selection", "selection", "priority", "registration order"]
    assert cands[1]["priority"] == 5
    assert cands[2]["registration"] > cands[3]["registration"]
    assert "adapters.yml" in cands[0]["reason"]


def test_health_json_last_known_and_probe(run_cli):
    last = ok_json(run_cli("health", "--json"))
    assert set(last) == HEALTH_KEYS
    assert last["probed"] is False and last["host"] is None
    results = {ref(r): r for r in last["results"]}
    assert set(DEMO_WINNERS) <= set(results)
    for name, (winner, _) in DEMO_WINNERS.items():
        r = results[name]
        assert set(r) == HEALTH_RESULT_KEYS, r
        assert r["provider"] == winner
        assert r["status"] == "unknown" and r["latency_ms"] is None and r["checked_at"] is None

    before = time.time()
    probed = ok_json(run_cli("health", "--probe", "--json"))  # exit 0: every demo winner is healthy
    assert set(probed) == HEALTH_KEYS
    assert probed["probed"] is True and probed["host"] is None
    results = {ref(r): r for r in probed["results"]}
    assert set(DEMO_WINNERS) <= set(results)
    for name, (winner, _) in DEMO_WINNERS.items():
        r = results[name]
        assert set(r) == HEALTH_RESULT_KEYS, r
        assert r["provider"] == winner, name
        assert r["status"] == "ok", r
        assert isinstance(r["latency_ms"], (int, float)) and r["latency_ms"] >= 0, r
        assert isinstance(r["message"], str)
        assert before - 1 <= r["checked_at"] <= time.time() + 1, r


def test_activity_and_journal_json_when_empty(run_cli):
    activity = ok_json(run_cli("activity", "--json"))
    assert set(activity) == ACTIVITY_KEYS
    assert activity == {"activity": [], "totals": {"paused": 0, "draining": 0, "drained": 0}}
    journal = ok_json(run_cli("journal", "--json"))
    assert journal == {"events": []}


def test_config_validate_json_on_the_demo(run_cli, demo_settings):
    data = ok_json(run_cli("config", "validate", "--json"))
    assert set(data) == VALIDATE_KEYS
    assert data == {"settings_dir": str(demo_settings), "valid": True, "problems": [], "warnings": [], "not_read": []}
    text = ok(run_cli("config", "validate"))
    assert "valid" in text.stdout and str(demo_settings) in text.stdout


# -- 2. resolution values -------------------------------------------------------------------------

def test_storage_scratch_wins_by_stack_level(run_cli):
    rows = ok_json(run_cli("list", "--domain", "adapter", "--key", "storage", "--json"))["candidates"]
    assert [(r["provider"], r["source"]) for r in rows] == [("scratch", "settings"), ("local", "builtin")]
    scratch, local = rows
    assert scratch["winner"] is True and scratch["rung"] == "stack_level" and scratch["selected"] is False
    assert (scratch["stack_level"], scratch["effective_stack_level"]) == (10, 10)
    assert local["winner"] is False and local["rung"] == "stack_level"
    assert (local["stack_level"], local["effective_stack_level"]) == (0, 0)
    assert {r["domain"] for r in rows} == {"adapter"} and {r["key"] for r in rows} == {"storage"}


def test_key_without_domain_when_unique(run_cli):
    rows = ok_json(run_cli("list", "--key", "cache", "--json"))["candidates"]
    assert {(r["domain"], r["key"]) for r in rows} == {("adapter", "cache")}
    assert sorted(r["provider"] for r in rows) == ["memory", "memory-large", "redis", "sqlite"]


def test_key_in_two_domains_needs_domain(run_cli):
    # task/runner and workflow/runner both exist
    assert_error(run_cli("list", "--key", "runner"), 2, "runner", "task", "workflow", "--domain")


# -- 3. a selection that names nothing registered ------------------------------------------------

def test_misconfigured_selection(run_cli, demo_settings):
    replace_once(demo_settings / "adapters.yml", "  cache: memory\n", "  cache: nosuch\n")

    data = ok_json(run_cli("status", "--json", "--key", "cache"))
    [cache] = data["components"]
    assert set(cache) == COMPONENT_KEYS
    assert cache["selection"] == "nosuch"
    assert isinstance(cache["misconfigured"], str) and "nosuch" in cache["misconfigured"]
    # ranking still picks a registered fallback (memory by priority)
    assert cache["winner"] in {"memory", "memory-large", "sqlite", "redis"}
    assert (cache["winner"], cache["winner_source"]) == ("memory", "builtin")
    assert data["config_problems"] == []  # the file is valid; the key is misconfigured

    exp = ok_json(run_cli("explain", "--domain", "adapter", "--key", "cache", "--json"))
    assert "nosuch" in exp["misconfigured"]
    assert exp["winner"] == "memory"
    assert not any(c["selected"] for c in exp["candidates"])
    assert exp["candidates"][0]["reason"].startswith("fallback")

    text = ok(run_cli("explain", "--domain", "adapter", "--key", "cache"))
    assert "MISCONFIGURED" in text.stdout and "nosuch" in text.stdout


# -- 4. exit codes and one-sentence errors --------------------------------------------------------

def test_unknown_domain_exit_3(run_cli):
    res = run_cli("explain", "--domain", "gadget", "--key", "cache")
    assert_error(res, 3, "gadget")
    assert res.stdout == ""


@pytest.mark.parametrize("args, needle", [
    (("explain", "--domain", "adapter", "--key", "nokey"), "nokey"),
    (("explain", "--key", "nokey", "--json"), "nokey"),
    (("pause", "--domain", "adapter", "--key", "nokey"), "nokey"),
])
def test_unknown_key_exit_3(run_cli, args, needle):
    res = run_cli(*args)
    assert_error(res, 3, needle)
    assert res.stdout == ""


@pytest.mark.parametrize("args", [
    ("frobnicate",),
    ("status", "--bogus"),
    ("explain", "--domain", "adapter"),  # --key is required
    ("journal", "--limit", "many"),
    ("config",),
])
def test_usage_errors_exit_2(run_cli, args):
    assert_error(run_cli(*args), 2)


def test_probe_of_unreachable_redis_exits_4(run_cli, demo_settings):
    if port_is_open(6399):
        pytest.skip("something listens on 127.0.0.1:6399")
    replace_once(demo_settings / "adapters.yml", "  cache: memory\n", "  cache: redis\n")

    res = run_cli("health", "--probe", "--domain", "adapter", "--key", "cache", "--json")
    assert res.returncode == 4, str(res)
    assert "Traceback" not in res.stderr
    data = res.json()
    assert set(data) == HEALTH_KEYS and data["probed"] is True
    [r] = data["results"]
    assert set(r) == HEALTH_RESULT_KEYS
    assert (r["domain"], r["key"], r["provider"], r["status"]) == ("adapter", "cache", "redis", "failed")
    assert "6399" in r["message"]

    text = run_cli("health", "--probe", "--domain", "adapter", "--key", "cache")
    assert text.returncode == 4, str(text)
    assert "Traceback" not in text.stderr
    assert "FAILED" in text.stdout and "1 unhealthy: adapter/cache" in text.stdout


def test_missing_settings_dir_exit_1(run_cli, tmp_path):
    missing = tmp_path / "no-such-settings"
    assert_error(run_cli("status", "--json", settings=missing), 1, str(missing), "does not exist")

    res = run_cli("config", "validate", settings=missing)
    assert res.returncode == 1, str(res)
    assert "Traceback" not in res.stderr
    assert str(missing) in res.stdout and "does not exist" in res.stdout


# -- 5. pause, drain, resume with no host ---------------------------------------------------------

def test_pause_drain_resume_across_processes(run_cli, tmp_path):
    res = ok(run_cli("pause", "--domain", "adapter", "--key", "cache", "--note", "db maintenance"))
    assert "Paused adapter/cache" in res.stdout and "tester" in res.stdout
    assert "takes effect when a host starts" in res.stdout
    assert (tmp_path / "state").is_dir()

    # a new process sees the pause
    activity = ok_json(run_cli("activity", "--json"))
    assert set(activity) == ACTIVITY_KEYS and set(activity["totals"]) == TOTALS_KEYS
    [rec] = activity["activity"]
    assert set(rec) == ACTIVITY_RECORD_KEYS
    assert (rec["domain"], rec["key"], rec["state"]) == ("adapter", "cache", "paused")
    assert (rec["actor"], rec["note"]) == (shown("tester"), "db maintenance")
    assert activity["totals"] == {"paused": 1, "draining": 0, "drained": 0}

    status = ok_json(run_cli("status", "--json", "--key", "cache"))
    [cache] = status["components"]
    assert (cache["activity"], cache["activity_actor"], cache["activity_note"]) == ("paused", shown("tester"),
                                                                                    "db maintenance")

    journal = ok_json(run_cli("journal", "--json", "--kind", "activity-changed"))
    assert set(journal) == JOURNAL_KEYS
    [event] = journal["events"]
    assert set(event) == EVENT_KEYS
    assert (event["kind"], event["domain"], event["key"]) == ("activity-changed", "adapter", "cache")
    assert (event["actor"], event["outcome"]) == (shown("tester"), "paused")
    assert event["severity"] in {"info", "warning", "error"}
    assert event["data"]["note"] == "db maintenance" and event["data"]["to"] == "paused"
    assert "db maintenance" in event["message"]

    drained = ok_json(run_cli("drain", "--domain", "adapter", "--key", "cache", "--json"))
    assert set(drained) == {"activity"} and set(drained["activity"]) == ACTIVITY_RECORD_KEYS
    assert (drained["activity"]["key"], drained["activity"]["state"]) == ("cache", "drained")
    activity = ok_json(run_cli("activity", "--json"))
    assert [(r["key"], r["state"], r["actor"]) for r in activity["activity"]] == [("cache", "drained", shown("tester"))]
    assert activity["totals"] == {"paused": 0, "draining": 0, "drained": 1}

    res = ok(run_cli("resume", "--domain", "adapter", "--key", "cache"))
    assert "Resumed adapter/cache" in res.stdout
    activity = ok_json(run_cli("activity", "--json"))
    assert activity == {"activity": [], "totals": {"paused": 0, "draining": 0, "drained": 0}}

    events = ok_json(run_cli("journal", "--json", "--domain", "adapter", "--key", "cache"))["events"]
    assert [e["kind"] for e in events] == ["activity-changed"] * 4
    assert [e["outcome"] for e in events] == ["paused", "draining", "drained", "active"]
    assert {e["actor"] for e in events} == {shown("tester")}
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4  # oldest first


# -- 6. read-only ---------------------------------------------------------------------------------

def test_read_only_flag_refuses_pause(run_cli):
    res = run_cli("--read-only", "pause", "--domain", "adapter", "--key", "cache", "--note", "x")
    assert_error(res, 1, "Read-only")
    assert res.stdout == ""
    assert_error(run_cli("--read-only", "drain", "--domain", "adapter", "--key", "cache"), 1, "Read-only")

    assert ok_json(run_cli("journal", "--json")) == {"events": []}
    status = ok_json(run_cli("--read-only", "status", "--json", "--key", "cache"))
    assert status["read_only"] is True
    assert status["components"][0]["activity"] == "active"


def test_read_only_from_app_yml(run_cli, demo_settings):
    replace_once(demo_settings / "app.yml", "read_only: false\n", "read_only: true\n")
    assert_error(run_cli("pause", "--domain", "adapter", "--key", "cache"), 1, "Read-only")
    assert ok_json(run_cli("activity", "--json"))["activity"] == []


# -- 7. broken settings files ---------------------------------------------------------------------

def test_yaml_syntax_error_is_reported_with_line_and_column(run_cli, demo_settings):
    path = demo_settings / "adapters.yml"
    line = replace_once(path, "  cache: memory\n", "  cache: memory: oops\n")
    column = "  cache: memory: oops".index(": oops") + 1  # the second ':' (1-based)
    where = f"adapters.yml:{line}:{column}"

    res = run_cli("config", "validate")
    assert res.returncode == 1, str(res)
    assert "Traceback" not in res.stderr
    assert where in res.stdout

    data = run_cli("config", "validate", "--json")
    assert data.returncode == 1, str(data)
    data = data.json()
    assert set(data) == VALIDATE_KEYS and data["valid"] is False
    [problem] = data["problems"]
    assert set(problem) == PROBLEM_KEYS
    assert Path(problem["file"]).name == "adapters.yml"
    assert (problem["line"], problem["column"]) == (line, column)
    assert where in problem["message"]

    # Read commands still work (exit 0). A fresh process has no last good copy of the
    # broken file, so adapters.yml contributes nothing: defaults and built-ins only.
    status = ok_json(run_cli("status", "--json"))
    [listed] = status["config_problems"]
    assert set(listed) == PROBLEM_KEYS
    assert Path(listed["file"]).name == "adapters.yml" and listed["line"] == line
    rows = {ref(c): c for c in status["components"]}
    cache = rows["adapter/cache"]
    assert (cache["winner"], cache["winner_source"]) == ("memory", "builtin")
    assert cache["selection"] is None and cache["misconfigured"] is None
    assert cache["candidates"] == 3  # memory-large (defined in adapters.yml) is not registered
    assert (rows["adapter/storage"]["winner"], rows["adapter/storage"]["winner_source"]) == ("local", "builtin")
    # the other domains' files are fine and still apply
    assert rows["task/runner"]["selection"] == "inline"
    text = ok(run_cli("status")).stdout
    assert "fall back to defaults" in " ".join(text.split())


def test_last_good_settings_stay_in_force_across_processes(run_cli, demo_settings):
    ok(run_cli("status"))  # a good load keeps a copy of each file under the state dir
    line = replace_once(demo_settings / "adapters.yml", "  cache: memory\n", "  cache: memory: oops\n")
    status = ok_json(run_cli("status", "--json"))
    [problem] = status["config_problems"]
    assert problem["line"] == line
    rows = {ref(c): c for c in status["components"]}
    assert rows["adapter/cache"]["selection"] == "memory"
    assert rows["adapter/cache"]["candidates"] == 4  # memory-large from the last good adapters.yml
    assert rows["adapter/storage"]["winner"] == "scratch"
    text = " ".join(ok(run_cli("status")).stdout.split())
    assert "the last good version of that file stays in force" in text


def test_schema_error_is_reported_with_its_line(run_cli, demo_settings):
    old = "  health_timeout: 3 "
    line = replace_once(demo_settings / "app.yml", old, "  health_timeout: -1 ")

    res = run_cli("config", "validate")
    assert res.returncode == 1, str(res)
    assert "Traceback" not in res.stderr
    assert f"app.yml:{line}:" in res.stdout and "health_timeout" in res.stdout

    status = ok_json(run_cli("status", "--json"))
    [problem] = status["config_problems"]
    assert set(problem) == PROBLEM_KEYS
    assert Path(problem["file"]).name == "app.yml"
    assert problem["line"] == line and "health_timeout" in problem["reason"]


# -- 8. help --------------------------------------------------------------------------------------

def test_help_lists_every_command_and_no_command_is_a_usage_error(run_cli, cli_env, tmp_path):
    res = ok(run_cli("--help", settings=None, state_dir=None))
    for command in COMMANDS:
        assert command in res.stdout, command

    bare = run_cli(settings=None, state_dir=None)
    assert bare.returncode == 2, str(bare)
    assert "Traceback" not in bare.stderr
    assert "usage" in (bare.stdout + bare.stderr).lower()

    script = Path(sys.executable).parent / "oneiric"
    if script.exists():  # the console script is the same entry point
        proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path, env=cli_env)
        assert proc.returncode == 0, proc.stderr
        assert all(command in proc.stdout for command in COMMANDS)


# -- 9. text output -------------------------------------------------------------------------------

def test_text_outputs(run_cli):
    ok(run_cli("pause", "--domain", "adapter", "--key", "cache", "--note", "db maintenance"))

    status = ok(run_cli("status")).stdout
    assert "no host running" in status
    for name, (winner, _) in DEMO_WINNERS.items():
        assert name in status and winner in status, name
    assert "paused" in status

    listing = ok(run_cli("list")).stdout
    for name in DEMO_WINNERS:
        assert name in listing, name
    assert "memory-large" in listing and "* winner" in listing and "- shadowed" in listing

    explain = ok(run_cli("explain", "--domain", "adapter", "--key", "cache")).stdout
    assert "adapter/cache: memory (builtin) wins" in explain
    for provider in ("memory", "memory-large", "sqlite", "redis"):
        assert provider in explain

    health = ok(run_cli("health")).stdout
    for name in DEMO_WINNERS:
        assert name in health, name
    assert "UNKNOWN" in health

    activity = ok(run_cli("activity")).stdout
    assert "adapter/cache" in activity and "PAUSED" in activity and "tester" in activity
    assert "db maintenance" in activity

    journal = ok(run_cli("journal")).stdout
    assert "activity-changed" in journal and "adapter/cache" in journal and "tester" in journal


def test_activity_text_when_nothing_is_paused(run_cli):
    assert "nothing is paused" in ok(run_cli("activity")).stdout


# -- keys selected in settings with no registered candidate --------------------------------------

def test_probe_all_reports_a_key_with_no_candidates_as_failed(run_cli, demo_settings):
    replace_once(demo_settings / "adapters.yml", "  cache: memory\n", "  cache: memory\n  queue: rabbit\n")
    status = ok_json(run_cli("status", "--json", "--key", "queue"))
    [queue] = status["components"]
    assert queue["winner"] is None and queue["candidates"] == 0
    assert "rabbit" in queue["misconfigured"]

    # the probe still covers every other component; the orphan key is reported failed
    res = run_cli("health", "--probe", "--json")
    assert res.returncode == 4, str(res)
    assert "Traceback" not in res.stderr
    results = {ref(r): r for r in res.json()["results"]}
    for r in results.values():
        assert set(r) == HEALTH_RESULT_KEYS, r
    assert (results["adapter/queue"]["provider"], results["adapter/queue"]["status"]) == (None, "failed")
    for name, (winner, _) in DEMO_WINNERS.items():
        assert (results[name]["provider"], results[name]["status"]) == (winner, "ok"), name


def test_explain_text_for_a_key_with_no_candidates_claims_no_fallback(run_cli, demo_settings):
    replace_once(demo_settings / "adapters.yml", "  cache: memory\n", "  cache: memory\n  queue: rabbit\n")
    text = ok(run_cli("explain", "--domain", "adapter", "--key", "queue")).stdout
    assert "MISCONFIGURED" in text and "rabbit" in text
    assert "no candidate" in text
    assert "picked a fallback" not in " ".join(text.split())


def test_an_unknown_theme_is_refused_in_one_sentence_before_the_screen_starts(run_cli) -> None:
    """Issue 13 point 5: `--theme nosuch` used to start the console in the default theme."""
    from oneiric_tui.themes import theme_refusal

    assert theme_refusal("ansi-dark") is None
    result = run_cli("console", "--theme", "nosuch")
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith("oneiric: There is no theme 'nosuch'; the themes are ansi-dark, ")
    assert len(result.stderr.strip().splitlines()) == 1
