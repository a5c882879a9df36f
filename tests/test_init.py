"""What an installed `oneiric` needs before it has settings: `init`, `--version`, `python -m
oneiric_core`, and the default runbook trees (issue 13 point 1). Run here from the checkout;
tests/test_wheel.py runs the same commands from a wheel installed outside it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from oneiric_core.package_data import default_runbook_dir, template_dir
from tests.helpers import DEMO, REPO


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_init_writes_a_copy_of_the_demo_that_works(run_cli, tmp_path):
    dest = tmp_path / "ops" / "settings"
    result = run_cli("init", dest, settings=None, state_dir=None)
    assert result.returncode == 0, result
    assert _tree(dest) == _tree(DEMO)  # app.yml, the domain files, manifests/, runbooks/: byte for byte
    lines = result.stdout.splitlines()
    files, trees = len(_tree(DEMO)), len(list((DEMO / "runbooks").glob("*.yml")))
    assert files >= 30 and trees >= 20  # the demo, the maintenance calendar, every shipped tree
    assert lines[0].startswith(f"wrote {files} files to {dest}: ") and f"runbooks/ ({trees} files)" in lines[0], result
    assert f"state will be kept in {tmp_path / 'ops' / '.oneiric'} " in result.stdout
    assert lines[-1].startswith(f"next: oneiric --settings {dest} console"), result
    assert result.stderr == ""

    status = run_cli("status", "--json", settings=dest)
    assert status.returncode == 0, status
    assert {"adapter/cache", "action/compress"} <= {f"{c['domain']}/{c['key']}" for c in status.json()["components"]}
    assert status.json()["config_problems"] == []
    assert run_cli("config", "validate", settings=dest).returncode == 0


def test_init_defaults_to_the_settings_option(run_cli, tmp_path):
    result = run_cli("init", settings=tmp_path / "mine", state_dir=None)
    assert result.returncode == 0, result
    assert (tmp_path / "mine" / "app.yml").read_bytes() == (DEMO / "app.yml").read_bytes()


def test_init_refuses_a_non_empty_directory_unless_forced(run_cli, tmp_path):
    dest = tmp_path / "settings-here"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    refused = run_cli("init", dest, settings=None, state_dir=None)
    assert refused.returncode == 1, refused
    assert refused.stdout == "" and refused.stderr.count("\n") == 1, refused
    assert refused.stderr.startswith(f"oneiric: {dest} is not empty: ") and "--force" in refused.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]  # nothing written

    forced = run_cli("init", dest, "--force", settings=None, state_dir=None)
    assert forced.returncode == 0, forced
    assert "replaced" not in forced.stdout  # none of the template's files was there
    assert (dest / "notes.txt").read_text() == "mine" and (dest / "runbooks" / "hot-swap-failed.yml").is_file()

    (dest / "app.yml").write_text("state_dir: elsewhere\n")
    again = run_cli("init", dest, "--force", settings=None, state_dir=None)
    assert again.returncode == 0, again
    assert f"replaced {len(_tree(DEMO))} existing files: " in again.stdout
    assert (dest / "app.yml").read_bytes() == (DEMO / "app.yml").read_bytes()


def test_init_refuses_a_path_that_is_a_file(run_cli, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    refused = run_cli("init", target, settings=None, state_dir=None)
    assert refused.returncode == 1 and refused.stderr == f"oneiric: {target} exists and is not a directory.\n", refused


def test_version_flag_command_and_python_m(run_cli, tmp_path):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    import oneiric_core

    assert oneiric_core.__version__ == version  # the fallback when no metadata is installed agrees
    flag = run_cli("--version", settings=None, state_dir=None)
    assert (flag.returncode, flag.stdout, flag.stderr) == (0, f"oneiric {version}\n", ""), flag
    command = run_cli("version", "--json", settings=None, state_dir=None)
    assert command.returncode == 0 and command.json()["version"] == version, command
    assert command.json()["settings_parser"] in ("yaml-rs", "ruamel.yaml")
    as_module = subprocess.run([sys.executable, "-m", "oneiric_core", "--version"], capture_output=True, text=True,
                               cwd=tmp_path, timeout=60)
    assert (as_module.returncode, as_module.stdout) == (0, f"oneiric {version}\n"), as_module.stderr
    usage = subprocess.run([sys.executable, "-m", "oneiric_core"], capture_output=True, text=True, cwd=tmp_path,
                           timeout=60)
    assert usage.returncode == 2 and usage.stdout.startswith("usage: oneiric "), usage


def test_settings_without_a_runbooks_directory_get_the_packaged_trees(run_cli, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "app.yml").write_text("state_dir: state\n")
    listed = run_cli("runbook", "list", "--json", settings=bare)
    assert listed.returncode == 0, listed
    rows = listed.json()["runbooks"]
    assert {r["id"] for r in rows} == {p.stem for p in (DEMO / "runbooks").glob("*.yml")}
    assert {Path(r["file"]).parent for r in rows} == {default_runbook_dir()}
    assert default_runbook_dir() == template_dir() / "runbooks" and template_dir().resolve() == DEMO.resolve()
    shown = run_cli("runbook", "show", "hot-swap-failed", settings=bare)
    assert shown.returncode == 0 and "Hot-swap failed" in shown.stdout, shown


def test_own_runbooks_add_to_the_defaults_and_override_them(run_cli, tmp_path):
    own = tmp_path / "own"
    (own / "runbooks").mkdir(parents=True)
    (own / "app.yml").write_text("state_dir: state\n")
    mine = (DEMO / "runbooks" / "quick-reference.yml").read_text()
    assert "id: quick-reference" in mine and "title: " in mine
    # a tree of one's own (a copy of a default under a new id) and an override of a default by id
    (own / "runbooks" / "our-reference.yml").write_text(
        mine.replace("id: quick-reference", "id: our-reference"))
    stuck = (DEMO / "runbooks" / "stuck-activating.yml").read_text()
    (own / "runbooks" / "renamed.yml").write_text(re.sub(r"(?m)^title: .*$", "title: Our stuck activation", stuck))
    listed = run_cli("runbook", "list", "--json", settings=own)
    assert listed.returncode == 0, listed
    rows = {r["id"]: r for r in listed.json()["runbooks"]}
    assert set(rows) == {p.stem for p in (DEMO / "runbooks").glob("*.yml")} | {"our-reference"}
    assert rows["our-reference"]["file"] == str(own / "runbooks" / "our-reference.yml")
    assert (rows["stuck-activating"]["file"], rows["stuck-activating"]["title"]) == \
        (str(own / "runbooks" / "renamed.yml"), "Our stuck activation")
    assert Path(rows["hot-swap-failed"]["file"]).parent == default_runbook_dir()

    # an own file named like a default replaces it even when it is broken: its error is listed
    (own / "runbooks" / "hot-swap-failed.yml").write_text("id: hot-swap-failed\ntitle: [unclosed\n")
    broken = run_cli("runbook", "list", "--json", settings=own)
    assert broken.returncode == 1, broken
    assert "hot-swap-failed" not in {r["id"] for r in broken.json()["runbooks"]}
    assert [e for e in broken.json()["errors"] if "hot-swap-failed.yml:" in e and str(own) in e], broken
