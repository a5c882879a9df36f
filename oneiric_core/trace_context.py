"""A client's trace, carried to the host with its request; and the span that costs nothing.

A program that calls the Operator port inside one of its own spans (its own OpenTelemetry
SDK, any tracer) gets the host's `host.command` span, and the swap it runs, in the same
trace: `OverSocket` adds the W3C `traceparent` (and `tracestate`) of the active span to the
request (`outgoing`), and the host continues the trace from it (`incoming`). A process that
never imported OpenTelemetry has no active span, so `outgoing` does not import it either:
the CLI stays as quick as before.

`NO_SPAN` is what instrumented code uses when nothing records spans (no telemetry, or an
exporter of `none`): a context manager whose span ignores everything, without any
OpenTelemetry import or allocation.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
MAX_HEADER = 512  # W3C: a traceparent is 55 characters; tracestate at most 512


class NoSpan:
    """A span that records nothing (the subset of opentelemetry.trace.Span the engine uses)."""

    __slots__ = ()

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        return None

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        return None

    def is_recording(self) -> bool:
        return False


NO_SPAN = NoSpan()


def outgoing() -> dict[str, str]:
    """The trace context of the span active in this process, as request fields; {} when
    none is active (or OpenTelemetry was never imported, so none can be)."""
    if "opentelemetry.trace" not in sys.modules:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


def incoming(message: Mapping[str, Any]) -> Any | None:
    """The OpenTelemetry Context a request's `traceparent` names, to parent the host's span
    on; None when it carries none, or one that is not valid W3C trace context."""
    parent = message.get(TRACEPARENT)
    if not isinstance(parent, str) or len(parent) > MAX_HEADER:
        return None
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {TRACEPARENT: parent}
    state = message.get(TRACESTATE)
    if isinstance(state, str) and len(state) <= MAX_HEADER:
        carrier[TRACESTATE] = state
    context = TraceContextTextMapPropagator().extract(carrier)
    return context if get_current_span(context).get_span_context().is_valid else None


__all__ = ["MAX_HEADER", "NO_SPAN", "NoSpan", "TRACEPARENT", "TRACESTATE", "incoming", "outgoing"]
