"""adapter/http `httpx`: an outbound HTTP client built on httpx.AsyncClient.

It exists so components share one pooled client (one base URL, one timeout) and so the
engine can tell whether the thing behind it is up: health GETs `health_url` and reads the
status (2xx/3xx ok, 4xx degraded, 5xx or no answer failed). Redirects are not followed by
the health probe, so a 3xx counts as an answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from ..domains import HealthResult
from . import _common


class HttpxClient:
    def __init__(self, base_url: str | None, health_url: str | None, timeout_s: float,
                 headers: dict[str, str], verify: bool, follow_redirects: bool) -> None:
        self.base_url = base_url
        self.health_url = health_url
        self.timeout_s = timeout_s
        self.headers = headers
        self.verify = verify
        self.follow_redirects = follow_redirects
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("The HTTP client is not started.")
        return self._client

    async def start(self) -> None:
        if self._client is None:
            # On a worker thread: the client loads the CA bundle into an SSL context (30-80 ms
            # of the host's event loop otherwise). Nothing in it is bound to a loop yet.
            self._client = await asyncio.to_thread(
                httpx.AsyncClient,
                base_url=self.base_url or "",
                timeout=self.timeout_s,
                headers=self.headers,
                verify=self.verify,
                follow_redirects=self.follow_redirects,
            )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request; `url` may be relative to `base_url`. Keyword arguments go to httpx."""
        return await self.client.request(method, url, **kwargs)

    async def health(self) -> HealthResult:
        if self._client is None or self._client.is_closed:
            return HealthResult.failed("The HTTP client is not started.")
        if self.health_url is None:
            return HealthResult.ok("no health URL configured")
        started = time.perf_counter()
        url = self.health_url
        try:
            response = await self._client.get(url, follow_redirects=False)
        except httpx.TimeoutException:
            return HealthResult.failed(f"GET {url} got no answer within {self.timeout_s:g} s.",
                                       _common.elapsed_ms(started))
        except (httpx.HTTPError, httpx.InvalidURL, RuntimeError) as exc:  # transport, URL, or closed under us
            return HealthResult.failed(f"GET {url} failed: {_common.describe(exc)}.", _common.elapsed_ms(started))
        latency = _common.elapsed_ms(started)
        status = f"GET {response.url} returned {response.status_code} {response.reason_phrase}".rstrip()
        if response.status_code < 400:
            return HealthResult.ok(status, latency)
        if response.status_code < 500:
            return HealthResult.degraded(status + ".", latency)
        return HealthResult.failed(status + ".", latency)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def create(settings: dict[str, Any]) -> HttpxClient:
    base_url = _url(settings, "base_url")
    health_url = settings.get("health_url")
    if health_url is not None:
        if not isinstance(health_url, str) or not health_url.strip():
            raise ValueError(f"Setting 'health_url' must be a URL string, got {health_url!r}.")
        if not _is_absolute(health_url) and base_url is None:
            raise ValueError(f"Setting 'health_url' ({health_url!r}) is relative, so 'base_url' must be set too.")
    headers = settings.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ValueError("Setting 'headers' must be a mapping of header names to string values.")
    return HttpxClient(
        base_url=base_url,
        health_url=health_url,
        timeout_s=_common.number(settings, "timeout_s", 5.0, positive=True),
        headers=dict(headers),
        verify=_common.flag(settings, "verify", True),
        follow_redirects=_common.flag(settings, "follow_redirects", False),
    )


def _url(settings: dict[str, Any], name: str) -> str | None:
    value = settings.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _is_absolute(value):
        raise ValueError(f"Setting '{name}' must be an absolute http(s) URL, got {value!r}.")
    return value


def _is_absolute(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)
