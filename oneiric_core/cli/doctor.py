"""`oneiric doctor`: is this installation fit to run, in one pass (upstream Oneiric has a
command of that name; ours is `runbook check` plus the installation and the settings): the
Python and the installed extras against what the settings ask for, every settings file, the
state directory's permissions, the journal's hash chain, every runbook tree and its automated
checks. Exit 1 when anything failed; warnings alone exit 0."""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ExitCode
from .output import print_json, say
from .parser import Commands

OK, WARN, FAIL = "ok", "warning", "failed"

if TYPE_CHECKING:
    from ..engine import Engine


@dataclass(frozen=True, slots=True)
class Check:
    area: str
    status: str  # ok | warning | failed
    sentence: str

    def to_dict(self) -> dict[str, str]:
        return {"area": self.area, "status": self.status, "sentence": self.sentence}


def add_parsers(commands: Commands) -> None:
    commands.add("doctor", "check this installation: Python, extras, settings, state permissions, the journal's "
                 "chain, every runbook and its automated checks", run=cmd_doctor,
                 example=["oneiric doctor", "oneiric --settings /etc/oneiric doctor --json"])


def _installation(engine: Engine) -> list[Check]:
    from ..telemetry_config import otlp_installed
    from .init import settings_parser, version

    checks = [Check("python", OK if sys.version_info >= (3, 11) else FAIL,
                    f"Python {platform.python_version()}; oneiric {version()}; settings parsed by {settings_parser()}")]
    exporter = engine.settings.app.telemetry.exporter
    if exporter == "otlp" and not otlp_installed():
        checks.append(Check("telemetry", FAIL, "app.yml asks for the otlp exporter, which is not installed: "
                                               "pip install 'oneiric-console[otlp]'"))
    else:
        checks.append(Check("telemetry", OK, f"exporter {exporter}"))
    return checks


def _settings(engine: Engine) -> list[Check]:
    from ..config_check import validate_settings

    found = validate_settings(Path(engine.settings_dir))
    checks = [Check("settings", FAIL, str(p)) for p in found.problems]
    checks += [Check("settings", WARN, w) for w in found.warnings]
    return checks or [Check("settings", OK, f"{engine.settings_dir}: every settings file is valid")]


def _state(engine: Engine) -> list[Check]:
    from ..journal_chain import verify
    from ..private_files import audit

    checks = [Check("state", WARN, w.sentence()) for w in audit(engine.state_dir)]
    verdict = verify(engine.store)
    checks.append(Check("journal", OK if verdict.intact else FAIL, verdict.sentence()))
    return checks


def _runbooks(engine: Engine) -> list[Check]:
    from ..runbooks.doctor import run_checks
    from ..runbooks.loader import load_catalog

    catalog = load_catalog(engine.settings_dir, roles=list(engine.settings.app.escalation.roles))
    checks = [Check("runbooks", FAIL, error) for error in catalog.errors]
    findings = asyncio.run(run_checks(catalog, engine))
    bad = [f for f in findings if f.bad]
    checks += [Check("runbooks", WARN, f"{f.fact}{' ' + f.subject if f.subject else ''}: {f.value} "
                                       f"({'; '.join(f.evidence[:1])}; walk {', '.join(f.trees) or '-'})")
               for f in bad]
    if not catalog.errors:
        checks.append(Check("runbooks", OK, f"{len(catalog.trees)} runbooks load; {len(findings)} automated "
                                            f"checks ran, {len(bad)} worth a look"))
    return checks


def _maintenance(engine: Engine) -> list[Check]:
    from ..errors import ConfigError
    from ..maintenance import Calendar

    try:
        calendar = Calendar(engine)
    except ConfigError as exc:
        return [Check("maintenance", FAIL, str(exc))]
    late = calendar.due()
    if not late:
        return [Check("maintenance", OK, f"{len(calendar.tasks)} routine tasks, none due")]
    return [Check("maintenance", WARN, f"{len(late)} routine task(s) due: {', '.join(s.task.id for s in late)} "
                                       "('oneiric maintenance' lists them)")]


def cmd_doctor(engine: Engine, args: argparse.Namespace) -> int:
    checks = _installation(engine) + _settings(engine) + _state(engine) + _runbooks(engine) + _maintenance(engine)
    failed = [c for c in checks if c.status == FAIL]
    if args.json:
        print_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        mark = {OK: "ok", WARN: "!!", FAIL: "FAIL"}
        for c in checks:
            say(f"{mark[c.status]:<4} {c.area:<9} {c.sentence}")
        warned = sum(1 for c in checks if c.status == WARN)
        say(f"{len(checks)} checks: {len(failed)} failed, {warned} warning(s).")
    return ExitCode.ERROR if failed else ExitCode.OK
