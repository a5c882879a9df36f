"""Bounded input (issue 12, point 4): settings files and remote manifests are held to a size
and a nesting limit before they are parsed, the refusal names the limit, the place, what was
found and the app.yml key that raises it, and the last good state keeps serving; `config
validate` checks every factory against the allow-list and that its module can be found,
without importing it.

Real files in tmp_path, the CLI as a real subprocess (`run_cli`), a real HTTP server on
127.0.0.1, a real host Engine with its real settings watcher. No timing is asserted:
bench/settings_size.py measures how fast a refusal is.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from oneiric_core.engine import Engine
from tests.helpers import FAST_APP, until
from tests.remote_helpers import (  # noqa: F401  (engines, key, server: fixtures)
    body,
    engines,
    entry,
    key,
    manifest,
    remote_settings,
    server,
    signed,
    source,
)

MiB = 1024 * 1024
CANDIDATE = """\
  - key: k{n}
    provider: p{n}
    factory: oneiric_core.providers.cache_memory:create
"""


def candidates_of_size(size: int) -> str:
    """A valid domain file of at least `size` bytes (plain block YAML, like a generated file)."""
    block = "".join(CANDIDATE.format(n=n) for n in range(1000))
    repeats = size // len(block) + 1
    # every repeat renames its keys so the file stays valid if it were ever parsed
    return "candidates:\n" + "".join(block.replace("    provider: p", f"    provider: r{r}p") for r in range(repeats))


def nested(depth: int) -> str:
    """A candidate whose settings nest `depth` mappings below `settings:` (block style)."""
    lines = ["candidates:", "  - key: cache", "    provider: deep",
             "    factory: oneiric_core.providers.cache_memory:create", "    settings:"]
    lines += [" " * (6 + 2 * i) + f"k{i}:" for i in range(depth)]
    lines.append(" " * (6 + 2 * depth) + "leaf: 1")
    return "\n".join(lines) + "\n"


def cache_status(engine: Engine):
    return next(c for c in engine.components() if str(c.ref) == "adapter/cache")


# -- size ------------------------------------------------------------------------------------------

def test_a_53_mb_settings_file_is_refused_before_it_is_parsed(run_cli, demo_settings):
    adapters = demo_settings / "adapters.yml"
    adapters.write_text(candidates_of_size(53 * MiB))
    size = adapters.stat().st_size
    assert size > 53 * MiB

    res = run_cli("config", "validate")  # before the limit: parsed whole (this one fast; 4 min 45 s via ruamel)
    assert res.returncode == 1, str(res)
    assert "Traceback" not in res.stderr
    [line] = [ln for ln in res.stdout.splitlines() if "adapters.yml" in ln]
    assert f"adapters.yml: the file is {size / MiB:.1f} MiB ({size:,} bytes), over the size limit of " \
           f"8 MiB (8,388,608 bytes); it was not parsed (raise limits.settings_max_bytes in app.yml" in line
    assert "anchors" not in res.stdout and "valid" not in line

    data = run_cli("config", "validate", "--json")
    assert data.returncode == 1 and data.json()["valid"] is False
    [problem] = data.json()["problems"]
    assert problem["file"].endswith("adapters.yml") and "limits.settings_max_bytes" in problem["reason"]

    # the other front doors read the rest and say what is in force instead
    status = run_cli("status", "--json")
    assert status.returncode == 0, str(status)
    [listed] = status.json()["config_problems"]
    assert "over the size limit" in listed["reason"]
    assert {c["domain"] + "/" + c["key"] for c in status.json()["components"]} >= {"adapter/cache", "task/runner"}


def test_the_size_limit_is_set_in_app_yml(run_cli, demo_settings):
    (demo_settings / "app.yml").write_text(FAST_APP + "limits:\n  settings_max_bytes: 2048\n")
    adapters = demo_settings / "adapters.yml"
    adapters.write_text(adapters.read_text() + "# " + "x" * 2048 + "\n")  # a long comment: still valid
    size = adapters.stat().st_size

    res = run_cli("config", "validate")
    assert res.returncode == 1, str(res)
    assert f"adapters.yml: the file is {size / 1024:.1f} KiB ({size:,} bytes), over the size limit of 2 KiB " \
           "(2,048 bytes)" in res.stdout
    assert "raise limits.settings_max_bytes in app.yml" in res.stdout

    (demo_settings / "app.yml").write_text(FAST_APP + "limits:\n  settings_max_bytes: 1048576\n")
    res = run_cli("config", "validate")
    assert res.returncode == 0 and "every settings file is valid" in res.stdout, str(res)


def test_a_settings_file_that_grows_while_it_is_read_is_refused(run_cli, demo_settings):
    """A FIFO has no size to stat: what the reader gets is only known while reading, the case
    of a file that grows after its size was looked at. At most limit + 1 bytes are read."""
    (demo_settings / "app.yml").write_text(FAST_APP + "limits:\n  settings_max_bytes: 4096\n")
    fifo = demo_settings / "services.yml"
    fifo.unlink()
    os.mkfifo(fifo)
    stop = threading.Event()

    def writer() -> None:
        try:
            with open(fifo, "w") as handle:  # blocks until validate opens it
                for n in range(10_000):
                    if stop.is_set():
                        break
                    handle.write(CANDIDATE.format(n=n))
        except (BrokenPipeError, OSError):
            pass  # the reader stopped reading past the limit and closed its end

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        res = run_cli("config", "validate")
    finally:
        stop.set()
    thread.join(10)
    assert res.returncode == 1, str(res)
    assert "services.yml: the file grew past 4 KiB (4,096 bytes) while it was read, over the size limit" in res.stdout


# -- nesting ---------------------------------------------------------------------------------------

def test_a_deeply_nested_file_is_refused_naming_the_depth(run_cli, demo_settings):
    (demo_settings / "adapters.yml").write_text(nested(70))
    res = run_cli("config", "validate")
    assert res.returncode == 1, str(res)
    [line] = [ln for ln in res.stdout.splitlines() if "adapters.yml" in ln]
    assert "the data nests at least 65 levels deep (at candidates[0].settings.k0...), over the nesting limit " \
           "of 64 levels; it was not used (raise limits.max_depth in app.yml" in line
    # where the 65th level starts: the mapping of k61 (line 6 holds k0, two columns per level)
    assert line.split(": the data")[0].endswith(f"adapters.yml:{6 + 61}:{6 + 2 * 61 + 1}")
    assert "anchors" not in res.stdout

    (demo_settings / "app.yml").write_text(FAST_APP + "limits:\n  max_depth: 100\n")
    res = run_cli("config", "validate")
    assert res.returncode == 0, str(res)


def test_nesting_far_past_any_parser_is_refused_in_one_sentence(run_cli, demo_settings):
    (demo_settings / "adapters.yml").write_text("selections:\n  cache: " + "[" * 20_000 + "]" * 20_000 + "\n")
    res = run_cli("config", "validate")
    assert res.returncode == 1, str(res)
    assert "Traceback" not in res.stderr and "RecursionError" not in res.stdout + res.stderr
    assert "adapters.yml: the data nests too deeply to be parsed at all (hundreds of levels), over the " \
           "nesting limit of 64 levels (limits.max_depth in app.yml)" in res.stdout


def test_anchors_and_aliases_are_named_only_when_they_are_the_cause(run_cli, demo_settings):
    bomb = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 7))
    (demo_settings / "events.yml").write_text("l0: &l0 [x]\n" + bomb)
    res = run_cli("config", "validate")
    assert res.returncode == 1, str(res)
    assert "events.yml: the file's anchors and aliases expand it to more than 200,000 values" in res.stdout


# -- remote manifests --------------------------------------------------------------------------------

async def test_a_manifest_over_its_cap_is_refused_and_the_last_good_one_stays(tmp_path, server, key, engines):
    url = server.url("/m.json")
    engine = engines(remote_settings(tmp_path, [source("acme", url, max_bytes=8192)], [key]))
    server.serve("/m.json", signed(manifest([entry(provider="good")]), key))
    [first] = await engine.remote.sync_now()
    assert first.ok, first.message()

    big = signed(manifest([entry(provider=f"p{i}") for i in range(200)], version=2), key)
    size = len(body(big))
    assert size > 8192
    for announced in (True, False):  # a Content-Length over the cap, or none and a body that runs past it
        server.serve("/m.json", big, content_length=announced)
        [out] = await engine.remote.sync_now()
        assert not out.ok and out.error_kind == "too-large"
        assert out.error.startswith(f"GET {url}: the body ")
        if announced:
            assert f"is {size / 1024:.1f} KiB ({size:,} bytes), more than the size limit of 8 KiB (8,192 bytes)" \
                in out.error
        else:
            assert "passed the size limit of 8 KiB (8,192 bytes); the download was stopped there" in out.error
        assert "raise max_bytes of source 'acme' under remote.sources in app.yml" in out.error
        assert "the last good manifest stays in force" in out.message()
        # the last good manifest is still what is registered
        assert [c.provider for c in engine.registry.all() if c.source == "remote:acme"] == ["good"]
    errors = engine.journal(kinds=["remote-sync-error"])
    assert len(errors) == 2 and all(url in e.message and "size limit" in e.message for e in errors)
    assert {e.data["kind"] for e in errors} == {"too-large"}


async def test_a_manifest_nested_too_deeply_is_refused_naming_its_source(tmp_path, server, key, engines):
    url = server.url("/m.json")
    engine = engines(remote_settings(tmp_path, [source("acme", url)], [key]))
    server.serve("/m.json", signed(manifest([entry(provider="good")]), key))
    assert (await engine.remote.sync_now())[0].ok

    deep: dict = {"leaf": 1}
    for _ in range(70):
        deep = {"k": deep}
    server.serve("/m.json", signed(manifest([entry(provider="deep", settings=deep)], version=2), key))
    [out] = await engine.remote.sync_now()
    assert not out.ok and out.error_kind == "too-deep"
    assert out.error.startswith(f"the manifest from {url}: the data nests at least 65 levels deep "
                                "(at entries[0].settings.k...), over the nesting limit of 64 levels")
    assert "limits.max_depth in app.yml" in out.error
    assert [c.provider for c in engine.registry.all() if c.source == "remote:acme"] == ["good"]

    # a JSON document deeper than json's own recursion: the same sentence, no RecursionError
    server.serve("/m.json", b"[" * 100_000 + b"]" * 100_000)
    [out] = await engine.remote.sync_now()
    assert not out.ok and out.error_kind == "too-deep" and "too deeply to be parsed at all" in out.error
    assert [c.provider for c in engine.registry.all() if c.source == "remote:acme"] == ["good"]


def test_a_json_manifest_past_the_parser_names_the_limit_in_force():
    """Deeper than json's own recursion, a manifest is refused with app.yml's limit (here 20),
    not the default 64 (the limit once went in as the place of the finding)."""
    from oneiric_core.remote.manifest import ManifestError, load_document

    with pytest.raises(ManifestError) as refused:
        load_document(b"[" * 100_000 + b"]" * 100_000, max_depth=20)
    assert "too deeply to be parsed at all (hundreds of levels), over the nesting limit of 20 levels" \
        in str(refused.value)


# -- factories in config validate ---------------------------------------------------------------------

def add_candidate(settings: Path, key: str, provider: str, factory: str) -> int:
    """Append a candidate to the demo's adapters.yml; returns the line of its `factory:`."""
    path = settings / "adapters.yml"
    text = path.read_text()
    head, sep, tail = text.partition("\nprovider_settings:")
    assert sep
    addition = f"  - key: {key}\n    provider: {provider}\n    factory: {factory}\n"
    head = head.rstrip("\n") + "\n" + addition
    path.write_text(head + sep + tail)
    return head.count("\n")


def test_a_factory_outside_the_allow_list_fails_validate_naming_the_key(run_cli, demo_settings):
    line = add_candidate(demo_settings, "shell", "evil", "os:system")
    res = run_cli("config", "validate")  # before: "every settings file is valid", then FAILED at start
    assert res.returncode == 1, str(res)
    assert "every settings file is valid" not in res.stdout
    [problem] = [ln for ln in res.stdout.splitlines() if "adapters.yml" in ln]
    assert problem.endswith(f"adapters.yml:{line}:14: candidates[2] (adapter/shell, provider evil): factory module "
                            "'os' is not in app.yml factory_allowlist (allowed: oneiric_core.providers.), so the "
                            "host will refuse to import it")
    assert "fails when the host activates it" in res.stdout

    data = run_cli("config", "validate", "--json")
    assert data.returncode == 1 and data.json()["valid"] is False
    [listed] = data.json()["problems"]
    assert (Path(listed["file"]).name, listed["line"]) == ("adapters.yml", line)


def test_an_allowed_factory_whose_module_or_attribute_is_missing_fails_validate(run_cli, demo_settings):
    add_candidate(demo_settings, "ghost", "ghost", "oneiric_core.providers.nope:create")
    add_candidate(demo_settings, "typo", "typo", "oneiric_core.providers.cache_memory:craete")
    res = run_cli("config", "validate")
    assert res.returncode == 1, str(res)
    text = res.stdout
    assert "candidates[2] (adapter/ghost, provider ghost): factory module 'oneiric_core.providers.nope' is " \
           "allowed but no such module can be found by" in text
    assert "candidates[3] (adapter/typo, provider typo): factory 'oneiric_core.providers.cache_memory:craete' " \
           "names nothing:" in text and "defines no top-level 'craete'" in text
    assert "2 problem(s)." in text


def test_validate_finds_an_allowed_module_without_running_it(run_cli, demo_settings, tmp_path):
    """Validate must not import user code: the module's top level (here: writing a marker
    file) runs only when a host builds the provider, and no factory is called."""
    package = tmp_path / "pkgs" / "acme_providers"
    package.mkdir(parents=True)
    marker = tmp_path / "imported"
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('package\\n')\n")
    (package / "cache.py").write_text(f"open({str(marker)!r}, 'a').write('module\\n')\n"
                                      "def create(settings):\n    raise SystemExit('called')\n")
    (demo_settings / "app.yml").write_text(FAST_APP + "  - acme_providers\n")
    add_candidate(demo_settings, "acme", "acme", "acme_providers.cache:create")
    env = {"PYTHONPATH": str(tmp_path / "pkgs")}

    res = run_cli("config", "validate", env=env)
    assert res.returncode == 0 and "every settings file is valid" in res.stdout, str(res)
    assert not marker.exists()

    add_candidate(demo_settings, "acme2", "acme2", "acme_providers.cache:build")
    res = run_cli("config", "validate", env=env)
    assert res.returncode == 1 and "defines no top-level 'build'" in res.stdout, str(res)
    assert not marker.exists()


# -- a running host keeps its last good settings ---------------------------------------------------------

def invalid_events(engine: Engine, text: str):
    return [e for e in engine.journal(kinds=["config-invalid"]) if text in e.message]


async def test_the_watcher_keeps_the_last_good_settings_when_a_file_is_replaced_by_an_oversized_one(
        engine, settings_dir):
    adapters = settings_dir / "adapters.yml"
    good = adapters.read_text()
    before = cache_status(engine)
    assert (before.selection, before.candidates) == ("memory", 4)

    big = settings_dir / ".adapters.yml.tmp"
    big.write_text(candidates_of_size(9 * MiB))
    os.replace(big, adapters)  # an editor's (or a generator's) rename into place

    [event] = await until(lambda: invalid_events(engine, "over the size limit"), "the refusal journaled")
    assert event.severity.value == "error" and event.data["file"].endswith("adapters.yml")
    assert "8 MiB (8,388,608 bytes); it was not parsed (raise limits.settings_max_bytes in app.yml" in event.message
    assert "the last good version of that file stays in force" in event.message
    status = cache_status(engine)  # the last good adapters.yml still serves: its candidate and selection
    assert (status.selection, status.candidates, status.serving) == ("memory", 4, "memory")
    assert not any(c.key.startswith("k") for c in engine.registry.all() if c.source == "settings")

    adapters.write_text(good.replace("  cache: memory\n", "  cache: sqlite\n"))
    await until(lambda: engine.journal(kinds=["config-recovered"]), "config-recovered")
    await until(lambda: engine.approvals.pending(), "the proposal of the fixed file")
    assert engine.settings.problems == []


async def test_raising_the_limit_in_app_yml_reads_the_refused_file_again(engine, settings_dir):
    adapters = settings_dir / "adapters.yml"
    adapters.write_text(nested(70))
    await until(lambda: invalid_events(engine, "nests at least 65 levels deep"), "the depth refusal journaled")
    assert cache_status(engine).candidates == 4  # the last good adapters.yml

    (settings_dir / "app.yml").write_text(FAST_APP + "limits:\n  max_depth: 100\n")
    [recovered] = await until(lambda: engine.journal(kinds=["config-recovered"]), "adapters.yml read again")
    assert recovered.data["file"].endswith("adapters.yml")
    assert any(c.provider == "deep" for c in engine.registry.all() if c.source == "settings")
    changed = [e for e in engine.journal(kinds=["config-changed"]) if e.data["file"].endswith("app.yml")]
    assert "limits" in changed[-1].data["applied"]

