"""Shared helpers for the benchmark scripts.

- `run_isolated`: run one measured configuration in a fresh Python process,
  so that its peak memory is its own (not the high-water mark of whatever ran
  before in the same process), and get its result back as a dict.
- `MemoryProbe`: peak resident memory over a baseline, read from the kernel's
  high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``), with a
  polling fallback where that file cannot be written.
- `clustered_data`: synthetic clustered data with a learnable minority class.
- `load_real`: the real datasets of ``../shared/data`` (None + reason when absent).
- `markdown_table`, `write_records`, `environment`: reporting.

A worker function for `run_isolated` lives in an importable file and has the
signature ``worker(probe, **kwargs) -> dict``: it does its imports, calls
``probe.start()`` where the measured region begins, and reads
``probe.peak_bytes()`` where it ends. Its result must be JSON-serialisable.
"""

# License: BSD-3-Clause

import csv
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("SMOTE_ANN_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
MIB = 2**20
_RESULT_MARK = "@@RESULT@@"


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------
def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def current_rss_bytes():
    """Resident set size of this process now."""
    try:
        return _status_kib("VmRSS") * 1024
    except (OSError, KeyError):
        import psutil

        return psutil.Process().memory_info().rss


class MemoryProbe:
    """Peak RSS of this process over a baseline taken at `start`.

    On Linux the kernel's high-water mark is reset at `start` (writing ``5``
    to ``/proc/self/clear_refs``) and read back at `peak_bytes`: exact, even
    for spikes lasting microseconds. Elsewhere a thread samples the RSS every
    `interval` seconds (may miss very short spikes).
    """

    def __init__(self, interval=0.002):
        self.interval = interval
        self.baseline = None
        self.method = None
        self._poll_peak = 0
        self._stop = None

    def start(self):
        self.baseline = current_rss_bytes()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            _status_kib("VmHWM")
            self.method = "VmHWM"
        except (OSError, KeyError):
            self.method = "polling"
            self._poll_peak = self.baseline
            self._stop = threading.Event()
            threading.Thread(target=self._poll, daemon=True).start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self._poll_peak = max(self._poll_peak, current_rss_bytes())
            time.sleep(self.interval)

    def peak_bytes(self):
        """Peak RSS since `start`, minus the baseline RSS at `start`."""
        if self.method == "VmHWM":
            peak = _status_kib("VmHWM") * 1024
        else:
            self._poll_peak = max(self._poll_peak, current_rss_bytes())
            peak = self._poll_peak
        return max(0, peak - self.baseline)


# --------------------------------------------------------------------------
# One configuration per process
# --------------------------------------------------------------------------
def run_isolated(script, func, kwargs, *, timeout=None, env=None):
    """Run ``func(probe, **kwargs)`` from file `script` in a fresh interpreter.

    Returns the worker's dict plus ``"process_s"`` (wall time of the whole
    child process). On failure or timeout returns ``{"error": message}``
    instead of raising, so that one failed configuration does not lose a run.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), str(script), func, json.dumps(kwargs)]
    child_env = dict(os.environ, MPLBACKEND="Agg", **(env or {}))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=child_env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    elapsed = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_MARK):
            result = json.loads(line[len(_RESULT_MARK):])
            result["process_s"] = elapsed
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def _child_main(script, func, kwargs_json):
    spec = importlib.util.spec_from_file_location("_bench_worker_module", script)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(script).resolve().parent))
    spec.loader.exec_module(module)
    result = getattr(module, func)(MemoryProbe(), **json.loads(kwargs_json))
    sys.stdout.flush()
    print(_RESULT_MARK + json.dumps(result, default=_json_default), flush=True)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def clustered_data(n_samples, n_features=32, *, minority=0.1, seed=0, world_seed=0,
                   n_clusters=50, latent_dim=8, chunk=200_000):
    """Clustered float32 data of low intrinsic dimension, with a learnable minority.

    Rows are drawn from `n_clusters` Gaussian clusters in a `latent_dim`-
    dimensional space, mapped linearly to `n_features` dimensions plus a
    little isotropic noise. The "world" (centres, projection, class rule)
    depends on `world_seed` only, the rows on `seed`, so a test set drawn with
    another `seed` follows the same distribution. About a fraction `minority`
    of the rows, those with the highest noisy linear score in latent space,
    are class 1. Built chunk by chunk: peak memory is the output plus one chunk.
    """
    world = np.random.default_rng(world_seed)
    centres = world.normal(scale=3.0, size=(n_clusters, latent_dim))
    spread = world.uniform(0.3, 1.0, size=n_clusters)
    projection = world.normal(size=(latent_dim, n_features)) / math.sqrt(latent_dim)
    direction = world.normal(size=latent_dim)
    direction /= np.linalg.norm(direction)
    # Threshold of the score at the wanted quantile, from a large world sample.
    labels = world.integers(0, n_clusters, 200_000)
    z = centres[labels] + world.normal(size=(labels.size, latent_dim)) * spread[labels, None]
    threshold = np.quantile(z @ direction + world.normal(scale=1.5, size=z.shape[0]), 1 - minority)

    rng = np.random.default_rng([world_seed, seed])
    X = np.empty((n_samples, n_features), dtype=np.float32)
    y = np.empty(n_samples, dtype=np.int8)
    for start in range(0, n_samples, chunk):
        m = min(chunk, n_samples - start)
        labels = rng.integers(0, n_clusters, m)
        z = centres[labels] + rng.normal(size=(m, latent_dim)) * spread[labels, None]
        X[start:start + m] = z @ projection + rng.normal(scale=0.05, size=(m, n_features))
        score = z @ direction + rng.normal(scale=1.5, size=m)
        y[start:start + m] = score > threshold
    return X, y


def warm_up(sampler, n_features):
    """One tiny ``fit_resample`` on a clone, so that lazy imports and first-call
    set-up (thread-pool discovery, ...) are not charged to the measured call."""
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, n_features)).astype(np.float32)
    y = (np.arange(400) % 10 == 0).astype(np.int8)
    clone(sampler).fit_resample(X, y)


def _shared_loader():
    spec = importlib.util.spec_from_file_location("_shared_load", SHARED_DATA / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load


def shared_data_reason():
    """None if ../shared/data is available, else why it is not."""
    if (SHARED_DATA / "load.py").exists():
        return None
    return f"real datasets not available: {SHARED_DATA} does not exist (set SMOTE_ANN_SHARED_DATA)"


def load_real(name):
    """``(X, y)`` of a dataset of ../shared/data, y == 1 the minority; None if absent."""
    if shared_data_reason() is not None:
        return None
    X, y = _shared_loader()(name)
    return np.asarray(X, dtype=np.float64), np.asarray(y).astype(np.int8)


def save_arrays(path, **arrays):
    """Save arrays as separate .npy files ``<path>.<name>.npy`` (np.load reads them exactly)."""
    for name, a in arrays.items():
        np.save(f"{path}.{name}.npy", a)


def load_arrays(path, *names):
    """Load the arrays `save_arrays` wrote, then drop the files' pages from the
    page cache: the measured process holds the data once, as a user who loaded
    it would, not also the cached copy of the file the benchmark wrote (which
    the kernel must reclaim while the output's fresh pages are handed out:
    with it, the 20M x 50 SMOTE job's copy of the originals took 7.4 s instead
    of 3.4 s, and its generation 15.2 s instead of 9.9 s)."""
    arrays = []
    for name in names:
        file = f"{path}.{name}.npy"
        arrays.append(np.load(file))
        if hasattr(os, "posix_fadvise"):
            with open(file, "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return tuple(arrays)


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------
def fmt(value, spec=".3g"):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, str):
        return value
    return format(value, spec)


def markdown_table(rows, columns):
    """``columns``: list of (header, key or callable(row) -> str)."""
    head = "| " + " | ".join(h for h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for r in rows:
        cells = [c(r) if callable(c) else fmt(r.get(c)) for _, c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_records(path_csv, records):
    """Write a list of flat dicts as CSV (union of keys, in first-seen order)."""
    keys = []
    for r in records:
        keys.extend(k for k in r if k not in keys)
    with open(path_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in records:
            w.writerow({k: r.get(k, "") for k in keys})


def environment():
    """What a reader needs to interpret the timings."""
    import joblib
    import sklearn

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    for mod in ("faiss", "imblearn", "smote_ann"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional packages
            info[mod] = None
    try:
        info["loadavg_1min_at_start"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


if __name__ == "__main__":
    _child_main(*sys.argv[1:4])
