"""Facts of the three operations runbooks: the service supervisor, the observability data on
disk, and telemetry performance (settings/runbooks/service-supervisor.yml,
observability-storage.yml, telemetry-performance.yml).

Each reads real state, as the other facts do: the host's lease and its `host-started` and
`host-stopped` events (what supervised it, how long its last stop took), the systemd unit file
on this machine, the state store's file and its retention report, the state directory's file
system, the telemetry status the host recorded and the OTEL_* variables. What the engine
cannot see (the collector's own dropped-span counters, the unit as systemd loaded it on
another machine) is a question in the trees that says where to look.

Registered in facts.FACTS on import; fact_index.py imports this module with facts.py.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .facts import FactContext, FactResult, fact, tcp_check

# The facts here that need no parameter and change nothing: `oneiric runbook check` runs them all.
GLOBAL_SIDE_EFFECT_FREE = ("host.lease", "host.supervision", "host.restarts", "host.last_stop", "deploy.unit",
                           "journal.storage", "journal.last_prune", "state.disk", "telemetry.exporter",
                           "telemetry.reachable", "telemetry.pipeline", "telemetry.overhead")

# -- the supervisor -------------------------------------------------------------------------------

UNIT_PATHS = (Path("/etc/systemd/system/oneiric.service"), Path("/usr/lib/systemd/system/oneiric.service"),
              Path("/lib/systemd/system/oneiric.service"))
# The unit shipped in a checkout (deploy/ is not in the wheel): the template the others come from.
SHIPPED_UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "oneiric.service"
RESTART_WINDOW_S = 24 * 3600  # host restarts counted over this window


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@fact("host.lease", "the host's lease (running | stale | gone | none): pid, machine, heartbeat age")
async def host_lease(ctx: FactContext) -> FactResult:
    from ..store import LEASE_STALE_AFTER_S

    lease, alive = ctx.engine.host()
    if lease is None:
        return FactResult("none", ["No host holds the state directory: no lease in the store."])
    age = time.time() - lease.heartbeat_at
    where = f"pid {lease.pid} on {lease.hostname}, started {_when(lease.started_at)}"
    if lease.is_stale(time.time(), LEASE_STALE_AFTER_S):
        return FactResult("stale", [f"The lease of {where} is stale: its last heartbeat was {age:.0f}s ago "
                                    f"(stale after {LEASE_STALE_AFTER_S:g}s)."])
    if not alive:
        return FactResult("gone", [f"The lease of {where} is fresh but that process is gone: killed or crashed "
                                   "without releasing it."])
    return FactResult("running", [f"Host {where}; heartbeat {age:.1f}s ago."])


def _last_event(ctx: FactContext, kind: str) -> Any:
    events = ctx.engine.journal(kinds=[kind], limit=1)
    return events[-1] if events else None


@fact("host.supervision", "what supervises the host, from its last host-started event (watchdog | systemd | "
      "unsupervised | unknown)")
async def host_supervision(ctx: FactContext) -> FactResult:
    started = _last_event(ctx, "host-started")
    info = (started.data or {}).get("supervision") if started is not None else None
    if not isinstance(info, dict):
        why = "no host has started here yet" if started is None else "its host-started event predates this record"
        return FactResult("unknown", [f"What supervises the host is not recorded: {why}."])
    at = f"the host started {_when(started.ts)} (pid {(started.data or {}).get('pid')})"
    if info.get("watchdog_s"):
        return FactResult("watchdog", [f"Under systemd with the notify protocol and a {info['watchdog_s']:g}s "
                                       f"watchdog: {at}."])
    if info.get("systemd"):
        notify = "with" if info.get("notify") else "without"
        return FactResult("systemd", [f"Under systemd {notify} the notify protocol and with no watchdog: {at}; a "
                                      "hung event loop is not restarted."])
    return FactResult("unsupervised", [f"Not under systemd (no INVOCATION_ID or NOTIFY_SOCKET): {at}; nothing "
                                       "restarts it if it dies."])


@fact("host.restarts", "host starts over a window (many | few | none), and how many took over a lease the "
      "previous host never released (a crash); args window_s, threshold")
async def host_restarts(ctx: FactContext) -> FactResult:
    window = float(ctx.args.get("window_s", RESTART_WINDOW_S))
    threshold = int(ctx.args.get("threshold", 3))
    since = time.time() - window
    starts = ctx.engine.journal(kinds=["host-started"], since_ts=since, limit=500)
    crashes = [e for e in starts if (e.data or {}).get("took_over")]
    lines = [f"{len(starts)} host start(s) in the last {window / 3600:g} h (threshold {threshold}); "
             f"{len(crashes)} took over a lease its previous host never released."]
    lines += [f"{_when(e.ts)}: {e.message}" for e in starts[-5:]]
    if not starts:
        return FactResult("none", lines)
    return FactResult("many" if len(starts) >= threshold else "few", lines, data={"crashes": len(crashes)})


@fact("host.last_stop", "how the host's last stop went, from its host-stopped event (graceful | cut-short | "
      "none)")
async def host_last_stop(ctx: FactContext) -> FactResult:
    stopped = _last_event(ctx, "host-stopped")
    if stopped is None:
        return FactResult("none", ["No host has stopped here yet (no host-stopped event)."])
    data = stopped.data or {}
    took, limit = data.get("took_s"), data.get("timeout_s")
    if took is None or limit is None:
        return FactResult("none", [f"The last stop ({_when(stopped.ts)}) recorded no timing: {stopped.message}."])
    line = (f"The last stop ({_when(stopped.ts)}) took {float(took):.1f}s; each of its two waits (running commands, "
            f"then providers) had {float(limit):g}s.")
    if data.get("cut_short"):
        return FactResult("cut-short", [line, "A wait ran out: commands or providers were cut short (see the "
                                               "cleanup-failed events)."])
    return FactResult("graceful", [line])


_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(msec|ms|minutes?|min|m|seconds?|sec|s|hours?|hr|h)?")  # longest first
_SPAN_UNIT_S = {"ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
                "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}


def timespan_s(text: str) -> float | None:
    """A systemd time span ("30", "1min 30s", "500ms") in seconds; None for "infinity" or
    anything else it cannot read."""
    text = text.strip()
    if not text or text == "infinity":
        return None
    total, rest = 0.0, text
    for match in _SPAN.finditer(text):
        total += float(match[1]) * _SPAN_UNIT_S[match[2] or "s"]
        rest = rest.replace(match[0], "", 1)
    return total if not rest.strip() else None


def read_unit(path: Path) -> dict[str, str]:
    """The [Service] section of a unit file, its last assignment of each key winning."""
    service: dict[str, str] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            name, _, value = line.partition("=")
            service[name.strip()] = value.strip()
    return service


@fact("deploy.unit", "the systemd unit's restart, watchdog and stop timeout against the host's own stop "
      "(ok | short-stop-timeout | no-restart | template-only | not-found); args unit")
async def deploy_unit(ctx: FactContext) -> FactResult:
    given = ctx.args.get("unit")
    paths = [Path(str(given))] if given else [*UNIT_PATHS, SHIPPED_UNIT]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        return FactResult("not-found", ["No unit file found: looked at " + ", ".join(str(p) for p in paths) + "."])
    unit = read_unit(path)
    label = "the shipped template" if path == SHIPPED_UNIT else str(path)
    if path == SHIPPED_UNIT:  # nothing installed: the template says nothing about what runs the host
        return FactResult("template-only", [f"No oneiric unit is installed on this machine (looked at "
                                            f"{', '.join(str(p) for p in UNIT_PATHS)}); the shipped template "
                                            f"({SHIPPED_UNIT}) is not what supervises the host."])
    wait = float(ctx.engine.settings.app.lifecycle.cleanup_timeout)
    stop = timespan_s(unit.get("TimeoutStopSec", "90s"))
    lines = [f"{label}: Type={unit.get('Type', 'simple')}, Restart={unit.get('Restart', 'no')}, "
             f"RestartSec={unit.get('RestartSec', '100ms')}, WatchdogSec={unit.get('WatchdogSec', 'off')}, "
             f"TimeoutStopSec={unit.get('TimeoutStopSec', '90s (the default)')}.",
             f"The host's stop waits up to {wait:g}s for running commands, then {wait:g}s for providers "
             "(app.yml lifecycle.cleanup_timeout), and asks systemd for more (EXTEND_TIMEOUT_USEC) while it drains."]
    if unit.get("Restart", "no") == "no":
        return FactResult("no-restart", [*lines, "Restart=no: a host that dies stays down."], data={"unit": str(path)})
    if stop is not None and stop < 2 * wait:
        return FactResult("short-stop-timeout", [*lines, f"TimeoutStopSec ({stop:g}s) is shorter than the host's "
                                                        f"two waits ({2 * wait:g}s): systemd may kill it mid-stop."],
                          data={"unit": str(path)})
    return FactResult("ok", lines, data={"unit": str(path)})


# -- observability data on disk --------------------------------------------------------------------

LOW_FREE_FRACTION = 0.10
CRITICAL_FREE_FRACTION = 0.02
PRUNE_OVERDUE_S = 2 * 3600  # the host prunes at start and hourly (host_session.PRUNE_EVERY_S)


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


@fact("journal.storage", "the journal on disk against its retention (within | over-age | over-rows | held): "
      "rows, store size, oldest row's age")
async def journal_storage(ctx: FactContext) -> FactResult:
    from ..retention import status_line

    store, options = ctx.engine.store, ctx.engine.settings.app.journal
    rows = store.count_journal()
    lines = [f"{rows:,} journal rows in {store.path} ({_mb(store.file_bytes())} with its WAL); retention keeps "
             f"{options.max_age_days:g} days and at most {options.max_rows:,} rows (app.yml journal)."]
    oldest = store.oldest_journal_row()
    age_days = None
    if oldest is not None:
        age_days = (time.time() - oldest[1]) / 86400
        lines.append(f"The oldest row (#{oldest[0]}, {_when(oldest[1])}) is {age_days:.1f} days old.")
    held = status_line(store)
    if held:
        return FactResult("held", [*lines, held])
    if age_days is not None and age_days > options.max_age_days + 1:
        return FactResult("over-age", [*lines, "Rows older than the retention remain: the last prune did not run "
                                              "or did not finish."])
    if rows > options.max_rows * 1.1:
        return FactResult("over-rows", [*lines, "More rows than journal.max_rows remain."])
    return FactResult("within", lines)


@fact("journal.last_prune", "the host's last journal prune (recent | overdue | never | interrupted): when, rows, "
      "time taken")
async def journal_last_prune(ctx: FactContext) -> FactResult:
    from ..retention import last_report

    report = last_report(ctx.engine.store)
    if not report:
        return FactResult("never", ["No prune has run here: a host prunes at start and every hour."])
    at = float(report.get("at") or 0)
    line = (f"The last prune ({_when(at)}) removed {int(report.get('pruned') or 0):,} rows in "
            f"{float(report.get('took_s') or 0):.1f}s and handed back {int(report.get('pages_reclaimed') or 0):,} "
            f"pages; the store went from {_mb(report.get('bytes_before') or 0)} "
            f"to {_mb(report.get('bytes_after') or 0)}.")
    lines = [line]
    if report.get("not_reclaimed"):
        lines.append(f"The file keeps its size: {report['not_reclaimed']}.")
    if report.get("interrupted"):
        return FactResult("interrupted", [*lines, "It stopped early because its host stopped; the next one goes on."])
    if time.time() - at > PRUNE_OVERDUE_S:
        return FactResult("overdue", [*lines, f"That is {(time.time() - at) / 3600:.1f} h ago; a running host prunes "
                                              "hourly, so none runs or its prunes fail (store-error events)."])
    return FactResult("recent", lines)


@fact("state.disk", "free space on the state directory's file system (ok | low | critical)")
async def state_disk(ctx: FactContext) -> FactResult:
    path = Path(ctx.engine.state_dir)
    usage = shutil.disk_usage(path)
    free = usage.free / usage.total if usage.total else 0.0
    inodes = os.statvfs(path)
    inode_free = inodes.f_favail / inodes.f_files if inodes.f_files else 1.0
    lines = [f"{path}: {_mb(usage.free)} free of {_mb(usage.total)} ({free:.0%}); inodes {inode_free:.0%} free."]
    worst = min(free, inode_free)
    if worst < CRITICAL_FREE_FRACTION:
        return FactResult("critical", [*lines, "Under 2% free: the next write may fail with 'no space left' and the "
                                               "store opens read-only."])
    if worst < LOW_FREE_FRACTION:
        return FactResult("low", [*lines, "Under 10% free."])
    return FactResult("ok", lines)


# -- telemetry performance -------------------------------------------------------------------------

# The batch span processor's and the sampler's variables (OpenTelemetry SDK configuration), with
# the SDK's defaults.
PIPELINE_VARIABLES = {
    "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    "OTEL_TRACES_SAMPLER_ARG": "(none)",
    "OTEL_BSP_SCHEDULE_DELAY": "5000 ms",
    "OTEL_BSP_MAX_QUEUE_SIZE": "2048",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512",
    "OTEL_BSP_EXPORT_TIMEOUT": "30000 ms",
    "OTEL_METRIC_EXPORT_INTERVAL": "60000 ms",
}
OVERHEAD_HIGH_US = 500.0  # per swap: telemetry costing more than this is worth tuning (a swap takes ~1 ms)


@fact("telemetry.exporter", "the telemetry exporter's state as the host reports it (off | exporting | failing | "
      "unavailable | idle | disabled | unknown)")
async def telemetry_exporter(ctx: FactContext) -> FactResult:
    status = ctx.engine.telemetry_status()
    lines = [status.describe()]
    if status.problem:
        lines.append(status.problem)
    if status.failing:
        lines.append("failing signals: " + ", ".join(status.failing))
    return FactResult(status.state, lines, sets={"endpoint": status.destination or ""})


@fact("telemetry.reachable", "whether the OTLP endpoint accepts connections (reachable | unreachable | "
      "not-configured)")
async def telemetry_reachable(ctx: FactContext) -> FactResult:
    from ..telemetry_config import TelemetryConfig

    config = TelemetryConfig.resolve(ctx.engine.settings.app.telemetry)
    if config.exporter != "otlp":
        return FactResult("not-configured", [f"The exporter is {config.exporter}: there is no endpoint to reach."])
    lines, reachable = [], True
    for url in sorted(set(config.endpoints.values())):
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        ok, sentence = await tcp_check(parts.hostname or "localhost", port)
        reachable = reachable and ok
        lines.append(f"{url}: {sentence}")
    return FactResult("reachable" if reachable else "unreachable", lines)


@fact("telemetry.pipeline", "sampling, batch and queue settings in this process's environment (defaults | tuned)")
async def telemetry_pipeline(ctx: FactContext) -> FactResult:
    set_here = {name: os.environ[name] for name in PIPELINE_VARIABLES if os.environ.get(name, "").strip()}
    lines = [f"{name}={set_here.get(name, default + ' (SDK default)')}" for name, default in PIPELINE_VARIABLES.items()]
    lines.append("These are this process's variables; the host's come from its unit (Environment=) or shell.")
    return FactResult("tuned" if set_here else "defaults", lines)


@fact("telemetry.overhead", "what recording a swap's telemetry costs in this process (low | high): its spans "
      "and metrics, timed")
async def telemetry_overhead(ctx: FactContext) -> FactResult:
    from ..telemetry import Telemetry, component

    telemetry = Telemetry()  # in memory, exporting nothing: the recording cost alone
    runs = int(ctx.args.get("runs", 200))
    samples = []
    try:
        attributes = component("adapter", "cache", "memory")
        for _ in range(runs):
            started = time.perf_counter()
            with telemetry.span("lifecycle.swap", attributes):  # the spans lifecycle.py records
                for child in ("lifecycle.build", "lifecycle.health_gate", "lifecycle.bind", "lifecycle.cleanup"):
                    with telemetry.span(child, attributes):
                        pass
            telemetry.record_swap(domain="adapter", key="cache", provider="memory", outcome="complete",
                                  duration_s=0.001)
            samples.append((time.perf_counter() - started) * 1e6)
    finally:
        telemetry.shutdown()
    median = statistics.median(samples)
    lines = [f"A swap's telemetry (5 spans and its metrics) takes {median:.0f} µs to record here (median of {runs}); "
             f"over {OVERHEAD_HIGH_US:g} µs is worth tuning. Exporting happens off the event loop, in batches."]
    return FactResult("high" if median > OVERHEAD_HIGH_US else "low", lines, data={"median_us": median})


# -- the maintenance calendar ----------------------------------------------------------------------

@fact("maintenance.window", "a maintenance window declared for the key (open | upcoming | none)", ("domain", "key"))
async def maintenance_window(ctx: FactContext) -> FactResult:
    from ..maintenance import Calendar, when

    ref = ctx.ref
    wanted, now = f"{ref.domain.value}/{ref.key}", time.time()
    windows = [w for w in Calendar(ctx.engine).windows()
               if not w.cancelled and w.state(now) in ("open", "upcoming") and (not w.keys or wanted in w.keys)]
    if not windows:
        return FactResult("none", [f"No open or coming maintenance window covers {wanted} (oneiric maintenance "
                                   "windows lists them)."])
    window = sorted(windows, key=lambda w: (w.state(now) != "open", w.start))[0]
    state = window.state(now)
    return FactResult(state, [f"Window #{window.id} ({state}): {when(window.start)} to {when(window.end)} for "
                              f"{', '.join(window.keys) or 'every key'}" + (f": {window.note}" if window.note else "")
                              + f". Its notice: oneiric maintenance notice pre --window {window.id}."],
                      sets={"window_id": window.id})


@fact("maintenance.due", "routine maintenance tasks (overdue | due | ok), from the calendar in settings")
async def maintenance_due(ctx: FactContext) -> FactResult:
    from ..maintenance import Calendar, when

    now = time.time()
    states = Calendar(ctx.engine).states(now)
    late = [s for s in states if s.status(now) in ("overdue", "due")]
    lines = [f"{s.task.id}: {s.status(now)} (last done {when(s.last_done_at) if s.last_done_at else 'never'})"
             for s in late] or [f"All {len(states)} maintenance tasks are done within their cadence."]
    worst = "overdue" if any(s.status(now) == "overdue" for s in late) else ("due" if late else "ok")
    return FactResult(worst, lines)
