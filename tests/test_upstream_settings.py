"""Upstream Oneiric settings (issue 16 point 2): an upstream file or variable is said, never
called valid while it is not read, and `oneiric config import` writes its equivalent, naming
what has none. Real subprocesses on real files."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from oneiric_core.errors import ExitCode

UPSTREAM = textwrap.dedent("""\
    app:
      name: shop
    adapters:
      selections:
        cache: sqlite
      provider_settings:
        sqlite:
          path: cache.db
        redis:
          host: 10.0.0.5
    lifecycle:
      activation_timeout: 20
      health_timeout: 2
      hook_timeout: 3
    remote:
      enabled: true
      manifest_url: https://manifests.example.com/shop.json
      signature_required: true
      max_retries: 3
      circuit_breaker_threshold: 4
      verify_tls: false
    """)
KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


@pytest.fixture
def upstream_dir(tmp_path: Path) -> Path:
    """A settings directory holding only upstream's files, as an operator brings it."""
    d = tmp_path / "upstream"  # not tmp_path/settings: run_cli's demo copy is there
    d.mkdir()
    (d / "oneiric.yaml").write_text(UPSTREAM)
    (d / "local.yaml").write_text("adapters:\n  selections:\n    storage: local\n")
    return d


def test_a_directory_with_only_upstream_files_is_never_called_valid(run_cli, upstream_dir):
    res = run_cli("config", "validate", settings=upstream_dir)
    assert res.returncode == ExitCode.ERROR
    assert "every settings file is valid" not in res.stdout
    assert f"not read: {upstream_dir}/oneiric.yaml is an upstream Oneiric settings file" in res.stdout
    assert "2 upstream Oneiric setting(s) above are not read" in res.stdout
    data = run_cli("config", "validate", "--json", settings=upstream_dir).json()
    assert data["valid"] is False and len(data["not_read"]) == 2
    status = run_cli("status", settings=upstream_dir)
    assert status.returncode == 0 and status.stdout.count("not read: ") == 2
    assert len(run_cli("status", "--json", settings=upstream_dir).json()["not_read"]) == 2
    # and the selection it holds is indeed not in force
    assert run_cli("explain", "cache", "--json", settings=upstream_dir).json()["winner"] == "memory"


def test_oneiric_config_and_an_upstream_stack_order_are_said(run_cli, demo_settings):
    env = {"ONEIRIC_CONFIG": "/etc/shop/oneiric.yaml", "ONEIRIC_STACK_ORDER": "myapp:20,oneiric:10"}
    res = run_cli("config", "validate", env=env)
    assert res.returncode == ExitCode.ERROR
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("not read: ")]
    assert lines[0].startswith("not read: ONEIRIC_CONFIG=/etc/shop/oneiric.yaml names an upstream Oneiric")
    assert "names myapp, oneiric, which no source here is called" in lines[1]
    ours = run_cli("config", "validate", env={"ONEIRIC_STACK_ORDER": "remote:*,settings"})
    assert ours.returncode == 0 and "not read" not in ours.stdout


def test_import_writes_the_equivalent_and_names_what_has_none(run_cli, upstream_dir, tmp_path):
    env = {"ONEIRIC_TRUSTED_PUBLIC_KEYS": KEY, "ONEIRIC_STACK_ORDER": "myapp:20,oneiric:10"}
    res = run_cli("config", "import", "--json", settings=upstream_dir, env=env)
    assert res.returncode == 0, res.stderr
    report = res.json()
    assert sorted(Path(p).name for p in report["written"]) == ["adapters.yml", "app.yml"]
    assert report["domains"]["adapter"] == {"selections": {"cache": "sqlite", "storage": "local"},
                                            "provider_settings": {"cache": {"sqlite": {"path": "cache.db"}}}}
    assert report["app"]["lifecycle"] == {"activation_timeout": 20, "health_timeout": 2}
    source = report["app"]["remote"]["sources"][0]
    assert source == {"name": "upstream", "uri": "https://manifests.example.com/shop.json",
                      "signature_required": True, "retries": 2}  # upstream counts every attempt, ours the extra
    assert report["app"]["remote"]["breaker"] == {"failures": 4}
    assert report["app"]["remote"]["trusted_keys"][0]["public_key"] == KEY
    assert set(report["unmapped"]) >= {"app", "lifecycle.hook_timeout", "remote.verify_tls",
                                       "adapters.provider_settings.redis"}
    assert report["stack_levels"] == {"myapp": 20, "oneiric": 10}
    # the directory now works as this engine's settings: the upstream selection is in force
    assert run_cli("config", "validate", settings=upstream_dir).returncode == 0
    assert run_cli("explain", "cache", "--json", settings=upstream_dir).json()["winner"] == "sqlite"
    # an edit to the upstream file after the import is not read, and is said again
    later = time.time() + 5
    os.utime(upstream_dir / "local.yaml", (later, later))
    again = run_cli("config", "validate", settings=upstream_dir)
    assert again.returncode == ExitCode.ERROR and "local.yaml is an upstream Oneiric settings file" in again.stdout


def test_an_import_that_would_not_validate_writes_nothing(run_cli, upstream_dir):
    res = run_cli("config", "import", settings=upstream_dir)  # signature_required, but no trusted key given
    assert res.returncode == ExitCode.ERROR
    assert "requires signatures" in res.stderr and "nothing was written" in res.stderr
    assert sorted(p.name for p in upstream_dir.iterdir()) == ["local.yaml", "oneiric.yaml"]


def test_import_from_a_file_into_a_directory_and_never_over_our_files(run_cli, upstream_dir, tmp_path, demo_settings):
    single = tmp_path / "one.yaml"
    single.write_text("services:\n  selections:\n    scheduler: interval\nlifecycle:\n  cleanup_timeout: 4\n")
    target = tmp_path / "imported"
    res = run_cli("config", "import", "--from", single, "--to", target)
    assert res.returncode == 0, res.stderr
    assert (target / "services.yml").read_text().endswith("selections:\n  scheduler: interval\n")
    refused = run_cli("config", "import", "--from", single, "--to", demo_settings)
    assert refused.returncode == ExitCode.USAGE and "already holds settings of this engine" in refused.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("adapters: [\n")
    bad = run_cli("config", "import", "--from", broken, "--to", tmp_path / "x")
    assert bad.returncode == ExitCode.ERROR and bad.stderr.startswith("oneiric: Cannot read the upstream settings")
    assert bad.stderr.count("\n") == 1 and not (tmp_path / "x").exists()
