"""`oneiric runbook walk` and `oneiric runbook drill` end to end, in real subprocesses (and a real
pseudo-terminal for the prompts)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time


def test_walk_with_answers_resumes_the_paused_key_and_opens_no_incident(run_cli):
    assert run_cli("pause", "--key", "cache").returncode == 0
    walk = run_cli("runbook", "walk", "component-not-found", "--key", "cache",
                   "--answer", "intentional=no", "--answer", "resume=perform")
    assert walk.returncode == 0, walk
    out = walk.stdout
    assert "this opens no incident" in out
    assert "[component-not-found:blocked] check: Is adapter/cache paused or draining?" in out
    assert "  -> paused" in out and "[component-not-found:intentional] answer:" in out and "-> no - resume it" in out
    # no host runs: the provider probes fine built here, but nothing serves it (it once ended at
    # "adapter/cache resolves and serves")
    assert "-> no-host" in out and "resolves and serves." not in out
    assert out.rstrip().endswith("The walk ended at component-not-found:no-host (done).")
    assert run_cli("activity", "--json").json()["totals"]["paused"] == 0  # the resume happened
    assert run_cli("incident", "list", "--json").json() == {"incidents": []}


def test_maintenance_with_no_host_never_says_the_key_serves_again(run_cli):
    """Its verify once took 'unknown' health (nothing serves: no host) for 'serves again'."""
    walk = run_cli("runbook", "walk", "proc-maintenance-pause", "--key", "cache", "--json",
                   "--answer", "declare=go on without one", "--answer", "announce=done",
                   "--answer", "drain=perform", "--answer", "work=done",
                   "--answer", "resume=perform")
    assert walk.returncode == 0, walk
    data = walk.json()
    assert [(s["node"], s["value"]) for s in data["path"]][-3:] == [("verify", "unknown"), ("probe", "no-host"),
                                                                    ("no-host", "done")]
    assert data["exit"]["node"] == "no-host" and "serves again" not in data["exit"]["text"]


def test_walk_without_an_answer_off_a_terminal_names_the_node_and_its_choices(run_cli):
    run_cli("pause", "--key", "cache")
    walk = run_cli("runbook", "walk", "component-not-found", "--key", "cache")
    assert walk.returncode == 2, walk
    [line] = walk.stderr.splitlines()
    assert line.startswith("oneiric: The walk needs an answer at node 'intentional' of runbook 'component-not-found'")
    assert "--answer intentional=CHOICE with one of: 1) yes - leave it; 2) no - resume it." in line
    assert "Traceback" not in walk.stderr
    assert run_cli("activity", "--json").json()["totals"]["paused"] == 1  # nothing was done


def test_walk_json_has_the_path_verdicts_evidence_and_exit(run_cli):
    walk = run_cli("runbook", "walk", "quick-reference", "--answer", "symptom=logs", "--json")
    assert walk.returncode == 0, walk
    data = walk.json()
    assert data["exit"] == {"status": "finished", "tree": "quick-reference", "node": "observability",
                            "kind": "escalate", "text": data["exit"]["text"]}
    triage = data["path"][0]
    assert (triage["node"], triage["kind"], triage["value"]) == ("triage", "check", "clear")
    assert any(line.startswith("suggests: ") for line in triage["evidence"])
    assert [s["node"] for s in data["path"]] == ["triage", "symptom", "observability"]


def test_walk_refuses_an_answer_that_is_no_choice_or_no_node(run_cli):
    bad = run_cli("runbook", "walk", "quick-reference", "--answer", "symptom=teapot")
    assert bad.returncode == 2 and "'teapot' is not a choice at node 'symptom'" in bad.stderr, bad
    bad = run_cli("runbook", "walk", "quick-reference", "--answer", "nowhere=1")
    assert bad.returncode == 2 and "does not have" in bad.stderr and "nowhere" in bad.stderr, bad
    bad = run_cli("runbook", "walk", "quick-reference", "--answer", "symptom")
    assert bad.returncode == 2 and "is not NODE=CHOICE" in bad.stderr, bad


def _read_until(fd: int, needle: str, timeout: float = 30) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} in {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
    return seen


def test_walk_on_a_terminal_asks_with_numbered_choices_safe_first(tmp_path, demo_settings, cli_env, run_cli):
    import pty

    run_cli("pause", "--key", "cache")
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "oneiric_core.cli", "--settings", str(demo_settings), "--state-dir",
         str(tmp_path / "state"), "runbook", "walk", "component-not-found", "--key", "cache"],
        stdin=child, stdout=child, stderr=child, cwd=tmp_path, env=cli_env, close_fds=True)
    os.close(child)
    try:
        screen = _read_until(main, "choice [1-2]: ")
        assert "  1) yes - leave it\n" in screen.replace("\r", "") and "  2) no - resume it" in screen
        os.write(main, b"\n")  # an empty Enter picks nothing: asked again
        assert "choice [1-2]: " in _read_until(main, "choice [1-2]: ")
        os.write(main, b"2\n")
        screen = _read_until(main, "choice [1-2]: ")
        assert "1) stop here (change nothing)" in screen and "2) perform this step" in screen
        os.write(main, b"1\n")
        rest = _read_until(main, "nothing further was done.")
        assert "The walk stopped at component-not-found:resume" in rest
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert run_cli("activity", "--json").json()["totals"]["paused"] == 1  # stopped before the resume


def test_drill_command_reports_pass_and_a_failing_drill_exits_1(run_cli, demo_settings):
    ok = run_cli("runbook", "drill", "component-not-found", "--json")
    assert ok.returncode == 0, ok
    data = ok.json()
    assert data["failed"] == 0 and data["passed"] == len(data["drills"]) >= 2
    first = data["drills"][0]
    assert first["reached"] == first["expected"] and first["injected"] and first["path"][0]["node"] == "blocked"

    tree = demo_settings / "runbooks" / "component-not-found.yml"
    tree.write_text(tree.read_text().replace("answers: {intentional: yes - leave it}\n    expect: done-blocked",
                                             "answers: {intentional: yes - leave it}\n    expect: done"))
    bad = run_cli("runbook", "drill", "component-not-found", "--drill", "paused-on-purpose")
    assert bad.returncode == 1, bad
    assert bad.stdout.startswith("FAIL component-not-found / paused-on-purpose")
    assert "the walk ended at component-not-found:done-blocked, expected component-not-found:done" in bad.stdout
    assert "0 of 1 drill(s) passed." in bad.stdout


def test_drill_needs_an_id_or_all(run_cli):
    bad = run_cli("runbook", "drill")
    assert bad.returncode == 2 and "needs a runbook ID or --all" in bad.stderr, bad


def _on_a_terminal(tmp_path, settings, env, *args):
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
         str(tmp_path / "state"), *args], stdin=child, stdout=child, stderr=child, cwd=tmp_path, env=env,
        close_fds=True)
    os.close(child)
    return proc, main


def test_game_day_scores_the_exit_the_operator_reached(tmp_path, demo_settings, cli_env, run_cli):
    """--interactive: the drill's fault is injected, the operator answers, the exit is scored."""
    for answers, score, code in ((["2", "2"], "Score: PASS. You reached component-not-found:done", 0),
                                 (["1"], "Score: MISS. You reached component-not-found:done-blocked; the drill "
                                         "expects component-not-found:done.", 1)):
        proc, main = _on_a_terminal(tmp_path, demo_settings, cli_env, "runbook", "drill", "component-not-found",
                                    "--drill", "paused-key-resumed", "--interactive")
        try:
            screen = _read_until(main, "choice [1-2]: ")
            assert "Game day: Component not found" in screen and "throw-away copy at" in screen
            assert "  -> paused" in screen  # the injected fault, found by the first check
            for n, answer in enumerate(answers):
                if n:
                    _read_until(main, "choice [1-2]: ")
                os.write(main, answer.encode() + b"\n")
            assert score in _read_until(main, score)
            assert proc.wait(timeout=30) == code
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(main)
    assert run_cli("activity", "--json").json()["totals"]["paused"] == 0  # the operator's own state: untouched


def test_walk_that_stops_before_acting_opens_no_incident(run_cli):
    """A look: the checks run and the question is answered, the action is declined, and the
    store has no incident afterwards (and the key stays as it was)."""
    assert run_cli("pause", "--key", "cache").returncode == 0
    walk = run_cli("runbook", "walk", "component-not-found", "--key", "cache",
                   "--answer", "intentional=no", "--answer", "resume=stop")
    assert walk.returncode == 0, walk
    assert "The walk stopped at component-not-found:resume; nothing further was done." in walk.stdout
    assert run_cli("incident", "list", "--json").json() == {"incidents": []}
    assert run_cli("activity", "--json").json()["totals"]["paused"] == 1


def test_walk_on_a_terminal_lists_the_swap_targets_and_takes_a_number(tmp_path, demo_settings, cli_env):
    """proc-hot-swap's target: the candidates the engine knows, numbered (what serves left out),
    an empty Enter asks again, a number picks one; the walk then offers the swap step itself."""
    proc, main = _on_a_terminal(tmp_path, demo_settings, cli_env, "runbook", "walk", "proc-hot-swap",
                                "--key", "cache")
    try:
        screen = _read_until(main, " or a value]: ").replace("\r", "")
        # no host runs here, so nothing serves: every candidate of the key is listed
        assert "needs the target: Provider to swap adapter/cache to (serving now: nothing)" in screen
        assert "  4) memory-large (settings, priority 5)\n  or type another" in screen, screen
        listed = [line.split(") ", 1)[1].split(" (")[0] for line in screen.splitlines()
                  if line.startswith("  ") and line.strip()[:1].isdigit()]
        assert listed == ["memory", "sqlite", "redis", "memory-large"], screen
        os.write(main, b"\n")  # nothing typed: asked again
        _read_until(main, " or a value]: ")
        os.write(main, f"{listed.index('redis') + 1}\n".encode())
        screen = _read_until(main, "choice [1-2]: ").replace("\r", "")
        assert "Swap adapter/cache to redis: a proposal." in screen
        os.write(main, b"1\n")
        assert "The walk stopped at proc-hot-swap:swap" in _read_until(main, "nothing further was done.")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)


def test_drill_console_goes_with_interactive(run_cli):
    bad = run_cli("runbook", "drill", "component-not-found", "--console")
    assert bad.returncode == 2, bad
    assert "--console is where an --interactive game day is walked: give --interactive too." in bad.stderr
