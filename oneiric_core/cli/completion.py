"""Shell completion for bash, zsh and fish: `oneiric completion SHELL` prints the script.

The scripts keep no list of their own. On every Tab they run `oneiric __complete` with the
words typed so far (the program's name first, the word under the cursor last), and this
module answers from the parser itself, so a new command or flag completes the day it is
added: commands and actions, flags, an option's choices, and for --domain, --key and
--provider the names the settings directory holds (the built-in candidates and the domain
files' candidates and selections; remote manifests' candidates are not read, since a Tab
must not open the state store). A path-valued option answers nothing and the shell offers
files.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import ExitCode
from .output import say
from .parser import SETTINGS_ENV, Commands

SHELLS = ("bash", "zsh", "fish")

# Each script passes the words before the cursor and then the word under it, quoted so an
# empty one is still an argument; the first word is the command as typed (a path works too).
BASH = r"""# oneiric completion for bash: eval "$(oneiric completion bash)" in ~/.bashrc
_oneiric() {
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:0:COMP_CWORD}" "${COMP_WORDS[COMP_CWORD]}" 2>/dev/null))
}
complete -o default -F _oneiric oneiric
"""

ZSH = r"""#compdef oneiric
# oneiric completion for zsh: after compinit, source <(oneiric completion zsh) in ~/.zshrc
_oneiric() {
    local -a candidates
    candidates=("${(@f)$("${words[1]}" __complete "${(@)words[1,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    if (( ${#candidates} )) && [[ -n "${candidates[1]}" ]]; then
        compadd -Q -a candidates
    else
        _files
    fi
}
compdef _oneiric oneiric
"""

FISH = r"""# oneiric completion for fish: oneiric completion fish > ~/.config/fish/completions/oneiric.fish
function __oneiric_complete
    set -l typed (commandline -opc)
    set -l found ($typed[1] __complete $typed "$(commandline -ct)" 2>/dev/null)
    if test (count $found) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\n' $found
    end
end
complete -c oneiric -f -a '(__oneiric_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def add_parsers(commands: Commands) -> None:
    p = commands.add("completion", "print the shell completion script for bash, zsh or fish", run=cmd_completion,
                     needs_engine=False, json_flag=False,
                     example=['eval "$(oneiric completion bash)"          # in ~/.bashrc',
                              "source <(oneiric completion zsh)           # in ~/.zshrc, after compinit",
                              "oneiric completion fish > ~/.config/fish/completions/oneiric.fish"])
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")


def cmd_completion(args: argparse.Namespace) -> int:
    say(SCRIPTS[args.shell].rstrip("\n"))
    return ExitCode.OK


def print_candidates(build_parser: Callable[[], argparse.ArgumentParser], words: list[str]) -> int:
    """`oneiric __complete PROG WORD... CURRENT`: one candidate per line. Never fails loudly:
    a Tab that cannot be answered answers nothing."""
    try:
        found = candidates(build_parser(), words[1:])
    except Exception:  # noqa: BLE001 - a Tab must never print a traceback into the prompt (broken settings, a bug)
        found = []
    for word in found:
        print(word)
    return ExitCode.OK


def candidates(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """What may replace the last of `words` (the command line after the program's name, the
    last word being the one under the cursor, perhaps empty), by `parser`'s commands and
    options."""
    *done, current = words or [""]
    node = parser
    pending: argparse.Action | None = None  # an option still waiting for its value
    given: dict[str, str] = {}  # dest -> value typed so far (--settings, --domain, --key)
    for word in done:
        if word == "=":  # bash splits `--key=cache` into three words
            continue
        if pending is not None:
            given[pending.dest] = word
            pending = None
            continue
        if word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            action = node._option_string_actions.get(name)
            if action is not None and action.nargs != 0:
                if eq:
                    given[action.dest] = value
                else:
                    pending = action
            continue
        sub = _subcommands(node)
        if sub is not None and word in sub.choices:
            node = sub.choices[word]
    if current == "=":
        current = ""
    if pending is not None:
        return _starting(_values(pending, given), current)
    if current.startswith("-"):
        return _starting((s for a in node._actions if a.help is not argparse.SUPPRESS for s in a.option_strings
                          if s.startswith("--")), current)
    sub = _subcommands(node)
    if sub is not None:
        return _starting(sub.choices, current)
    for action in node._positionals._group_actions:
        if action.choices:
            return _starting((str(c) for c in action.choices), current)
        if action.dest == "key_arg" and "key" not in given:  # `oneiric explain KEY`
            return _starting(_names("key", given), current)
    return []


def _subcommands(node: argparse.ArgumentParser) -> Any:
    return next((a for a in node._actions if isinstance(a, argparse._SubParsersAction)), None)


def _starting(words: Iterable[str], prefix: str) -> list[str]:
    return sorted({w for w in words if w.startswith(prefix)})


def _values(action: argparse.Action, given: dict[str, str]) -> list[str]:
    """The values an option may take: its choices, else the names the settings know."""
    if action.choices:
        return [str(c) for c in action.choices]
    if action.dest == "domain":
        from ..domains import Domain

        return [d.value for d in Domain]
    if action.dest in ("key", "provider") and action.type is None:
        return _names(action.dest, given)
    return []  # a path, a number, free text: the shell's own completion (files) or nothing


def _names(what: str, given: dict[str, str]) -> list[str]:
    """Keys (of --domain when given) or providers (of --key when given) from the built-in
    candidates and the settings directory's domain files."""
    import os

    from ..domains import Domain
    from ..providers import builtin_candidates
    from ..settings import SettingsLoader

    domain = Domain.parse(given["domain"]) if given.get("domain") else None
    key = given.get("key")
    pairs: set[tuple[Domain, str, str]] = {(c.domain, c.key, c.provider) for c in builtin_candidates()}
    settings_dir = Path(given.get("settings") or os.environ.get(SETTINGS_ENV, "settings")).expanduser()
    snapshot = SettingsLoader(settings_dir).load()
    for dom, file in snapshot.domains.items():
        pairs.update((dom, c.key, c.provider) for c in file.candidates)
        pairs.update((dom, k, p) for k, p in file.selections.items())
    pairs = {p for p in pairs if domain is None or p[0] == domain}
    if what == "key":
        return [k for _, k, _ in pairs]
    return [p for _, k, p in pairs if key is None or k == key]
