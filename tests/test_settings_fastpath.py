"""The settings fast path (yaml-rs) never disagrees with the careful path (ruamel round-trip).

`_fast_load` may refuse a text (None: the careful path then decides); whatever it accepts
must be exactly what the careful path makes of it, type for type, and it must refuse
every text the careful path finds a problem in. Checked on tricky scalars, on generated
documents, and on character soup.

yaml-rs is optional (the `fast` extra); without it ruamel's safe loader is the fast path's
parser. Every check here runs with each parser (the `fast_parser` fixture);
tests/test_without_yaml_rs.py loads settings and a YAML manifest in a process where `yaml_rs`
cannot be imported at all.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oneiric_core.settings as settings_module
from oneiric_core.domains import Domain
from oneiric_core.settings import DomainSettings, _fast_load, _fast_parse
from oneiric_core.settings_careful import _parse_yaml, _to_plain, parse_careful

FILE = Path("adapters.yml")

# Generated texts reuse anchor names; ruamel warns about that, which is beside the point here.
pytestmark = pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")


@pytest.fixture(scope="module", autouse=True, params=["yaml-rs", "ruamel.yaml"])
def fast_parser(request: pytest.FixtureRequest) -> Any:
    """Each test of this module once with each parser the fast path can have: yaml-rs (the
    `fast` extra) and ruamel's safe loader (what a plain install uses). Module-scoped, so it
    swaps the loader itself rather than through monkeypatch (hypothesis refuses function-scoped
    fixtures)."""
    if request.param == "yaml-rs":
        loads = settings_module._yaml_rs_loads()
        if loads is None:
            pytest.skip("yaml-rs is not installed (pip install -e '.[fast]')")
    else:
        loads = settings_module._ruamel_loads()
    saved = settings_module._LOADS
    settings_module._LOADS = loads
    yield request.param
    settings_module._LOADS = saved

SCALARS = [
    "yes", "no", "on", "off", "y", "n", "true", "True", "TRUE", "false", "null", "Null", "~", "",
    "0x1F", "0o17", "017", "0b101", "1_000", "+12", "-0", "1.5", "1e3", "1.0e+3", ".5", "5.",
    ".inf", "-.inf", ".NaN", "2001-02-03", "2001-02-03T04:05:06Z", "12:30:00", "190:20:30",
    "'quoted'", '"dq\\tx"', '"\\u263a"', "a b", "a #c", "'a''b'", "=", "<<", "-x", "?x", "50%",
    "x@y", "http://x/y?q=1#f", "b:c", "100000000000000000000000", "é", "\t", "'\ttab'",
    "[a, 1]", "{a: 1}", "[]", "{}", "&a x", "*a", "!!str 1", "!!python/object:os.system x",
    "|\n  block\n", ">-\n  folded\n  text\n",
]


def careful(text: str) -> tuple[Any, bool]:
    """(data, ok) as the careful path sees the text."""
    parsed = _parse_yaml(FILE, text)
    if parsed.problems:
        return None, False
    try:
        return (_to_plain(parsed.data, [10**6]) if parsed.data is not None else None), True
    except RecursionError:
        return None, False


def typed(value: Any) -> Any:
    """A comparable form that tells 1 from 1.0 from True and treats NaN as equal to itself."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def check(text: str) -> None:
    fast = _fast_load(text)
    data, ok = careful(text)
    if fast is None:
        return
    assert ok, f"the fast path accepted a text the careful path refuses: {text!r}"
    assert typed(fast) == typed(data), f"fast and careful disagree on {text!r}"


def test_tricky_scalars_as_values_keys_and_items() -> None:
    for scalar in SCALARS:
        for text in (f"v: {scalar}\n", f"{scalar}: v\n", f"v:\n  - {scalar}\n", f"v: [{scalar}]\n"):
            check(text)


def test_documents_the_careful_path_refuses_never_pass_the_fast_path() -> None:
    for text in [
        "a: 1\na: 2\n", "m:\n  1: a\n  1.0: b\n", "m:\n  true: a\n  1: b\n", "a: \tb\n",
        "a: 1\n---\nb: 2\n", "- a\n", "hello\n", "a: x\x07y\n", "a: x\x85y\n", "%YAML 1.1\n---\na: yes\n",
        "a:\n  <<: {b: 1}\n", "a: !!python/object/apply:os.system [true]\n", "a: &x 1\nb: *x\n",
        "a: `x\n", "a: [1, 2\n", "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n",
        "a: " + "[" * 250 + "]" * 250 + "\n",
    ]:
        check(text)


names = st.sampled_from(["cache", "queue", "key", "provider", "a.b", "x-1", "1", "yes", "null", "'q'", '"d"'])
scalars = st.one_of(st.sampled_from(SCALARS[:48]), st.integers(-10**6, 10**6).map(str),
                    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=8))


@st.composite
def block(draw: Any, depth: int = 0, indent: int = 0) -> str:
    """A block mapping or sequence at `indent`, with scalars, flow collections and comments."""
    pad = " " * indent
    step = draw(st.sampled_from([2, 4]))
    lines = []
    as_list = depth > 0 and draw(st.booleans())
    for _ in range(draw(st.integers(1, 4))):
        head = f"{pad}- " if as_list else f"{pad}{draw(names)}:"
        kind = draw(st.sampled_from(["scalar", "scalar", "flow", "nested"] if depth < 3 else ["scalar", "flow"]))
        if kind == "scalar":
            lines.append(f"{head} {draw(scalars)}".rstrip() + draw(st.sampled_from(["", "  # note"])))
        elif kind == "flow":
            items = ", ".join(draw(st.lists(scalars.filter(lambda s: not s.startswith(("|", ">"))), max_size=3)))
            lines.append(f"{head} [{items}]" if draw(st.booleans()) else f"{head} {{k: {items or 'v'}}}")
        else:
            lines.append(head.rstrip())
            lines.append(draw(block(depth + 1, indent + step)))
        if draw(st.integers(0, 5)) == 0:
            lines.append(f"{pad}# a comment")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block())
def test_generated_documents(text: str) -> None:
    check(text + "\n")


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("ab1:-[]{},#'\" \n\t?&*!|>%@`=.~\\é09_exX+")), max_size=40))
def test_character_soup(text: str) -> None:
    check(text)


def test_fast_parse_validates_like_the_careful_path() -> None:
    text = (
        "selections:\n  cache: memory\n"
        "candidates:\n  - key: cache\n    provider: memory\n    factory: a.b:c\n    settings:\n"
        "  - key: cache\n    provider: big\n    factory: a.b:c\n    priority: 3\n    metadata: {team: x}\n"
    )
    fast = _fast_parse(text, DomainSettings)
    slow, problems = parse_careful(FILE, text, DomainSettings)
    assert problems == [] and fast is not None and fast == slow
    assert fast.candidates[0].settings == {}  # an empty field means its default, on both paths
    # a bad name is left to the careful path, which words it
    assert _fast_parse(text.replace("provider: big", "provider: -big"), DomainSettings) is None


def test_reloading_unchanged_content_parses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import oneiric_core.settings as settings_module
    from oneiric_core.settings import SettingsLoader

    adapters = tmp_path / "adapters.yml"
    adapters.write_text("candidates:\n  - key: cache\n    provider: memory\n    factory: a.b:c\n")
    (tmp_path / "services.yml").write_text("selections:\n  queue: -bad\n")
    loader = SettingsLoader(tmp_path)
    first = loader.load()
    parsed: list[str] = []
    real = settings_module._parse_text
    monkeypatch.setattr(settings_module, "_parse_text",
                        lambda file, text, model, *limits: parsed.append(file.name) or real(file, text, model, *limits))

    again = loader.load()  # same bytes everywhere: the same models, the same problems
    assert parsed == []
    assert again.domains[Domain.ADAPTER] is first.domains[Domain.ADAPTER]
    assert [str(p) for p in again.problems] == [str(p) for p in first.problems] != []

    adapters.write_text(adapters.read_text().replace("memory", "big"))
    _, problems = loader.reload_file(adapters)
    assert parsed == ["adapters.yml"] and problems == []
    assert loader.last_good(adapters).candidates[0].provider == "big"

