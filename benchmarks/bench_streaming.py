"""Streaming resampling of a memory-mapped .npy: wall time and peak memory.

Resamples an n x 32 float32 ``.npy`` with 10 % minority to balanced, through
the Python streaming API (``resample_to_file``, 1 and 2 joblib workers) and
through the command line (``python -m smote_ann resample``), each in its own
subprocess, and reports:

- wall time of the resampling (the API child times the call, split into
  planning, i.e. validation and the exact FAISS neighbour search, and
  writing, i.e. generation and output; the CLI time is the whole process,
  interpreter start and imports included);
- peak RSS over the import baseline: for the API child, ``VmHWM`` at the end
  minus ``VmRSS`` after the imports (both from /proc/self/status); for the
  CLI process, its last ``VmHWM`` read from /proc/PID/status (polled every
  20 ms until it exits) minus the ``VmRSS`` of a child that only imports what
  the command imports (``ru_maxrss`` cannot be used: it keeps the high-water
  mark of the forking parent across ``exec``);
- that ratio over the size of the output ``.npy`` (the issue's target: <= 30 %).

Every run writes its output; the script checks that all runs wrote the same
bytes.

Run (Linux; about 2 GB of free disk for the default size)::

    nice -n 10 python benchmarks/bench_streaming.py            # 2M rows
    python benchmarks/bench_streaming.py --n-rows 200000       # quick check
"""

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

API_CHILD = r"""
import json, sys, time
import numpy as np
import smote_ann
from smote_ann import SMOTE
from smote_ann.streaming import _resample_to_file

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

X_path, y_path, out, n_jobs, chunk_size = sys.argv[1:6]
baseline = status("VmRSS")
X = np.load(X_path, mmap_mode="r")
y = np.load(y_path)
planned = []

def progress(n_rows):  # called once the neighbours are found and the plan is made
    planned.append(time.perf_counter())
    return None

start = time.perf_counter()
_resample_to_file(  # resample_to_file, with a hook to time the planning
    SMOTE(random_state=0, n_jobs=int(n_jobs), chunk_size=int(chunk_size)),
    X, y, out, overwrite=True, progress=progress,
)
end = time.perf_counter()
print(json.dumps({
    "wall_s": end - start, "plan_s": planned[0] - start, "write_s": end - planned[0],
    "baseline_rss": baseline, "peak_rss": status("VmHWM"),
}))
"""


def make_input(folder, n_rows, n_features, minority, seed=0):
    """X.npy (float32, written in chunks) and y.npy (int64), minority rows spread at random."""
    rng = np.random.default_rng(seed)
    n_minority = int(round(n_rows * minority))
    y = np.zeros(n_rows, dtype=np.int64)
    y[rng.choice(n_rows, size=n_minority, replace=False)] = 1
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    step = 1 << 18
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        block = rng.standard_normal((stop - start, n_features), dtype=np.float32)
        block += y[start:stop, None].astype(np.float32) * 1.5
        X[start:stop] = block
    X.flush()
    del X
    np.save(folder / "y.npy", y)
    return folder / "X.npy", folder / "y.npy"


def make_parquet(folder, X_path, y_path, row_group=1 << 18):
    """The same data as data.parquet: columns f0..f31 (float32) and label, in row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, y = np.load(X_path, mmap_mode="r"), np.load(y_path)
    names = [f"f{j}" for j in range(X.shape[1])]
    schema = pa.schema([(n, pa.float32()) for n in names] + [("label", pa.int64())])
    with pq.ParquetWriter(folder / "data.parquet", schema) as writer:
        for start in range(0, X.shape[0], row_group):
            block = np.asarray(X[start:start + row_group])
            columns = [pa.array(block[:, j]) for j in range(X.shape[1])]
            writer.write_table(pa.table(columns + [pa.array(y[start:start + row_group])], schema=schema))
    return folder / "data.parquet"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def code_digest():
    """A digest of smote_ann's source files: rows saved by other code are not kept."""
    import smote_ann

    h = hashlib.sha256()
    for path in sorted(Path(smote_ann.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def run_api(X_path, y_path, out, n_jobs, chunk_size):
    cmd = [sys.executable, "-c", API_CHILD, str(X_path), str(y_path), str(out), str(n_jobs), str(chunk_size)]
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    result["extra_rss"] = result["peak_rss"] - result["baseline_rss"]
    return result


CLI_BASELINE = r"""
import smote_ann, smote_ann.__main__, smote_ann._readers, smote_ann.streaming
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) * 1024)
"""


def _hwm_of(cmd):
    """Run `cmd`; return its wall time and its last VmHWM, polled from /proc."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status, hwm = Path(f"/proc/{proc.pid}/status"), 0
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) * 1024)
        except (OSError, ValueError):  # the process is exiting
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {proc.stderr.read().decode()}")
    return wall, hwm


def run_cli(X_path, y_path, out, n_jobs, chunk_size, parquet=None):
    """The command line on X.npy + y.npy, or on `parquet` (labels: its column 'label')."""
    baseline = int(subprocess.run(
        [sys.executable, "-c", CLI_BASELINE], check=True, capture_output=True, text=True
    ).stdout)
    source = [str(X_path), "--labels", str(y_path)] if parquet is None else [
        str(parquet), "--target", "label", "--labels-out", str(out.with_name(out.stem + ".labels.npy"))]
    cmd = [
        sys.executable, "-m", "smote_ann", "resample", *source,
        "--out", str(out), "--random-state", "0", "--n-jobs", str(n_jobs),
        "--chunk-size", str(chunk_size), "--overwrite", "--quiet",
    ]
    wall, peak = _hwm_of(cmd)
    return {"wall_s": wall, "baseline_rss": baseline, "peak_rss": peak, "extra_rss": peak - baseline}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=2_000_000)
    parser.add_argument("--n-features", type=int, default=32)
    parser.add_argument("--minority", type=float, default=0.1)
    parser.add_argument("--chunk-size", type=int, default=16384)
    parser.add_argument("--folder", default=None, help="where to write the data (default: a temporary folder)")
    parser.add_argument(
        "--runs", default="api1,api2,cli1",
        help="runs to make (api1, api2, cli1, cliparquet1: the CLI on the same data as a "
        "Parquet file, spilled to a temporary copy); results of other runs already saved for the same "
        "configuration and smote_ann source are kept, and outputs are compared with their digests",
    )
    args = parser.parse_args(argv)
    wanted = set(args.runs.split(","))
    # runs saved for the same configuration and the same smote_ann code are kept
    config = {"n_rows": args.n_rows, "n_features": args.n_features, "minority": args.minority,
              "chunk_size": args.chunk_size, "smote_ann_code": code_digest()}
    out_json = RESULTS / f"streaming_{args.n_rows}.json"
    kept = []
    if out_json.exists():
        saved = json.loads(out_json.read_text())
        if all(saved.get(k) == v for k, v in config.items()):
            kept = [r for r in saved["runs"] if f"{r['kind']}{r['n_jobs']}" not in wanted]

    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        X_path, y_path = make_input(folder, args.n_rows, args.n_features, args.minority)
        print(f"input written in {time.perf_counter() - t0:.1f} s: {X_path.stat().st_size / 1e6:.0f} MB", file=sys.stderr)
        runs = [
            ("API resample_to_file", "api", 1),
            ("API resample_to_file", "api", 2),
            ("CLI smote-ann resample", "cli", 1),
            ("CLI smote-ann resample, Parquet input", "cliparquet", 1),
        ]
        rows = []
        for label, kind, n_jobs in runs:
            if f"{kind}{n_jobs}" not in wanted:
                continue
            out = folder / f"out_{kind}_{n_jobs}.npy"
            if kind == "api":
                result = run_api(X_path, y_path, out, n_jobs, args.chunk_size)
            else:
                parquet = make_parquet(folder, X_path, y_path) if kind == "cliparquet" else None
                result = run_cli(X_path, y_path, out, n_jobs, args.chunk_size, parquet)
            out_bytes = out.stat().st_size
            result.update(
                label=label, kind=kind, n_jobs=n_jobs, output_bytes=out_bytes,
                sha256=[sha256(out), sha256(out.with_name(out.stem + ".labels.npy"))],
                output_rows=int(np.load(out, mmap_mode="r").shape[0]),
                ratio=result["extra_rss"] / out_bytes,
            )
            rows.append(result)
            print(f"{label} n_jobs={n_jobs}: {result['wall_s']:.1f} s, +{result['extra_rss'] / 1e6:.0f} MB", file=sys.stderr)
            out.unlink()
            out.with_name(out.stem + ".labels.npy").unlink()

    order = {"api1": 0, "api2": 1, "cli1": 2, "cliparquet1": 3}
    rows = sorted(kept + rows, key=lambda r: order[f"{r['kind']}{r['n_jobs']}"])
    identical = len({tuple(r["sha256"]) for r in rows}) == 1
    print(f"\n{args.n_rows} x {args.n_features} float32, {args.minority:.0%} minority -> balanced "
          f"({rows[0]['output_rows']} rows, {rows[0]['output_bytes'] / 1e6:.0f} MB .npy); "
          f"chunk_size={args.chunk_size}; all outputs identical: {identical}\n")
    print("| run | n_jobs | wall (s) | plan / write (s) | peak RSS over baseline (MB) | / output size | baseline RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        split = f"{r['plan_s']:.1f} / {r['write_s']:.1f}" if "plan_s" in r else "-"
        print(f"| {r['label']} | {r['n_jobs']} | {r['wall_s']:.1f} | {split} | {r['extra_rss'] / 1e6:.0f} | "
              f"{r['ratio']:.1%} | {r['baseline_rss'] / 1e6:.0f} |")
    RESULTS.mkdir(exist_ok=True)
    out_json.write_text(json.dumps({
        **config, "identical_outputs": identical,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "runs": rows,
    }, indent=2) + "\n")
    print(f"\nsaved {out_json.relative_to(RESULTS.parent.parent)}")
    if not identical:
        sys.exit("outputs differ between runs")


if __name__ == "__main__":
    main()
