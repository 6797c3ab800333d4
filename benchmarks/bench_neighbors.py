"""FaissNN (flat / IVF / HNSW, default parameters) against scikit-learn's brute force.

For each size, on the same data in one run: ``kneighbors(X=None, n_neighbors=5)``
on the training set (each point excluded from its own neighbours), timing the
build (``fit``) and the query separately, and recall@5 against the exact
neighbours. Recall is tie-tolerant: a returned neighbour counts when its true
float64 distance is within the exact 5th-neighbour distance.

Data: Gaussian clusters in an 8-dimensional latent space, embedded
non-linearly in 32 dimensions (clustered, low intrinsic dimension, in the
spirit of FAISS's ``SyntheticDataset``); ``--data synthetic`` uses FAISS's
``SyntheticDataset`` recipe itself (10-dimensional, no clusters: harder for IVF).

Usage::

    nice -n 10 python benchmarks/bench_neighbors.py              # 10k and 100k rows
    nice -n 10 python benchmarks/bench_neighbors.py --with-1m    # also 1M rows

At 1M rows the exact methods take tens of minutes; ``--exact-max-rows`` (default
200k) skips timing them above that size, and recall is then measured on 2,000
sampled queries against scikit-learn's exact neighbours of those queries.
Writes ``benchmarks/results/neighbors.json`` and ``neighbors_table.md``.
"""

# License: BSD-3-Clause

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from smote_ann import FaissNN

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import environment  # noqa: E402

K = 5
N_FEATURES = 32
RECALL_SAMPLE = 2000


def make_clustered(n, d=N_FEATURES, intrinsic=8, n_clusters=32, spread=2.0, seed=0):
    """Gaussian clusters in an `intrinsic`-dim latent space, embedded non-linearly in d dims
    (the generator of tests/test_neighbors.py)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(n_clusters, intrinsic))
    z = centers[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, intrinsic))
    proj = rng.random((intrinsic, d))
    return np.sin(z @ proj * (rng.random(d) * 0.6 + 0.1)).astype(np.float32)


def make_synthetic(n, d=N_FEATURES, seed=1338):
    """faiss.contrib.datasets.SyntheticDataset's recipe: 10-dim, no clusters."""
    rs = np.random.RandomState(seed)
    x = rs.normal(size=(n, 10)) @ rs.rand(10, d)
    return np.sin(x * (rs.rand(d) * 4 + 0.1)).astype(np.float32)


def true_distances(X, rows, ind):
    A = X[rows].astype(np.float64)
    return np.sqrt(((A[:, None, :] - X[ind].astype(np.float64)) ** 2).sum(axis=2))


def recall_at_k(X, rows, ind, exact_kth):
    """Tie-tolerant recall of the neighbours `ind` of the training rows `rows`."""
    d = true_distances(X, rows, ind)
    hit = d <= exact_kth[:, None] * (1 + 1e-5) + 1e-6
    return float((hit & (ind != rows[:, None])).mean())


def timed(make, X):
    t0 = time.perf_counter()
    nn = make().fit(X)
    t1 = time.perf_counter()
    ind = nn.kneighbors(n_neighbors=K, return_distance=False)
    t2 = time.perf_counter()
    return nn, ind, t1 - t0, t2 - t1


def methods(n_jobs):
    return {
        "sklearn brute": lambda: NearestNeighbors(n_neighbors=K, algorithm="brute",
                                                  n_jobs=n_jobs),
        "FaissNN flat": lambda: FaissNN(K, index_type="flat", n_jobs=n_jobs),
        "FaissNN ivf": lambda: FaissNN(K, index_type="ivf", n_jobs=n_jobs, random_state=0),
        "FaissNN hnsw": lambda: FaissNN(K, index_type="hnsw", n_jobs=n_jobs, random_state=0),
    }


EXACT = ("sklearn brute", "FaissNN flat")


def run_size(n, data, exact_max_rows, n_jobs):
    X = make_clustered(n) if data == "clustered" else make_synthetic(n)
    rows = np.arange(n)
    if n > RECALL_SAMPLE:
        rows = np.sort(np.random.default_rng(1).choice(n, RECALL_SAMPLE, replace=False))
    records, exact_kth = [], None
    # threadpoolctl caps scikit-learn's OpenMP and BLAS pools; FaissNN's n_jobs caps FAISS
    limit = None if n_jobs == -1 else n_jobs
    for name, make in methods(n_jobs).items():
        if name in EXACT and n > exact_max_rows:
            continue
        with threadpool_limits(limits=limit):
            nn, ind, build, query = timed(make, X)
        if name == "sklearn brute":
            exact_kth = true_distances(X, rows, ind[rows])[:, -1]
        if exact_kth is None:  # exact methods skipped: exact neighbours of the sample only
            ref = NearestNeighbors(n_neighbors=K + 1, algorithm="brute", n_jobs=-1).fit(X)
            dist = ref.kneighbors(X[rows], return_distance=True)[0]
            exact_kth = dist[:, -1]  # rows are distinct in this data: column 0 is the row
        rec = {
            "n_samples": n, "n_features": N_FEATURES, "data": data, "method": name,
            "n_jobs": n_jobs,
            "index": getattr(nn, "index_description_", "brute"),
            "nprobe": getattr(nn, "nprobe_", None), "ef_search": getattr(nn, "ef_search_", None),
            "build_s": build, "query_s": query, "total_s": build + query,
            "recall@5": recall_at_k(X, rows, ind[rows], exact_kth),
            "recall_queries": len(rows),
        }
        records.append(rec)
        print(f"  {name:14s} n={n:>9,} build {build:7.2f}s query {query:7.2f}s "
              f"recall@5 {rec['recall@5']:.4f}", flush=True)
    by = {r["method"]: r["total_s"] for r in records}
    for r in records:
        r["speedup_vs_sklearn"] = by.get("sklearn brute", np.nan) / r["total_s"]
        r["speedup_vs_flat"] = by.get("FaissNN flat", np.nan) / r["total_s"]
    return records


def markdown(records):
    head = ("| rows | method | index | build (s) | query (s) | total (s) | recall@5 "
            "| vs sklearn | vs flat |")
    lines = [head, "|" + "---|" * 9]
    for r in records:
        speed = [f"{v:.1f}x" if np.isfinite(v) else "n/a"
                 for v in (r["speedup_vs_sklearn"], r["speedup_vs_flat"])]
        lines.append(
            f"| {r['n_samples']:,} | {r['method']} | {r['index']} | {r['build_s']:.2f} "
            f"| {r['query_s']:.2f} | {r['total_s']:.2f} | {r['recall@5']:.4f} "
            f"| {speed[0]} | {speed[1]} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--with-1m", action="store_true", help="also run 1,000,000 rows")
    parser.add_argument("--data", choices=["clustered", "synthetic"], default="clustered")
    parser.add_argument("--exact-max-rows", type=int, default=200_000,
                        help="time sklearn brute / FaissNN flat only up to this size")
    parser.add_argument("--n-jobs", type=int, default=-1,
                        help="threads for every method (FaissNN n_jobs, threadpoolctl limit "
                             "for scikit-learn); -1: all cores")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "neighbors.json")
    args = parser.parse_args(argv)
    sizes = args.sizes + ([1_000_000] if args.with_1m else [])

    env = environment()
    print(f"kneighbors(X=None, n_neighbors={K}) on {args.data} data x {N_FEATURES} features; "
          f"n_jobs={args.n_jobs}; {env['cpu_count']} CPUs, "
          f"load {env.get('loadavg_1min_at_start')}", flush=True)
    records = []
    for n in sizes:
        records.extend(run_size(n, args.data, args.exact_max_rows, args.n_jobs))
    table = markdown(records)
    print()
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_neighbors.py " + " ".join(sys.argv[1:] if argv is None
                                                                 else argv)
    with open(args.out, "w") as f:
        json.dump({"command": command.strip(), "environment": env, "records": records}, f,
                  indent=2, default=float)
    table_path = args.out.with_name(args.out.stem + "_table.md")
    table_path.write_text(f"`{command.strip()}`\n\n{table}\n")
    print(f"\nwrote {args.out} and {table_path}")


if __name__ == "__main__":
    main()
