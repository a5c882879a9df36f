"""`oneiric supervisor-info`: what keeps the host running, in one look (upstream Oneiric's
command of that name; its runbooks attach the JSON to release notes): the host and its lease,
what supervises it (systemd, notify, watchdog, from its host-started event), how its last stop
went, the settings watcher, the remote refresh, what is paused or draining, telemetry."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from ..errors import ExitCode
from .output import print_json, say
from .parser import Commands
from .views import host_json, host_line

if TYPE_CHECKING:
    from ..engine import Engine
    from ..events import Event


def add_parsers(commands: Commands) -> None:
    commands.add("supervisor-info", "the host, its lease and supervisor (systemd, watchdog), its last stop, the "
                 "watcher, remote refresh, paused keys and telemetry", run=cmd_supervisor_info,
                 example=["oneiric supervisor-info", "oneiric supervisor-info --json > release-notes/host.json"])


def _last(engine: Engine, kind: str) -> Event | None:
    events = engine.journal(kinds=[kind], limit=1)
    return events[-1] if events else None


def cmd_supervisor_info(engine: Engine, args: argparse.Namespace) -> int:
    started, stopped = _last(engine, "host-started"), _last(engine, "host-stopped")
    records = engine.activity.all()
    remote = engine.remote.statuses()
    info = {
        "host": host_json(engine),
        "supervision": (started.data or {}).get("supervision") if started else None,
        "started_at": started.ts if started else None,
        "last_stop": ({**(stopped.data or {}), "at": stopped.ts} if stopped else None),
        "watcher": engine.watcher_status().to_dict(),
        "remote": [{"name": s.get("name"), "state": s.get("state"), "last_success_at": s.get("last_success_at"),
                    "breaker": (s.get("breaker") or {}).get("state")} for s in remote],
        "activity": {state: sum(1 for r in records if r.state == state) for state in ("paused", "draining", "drained")},
        "telemetry": engine.telemetry_status().to_dict(),
    }
    if args.json:
        print_json(info)
        return ExitCode.OK
    say(host_line(engine))
    sup = info["supervision"]
    if started is None:
        say("supervisor: unknown (no host has started here yet)")
    elif sup is None:
        say("supervisor: not recorded (the last host to start here predates this record)")
    else:
        watchdog = f", watchdog {sup['watchdog_s']:g}s" if sup.get("watchdog_s") else ", no watchdog"
        say("supervisor: " + (f"systemd ({'notify' if sup.get('notify') else 'no notify'}{watchdog})"
                              if sup.get("systemd") else "none (nothing restarts the host if it dies)"))
    last = info["last_stop"]
    if last and last.get("took_s") is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["at"]))
        say(f"last stop: {when}, took {last['took_s']:.1f}s (waits of {last['timeout_s']:g}s)"
            + ("; cut short" if last.get("cut_short") else ""))
    say(f"settings watcher: {engine.watcher_status().describe()}")
    for s in info["remote"]:
        say(f"remote {s['name']}: {s['state']}, breaker {s['breaker']}")
    say(", ".join(f"{n} {state}" for state, n in info["activity"].items()))
    say(engine.telemetry_status().describe())
    return ExitCode.OK
