"""The reference in docs/ kept true by the code it describes (issue 13 point 5): every field of
the settings models is in docs/settings.md, every ExitCode member with its number in
docs/exit-codes.md, every JSON field the commands print in docs/json.md (and nothing they do
not print), and no code or doc cites the ARCHITECTURE file that is not in the repository.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric_core.errors import ExitCode
from oneiric_core.schema import Model
from oneiric_core.settings_model import AppSettings, DomainSettings

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"


# -- settings --------------------------------------------------------------------------------------

def _models_in(tp: Any) -> list[tuple[str, type[Model]]]:
    """The settings models a field's type holds, with how a path reaches into them: "" for the
    model itself, "[]" for each item of a list, ".*" for each value of a mapping."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _models_in(args[0])
    if isinstance(tp, type) and issubclass(tp, Model):
        return [("", tp)]
    if origin is list and args:
        return [("[]" + s, m) for s, m in _models_in(args[0])]
    if origin is dict and len(args) == 2:
        return [(".*" + s, m) for s, m in _models_in(args[1])]
    return [found for a in args if a is not type(None) for found in _models_in(a)]


def setting_paths(model: type[Model], prefix: str = "") -> Iterator[str]:
    """Every key a settings file of `model` may hold, as docs/settings.md spells it
    (`remote.sources[].uri`, `escalation.roles.*.email`)."""
    hints = typing.get_type_hints(model, include_extras=True)
    for f in dataclasses.fields(model):  # type: ignore[arg-type]
        path = prefix + f.name
        yield path
        for suffix, sub in _models_in(hints[f.name]):
            yield from setting_paths(sub, path + suffix + ".")


def _documented_names(page: Path) -> set[str]:
    names: set[str] = set()
    for line in page.read_text().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


@pytest.mark.parametrize("model", [AppSettings, DomainSettings], ids=["app.yml", "domain files"])
def test_every_settings_field_is_in_docs_settings(model: type[Model]) -> None:
    documented = _documented_names(DOCS / "settings.md")
    missing = [p for p in setting_paths(model) if p not in documented]
    assert not missing, f"docs/settings.md has no row for: {', '.join(missing)}"


def test_the_settings_walk_sees_nested_options() -> None:
    # the test above is only as good as this walk: it must reach into lists, mappings and optionals
    paths = set(setting_paths(AppSettings))
    assert {"remote.sources[].uri", "escalation.roles.*.email", "access.approve.groups",
            "remote.breaker.reset_s"} <= paths


def test_docs_settings_names_no_setting_that_does_not_exist() -> None:
    known = set(setting_paths(AppSettings)) | set(setting_paths(DomainSettings))
    text = (DOCS / "settings.md").read_text()
    section = text[text.index("## A domain file"):text.index("## Environment")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {n for line in rows for n in re.findall(r"`([^`]+)`", line.split("|")[1])}
    assert named - known == set(), f"docs/settings.md documents keys the models lack: {sorted(named - known)}"


# -- exit codes ------------------------------------------------------------------------------------

def test_docs_exit_codes_lists_every_member_with_its_number() -> None:
    rows = {}
    for line in (DOCS / "exit-codes.md").read_text().splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|", line)
        if match:
            rows[match[2]] = int(match[1])
    assert rows == {member.name: member.value for member in ExitCode}


# -- JSON shapes -----------------------------------------------------------------------------------

_SHAPE = re.compile(r"<!--\s*shape:\s*(\S+)\s+(\S+)\s*-->")

COMMANDS = {
    "status": ["status"], "list": ["list"], "explain": ["explain", "cache"], "activity": ["activity"],
    "remote-status": ["remote-status"], "health": ["health"], "approvals": ["approvals"],
    "journal": ["journal", "--limit", "20"], "journal-verify": ["journal", "verify"], "nodes": ["nodes"],
}


def documented_shapes() -> list[tuple[str, str, set[str]]]:
    """(command, path, fields) for each `<!-- shape: COMMAND PATH -->` table of docs/json.md."""
    lines = (DOCS / "json.md").read_text().splitlines()
    shapes = []
    for i, line in enumerate(lines):
        match = _SHAPE.fullmatch(line.strip())
        if not match:
            continue
        fields: set[str] = set()
        for row in lines[i + 3:]:
            if not row.startswith("|"):
                break
            fields |= set(re.findall(r"`([^`]+)`", row.split("|")[1]))
        shapes.append((match[1], match[2], fields))
    return shapes


def _at(document: Any, path: str) -> dict[str, Any] | None:
    """The first object found at `path` (".", ".host", ".components[].proposal") that is not null."""
    values = [document]
    for part in filter(None, re.split(r"\.", path.strip("."))):
        name, many = (part[:-2], True) if part.endswith("[]") else (part, False)
        values = [v.get(name) for v in values if isinstance(v, dict)]
        if many:
            values = [item for v in values if isinstance(v, list) for item in v]
    return next((v for v in values if isinstance(v, dict)), None)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The --json output of each command against a real host (`oneiric run`) on a fresh
    `oneiric init`, with its remote source synced, a pending proposal and a paused key."""
    root = tmp_path_factory.mktemp("json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEIRIC_", "OTEL_"))}
    env.update(HOME=str(root), COLUMNS="100")
    cli = [sys.executable, "-m", "oneiric_core"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)

    assert run("init", "settings").returncode == 0
    bad = root / "bad"
    assert run("init", str(bad)).returncode == 0
    (bad / "app.yml").write_text((bad / "app.yml").read_text().replace("activation_timeout", "activation_timout"))
    log = root / "host.log"
    host = subprocess.Popen([*cli, "run"], cwd=root, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while '"remote-sync-complete"' not in log.read_text():
            assert host.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert run("swap", "cache", "--provider", "sqlite").returncode == 0
        assert run("pause", "http").returncode == 0
        found = {name: json.loads(run(*argv, "--json").stdout) for name, argv in COMMANDS.items()}
        found["config-validate"] = json.loads(run("--settings", str(bad), "config", "validate", "--json").stdout)
        return found
    finally:
        host.send_signal(signal.SIGINT)
        host.wait(timeout=30)


@pytest.mark.parametrize("command,path,fields", documented_shapes(),
                         ids=[f"{c} {p}" for c, p, _ in documented_shapes()])
def test_docs_json_names_exactly_the_fields_printed(outputs: dict[str, Any], command: str, path: str,
                                                     fields: set[str]) -> None:
    shown = _at(outputs[command], path)
    assert shown is not None, f"{command} --json printed no object at {path} to check docs/json.md against"
    documented = fields - {"domain", "key"} if command == "explain" and path != "." else fields
    assert set(shown) == documented, (
        f"docs/json.md, {command} {path}: not documented {sorted(set(shown) - documented)}; "
        f"documented but not printed {sorted(documented - set(shown))}")


def test_docs_json_covers_the_commands_the_readme_sends_there() -> None:
    covered = {(c, p) for c, p, _ in documented_shapes()}
    for command in ("status", "list", "explain", "activity", "remote-status", "config-validate"):
        assert (command, ".") in covered or command == "explain" and ("list", ".candidates[]") in covered, command


# -- citations -------------------------------------------------------------------------------------

def test_nothing_cites_the_architecture_file_outside_docs() -> None:
    hits = []
    for top in ("oneiric_core", "oneiric_tui", "tests", "bench", "docs", "settings", "deploy"):
        for path in (REPO / top).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".md", ".yml", ".service") and path != Path(__file__):
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if "ARCHITECTURE" in line:
                        hits.append(f"{path.relative_to(REPO)}:{n}")
    assert not hits, "cite docs/architecture.md instead: " + ", ".join(hits)


def test_docs_architecture_keeps_the_section_numbers_code_cites() -> None:
    text = (DOCS / "architecture.md").read_text()
    headings = set(re.findall(r"^## (\d+)\. ", text, re.M))
    cited = set()
    for top in ("oneiric_core", "oneiric_tui", "tests", "bench"):
        for path in (REPO / top).rglob("*.py"):
            cited |= set(re.findall(r"docs/architecture\.md §(\d+)", path.read_text(errors="replace")))
    assert cited and cited <= headings, f"cited sections without a heading: {sorted(cited - headings)}"


def test_every_doc_link_resolves() -> None:
    broken = []
    for page in [REPO / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken
