"""Facts: small named checks over the engine, each returning a value and evidence in words.

A fact is `async def f(ctx) -> FactResult`. Its `value` is a short word the tree branches on
(`paused`, `open`, `rolled-back`, `yes`); `evidence` is what the operator reads; `sets` adds
parameters later text and actions use (`target`, `artifact`). Facts read the engine as any
front door does (`components()` works in the host and in a client); the few that need the
live host (`key.probe`) say so when they run elsewhere. Things the engine cannot know (an
external dashboard, a network path beyond this host) are questions in the trees, not facts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFound

if TYPE_CHECKING:
    from ..ports import FactsEngine


class MissingParam(Exception):
    """A fact or action needs a parameter (domain, key, source) the walk does not have yet."""

    def __init__(self, name: str) -> None:
        super().__init__(f"this step needs the parameter '{name}'")
        self.name = name


@dataclass
class FactResult:
    value: str
    evidence: list[str] = field(default_factory=list)
    sets: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "evidence": list(self.evidence), "sets": dict(self.sets)}


@dataclass
class FactContext:
    engine: FactsEngine
    params: dict[str, Any]
    args: dict[str, Any] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)  # node id -> times reached in this walk
    started_at: float = field(default_factory=time.time)

    def param(self, name: str) -> Any:
        value = self.params.get(name)
        if value in (None, ""):
            raise MissingParam(name)
        return value

    @property
    def ref(self) -> Any:
        return self.engine.known(self.param("domain"), self.param("key"))


@dataclass(frozen=True)
class Fact:
    name: str
    fn: Callable[[FactContext], Awaitable[FactResult]]
    summary: str
    needs: tuple[str, ...] = ()


FACTS: dict[str, Fact] = {}


def fact(name: str, summary: str, needs: tuple[str, ...] = ()) -> Callable[[Any], Any]:
    def register(fn: Callable[[FactContext], Awaitable[FactResult]]) -> Any:
        FACTS[name] = Fact(name, fn, summary, needs)
        return fn

    return register


async def evaluate(name: str, ctx: FactContext) -> FactResult:
    """Run fact `name`; an engine error becomes the value `error` with its sentence as evidence."""
    from ..errors import OneiricError

    spec = FACTS[name]
    for needed in spec.needs:
        ctx.param(needed)
    try:
        return await spec.fn(ctx)
    except MissingParam:
        raise
    except NotFound as exc:
        return FactResult("not-found", [str(exc)])
    except OneiricError as exc:
        return FactResult("error", [str(exc)])


def _status(ctx: FactContext) -> Any:
    rows = ctx.engine.components([ctx.ref])
    if not rows:
        raise NotFound(f"{ctx.params['domain']}/{ctx.params['key']} has no candidates and no selection.")
    return rows[0]


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


# -- resolution ------------------------------------------------------------------------------------
@fact("key.candidates", "candidates registered for the key (none | one | several)", ("domain", "key"))
async def key_candidates(ctx: FactContext) -> FactResult:
    engine = ctx.engine
    ref = engine.ref(ctx.param("domain"), ctx.param("key"))
    cands = engine.registry.bucket(ref)
    if not cands:
        selection = engine.resolver.selection(ref)
        extra = f"; settings select '{selection}', which is not registered" if selection else ""
        return FactResult("none", [f"{ref} has no registered candidate{extra}."])
    exp = engine.explain(ref.domain, ref.key)
    lines = [f"#{r.rank} {r.candidate.provider} ({r.candidate.source}): {r.reason}" for r in exp.ranked]
    return FactResult("one" if len(cands) == 1 else "several", [f"{ref} has {len(cands)} candidate(s):", *lines])


@fact("key.winner", "whether the winner is the selected provider (applied | misconfigured | automatic)",
      ("domain", "key"))
async def key_winner(ctx: FactContext) -> FactResult:
    row = _status(ctx)
    if row.misconfigured:
        return FactResult("misconfigured", [row.misconfigured, f"fallback winner: {row.winner or 'none'}"],
                          sets={"target": row.selection})
    if row.selection:
        return FactResult("applied", [f"{row.ref} selects {row.selection}; winner {row.winner} ({row.winner_source})."],
                          sets={"target": row.selection})
    return FactResult("automatic", [f"{row.ref} has no selection; ranking picks {row.winner} ({row.winner_source})."])


@fact("key.activity", "pause/drain state of the key (active | paused | draining | drained)", ("domain", "key"))
async def key_activity(ctx: FactContext) -> FactResult:
    row = _status(ctx)
    lines = [f"{row.ref} is {row.activity}."]
    if row.activity != "active":
        lines.append(f"set by {row.activity_actor or 'unknown'}"
                     + (f": {row.activity_note}" if row.activity_note else ""))
        event = next(iter(reversed(ctx.engine.journal(kinds=["activity-changed"], domain=row.ref.domain,
                                                       key=row.ref.key, limit=1))), None)
        if event is not None:
            lines.append(f"since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(event.ts))}: {event.message}")
    return FactResult(row.activity, lines)


# -- lifecycle -------------------------------------------------------------------------------------
@fact("key.state", "lifecycle state (inactive | activating | ready | failed | stopping)", ("domain", "key"))
async def key_state(ctx: FactContext) -> FactResult:
    row = _status(ctx)
    lines = [f"{row.ref}: {row.state}, serving {row.serving or 'nothing'}"]
    if row.last_error:
        lines.append(f"last error: {row.last_error}")
    return FactResult(row.state, lines)


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


_SWAP_KINDS = ["swap-rollback", "swap-failed", "swap-complete"]


@fact("key.last_swap", "outcome of the key's last swap (complete | rolled-back | failed | refused | none); "
      "sets target to the provider it tried", ("domain", "key"))
async def key_last_swap(ctx: FactContext) -> FactResult:
    """The newest of what the host holds (its last swap or activation) and the journal's last swap
    event: a refused swap never reaches the lifecycle record, so the record alone would answer
    "complete" about the host's start-up activation after a swap was just refused."""
    row = _status(ctx)
    swap = row.last_swap
    event = next(iter(ctx.engine.journal(kinds=_SWAP_KINDS, domain=row.ref.domain, key=row.ref.key, limit=1)), None)
    same = swap is not None and event is not None and event.provider == swap.get("to") \
        and event.outcome == swap.get("outcome")  # the record's own swap, journaled as it finished
    if event is not None and not same and (not swap or event.ts > float(swap.get("finished_at") or 0)):
        outcome = {"swap-rollback": "rolled-back", "swap-failed": "failed"}.get(event.kind, "complete")
        if event.outcome in ("rolled-back", "failed", "refused", "complete", "noop"):
            outcome = event.outcome  # a refused swap is journaled as swap-failed with outcome refused
        return FactResult(outcome, [f"journal {event.kind} at {_clock(event.ts)}: {event.message}",
                                    f"serving now: {row.serving or 'nothing'}"],
                          sets={"target": event.provider} if event.provider else {})
    if not swap:
        return FactResult("none", [f"{row.ref} has no recorded swap (journal: no {', '.join(_SWAP_KINDS)} event)."])
    when = f" at {_clock(float(swap['finished_at']))}" if swap.get("finished_at") else ""
    lines = [f"last swap {swap.get('from') or 'nothing'} -> {swap.get('to')}{when}: {swap.get('outcome')}"]
    if swap.get("reason"):
        lines.append(f"reason: {swap['reason']}")
    health = swap.get("health")
    if health:
        lines.append(f"health gate: {health.get('status')} ({health.get('message')}, {_ms(health.get('latency_ms'))})")
    lines.append(f"serving now: {row.serving or 'nothing'}")
    return FactResult(str(swap.get("outcome")), lines, sets={"target": swap.get("to")}, data={"swap": swap})


def classify_error(text: str) -> str:
    t = text.lower()
    if "allow" in t and "list" in t:
        return "allowlist"
    if "timed out" in t or "timeout" in t:
        return "timeout"
    if "health" in t or "cannot reach" in t or "unhealthy" in t or "failed the" in t:
        return "health"
    if "import" in t or "factory" in t:
        return "factory"
    if "paused" in t or "draining" in t or "drained" in t:
        return "blocked"
    return "other"


@fact("key.error_class", "class of the last swap error (health | timeout | factory | allowlist | blocked | "
      "other | none)", ("domain", "key"))
async def key_error_class(ctx: FactContext) -> FactResult:
    row = _status(ctx)
    swap = row.last_swap or {}
    parts = [row.last_error or "", swap.get("reason") or ""]
    if swap.get("health"):
        parts.append(str(swap["health"].get("message") or ""))
    text = " ".join(dict.fromkeys(p.strip() for p in parts if p.strip()))  # the same sentence once
    if not text.strip() or swap.get("outcome") == "complete":
        return FactResult("none", [f"{row.ref}: no swap error recorded."])
    return FactResult(classify_error(text), [text])


@fact("key.health", "last known health (ok | degraded | failed | unknown) and latency", ("domain", "key"))
async def key_health(ctx: FactContext) -> FactResult:
    row = _status(ctx)
    return FactResult(row.health, [f"{row.ref} ({row.serving or 'nothing serving'}): {row.health}, "
                                   f"{_ms(row.latency_ms)}"
                                   + (f": {row.health_message}" if row.health_message else "")])


@fact("key.probe", "probe the serving provider now (ok | degraded | failed | nothing-serving | no-host: no host "
      "runs, so nothing serves; the winner, built here, passed its probe)", ("domain", "key"))
async def key_probe(ctx: FactContext) -> FactResult:
    engine, ref = ctx.engine, ctx.ref
    if engine.is_host:
        track = await engine.probe(ref.domain, ref.key, journal=True)
        if track is None:
            return FactResult("nothing-serving", [f"{ref}: nothing is serving."])
        return FactResult(track.status.value, [f"{ref} ({track.provider}) probed: {track.status.value} in "
                                               f"{_ms(track.latency_ms)}"
                                               + (f": {track.message}" if track.message else "")])
    lease, alive = engine.host()
    if alive:
        from ..operator_port import connect

        result = await connect(engine).probe(ref.domain.value, ref.key)
        value = "ok" if result.exit_code == 0 else "failed"
        return FactResult(value, [result.message or f"the host probed {ref}: {value}"])
    cand, health = await engine.probe_candidate(ref.domain, ref.key)
    # "ok" would say it serves: with no host nothing does, however well it probes here
    value = "no-host" if health.status.value in ("ok", "degraded") else health.status.value
    return FactResult(value, [f"no host runs, so nothing serves {ref}; built {cand.provider} here and probed it: "
                              f"{health.status.value} ({health.message})"])


@fact("key.serving_target", "whether the provider the walk aims at (target) serves and is healthy "
      "(yes | not-serving | unhealthy)", ("domain", "key", "target"))
async def key_serving_target(ctx: FactContext) -> FactResult:
    row = _status(ctx)
    target = ctx.param("target")
    if row.serving != target:
        return FactResult("not-serving", [f"{row.ref} is served by {row.serving or 'nothing'}, not {target}."])
    if row.health == "failed":
        return FactResult("unhealthy", [f"{target} serves {row.ref} but its health is failed: {row.health_message}"])
    return FactResult("yes", [f"{target} serves {row.ref} ({row.state}), health {row.health} {_ms(row.latency_ms)}."])


@fact("key.activating_age", "how long the key has been activating (over-timeout | within-timeout | "
      "not-activating)", ("domain", "key"))
async def key_activating_age(ctx: FactContext) -> FactResult:
    engine = ctx.engine
    row = _status(ctx)
    if row.state != "activating":
        return FactResult("not-activating", [f"{row.ref} is {row.state}."])
    timeout = engine.settings.app.lifecycle.activation_timeout
    started = next(iter(engine.journal(kinds=["swap-started"], domain=row.ref.domain, key=row.ref.key, limit=1)), None)
    age = time.time() - started.ts if started else 0.0
    value = "over-timeout" if age > timeout else "within-timeout"
    return FactResult(value, [f"{row.ref} has been activating for {age:.0f} s (activation_timeout {timeout:g} s)."])


# -- the host ----------------------------------------------------------------------------------
@fact("host.restarted", "whether a host started since the walk started (restarted | not-restarted | no-host), "
      "from the journal's host-started events and the lease")
async def host_restarted(ctx: FactContext) -> FactResult:
    """'I restarted it' is the operator's word; a host journals host-started when it starts."""
    engine = ctx.engine
    since = f"since the walk started at {_clock(ctx.started_at)}"
    started = ctx.engine.journal(kinds=["host-started"], since_ts=ctx.started_at, limit=20)
    lease, alive = engine.host()
    running = (f"the host now is pid {lease.pid} on {lease.hostname}, up since {_clock(lease.started_at)}"
               if lease is not None and alive else "no host runs now")
    if started:
        return FactResult("restarted", [f"{len(started)} host start(s) {since}; the last at {_clock(started[-1].ts)}: "
                                        f"{started[-1].message}; {running}."])
    if lease is None or not alive:
        return FactResult("no-host", [f"no host started {since}, and {running}."])
    return FactResult("not-restarted", [f"no host-started event {since}: {running}."])


# -- providers -------------------------------------------------------------------------------------
def _candidate(ctx: FactContext) -> Any:
    ref, target = ctx.ref, ctx.param("target")
    for cand in ctx.engine.registry.bucket(ref):
        if cand.provider == target:
            return cand
    raise NotFound(f"{ref} has no candidate named '{target}'.")


@fact("provider.settings", "whether the target provider has settings (present | empty)", ("domain", "key", "target"))
async def provider_settings(ctx: FactContext) -> FactResult:
    cand = _candidate(ctx)
    if not cand.settings:
        return FactResult("empty", [f"{cand.provider} has no settings for {ctx.ref}."])
    shown = ", ".join(f"{k}={'***' if 'pass' in k or 'secret' in k else v}" for k, v in sorted(cand.settings.items()))
    return FactResult("present", [f"{cand.provider} settings: {shown}"])


@fact("provider.reachable", "TCP connect to the target's host:port from its settings (reachable | "
      "unreachable | no-endpoint)", ("domain", "key", "target"))
async def provider_reachable(ctx: FactContext) -> FactResult:
    cand = _candidate(ctx)
    host, port = cand.settings.get("host"), cand.settings.get("port")
    if not host or not port:
        return FactResult("no-endpoint", [f"{cand.provider} has no host/port in its settings."])
    reachable, sentence = await tcp_check(str(host), int(port))
    return FactResult("reachable" if reachable else "unreachable", [sentence])


async def tcp_check(host: str, port: int, timeout_s: float = 2.0) -> tuple[bool, str]:
    """Whether host:port accepts a TCP connection, and the sentence that says so."""
    started = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, ConnectionRefusedError):
            why = "connection refused (nothing listens there)"
        elif isinstance(exc, TimeoutError):
            why = f"no answer within {timeout_s:g} s"
        else:
            why = exc.strerror or type(exc).__name__
        return False, f"cannot connect to {host}:{port}: {why}."
    writer.close()
    return True, f"{host}:{port} accepts connections ({(time.perf_counter() - started) * 1000:.1f} ms)."


@fact("provider.importable", "whether the target's factory module can be found (yes | no)", ("domain", "key", "target"))
async def provider_importable(ctx: FactContext) -> FactResult:
    import importlib.util

    cand = _candidate(ctx)
    module = cand.factory.split(":", 1)[0]
    from ..factories import module_allowed

    allowed = module_allowed(module, ctx.engine.settings.app.factory_allowlist)
    if not allowed:
        return FactResult("no", [f"{cand.factory} is outside factory_allowlist in app.yml."])
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return FactResult("yes" if found else "no", [f"module {module} {'is' if found else 'is not'} importable."])


# -- settings and watcher --------------------------------------------------------------------------
@fact("config.parse", "does every settings file parse and validate (ok | invalid), with file:line:column")
async def config_parse(ctx: FactContext) -> FactResult:
    from ..settings import validate_dir

    problems = validate_dir(ctx.engine.settings_dir)
    if not problems:
        return FactResult("ok", [f"every settings file in {ctx.engine.settings_dir} parses and validates."])
    first = problems[0]
    return FactResult("invalid",
                      [str(p) for p in problems] + ["the last good version of each broken file stays in force."],
                      sets={"file": str(first.file), "line": first.line, "column": first.column},
                      data={"problems": [p.to_dict() for p in problems]})


@fact("config.selection_applied", "whether what settings select is what serves (same | pending: a proposal to "
      "apply it waits | differs | no-selection)", ("domain", "key"))
async def config_selection_applied(ctx: FactContext) -> FactResult:
    row = _status(ctx)
    if not row.selection:
        return FactResult("no-selection", [f"{row.ref} has no selection in settings."])
    if row.serving == row.selection:
        return FactResult("same", [f"{row.ref}: settings select {row.selection} and it serves."])
    proposal = row.proposal or {}
    if proposal.get("to") == row.selection:
        return FactResult("pending", [f"{row.ref}: settings select {row.selection}, {row.serving or 'nothing'} serves "
                                      f"until proposal #{proposal['id']} (requested by {proposal.get('requested_by')}, "
                                      f"{proposal.get('source')}) is approved."],
                          sets={"target": row.selection, "proposal": proposal["id"]})
    return FactResult("differs", [f"{row.ref}: settings select {row.selection}, {row.serving or 'nothing'} serves, "
                                  "and no proposal to change that waits."], sets={"target": row.selection})


_FILE_EVENTS = ["config-changed", "config-invalid", "config-recovered"]


@fact("config.edited", "whether the key's settings file changed since the walk started (changed: the host applied "
      "or refused a new version | saved: written since, with no watcher to pick it up | unchanged), from the "
      "journal's config-changed / config-invalid / config-recovered events and the file's time", ("domain",))
async def config_edited(ctx: FactContext) -> FactResult:
    """'I edited the file' is the operator's word; this is the host's: it journals every change
    it applies to a settings file (and every version that does not parse). A file saved with
    the same content, or an edit of another file, is no change here. With the watcher down
    nothing is journaled, so the file's modification time is all there is: `saved`."""
    from ..domains import Domain

    name = f"{Domain.parse(ctx.param('domain')).value}s.yml"
    path = (ctx.engine.settings_dir / name).resolve()
    events = [e for e in ctx.engine.journal(kinds=_FILE_EVENTS, since_ts=ctx.started_at, limit=200)
              if Path(str(e.data.get("file") or "")).resolve() == path]
    since = f"since the walk started at {_clock(ctx.started_at)}"
    if events:
        last = events[-1]
        return FactResult("changed", [f"{len(events)} change(s) of {path} {since}; the last, at {_clock(last.ts)} "
                                      f"({last.kind}): {last.message}"])
    try:
        mtime: float | None = path.stat().st_mtime
    except OSError:
        mtime = None
    written = f"the file was last written at {_clock(mtime)}" if mtime is not None else "the file does not exist"
    watching = bool(ctx.engine.watcher_status().to_dict().get("alive"))
    if mtime is not None and mtime >= ctx.started_at - 1.0 and not watching:  # 1 s: coarse file clocks
        return FactResult("saved", [f"{written}, {since}, but no settings watcher runs to apply it (no "
                                    f"{', '.join(_FILE_EVENTS)} event for it yet)."])
    return FactResult("unchanged", [f"the host applied no change to {path} {since} (no {', '.join(_FILE_EVENTS)} "
                                    f"event for it); {written}."])


@fact("watcher.alive", "whether the settings watcher picks up edits (alive | down | no-host)")
async def watcher_alive(ctx: FactContext) -> FactResult:
    lease, alive = ctx.engine.host()
    if lease is None or not alive:
        return FactResult("no-host", ["no host is running, so no watcher is needed: a host reads the settings as "
                                      "they are when it starts (the console, or 'oneiric run')."])
    status = ctx.engine.watcher_status()
    data = status.to_dict()
    reason = data.get("reason") or ""
    return FactResult("alive" if data.get("alive") else "down",
                      [f"settings watcher: {data.get('state')}" + (f" ({reason})" if reason else "")])


# -- remote ----------------------------------------------------------------------------------------
def _sources(ctx: FactContext) -> list[dict[str, Any]]:
    statuses = ctx.engine.remote.statuses()
    wanted = ctx.params.get("source")
    if wanted:
        statuses = [s for s in statuses if s["name"] == str(wanted).removeprefix("remote:")]
    return statuses


@fact("remote.configured", "whether any remote source is configured (yes | no)")
async def remote_configured(ctx: FactContext) -> FactResult:
    statuses = _sources(ctx)
    if not statuses:
        return FactResult("no", ["app.yml configures no remote source (or not the one asked for)."])
    return FactResult("yes", [f"{s['name']}: {s['uri']} ({s['state']})" for s in statuses])


@fact("remote.sync", "sync health of the remote sources, the worst one's (ok | pending | stale | failing)")
async def remote_sync(ctx: FactContext) -> FactResult:
    statuses = _sources(ctx)
    if not statuses:
        return FactResult("ok", ["no remote source is configured."])
    order = ("ok", "pending", "stale", "failing")
    worst = "ok"
    lines = []
    for s in statuses:
        # failing: the last attempts failed; stale: no failure, but no good sync for too long
        # (e.g. the refresh loop stopped); pending: never synced yet.
        state = "failing" if s["consecutive_failures"] else s["state"] if s["state"] in order else "ok"
        if order.index(state) > order.index(worst):
            worst = state
        age = f"{s['age_s']:.0f} s ago" if s.get("age_s") is not None else "never"
        lines.append(f"{s['name']}: {s['state']}, last success {age}, {s['consecutive_failures']} consecutive "
                     "failure(s)"
                     + (f"; last error ({s.get('last_error_kind')}): {s['last_error']}" if s.get("last_error") else ""))
    return FactResult(worst, lines)


@fact("remote.breaker", "circuit breaker of the remote sources (open | half-open | closed)")
async def remote_breaker(ctx: FactContext) -> FactResult:
    statuses = _sources(ctx)
    order = {"closed": 0, "half-open": 1, "open": 2}
    worst, lines = "closed", []
    for s in statuses:
        state = (s.get("breaker") or {}).get("state", "closed")
        if order.get(state, 0) > order[worst]:
            worst = state
        retry = (s.get("breaker") or {}).get("retry_at")
        when = f", next trial in {max(0.0, retry - time.time()):.0f} s" if retry and state == "open" else ""
        lines.append(f"{s['name']}: breaker {state}{when}")
    if statuses and worst != "closed":
        ctx.params.setdefault("source", statuses[0]["name"])
    return FactResult(worst, lines or ["no remote source is configured."])


@fact("remote.error_class", "class of the last remote error (network | http | signature | digest | parse | "
      "expired: the publisher let it expire | replay: an older version or other content under the same one | "
      "other | none)")
async def remote_error_class(ctx: FactContext) -> FactResult:
    statuses = [s for s in _sources(ctx) if s.get("consecutive_failures")]
    if not statuses:
        return FactResult("none", ["no remote source is failing."])
    s = statuses[0]
    kind = str(s.get("last_error_kind") or "other")
    mapping = {"unreachable": "network", "timeout": "network", "http-status": "http", "signature": "signature",
               "digest": "digest", "parse": "parse", "schema": "parse", "too-large": "parse",
               "too-deep": "parse", "expired": "expired", "rollback": "replay"}
    return FactResult(mapping.get(kind, "other"), [f"{s['name']} ({kind}): {s.get('last_error')}"],
                      sets={"source": s["name"]})


_SIGNATURE_ORDER = ("verified", "unknown", "unverified", "unsigned", "failed")  # worst last


@fact("remote.signature", "signature status of the manifests in force, the worst source's (verified | unknown | "
      "unverified | unsigned | failed)")
async def remote_signature(ctx: FactContext) -> FactResult:
    statuses = _sources(ctx)
    if not statuses:
        return FactResult("unknown", ["no remote source is configured."])
    worst, lines = "verified", []
    for s in statuses:
        sig = s.get("signature") or {}  # the Verification of the manifest in force, if any
        if s.get("last_error_kind") == "signature" and s.get("consecutive_failures"):
            state, why = "failed", str(s.get("last_error") or "")
        elif not sig:
            state, why = "unknown", "no manifest verified yet"
        else:
            state = str(sig.get("status") or "unknown")
            state = state if state in _SIGNATURE_ORDER else "unknown"
            keys = ", ".join(sig.get("key_ids") or [])
            why = str(sig.get("reason") or (f"by {keys}" if keys else ""))
        if _SIGNATURE_ORDER.index(state) > _SIGNATURE_ORDER.index(worst):
            worst = state
        lines.append(f"{s['name']}: signature {state}" + (f" ({why})" if why else ""))
    return FactResult(worst, lines)


@fact("remote.signature_failure", "why the last refused manifest's signatures failed, the worst source's "
      "(tampered: a trusted key's signature does not match | rotated: signed only by keys not trusted here | "
      "unsigned | none)")
async def remote_signature_failure(ctx: FactContext) -> FactResult:
    statuses = _sources(ctx)
    order = ("none", "unsigned", "rotated", "tampered")
    worst, lines, unknown_all = "none", [], []
    for s in statuses:
        failure = s.get("signature_failure") if s.get("last_error_kind") == "signature" else None
        if not failure:
            lines.append(f"{s['name']}: no manifest refused for its signatures"
                         + (f" (last error: {s.get('last_error_kind')})" if s.get("last_error_kind") else ""))
            continue
        invalid, unknown = list(failure.get("invalid") or []), list(failure.get("unknown") or [])
        unknown_all += [k for k in unknown if k not in unknown_all]
        if invalid:
            state = "tampered"
            why = (f"the signature of trusted key {', '.join(invalid)} does not match the content: it was changed "
                   "after signing, or signed by someone else under that id")
        elif unknown:
            state = "rotated"
            why = f"signed only by {', '.join(unknown)}, not trusted here (a new signing key?)"
        else:
            state, why = "unsigned", str(failure.get("reason") or "the manifest carries no signature")
        if order.index(state) > order.index(worst):
            worst = state
        lines.append(f"{s['name']}: {why}")
    if not statuses:
        lines = ["no remote source is configured."]
    return FactResult(worst, lines, sets={"unknown_keys": ", ".join(unknown_all) or "a key the manifest does not name"})


@fact("remote.loop", "whether the host's refresh loops run (alive | dead | not-host)")
async def remote_loop(ctx: FactContext) -> FactResult:
    engine = ctx.engine
    if not engine.is_host:
        return FactResult("not-host", ["this process is not the host; the host runs the refresh loops."])
    dead = [name for name in engine.remote.sources if not engine.remote.loop_alive(name)]
    if dead:
        return FactResult("dead", [f"refresh loop not running for: {', '.join(dead)}"])
    return FactResult("alive", [f"refresh loops running: {', '.join(engine.remote.sources) or 'none configured'}"])


@fact("cache.digest_scan", "hash every cached artifact against its name (clean | one-corrupt | several-corrupt)")
async def cache_digest_scan(ctx: FactContext) -> FactResult:
    import hashlib

    root = ctx.engine.state_dir / "remote" / "artifacts"
    if not root.is_dir():
        return FactResult("clean", [f"no cached artifacts under {root}."])

    def scan() -> tuple[int, list[str]]:
        count, bad = 0, []
        for path in sorted(root.iterdir()):
            if not path.is_file() or len(path.name) != 64:
                continue
            count += 1
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != path.name.lower():
                bad.append(path.name)
        return count, bad

    count, bad = await asyncio.to_thread(scan)
    if not bad:
        return FactResult("clean", [f"{count} cached artifact(s), every digest matches."])
    value = "one-corrupt" if len(bad) == 1 else "several-corrupt"
    return FactResult(value, [f"{len(bad)} of {count} cached artifact(s) do not match their sha256: "
                              + ", ".join(b[:12] for b in bad)],
                      sets={"artifact": bad[0], "artifact_short": bad[0][:12]})


# -- journal and registry --------------------------------------------------------------------------
@fact("journal.count", "count journal events of a kind over a window (above | below); args kind, "
      "window_s, threshold, per_key")
async def journal_count(ctx: FactContext) -> FactResult:
    kind = str(ctx.args.get("kind", "swap-rollback"))
    window = float(ctx.args.get("window_s", 3600))
    threshold = int(ctx.args.get("threshold", 3))
    scope: dict[str, Any] = {}
    if ctx.args.get("per_key"):
        ref = ctx.ref
        scope = {"domain": ref.domain, "key": ref.key}
    count = ctx.engine.store.count_journal(kind=kind, since_ts=time.time() - window, **scope)
    events = ctx.engine.journal(kinds=[kind], since_ts=time.time() - window, limit=500, **scope)
    by: dict[str, int] = {}
    for e in events:
        label = f"{e.ref_text} {e.provider or ''}".strip()
        by[label] = by.get(label, 0) + 1
    lines = [f"{count} '{kind}' event(s) in the last {window / 60:g} min (threshold {threshold})."]
    lines += [f"{label}: {n}" for label, n in sorted(by.items(), key=lambda kv: -kv[1])[:5]]
    value = "above" if count >= threshold else "below"
    top = max(by, key=lambda label: by[label]) if by else None
    sets = {}
    if top and value == "above" and " " in top and "/" in top:
        ref_text, provider = top.split(" ", 1)
        domain, key = ref_text.split("/", 1)
        sets = {"domain": ctx.params.get("domain") or domain, "key": ctx.params.get("key") or key, "target": provider}
    return FactResult(value, lines, sets=sets)


@fact("registry.shadowed", "whether shadowed candidates increased within a window, against the registry "
      "census the host journals at start and at every settings or manifest change (increasing | steady | "
      "unknown: no census to compare with); args threshold, window_s (3600)")
async def registry_shadowed(ctx: FactContext) -> FactResult:
    """An increase, not a total: many shadowed candidates that were all there an hour ago are
    not 'increasing'. The count now is compared with the newest census journaled before the
    window began (or, when the host started within the window, its start)."""
    from ..engine import CENSUS_KINDS

    threshold = int(ctx.args.get("threshold", 10))
    window = float(ctx.args.get("window_s", 3600))
    cutoff = time.time() - window
    rows = ctx.engine.components()
    total = sum(r.shadowed for r in rows)
    census = [e for e in ctx.engine.journal(kinds=sorted(CENSUS_KINDS), limit=500)
              if isinstance(e.data.get("registry"), dict)]
    before = [e for e in census if e.ts <= cutoff]
    baseline = before[-1] if before else (census[0] if census else None)
    top = sorted(rows, key=lambda r: -r.shadowed)[:5]
    sources: dict[str, int] = {}
    for cand in ctx.engine.registry.all():
        sources[cand.source] = sources.get(cand.source, 0) + 1
    detail = [f"{r.ref}: {r.candidates} candidates, {r.shadowed} shadowed" for r in top if r.shadowed]
    detail.append("by source: " + ", ".join(f"{s} {n}" for s, n in sorted(sources.items())))
    minutes = f"{window / 60:g} min"
    if baseline is None:
        return FactResult("unknown", [f"{total} shadowed candidate(s) now; the journal holds no registry census to "
                                      "compare with (a host journals one when it starts and at each settings or "
                                      "manifest change), so an increase cannot be measured.", *detail])
    then = int(baseline.data["registry"].get("shadowed", 0))
    grew = total - then
    since = (f"the newest census before the last {minutes}" if before else
             f"the oldest census in the journal, inside the last {minutes}")
    lines = [f"{total} shadowed candidate(s) now, {then} at {_clock(baseline.ts)} ({baseline.kind}, {since}): "
             f"{grew:+d} (threshold {threshold}).", *detail]
    return FactResult("increasing" if grew >= threshold else "steady", lines,
                      data={"now": total, "then": then, "baseline_ts": baseline.ts})


@fact("perf.resolve", "time 1,000 resolutions of the key in this process (slow | fast); args budget_us",
      ("domain", "key"))
async def perf_resolve(ctx: FactContext) -> FactResult:
    ref = ctx.ref
    budget = float(ctx.args.get("budget_us", 50))
    resolve = ctx.engine.resolver.resolve
    try:
        resolve(ref.domain, ref.key)
    except NotFound:
        return FactResult("fast", [f"{ref} does not resolve; nothing to time."])
    started = time.perf_counter()
    for _ in range(1000):
        resolve(ref.domain, ref.key)
    per = (time.perf_counter() - started) * 1000  # µs per call over 1000 calls
    cands = len(ctx.engine.registry.all())
    return FactResult("slow" if per > budget else "fast",
                      [f"resolve({ref}) takes {per:.2f} µs per call (budget {budget:g} µs); "
                       f"{cands} candidates registered."])


@fact("health.slow", "health of every serving key, slow or failing ones (slow | failing | ok | unknown: nothing "
      "serves); args slow_ms")
async def health_slow(ctx: FactContext) -> FactResult:
    slow_ms = float(ctx.args.get("slow_ms", 1000))
    rows = [r for r in ctx.engine.components() if r.serving]
    if not rows:
        return FactResult("unknown", ["nothing serves: no host has started the providers (start the console or "
                                      "'oneiric run'), so there is no health to judge."])
    failing = [r for r in rows if r.health == "failed"]
    slow = [r for r in rows if r.latency_ms is not None and r.latency_ms > slow_ms]
    lines = [f"{len(rows)} serving key(s); {len(failing)} failing, {len(slow)} slower than {slow_ms:g} ms."]
    lines += [f"{r.ref} ({r.serving}): {r.health} {_ms(r.latency_ms)} {r.health_message}".rstrip()
              for r in failing + slow][:10]
    return FactResult("failing" if failing else "slow" if slow else "ok", lines)


_TRIAGE_HINT = {  # the quick-reference symptom each triage value points at
    "failing": "swaps failing or rolling back (a key failed, rolled back or is unhealthy)",
    "blocked": "pause drain or resume a key, or components not resolving (a blocked key refuses work)",
    "remote": "remote sync failing or stale",
    "config": "config changes not applying (a settings file does not load)",
    "misconfigured": "components not resolving (a selection names a provider that is not registered)",
    "clear": "nothing in the engine; if users still see a problem, slow resolution or health checks",
}


def _triage_line(row: Any) -> str:
    """What is wrong with one key, blaming what failed: after a rolled-back swap the
    provider that serves is fine (it never stopped) and the one that failed is named."""
    serving = row.serving or "nothing"
    if row.state == "failed":
        return f"failing: {row.ref} (nothing serves it): {row.last_error or 'its provider failed to start'}"
    if row.health == "failed":
        return f"unhealthy: {row.ref} ({serving} serves it): {row.health_message or 'its health check failed'}"
    swap = row.last_swap or {}
    verb = "rolled back" if swap.get("outcome") == "rolled-back" else "failed"
    health = f"{serving} serves it, health {row.health}"
    return f"swap {verb}: {row.ref} to {swap.get('to') or '?'}: {swap.get('reason') or row.last_error or ''}; {health}"


ROLLBACK_WINDOW_S = 900.0  # a swap that rolled back longer ago than this is history, not a failure now


@fact("engine.overview", "triage: keys failing, blocked, misconfigured; remote and settings problems "
      "(failing | blocked | remote | config | misconfigured | clear); args rollbacks_within_s (900), "
      "since (walk: only rollbacks after the walk began count)")
async def engine_overview(ctx: FactContext) -> FactResult:
    rows = ctx.engine.components()
    cutoff = time.time() - float(ctx.args.get("rollbacks_within_s", ROLLBACK_WINDOW_S))
    if ctx.args.get("since") == "walk":  # "is it clear now?": what the mitigation did, not what started it
        cutoff = max(cutoff, ctx.started_at)

    def swap_failed(row: Any) -> bool:
        swap = row.last_swap or {}
        return swap.get("outcome") in ("rolled-back", "failed") and float(swap.get("finished_at") or 0) >= cutoff

    failing = [r for r in rows if r.state == "failed" or r.health == "failed" or swap_failed(r)]
    blocked = [r for r in rows if r.activity != "active"]
    misconfigured = [r for r in rows if r.misconfigured]
    remote = [s for s in ctx.engine.remote.statuses() if s.get("consecutive_failures")]
    problems = ctx.engine.settings.problems
    lines = [f"{len(rows)} keys: {len(failing)} failing or rolled back, {len(blocked)} paused/draining, "
             f"{len(misconfigured)} misconfigured; {len(remote)} remote source(s) failing; "
             f"{len(problems)} settings problem(s)."]
    lines += [_triage_line(r) for r in failing[:5]]
    lines += [f"{r.activity}: {r.ref}" for r in blocked[:5]]
    lines += [str(p) for p in problems[:3]]
    value = ("failing" if failing else "blocked" if blocked else "remote" if remote else
             "config" if problems else "misconfigured" if misconfigured else "clear")
    lines.insert(1, "suggests: " + _TRIAGE_HINT[value])
    sets: dict[str, Any] = {}
    pick = (failing or blocked or misconfigured)
    if pick:
        sets = {"domain": pick[0].ref.domain.value, "key": pick[0].ref.key}
    return FactResult(value, lines, sets=sets)


# -- the walk itself -------------------------------------------------------------------------------
@fact("walk.guard", "loop guard: a node visited too often or the walk too long (exceeded | continue); "
      "args node, max_visits, max_minutes")
async def walk_guard(ctx: FactContext) -> FactResult:
    node = str(ctx.args.get("node", ""))
    limit = int(ctx.args.get("max_visits", 3))
    minutes = float(ctx.args.get("max_minutes", 30))
    visits = ctx.visits.get(node, 0)
    elapsed = (time.time() - ctx.started_at) / 60
    if visits >= limit or elapsed >= minutes:
        return FactResult("exceeded", [f"'{node}' reached {visits} time(s) (limit {limit}); walk running "
                                       f"{elapsed:.0f} min (limit {minutes:g}): time to escalate."])
    return FactResult("continue", [f"'{node}' reached {visits} time(s) of {limit}; {elapsed:.0f} of {minutes:g} min."])


# Facts that change nothing and need no parameters or walk state: `oneiric runbook check` runs
# these once each; facts with parameters run for every key they apply to.
GLOBAL_SIDE_EFFECT_FREE = ("engine.overview", "config.parse", "watcher.alive", "remote.configured", "remote.sync",
                           "remote.breaker", "remote.error_class", "remote.signature", "cache.digest_scan",
                           "registry.shadowed", "health.slow", "journal.count")
