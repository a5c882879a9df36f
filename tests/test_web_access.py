"""The web view's rules (oneiric_core/web_access.py) and how the CLI refuses bad web options."""

from __future__ import annotations

import pytest

from oneiric_core.errors import UsageError
from oneiric_core.web_access import (
    AccessToken,
    BindAddress,
    exposure_warning,
    new_session_id,
    parse_bind,
    session_display,
)


def test_the_default_bind_is_loopback_on_a_free_port() -> None:
    bind = parse_bind(None)
    assert bind == BindAddress("127.0.0.1", 0) and bind.loopback
    assert exposure_warning(bind) is None


@pytest.mark.parametrize(("text", "host", "port", "loopback"), [
    ("127.0.0.1:8080", "127.0.0.1", 8080, True),
    ("8080", "127.0.0.1", 8080, True),
    (":8080", "127.0.0.1", 8080, True),
    ("localhost:9000", "localhost", 9000, True),
    ("127.0.0.2:1", "127.0.0.2", 1, True),
    ("[::1]:8080", "::1", 8080, True),
    ("0.0.0.0:8080", "0.0.0.0", 8080, False),
    ("[::]:8080", "::", 8080, False),
    ("192.0.2.7:80", "192.0.2.7", 80, False),
    ("console.example:80", "console.example", 80, False),  # a name is not assumed to be local
])
def test_bind_forms(text: str, host: str, port: int, loopback: bool) -> None:
    bind = parse_bind(text)
    assert (bind.host, bind.port, bind.loopback) == (host, port, loopback)
    warning = exposure_warning(bind)
    assert (warning is None) == loopback
    if warning:
        assert "reachable from other machines" in warning and "plain HTTP" in warning


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "::1:80", "[::1]8080", "a:b:c"])
def test_a_bad_bind_is_one_sentence(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_bind(text)
    message = str(caught.value)
    assert message.startswith(f"--bind {text!r}") and "\n" not in message and message.endswith(".")


def test_urls_a_browser_here_can_open() -> None:
    assert BindAddress("127.0.0.1", 0).url(4242) == "http://127.0.0.1:4242"
    assert BindAddress("0.0.0.0", 8080).url() == "http://127.0.0.1:8080"
    assert BindAddress("::1", 8080).url() == "http://[::1]:8080"
    assert BindAddress("::", 8080).url() == "http://[::1]:8080"


def test_the_token_matches_only_itself() -> None:
    token = AccessToken()
    assert len(token.value) >= 43 and token.value != AccessToken().value
    assert token.matches(token.value)
    for wrong in (None, "", token.value[:-1], token.value + "x", token.value.upper(), "\udcff"):
        assert not token.matches(wrong), wrong
    assert token.value not in repr(token)


def test_session_ids_are_unique_within_a_server_and_shown_with_the_users_own_name() -> None:
    seen: set[str] = set()
    for _ in range(300):
        session = new_session_id(seen)
        assert session not in seen and len(session) == 4 and int(session, 16) >= 0
        seen.add(session)
    every_short_id = {f"{n:04x}" for n in range(16 ** 4)}
    assert len(new_session_id(every_short_id)) == 6  # a long-running server never runs out
    assert session_display("3f2a") == "web session 3f2a"
    assert session_display("3f2a", "ops desk") == "ops desk, web session 3f2a"
    assert session_display("3f2a", "раul") == "web session 3f2a"  # a look-alike name is dropped
    assert session_display("3f2a", "x" * 60) == "web session 3f2a"  # too long together


def test_the_cli_refuses_web_options_without_web_and_a_bad_bind(run_cli) -> None:
    result = run_cli("console", "--bind", "127.0.0.1:8080")
    assert result.returncode == 2 and "--bind and --web-operate go with --web" in result.stderr, result
    result = run_cli("console", "--web-operate")
    assert result.returncode == 2, result
    result = run_cli("console", "--web", "--bind", "localhost")
    assert result.returncode == 2 and "is not of the form HOST:PORT" in result.stderr, result
    assert "Traceback" not in result.stderr and result.stdout == ""
    result = run_cli("--read-only", "console", "--web", "--web-operate")
    assert result.returncode == 2 and "choose one" in result.stderr, result


def test_the_help_says_what_a_non_loopback_bind_means(run_cli) -> None:
    result = run_cli("console", "--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert "--web" in text and "--web-operate" in text and "default: read-only" in text
    assert "default 127.0.0.1 on a free port" in text and "reachable from other machines" in text


WITHOUT_TEXTUAL_SERVE = """
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "textual_serve":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Blocker())
from oneiric_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_the_web_extra_web_says_what_to_install(tmp_path, demo_settings, cli_env) -> None:
    import subprocess
    import sys

    state = tmp_path / "state"
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TEXTUAL_SERVE, "--settings", str(demo_settings),
                           "--state-dir", str(state), "console", "--web"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=cli_env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ("oneiric: 'oneiric console --web' needs textual-serve, which is not installed here: "
                           "pip install 'oneiric-console[web]'.\n")
    assert proc.stdout == "" and not (state / "state.sqlite").exists()  # nothing started
