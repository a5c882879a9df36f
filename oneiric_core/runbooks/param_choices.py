"""What a walk's parameter can be, where the engine knows: a list to pick from, not free text.

A step that needs `target` (a swap's provider), `source` (a remote source), `domain` or `key`
asks the operator. The engine knows most answers: the candidates registered for the key
(the one serving now left out, or marked), the remote sources configured, the six domains, the
keys of a domain. A front door (the console's walk screen, the terminal prompt) shows them as
choices and always adds a way to type another value: a key that does not exist is what
"Component not found" is walked for, and a provider may be registered after this list was made.

No UI here: `param_choices` returns plain data the front door lays out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..domains import Domain
from ..errors import OneiricError

TYPE_ANOTHER = {"key": "Type a key that is not listed (it need not exist)...",
                "target": "Type a provider that is not listed...",
                "source": "Type a source that is not listed..."}


@dataclass
class ParamChoice:
    value: str  # what the parameter is set to
    label: str  # how the list shows it (the value, and what it is)


@dataclass
class ParamChoices:
    name: str
    title: str  # the question, in words
    choices: list[ParamChoice] = field(default_factory=list)
    hint: str = ""  # for typing another value: what it may be
    other: str = "Type another value..."  # the label of the "type another value" option (always offered)


def param_choices(engine: Any, params: dict[str, Any], name: str) -> ParamChoices:
    """The known values of parameter `name` for a walk with `params` (domain, key so far).
    Never raises for a key that does not exist: then the list is empty and typing is the way."""
    domain, key = params.get("domain"), params.get("key")
    out = ParamChoices(name, f"Value for '{name}'", hint=name, other=TYPE_ANOTHER.get(name, "Type a value..."))
    try:
        if name == "target" and domain and key:
            _targets(engine, str(domain), str(key), out)
        elif name == "domain":
            out.title = "Which domain?"
            out.choices = [ParamChoice(d.value, d.value) for d in Domain]
            out.hint = ", ".join(d.value for d in Domain)
        elif name == "key":
            _keys(engine, str(domain) if domain else None, out)
        elif name == "source":
            out.title = "Which remote source?"
            names = [str(s.get("name")) for s in engine.remote.statuses() if s.get("name")]
            out.choices = [ParamChoice(n, n) for n in names]
            out.hint = "a remote source name from app.yml's remote.sources"
    except (OneiricError, ValueError, AttributeError):
        pass  # the engine cannot say: typing stays
    return out


def _targets(engine: Any, domain: str, key: str, out: ParamChoices) -> None:
    ref = engine.ref(domain, key)
    serving = next((s.serving for s in engine.components([ref])), None)
    out.title = f"Provider to swap {ref} to (serving now: {serving or 'nothing'})"
    out.hint = "a provider name registered for this key"
    seen: set[str] = set()
    for candidate in engine.registry.bucket(ref):
        provider = candidate.provider
        if provider == serving or provider in seen:
            continue
        seen.add(provider)
        out.choices.append(ParamChoice(provider, f"{provider} ({candidate.source}, priority {candidate.priority})"))


def _keys(engine: Any, domain: str | None, out: ParamChoices) -> None:
    refs = list(engine.resolver.refs())
    if domain:
        refs = [r for r in refs if r.domain.value == domain]
        out.title = f"Which {domain} key?"
    else:
        out.title = "Which key?"
    labels = sorted({(r.key, r.key if domain else f"{r.key} ({r.domain.value})") for r in refs})
    out.choices = [ParamChoice(value, label) for value, label in labels]
    out.hint = "a component key; it need not exist (finding out why is what Component not found is for)"
