"""The settings schema's two validators give the same answers (oneiric_core/schema.py).

The fast validator (plain Python) may only ever say "valid, and here is the instance" when
pydantic's strict validation says the same and builds an equal instance; when it is unsure
it must say so (None) and leave the wording to pydantic. These tests hold it to that on the
demo's own files and on thousands of mutations of them, and check that a console start on
valid settings does not import pydantic at all (the reason the fast validator exists).
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from oneiric_core import schema
from oneiric_core.domains import Domain
from oneiric_core.remote.manifest import Entry, Manifest
from oneiric_core.settings import APP_FILE, AppSettings, DomainSettings, _describe_error, _fast_loader

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "settings"

# Values a mutation puts in place of a leaf: each type the schema knows, edge values of the
# bounds it declares, and names that break the name patterns.
ODD_VALUES: list[Any] = [
    None, "", "x", "bad name", ".dot", "-dash", "ok_name", "pkg.mod:attr", "pkg:", "3", "http://h/x", "ftp://h/x",
    0, 1, -1, 2, 99, 100, 1000, 1001, -1001, 10**12, 10**400, 0.0, 0.5, -0.5, 3.0, float("inf"), float("nan"),
    True, False, [], [1], ["a"], {}, {"a": 1}, {"": None}, {"name": "x"},
    "manual", "auto", "otlp", "P0", "ed25519",
]


def _load(path: Path) -> dict[str, Any]:
    data = _fast_loader()(path.read_text())  # yaml-rs, else ruamel's safe loader
    return data if isinstance(data, dict) else {}


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `value` (mappings by key, lists by index)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _set(data: Any, path: tuple, value: Any) -> Any:
    """`data` with the value at `path` replaced (unchanged if an earlier mutation removed the path)."""
    data = copy.deepcopy(data)
    target = data
    try:
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass
    return data


def _delete(data: Any, path: tuple) -> Any:
    data = copy.deepcopy(data)
    target = data
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return data


def _mutations(data: dict[str, Any], rng: random.Random, count: int) -> list[Any]:
    paths = [p for p in _paths(data) if p]
    out: list[Any] = []
    for path in paths:  # every leaf and branch deleted once, and given an unknown sibling
        out.append(_delete(data, path))
        parent = path[:-1]
        holder = data
        for part in parent:
            holder = holder[part]
        if isinstance(holder, dict):
            out.append(_set(data, parent + ("unknown_setting",), 1) if parent else {**data, "unknown_setting": 1})
    for _ in range(count):  # random leaves replaced by odd values, one to three at a time
        mutated = data
        for _ in range(rng.randint(1, 3)):
            mutated = _set(mutated, rng.choice(paths), rng.choice(ODD_VALUES))
        out.append(mutated)
    return out


def _pydantic(cls: type, data: Any) -> Any:
    try:
        return schema.validate(cls, data)
    except ValidationError:
        return None


def _same(a: Any, b: Any) -> bool:
    # NaN is valid for a float setting and never equal to itself: compare as JSON text.
    return json.dumps(_plain(a), sort_keys=True, default=str) == json.dumps(_plain(b), sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    import dataclasses

    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _agree(cls: type, data: Any) -> tuple[bool, bool]:
    """(fast accepted, pydantic accepted); fails when the fast validator accepts what pydantic
    refuses or builds something different."""
    fast = schema.fast_validate(cls, data)
    careful = _pydantic(cls, data)
    if fast is not None:
        assert careful is not None, f"fast validator accepted what pydantic refuses: {data!r}"
        assert _same(fast, careful), f"the two built different {cls.__name__}: {fast!r} != {careful!r}"
        assert type(fast) is cls
    return fast is not None, careful is not None


DEMO_FILES = [(APP_FILE, AppSettings)] + [(d.settings_file, DomainSettings) for d in Domain]


@pytest.mark.parametrize(("name", "cls"), DEMO_FILES, ids=[n for n, _ in DEMO_FILES])
def test_the_fast_validator_takes_every_demo_file_and_builds_what_pydantic_builds(name, cls):
    data = _load(DEMO / name)
    fast_ok, careful_ok = _agree(cls, data)
    assert fast_ok and careful_ok


@pytest.mark.parametrize(("name", "cls"), DEMO_FILES, ids=[n for n, _ in DEMO_FILES])
def test_on_mutated_files_the_fast_validator_never_accepts_what_pydantic_refuses(name, cls):
    rng = random.Random(name)
    data = _load(DEMO / name)
    results = [_agree(cls, m) for m in _mutations(data, rng, 400)]
    refused = sum(1 for _, ok in results if not ok)
    fast_taken = sum(1 for fast, _ in results if fast)
    # The corpus has both kinds, and the fast validator takes most of the valid ones.
    assert refused > 50
    assert fast_taken >= 0.5 * sum(1 for _, ok in results if ok)


def test_the_manifest_models_agree_too():
    manifest = json.loads((DEMO / "manifests" / "demo.json").read_text())
    assert _agree(Manifest, manifest) == (True, True)
    rng = random.Random(7)
    for mutated in _mutations(manifest, rng, 300):
        _agree(Manifest, mutated)
    entry = manifest["entries"][0]
    entry_with_artifact = {**entry, "artifact": {"uri": "blobs/x.bin", "sha256": "a" * 64}}
    assert _agree(Entry, entry_with_artifact) == (True, True)
    for mutated in _mutations(entry_with_artifact, rng, 300):
        _agree(Entry, mutated)


def test_unsure_cases_are_left_to_pydantic_with_their_wording():
    data = {"lifecycle": {"activation_timeout": 0}, "remote": {"sources": [{"name": "x", "uri": "ftp://h/m"}]}}
    assert schema.fast_validate(AppSettings, data) is None
    instance, errors = schema.check(AppSettings, data)
    assert instance is None
    words = sorted(_describe_error(AppSettings, e) for e in errors)
    assert words == [
        "lifecycle.activation_timeout: Input should be greater than 0",
        "remote.sources[0].uri: unsupported scheme 'ftp': use http://, https://, file: or a path",
    ]
    _, errors = schema.check(DomainSettings, {"candidates": [{"key": "bad key", "provider": "p", "factory": "m:f"}]})
    assert [_describe_error(DomainSettings, e) for e in errors] == [
        "candidates[0].key: 'bad key' is not a valid component key: use letters, digits, '_', '.' and '-' "
        "(not starting with '.' or '-')"
    ]


def test_a_number_too_large_for_a_float_is_refused_with_words_not_a_crash():
    data = {"lifecycle": {"activation_timeout": 10**400}}
    assert schema.fast_validate(AppSettings, data) is None
    instance, errors = schema.check(AppSettings, data)
    assert instance is None and [e["loc"] for e in errors] == [("lifecycle", "activation_timeout")]


def test_empty_values_mean_defaults_in_both_validators():
    data = {"lifecycle": None, "approvals": {"mode": None, "two_person": True}, "telemetry": {"endpoint": None}}
    fast = schema.fast_validate(AppSettings, data)
    assert fast is not None and _same(fast, _pydantic(AppSettings, data))
    assert fast.approvals.mode == "manual" and fast.approvals.two_person is True
    domain = {"candidates": [{"key": "k", "provider": "p", "factory": "m:f", "settings": None}]}
    built = schema.fast_validate(DomainSettings, domain)
    assert built is not None and built.candidates[0].settings == {}
    assert _same(built, _pydantic(DomainSettings, domain))


def test_a_console_start_on_valid_settings_imports_no_pydantic(tmp_path):
    """The point of the fast validator: building the engine on the demo (settings, and the
    remote source's cached manifest on a second start) needs no pydantic."""
    settings = tmp_path / "settings"
    import shutil

    shutil.copytree(DEMO, settings)
    code = (
        "import sys\n"
        "from oneiric_core.engine import Engine\n"
        "import oneiric_tui.app\n"
        f"Engine({str(settings)!r}, state_dir={str(tmp_path / 'state')!r}, actor='t')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))\n"
    )
    env = dict(os.environ)
    # First start: no manifest cache yet. Sync once so the second start loads it from the cache.
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert first.stdout.strip() == "[]", first.stdout
    subprocess.run([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
                    str(tmp_path / "state"), "remote-sync"], capture_output=True, text=True, env=env, check=True)
    assert any((tmp_path / "state" / "remote").rglob("*.json")), "remote-sync cached no manifest"
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert second.stdout.strip() == "[]", second.stdout
