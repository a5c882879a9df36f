"""Requests and decisions signed with an operator's SSH key, for teams that share one account.

When operators log in as one account, the kernel can only say "ops" asked; it cannot tell
alice from bob, and the two-person rule would be empty. So a swap request and a decision
may carry an SSH signature made by the operator's ssh-agent (`oneiric swap ... --sign`,
`oneiric approve 7 --sign`), over a text that names exactly what is asked or decided and
the store it belongs to (a random id kept in the store), so a signature cannot be replayed
for another proposal, another action or another state directory. A request also names the
moment it was signed, and the host takes it only within `REQUEST_FRESH_S` of that and only
once. The host rebuilds the text from the request (or its own sealed record of the
proposal) and checks the signature against app.yml's `access.allowed_signers` (the file
`ssh-keygen -Y verify` and git use); the key's principal becomes the requester or approver.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from .access import Forbidden
from .principal import Principal
from .store import ProposalRecord, StateStore

NAMESPACE = "oneiric-decision"
REQUEST_NAMESPACE = "oneiric-request"
STORE_ID_META = "store_id"
REQUEST_FRESH_S = 300.0  # a signed request older (or newer) than this is refused


def store_id(store: StateStore) -> str:
    """This store's random identity (created by its first writer), part of every signed text."""
    value = store.get_meta(STORE_ID_META)
    if isinstance(value, str) and value:
        return value
    value = secrets.token_hex(16)
    store.set_meta(STORE_ID_META, value)
    return value


def decision_text(action: str, record: ProposalRecord, store_identity: str) -> bytes:
    """The exact bytes a decision's signature covers: one `name: value` line each."""
    lines = [
        "oneiric-decision-v1",
        f"action: {action}",
        f"store: {store_identity}",
        f"proposal: {record.id}",
        f"component: {record.domain}/{record.key}",
        f"from: {record.from_provider or '-'}",
        f"to: {record.to_provider}",
        f"to_source: {record.to_source or '-'}",
        f"force: {'yes' if record.force else 'no'}",
        f"requested_by: {record.requested_by_id or record.requested_by}",
        f"created_at: {record.created_at!r}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def request_text(args: dict, store_identity: str) -> bytes:
    """The exact bytes a swap request's signature covers."""
    lines = [
        "oneiric-request-v1",
        "action: swap",
        f"store: {store_identity}",
        f"component: {args.get('domain') or '-'}/{args.get('key')}",
        f"to: {args.get('provider') or '-'}",
        f"force: {'yes' if args.get('force') else 'no'}",
        f"reason: {args.get('reason') or ''}",
        f"signed_at: {args.get('signed_at')!r}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def sign_request(args: dict, store: StateStore, *, key: str | None = None) -> tuple[str, float]:
    """Sign a swap request with the caller's ssh-agent: (armored signature, signed_at)."""
    import time

    from .sshsig import agent_sign

    signed_at = round(time.time(), 3)
    text = request_text({**args, "signed_at": signed_at}, store_id(store))
    return agent_sign(text, REQUEST_NAMESPACE, key=key), signed_at


def verify_request(args: dict, store: StateStore, allowed_signers: Path, *, os_principal: Principal,
                   seen: set[str]) -> Principal:
    """The principal whose key signed this swap request, or Forbidden in one sentence."""
    import time

    from . import sshsig

    signature, signed_at = args.get("signature"), args.get("signed_at")
    if not isinstance(signature, str) or not isinstance(signed_at, (int, float)):
        raise Forbidden("The signed request lacks its signature or the time it was signed.")
    if abs(time.time() - signed_at) > REQUEST_FRESH_S:
        raise Forbidden(f"The signed request was signed {abs(time.time() - signed_at):.0f}s away from now; "
                        f"a signed request counts for {REQUEST_FRESH_S:g}s, so sign it again.")
    if signature in seen:
        raise Forbidden("This signed request was already taken once; a signature counts for one request.")
    try:
        signers = sshsig.parse_allowed_signers(allowed_signers)
        verified = sshsig.verify(signature, request_text(args, store_id(store)), REQUEST_NAMESPACE, signers)
    except sshsig.SshSigError as exc:
        raise Forbidden(f"The signature on this swap request does not hold: {exc}") from exc
    seen.add(signature)
    return Principal.from_ssh_key(verified.principals[0], verified.fingerprint, os_principal=os_principal)


def sign_decision(action: str, record: ProposalRecord, store: StateStore, *, key: str | None = None) -> str:
    """Sign a decision with the caller's ssh-agent; the armored signature to send."""
    from .sshsig import agent_sign

    return agent_sign(decision_text(action, record, store_id(store)), NAMESPACE, key=key)


def verify_decision(action: str, record: ProposalRecord, signature: str, store: StateStore,
                    allowed_signers: Path, *, os_principal: Principal) -> Principal:
    """The principal whose key signed this decision, or Forbidden in one sentence."""
    from . import sshsig

    try:
        signers = sshsig.parse_allowed_signers(allowed_signers)
        verified = sshsig.verify(signature, decision_text(action, record, store_id(store)), NAMESPACE, signers)
    except sshsig.SshSigError as exc:
        raise Forbidden(f"The signature on this {action} of proposal #{record.id} does not hold: {exc}") from exc
    return Principal.from_ssh_key(verified.principals[0], verified.fingerprint, os_principal=os_principal)


__all__ = ["NAMESPACE", "REQUEST_NAMESPACE", "decision_text", "request_text", "sign_decision", "sign_request",
           "store_id", "verify_decision", "verify_request"]
