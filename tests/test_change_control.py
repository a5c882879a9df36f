"""Change control across processes: a real `oneiric run` host, real CLI processes, real SQLite.

Every host here is `python -m oneiric_core.cli run` in a subprocess, started on the demo
settings copied to tmp_path (with short timeouts and tests.fixture_providers allowed), and
found ready through systemd's notify protocol on a real unix datagram socket. Clients are
CLI subprocesses (or, for the load test, processes using the command queue directly). The
assertions read what operators read: exit codes, printed sentences, the journal, `status`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from oneiric_core.store import StateStore
from tests.helpers import FAST_APP, REPO, shown

# -- settings ---------------------------------------------------------------------------------------

SLOW_CANDIDATE = """candidates:
  - key: cache
    provider: slow
    factory: tests.fixture_providers:slow_start
    settings:
      start_s: {start_s}
"""


def configure(settings: Path, *, approvals: str = "", activation_timeout: float = 1.0,
              slow_start_s: float | None = None) -> None:
    """app.yml with short timeouts (+ `approvals`), and optionally a `slow` cache candidate whose
    start() takes `slow_start_s` seconds."""
    fast = FAST_APP.replace("activation_timeout: 1.0", f"activation_timeout: {activation_timeout}")
    (settings / "app.yml").write_text(fast + approvals)
    if slow_start_s is not None:
        adapters = settings / "adapters.yml"
        text = adapters.read_text()
        assert text.count("candidates:\n") == 1
        adapters.write_text(text.replace("candidates:\n", SLOW_CANDIDATE.format(start_s=slow_start_s)))


# -- a real host -------------------------------------------------------------------------------------

class Host:
    """`oneiric run` in a subprocess, with a notify socket bound by this test."""

    def __init__(self, settings: Path, state: Path, log_dir: Path, *, address: str | None = None,
                 extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                 journal_stream: bool = False) -> None:
        """`journal_stream`: JOURNAL_STREAM names the host's stdout file, as systemd does when
        stdout is the journal (dev:ino of its fstat)."""
        self.address = address or f"@oneiric-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.address[1:] if self.address.startswith("@") else self.address)
        self.messages: list[str] = []
        name = uuid.uuid4().hex[:8]
        self.stdout_path, self.stderr_path = log_dir / f"host-{name}.out", log_dir / f"host-{name}.err"
        env = {k: v for k, v in os.environ.items()
               if k not in ("ONEIRIC_SETTINGS", "ONEIRIC_STATE_DIR", "ONEIRIC_STACK_ORDER", "WATCHDOG_USEC",
                            "WATCHDOG_PID", "SSH_CLIENT", "SSH_CONNECTION")}
        env.update({"ONEIRIC_OPERATOR": "host-operator", "NOTIFY_SOCKET": self.address, **(extra_env or {})})
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            if journal_stream:
                found = os.fstat(out.fileno())
                env["JOURNAL_STREAM"] = f"{found.st_dev}:{found.st_ino}"
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir", str(state),
                 "run", *args], cwd=REPO, env=env, stdout=out, stderr=err)

    def expect(self, state: str, timeout: float = 30) -> str:
        """The first notify datagram containing `state` (others are kept in self.messages)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(0.2)
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the host exited ({self.proc.returncode}) before {state}:\n"
                                         f"{self.stderr_path.read_text()}") from None
                continue
            self.messages.append(message)
            if state in message.split("\n"):
                return message
        raise AssertionError(f"no {state} from the host within {timeout}s (got {self.messages})")

    def events(self) -> list[dict]:
        """Every line the host printed on stdout, each one journal event as JSON."""
        return [json.loads(line) for line in self.stdout_path.read_text().splitlines()]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.sock.close()


@pytest.fixture
def hosts():
    started: list[Host] = []

    def start(*args, **kwargs) -> Host:
        host = Host(*args, **kwargs)
        started.append(host)
        return host

    yield start
    for host in started:
        host.close()


def ready_host(hosts, settings: Path, tmp_path: Path, **kwargs) -> Host:
    host = hosts(settings, tmp_path / "state", tmp_path, **kwargs)
    host.expect("READY=1")
    return host


# -- helpers ----------------------------------------------------------------------------------------

def ok(res):
    assert res.returncode == 0, str(res)
    assert "Traceback" not in res.stderr + res.stdout, str(res)
    return res


def one_sentence_error(res, code: int, *needles: str) -> str:
    assert res.returncode == code, str(res)
    assert "Traceback" not in res.stderr + res.stdout, str(res)
    err = res.stderr.strip()
    assert err.startswith("oneiric: ") and "\n" not in err, str(res)
    for needle in needles:
        assert needle in err, str(res)
    return err


def journal(tmp_path: Path, **filters) -> list:
    with StateStore(tmp_path / "state" / "state.sqlite") as store:
        return store.journal(limit=10_000, **filters)


def wait_for_event(tmp_path: Path, kind: str, timeout: float = 30, **filters):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = journal(tmp_path, kinds=[kind], **filters)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no {kind} event within {timeout}s")


def cli_popen(tmp_path: Path, settings: Path, *args: str, operator: str = "tester") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEIRIC_STATE_DIR", "SSH_CLIENT", "SSH_CONNECTION")}
    env["ONEIRIC_OPERATOR"] = operator
    return subprocess.Popen(
        [sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
         str(tmp_path / "state"), *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


ALICE = {"ONEIRIC_OPERATOR": "alice"}
BOB = {"ONEIRIC_OPERATOR": "bob"}
CACHE = ("--domain", "adapter", "--key", "cache")


# -- a swap across processes --------------------------------------------------------------------------

def test_swap_proposed_by_one_cli_and_approved_by_another_applies_on_the_host(
        run_cli, demo_settings, tmp_path, hosts):
    # (The two-person rule across OS accounts is tests/test_principals.py: here every CLI runs
    # as this test's account, so alice and bob are display names of one principal.)
    configure(demo_settings)
    # A lease left by a host on another machine that stopped heartbeating is taken over.
    with StateStore(tmp_path / "state" / "state.sqlite") as store:
        store.acquire_lease(4242, "elsewhere.example", now=time.time() - 60)
    host = ready_host(hosts, demo_settings, tmp_path)
    started = wait_for_event(tmp_path, "host-started")
    assert started.data["took_over"] == {"pid": 4242, "hostname": "elsewhere.example"}

    res = ok(run_cli("swap", *CACHE, "--provider", "sqlite", "--reason", "warm cache", env=ALICE))
    assert "waits for approval" in res.stdout and "takes effect when a host starts" not in res.stdout
    [pending] = ok(run_cli("approvals", "--json")).json()["pending"]
    assert (pending["from_provider"], pending["to_provider"], pending["requested_by"]) == \
        ("memory", "sqlite", shown("alice"))
    pid = pending["id"]
    assert ok(run_cli("status", "--json", "--key", "cache")).json()["components"][0]["serving"] == "memory"

    res = ok(run_cli("approve", pid, "--comment", "looks fine", env=BOB))
    assert "Swapped adapter/cache memory -> sqlite" in res.stdout and shown("bob") in res.stdout
    [cache] = ok(run_cli("status", "--json", "--key", "cache")).json()["components"]
    assert (cache["serving"], cache["state"]) == ("sqlite", "ready")
    kinds = [(e.kind, e.actor) for e in journal(tmp_path, kinds=["swap-requested", "swap-approved", "swap-complete"],
                                                 domain="adapter", key="cache")]
    assert kinds[-3:] == [("swap-requested", shown("alice")), ("swap-approved", shown("bob")),
                          ("swap-complete", shown("bob"))]
    recent = {p["id"]: p for p in ok(run_cli("approvals", "--json")).json()["recent"]}
    decided = (recent[pid]["status"], recent[pid]["decided_by"], recent[pid]["comment"])
    assert decided == ("applied", shown("bob"), "looks fine")

    # probes and pause/resume go to the host too: its live provider, journaled
    probed = ok(run_cli("health", "--probe", "--key", "cache", "--json")).json()
    assert probed["probed"] is True and probed["host"]["pid"] == host.proc.pid
    assert [(r["provider"], r["status"]) for r in probed["results"]] == [("sqlite", "ok")]
    assert journal(tmp_path, kinds=["health-probed"])[-1].provider == "sqlite"
    res = ok(run_cli("pause", *CACHE, "--note", "maintenance", env=BOB))
    assert f"pid {host.proc.pid}" in res.stdout
    plan = ok(run_cli("swap", *CACHE, "--provider", "memory", "--dry-run"))
    assert "sqlite -> memory" in plan.stdout and "paused" in plan.stdout
    ok(run_cli("resume", *CACHE, env=BOB))
    assert ok(run_cli("activity", "--json")).json()["activity"] == []

    # a second host for the same state directory is refused in one sentence
    one_sentence_error(run_cli("run"), 1, "Another host", str(host.proc.pid))


def test_an_expired_proposal_cannot_be_approved(run_cli, demo_settings, tmp_path):
    configure(demo_settings, approvals="approvals:\n  expire_after_s: 0.3\n")
    ok(run_cli("swap", *CACHE, "--provider", "sqlite", env=ALICE))
    time.sleep(0.6)  # the proposal's expiry (0.3 s) passes: an outcome of the clock, not a wait for work
    one_sentence_error(run_cli("approve", "1", env=BOB), 5, "#1", "expired")
    [event] = journal(tmp_path, kinds=["swap-expired"])
    assert event.data["proposal"] == 1
    assert "cache: memory" in (demo_settings / "adapters.yml").read_text()


def test_without_a_host_a_swap_becomes_the_settings_selection_keeping_comments(run_cli, demo_settings, tmp_path):
    adapters = demo_settings / "adapters.yml"
    before = adapters.read_text()
    assert "# Adapters: which provider serves each adapter key." in before and "cache: memory" in before

    plan = ok(run_cli("swap", *CACHE, "--provider", "redis", "--dry-run"))
    assert "memory -> redis" in plan.stdout and "nothing changed" in plan.stdout.lower()

    res = ok(run_cli("swap", *CACHE, "--provider", "sqlite", env=ALICE))
    assert res.stdout.strip().count("\n") == 0 and "takes effect when a host starts" in res.stdout
    assert adapters.read_text() == before  # manual mode: nothing is selected until approved

    res = ok(run_cli("approve", "1", "--comment", "go", env=BOB))
    assert res.stdout.strip().count("\n") == 0 and "takes effect when a host starts" in res.stdout
    after = adapters.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]
    assert changed == [("  cache: memory", "  cache: sqlite")], after
    assert len(before.splitlines()) == len(after.splitlines())
    assert ok(run_cli("explain", "--key", "cache", "--json")).json()["selection"] == "sqlite"
    [selected] = journal(tmp_path, kinds=["selection-changed"])
    assert (selected.actor, selected.data["to"], selected.data["proposal"]) == (shown("bob"), "sqlite", 1)
    recent = ok(run_cli("approvals", "--json")).json()["recent"]
    assert [(p["id"], p["status"], p["outcome"]) for p in recent] == [(1, "applied", "selected")]

    # auto mode: the selection is written at once, approved by the policy
    configure(demo_settings, approvals="approvals:\n  mode: auto\n")
    res = ok(run_cli("swap", *CACHE, "--provider", "memory-large", env=ALICE))
    assert "policy:auto" in res.stdout and "takes effect when a host starts" in res.stdout
    assert "  cache: memory-large" in adapters.read_text()
    assert "# Adapters: which provider serves each adapter key." in adapters.read_text()


# -- host failures ---------------------------------------------------------------------------------

def test_a_lease_whose_holder_died_reads_as_no_host_and_the_next_host_adopts_the_desired_state(
        run_cli, demo_settings, tmp_path, hosts):
    configure(demo_settings)
    # A fresh lease whose holder process is gone: nobody hosts, whatever the heartbeat says.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with StateStore(tmp_path / "state" / "state.sqlite") as store:
        store.acquire_lease(int(gone.stdout), socket.gethostname())
    assert ok(run_cli("status", "--json")).json()["host"]["alive"] is False
    res = ok(run_cli("pause", *CACHE, "--wait", "0.5"))
    assert "no host is running, so it takes effect when a host starts" in res.stdout

    ready_host(hosts, demo_settings, tmp_path)  # takes the dead holder's lease over at once
    ok(run_cli("resume", "--domain", "adapter", "--key", "http"))  # answered by the host
    [paused] = ok(run_cli("activity", "--json")).json()["activity"]
    assert (paused["key"], paused["state"]) == ("cache", "paused")


def test_a_client_whose_host_dies_while_it_waits_says_so_at_once(run_cli, demo_settings, tmp_path, hosts):
    configure(demo_settings, approvals="approvals:\n  mode: auto\n", activation_timeout=60, slow_start_s=30)
    host = ready_host(hosts, demo_settings, tmp_path)
    client = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(demo_settings),
                               "--state-dir", str(tmp_path / "state"), "swap", *CACHE, "--provider", "slow"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_event(tmp_path, "swap-started", key="cache", text="slow")
    killed_at = time.monotonic()
    host.proc.kill()
    out, err = client.communicate(timeout=30)
    assert time.monotonic() - killed_at < 5
    assert client.returncode == 1, (out, err)
    assert err.startswith("oneiric: The host stopped before answering command #") and "(swap)" in err, err
    assert "it was taken and may have run" in err and "Traceback" not in err


def starting_host(hosts, settings: Path, tmp_path: Path, *, slow_start_s: float) -> Host:
    """A host whose cache (the `slow` candidate, selected) takes `slow_start_s` to start;
    returned once it holds the lease and its socket listens, before it is ready."""
    from oneiric_core.wire import socket_path

    configure(settings, activation_timeout=60, slow_start_s=slow_start_s)
    adapters = settings / "adapters.yml"
    adapters.write_text(adapters.read_text().replace("selections:\n  cache: memory\n", "selections:\n  cache: slow\n"))
    host = hosts(settings, tmp_path / "state", tmp_path)
    deadline = time.monotonic() + 30
    while not socket_path(tmp_path / "state").exists():
        assert time.monotonic() < deadline and host.proc.poll() is None, host.stderr_path.read_text()
        time.sleep(0.05)
    return host


def test_a_client_whose_host_dies_before_taking_its_command_says_it_did_not_run(
        demo_settings, tmp_path, hosts):
    """The host listens from the moment it holds the lease, and takes requests once it has
    started its providers: one killed while still starting never took the pause."""
    host = starting_host(hosts, demo_settings, tmp_path, slow_start_s=60)  # the cache takes a minute to start
    client = cli_popen(tmp_path, demo_settings, "pause", "--domain", "adapter", "--key", "http", "--wait", "60")
    time.sleep(2.0)  # connected, waiting for the host to be ready
    assert client.poll() is None, client.communicate()
    killed_at = time.monotonic()
    host.proc.kill()
    out, err = client.communicate(timeout=30)
    assert time.monotonic() - killed_at < 5
    assert client.returncode == 1 and out == "", (out, err)
    assert err.strip() == "oneiric: The host closed the connection before taking the pause command; it did not run."
    assert not journal(tmp_path, kinds=["activity-changed"])


def test_a_command_the_starting_host_never_took_is_withdrawn_when_the_client_gives_up(
        run_cli, demo_settings, tmp_path, hosts):
    host = starting_host(hosts, demo_settings, tmp_path, slow_start_s=6)
    gave_up = run_cli("pause", "--domain", "adapter", "--key", "http", "--wait", "1")
    one_sentence_error(gave_up, 1, "The host did not take the pause command within 1s (it is still starting its "
                       "providers); it did not run.")
    host.expect("READY=1")
    assert ok(run_cli("status", "--json")).json()["host"]["alive"]
    assert ok(run_cli("activity", "--json")).json()["activity"] == []  # and it never will
    assert not journal(tmp_path, kinds=["activity-changed"])


def test_a_host_killed_mid_swap_is_taken_over_and_the_swap_journaled_interrupted(
        run_cli, demo_settings, tmp_path, hosts):
    configure(demo_settings, approvals="approvals:\n  mode: auto\n", activation_timeout=60, slow_start_s=60)
    first = ready_host(hosts, demo_settings, tmp_path)
    client = cli_popen(tmp_path, demo_settings, "swap", *CACHE, "--provider", "slow", "--wait", "60")
    wait_for_event(tmp_path, "swap-started", domain="adapter", key="cache")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)

    second = ready_host(hosts, demo_settings, tmp_path)
    out, err = client.communicate(timeout=30)
    assert client.returncode == 1 and "stopped before answering" in err, (out, err)

    [interrupted] = journal(tmp_path, kinds=["swap-interrupted"])
    assert (interrupted.key, interrupted.data["from"], interrupted.data["to"]) == ("cache", "memory", "slow")
    assert interrupted.data["previous_host"]["pid"] == first.proc.pid
    started = journal(tmp_path, kinds=["host-started"])[-1]
    assert started.data["pid"] == second.proc.pid and started.data["took_over"]["pid"] == first.proc.pid
    [proposal] = ok(run_cli("approvals", "--json")).json()["recent"]
    assert (proposal["id"], proposal["status"]) == (interrupted.data["proposal"], "interrupted")
    [cache] = ok(run_cli("status", "--json", "--key", "cache")).json()["components"]
    assert (cache["serving"], cache["state"], cache["selection"]) == ("memory", "ready", "memory")


def test_sigterm_lets_the_running_swap_finish_then_stops_and_releases_the_lease(
        demo_settings, tmp_path, hosts):
    configure(demo_settings, approvals="approvals:\n  mode: auto\n", activation_timeout=30, slow_start_s=1.0)
    host = ready_host(hosts, demo_settings, tmp_path, args=("--stop-timeout", "20"))
    client = cli_popen(tmp_path, demo_settings, "swap", *CACHE, "--provider", "slow")
    wait_for_event(tmp_path, "swap-started", domain="adapter", key="cache")
    host.proc.send_signal(signal.SIGTERM)

    assert host.proc.wait(30) == 0, host.stderr_path.read_text()
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0 and "Swapped adapter/cache memory -> slow" in out, (out, err)
    host.expect("STOPPING=1", timeout=5)
    events = journal(tmp_path)
    complete = [e for e in events if e.kind == "swap-complete" and e.provider == "slow"]
    stopped = [e for e in events if e.kind == "host-stopped"]
    assert complete and stopped and complete[-1].id < stopped[-1].id, [e.kind for e in events]
    assert not [e for e in events if e.kind == "cleanup-failed"]
    with StateStore(tmp_path / "state" / "state.sqlite") as store:
        assert store.current_lease() is None
    printed = host.events()  # every journal event, one JSON object per line
    assert printed[-1]["kind"] == "host-stopped"
    assert [e["id"] for e in printed] == [e.id for e in events]


def test_sd_notify_ready_watchdog_and_stopping_on_a_unix_datagram_socket(demo_settings, tmp_path, hosts):
    configure(demo_settings)
    host = hosts(demo_settings, tmp_path / "state", tmp_path, address=str(tmp_path / "notify.sock"),
                 extra_env={"WATCHDOG_USEC": "200000"})
    ready = host.expect("READY=1")
    assert f"MAINPID={host.proc.pid}" in ready.split("\n")
    host.expect("WATCHDOG=1", timeout=5)
    host.proc.send_signal(signal.SIGINT)
    host.expect("STOPPING=1", timeout=10)
    assert host.proc.wait(30) == 0
    assert journal(tmp_path)[-1].kind == "host-stopped"


# -- many clients at once ------------------------------------------------------------------------------

CLIENT = r"""
import asyncio, sys
from pathlib import Path
from oneiric_core.operator_port import Operator, OverSocket
from oneiric_core.store import StateStore

store = StateStore(sys.argv[1])
me, key = sys.argv[2], sys.argv[3]
operator = Operator(OverSocket(Path(sys.argv[1]).parent / "host.sock", display=me), wait=60)
for i in range(int(sys.argv[4])):
    store.journal(limit=50); store.all_lifecycle(); store.all_health(); store.proposals(limit=20)
    store.current_lease(); store.all_activity()
    for kind, args in (("pause", {"key": key, "note": me}), ("resume", {"key": key}), ("probe", {"key": key})):
        result = asyncio.run(operator.run(kind, **args))
        if result.exit_code != 0:
            print(f"{me}: {kind} answered {result.exit_code}: {result.message}")
            sys.exit(1)
print(f"{me}: ok")
"""


def test_ten_clients_hammering_the_store_while_the_host_swaps_never_see_a_lock(
        run_cli, demo_settings, tmp_path, hosts):
    configure(demo_settings, approvals="approvals:\n  mode: auto\n")
    ready_host(hosts, demo_settings, tmp_path)
    keys = ["bus", "scheduler", "compress", "http", "storage"]  # each in one domain only; not cache
    db = str(tmp_path / "state" / "state.sqlite")
    clients = []
    for n in range(10):
        clients.append(subprocess.Popen([sys.executable, "-c", CLIENT, db, f"client-{n}", keys[n % len(keys)], "6"],
                                        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    swaps = []
    for provider in ("memory-large", "memory", "sqlite", "memory"):
        swaps.append(run_cli("swap", *CACHE, "--provider", provider))
        swaps.append(run_cli("status", "--json"))
    outputs = [c.communicate(timeout=120) for c in clients]

    for client, (out, err) in zip(clients, outputs, strict=True):
        assert client.returncode == 0 and out.strip().endswith(": ok"), (out, err)
        assert "locked" not in (out + err).lower()
    for res in swaps:
        ok(res)
        assert "locked" not in (res.stdout + res.stderr).lower()
    complete = [e.provider for e in journal(tmp_path, kinds=["swap-complete"], key="cache")]
    assert complete[-4:] == ["memory-large", "memory", "sqlite", "memory"]
    assert journal(tmp_path, kinds=["store-error"]) == []
