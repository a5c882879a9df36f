"""RFC 8785 (JCS) as the manifest's signed bytes: the RFC's own examples, the reference
implementation's test data and its ES6 number test sequence (tests/data/jcs/README.md says
where each came from), a hypothesis property test, and signatures made outside Python's json
module (npm `canonicalize` + `openssl pkeyutl`, committed as a fixture; and node + openssl live
when they are installed)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneiric_core.remote import signing
from oneiric_core.remote.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical_json, general, number
from oneiric_core.remote.manifest import ManifestError, canonical_bytes, parse_manifest

DATA = Path(__file__).resolve().parent / "data" / "jcs"
RFC = json.loads((DATA / "rfc8785.json").read_text(encoding="utf-8"))
ES6 = json.loads((DATA / "es6-numbers.json").read_text(encoding="utf-8"))
CYBERPHONE = sorted(p.stem for p in (DATA / "cyberphone" / "input").glob("*.json"))
INDEPENDENT = DATA / "independent"


def double(ieee_hex: str) -> float:
    return struct.unpack(">d", bytes.fromhex(ieee_hex.rjust(16, "0")))[0]


def jcs_of_text(text: str | bytes) -> bytes:
    return canonical_json(json.loads(text))


# -- RFC 8785 itself ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", RFC["canonicalize"], ids=lambda c: c["section"].split()[0])
def test_rfc_8785_example_canonicalises_byte_for_byte(case):
    assert jcs_of_text(case["input"]) == case["output"].encode("utf-8")


def test_rfc_8785_sorts_members_by_utf16_code_units():
    """§3.2.3: the emoji (a surrogate pair, 0xD83D...) sorts before U+FB33, which code point
    order (Python's sorted, json.dumps(sort_keys=True)) gets the other way round."""
    out = jcs_of_text(RFC["sorting"]["input"]).decode("utf-8")
    positions = [out.index(value) for value in RFC["sorting"]["order"]]
    assert positions == sorted(positions), out
    python_order = json.dumps(json.loads(RFC["sorting"]["input"]), sort_keys=True, ensure_ascii=False)
    assert python_order.index("Hebrew") < python_order.index("Emoji"), "the case json.dumps gets wrong"


@pytest.mark.parametrize("row", RFC["numbers"], ids=lambda r: r["ieee"])
def test_rfc_8785_appendix_b_numbers(row):
    value = double(row["ieee"])
    if row.get("error"):
        with pytest.raises(CanonicalError, match="not a JSON number"):
            canonical_json({"n": value})
    else:
        assert number(value) == row["output"]
        assert canonical_json([value]) == f"[{row['output']}]".encode()


# -- the reference implementation's test data ------------------------------------------------------

@pytest.mark.parametrize("name", CYBERPHONE)
def test_reference_implementation_test_data(name):
    given_bytes = (DATA / "cyberphone" / "input" / f"{name}.json").read_bytes()
    expected = (DATA / "cyberphone" / "output" / f"{name}.json").read_bytes()
    assert bytes.fromhex((DATA / "cyberphone" / "outhex" / f"{name}.txt").read_text()) == expected
    assert jcs_of_text(given_bytes) == expected
    assert general(json.loads(given_bytes)) == expected


def es6_sequence():
    """The reference implementation's deterministic number sequence (es6-numbers.json)."""
    for text in ES6["static"]:
        yield int(text, 16)
    start = int(ES6["serial"]["start"], 16)
    yield from (start + i for i in range(ES6["serial"]["count"]))
    block = bytes(32)
    while True:
        block = hashlib.sha256(block).digest()
        for (bits,) in struct.iter_unpack("<Q", block):
            value = struct.unpack("<d", struct.pack("<Q", bits))[0]
            if value != 0.0 and value - value == 0.0:  # neither zero nor NaN nor infinite
                yield bits


def test_es6_number_test_file_hash_matches_the_published_one():
    """The first 100,000 lines `hex,expected` of es6testfile100m.txt, written with our number
    serialiser, hash to the SHA-256 the reference implementation publishes (1,000,000 lines
    match too; that takes ~5 s, so the suite checks 100,000)."""
    lines = 100_000
    digest = hashlib.sha256()
    for count, bits in enumerate(es6_sequence()):
        if count == 1000:
            assert digest.hexdigest() == ES6["sha256_of_first_lines"]["1000"]
        if count == lines:
            break
        digest.update(f"{bits:x},{number(struct.unpack('<d', struct.pack('<Q', bits))[0])}\n".encode())
    assert digest.hexdigest() == ES6["sha256_of_first_lines"][str(lines)]
    for line in ES6["sample_lines"]:
        ieee, expected = line.split(",")
        assert number(double(ieee)) == expected


# -- what is refused, and where ----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "words"), [
    ({"a": float("nan")}, "nan is not a JSON number (RFC 8785 3.2.2.3 refuses NaN and Infinity) at a"),
    ([1, float("-inf")], "-inf is not a JSON number"),
    ({"big": MAX_SAFE_INTEGER + 2}, "the integer 9007199254740993 would sign as 9007199254740992 (beyond "
                                    "+-(2**53 - 1) a JSON number is a double, I-JSON, RFC 7493 2.2); write it as a "
                                    "string at big"),
    ([10**400], "the integer 1000"),
    ({"s": {"k": ["ok", "x\ud800"]}}, "a string holds the lone surrogate U+D800, which UTF-8 and I-JSON "
                                      "(RFC 7493 2.1) cannot carry at s.k[1]"),
    ({"odd key": {"\udfff": 1}}, "a member name holds the lone surrogate U+DFFF"),
    ({1: "x"}, "the member name 1 is not a string"),
    ({"when": {b"bytes"}}, "a set value, which JSON cannot carry at when"),
])
def test_what_jcs_cannot_carry_is_refused_naming_where(value, words):
    with pytest.raises(CanonicalError) as caught:
        canonical_json(value)
    assert words in str(caught.value)


def test_edge_values():
    assert canonical_json({"z": -0.0, "i": -MAX_SAFE_INTEGER, "f": 1.0, "e": 1e21, "m": 1e-7, "u": 1e-6}) == \
        b'{"e":1e+21,"f":1,"i":-9007199254740991,"m":1e-7,"u":0.000001,"z":0}'
    assert canonical_json("\x00\x1f\x7f\u2028\"\\/") == b'"\\u0000\\u001f\x7f\xe2\x80\xa8\\"\\\\/"'
    assert canonical_json([True, False, None, (1, 2)]) == b"[true,false,null,[1,2]]"
    # beyond 2**53 an integer is the double it denotes, when that double is exactly it
    assert canonical_json([2**53, -999999999999999900000, 10**21]) == b"[9007199254740992,-999999999999999900000,1e+21]"


def test_a_manifest_with_an_unsignable_value_is_refused_in_one_sentence():
    raw = b'{"version": 1, "name": "x", "generated_at": "t", "entries": [{"settings": {"n": 12345678901234567890}}]}'
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw)
    assert str(caught.value) == ("the manifest cannot be canonicalised for signing (RFC 8785): the integer "
                                 "12345678901234567890 would sign as 12345678901234567000 (beyond +-(2**53 - 1) a "
                                 "JSON number is a double, I-JSON, RFC 7493 2.2); write it as a string at "
                                 "entries[0].settings.n")
    with pytest.raises(ManifestError, match="inf is not a JSON number"):
        parse_manifest(b'{"version": 1, "name": "x", "generated_at": "t", "entries": [{"x": 1e400}]}')


# -- properties ---------------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # no lone surrogates (I-JSON)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=30,
)


def es_int(text: str) -> int | float:
    """A JSON integer as ECMAScript reads it: beyond 2**53, the double it denotes."""
    value = int(text)
    return value if abs(value) <= MAX_SAFE_INTEGER else float(value)


def reorder(value: Any, rng: random.Random) -> Any:
    """The same value with every object's members inserted in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: reorder(v, rng) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rng) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.randoms(use_true_random=False))
def test_canonical_output_parses_back_equal_and_ignores_member_order(value, rng):
    out = canonical_json(value)
    assert general(value) == out, "the fast path (the json module's C encoder) and the general one agree"
    assert json.loads(out, parse_int=es_int) == value  # 1.0 comes back as 1, which equals it
    assert canonical_json(reorder(value, rng)) == out
    assert canonical_json(json.loads(out)) == out  # canonical once, canonical for good
    assert not any(b in out for b in (b"\n", b"\t", b"\r")), "no whitespace, no raw control characters"


# -- signatures made outside Python's json module ------------------------------------------------------

def test_npm_canonicalize_and_openssl_fixture_verifies_here():
    """tests/data/jcs/independent: made by make-fixture.sh with npm `canonicalize` and
    `openssl pkeyutl` (no Python). Our bytes are theirs, byte for byte, and their signature
    verifies with our verifier; json.dumps(sort_keys=True), the old signed bytes, differs."""
    fixture = json.loads((INDEPENDENT / "fixture.json").read_text())
    theirs = (INDEPENDENT / "manifest.jcs").read_bytes()
    parsed = parse_manifest((INDEPENDENT / "manifest.signed.json").read_bytes())
    assert parsed.signed_bytes == theirs
    assert canonical_bytes(json.loads((INDEPENDENT / "manifest.input.json").read_bytes())) == theirs
    result = signing.verify(parsed.data, parsed.model.signatures, {fixture["key_id"]: fixture["public_key"]},
                            threshold=1, required=True)
    assert result.ok and result.key_ids == [fixture["key_id"]], result.reason
    body = {k: v for k, v in parsed.data.items() if k != "signatures"}
    old = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert old != theirs


NODE_JCS = r"""
const jcs = v => v === null || typeof v !== "object" ? JSON.stringify(v)
  : Array.isArray(v) ? "[" + v.map(jcs).join(",") + "]"
  : "{" + Object.keys(v).sort().map(k => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}";
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
if (process.argv.includes("lines")) {
  for (const line of lines) process.stdout.write(JSON.stringify(jcs(JSON.parse(line))) + "\n");
} else {
  const manifest = JSON.parse(lines.join("\n"));
  delete manifest.signatures;
  process.stdout.write(jcs(manifest));
}
"""


def _tools_or_skip() -> None:
    if not (shutil.which("node") and shutil.which("openssl")):
        pytest.skip("node and openssl are not installed: the independent-signature fixture test covers this")
    probe = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this openssl cannot make ed25519 keys: the independent-signature fixture test covers this")


def node(*args: str, stdin: bytes) -> bytes:
    """ECMAScript's own JSON.stringify (RFC 8785 is defined by it) with keys sorted by sort(),
    which compares UTF-16 code units: an implementation that shares nothing with ours."""
    return subprocess.run(["node", "-e", NODE_JCS, "--", *args], input=stdin, capture_output=True,
                          check=True, timeout=60).stdout


def tricky_value(rng: random.Random, depth: int = 0) -> Any:
    alphabet = ["a", "Z", "0", "\x00", "\x1f", "\x7f", "\"", "\\", "/", "\n", "\u00e9", "\u2028", "\u20ac",
                "\ue000", "\uffff", "\ufb33", "\U0001f600", "\U00010000", "\u0301", " "]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return {text(): tricky_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}
    if depth < 3 and roll < 0.4:
        return [tricky_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.6:
        while True:  # any finite double, by its bits
            value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if value - value == 0.0:
                return value
    if roll < 0.7:
        return rng.choice([0.0, -0.0, 1.0, 1e21, 1e-7, 1e-6, 5e-324, 0.1, 1 / 3, 123456789.125, 1e20])
    if roll < 0.8:
        return rng.randint(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    if roll < 0.95:
        return text()
    return rng.choice([None, True, False])


def has_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    return isinstance(value, float)


def test_our_bytes_equal_ecmascripts_on_random_documents():
    _tools_or_skip()
    rng = random.Random(8785)
    docs = [tricky_value(rng) for _ in range(400)]
    stdin = "".join(json.dumps(d) + "\n" for d in docs).encode()  # Python's JSON, ASCII-escaped
    theirs = [json.loads(line).encode("utf-8") for line in node("lines", stdin=stdin).decode().split("\n") if line]
    assert len(theirs) == len(docs)
    for doc, expected in zip(docs, theirs, strict=True):
        assert canonical_json(doc) == expected, doc
    without_floats = [d for d in docs if not has_float(d)]
    assert len(without_floats) > 50, "documents for the fast path (no float) were among them"


async def test_a_manifest_signed_by_node_and_openssl_syncs(tmp_path):
    """Canonicalised by node, signed by `openssl pkeyutl -sign -rawin`, synced by a real Engine
    from a file source that requires signatures."""
    _tools_or_skip()
    from oneiric_core.engine import Engine
    from tests.remote_helpers import Key, entry, manifest, remote_settings, source

    data = manifest([entry(provider="openssl-signed", settings={"ratio": 1.0, "tiny": 1e-7, "huge": 1e21,
                                                                 "\U0001f600": "emoji", "\ufb33": "dalet"})],
                    version=3)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data, indent=3))  # ASCII escapes, spaces: nothing like the canonical form
    jcs = node("manifest", stdin=path.read_bytes())
    assert jcs == canonical_bytes(parse_manifest(path.read_bytes()).data)
    (tmp_path / "m.jcs").write_bytes(jcs)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", tmp_path / "k.pem"], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", tmp_path / "k.pem", "-in", tmp_path / "m.jcs",
                    "-out", tmp_path / "m.sig"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", tmp_path / "k.pem", "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    public = base64.b64encode(der[-32:]).decode()
    data["signatures"] = [{"key_id": "openssl", "algorithm": "ed25519",
                           "signature": base64.b64encode((tmp_path / "m.sig").read_bytes()).decode()}]
    path.write_text(json.dumps(data, indent=3))

    settings_dir = remote_settings(tmp_path, [source("acme", str(path), signature_required=True)],
                                   [Key("openssl", None, public)])  # no private key here: openssl holds it
    engine = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester")
    try:
        out = (await engine.remote.sync_now())[0]
        assert out.ok and out.signature["key_ids"] == ["openssl"], out.message()
        assert any(c.provider == "openssl-signed" for c in engine.registry.all() if c.source == "remote:acme")
    finally:
        engine.close()
