"""The vocabulary shared by every layer: domains, candidates, component references, health results."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import NotFound


class Domain(enum.StrEnum):
    ADAPTER = "adapter"
    SERVICE = "service"
    TASK = "task"
    EVENT = "event"
    WORKFLOW = "workflow"
    ACTION = "action"

    @property
    def plural(self) -> str:
        return self.value + "s"

    @property
    def settings_file(self) -> str:
        """The settings file that holds this domain's selections, e.g. `adapters.yml`."""
        return self.plural + ".yml"

    @classmethod
    def parse(cls, text: str | Domain) -> Domain:
        """Accept `adapter` or `adapters` (the runbooks use both); anything else is NotFound."""
        if isinstance(text, Domain):
            return text
        name = str(text).strip().lower()
        for domain in cls:
            if name in (domain.value, domain.plural):
                return domain
        known = ", ".join(d.value for d in cls)
        raise NotFound(f"Unknown domain '{text}': the domains are {known}.")


@dataclass(frozen=True, slots=True)
class ComponentRef:
    """One resolvable slot: a (domain, key) pair such as adapter/cache."""

    domain: Domain
    key: str

    def __str__(self) -> str:
        return f"{self.domain.value}/{self.key}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to serve a key: a provider, how to build it, and how it ranks.

    `seq` is the registration order the registry assigns; the registry key is
    (domain, key, provider, source), so registering that tuple again replaces it.
    """

    domain: Domain
    key: str
    provider: str
    factory: str
    priority: int = 0
    stack_level: int = 0
    source: str = "builtin"
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    seq: int = 0

    @property
    def ref(self) -> ComponentRef:
        return ComponentRef(self.domain, self.key)

    @property
    def ident(self) -> tuple[Domain, str, str, str]:
        return (self.domain, self.key, self.provider, self.source)

    def label(self) -> str:
        return f"{self.provider} ({self.source})"


def _slot_setters(cls: type) -> tuple[Any, ...]:
    return tuple(getattr(cls, f.name).__set__ for f in fields(cls))


(_set_domain, _set_key, _set_provider, _set_factory, _set_priority, _set_stack_level, _set_source,
 _set_settings, _set_metadata, _set_seq) = _slot_setters(Candidate)


def new_candidate(domain: Domain, key: str, provider: str, factory: str, priority: int, stack_level: int,
                  source: str, settings: dict[str, Any], metadata: dict[str, Any], seq: int) -> Candidate:
    """`Candidate(...)` with every field given, in half the time: a frozen dataclass's
    `__init__` sets each field through `object.__setattr__`, this sets the slots directly.
    The registry builds 10,000 candidates this way when settings load. Same object, still
    frozen; `Candidate(...)` stays the constructor everywhere else."""
    cand = object.__new__(Candidate)
    _set_domain(cand, domain)
    _set_key(cand, key)
    _set_provider(cand, provider)
    _set_factory(cand, factory)
    _set_priority(cand, priority)
    _set_stack_level(cand, stack_level)
    _set_source(cand, source)
    _set_settings(cand, settings)
    _set_metadata(cand, metadata)
    _set_seq(cand, seq)
    return cand


class HealthStatus(enum.StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class HealthResult:
    """What a provider's `health()` returns. `latency_ms` is filled by the engine when absent."""

    status: HealthStatus
    message: str = ""
    latency_ms: float | None = None

    @classmethod
    def ok(cls, message: str = "", latency_ms: float | None = None) -> HealthResult:
        return cls(HealthStatus.OK, message, latency_ms)

    @classmethod
    def degraded(cls, message: str, latency_ms: float | None = None) -> HealthResult:
        return cls(HealthStatus.DEGRADED, message, latency_ms)

    @classmethod
    def failed(cls, message: str, latency_ms: float | None = None) -> HealthResult:
        return cls(HealthStatus.FAILED, message, latency_ms)

    @property
    def healthy(self) -> bool:
        """Healthy enough to bind: ok or degraded passes the swap gate, failed does not."""
        return self.status in (HealthStatus.OK, HealthStatus.DEGRADED)
