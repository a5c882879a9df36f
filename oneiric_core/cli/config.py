"""`oneiric config validate` (every settings file parsed and checked, without an engine) and
`oneiric config import` (upstream Oneiric's settings written as this engine's)."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    p = actions.add_parser("import", help="write upstream Oneiric settings (oneiric.yaml, local.yaml, "
                           "$ONEIRIC_CONFIG) as this engine's settings files, reporting what has no equivalent",
                           example=["oneiric --settings ./settings config import",
                                    "oneiric config import --from ~/app/settings/oneiric.yaml --to ./settings"])
    p.add_argument("--from", dest="source", type=Path, metavar="FILE|DIR",
                   help="the upstream file, or a directory with oneiric.yaml/local.yaml (default: $ONEIRIC_CONFIG, "
                   "else --settings)")
    p.add_argument("--to", dest="target", type=Path, metavar="DIR",
                   help="where to write (default: --settings, when it holds none of this engine's files yet)")
    p.add_argument("--force", action="store_true", help="replace this engine's files already in DIR")
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_config(args: argparse.Namespace) -> int:
    if args.config_command == "import":
        return cmd_config_import(args)
    if args.config_command != "validate":
        raise UsageError("config needs an action: validate or import (see 'oneiric config --help').")
    return cmd_config_validate(args)


def cmd_config_import(args: argparse.Namespace) -> int:
    import os

    from ..upstream_import import write_import
    from ..upstream_settings import CONFIG_ENV, read_document, translate

    named = os.environ.get(CONFIG_ENV, "").strip()
    source = args.source or (Path(named) if named else Path(args.settings))
    document, read = read_document(source.expanduser())
    target = (args.target or Path(args.settings)).expanduser()
    result = write_import(read, translate(document), target, force=args.force)
    if args.json:
        print_json(result.to_dict())
        return ExitCode.ERROR if result.problems else ExitCode.OK
    if result.written:
        say(f"read {', '.join(str(p) for p in read)}; wrote {', '.join(p.name for p in result.written)} to {target}")
    for path, why in result.translation.unmapped.items():
        say(f"  not imported: {path}: {why}")
    for note in result.translation.notes:
        say(f"  note: {note}")
    for problem in result.problems:
        say(f"config invalid: {problem}", err=True)
    if result.problems:
        say(f"oneiric: the imported settings would not validate, so nothing was written to {target}; see above.",
            err=True)
        return ExitCode.ERROR
    left = len(result.translation.unmapped)
    say(f"{target}: the imported settings validate" + (f"; {left} upstream field(s) have no equivalent (above)."
                                                       if left else "."))
    return ExitCode.OK


def cmd_config_validate(args: argparse.Namespace) -> int:
    from ..config_check import validate_settings
    from ..upstream_settings import notices

    found = validate_settings(Path(args.settings))
    problems = found.problems
    ignored = notices(Path(args.settings))  # upstream Oneiric files here are not read: never "valid"
    if args.json:
        print_json({"settings_dir": args.settings, "valid": not problems and not ignored,
                     "problems": [p.to_dict() for p in problems], "warnings": found.warnings, "not_read": ignored})
        return ExitCode.ERROR if problems or ignored else ExitCode.OK
    for notice in ignored:
        say(f"not read: {notice}")
    if problems:
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
        if ignored:
            say(f"{args.settings}: app.yml and the domain files are valid, but {len(ignored)} upstream Oneiric "
                "setting(s) above are not read: their selections and options do not apply.")
        else:
            say(f"{args.settings}: every settings file is valid" + (" (see the warnings above)." if found.warnings
                                                                     else "."))
    return ExitCode.ERROR if problems or ignored else ExitCode.OK
