"""The package works installed, as a user deploying it runs it: outside the repository.

`make` and CI use an editable install, which reads the checkout, so a file missing from the
wheel (the console's stylesheet once, the runbook trees and the demo until issue 13) never
showed there. Here the checkout's files (tracked and new, not ignored ones) are copied to a
temporary directory; from that copy an sdist and a wheel are built, and a second wheel from the
sdist (what pip does with a source release); both wheels must hold the same files. The wheel
built from the sdist is installed into a fresh venv outside the checkout, with its dependencies,
by pip with the machine's own configuration (the index the Makefile's `pip install` uses), and
without the `fast` extra, so the installed commands also run on ruamel.yaml, the default parser.
From a directory outside the checkout: `oneiric --version`, `python -m oneiric_core --version`,
`oneiric init`, `status --json`, `runbook list` and the console to its first frame (tmux).

The builds use the checkout venv's setuptools (`--no-build-isolation`; the dev extra installs a
new enough one), so no build dependency is downloaded. Everything is built and installed once
for the module (about 45 s here, most of it pip installing the dependencies).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import DEMO, REPO

RUNBOOKS = sorted(p.name for p in (DEMO / "runbooks").glob("*.yml"))


@dataclass
class Installed:
    venv: Path
    wheel: Path  # the one installed: built from the sdist
    wheel_from_tree: Path
    sdist: Path
    outside: Path  # a working directory outside the checkout
    seconds: float  # build + install, for the report

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ONEIRIC_", "PYTHON", "VIRTUAL_ENV")) and k not in ("SSH_CLIENT", "SSH_CONNECTION")}
        env.update({"PATH": f"{self.bin}{os.pathsep}{env.get('PATH', '')}", "ONEIRIC_OPERATOR": "wheel-tester",
                    "COLUMNS": "120"})
        return env

    def run(self, *argv: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=self.outside,
                              env=self.env(), timeout=timeout)


# Without git (an exported tree): what .gitignore leaves out, by name.
_IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                  ".hypothesis", ".oneiric", "snapshot_report.html")


def _copy_checkout(dest: Path) -> None:
    """The files a build of this checkout sees: tracked and untracked, not the ignored ones
    (.venv, build/, *.egg-info, caches). Symlinks stay symlinks (oneiric_core/defaults)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True) if shutil.which("git") else None
    if listed is None or listed.returncode != 0:
        shutil.copytree(REPO, dest, symlinks=True, ignore=_IGNORED)
        return
    for rel in filter(None, listed.stdout.decode().split("\0")):
        source, target = REPO / rel, dest / rel
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet in git
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)


def _check(argv: list[str | Path], cwd: Path) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert proc.returncode == 0, f"$ {shlex.join(map(str, argv))}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    started = time.monotonic()
    work = tmp_path_factory.mktemp("wheel")
    assert REPO not in work.parents
    src, dist, dist2 = work / "src", work / "dist", work / "dist-from-sdist"
    _copy_checkout(src)
    _check([sys.executable, "-c", "import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])",
            dist], cwd=src)
    _check([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, src],
           cwd=work)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel_from_tree,) = dist.glob("*.whl")
    _check([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist2, sdist],
           cwd=work)
    (wheel,) = dist2.glob("*.whl")
    venv = work / "venv"
    _check([sys.executable, "-m", "venv", venv], cwd=work)
    _check([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel],
           cwd=work)
    outside = work / "outside"
    outside.mkdir()
    seconds = time.monotonic() - started
    print(f"\nwheel and sdist built, fresh venv installed in {seconds:.1f} s")
    return Installed(venv, wheel, wheel_from_tree, sdist, outside, seconds)


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if ".dist-info/" not in n or not n.endswith("RECORD")}


def test_the_wheel_ships_the_stylesheet_the_demo_and_the_runbooks(installed: Installed) -> None:
    names = _names(installed.wheel)
    assert _names(installed.wheel_from_tree) == names  # the sdist loses nothing
    assert "oneiric_tui/console.tcss" in names
    assert {f"oneiric_core/defaults/runbooks/{n}" for n in RUNBOOKS} <= names
    demo = {str(p.relative_to(DEMO)) for p in DEMO.rglob("*") if p.is_file()}
    assert {f"oneiric_core/defaults/{rel}" for rel in demo} <= names
    assert "oneiric_core/__main__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "settings/"))]
    with zipfile.ZipFile(installed.wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist())
    requires = [line.split(": ", 1)[1] for line in meta.splitlines() if line.startswith("Requires-Dist: ")]
    assert "License-Expression: MIT" in meta
    assert "Project-URL: Homepage, https://github.com/oneiric-console/oneiric-console" in meta
    assert "Classifier: Programming Language :: Python :: 3.11" in meta
    assert [r for r in requires if r.startswith("yaml-rs")] == ['yaml-rs==0.1.6; extra == "fast"']
    assert "rich<16,>=14.2" in requires
    with tarfile.open(installed.sdist) as tf:
        members = {m.name.split("/", 1)[1]: m for m in tf.getmembers() if "/" in m.name}
    assert members["oneiric_core/defaults/app.yml"].isfile()  # real files in the sdist, not the symlink
    assert "LICENSE" in members


def test_installed_commands_run_outside_the_checkout(installed: Installed) -> None:
    py, oneiric = installed.bin / "python", installed.bin / "oneiric"
    where = installed.run(py, "-c", "import oneiric_core, oneiric_tui, sys; print(oneiric_core.__file__); "
                          "print(oneiric_tui.__file__); print('yaml_rs' in sys.modules)")
    core_file, tui_file, _ = where.stdout.splitlines()
    assert installed.venv in Path(core_file).parents and installed.venv in Path(tui_file).parents, where.stdout
    no_fast = installed.run(py, "-c", "import yaml_rs")
    assert no_fast.returncode == 1 and "No module named 'yaml_rs'" in no_fast.stderr  # a plain install

    for argv in ([oneiric, "--version"], [py, "-m", "oneiric_core", "--version"]):
        got = installed.run(*argv)
        assert (got.returncode, got.stdout, got.stderr) == (0, "oneiric 0.1.0\n", ""), got
    version = installed.run(oneiric, "version", "--json")
    assert json.loads(version.stdout)["settings_parser"] == "ruamel.yaml", version

    settings, state = installed.outside / "settings", installed.outside / "state"
    init = installed.run(oneiric, "init", "settings")
    assert init.returncode == 0, init
    shipped = sum(1 for p in DEMO.rglob("*") if p.is_file())  # every file of the demo is in the wheel
    assert init.stdout.startswith(f"wrote {shipped} files to {settings}: "), init.stdout
    assert "next: oneiric --settings settings console" in init.stdout, init.stdout
    assert (settings / "app.yml").read_bytes() == (DEMO / "app.yml").read_bytes()

    status = installed.run(oneiric, "--settings", settings, "--state-dir", state, "status", "--json")
    assert status.returncode == 0, status
    shown = json.loads(status.stdout)
    assert {f"{c['domain']}/{c['key']}" for c in shown["components"]} >= {"adapter/cache", "adapter/storage",
                                                                          "action/compress"}
    assert (shown["settings_dir"], shown["state_dir"], shown["config_problems"]) == (str(settings), str(state), [])

    listed = installed.run(oneiric, "--settings", settings, "--state-dir", state, "runbook", "list", "--json")
    assert listed.returncode == 0, listed
    assert sorted(Path(r["file"]).name for r in json.loads(listed.stdout)["runbooks"]) == RUNBOOKS

    bare = installed.outside / "bare"  # settings of one's own, with no runbooks/: the package's trees
    bare.mkdir()
    (bare / "app.yml").write_text("state_dir: bare-state\n")
    defaults = installed.run(oneiric, "--settings", bare, "runbook", "list", "--json")
    assert defaults.returncode == 0, defaults
    files = [Path(r["file"]) for r in json.loads(defaults.stdout)["runbooks"]]
    assert sorted(f.name for f in files) == RUNBOOKS and all(installed.venv in f.parents for f in files)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_installed_console_draws_its_first_frame(installed: Installed) -> None:
    settings, state = installed.outside / "console-settings", installed.outside / "console-state"
    assert installed.run(installed.bin / "oneiric", "init", settings).returncode == 0
    session = f"oneiric-wheel-{os.getpid()}"
    env = installed.env()
    console = shlex.join([str(installed.bin / "oneiric"), "--settings", str(settings), "--state-dir", str(state),
                          "console"])
    variables = shlex.join(f"{k}={v}" for k, v in env.items())  # the tmux server's own environment is not ours
    shell = f"cd {shlex.quote(str(installed.outside))} && exec env -i {variables} {console}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", shell], check=True)
    try:
        deadline, screen = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "cache  memory" not in screen:
            time.sleep(0.2)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout
        for text in ("1 Components", "adapters", "cache  memory", "storage  scratch"):
            assert text in screen, screen
        assert "Error" not in screen and "Traceback" not in screen, screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)

