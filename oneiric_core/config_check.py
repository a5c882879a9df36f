"""What `oneiric config validate` checks beyond parsing: every factory a domain file names
could be built by the host. A factory is checked against app.yml's `factory_allowlist`, its
module is looked for on the Python path, and its attribute in the module's source.

Nothing is imported and no factory is called. Importing a module runs its top level
(connections, threads, anything its author wrote), and validate is what an operator or a CI
job runs on settings they do not trust yet; the host imports the allowed modules when it
starts anyway. So the module is located the way `import` would locate it, level by level,
without running any package's `__init__` (factories.find_module_spec), and the attribute is
looked for among the names the module's source binds at its top level (`ast`). What this
cannot see passes: a name made at run time (a module `__getattr__`, `import *`), a module
without Python source, an import that fails inside the module itself. Each failure is one
problem naming the file, the line of the `factory:` value where it can be found, the
candidate and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .domains import Domain
from .factories import factory_problem
from .input_limits import LimitExceeded, read_capped
from .settings import _missing_dir_message, _validate_files, limits_for
from .settings_model import (
    APP_FILE,
    AppSettings,
    ConfigProblem,
    DomainSettings,
    _abs,
    _sorted,
)

# `factory: pkg.mod:attr` on its own line (block style, possibly after the `- ` of a list item),
# optionally quoted: where a candidate's factory is written, for the problem's line and column.
_FACTORY_LINE = re.compile(r"^[ \t]*(?:-[ \t]+)?factory:[ \t]*(?P<q>[\"']?)(?P<value>[^\"'\s#]+)", re.MULTILINE)


@dataclass
class Validation:
    """What `config validate` found: problems of the files themselves (each such file keeps
    its last good version in force), factories the host could not build (the file loads,
    but that candidate fails when the host activates it), a telemetry exporter that is
    configured but not installed; and warnings, which do not fail it (an OTLP endpoint that
    does not answer now: the host retries)."""

    files: list[ConfigProblem] = field(default_factory=list)
    factories: list[ConfigProblem] = field(default_factory=list)
    telemetry: list[ConfigProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[ConfigProblem]:
        return self.files + self.factories + self.telemetry


def validate_settings(settings_dir: Path, *, environ: Mapping[str, str] | None = None) -> Validation:
    """Every problem `oneiric config validate` reports: those of `settings.validate_dir` (each
    file's size, nesting, syntax and schema), then every factory of the domain files that
    loaded cleanly that the host could not build, then telemetry (telemetry_config.validate,
    with the OTEL_* variables of `environ`, default this process's)."""
    directory = _abs(settings_dir)
    if not directory.is_dir():
        return Validation([ConfigProblem(directory, None, None, _missing_dir_message(directory))])
    files, good = _validate_files(directory)
    app = good.get(directory / APP_FILE)
    app = app if isinstance(app, AppSettings) else AppSettings()
    factories: list[ConfigProblem] = []
    for domain in Domain:
        file = directory / domain.settings_file
        layer = good.get(file)
        if isinstance(layer, DomainSettings) and layer.candidates:
            factories.extend(factory_problems(file, domain, layer, app))
    found = Validation(files, factories)
    _check_telemetry(found, directory / APP_FILE, app, environ)
    return found


def _check_telemetry(found: Validation, file: Path, app: AppSettings, environ: Mapping[str, str] | None) -> None:
    from .telemetry_config import TelemetryConfig, validate

    for finding in validate(TelemetryConfig.resolve(app.telemetry, environ)):
        if finding.severity == "error":
            line, column = _key_position(file, app, "exporter")
            found.telemetry.append(ConfigProblem(file, line, column, f"telemetry.exporter: {finding.message}"))
        else:
            found.warnings.append(f"telemetry: {finding.message}")


def _key_position(file: Path, app: AppSettings, key: str) -> tuple[int | None, int | None]:
    """Where `key:` is first written in `file` (1-based), for a problem's position."""
    try:
        text = read_capped(file, limits_for(file, app)).decode("utf-8-sig", errors="replace")
    except (OSError, LimitExceeded):
        return None, None
    match = re.search(rf"^([ \t]*){re.escape(key)}:", text, re.MULTILINE)
    if match is None:
        return None, None
    return text.count("\n", 0, match.start()) + 1, len(match.group(1)) + 1


def factory_problems(file: Path, domain: Domain, layer: DomainSettings, app: AppSettings) -> list[ConfigProblem]:
    """One problem per candidate of `layer` (read from `file`) whose factory cannot be built."""
    verdicts: dict[str, str | None] = {}
    problems = []
    lines = _factory_positions(file, app)
    for index, spec in enumerate(layer.candidates):
        if spec.factory not in verdicts:
            verdicts[spec.factory] = factory_problem(spec.factory, app.factory_allowlist)
        reason = verdicts[spec.factory]
        where = lines.get(spec.factory, [])
        line, column = where.pop(0) if where else (None, None)
        if reason is not None:
            problems.append(ConfigProblem(file, line, column, f"candidates[{index}] ({domain.value}/{spec.key}, "
                                          f"provider {spec.provider}): {reason}"))
    return _sorted(problems)


def _factory_positions(file: Path, app: AppSettings) -> dict[str, list[tuple[int, int]]]:
    """Each factory value's (line, column) in the file, in order of appearance."""
    try:
        text = read_capped(file, limits_for(file, app)).decode("utf-8-sig", errors="replace")
    except (OSError, LimitExceeded):
        return {}
    positions: dict[str, list[tuple[int, int]]] = {}
    line, counted = 1, 0  # newlines are counted once, from one match to the next
    for match in _FACTORY_LINE.finditer(text):
        start = match.start("value") - len(match["q"])
        line += text.count("\n", counted, start)
        counted = start
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        positions.setdefault(match["value"], []).append((line, column))
    return positions


__all__ = ["Validation", "factory_problems", "validate_settings"]
