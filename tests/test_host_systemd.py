"""`oneiric run` as systemd sees it: priorities on its stdout lines, providers' `logging` in the
same stream, and EXTEND_TIMEOUT_USEC while a stop drains slow work.

Every host is a real `oneiric run` subprocess (tests/test_change_control.py's Host) with a
notify socket bound by the test. Its stdout is a file; JOURNAL_STREAM names that file's
device and inode exactly as systemd names the journal's stream socket, which is all the host
checks. The lines are read as journald would: `<N>` first, then the JSON.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from oneiric_core.host import EXTEND_BY_S
from tests.test_change_control import (
    CACHE,
    configure,
    hosts,
    journal,
    ok,
    one_sentence_error,
    ready_host,
    wait_for_event,
)

__all__ = ["hosts"]  # the fixture, imported for the tests below

LINE = re.compile(r"^<(\d)>(\{.*\})$")


def select_fixture_cache(settings: Path, provider: str, factory: str, **options: float) -> None:
    """adapter/cache gets candidate `provider` (tests.fixture_providers:`factory`) and selects it."""
    adapters = settings / "adapters.yml"
    text = adapters.read_text()
    lines = ["  - key: cache", f"    provider: {provider}", f"    factory: tests.fixture_providers:{factory}",
             "    settings:", f"      name: {provider}", *(f"      {k}: {v}" for k, v in options.items())]
    text = text.replace("selections:\n  cache: memory\n", f"selections:\n  cache: {provider}\n")
    adapters.write_text(text.replace("candidates:\n", "candidates:\n" + "\n".join(lines) + "\n", 1))


def prefixed_lines(path: Path) -> list[tuple[int, dict]]:
    """(priority, JSON) of every stdout line, each of which must carry a prefix."""
    out = []
    for line in path.read_text().splitlines():
        match = LINE.match(line)
        assert match, f"a line without its priority: {line!r}"
        out.append((int(match[1]), json.loads(match[2])))
    return out


def stop(host) -> None:
    host.proc.send_signal(signal.SIGTERM)
    assert host.proc.wait(30) == 0, host.stderr_path.read_text()


# -- priorities ------------------------------------------------------------------------------------

def test_event_lines_carry_their_severity_as_a_journal_priority(run_cli, demo_settings, tmp_path, hosts):
    configure(demo_settings, approvals="approvals:\n  mode: auto\n")
    host = ready_host(hosts, demo_settings, tmp_path, journal_stream=True)
    run_cli("swap", *CACHE, "--provider", "redis")  # nothing listens on its port: fails its gate
    wait_for_event(tmp_path, "swap-rollback", key="cache")
    stop(host)

    lines = prefixed_lines(host.stdout_path)
    by_kind = {event["kind"]: priority for priority, event in lines}
    assert by_kind["swap-rollback"] == 4  # what `journalctl -p warning` shows
    assert by_kind["host-started"] == 6 and by_kind["host-stopped"] == 6
    assert {(e["severity"], p) for p, e in lines} <= {("info", 6), ("warning", 4), ("error", 3)}
    # still every journal event, in order
    assert [e["id"] for _, e in lines] == [e.id for e in journal(tmp_path)]


def test_a_stdout_that_is_not_the_journal_stream_gets_plain_json_lines(demo_settings, tmp_path, hosts):
    # JOURNAL_STREAM inherited from a unit whose `oneiric run > events.log` sent stdout elsewhere
    configure(demo_settings)
    other = tmp_path.stat()
    host = ready_host(hosts, demo_settings, tmp_path, extra_env={"JOURNAL_STREAM": f"{other.st_dev}:{other.st_ino}"})
    stop(host)
    assert not [line for line in host.stdout_path.read_text().splitlines() if line.startswith("<")]
    kinds = [event["kind"] for event in host.events()]  # json.loads of each whole line
    assert "host-started" in kinds and kinds[-1] == "host-stopped"


# -- providers' logging ------------------------------------------------------------------------------

def test_a_providers_logging_reaches_the_host_stream_at_its_priority(run_cli, demo_settings, tmp_path, hosts):
    configure(demo_settings)
    select_fixture_cache(demo_settings, "chatty", "chatty")
    host = ready_host(hosts, demo_settings, tmp_path, journal_stream=True)
    stop(host)

    logs = [(p, line) for p, line in prefixed_lines(host.stdout_path) if "logger" in line]
    messages = {(p, line["level"], line["logger"], line["message"]) for p, line in logs}
    assert (4, "warning", "tests.fixture_providers", "chatty: backend is slow to answer") in messages
    assert (6, "info", "tests.fixture_providers", "chatty: probe answered") in messages  # from a worker thread
    assert not [m for m in messages if m[3] == "chatty: probing"]  # debug: below the default level
    assert "backend is slow" not in host.stderr_path.read_text()

    # ONEIRIC_LOG_LEVEL=debug lets debug records through, as <7>
    host = ready_host(hosts, demo_settings, tmp_path, journal_stream=True,
                      extra_env={"ONEIRIC_LOG_LEVEL": "debug"})
    stop(host)
    probing = [p for p, line in prefixed_lines(host.stdout_path) if line.get("message") == "chatty: probing"]
    assert probing and set(probing) == {7}


def test_an_unknown_log_level_is_one_sentence_and_no_host(run_cli, demo_settings, tmp_path):
    res = run_cli("run", env={"ONEIRIC_LOG_LEVEL": "loud"})
    one_sentence_error(res, 2, "ONEIRIC_LOG_LEVEL is 'loud'", "debug, info, warning, error, critical")
    assert res.stdout == ""
    assert ok(run_cli("status", "--json")).json()["host"] is None  # no lease was ever taken


# -- a long stop ---------------------------------------------------------------------------------------

def test_a_host_still_draining_extends_systemds_stop_timeout(demo_settings, tmp_path, hosts):
    configure(demo_settings)
    app = demo_settings / "app.yml"  # each provider's stop may take 10 s, the host's stop 20 s a phase
    app.write_text(app.read_text().replace("cleanup_timeout: 1.0", "cleanup_timeout: 10"))
    select_fixture_cache(demo_settings, "slowstop", "slow_stop", stop_s=4.5)  # two EXTEND_EVERY_S
    host = ready_host(hosts, demo_settings, tmp_path, args=("--stop-timeout", "20"))
    host.proc.send_signal(signal.SIGTERM)
    host.expect("STOPPING=1", timeout=10)
    extend = f"EXTEND_TIMEOUT_USEC={round(EXTEND_BY_S * 1_000_000)}"
    first = host.expect(extend, timeout=10)
    assert "STATUS=stopping: still finishing in-flight work after 2s" in first.split("\n")
    host.expect(extend, timeout=10)  # and again while the provider still stops
    assert host.proc.wait(30) == 0, host.stderr_path.read_text()
    kinds = [e.kind for e in journal(tmp_path)]
    assert kinds[-1] == "host-stopped" and "cleanup-failed" not in kinds  # the slow stop was let finish
