"""Upstream Oneiric manifests as a source format (issue 16 point 1). The manifests here are
signed by `upstream_sign`, an implementation of upstream's scheme written from its description
(the document without its signature fields, json.dumps with sorted keys, compact separators
and ensure_ascii, ed25519, base64), not by our code: a real second implementation."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from oneiric_core.errors import ExitCode
from tests.remote_helpers import remote_settings, source

SIGNATURE_FIELDS = ("signature", "signature_algorithm", "signatures")


def upstream_sign(doc: dict[str, Any], key: Ed25519PrivateKey, *, shape: str = "v2",
                  key_id: str | None = None) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k not in SIGNATURE_FIELDS}
    message = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    signature = base64.b64encode(key.sign(message)).decode()
    if shape == "v1":
        return {**doc, "signature": signature, "signature_algorithm": "ed25519"}
    item = {"signature": signature, "algorithm": "ed25519", **({"key_id": key_id} if key_id else {})}
    return {**doc, "signatures": [*doc.get("signatures", []), item]}


def public_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def upstream_doc(signed_at: str = "2026-11-30T10:00:00", **extra: Any) -> dict[str, Any]:
    return {
        "source": "acme-platform",
        "signed_at": signed_at,  # naive: UTC, upstream's rule
        "expires_at": "2099-01-01T00:00:00+00:00",
        "entries": [
            {"domain": "adapter", "key": "cache", "provider": "acme-memory",
             "factory": "oneiric_core.providers.cache_memory:create", "priority": 7, "version": "2.1.0",
             "capabilities": [{"name": "lru", "description": "Zwischenspeicher für alles"}],  # non-ASCII: escaped
             "requires": ["redis>=7"], "metadata": {"owner": "platform"}},
            {"domain": "service", "key": "scheduler", "provider": "acme-cron",
             "factory": "oneiric_core.providers.scheduler_interval:create", "event_topics": ["tick"]},
        ],
        **extra,
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    return path


def test_verify_reads_both_upstream_shapes_by_upstream_rules(run_cli, tmp_path):
    key = Ed25519PrivateKey.generate()
    for shape in ("v1", "v2"):
        path = write(tmp_path / f"{shape}.json", upstream_sign(upstream_doc(), key, shape=shape))
        res = run_cli("manifest", "verify", path, "--public-key", f"platform={public_b64(key)}")
        assert res.returncode == 0, res.stderr
        assert "verifies: upstream signature(s) by platform" in res.stdout
        assert "format: oneiric-0.33 (upstream Oneiric), verified by its rules" in res.stdout
        assert "entry #0 (adapter/cache acme-memory): capabilities, requires, version kept as metadata" in res.stdout


def test_a_tampered_upstream_manifest_does_not_verify(run_cli, tmp_path):
    key = Ed25519PrivateKey.generate()
    doc = upstream_sign(upstream_doc(), key)
    doc["entries"][0]["factory"] = "oneiric_core.providers.cache_sqlite:create"  # after signing
    res = run_cli("manifest", "verify", write(tmp_path / "m.json", doc), "--public-key", f"p={public_b64(key)}")
    assert res.returncode == ExitCode.REMOTE and "does not verify" in res.stderr


def test_import_then_sign_as_ours_keeps_every_field(run_cli, tmp_path):
    key = Ed25519PrivateKey.generate()
    src = write(tmp_path / "upstream.json", upstream_sign(upstream_doc(), key))
    out = tmp_path / "ours.json"
    res = run_cli("manifest", "import", src, "--out", out)
    assert res.returncode == 0, res.stderr
    assert "not honoured: entry #1 (service/scheduler acme-cron): event_topics kept as metadata" in res.stdout
    ours = json.loads(out.read_text())
    assert ours["name"] == "acme-platform" and ours["generated_at"] == "2026-11-30T10:00:00Z"
    assert ours["version"] == 1796032800 and ours["expires_at"] == "2099-01-01T00:00:00Z"
    first = ours["entries"][0]
    assert first["priority"] == 7 and first["metadata"]["owner"] == "platform"
    assert first["metadata"]["upstream"] == {"version": "2.1.0", "requires": ["redis>=7"],
                                             "capabilities": [{"name": "lru",
                                                               "description": "Zwischenspeicher für alles"}]}
    assert run_cli("manifest", "keygen", "--out", tmp_path / "keys" / "acme.pem").returncode == 0
    assert run_cli("manifest", "sign", out, "--key", tmp_path / "keys" / "acme.pem").returncode == 0
    verified = run_cli("manifest", "verify", out, "--public-key", tmp_path / "keys" / "acme.pem.pub")
    assert verified.returncode == 0 and "format:" not in verified.stdout  # ours now
    refused = run_cli("manifest", "sign", src, "--key", tmp_path / "keys" / "acme.pem")
    assert refused.returncode != 0 and "is an upstream Oneiric manifest: convert it" in refused.stderr


def test_a_source_serving_an_upstream_manifest_syncs_and_refuses_a_replay(run_cli, tmp_path):
    key = Ed25519PrivateKey.generate()

    class Trusted:
        id, public = "platform-2026", public_b64(key)

    manifests = tmp_path / "served"
    manifests.mkdir()
    path = write(manifests / "upstream.json", upstream_sign(upstream_doc(), key, shape="v1"))
    (tmp_path / "r").mkdir()  # not tmp_path/settings: run_cli's demo copy is there
    settings = remote_settings(tmp_path / "r", [source("acme", f"file:{path}", signature_required=True)], [Trusted])
    synced = run_cli("remote-sync", settings=settings)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    listed = run_cli("list", "--json", settings=settings).json()["candidates"]
    assert {("adapter", "cache", "acme-memory"), ("service", "scheduler", "acme-cron")} <= {
        (c["domain"], c["key"], c["provider"]) for c in listed}
    status = run_cli("remote-status", "--json", settings=settings).json()["sources"][0]
    assert status["manifest"]["format"] == "oneiric-0.33" and status["signature"]["status"] == "verified"
    assert any("capabilities" in note for note in status["manifest"]["not_honoured"])
    # an older one, also signed (a replay): refused here, though upstream would take it until it expires
    write(path, upstream_sign(upstream_doc(signed_at="2026-11-01T10:00:00"), key, shape="v1"))
    replay = run_cli("remote-sync", settings=settings)
    assert replay.returncode == ExitCode.REMOTE and "rollback" in (replay.stdout + replay.stderr).lower()


def test_an_entry_with_a_uri_but_no_digest_is_rejected_alone(run_cli, tmp_path):
    key = Ed25519PrivateKey.generate()
    doc = upstream_doc()
    doc["entries"][1]["uri"] = "https://blobs.example.com/cron.whl"  # no sha256
    res = run_cli("manifest", "verify", write(tmp_path / "m.json", upstream_sign(doc, key)),
                  "--public-key", f"p={public_b64(key)}", "--json")
    report = res.json()
    assert report["accepted"] == 1 and report["rejected"][0]["index"] == 1
    assert "sha256" in report["rejected"][0]["reason"]
