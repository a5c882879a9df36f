"""`oneiric config validate`: every settings file parsed and checked, without an engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ExitCode, UsageError
from .output import print_json, say
from .parser import Commands


def add_parsers(commands: Commands) -> None:
    config, actions = commands.group("config", "settings checks", dest="config_command",
                                     example="oneiric --settings ./settings config validate")
    config.handle(cmd_config, needs_engine=False)
    p = actions.add_parser("validate", help="parse and validate every settings file",
                           example=["oneiric config validate", "oneiric config validate --json"])
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_config(args: Any) -> int:
    if args.config_command != "validate":
        raise UsageError("config needs an action: validate (see 'oneiric config --help').")
    return cmd_config_validate(args)


def cmd_config_validate(args: Any) -> int:
    from ..config_check import validate_settings

    found = validate_settings(Path(args.settings))
    problems = found.problems
    if args.json:
        print_json({"settings_dir": args.settings, "valid": not problems,
                     "problems": [p.to_dict() for p in problems], "warnings": found.warnings})
    elif problems:
        for p in problems:
            say(p)
        for warning in found.warnings:
            say(f"warning: {warning}")
        consequences = []
        if found.files:
            consequences.append("the engine keeps the last good version of each broken file in force "
                                "(defaults if it never loaded one)")
        if found.factories:
            consequences.append("a candidate whose factory cannot be built fails when the host activates it")
        if found.telemetry:
            consequences.append("the host keeps its telemetry in memory and exports nothing")
        say(f"{len(problems)} problem(s). Until they are fixed, {'; '.join(consequences)}.")
    else:
        for warning in found.warnings:
            say(f"warning: {warning}")
        say(f"{args.settings}: every settings file is valid" + (" (see the warnings above)." if found.warnings
                                                                 else "."))
    return ExitCode.ERROR if problems else ExitCode.OK
