"""Settings: models, line-accurate problems, last-good reloads, safe round-trip edits."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from oneiric_core.domains import Domain
from oneiric_core.errors import ConfigError
from oneiric_core.settings import (
    AppSettings,
    CandidateSpec,
    ConfigProblem,
    DomainSettings,
    SettingsLoader,
    load_file,
    validate_dir,
)
from oneiric_core.settings_edit import edit_yaml, set_selection


@pytest.fixture
def sdir(tmp_path: Path) -> Path:
    d = tmp_path / "settings"
    d.mkdir()
    return d


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEIRIC_STATE_DIR", raising=False)
    monkeypatch.delenv("ONEIRIC_STACK_ORDER", raising=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def only_problem(problems: list[ConfigProblem]) -> ConfigProblem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def load_problem(path: Path, model: type) -> ConfigProblem:
    with pytest.raises(ConfigError) as info:
        load_file(path, model)
    return info.value.problems[0]


# ----------------------------------------------------------------------------- defaults


def test_missing_files_mean_defaults(sdir: Path) -> None:
    snap = SettingsLoader(sdir).load()
    assert snap.ok and snap.problems == []
    assert snap.app == AppSettings()
    assert snap.app.lifecycle.activation_timeout == 30
    assert snap.app.lifecycle.health_timeout == 5
    assert snap.app.lifecycle.cleanup_timeout == 10
    assert snap.app.health.interval_s == 10 and snap.app.health.history == 60
    assert snap.app.approvals.mode == "manual" and snap.app.approvals.two_person is False
    assert snap.app.journal.max_rows == 100_000
    assert snap.app.telemetry.exporter == "none" and snap.app.telemetry.service_name == "oneiric"
    assert snap.app.factory_allowlist == ["oneiric_core.providers."]
    assert set(snap.domains) == set(Domain)
    assert all(d == DomainSettings() for d in snap.domains.values())
    assert snap.path_for(Domain.ADAPTER) == sdir / "adapters.yml"
    assert snap.app_path == sdir / "app.yml"


def test_missing_settings_directory_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="settings directory .*nope does not exist"):
        SettingsLoader(missing).load()
    assert "does not exist" in only_problem(validate_dir(missing)).reason


def test_empty_and_comment_only_files_are_defaults(sdir: Path) -> None:
    write(sdir / "app.yml", "")
    write(sdir / "adapters.yml", "# nothing selected yet\n\n")
    write(sdir / "services.yml", "selections:\ncandidates:\n")
    snap = SettingsLoader(sdir).load()
    assert snap.ok, [str(p) for p in snap.problems]
    assert snap.app == AppSettings()
    assert snap.domains[Domain.SERVICE] == DomainSettings()


# ----------------------------------------------------------------------------- valid files

FULL_APP = """\
state_dir: var/state
stack_order: [site, team, builtin]
factory_allowlist:
  - oneiric_core.providers.
  - acme.plugins.
read_only: true
keymap:
  swap: ctrl+s
lifecycle:
  activation_timeout: 12.5
  health_timeout: 2
  cleanup_timeout: 4
health:
  interval_s: 3
  history: 20
approvals:
  mode: auto
  two_person: true
  expire_after_s: 600
journal:
  max_age_days: 7
  max_rows: 5000
telemetry:
  exporter: otlp
  endpoint: http://collector:4318
  service_name: oneiric-demo
"""

FULL_ADAPTERS = """\
selections:
  cache: redis
  queue: memory
candidates:
  - key: cache
    provider: redis
    factory: oneiric_core.providers.cache:RedisCache
    priority: 10
    stack_level: -2
    settings:
      url: redis://localhost:6379/0
    metadata:
      owner: platform
  - key: cache
    provider: memory
    factory: oneiric_core.providers.cache:MemoryCache
provider_settings:
  cache:
    redis:
      url: redis://cache:6379/1
"""


def test_full_app_and_adapters_parse_to_models(sdir: Path) -> None:
    write(sdir / "app.yml", FULL_APP)
    write(sdir / "adapters.yml", FULL_ADAPTERS)
    snap = SettingsLoader(sdir).load()
    assert snap.ok, [str(p) for p in snap.problems]
    app = snap.app
    assert app.state_dir == "var/state"
    assert app.stack_order == ["site", "team", "builtin"]
    assert app.factory_allowlist == ["oneiric_core.providers.", "acme.plugins."]
    assert app.read_only is True
    assert app.keymap == {"swap": "ctrl+s"}
    assert (app.lifecycle.activation_timeout, app.lifecycle.health_timeout, app.lifecycle.cleanup_timeout) == (
        12.5,
        2,
        4,
    )
    assert (app.health.interval_s, app.health.history) == (3, 20)
    assert (app.approvals.mode, app.approvals.two_person, app.approvals.expire_after_s) == ("auto", True, 600)
    assert (app.journal.max_age_days, app.journal.max_rows) == (7, 5000)
    assert app.telemetry.exporter == "otlp"
    assert app.telemetry.endpoint == "http://collector:4318"
    assert app.telemetry.service_name == "oneiric-demo"

    adapters = snap.domains[Domain.ADAPTER]
    assert adapters.selections == {"cache": "redis", "queue": "memory"}
    assert adapters.candidates[0] == CandidateSpec(
        key="cache",
        provider="redis",
        factory="oneiric_core.providers.cache:RedisCache",
        priority=10,
        stack_level=-2,
        settings={"url": "redis://localhost:6379/0"},
        metadata={"owner": "platform"},
    )
    assert adapters.candidates[1].priority == 0 and adapters.candidates[1].settings == {}
    assert adapters.provider_settings == {"cache": {"redis": {"url": "redis://cache:6379/1"}}}
    # plain python types reach the models, not ruamel's round-trip types
    assert type(adapters.candidates[0].settings) is dict
    assert type(adapters.candidates[0].settings["url"]) is str
    assert snap.domains[Domain.SERVICE] == DomainSettings()


# ----------------------------------------------------------------------------- problems with lines


def test_syntax_error_reports_line_and_column(sdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sdir.parent)
    path = write(sdir / "app.yml", "lifecycle:\n  health_timeout: 5\nkey: value: other\n")
    problem = load_problem(path, AppSettings)
    assert (problem.line, problem.column) == (3, 11)
    assert problem.reason.startswith("YAML syntax error: mapping values are not allowed here")
    assert str(problem).startswith("settings/app.yml:3:11: YAML syntax error:")

    snap = SettingsLoader(sdir).load()
    assert not snap.ok
    assert only_problem(snap.problems) == problem


def test_syntax_error_unclosed_flow_sequence(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", "selections:\n  cache: redis\ncandidates: [\n  {key: a\n")
    problem = load_problem(path, DomainSettings)
    assert problem.line is not None and problem.line >= 4
    assert problem.reason.startswith("YAML syntax error:")


@pytest.mark.parametrize("text,reason", [
    # a scalar document followed by a mapping: ruamel.yaml names the token as a Python tuple
    ('"a"\nfoo: bar\n', "YAML syntax error: expected '---' (the start of another document), "
                         "but found a mapping (key: value)"),
    ("selections:\n  cache: memory\n  - x\n", "YAML syntax error: expected the end of the indented block, "
                                              "but found '-' (while parsing a block mapping that starts at line 2)"),
    ("a: [b\n", "YAML syntax error: expected ',' or ']', but got the end of the file "
                "(while parsing a flow sequence that starts at line 1)"),
])
def test_a_syntax_error_is_worded_without_the_parsers_token_names(sdir: Path, text: str, reason: str) -> None:
    """Issue 13 point 5: one sentence an operator reads, not `('<block mapping start>',)`."""
    problem = load_problem(write(sdir / "adapters.yml", text), DomainSettings)
    assert problem.reason == reason


@pytest.mark.parametrize(
    ("name", "text", "line", "column", "fragment"),
    [
        pytest.param(
            "app.yml",
            "read_only: false\nlifecycle:\n  health_timeout: -1\n",
            3,
            19,
            "lifecycle.health_timeout: Input should be greater than 0",
            id="negative-timeout",
        ),
        pytest.param(
            "app.yml",
            "health:\n  interval_s: 5\n  history: lots\n",
            3,
            12,
            "health.history: Input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param(
            "app.yml",
            "lifecycle:\n  activation_timeout: 3\n  helth_timeout: 3\n",
            3,
            3,
            "unknown setting 'helth_timeout' under lifecycle (did you mean 'health_timeout'?)",
            id="unknown-key",
        ),
        pytest.param(
            "app.yml",
            "approvals:\n  mode: sometimes\n",
            2,
            9,
            "approvals.mode: Input should be 'manual' or 'auto'",
            id="bad-literal",
        ),
        pytest.param(
            "adapters.yml",
            "candidates:\n  - key: cache\n    provider: redis\n    factory: oneiric_core.providers.cache.Redis\n",
            4,
            14,
            "package.module:attribute",
            id="bad-factory",
        ),
        pytest.param(
            "adapters.yml",
            "selections:\n  cache: redis\n  queue: -memory\n",
            3,
            10,
            "selections.queue: '-memory' is not a valid provider name",
            id="bad-provider-in-selection",
        ),
        pytest.param(
            "adapters.yml",
            "candidates:\n  - key: cache\n    provider: 'red is'\n    factory: a.b:C\n",
            3,
            15,
            "candidates[0].provider: 'red is' is not a valid provider name",
            id="bad-provider-in-candidate",
        ),
        pytest.param(
            "adapters.yml",
            "selections:\n  'my cache': redis\n",
            2,
            3,
            "'my cache' is not a valid component key",
            id="bad-key-name",
        ),
        pytest.param(
            "adapters.yml",
            "candidates:\n  - key: a\n    provider: b\n    factory: a.b:C\n  - key: c\n    provider: d\n"
            "    factory: a.b:C\n    priority: 1001\n",
            8,
            15,
            "candidates[1].priority: Input should be less than or equal to 1000",
            id="priority-range",
        ),
        pytest.param(
            "adapters.yml",
            "candidates:\n  - key: a\n    provider: b\n",
            2,
            5,
            "candidates[0]: missing required setting 'factory'",
            id="missing-field",
        ),
        pytest.param(
            "adapters.yml",
            "selection:\n  cache: redis\n",
            1,
            1,
            "unknown setting 'selection' (did you mean 'selections'?)",
            id="top-level-typo",
        ),
    ],
)
def test_schema_errors_report_the_right_line(
    sdir: Path, name: str, text: str, line: int, column: int, fragment: str
) -> None:
    path = write(sdir / name, text)
    model = AppSettings if name == "app.yml" else DomainSettings
    problem = load_problem(path, model)
    assert fragment in problem.reason
    assert (problem.line, problem.column) == (line, column), str(problem)
    assert only_problem(validate_dir(sdir)) == problem


def test_several_problems_are_all_listed_in_line_order(sdir: Path) -> None:
    path = write(sdir / "app.yml", "health:\n  history: 1\nlifecycle:\n  cleanup_timeout: 0\nbogus: 1\n")
    with pytest.raises(ConfigError) as info:
        load_file(path, AppSettings)
    lines = [p.line for p in info.value.problems]
    assert lines == [2, 4, 5]
    assert str(info.value).endswith("(and 2 more problems)")
    assert str(info.value).startswith(str(info.value.problems[0]))


def test_top_level_must_be_a_mapping(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", "- cache\n- queue\n")
    problem = load_problem(path, DomainSettings)
    assert (problem.line, problem.column) == (1, 1)
    assert problem.reason == "expected a mapping at the top of the file"


def test_duplicate_key_is_refused_with_its_line(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", "selections:\n  cache: redis\n  queue: memory\n  cache: memory\n")
    problem = load_problem(path, DomainSettings)
    assert (problem.line, problem.column) == (4, 3)
    assert "duplicate key 'cache'" in problem.reason
    assert "line 2" in problem.reason


def test_python_tags_are_refused_and_never_executed(sdir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(
        sdir / "adapters.yml",
        f"selections:\n  cache: redis\nmetadata: !!python/object/apply:os.system ['touch {marker}']\n",
    )
    problem = load_problem(path, DomainSettings)
    assert (problem.line, problem.column) == (3, 11)
    assert "!!python/object/apply:os.system" in problem.reason
    assert not marker.exists()

    snap = SettingsLoader(sdir).load()
    assert only_problem(snap.problems).line == 3
    assert not marker.exists()

    # nested, inside a list, and with the long tag form
    write(
        sdir / "app.yml",
        f"stack_order:\n  - site\n  - !<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']\n",
    )
    problem = load_problem(sdir / "app.yml", AppSettings)
    assert (problem.line, problem.column) == (3, 5)
    assert not marker.exists()


def test_unknown_local_tags_are_refused(sdir: Path) -> None:
    path = write(sdir / "app.yml", "state_dir: !secret vault/path\n")
    problem = load_problem(path, AppSettings)
    assert (problem.line, problem.column) == (1, 12)
    assert "'!secret'" in problem.reason


def test_unreadable_file_is_a_problem_without_a_line(sdir: Path) -> None:
    (sdir / "adapters.yml").mkdir()
    snap = SettingsLoader(sdir).load()
    problem = only_problem(snap.problems)
    assert problem.line is None and problem.column is None
    assert str(problem).endswith(f"adapters.yml: {problem.reason}")
    assert snap.domains[Domain.ADAPTER] == DomainSettings()


def test_problem_str_and_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = ConfigProblem(tmp_path / "settings" / "adapters.yml", 4, 3, "boom")
    monkeypatch.chdir(tmp_path)
    assert str(inside) == "settings/adapters.yml:4:3: boom"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert str(inside) == f"{tmp_path}/settings/adapters.yml:4:3: boom"
    no_line = ConfigProblem(tmp_path / "settings" / "app.yml", None, None, "cannot read")
    assert str(no_line) == f"{tmp_path}/settings/app.yml: cannot read"
    assert inside.to_dict() == {
        "file": str(tmp_path / "settings" / "adapters.yml"),
        "line": 4,
        "column": 3,
        "reason": "boom",
        "message": str(inside),
    }


def test_validate_dir_flags_ignored_near_miss_files(sdir: Path) -> None:
    write(sdir / "adapter.yml", "selections: {cache: redis}\n")
    write(sdir / "app.yaml", "read_only: true\n")
    write(sdir / "notes.yml", "anything: goes\n")
    reasons = {p.file.name: p.reason for p in validate_dir(sdir)}
    assert set(reasons) == {"adapter.yml", "app.yaml"}
    assert "adapters.yml" in reasons["adapter.yml"]


# ----------------------------------------------------------------------------- last good


def test_last_good_is_kept_when_a_file_breaks_and_recovers(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", "selections:\n  cache: redis\n")
    loader = SettingsLoader(sdir)
    first = loader.load()
    assert first.ok and first.domains[Domain.ADAPTER].selections == {"cache": "redis"}

    write(path, "selections:\n  cache: memory\n  queue: [unclosed\n")
    broken = loader.load()
    assert broken.domains[Domain.ADAPTER].selections == {"cache": "redis"}
    problem = only_problem(broken.problems)
    assert problem.file == path and problem.line == 4
    assert isinstance(loader.last_good(path), DomainSettings)
    assert loader.last_good(path).selections == {"cache": "redis"}

    # a schema error keeps the last good model too
    write(path, "selections:\n  cache: memory\ncandidates: 3\n")
    snap, problems = loader.reload_file(path)
    assert snap.domains[Domain.ADAPTER].selections == {"cache": "redis"}
    assert only_problem(problems).line == 3
    assert snap.problems == problems

    write(path, "selections:\n  cache: memory\n")
    fixed, problems = loader.reload_file(path)
    assert problems == [] and fixed.ok
    assert fixed.domains[Domain.ADAPTER].selections == {"cache": "memory"}
    assert loader.last_good(path).selections == {"cache": "memory"}


def test_broken_file_without_earlier_good_load_gives_defaults(sdir: Path) -> None:
    write(sdir / "app.yml", "lifecycle:\n  health_timeout: -3\n")
    loader = SettingsLoader(sdir)
    snap = loader.load()
    assert snap.app == AppSettings()
    assert only_problem(snap.problems).line == 2
    assert loader.last_good(sdir / "app.yml") is None


def test_reload_file_keeps_other_files_problems(sdir: Path) -> None:
    write(sdir / "app.yml", "bogus: 1\n")
    write(sdir / "tasks.yml", "selections: {nightly: cron}\n")
    loader = SettingsLoader(sdir)
    loader.load()
    write(sdir / "tasks.yml", "selections: {nightly: celery}\n")
    snap, problems = loader.reload_file(sdir / "tasks.yml")
    assert problems == []
    assert snap.domains[Domain.TASK].selections == {"nightly": "celery"}
    assert [p.file.name for p in snap.problems] == ["app.yml"]
    with pytest.raises(ConfigError):
        loader.reload_file(sdir / "notes.yml")


# ----------------------------------------------------------------------------- env overrides


def test_state_dir_default_is_next_to_the_settings_dir(sdir: Path) -> None:
    snap = SettingsLoader(sdir).load()
    assert snap.state_dir == sdir.parent / ".oneiric"
    assert snap.state_dir.is_absolute()


def test_state_dir_from_app_is_relative_to_the_settings_parent(sdir: Path) -> None:
    write(sdir / "app.yml", "state_dir: var/state\n")
    assert SettingsLoader(sdir).load().state_dir == sdir.parent / "var" / "state"
    write(sdir / "app.yml", f"state_dir: {sdir.parent / 'abs'}\n")
    assert SettingsLoader(sdir).load().state_dir == sdir.parent / "abs"


def test_state_dir_env_override(sdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(sdir / "app.yml", "state_dir: var/state\n")
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "elsewhere"))
    assert SettingsLoader(sdir).load().state_dir == tmp_path / "elsewhere"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONEIRIC_STATE_DIR", "rel")
    snap = SettingsLoader(sdir).load()
    assert snap.state_dir == tmp_path / "rel" and snap.state_dir.is_absolute()


def test_stack_order_env_override(sdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(sdir / "app.yml", "stack_order: [site, builtin]\n")
    snap = SettingsLoader(sdir).load()
    assert snap.stack_order == ["site", "builtin"]
    monkeypatch.setenv("ONEIRIC_STACK_ORDER", " team, ,site ,,builtin ")
    assert snap.stack_order == ["team", "site", "builtin"]
    monkeypatch.setenv("ONEIRIC_STACK_ORDER", " , ")
    assert snap.stack_order == ["site", "builtin"]


# ----------------------------------------------------------------------------- editing

COMMENTED = """\
# Adapter selections for the demo.
selections:
  cache: memory   # fast, local
  queue: 'redis'
# candidates come next
candidates:
  - key: cache
    provider: memory
    factory: "oneiric_core.providers.cache:MemoryCache"
# end of file
"""


def test_set_selection_replaces_a_value_keeping_comments_order_and_quotes(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", COMMENTED)
    assert set_selection(sdir, Domain.ADAPTER, "cache", "redis") == path
    assert path.read_text() == COMMENTED.replace("cache: memory   # fast", "cache: redis    # fast")
    set_selection(sdir, Domain.ADAPTER, "queue", "kafka")
    assert path.read_text() == COMMENTED.replace("cache: memory   # fast", "cache: redis    # fast").replace(
        "queue: 'redis'", "queue: 'kafka'"
    )


def test_set_selection_adds_a_key_after_the_last_one(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", COMMENTED)
    set_selection(sdir, "adapters", "storage", "s3")
    assert path.read_text() == COMMENTED.replace("  queue: 'redis'\n", "  queue: 'redis'\n  storage: s3\n")
    snap = SettingsLoader(sdir).load()
    assert snap.domains[Domain.ADAPTER].selections == {"cache": "memory", "queue": "redis", "storage": "s3"}


def test_set_selection_removes_a_selection(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", COMMENTED)
    set_selection(sdir, Domain.ADAPTER, "queue", None)
    assert path.read_text() == COMMENTED.replace("  queue: 'redis'\n", "")
    set_selection(sdir, Domain.ADAPTER, "cache", None)
    # the emptied block goes; the comment that followed it stays where it was
    assert path.read_text() == (
        "# Adapter selections for the demo.\n"
        "# candidates come next\n"
        "candidates:\n"
        "  - key: cache\n"
        "    provider: memory\n"
        '    factory: "oneiric_core.providers.cache:MemoryCache"\n'
        "# end of file\n"
    )
    assert SettingsLoader(sdir).load().domains[Domain.ADAPTER].selections == {}
    # removing what is not there changes nothing
    before = path.read_bytes()
    set_selection(sdir, Domain.ADAPTER, "cache", None)
    assert path.read_bytes() == before


def test_set_selection_creates_the_file_and_the_selections_block(sdir: Path) -> None:
    path = set_selection(sdir, Domain.SERVICE, "billing", "stripe")
    assert path == sdir / "services.yml"
    assert path.read_text() == "selections:\n  billing: stripe\n"
    assert SettingsLoader(sdir).load().domains[Domain.SERVICE].selections == {"billing": "stripe"}

    tasks = write(sdir / "tasks.yml", "# tasks\ncandidates: []  # none yet\n")
    set_selection(sdir, Domain.TASK, "nightly", "cron")
    assert tasks.read_text() == "# tasks\nselections:\n  nightly: cron\ncandidates: []  # none yet\n"

    events = write(sdir / "events.yml", "# nothing here yet\n")
    set_selection(sdir, Domain.EVENT, "bus", "memory")
    assert events.read_text() == "# nothing here yet\nselections:\n  bus: memory\n"

    assert not (sdir / "workflows.yml").exists()
    set_selection(sdir, Domain.WORKFLOW, "deploy", None)
    assert not (sdir / "workflows.yml").exists()


def test_set_selection_keeps_indentation_style(sdir: Path) -> None:
    text = (
        "selections:\n"
        "    cache: memory\n"
        "candidates:\n"
        "  - key: cache\n"
        "    provider: memory\n"
        "    factory: a.b:C\n"
    )
    path = write(sdir / "adapters.yml", text)
    set_selection(sdir, Domain.ADAPTER, "cache", "redis")
    assert path.read_text() == text.replace("cache: memory", "cache: redis")


def test_set_selection_refuses_a_broken_file_and_leaves_it_untouched(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", "# keep me\nselections:\n  cache: memory\n  queue: [oops\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"adapters\.yml:\d+:\d+: YAML syntax error"):
        set_selection(sdir, Domain.ADAPTER, "cache", "redis")
    assert path.read_bytes() == before

    write(path, "selections:\n  cache: a\n  cache: b\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"adapters\.yml:3:3: duplicate key"):
        set_selection(sdir, Domain.ADAPTER, "cache", "redis")
    assert path.read_bytes() == before
    assert sorted(p.name for p in sdir.iterdir()) == ["adapters.yml"]


def test_edit_that_would_make_the_file_invalid_is_refused(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", COMMENTED)
    before = path.read_bytes()

    def bad_priority(root):
        root["candidates"][0]["priority"] = 5000

    with pytest.raises(ConfigError, match="candidates\\[0\\].priority"):
        edit_yaml(path, bad_priority)
    assert path.read_bytes() == before

    app = write(sdir / "app.yml", "lifecycle:\n  health_timeout: 5  # seconds\n")
    before_app = app.read_bytes()
    with pytest.raises(ConfigError, match="greater than 0"):
        edit_yaml(app, lambda root: root["lifecycle"].__setitem__("health_timeout", -1))
    assert app.read_bytes() == before_app

    with pytest.raises(ConfigError, match="not a valid provider name"):
        set_selection(sdir, Domain.ADAPTER, "cache", "bad name")
    assert path.read_bytes() == before
    assert sorted(p.name for p in sdir.iterdir()) == ["adapters.yml", "app.yml"]


def test_edit_yaml_keeps_mode_and_edits_app_settings(sdir: Path) -> None:
    app = write(sdir / "app.yml", "# engine\nread_only: false  # flip for audits\n")
    os.chmod(app, 0o640)
    edit_yaml(app, lambda root: root.__setitem__("read_only", True))
    assert app.read_text() == "# engine\nread_only: true   # flip for audits\n"
    assert stat.S_IMODE(app.stat().st_mode) == 0o640
    assert load_file(app, AppSettings).read_only is True


def test_edit_yaml_refuses_a_top_level_list_with_its_position(sdir: Path) -> None:
    path = write(sdir / "adapters.yml", "- a\n")
    with pytest.raises(ConfigError, match=r"adapters\.yml:1:1: expected a mapping"):
        set_selection(sdir, Domain.ADAPTER, "cache", "redis")
    assert path.read_text() == "- a\n"


def test_edit_yaml_refuses_unknown_files(sdir: Path) -> None:
    with pytest.raises(ConfigError, match="not a settings file"):
        edit_yaml(sdir / "notes.yml", lambda root: None)
    assert not (sdir / "notes.yml").exists()


def test_fast_and_careful_parsers_agree_on_the_demo():
    """Valid files take the C-parser fast path; it must give exactly what the careful path gives."""
    from oneiric_core.settings import APP_FILE, _fast_parse, _parse_yaml, _validate, model_for_file

    demo = Path(__file__).resolve().parent.parent / "settings"
    files = [demo / APP_FILE] + [demo / d.settings_file for d in Domain]
    for file in files:
        text = file.read_text()
        model = model_for_file(file)
        fast = _fast_parse(text, model)
        careful, problems = _validate(file, _parse_yaml(file, text).data, model)
        assert problems == [] and fast is not None, file.name
        assert fast == careful, file.name
    # anything with tags, anchors or aliases, or anything invalid, is left to the careful path
    assert _fast_parse("a: &x 1\nb: *x\n", model_for_file(demo / APP_FILE)) is None
    assert _fast_parse("lifecycle:\n  health_timeout: -1\n", model_for_file(demo / APP_FILE)) is None
