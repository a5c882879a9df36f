"""One remote source and one sync of it.

A sync: [the manifest in force has expired? withdraw it] -> breaker -> fetch (with retries) ->
unchanged? done -> parse -> verify signatures -> version and expiry against the ledger
(freshness.py) -> check entries -> fetch and check artifacts -> [dry run: the diff, nothing
else] -> cache the manifest -> record its version in the ledger -> replace the source's
candidates -> proposals. Everything before "cache" can fail, and a failure changes nothing
that was registered: the last good manifest stays in force, the failure is journaled
(`signature-verification-failed`, `manifest-rollback-refused`, `manifest-expired`,
`digest-check-failed` or `remote-sync-error`) and counted, and the circuit breaker hears of it.

`load_cached` puts the last good manifest in force without any network or signature check
(the keys that verified it are recorded with it and must still be trusted), so every process,
the CLI's included, sees what the host would serve. It too obeys the ledger and the expiry: a
cached manifest older than the ledger's version, or expired, is not put in force, and the
host journals why when it starts (`report_cache_refusal`).

An expired manifest stops being trusted, also while it is in force: the next sync (the refresh
loop wakes at the expiry time) withdraws its entries the way a revoked key does. Nothing is
yanked: an instance they serve keeps serving, and the key gets a swap proposal to what wins
without them (registration.py), so an operator hears of it loudly (`manifest-expired`, error)
and decides, instead of losing service silently. After a restart the expired set is not
registered at all: nothing serves yet, and trust is not extended past the publisher's word.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RemoteSyncFailed
from ..events import Event, Severity
from ..input_limits import DEFAULT_MAX_DEPTH
from ..registry import CandidateFields, SourceDiff
from . import source_id
from .breaker import HALF_OPEN, CircuitBreaker
from .cache import ArtifactStore, CachedManifest, ManifestCache
from .fetch import (
    FetchError,
    Location,
    artifact_refusal,
    download,
    fetch_manifest,
    locate,
    resolve_artifact,
    with_retries,
)
from .freshness import EVENT_KINDS, AcceptedVersion, Freshness, Ledger, highest, judge, when
from .status import SourceStatus

if TYPE_CHECKING:
    from ..settings import BreakerOptions, RemoteSourceOptions
    from .manifest import Accepted, ParsedManifest, Rejection
    from .registration import Applied
    from .signing import Verification

DIFF_LIMIT = 50  # candidates named per list in events and outcomes (the counts are always complete)


@dataclass
class Trust:
    keys: dict[str, str]  # key id -> base64 public key
    threshold: int


@dataclass
class SyncContext:
    """What a source needs from its surroundings (the engine, through RemoteManager)."""

    settings_dir: Path
    root: Path  # state_dir/remote
    trust: Callable[[], Trust]
    allowlist: Callable[[], Sequence[str]]
    client: Callable[[], Any]  # the shared httpx.AsyncClient, created on first use
    emit: Callable[[Event], Any]
    preview: Callable[[str, Sequence[CandidateFields]], SourceDiff]
    apply: Callable[[str, Sequence[CandidateFields], str], Awaitable[Applied]]
    ledger: Ledger  # the highest version accepted per source, in the store
    max_depth: Callable[[], int] = lambda: DEFAULT_MAX_DEPTH  # app.yml limits.max_depth
    telemetry: Callable[[], Any] = lambda: None  # the host's Telemetry (spans, metrics), None elsewhere


@dataclass
class InForce:
    """The manifest whose entries are registered now."""

    digest: str
    etag: str | None
    summary: dict[str, Any]
    verification: dict[str, Any]
    trusted: dict[str, str]  # the keys that verified it: {id: public key}
    from_cache: bool
    freshness: Freshness
    last_modified: str | None = None

    def as_accepted(self) -> AcceptedVersion:
        return AcceptedVersion(self.freshness.version, self.freshness.signed_digest, self.freshness.expires_at, 0.0)


class SignatureFailed(RemoteSyncFailed):
    def __init__(self, message: str, verification: Verification) -> None:
        super().__init__(message, "signature")
        self.verification = verification


class DigestFailed(RemoteSyncFailed):
    def __init__(self, message: str) -> None:
        super().__init__(message, "digest")


@dataclass
class SyncOutcome:
    source: str
    ok: bool
    dry_run: bool = False
    not_modified: bool = False
    skipped: str | None = None  # why no sync ran (the circuit is open)
    error: str | None = None
    error_kind: str | None = None
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # added, replaced, removed, accepted, rejected
    rejected: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None
    proposals: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    fetch_ms: float = 0.0  # of duration_ms: the transfer itself (HTTP exchange or file read)

    @property
    def changed(self) -> bool:
        return bool(self.counts.get("added") or self.counts.get("replaced") or self.counts.get("removed"))

    def message(self) -> str:
        """One sentence for the CLI and the console."""
        name = f"remote:{self.source}"
        if self.skipped:
            return f"{name}: not synced: {self.skipped}."
        if not self.ok:
            return f"{name}: sync failed ({self.error_kind}): {self.error}; the last good manifest stays in force."
        manifest = self.manifest or {}
        what = f"{manifest.get('name', '?')} v{manifest.get('version', '?')}"
        if self.not_modified:
            return f"{name}: {what} is unchanged; nothing to do."
        c = self.counts
        change = (f"{c.get('added', 0)} added, {c.get('replaced', 0)} replaced, {c.get('removed', 0)} removed"
                  if self.changed else "no change")
        rejected = f", {c['rejected']} entr{'y' if c['rejected'] == 1 else 'ies'} rejected" if c.get("rejected") else ""
        prefix = "dry run, nothing changed: would apply " if self.dry_run else ""
        props = f", {len(self.proposals)} swap proposal(s)" if self.proposals else ""
        return f"{name}: {prefix}{what} ({change}{rejected}{props})."

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        out = dataclasses.asdict(self)
        out["message"] = self.message()
        return out


@dataclass
class _Plan:
    not_modified: bool
    etag: str | None
    parsed: ParsedManifest | None = None
    verification: Verification | None = None
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    rows: list[CandidateFields] = field(default_factory=list)
    fetch_ms: float = 0.0
    last_modified: str | None = None
    ledger: AcceptedVersion | None = None  # the ledger's record when the manifest was judged


class RemoteSource:
    def __init__(self, options: RemoteSourceOptions, breaker: BreakerOptions, ctx: SyncContext) -> None:
        self.ctx = ctx
        self.name = options.name
        self.source = source_id(options.name)
        self.cache = ManifestCache(ctx.root, options.name)
        self.artifacts = ArtifactStore(ctx.root)
        self.breaker = CircuitBreaker(breaker.failures, breaker.reset_s)
        self.current: InForce | None = None
        self.status = SourceStatus(options.name, options.uri, options.interval_s, options.requires_signature)
        self.options = options
        self.location: Location | None = None
        self.location_error: str | None = None
        self.reconfigure(options, breaker)
        self._lock: asyncio.Lock | None = None
        # Why the cached last good manifest was not put in force (rollback, expiry), until the
        # host journals it on start (report_cache_refusal).
        self.cache_refusal: RemoteSyncFailed | None = None

    def reconfigure(self, options: RemoteSourceOptions, breaker: BreakerOptions) -> None:
        if self.current is not None and options.uri != self.options.uri:
            self.current.etag = self.current.last_modified = None  # they belong to the old URL
        self.options = options
        self.breaker.configure(breaker.failures, breaker.reset_s)
        self.status.uri, self.status.interval_s = options.uri, options.interval_s
        self.status.signature_required = options.requires_signature
        try:
            self.location, self.location_error = locate(options.uri, self.ctx.settings_dir), None
        except FetchError as exc:
            self.location, self.location_error = None, str(exc)

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # -- the last good manifest -----------------------------------------------------------------
    def load_cached(self) -> list[CandidateFields] | None:
        """The cached manifest's rows when it may still be used; None when there is none, it
        cannot be read, or the keys that verified it are no longer trusted."""
        cached, _why = self.cache.load()
        if cached is None:
            return None
        from .manifest import ManifestError

        if not self._cache_trusted(cached):
            return None
        try:
            plan = self._plan_from(cached.raw, None, verified=cached.record)
        except ManifestError:
            return None
        except RemoteSyncFailed as exc:  # older than the ledger, or expired: not in force
            self.cache_refusal = exc
            return None
        assert plan.parsed is not None
        self._in_force(plan, cached, from_cache=True)
        if cached.record.get("uri") != self.options.uri and self.current is not None:
            self.current.etag = self.current.last_modified = None  # fetched from another URI
        self.status.stale = True
        self.status.in_force = "cache"
        return plan.rows

    def report_cache_refusal(self) -> None:
        """On the host's start: journal why the cached manifest was not put in force, and count
        it as a failed attempt (remote-status says FAILING and why) without feeding the breaker."""
        exc, self.cache_refusal = self.cache_refusal, None
        if exc is None:
            return
        now = time.time()
        status = self.status
        status.consecutive_failures += 1
        status.total_failures += 1
        status.last_attempt_at = now
        status.last_error, status.last_error_kind, status.last_error_at = str(exc), exc.kind, now
        if isinstance(exc, SignatureFailed):
            status.signature_failure = {**exc.verification.to_dict(), "at": now}
        self.ctx.emit(Event(EVENT_KINDS.get(exc.kind, "remote-sync-error"),
                            f"{self.source}: {exc}; its entries are not registered until a manifest that is "
                            "fresh and not older verifies", Severity.ERROR, actor=self.source, outcome="failed",
                            data={"source": self.name, "uri": self.options.uri, "kind": exc.kind, "cache": True}))

    def _cache_trusted(self, cached: CachedManifest) -> bool:
        """Signatures are not checked again on load: the keys that verified the manifest are
        recorded with it, and they must still be trusted (same ids, same public keys, enough
        of them). A manifest cached from a source that did not require signatures may be used
        only while that source still does not."""
        from .signing import still_trusted

        trust = self.ctx.trust()
        if not self.options.requires_signature:
            return True
        trusted = cached.record.get("trusted")
        return isinstance(trusted, dict) and still_trusted(trusted, trust.keys, threshold=trust.threshold)

    def withdraw_untrusted(self) -> bool:
        """After a change of trusted keys or threshold: True (and nothing is in force any more)
        when the keys that verified the manifest in force are no longer enough; the caller
        then removes the source's candidates, as a restart would."""
        if self.current is None or self._current_trusted():
            return False
        self.current = None
        self.status.manifest = self.status.signature = None
        self.status.entries, self.status.rejected = {}, []
        self.ctx.emit(Event("remote-sync-error", f"{self.source}: the keys that verified its manifest are no longer "
                            "trusted enough (app.yml remote.trusted_keys / threshold); its entries were withdrawn "
                            "until a manifest verifies again", Severity.WARNING, actor=self.source,
                            data={"source": self.name, "kind": "trust"}))
        return True

    def _current_trusted(self) -> bool:
        if self.current is None:
            return False
        if not self.options.requires_signature:
            return True
        from .signing import still_trusted

        trust = self.ctx.trust()
        return still_trusted(self.current.trusted, trust.keys, threshold=trust.threshold)

    # -- one sync ---------------------------------------------------------------------------------
    async def sync(self, *, dry_run: bool = False, manual: bool = False, retries: int | None = None) -> SyncOutcome:
        """One sync; on the host a `remote.sync` span (fetch, verify, artifacts and register as
        its children) and the remote metrics (a dry run changes nothing, so it counts nothing)."""
        async with self.lock:
            tel = self.ctx.telemetry()
            if tel is None:
                return await self._sync(dry_run=dry_run, manual=manual, retries=retries)
            with tel.span("remote.sync", {"oneiric.remote.source": self.name, "url.full": self.options.uri,
                                          "oneiric.remote.manual": manual, "oneiric.remote.dry_run": dry_run}) as span:
                outcome = await self._sync(dry_run=dry_run, manual=manual, retries=retries)
                result = ("skipped" if outcome.skipped else "failed" if not outcome.ok
                          else "changed" if outcome.changed else "unchanged")
                span.set_attributes({"oneiric.remote.sync.outcome": result,
                                     **{f"oneiric.remote.{k}": v for k, v in outcome.counts.items()}})
                if outcome.error_kind:
                    span.set_attribute("error.type", outcome.error_kind)
                if not outcome.ok:
                    tel.failed(span, outcome.error or outcome.skipped)
                if not dry_run:
                    tel.record_sync(source=self.name, uri=self.options.uri, outcome=result,
                                    error_kind=outcome.error_kind, duration_s=outcome.duration_ms / 1000.0)
            return outcome

    def _span(self, name: str, **attributes: Any) -> Any:
        """A child span of the sync (NO_SPAN when nothing records spans)."""
        from ..trace_context import NO_SPAN

        tel = self.ctx.telemetry()
        return NO_SPAN if tel is None else tel.span(name, {"oneiric.remote.source": self.name, **attributes})

    def expires_ts(self) -> float | None:
        """When the manifest in force expires (the refresh loop wakes then)."""
        return self.current.freshness.expires_ts if self.current is not None else None

    async def _withdraw_expired(self) -> None:
        """The manifest in force has expired: its entries leave the registry (what they serve
        keeps serving, with a swap proposal to what wins without them), loudly."""
        current = self.current
        assert current is not None
        expiry = when(current.freshness.expires_ts or 0)
        self.current = None
        entries = sum(self.status.entries.values())
        self.status.manifest = self.status.signature = None
        self.status.entries, self.status.rejected = {}, []
        applied = await self.ctx.apply(self.source, [], f"{self.source}: its manifest expired")
        kept = (f"; {len(applied.proposals)} swap proposal(s) to what wins without them (what they serve keeps "
                "serving until then)" if applied.proposals else "")
        notes = "".join(f"; {note}" for note in applied.notes)
        self.ctx.emit(Event("manifest-expired", f"{self.source}: the manifest in force ({current.summary.get('name')} "
                            f"v{current.freshness.version}) expired at {expiry}; its {entries} entr"
                            f"{'y was' if entries == 1 else 'ies were'} withdrawn until a fresh manifest verifies"
                            f"{kept}{notes}", Severity.ERROR, actor=self.source, outcome="withdrawn",
                            data={"source": self.name, "uri": self.options.uri, "kind": "expired",
                                  "version": current.freshness.version, "expires_at": current.freshness.expires_at,
                                  "proposals": list(applied.proposals), "notes": list(applied.notes)}))

    async def _sync(self, *, dry_run: bool, manual: bool, retries: int | None) -> SyncOutcome:
        started = time.perf_counter()
        if not dry_run and self.current is not None and self.current.freshness.expired(time.time()):
            await self._withdraw_expired()
        if not dry_run and not manual and not self.breaker.allows():
            retry = time.strftime("%H:%M:%S", time.localtime(self.breaker.retry_at or time.time()))
            return SyncOutcome(self.name, False, skipped=f"the circuit is open after {self.breaker.failures} "
                               f"failed syncs; next trial at {retry}")
        trial = self.breaker.state == HALF_OPEN
        if not dry_run:
            self.status.last_attempt_at = time.time()
            if manual:
                self.ctx.emit(Event("remote-sync-started", f"{self.source}: sync of {self.options.uri} started",
                                    actor=self.source, data={"source": self.name, "uri": self.options.uri}))
        try:
            plan = await self._prepare(retries, dry_run)
        except RemoteSyncFailed as exc:
            return self._failed(exc, started, dry_run)
        except Exception as exc:  # noqa: BLE001 - last line of defence: a bug must not stop the loop; reported as a failure
            return self._failed(RemoteSyncFailed(f"unexpected {type(exc).__name__}: {exc}", "internal"),
                                started, dry_run)
        if plan.not_modified:
            outcome = self._unchanged(plan, started, dry_run, manual, trial)
        elif dry_run:
            outcome = self._outcome(plan, self.ctx.preview(self.source, plan.rows), started, dry_run=True)
            artifacts = sum(1 for a in plan.accepted if a.entry.artifact is not None)
            if artifacts:
                outcome.notes.append(f"{artifacts} artifact(s) were not downloaded or checked (dry run)")
        else:
            outcome = await self._commit(plan, started, manual, trial)
        outcome.fetch_ms = round(plan.fetch_ms, 3)
        return outcome

    async def _prepare(self, retries: int | None, dry_run: bool = False) -> _Plan:
        if self.location is None:
            raise RemoteSyncFailed(self.location_error or f"cannot read {self.options.uri}", "config")
        location = self.location
        current = self.current if self._current_trusted() else None
        opts = self.options
        with self._span("remote.fetch", **{"url.full": opts.uri}) as span:
            fetched = await with_retries(
                lambda: fetch_manifest(location, client=self.ctx.client, etag=current.etag if current else None,
                                       known_digest=current.digest if current else None,
                                       timeout=opts.timeout, max_bytes=opts.max_bytes,
                                       limit_key=f"max_bytes of source '{self.name}' under remote.sources",
                                       last_modified=current.last_modified if current else None),
                retries=opts.retries if retries is None else retries, base_s=opts.backoff_s)
            span.set_attribute("oneiric.remote.not_modified", bool(fetched.not_modified))
        if fetched.not_modified:
            if current is None:
                raise RemoteSyncFailed(f"{self.options.uri} answered 304 Not Modified, but no manifest is in "
                                       "force to reuse", "http-status")
            return _Plan(True, fetched.etag, fetch_ms=fetched.fetch_ms, last_modified=fetched.last_modified)
        assert fetched.body is not None
        with self._span("remote.verify") as span:
            plan = self._plan_from(fetched.body, fetched.etag)
            span.set_attributes({"oneiric.remote.accepted": len(plan.accepted),
                                 "oneiric.remote.rejected": len(plan.rejected)})
        plan.fetch_ms, plan.last_modified = fetched.fetch_ms, fetched.last_modified
        if not dry_run:  # a dry run changes nothing, the artifact cache included
            with self._span("remote.fetch_artifacts"):
                await self._artifacts(plan)
        return plan

    def _plan_from(self, raw: bytes, etag: str | None, *, verified: dict[str, Any] | None = None) -> _Plan:
        """Parse, verify (unless `verified`, the cache record of an earlier verification) and
        check the entries of `raw`."""
        from . import upstream
        from .manifest import check_entries, parse_manifest
        from .registration import candidate_rows
        from .signing import Verification, verify

        # an upstream Oneiric manifest is verified by upstream's rules, then read as ours (upstream.py)
        foreign = upstream.parse(raw, max_depth=self.ctx.max_depth(), source=self.options.uri)
        parsed = foreign or parse_manifest(raw, max_depth=self.ctx.max_depth(), source=self.options.uri)
        if verified is None:
            trust = self.ctx.trust()
            if foreign is not None:
                verification = upstream.verify(foreign.original, trust.keys, threshold=trust.threshold,
                                               required=self.options.requires_signature)
            else:
                verification = verify(parsed.data, parsed.model.signatures, trust.keys, threshold=trust.threshold,
                                      required=self.options.requires_signature, message=parsed.signed_bytes)
            if not verification.ok:
                raise SignatureFailed(verification.reason, verification)
        else:
            recorded = verified.get("signature") or {}
            verification = Verification(True, str(recorded.get("status", "verified")), self.options.requires_signature,
                                        int(recorded.get("threshold", 1)), list(recorded.get("key_ids") or []),
                                        reason=str(recorded.get("reason", "")),
                                        trusted=dict(verified.get("trusted") or {}))
        ledger = self._judge(parsed, cached=verified is not None)
        location = self.location
        check = (lambda uri: artifact_refusal(location, uri)) if location is not None else None
        accepted, rejected = check_entries(parsed.model, self.ctx.allowlist(), artifact_check=check)
        paths = {a.entry.artifact.sha256: self.artifacts.path_for(a.entry.artifact.sha256)
                 for a in accepted if a.entry.artifact is not None}
        return _Plan(False, etag, parsed, verification, accepted, rejected, candidate_rows(accepted, paths),
                     ledger=ledger)

    def _judge(self, parsed: ParsedManifest, *, cached: bool) -> AcceptedVersion | None:
        """TUF's rollback and freeze rules (freshness.py), against the highest of the ledger's
        version and the one in force. Raises RemoteSyncFailed; returns the ledger's record."""
        recorded = self.ctx.ledger.get(self.name)
        in_force = self.current.as_accepted() if self.current is not None else None
        judge(parsed.freshness, highest(recorded, in_force), now=time.time(),
              what="the cached last good manifest" if cached else "the manifest",
              expiry_required=self.options.requires_signature)
        return recorded

    def _remember(self, plan: _Plan) -> None:
        """Record a newly accepted version in the ledger (an equal one is there already)."""
        assert plan.parsed is not None
        recorded, fresh = plan.ledger, plan.parsed.freshness
        if recorded is None or recorded.version != fresh.version or recorded.signed_digest != fresh.signed_digest:
            recorded = AcceptedVersion(fresh.version, fresh.signed_digest, fresh.expires_at, time.time())
            self.ctx.ledger.put(self.name, recorded)
        self.status.accepted = recorded.to_dict()

    async def _artifacts(self, plan: _Plan) -> None:
        """Every artifact of an accepted entry, verified in the content-addressed cache: a cached
        copy that no longer matches its sha256 is quarantined and fetched again; a download that
        does not match fails the sync (DigestFailed) and is thrown away."""
        wanted: dict[str, str] = {}
        for item in plan.accepted:
            if item.entry.artifact is not None:
                wanted.setdefault(item.entry.artifact.sha256, item.entry.artifact.uri)
        for sha, uri in wanted.items():
            path, quarantined = await asyncio.to_thread(self.artifacts.verified, sha)
            if quarantined:
                self.ctx.emit(Event("digest-check-failed", f"{self.source}: the cached artifact {sha[:12]}... no "
                                    f"longer matched its sha256; moved to {quarantined} and fetched again",
                                    Severity.WARNING, actor=self.source,
                                    data={"source": self.name, "sha256": sha, "quarantined": quarantined}))
            if path is None:
                await self._download(uri, sha)

    async def _download(self, uri: str, sha: str) -> Path:
        assert self.location is not None
        location = resolve_artifact(self.location, uri)
        opts = self.options
        handle = self.artifacts.temp_file()
        tmp = Path(handle.name)
        committed = False
        try:
            async def attempt() -> str:
                handle.seek(0)
                handle.truncate()
                return await download(location, handle, client=self.ctx.client, timeout=opts.timeout,
                                      max_bytes=opts.max_artifact_bytes)

            got = await with_retries(attempt, retries=opts.retries, base_s=opts.backoff_s)
            handle.close()
            if got != sha:
                raise DigestFailed(f"artifact {uri} has sha256 {got}, but the manifest says {sha}")
            path = await asyncio.to_thread(self.artifacts.commit, tmp, sha)
            committed = True
            return path
        finally:
            with contextlib.suppress(OSError):
                handle.close()
            if not committed:
                self.artifacts.discard(tmp)

    # -- outcomes ---------------------------------------------------------------------------------
    async def _commit(self, plan: _Plan, started: float, manual: bool, trial: bool) -> SyncOutcome:
        with self._span("remote.register", **{"oneiric.remote.entries": len(plan.rows)}):
            return await self._register(plan, started, manual, trial)

    async def _register(self, plan: _Plan, started: float, manual: bool, trial: bool) -> SyncOutcome:
        """Cache the manifest, record its version, replace the source's candidates."""
        assert plan.parsed is not None and plan.verification is not None
        verification = plan.verification
        try:
            cached = await asyncio.to_thread(
                self.cache.save, plan.parsed.raw, etag=plan.etag, last_modified=plan.last_modified,
                uri=self.options.uri, fetched_at=time.time(),
                signature=verification.to_dict(), trusted=dict(verification.trusted))
        except OSError as exc:
            return self._failed(RemoteSyncFailed(f"cannot write the manifest cache under {self.cache.dir}: "
                                                 f"{exc.strerror or exc}", "cache"), started, False)
        try:
            self._remember(plan)
        except RemoteSyncFailed as exc:
            return self._failed(exc, started, False)
        applied = await self.ctx.apply(self.source, plan.rows, f"{self.source} {plan.parsed.model.name} "
                                       f"v{plan.parsed.model.version}")
        self._in_force(plan, cached, from_cache=False)
        outcome = self._outcome(plan, applied.diff, started, dry_run=False)
        outcome.proposals, outcome.notes = list(applied.proposals), list(applied.notes)
        now = time.time()
        recovered = self.status.consecutive_failures > 0
        self._succeeded(now, outcome.duration_ms)
        if outcome.changed:
            self.status.last_change_at = now
        if outcome.changed or manual or outcome.notes or recovered or self.status.total_syncs == 1:
            self.ctx.emit(Event("remote-sync-complete", outcome.message(),
                                Severity.WARNING if outcome.notes or outcome.rejected else Severity.INFO,
                                actor=self.source, outcome="changed" if outcome.changed else "unchanged",
                                duration_ms=outcome.duration_ms, data=self._event_data(outcome)))
        self._closed(trial)
        return outcome

    def _unchanged(self, plan: _Plan, started: float, dry_run: bool, manual: bool, trial: bool) -> SyncOutcome:
        current = self.current
        assert current is not None
        outcome = SyncOutcome(self.name, True, dry_run=dry_run, not_modified=True,
                              manifest={**current.summary}, signature=dict(current.verification),
                              rejected=list(self.status.rejected),
                              counts={"accepted": sum(self.status.entries.values()),
                                      "rejected": len(self.status.rejected)},
                              duration_ms=_ms(started))
        if dry_run:
            return outcome
        if plan.etag and plan.etag != current.etag:
            current.etag = plan.etag
        if plan.last_modified:
            current.last_modified = plan.last_modified
        current.summary["fetched_at"] = time.time()
        self.status.manifest = {**current.summary, "etag": current.etag}
        recovered = self.status.consecutive_failures > 0
        self._succeeded(time.time(), outcome.duration_ms)
        if manual or recovered:
            self.ctx.emit(Event("remote-sync-complete", outcome.message(), actor=self.source, outcome="unchanged",
                                duration_ms=outcome.duration_ms, data=self._event_data(outcome)))
        self._closed(trial)
        return outcome

    def _in_force(self, plan: _Plan, cached: CachedManifest, *, from_cache: bool) -> None:
        from .manifest import per_domain

        assert plan.parsed is not None and plan.verification is not None
        summary = {**plan.parsed.summary(), "etag": cached.etag,
                   "fetched_at": cached.record.get("fetched_at")}
        verification = plan.verification.to_dict()
        self.current = InForce(plan.parsed.digest, cached.etag, summary, verification,
                               dict(plan.verification.trusted or cached.record.get("trusted") or {}), from_cache,
                               plan.parsed.freshness, cached.last_modified)
        self.status.manifest = dict(summary)
        self.status.signature = verification
        self.status.entries = per_domain(plan.accepted)
        self.status.rejected = [r.to_dict() for r in plan.rejected]

    def _succeeded(self, now: float, duration_ms: float) -> None:
        status = self.status
        status.last_success_at = now
        status.consecutive_failures = 0
        status.total_syncs += 1
        status.last_duration_ms = round(duration_ms, 3)
        status.stale = False
        status.in_force = "fetched"
        status.breaker = self.breaker.to_dict()

    def _closed(self, trial: bool) -> None:
        failures = self.breaker.failures
        if self.breaker.success():
            self.ctx.emit(Event("circuit-closed", f"{self.source}: circuit closed: "
                                f"{'the trial sync' if trial else 'a sync'} succeeded after {failures} failure(s)",
                                actor=self.source, data={"source": self.name, "failures": failures}))
        self.status.breaker = self.breaker.to_dict()

    def _failed(self, exc: RemoteSyncFailed, started: float, dry_run: bool) -> SyncOutcome:
        outcome = SyncOutcome(self.name, False, dry_run=dry_run, error=str(exc), error_kind=exc.kind,
                              duration_ms=_ms(started))
        if isinstance(exc, SignatureFailed):
            outcome.signature = exc.verification.to_dict()
        if dry_run:
            return outcome
        now = time.time()
        status = self.status
        status.consecutive_failures += 1
        status.total_failures += 1
        status.last_error, status.last_error_kind, status.last_error_at = str(exc), exc.kind, now
        if isinstance(exc, SignatureFailed):
            status.signature_failure = {**exc.verification.to_dict(), "at": now}
        status.last_duration_ms = round(outcome.duration_ms, 3)
        if self.current is not None:
            status.stale = True
        kind = {"signature": "signature-verification-failed", "digest": "digest-check-failed", **EVENT_KINDS}.get(
            exc.kind, "remote-sync-error")
        keeps = ("the last good manifest stays in force" if self.current is not None
                 else "nothing from this source is registered")
        data: dict[str, Any] = {"source": self.name, "uri": self.options.uri, "kind": exc.kind,
                                "consecutive_failures": status.consecutive_failures,
                                "total_failures": status.total_failures}
        if outcome.signature is not None:
            data["signature"] = outcome.signature
        self.ctx.emit(Event(kind, f"{self.source}: {exc}; {keeps}", Severity.ERROR, actor=self.source,
                            outcome="failed", duration_ms=outcome.duration_ms, data=data))
        if self.breaker.failure():
            retry = self.breaker.retry_at or now
            self.ctx.emit(Event("circuit-open", f"{self.source}: circuit open after {self.breaker.failures} "
                                f"consecutive failed syncs; no sync until a trial in {self.breaker.reset_s:g} s",
                                Severity.WARNING, actor=self.source,
                                data={"source": self.name, "failures": self.breaker.failures, "retry_at": retry}))
        status.breaker = self.breaker.to_dict()
        return outcome

    def _outcome(self, plan: _Plan, diff: SourceDiff, started: float, *, dry_run: bool) -> SyncOutcome:
        from .registration import labels

        assert plan.parsed is not None and plan.verification is not None
        return SyncOutcome(
            self.name, True, dry_run=dry_run,
            added=labels(diff.added, DIFF_LIMIT), replaced=labels(diff.replaced, DIFF_LIMIT),
            removed=labels(diff.removed, DIFF_LIMIT),
            counts={"added": len(diff.added), "replaced": len(diff.replaced), "removed": len(diff.removed),
                    "accepted": len(plan.accepted), "rejected": len(plan.rejected)},
            rejected=[r.to_dict() for r in plan.rejected], manifest=plan.parsed.summary(),
            signature=plan.verification.to_dict(), duration_ms=_ms(started),
        )

    def _event_data(self, outcome: SyncOutcome) -> dict[str, Any]:
        return {"source": self.name, "uri": self.options.uri, "manifest": outcome.manifest,
                "signature": outcome.signature, "counts": outcome.counts, "added": outcome.added,
                "replaced": outcome.replaced, "removed": outcome.removed, "rejected": outcome.rejected[:DIFF_LIMIT],
                "proposals": outcome.proposals, "notes": outcome.notes}

    def carry_on(self, recorded: dict[str, Any]) -> None:
        """Take up the counters and history of the status the last process to sync this
        source recorded (a host, or a CLI sync with no host): each process builds its own
        RemoteSource, and one starting from zero wrote `total_failures: 0` over four failures."""
        from .status import HISTORY_FIELDS

        for name in HISTORY_FIELDS:
            value = recorded.get(name)
            if value is not None:
                setattr(self.status, name, value)
        breaker = recorded.get("breaker")
        if isinstance(breaker, dict):
            self.breaker.resume(breaker)

    def record(self) -> dict[str, Any]:
        """The status as written to the store for other processes."""
        self.status.breaker = self.breaker.to_dict()
        self.status.reported_by = {"pid": os.getpid(), "hostname": socket.gethostname(), "updated_at": time.time()}
        return self.status.to_dict()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


__all__ = ["InForce", "RemoteSource", "SyncContext", "SyncOutcome", "Trust"]
