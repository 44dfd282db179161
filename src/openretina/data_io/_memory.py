"""Measure this process's anonymous memory (``RssAnon``), the part that memory-mapped files do not add to.

Pages of a memory-mapped ``.npy`` file count as ``RssFile`` and can be dropped by the kernel at any time, so
``RssAnon`` is the figure that must stay under a memory budget when training on data larger than RAM.
Linux only (reads ``/proc/self/status``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

_STATUS = Path("/proc/self/status")


def rss_anon_bytes() -> int:
    """Current ``RssAnon`` of this process in bytes."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError("RssAnon not found in /proc/self/status (needs Linux).")


class PeakRssAnon:
    """Context manager sampling ``RssAnon`` every ``interval_s`` seconds in a background thread.

    After the block, ``baseline`` is the value on entry and ``peak`` the largest value seen (including on exit);
    ``growth`` = ``peak - baseline``.
    """

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, rss_anon_bytes())

    def __enter__(self) -> PeakRssAnon:
        self.baseline = self.peak = rss_anon_bytes()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_bytes())

    @property
    def growth(self) -> int:
        """Peak minus baseline, in bytes."""
        return self.peak - self.baseline
