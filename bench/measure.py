"""Timing and memory helpers for the benchmark: percentiles, child processes' peak RSS, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np


def ms(seconds: list[float], q: float) -> float:
    """The q-th percentile of `seconds`, in milliseconds."""
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


def timed(fn, items) -> list[float]:
    """Call `fn(item)` for each item; the wall time of each call in seconds."""
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - started)
    return out


def peak_rss_mb() -> float:
    """This process' peak resident set size so far, in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: its output, wall time to the first output line, total wall time, peak RSS."""

    stdout: str
    stderr: str
    first_line_s: float
    total_s: float
    peak_rss_mb: float
    returncode: int


def run_child(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> ChildRun:
    """Run `cmd` as a fresh process; time its first line of output and read its peak RSS from wait4.

    Raises:
        RuntimeError: the process exited with a non-zero status.
    """
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, env=env, cwd=cwd)
        first = proc.stdout.readline()
        first_at = time.perf_counter() - started
        rest = proc.stdout.read()
        # wait4 rather than wait: it also returns the child's resource usage (peak RSS).
        _, status, usage = os.wait4(proc.pid, 0)
        total = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited with {proc.returncode}: {err.strip()[-500:]}")
    return ChildRun(first + rest, err, first_at, total, usage.ru_maxrss / 1024.0, proc.returncode)


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            mem_kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    versions = {}
    for name in ("torch", "sentence_transformers", "onnxruntime", "tokenizers", "faiss", "bm25s", "numpy"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            versions[name] = None
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "openblas": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "load_average_at_start": load,
    }
