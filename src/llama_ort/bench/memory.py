"""Peak memory of processes: resident and anonymous memory sampled from /proc, and device memory from nvidia-smi.

A build is measured from outside (it is another program: llama-ort optimize, onnxruntime-genai's builder), by
sampling its process tree. A benchmark worker measures itself: the kernel keeps its peak resident size, which
/proc/self/clear_refs resets between cells.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

SAMPLE_INTERVAL_S = 0.05


def status_kb(pid: int | str, fields: tuple[str, ...]) -> dict[str, int]:
    """The `fields` of /proc/<pid>/status in kB (0 where absent, or when the process is gone)."""
    found = dict.fromkeys(fields, 0)
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in found:
                found[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return tree


class TreeSampler:
    """Samples the summed VmRSS and RssAnon of a process tree in a thread until stopped; keeps the peaks.

    RssAnon is the memory a process made itself (heap, arrays), as opposed to files it maps: a builder that
    memory-maps a 13 GB checkpoint has a large RSS but need not hold it.
    """

    def __init__(self, pid: int, interval_s: float = SAMPLE_INTERVAL_S):
        self.pid = pid
        self.interval_s = interval_s
        self.peak_rss_kb = 0
        self.peak_anon_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            rss = anon = 0
            for pid in process_tree(self.pid):
                status = status_kb(pid, ("VmRSS", "RssAnon"))
                rss += status["VmRSS"]
                anon += status["RssAnon"]
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_anon_kb = max(self.peak_anon_kb, anon)
            if self._stop.wait(self.interval_s):
                return


def reset_own_peak_rss() -> None:
    """Start this process's VmHWM again from its current RSS (Linux: writing 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then the peak is the process's peak so far, which is still an upper bound


def own_peak_rss_mb() -> float:
    return status_kb("self", ("VmHWM",))["VmHWM"] / 1024


class CudaMemorySampler:
    """This process's GPU memory as nvidia-smi sees it (what every library allocated, arenas included),
    sampled in a thread; `peak_mb` stays None where nvidia-smi is missing or never lists this process (in a
    container that hides process ids, say)."""

    def __init__(self, pid: int, interval_s: float = 0.1):
        self.pid = pid
        self.interval_s = interval_s
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CudaMemorySampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
        while True:
            try:
                lines = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.splitlines()
            except (OSError, subprocess.TimeoutExpired):
                lines = []
            for line in lines:
                pid, _, used = line.partition(",")
                if pid.strip() == str(self.pid) and used.strip().isdigit():
                    self.peak_mb = max(self.peak_mb or 0.0, float(used))
            if self._stop.wait(self.interval_s):
                return
