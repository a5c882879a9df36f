"""The errors the engine raises, each carrying the CLI exit code it maps to (docs/architecture.md §10).

Every message is one sentence an operator can act on; front doors print `str(error)` and
exit with `error.exit_code`, never a traceback unless `--debug`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings_model import ConfigProblem


class ExitCode(IntEnum):
    """Every exit code of `oneiric` (docs/exit-codes.md): scripts branch on
    these numbers, so each keeps its meaning across releases."""

    OK = 0
    ERROR = 1  # something failed: a broken settings file, a store that could not write, a tampered journal
    USAGE = 2  # the command line is wrong
    NOT_FOUND = 3  # an unknown domain, key, provider, proposal, incident or runbook
    UNHEALTHY = 4  # a health check failed, or the key has nothing serving
    SWAP_REFUSED = 5  # a swap was refused, rolled back or blocked (a paused key)
    REMOTE = 6  # a remote source or a manifest failed
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class OneiricError(Exception):
    """Base for every error meant to reach an operator."""

    exit_code = ExitCode.ERROR


class UsageError(OneiricError):
    exit_code = ExitCode.USAGE


class NotFound(OneiricError):
    """An unknown domain, key, provider or record."""

    exit_code = ExitCode.NOT_FOUND


class Unhealthy(OneiricError):
    exit_code = ExitCode.UNHEALTHY


class SwapRefused(OneiricError):
    exit_code = ExitCode.SWAP_REFUSED


class ComponentPaused(OneiricError):
    """Raised by `engine.use()` for a paused, draining or drained key: never 'not found'."""

    exit_code = ExitCode.SWAP_REFUSED


class ComponentUnavailable(OneiricError):
    """The key exists but has no serving instance (activation failed or the engine is not started)."""

    exit_code = ExitCode.UNHEALTHY


class ConfigError(OneiricError):
    """A settings file that cannot be loaded; the message names file:line:column."""

    exit_code = ExitCode.ERROR
    problems: list[ConfigProblem]  # every problem found, where the loader lists them (settings_model)


class ReadOnlyError(OneiricError):
    exit_code = ExitCode.ERROR


class FactoryError(OneiricError):
    """A factory that is malformed, outside the allow-list (never imported), or not importable."""

    exit_code = ExitCode.ERROR


class RemoteSyncFailed(OneiricError):
    """A remote manifest could not be fetched, verified or used; `kind` says which step failed
    (unreachable, timeout, http-status, too-large, parse, schema, signature, digest, ...)."""

    exit_code = ExitCode.REMOTE
    report: dict[str, Any]  # `manifest verify`'s report of what was checked, where it got that far

    def __init__(self, message: str, kind: str = "error", *, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
