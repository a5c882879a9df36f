"""SSH signatures against the real OpenSSH tools: what `ssh-keygen -Y sign` writes verifies here,
what `agent_sign` makes through a real ssh-agent verifies with `ssh-keygen -Y verify`, and every
refusal is one sentence. Keys are made by ssh-keygen in temporary directories; each test that
needs an agent starts its own `ssh-agent -D` and stops it afterwards.
"""

from __future__ import annotations

import base64
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oneiric_core import sshsig
from oneiric_core.sshsig import (
    AgentError,
    AllowedSignersError,
    BadSignature,
    KeyNotValidNow,
    MalformedSignature,
    NamespaceNotAllowed,
    SshSigError,
    UnknownSigner,
    WrongNamespace,
    agent_sign,
    parse_allowed_signers,
    verify,
)

OPENSSH_TOOLS = ("ssh-keygen", "ssh-agent", "ssh-add")
needs_openssh = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in OPENSSH_TOOLS),
    reason="OpenSSH's ssh-keygen, ssh-agent and ssh-add are not on PATH",
)

NS = "oneiric-approve"
ALICE = "alice@example.com"
MESSAGE = b"approve proposal 7: swap cache to redis\n"
ED25519_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGN+dIhASamFta1D6dzA47Ufg4uqUvEHtsrSC1xmSUpx"
KINDS = {  # name -> ssh-keygen arguments
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "3072"],
}
KEY_TYPES = {"ed25519": "ssh-ed25519", "ecdsa256": "ecdsa-sha2-nistp256",
             "ecdsa384": "ecdsa-sha2-nistp384", "ecdsa521": "ecdsa-sha2-nistp521", "rsa": "ssh-rsa"}


@dataclass(frozen=True)
class Key:
    private: Path
    public_line: str     # "type base64 comment"
    fingerprint: str     # as `ssh-keygen -l` prints it


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _key_blob(line: str) -> bytes:
    return base64.b64decode(line.split()[1])


def one_sentence(message: str) -> bool:
    return message.endswith(".") and "\n" not in message and "Traceback" not in message


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Key]:
    if any(shutil.which(tool) is None for tool in OPENSSH_TOOLS):
        pytest.skip("OpenSSH's ssh-keygen, ssh-agent and ssh-add are not on PATH")
    directory = tmp_path_factory.mktemp("keys")
    made = {}
    for name, args in {**KINDS, "mallory": ["-t", "ed25519"], "bob": ["-t", "ed25519"]}.items():
        path = directory / name
        subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", f"{name}-key", "-f", str(path)], check=True)
        listing = subprocess.run(["ssh-keygen", "-l", "-f", f"{path}.pub"], check=True,
                                 capture_output=True, text=True).stdout.split()
        made[name] = Key(path, (directory / f"{name}.pub").read_text().strip(), listing[1])
    return made


class Agent:
    """A real `ssh-agent -D` on a socket of its own."""

    def __init__(self) -> None:
        # Not tmp_path: a Unix socket path must stay under ~108 bytes.
        self.directory = tempfile.mkdtemp(prefix="sshsig-", dir="/tmp")
        self.socket = os.path.join(self.directory, "agent.sock")
        self.process = subprocess.Popen(["ssh-agent", "-D", "-a", self.socket],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # -D prints "SSH_AUTH_SOCK=...;" once the socket listens: readiness without polling.
        first = self.process.stdout.readline()
        assert first.startswith("SSH_AUTH_SOCK="), first

    def add(self, key: Key) -> None:
        subprocess.run(["ssh-add", "-q", str(key.private)], check=True, capture_output=True,
                       env={**os.environ, "SSH_AUTH_SOCK": self.socket})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def agent():
    if shutil.which("ssh-agent") is None:
        pytest.skip("OpenSSH's ssh-agent is not on PATH")
    running = Agent()
    try:
        yield running
    finally:
        running.stop()


def keygen_sign(key: Key, message: bytes = MESSAGE, namespace: str = NS, *options: str) -> str:
    done = subprocess.run(["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(key.private), *options],
                          input=message, capture_output=True, check=True)
    return done.stdout.decode("ascii")


def keygen_verify(tmp_path: Path, signature: str, allowed: str, principal: str = ALICE,
                  message: bytes = MESSAGE, namespace: str = NS) -> subprocess.CompletedProcess:
    (tmp_path / "sig").write_text(signature)
    (tmp_path / "allowed_signers").write_text(allowed)
    return subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed_signers"),
                           "-I", principal, "-n", namespace, "-s", str(tmp_path / "sig")],
                          input=message, capture_output=True)


def signers_for(*lines: str) -> list[sshsig.AllowedSigner]:
    return parse_allowed_signers("\n".join(lines) + "\n")


def without_comment(key: Key) -> str:
    return " ".join(key.public_line.split()[:2])


# -- signatures made by ssh-keygen verify here ----------------------------------------------------

@needs_openssh
@pytest.mark.parametrize("kind", KINDS)
def test_a_signature_by_ssh_keygen_verifies_and_names_the_principal(keys, kind):
    key = keys[kind]
    signers = signers_for(f"{ALICE},alice-admin@example.com {key.public_line}")

    verified = verify(keygen_sign(key), MESSAGE, NS, signers)

    assert verified.principals == (ALICE, "alice-admin@example.com")
    assert verified.principal == ALICE
    assert verified.key_type == KEY_TYPES[kind]
    assert verified.fingerprint == key.fingerprint
    assert verified.source == "allowed_signers:1"
    assert verified.signature_algorithm == ("rsa-sha2-512" if kind == "rsa" else KEY_TYPES[kind])


@needs_openssh
@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_sha256_signature_by_ssh_keygen_verifies(keys, kind):
    signature = keygen_sign(keys[kind], MESSAGE, NS, "-O", "hashalg=sha256")
    assert sshsig.parse_signature(signature).hash_algorithm == "sha256"

    verified = verify(signature, MESSAGE, NS, signers_for(f"{ALICE} {keys[kind].public_line}"))

    assert verified.fingerprint == keys[kind].fingerprint


@needs_openssh
def test_armor_with_crlf_line_ends_or_as_bytes_verifies(keys):
    signature = keygen_sign(keys["ed25519"])
    signers = signers_for(f"{ALICE} {keys['ed25519'].public_line}")

    assert verify(signature.replace("\n", "\r\n"), MESSAGE, NS, signers).principal == ALICE
    assert verify(signature.encode("ascii"), MESSAGE, NS, signers).principal == ALICE


@needs_openssh
def test_the_principal_asked_for_must_match_a_pattern_of_the_line(keys):
    signature = keygen_sign(keys["ed25519"])
    signers = signers_for(f"*@example.com,!mallory@example.com {keys['ed25519'].public_line}")

    assert verify(signature, MESSAGE, NS, signers, principal=ALICE).principals == (ALICE,)
    with pytest.raises(UnknownSigner) as refused:
        verify(signature, MESSAGE, NS, signers, principal="mallory@example.com")
    assert "mallory@example.com" in str(refused.value) and one_sentence(str(refused.value))
    with pytest.raises(UnknownSigner):
        verify(signature, MESSAGE, NS, signers, principal="alice@example.org")


# -- signatures made through a real ssh-agent verify with ssh-keygen ------------------------------

@needs_openssh
@pytest.mark.parametrize("kind", KINDS)
def test_a_signature_by_agent_sign_verifies_with_ssh_keygen(keys, agent, tmp_path, kind):
    key = keys[kind]
    agent.add(key)

    signature = agent_sign(MESSAGE, NS, socket_path=agent.socket)

    checked = keygen_verify(tmp_path, signature, f"{ALICE} {key.public_line}\n")
    assert checked.returncode == 0, checked.stderr
    assert f'Good "{NS}" signature for {ALICE}' in checked.stdout.decode()
    assert key.fingerprint in checked.stdout.decode()
    assert verify(signature, MESSAGE, NS, signers_for(f"{ALICE} {key.public_line}")).fingerprint == key.fingerprint
    # and ssh-keygen refuses it for a changed message, so the check above is not vacuous
    assert keygen_verify(tmp_path, signature, f"{ALICE} {key.public_line}\n", message=MESSAGE + b"!").returncode != 0


@needs_openssh
@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_agent_sign_writes_exactly_what_ssh_keygen_writes(keys, agent, kind):
    """ed25519 and RSA PKCS#1 v1.5 signatures are deterministic, so the armored text of the same
    message, namespace and key must be identical byte for byte (blob, hash, wrapping, newlines)."""
    agent.add(keys[kind])

    assert agent_sign(MESSAGE, NS, socket_path=agent.socket) == keygen_sign(keys[kind])


@needs_openssh
def test_agent_sign_uses_ssh_auth_sock_by_default(keys, agent, monkeypatch):
    agent.add(keys["ed25519"])
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)

    signature = agent_sign(MESSAGE, NS)

    assert verify(signature, MESSAGE, NS, signers_for(f"{ALICE} {keys['ed25519'].public_line}")).principal == ALICE


@needs_openssh
def test_with_several_keys_the_key_is_chosen_by_fingerprint_or_public_key(keys, agent):
    agent.add(keys["ed25519"])
    agent.add(keys["rsa"])
    signers = signers_for(f"{ALICE} {keys['ed25519'].public_line}", f"bob@example.com {keys['rsa'].public_line}")

    with pytest.raises(AgentError) as ambiguous:
        agent_sign(MESSAGE, NS, socket_path=agent.socket)
    message = str(ambiguous.value)
    assert "holds 2 keys" in message and one_sentence(message)
    assert keys["ed25519"].fingerprint in message and keys["rsa"].fingerprint in message

    by_fingerprint = agent_sign(MESSAGE, NS, key=keys["rsa"].fingerprint, socket_path=agent.socket)
    assert verify(by_fingerprint, MESSAGE, NS, signers).principal == "bob@example.com"
    by_public_key = agent_sign(MESSAGE, NS, key=keys["ed25519"].public_line, socket_path=agent.socket)
    assert verify(by_public_key, MESSAGE, NS, signers).principal == ALICE

    with pytest.raises(AgentError) as missing:
        agent_sign(MESSAGE, NS, key=keys["mallory"].fingerprint, socket_path=agent.socket)
    assert keys["mallory"].fingerprint in str(missing.value) and keys["rsa"].fingerprint in str(missing.value)


@needs_openssh
def test_an_agent_without_keys_says_so(agent):
    with pytest.raises(AgentError) as empty:
        agent_sign(MESSAGE, NS, socket_path=agent.socket)
    assert "holds no keys" in str(empty.value) and "ssh-add" in str(empty.value)
    assert one_sentence(str(empty.value))


def test_no_agent_is_one_sentence_naming_ssh_auth_sock(monkeypatch, tmp_path):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(AgentError) as unset:
        agent_sign(MESSAGE, NS)
    assert "SSH_AUTH_SOCK is unset" in str(unset.value) and one_sentence(str(unset.value))

    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "gone.sock"))
    with pytest.raises(AgentError) as unreachable:
        agent_sign(MESSAGE, NS)
    assert f"cannot reach the ssh-agent at {tmp_path / 'gone.sock'}" in str(unreachable.value)
    assert one_sentence(str(unreachable.value))


@needs_openssh
def test_an_rsa_signature_with_sha1_is_refused_here_and_by_ssh_keygen(keys, agent, tmp_path):
    """An agent asked without the rsa-sha2 flags signs with ssh-rsa (SHA-1); agent_sign always
    sets the flag, so the legacy signature is made here by hand to show it is refused."""
    agent.add(keys["rsa"])
    public_key = sshsig.PublicKey.from_openssh(keys["rsa"].public_line)
    data = sshsig.signed_data(NS, "sha512", MESSAGE)
    with sshsig._Agent(agent.socket, 10) as connection:
        (identity,) = connection.identities()
        legacy = connection.sign(identity, data, flags=0)
    signature = sshsig.armor(sshsig.SshSignature(public_key, NS, "sha512", legacy))
    assert sshsig._Reader(legacy).text() == "ssh-rsa"

    with pytest.raises(BadSignature) as refused:
        verify(signature, MESSAGE, NS, signers_for(f"{ALICE} {keys['rsa'].public_line}"))
    assert "SHA-1" in str(refused.value) and one_sentence(str(refused.value))
    assert keygen_verify(tmp_path, signature, f"{ALICE} {keys['rsa'].public_line}\n").returncode != 0


class BrokenAgent:
    """An agent socket that answers as a broken or hostile agent would, for what a real
    ssh-agent never does: it lists `public_line` and answers a sign request with `reply`."""

    def __init__(self, public_line: str, reply: bytes | None) -> None:
        import socket
        import threading

        self.directory = tempfile.mkdtemp(prefix="sshsig-", dir="/tmp")
        self.socket = os.path.join(self.directory, "broken.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.socket)
        self._server.listen(1)
        self._identity = _key_blob(public_line)
        self._reply = reply
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._server.accept()
        with connection:
            for _ in range(2):
                length = struct.unpack(">I", connection.recv(4))[0]
                kind = connection.recv(length)[0]
                if kind == 11:   # identities: one key
                    body = bytes([12]) + struct.pack(">I", 1) + _ssh_string(self._identity) + _ssh_string(b"k")
                elif self._reply is None:   # hang up mid-reply
                    connection.sendall(struct.pack(">I", 100) + b"\x0e")
                    return
                else:
                    body = bytes([14]) + _ssh_string(self._reply)
                connection.sendall(struct.pack(">I", len(body)) + body)

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.mark.parametrize("reply, words", [
    (_ssh_string(b"ssh-ed25519") + _ssh_string(bytes(64)), "does not check out"),
    (_ssh_string(b"ssh-rsa") + _ssh_string(bytes(64)), "does not check out"),
    (None, "closed the connection"),
])
def test_a_broken_agent_is_an_error_never_a_signature(reply, words):
    broken = BrokenAgent(ED25519_LINE, reply)
    try:
        with pytest.raises(AgentError) as refused:
            agent_sign(MESSAGE, NS, socket_path=broken.socket, timeout=10)
    finally:
        broken.close()
    assert words in str(refused.value) and one_sentence(str(refused.value)), str(refused.value)


# -- what verify refuses --------------------------------------------------------------------------

@needs_openssh
def test_a_changed_message_or_signature_is_a_bad_signature(keys):
    signature = keygen_sign(keys["ed25519"])
    signers = signers_for(f"{ALICE} {keys['ed25519'].public_line}")

    with pytest.raises(BadSignature) as changed_message:
        verify(signature, MESSAGE.replace(b"7", b"8"), NS, signers)
    assert keys["ed25519"].fingerprint in str(changed_message.value) and one_sentence(str(changed_message.value))

    parsed = sshsig.parse_signature(signature)
    flipped = bytearray(parsed.signature)
    flipped[-1] ^= 0x01
    forged = sshsig.armor(sshsig.SshSignature(parsed.public_key, NS, parsed.hash_algorithm, bytes(flipped)))
    with pytest.raises(BadSignature):
        verify(forged, MESSAGE, NS, signers)


@needs_openssh
def test_a_signature_for_another_namespace_is_refused(keys):
    signature = keygen_sign(keys["ed25519"], MESSAGE, "git")

    with pytest.raises(WrongNamespace) as refused:
        verify(signature, MESSAGE, NS, signers_for(f"{ALICE} {keys['ed25519'].public_line}"))

    assert '"git"' in str(refused.value) and NS in str(refused.value) and one_sentence(str(refused.value))


@needs_openssh
def test_a_key_not_in_allowed_signers_is_unknown(keys):
    signature = keygen_sign(keys["mallory"])

    with pytest.raises(UnknownSigner) as refused:
        verify(signature, MESSAGE, NS, signers_for(f"{ALICE} {keys['ed25519'].public_line}"))

    assert keys["mallory"].fingerprint in str(refused.value) and one_sentence(str(refused.value))
    with pytest.raises(UnknownSigner):
        verify(signature, MESSAGE, NS, [])


@needs_openssh
def test_namespaces_option_restricts_the_key_as_ssh_keygen_does(keys, tmp_path):
    signature = keygen_sign(keys["ed25519"])
    restricted = f'{ALICE} namespaces="git,file" {keys["ed25519"].public_line}'

    with pytest.raises(NamespaceNotAllowed) as refused:
        verify(signature, MESSAGE, NS, signers_for(restricted))
    assert "allowed_signers:1" in str(refused.value) and '"git,file"' in str(refused.value)
    assert one_sentence(str(refused.value))
    assert keygen_verify(tmp_path, signature, restricted + "\n").returncode != 0

    pattern = f'{ALICE} NAMESPACES="git,oneiric-*" {keys["ed25519"].public_line}'
    assert verify(signature, MESSAGE, NS, signers_for(pattern)).principal == ALICE
    assert keygen_verify(tmp_path, signature, pattern + "\n").returncode == 0


@needs_openssh
def test_validity_options_are_enforced_as_ssh_keygen_does(keys, tmp_path):
    signature = keygen_sign(keys["ed25519"])
    expired = f'{ALICE} valid-before="20200101Z" {keys["ed25519"].public_line}'
    not_yet = f'{ALICE} valid-after="29990101" {keys["ed25519"].public_line}'
    current = f'{ALICE} valid-after="20200101",valid-before="29990101120000Z" {keys["ed25519"].public_line}'

    with pytest.raises(KeyNotValidNow) as was_expired:
        verify(signature, MESSAGE, NS, signers_for(expired))
    assert "expired at 2020-01-01 00:00:00 UTC" in str(was_expired.value) and one_sentence(str(was_expired.value))
    assert keygen_verify(tmp_path, signature, expired + "\n").returncode != 0

    with pytest.raises(KeyNotValidNow) as early:
        verify(signature, MESSAGE, NS, signers_for(not_yet))
    assert "not valid until 2999-01-01" in str(early.value)
    assert keygen_verify(tmp_path, signature, not_yet + "\n").returncode != 0

    assert verify(signature, MESSAGE, NS, signers_for(current)).principal == ALICE
    assert keygen_verify(tmp_path, signature, current + "\n").returncode == 0
    # a later line with the same key may still admit it: lines are tried in turn, as sshsig.c does
    assert verify(signature, MESSAGE, NS, signers_for(expired, current)).source == "allowed_signers:2"


_NS_BYTES = NS.encode()


def _blob(*, magic=b"SSHSIG", version=1, key=None, namespace=_NS_BYTES, hash_algorithm=b"sha512",
          signature=b"\0\0\0\x0bssh-ed25519\0\0\0\x40" + bytes(64), trailing=b"") -> str:
    key = key if key is not None else _ssh_string(b"ssh-ed25519") + _ssh_string(bytes(range(32)))
    blob = (magic + struct.pack(">I", version) + b"".join(
        _ssh_string(field) for field in (key, namespace, b"", hash_algorithm, signature)) + trailing)
    encoded = base64.b64encode(blob).decode()
    return "-----BEGIN SSH SIGNATURE-----\n" + encoded + "\n-----END SSH SIGNATURE-----\n"


MALFORMED = {
    "empty": ("", "does not start with"),
    "no header": ("U1NIU0lH\n-----END SSH SIGNATURE-----\n", "does not start with"),
    "no footer": ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n", "no line -----END"),
    "text after the footer": (_blob() + "and more\n", "text after"),
    "bad base64": ("-----BEGIN SSH SIGNATURE-----\nU1NIU0l!\n-----END SSH SIGNATURE-----\n", "base64"),
    "truncated": ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAA\n-----END SSH SIGNATURE-----\n", "truncated"),
    "wrong magic": (_blob(magic=b"SSHSIX"), "SSHSIG preamble"),
    "version 2": (_blob(version=2), "version 2"),
    "trailing bytes": (_blob(trailing=b"x"), "trailing bytes"),
    "empty namespace": (_blob(namespace=b""), "empty namespace"),
    "sha1": (_blob(hash_algorithm=b"sha1"), "sha1"),
    "not a key": (_blob(key=b"\0\0\0\x0bssh-ed25519\0\0\0\x03abc"), "32 bytes"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_armor_is_one_sentence(case):
    text, words = MALFORMED[case]

    with pytest.raises(MalformedSignature) as refused:
        verify(text, MESSAGE, NS, [])

    assert words in str(refused.value) and one_sentence(str(refused.value))


def test_a_certificate_signature_is_refused_as_unsupported():
    cert_key = b"\0\0\0\x20ssh-ed25519-cert-v01@openssh.com" + bytes(40)
    with pytest.raises(sshsig.UnsupportedKey) as refused:
        verify(_blob(key=cert_key), MESSAGE, NS, [])
    assert "certificate" in str(refused.value) and one_sentence(str(refused.value))


# -- the allowed signers file ---------------------------------------------------------------------

@needs_openssh
def test_an_allowed_signers_file_reads_as_ssh_keygen_reads_it(keys, tmp_path):
    ed, rsa, bob = keys["ed25519"], keys["rsa"], keys["bob"]
    text = (
        "# operators of the cache fleet\r\n"
        "\n"
        f"   {ALICE},alice-admin@example.com {ed.public_line}\r\n"
        f'"bob smith@example.com" Namespaces="oneiric-*",VALID-AFTER="20240101" {without_comment(bob)}\n'
        f"*@ops.example.com,!intern@ops.example.com {without_comment(rsa)} ops shared key\n"
        "\t# an indented comment\n"
    )
    path = tmp_path / "allowed_signers"
    path.write_text(text)

    signers = parse_allowed_signers(path)

    assert [s.principals for s in signers] == [
        (ALICE, "alice-admin@example.com"), ("bob smith@example.com",),
        ("*@ops.example.com", "!intern@ops.example.com")]
    assert [s.source for s in signers] == [f"{path}:3", f"{path}:4", f"{path}:5"]
    assert [s.key.fingerprint for s in signers] == [ed.fingerprint, bob.fingerprint, rsa.fingerprint]
    assert signers[1].namespaces == ("oneiric-*",) and signers[1].valid_after.year == 2024
    # ssh-keygen finds the same principals for each key in the same file
    for key, signer in zip((ed, bob, rsa), signers, strict=True):
        (tmp_path / "sig").write_text(keygen_sign(key))
        found = subprocess.run(["ssh-keygen", "-Y", "find-principals", "-f", str(path), "-s", str(tmp_path / "sig")],
                               capture_output=True, text=True)
        assert found.stdout.split("\n")[:-1] == list(signer.principals)
        assert verify(keygen_sign(key), MESSAGE, NS, signers).principals == signer.principals


BAD_LINES = {
    "one field": ("alice", "only one field"),
    "no key after options": ('alice namespaces="git"', "key is missing after the options"),
    "unknown option": (f"alice no-touch-required {ED25519_LINE}", "unknown option \"no-touch-required\""),
    "unquoted value": (f"alice valid-before=20200101 {ED25519_LINE}", "double quotes"),
    "unclosed quote": (f'alice namespaces="git {ED25519_LINE}', "no closing"),
    "bad time": (f'alice valid-after="2024-01-01" {ED25519_LINE}', "YYYYMMDD"),
    "twice": (f'alice namespaces="a",namespaces="b" {ED25519_LINE}', "given twice"),
    "before not after": (f'alice valid-after="20250101",valid-before="20240101" {ED25519_LINE}', "not later"),
    "space in options": (f'alice namespaces="a", valid-after="20240101" {ED25519_LINE}', "without spaces"),
    "bad base64": ("alice ssh-ed25519 AAAA!!!!", "base64"),
    "type mismatch": ("alice ecdsa-sha2-nistp256 " + ED25519_LINE.split()[1], "holds a ssh-ed25519 key"),
    "not a key type": ("alice ssh-foo AAAA", "not an SSH key type"),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_a_malformed_line_is_one_sentence_naming_file_and_line(case, tmp_path):
    line, words = BAD_LINES[case]
    path = tmp_path / "allowed_signers"
    path.write_text(f"# comment\n{ALICE} {ED25519_LINE}\n{line}\n")

    with pytest.raises(AllowedSignersError) as refused:
        parse_allowed_signers(path)

    message = str(refused.value)
    assert message.startswith(f"{path}:3: ") and words in message and one_sentence(message), message


@needs_openssh
@pytest.mark.parametrize("case", BAD_LINES)
def test_ssh_keygen_reports_the_same_lines_as_malformed(keys, case, tmp_path):
    """ssh-keygen names each of these lines as malformed too (it then skips the line, where this
    module refuses the whole file): the file means the same to both."""
    signature = keygen_sign(keys["ed25519"])
    good = f"alice {keys['ed25519'].public_line}\n"
    assert keygen_verify(tmp_path, signature, good, principal="alice").stderr == b""

    checked = keygen_verify(tmp_path, signature, BAD_LINES[case][0] + "\n" + good, principal="alice")

    assert f"{tmp_path / 'allowed_signers'}:1: " in checked.stderr.decode()


@needs_openssh
def test_key_encodings_are_accepted_and_refused_as_ssh_keygen_does(keys, tmp_path):
    """An RSA exponent with superfluous leading zeros is the same key to ssh-keygen (and has its
    fingerprint); a compressed ECDSA point is an invalid key to ssh-keygen, so it is refused here."""
    from cryptography.hazmat.primitives import serialization

    reader = sshsig._Reader(_key_blob(keys["rsa"].public_line))
    kind, exponent, modulus = reader.string(), reader.string(), reader.string()
    blob = _ssh_string(kind) + _ssh_string(bytes(2) + exponent) + _ssh_string(modulus)
    padded = f"{ALICE} ssh-rsa {base64.b64encode(blob).decode()}"
    signature = keygen_sign(keys["rsa"])
    assert keygen_verify(tmp_path, signature, padded + "\n").returncode == 0
    assert verify(signature, MESSAGE, NS, signers_for(padded)).fingerprint == keys["rsa"].fingerprint

    point = serialization.load_ssh_public_key(keys["ecdsa256"].public_line.encode()).public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    compressed = (f"{ALICE} ecdsa-sha2-nistp256 "
                  + base64.b64encode(_ssh_string(b'ecdsa-sha2-nistp256') + _ssh_string(b'nistp256')
                                     + _ssh_string(point)).decode())
    assert "invalid key" in keygen_verify(tmp_path, keygen_sign(keys["ecdsa256"]), compressed + "\n").stderr.decode()
    with pytest.raises(AllowedSignersError) as refused:
        signers_for(compressed)
    assert "uncompressed" in str(refused.value)


def test_cert_authority_is_refused_with_a_reason():
    with pytest.raises(AllowedSignersError) as refused:
        parse_allowed_signers(f"*@example.com cert-authority {ED25519_LINE}\n", name="/etc/oneiric/allowed_signers")

    message = str(refused.value)
    assert message.startswith("/etc/oneiric/allowed_signers:1: cert-authority lines are not supported")
    assert one_sentence(message)


def test_security_keys_and_certificates_are_refused_by_name():
    for key_type, words in (("sk-ssh-ed25519@openssh.com", "not supported"),
                            ("ssh-ed25519-cert-v01@openssh.com", "certificate")):
        with pytest.raises(AllowedSignersError) as refused:
            parse_allowed_signers(f"alice {key_type} AAAA\n")
        assert refused.value.args[0].startswith("allowed_signers:1: ") and words in str(refused.value)


def test_an_unreadable_file_and_a_path_passed_as_text_are_one_sentence(tmp_path):
    with pytest.raises(AllowedSignersError) as missing:
        parse_allowed_signers(tmp_path / "nope")
    assert f"cannot read the allowed signers file {tmp_path / 'nope'}" in str(missing.value)
    assert one_sentence(str(missing.value))

    with pytest.raises(AllowedSignersError) as as_text:
        parse_allowed_signers(str(tmp_path / "nope"))
    assert "looks like a path" in str(as_text.value) and "pathlib.Path" in str(as_text.value)

    (tmp_path / "latin1").write_bytes(f"{ALICE} {ED25519_LINE}\nj\xf6rg {ED25519_LINE}\n".encode("latin-1"))
    with pytest.raises(AllowedSignersError) as not_utf8:
        parse_allowed_signers(tmp_path / "latin1")
    assert str(not_utf8.value) == f"{tmp_path / 'latin1'}:2: the line is not UTF-8 text."


def test_empty_and_comment_only_files_have_no_signers():
    assert parse_allowed_signers("") == []
    assert parse_allowed_signers("# nobody yet\n\n   \n") == []


# -- nothing but the module's own errors, whatever the input --------------------------------------

def _public_lines() -> list[str]:
    """A valid key line of each supported type, made in-process: hypothesis cannot use fixtures."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    made = [ec.generate_private_key(curve()).public_key() for curve in (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)]
    made.append(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())
    openssh = (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return [ED25519_LINE] + [key.public_bytes(*openssh).decode()
                             for key in made]


PUBLIC_LINES = _public_lines()
NOISE = st.text(max_size=4)
PRINCIPALS = st.one_of(
    st.sampled_from(["alice", "*@example.com,!bob@example.com", '"bob smith"', '"unclosed', ""]), NOISE)
OPTION = st.one_of(
    st.sampled_from(['namespaces="git,file"', 'NAMESPACES="oneiric-*"', 'valid-after="20240101"',
                     'valid-before="29990101Z"', 'valid-after="202401011200UTC"', 'valid-before="20240230"',
                     "valid-before=20240101", 'namespaces="a\\"b"', "cert-authority", "no-touch-required"]),
    st.tuples(st.sampled_from(["namespaces=", "valid-after=", "valid-before="]), NOISE).map("".join),
)
KEY_FIELD = st.one_of(
    st.sampled_from(PUBLIC_LINES),
    st.tuples(st.sampled_from(["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com",
                               "ssh-rsa-cert-v01@openssh.com", "rsa-sha2-512"]),
              st.one_of(st.sampled_from([line.split()[1] for line in PUBLIC_LINES]), st.binary(max_size=60).map(
                  lambda b: base64.b64encode(b).decode()), NOISE)).map(" ".join),
)
LINE = st.one_of(
    st.tuples(PRINCIPALS, st.lists(OPTION, max_size=3).map(",".join), KEY_FIELD, NOISE).map(" ".join),
    st.tuples(PRINCIPALS, KEY_FIELD).map(" ".join),
    st.sampled_from(["", "# comment", "   ", "\r"]),
    NOISE,
)
ALLOWED_SIGNERS_TEXT = st.one_of(st.text(), st.lists(LINE, max_size=6).map("\n".join))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ALLOWED_SIGNERS_TEXT)
def test_parse_allowed_signers_raises_only_its_own_error(text):
    try:
        signers = parse_allowed_signers(text)
    except AllowedSignersError as error:
        message = str(error)
        assert one_sentence(message) and message.isprintable() and message.startswith("allowed_signers:"), message
    else:
        assert all(isinstance(signer.key, sshsig.PublicKey) for signer in signers)


def _mostly(valid, other):
    """Valid values nine times in ten, so most examples get past the structure to the crypto."""
    return st.integers(0, 9).flatmap(lambda pick: other if pick == 0 else valid)


SIGNATURE_FIELD = st.tuples(
    st.sampled_from([b"ssh-ed25519", b"rsa-sha2-512", b"rsa-sha2-256", b"ssh-rsa", b"ecdsa-sha2-nistp256",
                     b"ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521", b"x"]),
    st.one_of(st.binary(max_size=140), st.tuples(st.binary(max_size=70), st.binary(max_size=70)).map(
        lambda rs: _ssh_string(rs[0]) + _ssh_string(rs[1]))),
).map(lambda parts: _ssh_string(parts[0]) + _ssh_string(parts[1]))
SSHSIG_BLOB = st.tuples(
    _mostly(st.just(b"SSHSIG\0\0\0\x01"), st.sampled_from([b"SSHSIG\0\0\0\x02", b"SSHSIX\0\0\0\x01", b"SSH"])),
    _mostly(st.sampled_from([_key_blob(line) for line in PUBLIC_LINES]), st.binary(max_size=40)),
    _mostly(st.just(NS.encode()), st.binary(max_size=12)),
    st.binary(max_size=4),
    _mostly(st.sampled_from([b"sha512", b"sha256"]), st.binary(max_size=8)),
    _mostly(SIGNATURE_FIELD, st.binary(max_size=20)),
    _mostly(st.just(b""), st.binary(max_size=2)),
).map(lambda f: f[0] + b"".join(_ssh_string(x) for x in f[1:6]) + f[6])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), SSHSIG_BLOB))
def test_verify_raises_only_its_own_errors_on_arbitrary_signatures(data):
    if isinstance(data, bytes):
        data = "-----BEGIN SSH SIGNATURE-----\n" + base64.b64encode(data).decode() + "\n-----END SSH SIGNATURE-----\n"
    with pytest.raises(SshSigError) as refused:
        verify(data, MESSAGE, NS, parse_allowed_signers("\n".join(f"{ALICE} {line}" for line in PUBLIC_LINES)))
    assert one_sentence(str(refused.value)) and str(refused.value).isprintable(), str(refused.value)
