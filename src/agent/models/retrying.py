"""HTTP transports that retry a request the server turned away (429, 5xx) or never took.

For provider clients without retries of their own (Ollama's). A retry happens only before a
response body is read, so a reply that already streamed tokens is never sent twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
FIRST_DELAY = 0.5  # seconds; doubled per retry
LONGEST_DELAY = 8.0  # seconds; a longer Retry-After is capped, not obeyed


def retry_delay(attempt: int, response: httpx.Response | None) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's Retry-After, else backoff."""
    headers = response.headers if response is not None else {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return min(float(headers[name]) * scale, LONGEST_DELAY)
        except (KeyError, ValueError):
            continue
    return float(min(FIRST_DELAY * 2**attempt, LONGEST_DELAY))


def should_retry(response: httpx.Response) -> bool:
    """Tell whether a status means "try again later" rather than "this request is wrong"."""
    return response.status_code in RETRY_STATUSES


class RetryingTransport(httpx.HTTPTransport):
    """`httpx.HTTPTransport` that retries refused connections and transient statuses."""

    def __init__(self, retries: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retries = retries

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`, retrying with backoff while the server turns it away."""
        for attempt in range(self.retries):
            try:
                response = super().handle_request(request)
            except httpx.ConnectError:
                time.sleep(retry_delay(attempt, None))
                continue
            if not should_retry(response):
                return response
            response.close()
            time.sleep(retry_delay(attempt, response))
        return super().handle_request(request)


class AsyncRetryingTransport(httpx.AsyncHTTPTransport):
    """The async twin of `RetryingTransport`."""

    def __init__(self, retries: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retries = retries

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`, retrying with backoff while the server turns it away."""
        for attempt in range(self.retries):
            try:
                response = await super().handle_async_request(request)
            except httpx.ConnectError:
                await asyncio.sleep(retry_delay(attempt, None))
                continue
            if not should_retry(response):
                return response
            await response.aclose()
            await asyncio.sleep(retry_delay(attempt, response))
        return await super().handle_async_request(request)
