"""yaml-rs is optional (the `fast` extra): without it, settings and YAML manifests read the same.

Two real processes load the same files and print what they got: one as the dev install has it
(yaml-rs), one whose `sitecustomize.py` installs an import hook refusing `yaml_rs`, as if it were
not installed. tests/test_settings_fastpath.py runs the parser-level checks on both parsers;
tests/test_wheel.py runs the installed commands without yaml-rs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DEMO, many_candidates

# What a process sees of the settings and of a YAML manifest, printed as JSON: compared between a
# process that has yaml-rs and one whose import hook refuses it.
_LOAD_SCRIPT = r"""
import hashlib, json, sys
from pathlib import Path
import oneiric_core.settings as s
from oneiric_core.remote.manifest import parse_manifest

out = {"parser": "yaml_rs" if s._yaml_rs_loads() else "ruamel"}
out["yaml_rs_imported"] = "yaml_rs" in sys.modules
for name in sys.argv[1:]:
    snap = s.SettingsLoader(Path(name)).load()
    out[Path(name).name] = {
        "app": repr(snap.app), "domains": {d.value: repr(m) for d, m in snap.domains.items()},
        "problems": [str(p) for p in snap.problems],
    }
manifest = (
    "name: acme\nversion: 3\ngenerated_at: 2026-01-01T00:00:00Z\nexpires_at: 2099-01-01T00:00:00Z\n"
    "entries:\n  - {domain: adapter, key: cache, provider: remote-memory,\n"
    "     factory: 'oneiric_core.providers.cache_memory:create', settings: {max_entries: 7}}\n"
)
parsed = parse_manifest(manifest.encode())
out["manifest"] = hashlib.sha256(parsed.signed_bytes).hexdigest()  # the bytes a signature covers
out["manifest_expires"] = parsed.data["expires_at"]
print(json.dumps(out, sort_keys=True))
"""

_BLOCKER = (Path(__file__).resolve().parent / "no_yaml_rs" / "sitecustomize.py").read_text()


def _load_in_subprocess(tmp_path: Path, dirs: list[Path], *, block: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    if block:
        site = tmp_path / "no-yaml-rs"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(_BLOCKER)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, *map(str, dirs)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_settings_and_manifests_load_the_same_without_yaml_rs(tmp_path: Path) -> None:
    """A plain install (no `fast` extra) reads the demo, a 300-candidate file, files with
    problems and a YAML manifest with unquoted timestamps exactly as the fast extra does."""
    pytest.importorskip("yaml_rs", reason="compares a process with yaml-rs to one without")

    big = tmp_path / "big"
    big.mkdir()
    (big / "adapters.yml").write_text(many_candidates(300))
    (big / "services.yml").write_text("selections:\n  queue: -bad\n")  # a problem, worded by the careful path
    (big / "tasks.yml").write_text("candidates:\n  - key: t\n    provider: p\n    factory: a.b:c\n    priority: x\n")
    with_rs = _load_in_subprocess(tmp_path, [DEMO, big], block=False)
    without = _load_in_subprocess(tmp_path, [DEMO, big], block=True)
    assert (with_rs["parser"], with_rs["yaml_rs_imported"]) == ("yaml_rs", True)
    assert (without["parser"], without["yaml_rs_imported"]) == ("ruamel", False)
    assert len(without["big"]["problems"]) == 2, without["big"]["problems"]
    assert without["manifest_expires"] == "2099-01-01T00:00:00Z"  # text, as yaml-rs leaves it (no datetime)
    for key in ("settings", "big", "manifest", "manifest_expires"):
        assert without[key] == with_rs[key], key
