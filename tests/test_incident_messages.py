"""Messages from the incident itself (issue 17 points 1 and 2): each kind from a real incident
walked on the demo (its checks, its approved action, its next update time), the templates as
data, the timeline record, and delivery to a real HTTP server on 127.0.0.1 with a retry."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from oneiric_core.errors import ConfigError, UsageError
from oneiric_core.runbooks import messages
from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.runbooks.loader import load_catalog
from oneiric_core.runbooks.walker import Walker
from tests.helpers import DEMO, FAST_APP, demo_copy, demo_with_redis_port, pong_server

ROLES = ["on_call_engineer", "incident_commander", "engineering_lead", "product_owner", "support"]


@pytest.fixture
def settings_dir(tmp_path):
    return demo_with_redis_port(tmp_path)


async def _walked_incident(engine, settings_dir) -> tuple[Incidents, int]:
    """A P1 incident on adapter/cache whose hot-swap-failed walk found the rolled-back swap and
    retried it, approved by bob."""
    port = int((settings_dir / "redis.port").read_text())
    await engine.request_swap("adapter", "cache", "redis", actor="alice", approve=True)  # rolls back: no redis
    incidents = Incidents(engine)
    inc = incidents.open("cache swap to redis rolls back", "P1", commander="alice", refs=["adapter/cache"])
    walker = Walker(load_catalog(DEMO, roles=ROLES), "hot-swap-failed", engine,
                    params={"domain": "adapter", "key": "cache"}, actor="alice", recorder=incidents.recorder(inc.id))
    await walker.advance()
    server = await pong_server(port)
    try:
        walker.answer("up now - re-check")
        await walker.advance()
        outcome = await walker.perform()
        await engine.approve(outcome.proposal_id, actor="bob")
        await walker.wait(timeout=10)
        await walker.advance()
    finally:
        server.close()
        await server.wait_closed()
        await engine._swap_now("adapter", "cache", "memory")
    return incidents, inc.id


async def test_each_kind_is_filled_from_the_walked_incident(engine, settings_dir):
    incidents, inc_id = await _walked_incident(engine, settings_dir)
    opened = incidents.get(inc_id).opened_at
    announce = messages.compose(incidents, inc_id, "announce", now=opened + 60)
    assert announce.text.startswith(f"[P1 High] Investigating incident #{inc_id}: cache swap to redis rolls back")
    assert "Components: adapter/cache" in announce.text
    # the walk's latest checks: the backend unreachable at first, the probe after the retry ok
    assert "unreachable" in announce.fields["findings"] and "Probe adapter/cache now. ok" in announce.fields["findings"]
    assert "respond within 15 min" in announce.text
    assert announce.fields["next_update"] == time.strftime("%Y-%m-%d %H:%M", time.localtime(opened + 30 * 60))
    messages.record(incidents, announce, actor="alice")
    update = messages.compose(incidents, inc_id, "update", "markdown")
    assert update.text.startswith(f"**[P1] Update on incident #{inc_id}**")
    assert "approved by bob" in update.fields["actions"] and "asked by alice" in update.fields["actions"]
    sent_at = [e.ts for e in incidents.entries(inc_id) if e.kind == "message"][0]
    assert update.fields["next_update"] == time.strftime("%Y-%m-%d %H:%M", time.localtime(max(time.time(),
                                                                                             sent_at + 30 * 60)))
    with pytest.raises(UsageError, match="still open"):
        messages.compose(incidents, inc_id, "resolved")
    incidents.close(inc_id, "redis is back; swapped", actor="alice", root_cause="redis was down",
                    follow_ups=["alert on redis"])
    resolved = messages.compose(incidents, inc_id, "resolved")
    assert "Resolution: redis is back; swapped" in resolved.text and "Root cause: redis was down" in resolved.text
    assert "Follow-ups: alert on redis" in resolved.text and resolved.fields["next_update"] == "none"
    ticket = messages.compose(incidents, inc_id, "ticket", "markdown")
    assert ticket.text.startswith(f"## Incident #{inc_id} (P1 High)")


@pytest.mark.parametrize("severity,minutes", [("P0", 15), ("P1", 30), ("P2", 60), ("P3", 240)])
async def test_the_update_cadence_follows_the_severity(engine, severity, minutes):
    incidents = Incidents(engine)
    inc = incidents.open(f"a {severity}", severity, commander="alice", refs=["adapter/cache"])
    assert messages.next_update_at(incidents, incidents.get(inc.id)) == pytest.approx(inc.opened_at + minutes * 60)


def test_templates_are_data_and_a_wrong_field_is_one_sentence(tmp_path, run_cli, demo_settings):
    custom = (DEMO / "messages.yml").read_text().replace("Investigating incident", "We are looking at incident")
    (demo_settings / "messages.yml").write_text(custom)
    run_cli("incident", "open", "--severity", "P2", "--title", "slow cache", "--component", "adapter/cache")
    res = run_cli("incident", "message", "1", "--kind", "announce")
    assert res.returncode == 0 and res.stdout.startswith("[P2 Medium] We are looking at incident #1: slow cache")
    shown = run_cli("incident", "show", "1", "--json").json()
    assert any(e["kind"] == "message" and e["text"] == "announce message; prepared to send" for e in shown["timeline"])
    (demo_settings / "messages.yml").write_text(custom.replace("{impact}", "{blast_radius}", 1))
    bad = run_cli("incident", "message", "1", "--kind", "update")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "the 'announce' text template names {blast_radius}, which is not a field" in bad.stderr


class _Hook(BaseHTTPRequestHandler):
    answers: list[int] = []
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        type(self).bodies.append(self.rfile.read(int(self.headers["content-length"])))
        code = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    _Hook.answers, _Hook.bodies = [], []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _with_webhook(tmp_path: Path, url: str, fmt: str) -> Path:
    settings = demo_copy(tmp_path / "hooked")
    (settings / "app.yml").write_text(FAST_APP + f"escalation:\n  webhooks:\n    P1: {{url: '{url}', format: {fmt}, "
                                                 "retries: 2, timeout_s: 2}\n")
    return settings


@pytest.mark.parametrize("fmt", ["json", "slack", "teams"])
def test_a_message_is_posted_with_a_retry_after_a_500(run_cli, tmp_path, hook, fmt):
    settings = _with_webhook(tmp_path, f"http://127.0.0.1:{hook.server_port}/hook", fmt)
    run_cli("incident", "open", "--severity", "P1", "--title", "cache down", "--component", "adapter/cache",
            settings=settings)
    _Hook.answers = [500]  # the first attempt fails, the retry succeeds
    res = run_cli("incident", "message", "1", "--kind", "announce", "--send", settings=settings)
    assert res.returncode == 0, res.stderr
    assert "sent: posted to" in res.stdout and "HTTP 200, attempt 2" in res.stdout
    assert len(_Hook.bodies) == 2
    body = json.loads(_Hook.bodies[-1])
    text = {"json": lambda b: b["text"], "slack": lambda b: b["text"], "teams": lambda b: b["text"]}[fmt](body)
    assert "Investigating incident #1: cache down" in text
    if fmt == "teams":
        assert body["@type"] == "MessageCard"
    timeline = run_cli("incident", "show", "1", "--json", settings=settings).json()["timeline"]
    assert any(e["kind"] == "message" and "attempt 2" in e["text"] for e in timeline)


def test_a_message_that_cannot_be_delivered_says_so_and_is_recorded(run_cli, tmp_path, hook):
    settings = _with_webhook(tmp_path, f"http://127.0.0.1:{hook.server_port}/hook", "json")
    run_cli("incident", "open", "--severity", "P1", "--title", "cache down", settings=settings)
    _Hook.answers = [500, 500, 500]
    res = run_cli("incident", "message", "1", "--kind", "update", "--send", settings=settings)
    assert res.returncode == 1 and "not sent: not delivered to" in res.stderr and "HTTP 500 after 3" in res.stderr
    none = run_cli("incident", "open", "--severity", "P3", "--title", "minor", settings=settings)
    assert none.returncode == 0
    unhooked = run_cli("incident", "message", "2", "--kind", "ticket", "--send", settings=settings)
    assert unhooked.returncode == 2 and "No webhook is configured for P3" in unhooked.stderr


def test_load_templates_refuses_a_missing_kind(tmp_path):
    (tmp_path / "messages.yml").write_text("announce:\n  text: hi\n")
    with pytest.raises(ConfigError, match="the 'update' message needs a text template"):
        messages.load_templates(tmp_path)
