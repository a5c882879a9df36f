"""The errors the engine raises, each carrying the CLI exit code it maps to (ARCHITECTURE §10).

Every message is one sentence an operator can act on; front doors print `str(error)` and
exit with `error.exit_code`, never a traceback unless `--debug`.
"""

from __future__ import annotations


class OneiricError(Exception):
    """Base for every error meant to reach an operator."""

    exit_code = 1


class UsageError(OneiricError):
    exit_code = 2


class NotFound(OneiricError):
    """An unknown domain, key, provider or record."""

    exit_code = 3


class Unhealthy(OneiricError):
    exit_code = 4


class SwapRefused(OneiricError):
    exit_code = 5


class ComponentPaused(OneiricError):
    """Raised by `engine.use()` for a paused, draining or drained key: never 'not found'."""

    exit_code = 5


class ComponentUnavailable(OneiricError):
    """The key exists but has no serving instance (activation failed or the engine is not started)."""

    exit_code = 4


class ConfigError(OneiricError):
    """A settings file that cannot be loaded; the message names file:line:column."""

    exit_code = 1


class ReadOnlyError(OneiricError):
    exit_code = 1


class FactoryError(OneiricError):
    """A factory that is malformed, outside the allow-list (never imported), or not importable."""

    exit_code = 1


class RemoteSyncFailed(OneiricError):
    """A remote manifest could not be fetched, verified or used; `kind` says which step failed
    (unreachable, timeout, http-status, too-large, parse, schema, signature, digest, ...)."""

    exit_code = 6

    def __init__(self, message: str, kind: str = "error", *, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
