"""HTTP GET with retries, exponential backoff and resumption; knows nothing about caches or data sources.

Only the standard library is used. Failures that another attempt may fix (connection errors, HTTP 408/425/429
and 5xx, truncated bodies) are retried; the others, and the last retried one, end as :class:`TransferError`.
"""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

__all__ = ["RetryPolicy", "TransferError", "fetch_page", "fetch_to_file"]

_CHUNK_BYTES = 1 << 20
# HTTP statuses worth retrying: the server may recover (rate limits, restarts, gateways).
_TRANSIENT_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_NOT_FOUND_HTTP_STATUS = frozenset({404, 410})
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient download failures are retried (delays grow geometrically)."""

    attempts: int = 3
    initial_delay_s: float = 2.0
    factor: float = 3.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (0-based; no wait before the first)."""
        return 0.0 if attempt == 0 else self.initial_delay_s * self.factor ** (attempt - 1)


class TransferError(Exception):
    """A transfer failed for good; ``reason`` says why, ``not_found`` is set for HTTP 404/410 and folder URLs."""

    def __init__(self, reason: str, not_found: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_found = not_found


class _TransientError(Exception):
    """A failure that another attempt may fix; ``reason`` is shown to the user if all attempts fail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _RangeNotSatisfiableError(Exception):
    """The server refused to resume (HTTP 416): the partial file does not fit the remote file."""


def _is_folder_redirect(requested: str, final: str) -> bool:
    """Static servers answer a folder's URL with a redirect to ``<folder>/`` and an HTML index: not a file."""
    return urllib.parse.urlparse(final).path.endswith("/") and not urllib.parse.urlparse(requested).path.endswith("/")


def _open(url: str, offset: int, timeout_s: float) -> http.client.HTTPResponse:
    from openretina import __version__

    headers = {"User-Agent": f"openretina/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s
        )
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            raise _RangeNotSatisfiableError() from None
        reason = f"HTTP {error.code} {error.reason}"
        if error.code in _TRANSIENT_HTTP_STATUS:
            raise _TransientError(reason) from None
        raise TransferError(reason, not_found=error.code in _NOT_FOUND_HTTP_STATUS) from None
    except (urllib.error.URLError, OSError) as error:
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(cause, socket.gaierror):  # host name unknown: offline or a typo, waiting will not help
            raise TransferError(f"cannot resolve the host name ({cause})") from None
        raise _TransientError(f"connection failed ({cause})") from None
    if _is_folder_redirect(url, response.geturl()):
        response.close()
        raise TransferError("the URL names a folder, not a file", not_found=True)
    return response


def _fetch_once(url: str, partial: Path, timeout_s: float, progress: bool, label: str) -> None:
    """One attempt: continue ``partial`` (Range request) or restart it; raise if the body is incomplete."""
    offset = partial.stat().st_size if partial.exists() else 0
    try:
        response = _open(url, offset, timeout_s)
    except _RangeNotSatisfiableError:  # stale partial file (e.g. the remote file changed): start over
        partial.unlink()
        offset = 0
        response = _open(url, offset, timeout_s)
    with response:
        resumed = offset > 0 and response.status == 206
        if not resumed:
            offset = 0
        length_header = response.headers.get("Content-Length")
        expected_total = offset + int(length_header) if length_header is not None else None
        received = offset
        with (
            partial.open("ab" if resumed else "wb") as sink,
            tqdm(
                total=expected_total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            try:
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    sink.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise _TransientError(f"connection lost after {received} bytes ({error})") from None
    if expected_total is not None and received != expected_total:
        raise _TransientError(f"the server sent {received} of {expected_total} bytes")


def _retrying(action: Callable[[], _T], policy: RetryPolicy) -> _T:
    """Run ``action``, retrying transient failures; the last one is raised as a :class:`TransferError`."""
    reason = "no attempt made"
    for attempt in range(max(1, policy.attempts)):
        time.sleep(policy.delay_before(attempt))
        try:
            return action()
        except _TransientError as error:
            reason = error.reason
    raise TransferError(f"{reason}; gave up after {policy.attempts} attempts")


def fetch_to_file(url: str, partial: Path, *, retry: RetryPolicy, timeout_s: float, progress: bool, label: str) -> None:
    """Complete ``partial`` with the body of ``url``: resumed with a Range request where it already has bytes.

    The body is checked against the announced ``Content-Length``. On failure the partial file is left as it
    is (the caller decides whether to keep it).

    Raises:
        TransferError: after a permanent failure or ``retry.attempts`` transient ones.
    """
    _retrying(lambda: _fetch_once(url, partial, timeout_s, progress, label), retry)


def _read_page(url: str, timeout_s: float) -> tuple[bytes, str | None]:
    with _open(url, 0, timeout_s) as response:
        try:
            return response.read(), response.headers.get("Link")
        except (OSError, http.client.HTTPException) as error:
            raise _TransientError(f"connection lost while reading ({error})") from None


def fetch_page(url: str, *, retry: RetryPolicy, timeout_s: float = 60.0) -> tuple[bytes, str | None]:
    """Body and ``Link`` header (how paginated APIs point at the next page) of a small document.

    Raises:
        TransferError: after a permanent failure or ``retry.attempts`` transient ones.
    """
    return _retrying(lambda: _read_page(url, timeout_s), retry)
