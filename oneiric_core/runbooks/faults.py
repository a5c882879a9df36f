"""Faults for drills: each one breaks (or, in `during:`, mends) one thing in a throw-away copy.

A drill (drills.py) copies the settings to a temporary directory, gives it a fresh state
directory, applies the tree's faults there and starts a real host on it. Every fault acts only
on that copy: its settings files, its state directory, or the engine started on them, and the
few servers it starts listen on 127.0.0.1 and stop with the drill. Nothing here ever touches the
operator's own settings or state.

A fault is `async def f(ctx: FaultContext, args) -> str` returning one sentence that says what
it did (the drill report shows it). `when` says whether it needs the engine running:
"before-start" faults shape what the host starts with (a port where nothing listens, a tampered
manifest); "running" faults happen to a live host (a pause, a swap that rolls back, a file
broken while it runs). Either may be used in `during:`, where the engine always runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OneiricError, UsageError

DRILL_ACTOR = "drill-operator"  # who walks and who injects
DRILL_APPROVER = "drill-approver"  # the second person who decides the walk's proposals
DRILL_PROVIDERS = "oneiric_core.runbooks.drill_providers"


@dataclass
class FaultContext:
    settings_dir: Path
    state_dir: Path
    engine: Any = None  # the started host, once it runs
    ports: dict[str, int] = field(default_factory=dict)  # provider -> port its backend should listen on
    originals: dict[str, str] = field(default_factory=dict)  # settings file -> its text before a fault
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # signing keys a fault made: id, public
    watcher_stopped: bool = False  # stop-watcher: edits on disk are no longer picked up

    def file(self, name: str) -> Path:
        path = (self.settings_dir / name).resolve()
        if self.settings_dir.resolve() not in path.parents:
            raise UsageError(f"a drill fault may only touch files inside the copied settings, not '{name}'.")
        return path

    def keep(self, name: str) -> Path:
        """The file, with its text before the first fault kept for restore-file."""
        path = self.file(name)
        if name not in self.originals:
            self.originals[name] = path.read_text(encoding="utf-8") if path.exists() else ""
        return path

    def changed(self, path: Path) -> None:
        """A settings file was written: a running host reloads it now, as its watcher would
        (and, like the real host, does not when the drill stopped its watcher)."""
        if self.engine is not None and not self.watcher_stopped:
            self.engine.settings_file_changed(path)


@dataclass(frozen=True)
class FaultSpec:
    name: str
    fn: Callable[[FaultContext, dict[str, Any]], Awaitable[str]]
    summary: str
    when: str  # before-start | running


FAULTS: dict[str, FaultSpec] = {}


def fault(name: str, summary: str, when: str) -> Callable[[Any], Any]:
    def register(fn: Callable[[FaultContext, dict[str, Any]], Awaitable[str]]) -> Any:
        FAULTS[name] = FaultSpec(name, fn, summary, when)
        return fn

    return register


async def inject(ctx: FaultContext, kind: str, args: dict[str, Any]) -> str:
    spec = FAULTS[kind]
    if spec.when == "running" and ctx.engine is None:
        raise UsageError(f"the fault '{kind}' needs the running host; it cannot come before the start.")
    return await spec.fn(ctx, args)


def _arg(args: dict[str, Any], name: str, default: Any = None) -> Any:
    value = args.get(name, default)
    if value is None:
        raise UsageError(f"this fault needs the argument '{name}'.")
    return value


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments and order of the copy survive, as an operator's edit would
    yaml.preserve_quotes = True
    return yaml


def _edit_yaml(ctx: FaultContext, name: str, change: Callable[[Any], None]) -> Path:
    import io

    path = ctx.keep(name)
    yaml = _yaml()
    data = yaml.load(path.read_text(encoding="utf-8")) if path.exists() else None
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        data = CommentedMap()
    change(data)
    out = io.StringIO()
    yaml.dump(data, out)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(ctx: FaultContext, handle: Callable[..., Awaitable[None]], port: int) -> None:
    """A server on 127.0.0.1:`port` for the drill, closed when the drill ends."""
    server = await asyncio.start_server(handle, "127.0.0.1", port)

    async def close() -> None:
        server.close()
        await server.wait_closed()

    ctx.cleanups.append(close)


def _domain_file(domain: str) -> str:
    from ..domains import Domain

    return f"{Domain.parse(domain).value}s.yml"


# -- settings: what the host starts with -------------------------------------------------------
@fault("app-setting", "set one app.yml option in the copy (a running host reloads it, as after an operator's "
       "edit); args path (dotted), value", "before-start")
async def app_setting(ctx: FaultContext, args: dict[str, Any]) -> str:
    dotted, value = str(_arg(args, "path")), args.get("value")

    def change(data: Any) -> None:
        parts = dotted.split(".")
        node = data
        for part in parts[:-1]:
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value

    ctx.changed(_edit_yaml(ctx, "app.yml", change))
    return f"app.yml {dotted} set to {value!r}."


@fault("backend-down", "point a provider at a port of 127.0.0.1 where nothing listens; args domain, key, "
       "provider", "before-start")
async def backend_down(ctx: FaultContext, args: dict[str, Any]) -> str:
    domain, key, provider = str(_arg(args, "domain")), str(_arg(args, "key")), str(_arg(args, "provider"))
    port = ctx.ports.get(provider) or free_port()
    ctx.ports[provider] = port

    def change(data: Any) -> None:
        ps = data.setdefault("provider_settings", {})
        ps.setdefault(key, {}).setdefault(provider, {})
        ps[key][provider]["host"] = "127.0.0.1"
        ps[key][provider]["port"] = port

    path = _edit_yaml(ctx, _domain_file(domain), change)
    ctx.changed(path)
    return f"{domain}/{key} {provider} points at 127.0.0.1:{port}, where nothing listens."


@fault("backend-up", "start a backend that answers PING with +PONG (a redis health check) on the port "
       "backend-down chose; args provider", "running")
async def backend_up(ctx: FaultContext, args: dict[str, Any]) -> str:
    provider = str(_arg(args, "provider"))
    port = ctx.ports.get(provider)
    if port is None:
        raise UsageError(f"backend-up needs a backend-down for {provider} first (it picks the port).")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.upper().startswith(b"PING") or line.startswith(b"*1"):
                    writer.write(b"+PONG\r\n")
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    await _serve(ctx, handle, port)
    return f"a backend for {provider} listens on 127.0.0.1:{port} now."


@fault("broken-yaml", "break a settings file of the copy (an unclosed bracket on line 2); args file", "running")
async def broken_yaml(ctx: FaultContext, args: dict[str, Any]) -> str:
    name = str(_arg(args, "file"))
    path = ctx.keep(name)
    path.write_text("selections:\n  cache: [unclosed\n", encoding="utf-8")
    ctx.changed(path)
    return f"{name} no longer parses (an unclosed bracket at line 2)."


@fault("restore-file", "put a settings file back as it was before the drill's first fault; args file", "running")
async def restore_file(ctx: FaultContext, args: dict[str, Any]) -> str:
    name = str(_arg(args, "file"))
    if name not in ctx.originals:
        raise UsageError(f"restore-file: no fault changed {name}.")
    path = ctx.file(name)
    path.write_text(ctx.originals[name], encoding="utf-8")
    ctx.changed(path)
    return f"{name} is back as it was."


@fault("select", "make a provider the selection of a key in its settings file (an operator's edit); args "
       "domain, key, provider", "running")
async def select(ctx: FaultContext, args: dict[str, Any]) -> str:
    from ..settings_edit import set_selection

    domain, key, provider = str(_arg(args, "domain")), str(_arg(args, "key")), str(_arg(args, "provider"))
    ctx.keep(_domain_file(domain))
    path = set_selection(ctx.settings_dir, domain, key, provider)
    ctx.changed(path)
    return f"{path.name} selects {provider} for {key} now."


async def _add_candidates(ctx: FaultContext, args: dict[str, Any]) -> str:
    domain, key, count = str(_arg(args, "domain")), str(_arg(args, "key")), int(_arg(args, "count"))

    def change(data: Any) -> None:
        cands = data.setdefault("candidates", [])
        for n in range(count):
            cands.append({"key": key, "provider": f"drill-extra-{n:03d}", "priority": -10,
                          "factory": "oneiric_core.providers.cache_memory:create"})

    path = _edit_yaml(ctx, _domain_file(domain), change)
    ctx.changed(path)
    return f"{count} more candidates for {domain}/{key} in {path.name}."


@fault("add-candidates", "register many candidates for one key through its settings file while the host runs "
       "(each shadowed by the winner); args domain, key, count", "running")
async def add_candidates(ctx: FaultContext, args: dict[str, Any]) -> str:
    return await _add_candidates(ctx, args)


@fault("many-candidates", "as add-candidates, but already in the settings the host starts with", "before-start")
async def many_candidates(ctx: FaultContext, args: dict[str, Any]) -> str:
    return await _add_candidates(ctx, args)


@fault("hang-factory", "add a candidate whose provider takes `seconds` to start; args domain, key, provider, "
       "seconds", "before-start")
async def hang_factory(ctx: FaultContext, args: dict[str, Any]) -> str:
    domain, key, provider = str(_arg(args, "domain")), str(_arg(args, "key")), str(_arg(args, "provider"))
    seconds = float(args.get("seconds", 3600))

    def allow(data: Any) -> None:
        allowed = data.setdefault("factory_allowlist", ["oneiric_core.providers."])
        if DRILL_PROVIDERS not in allowed:
            allowed.append(DRILL_PROVIDERS)

    def add(data: Any) -> None:
        data.setdefault("candidates", []).append({
            "key": key, "provider": provider, "priority": -10, "factory": f"{DRILL_PROVIDERS}:slow_start",
            "settings": {"start_s": seconds}})

    _edit_yaml(ctx, "app.yml", allow)
    _edit_yaml(ctx, _domain_file(domain), add)
    return f"{domain}/{key} has a candidate {provider} that takes {seconds:g} s to start."


@fault("tamper-manifest", "change a signed manifest of the copy after signing (the signature stays: it no "
       "longer matches); args file", "before-start")
async def tamper_manifest(ctx: FaultContext, args: dict[str, Any]) -> str:
    name = str(_arg(args, "file"))
    path = ctx.keep(name)
    data = json.loads(path.read_text(encoding="utf-8"))
    entry = data["entries"][0]
    entry["priority"] = int(entry.get("priority") or 0) + 1000  # a winner nobody signed
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return f"{name}: entry {entry.get('key')}/{entry.get('provider')} changed after signing (priority +1000)."


@fault("expire-manifest", "re-sign a manifest of the copy with a fresh key (made trusted in app.yml) and an "
       "expires_at in the past; args file, source", "before-start")
async def expire_manifest(ctx: FaultContext, args: dict[str, Any]) -> str:
    from ..remote.signing import b64, generate_private_key, key_id_for, public_raw, sign_manifest

    name, source = str(_arg(args, "file")), str(_arg(args, "source"))
    path = ctx.keep(name)
    data = json.loads(path.read_text(encoding="utf-8"))
    key = generate_private_key()
    raw = public_raw(key)
    key_id = key_id_for(raw)
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    data = {k: v for k, v in data.items() if k != "signatures"}
    data["expires_at"] = past
    path.write_text(json.dumps(sign_manifest(data, key, key_id), indent=2), encoding="utf-8")

    def trust(app: Any) -> None:
        app["remote"]["trusted_keys"] = [{"id": key_id, "public_key": b64(raw)}]

    _edit_yaml(ctx, "app.yml", trust)
    return f"{name} (source {source}) is signed by a trusted key but expired at {past}."


@fault("resign-manifest", "re-sign a manifest of the copy with a new key that app.yml does not trust yet (a "
       "signing-key rotation; trust-key trusts it); args file", "before-start")
async def resign_manifest(ctx: FaultContext, args: dict[str, Any]) -> str:
    from ..remote.signing import b64, generate_private_key, key_id_for, public_raw, sign_manifest

    name = str(_arg(args, "file"))
    path = ctx.keep(name)
    data = json.loads(path.read_text(encoding="utf-8"))
    key = generate_private_key()
    raw = public_raw(key)
    key_id = key_id_for(raw)
    data = {k: v for k, v in data.items() if k != "signatures"}
    path.write_text(json.dumps(sign_manifest(data, key, key_id), indent=2), encoding="utf-8")
    ctx.keys["rotated"] = (key_id, b64(raw))
    return f"{name} is signed only by the new key {key_id}, which app.yml does not trust yet."


@fault("trust-key", "add the key resign-manifest made to remote.trusted_keys in app.yml (a running host "
       "reloads it)", "before-start")
async def trust_key(ctx: FaultContext, args: dict[str, Any]) -> str:
    if "rotated" not in ctx.keys:
        raise UsageError("trust-key needs a resign-manifest first (it makes the key).")
    key_id, public = ctx.keys["rotated"]

    def trust(app: Any) -> None:
        app["remote"].setdefault("trusted_keys", []).append({"id": key_id, "public_key": public})

    ctx.changed(_edit_yaml(ctx, "app.yml", trust))
    return f"app.yml trusts {key_id} now."


@fault("unreachable-source", "point a remote source at http://127.0.0.1:<a port where nothing listens>; "
       "args source", "before-start")
async def unreachable_source(ctx: FaultContext, args: dict[str, Any]) -> str:
    source = str(_arg(args, "source"))
    port = ctx.ports[f"source:{source}"] = free_port()
    url = f"http://127.0.0.1:{port}/manifest.json"

    def change(app: Any) -> None:
        for s in app["remote"]["sources"]:
            if s["name"] == source:
                s["uri"] = url
                s["signature_required"] = True
                return
        raise UsageError(f"unreachable-source: app.yml has no remote source '{source}'.")

    _edit_yaml(ctx, "app.yml", change)
    return f"remote source {source} points at {url}, where nothing listens."


@fault("source-up", "serve a settings file of the copy over HTTP on the port unreachable-source chose (the "
       "manifest server is back); args source, file", "running")
async def source_up(ctx: FaultContext, args: dict[str, Any]) -> str:
    source, name = str(_arg(args, "source")), str(_arg(args, "file"))
    port = ctx.ports.get(f"source:{source}")
    if port is None:
        raise UsageError(f"source-up needs an unreachable-source for {source} first (it picks the port).")
    body = ctx.file(name).read_bytes()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # the request line and headers: every GET gets the manifest
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    await _serve(ctx, handle, port)
    return f"http://127.0.0.1:{port}/ serves {name} for source {source} now."


# -- state: what happens to the running host ---------------------------------------------------
@fault("stop-watcher", "stop the host's settings watcher: edits on disk are no longer picked up", "running")
async def stop_watcher(ctx: FaultContext, args: dict[str, Any]) -> str:
    watcher = ctx.engine.watcher
    if watcher is None:
        raise UsageError("stop-watcher: the host runs no settings watcher.")
    watcher.stop()
    ctx.watcher_stopped = True
    return "the host's settings watcher is stopped; edits on disk are not picked up."


@fault("restart-host", "stop the host and start a new one on the same settings and state (what 'systemctl "
       "restart oneiric' does); the walk goes on against the new one", "running")
async def restart_host(ctx: FaultContext, args: dict[str, Any]) -> str:
    from ..engine import Engine

    old = ctx.engine
    await old.stop(timeout=5)
    old.close()
    ctx.engine = Engine(ctx.settings_dir, state_dir=ctx.state_dir, actor=DRILL_ACTOR)
    await ctx.engine.start()
    ctx.watcher_stopped = False
    return "the host was stopped and a new host started on the same settings and state."


@fault("reject-pending", "a second person rejects every proposal that waits", "running")
async def reject_pending(ctx: FaultContext, args: dict[str, Any]) -> str:
    engine = ctx.engine
    done = []
    for proposal in engine.pending_proposals():
        engine.reject(proposal.id, actor=DRILL_APPROVER, comment="rejected in a drill")
        done.append(f"#{proposal.id}")
    return f"{DRILL_APPROVER} rejected {', '.join(done) or 'nothing (no proposal waited)'}."



@fault("maintenance-window", "declare a maintenance window open now for a key (oneiric maintenance window); "
       "args domain, key, hours", "running")
async def maintenance_window(ctx: FaultContext, args: dict[str, Any]) -> str:
    import time

    from ..maintenance import Calendar

    ref = f"{_arg(args, 'domain')}/{_arg(args, 'key')}"
    hours = float(args.get("hours") or 2)
    window = Calendar(ctx.engine).declare(time.time() - 60, time.time() + hours * 3600, [ref], actor=DRILL_ACTOR,
                                          note="declared by a drill")
    return f"maintenance window #{window.id} open for {ref} for {hours:g} h."


@fault("pause", "pause a key (as an operator would); args domain, key, note", "running")
async def pause(ctx: FaultContext, args: dict[str, Any]) -> str:
    domain, key = str(_arg(args, "domain")), str(_arg(args, "key"))
    note = str(args.get("note") or "paused by a drill")
    ctx.engine.pause(domain, key, note=note, actor=DRILL_ACTOR)
    return f"{domain}/{key} paused ({note})."


@fault("swap", "swap a key to a provider through a proposal a second person approves; args domain, key, to, "
       "force, background (do not wait for it)", "running")
async def swap(ctx: FaultContext, args: dict[str, Any]) -> str:
    engine = ctx.engine
    domain, key, to = str(_arg(args, "domain")), str(_arg(args, "key")), str(_arg(args, "to"))
    record, result = await engine.request_swap(domain, key, to, force=bool(args.get("force")), source="console",
                                               reason="drill", actor=DRILL_ACTOR)
    if result is not None:
        return f"swap of {domain}/{key} to {to}: {result.outcome.value}."
    decide = engine.approve(record.id, actor=DRILL_APPROVER)
    if args.get("background"):
        task = asyncio.ensure_future(decide)
        ctx.tasks.append(task)
        ref = engine.ref(domain, key)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not task.done():
            row = next(iter(engine.components([ref])), None)
            if row is not None and row.state == "activating":
                break
            await asyncio.sleep(0.02)
        return f"swap of {domain}/{key} to {to} started (proposal #{record.id}), still running."
    try:
        _, result = await decide
    except OneiricError as exc:  # a refused swap is a fact of the drill, not its failure
        return f"swap of {domain}/{key} to {to} refused: {exc}"
    outcome = result.outcome.value if result is not None else "decided"
    return f"swap of {domain}/{key} to {to} (proposal #{record.id}): {outcome}."


@fault("approve-pending", "a second person approves every proposal that waits", "running")
async def approve_pending(ctx: FaultContext, args: dict[str, Any]) -> str:
    engine = ctx.engine
    done = []
    for proposal in engine.pending_proposals():
        await engine.approve(proposal.id, actor=DRILL_APPROVER)
        done.append(f"#{proposal.id}")
    return f"{DRILL_APPROVER} approved {', '.join(done) or 'nothing (no proposal waited)'}."


@fault("corrupt-artifact", "write cached artifacts whose content does not match their sha256 name; args count",
       "running")
async def corrupt_artifact(ctx: FaultContext, args: dict[str, Any]) -> str:
    from ..private_files import private_dir

    count = int(args.get("count", 1))
    root = ctx.state_dir / "remote" / "artifacts"
    private_dir(root)
    names = []
    for n in range(count):
        name = hashlib.sha256(f"the artifact as published {n}".encode()).hexdigest()
        (root / name).write_bytes(f"bit rot {n}".encode())
        names.append(name[:12])
    return f"{count} cached artifact(s) no longer match their name: {', '.join(names)}."
