"""Which IVF-Flat search pays: FAISS's own, or the list-by-list BLAS join.

::

    python benchmarks/bench_ivf_paths.py           # ~3 min on 2 cores
    python benchmarks/bench_ivf_paths.py --quick   # one small set, < 1 min

`FaissNN` searches an IVF-Flat index of many queries either with FAISS's
``index.search`` (each query scans its ``nprobe`` lists, one vector at a
time) or with ``smote_ann.neighbors._graph.ivf_flat_search`` (each list
against all the queries that probe it, one float32 GEMM, then a top-k
selection in numpy). The join does more work per call (a few numpy calls for
every list) and less per scanned vector, so it pays only for enough queries.

This script times both paths on the same index, for several data sets,
``nprobe`` values and numbers of queries (fitted rows, as a neighbour graph or
a tuning sample queries them), each path in its own process; fits the cost
model `FaissNN` uses to choose (least squares on the measured seconds)::

    FAISS: Q * (a + b * S * d)
    join:  nlist * c + Q * (e + f * S * d)

with ``Q`` = queries x nprobe, ``S`` the size-weighted mean list size (the
size of the list a query falls in, on average: duplicated rows make a few
lists far longer) and ``d`` the features; and reports, for each point, which path was faster and which one
the model in ``smote_ann.neighbors._faiss`` picks.

Results: ``results/ivf_paths.json`` and ``results/ivf_paths.md``.
"""

# License: BSD-3-Clause

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    clustered_data,
    environment,
    fmt,
    load_arrays,
    markdown_table,
    run_isolated,
    save_arrays,
)

HERE = Path(__file__).resolve().parent
K = 6  # SMOTE's 5 neighbours and the row itself


def _data(name):
    from sklearn.datasets import make_classification

    if name == "susy_minority":  # the minority class of bench_scale.py's SUSY-sized job
        X, y = clustered_data(2_881_796, 18, minority=169_623 / 2_881_796)
        return X[y == 1]
    if name == "clustered_300k":
        return clustered_data(300_000, 32)[0]
    if name == "make_classification_100k":
        return make_classification(100_000, random_state=0)[0].astype(np.float32)
    if name == "duplicated_300k":  # 20k distinct rows, copied 1 to 29 times (~15 on average)
        X = clustered_data(20_000, 10)[0]
        return np.repeat(X, np.random.default_rng(0).integers(1, 30, size=len(X)), axis=0)
    if name == "make_classification_20k":
        return make_classification(20_000, random_state=0)[0].astype(np.float32)
    raise ValueError(name)


SETS = {
    "susy_minority": [3, 5, 20],
    "clustered_300k": [3, 10],
    "make_classification_100k": [10, 50],
    "duplicated_300k": [1, 3],
}
QUICK_SETS = {"make_classification_20k": [5, 20]}


def worker(probe, data, path, nprobes, query_counts):
    """Time one path on every (nprobe, queries) point of one data set."""
    import faiss

    from smote_ann.neighbors import _faiss, _graph

    (X,) = load_arrays(data, "X")
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    nlist = _faiss.default_nlist(n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    index.cp.min_points_per_centroid = 1
    index.cp.seed = 0
    rng = np.random.default_rng(0)
    index.train(X[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))])
    index.add(X)
    home = None
    out = []
    for nprobe in nprobes:
        index.nprobe = nprobe
        lists = _faiss.flat_lists(index)
        sizes = np.array([len(ids) for ids in lists.ids], dtype=np.float64)
        probed_size = float(sizes @ sizes / sizes.sum())  # a query's list, on average
        if home is None:
            home = np.empty(n, dtype=np.int64)
            for lst, ids in enumerate(lists.ids):
                home[ids] = lst
        for n_queries in query_counts:
            n_queries = min(n_queries, n)
            rows = np.sort(np.random.default_rng(1).choice(n, n_queries, replace=False))
            queries = X[rows]
            best = np.inf
            for _ in range(2 if n_queries < n else 1):
                t0 = time.perf_counter()
                if path == "faiss":
                    index.search(queries, K)
                else:
                    _graph.ivf_flat_search(lists, queries, K, home=home[rows])
                best = min(best, time.perf_counter() - t0)
            out.append({"nprobe": nprobe, "n_queries": n_queries, "seconds": best,
                        "nlist": nlist, "probed_list_size": probed_size, "n_features": d})
    return {"points": out}


def fit_model(records):
    """Least-squares coefficients of the two cost models (see the docstring)."""
    faiss_rows, faiss_t, join_rows, join_t = [], [], [], []
    for r in records:
        pairs = r["n_queries"] * r["nprobe"]
        work = pairs * r["probed_list_size"] * r["n_features"]
        faiss_rows.append([pairs, work])
        faiss_t.append(r["faiss_s"])
        join_rows.append([r["nlist"], pairs, work])
        join_t.append(r["join_s"])
    # relative errors: every point counts, not only the slowest
    def solve(rows, t):
        A, t = np.array(rows, float), np.array(t, float)
        coef = np.linalg.lstsq(A / t[:, None], np.ones(len(t)), rcond=None)[0]
        return np.maximum(coef, 0.0)
    return {"faiss": solve(faiss_rows, faiss_t).tolist(),
            "join": solve(join_rows, join_t).tolist()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sets = QUICK_SETS if args.quick else SETS
    query_counts = [1000, 10_000, 30_000, 10**9]  # 10**9: every fitted row
    from smote_ann.neighbors import _faiss

    records = []
    with tempfile.TemporaryDirectory(prefix="smote_ann_paths_") as tmp:
        for name, nprobes in sets.items():
            data = f"{tmp}/{name}"
            save_arrays(data, X=_data(name))
            res = {path: run_isolated(__file__, "worker", dict(
                data=data, path=path, nprobes=nprobes, query_counts=query_counts))
                for path in ("faiss", "join")}
            for path, r in res.items():
                if "error" in r:
                    sys.exit(f"{name} {path}: {r['error']}")
            for f, j in zip(res["faiss"]["points"], res["join"]["points"]):
                record = {"set": name, **f, "faiss_s": f["seconds"], "join_s": j["seconds"]}
                del record["seconds"]
                n_pairs = record["n_queries"] * record["nprobe"]
                record["model_picks"] = "join" if _faiss.join_pays(
                    record["nlist"], n_pairs, n_pairs * record["probed_list_size"]
                    * record["n_features"]) else "faiss"
                record["faster"] = "join" if record["join_s"] < record["faiss_s"] else "faiss"
                records.append(record)
                print(f"{name} nprobe={record['nprobe']} queries={record['n_queries']}: "
                      f"faiss {record['faiss_s']:.3f} s, join {record['join_s']:.3f} s, "
                      f"model picks {record['model_picks']}", file=sys.stderr, flush=True)
    model = fit_model(records)
    for r in records:
        chosen = r["join_s"] if r["model_picks"] == "join" else r["faiss_s"]
        r["chosen_over_best"] = chosen / min(r["join_s"], r["faiss_s"])
    table = markdown_table(records, [
        ("data", lambda r: r["set"]),
        ("lists", lambda r: str(r["nlist"])),
        ("nprobe", lambda r: str(r["nprobe"])),
        ("queries", lambda r: f"{r['n_queries']:,}"),
        ("FAISS s", lambda r: fmt(r["faiss_s"], ".3f")),
        ("join s", lambda r: fmt(r["join_s"], ".3f")),
        ("faster", lambda r: r["faster"]),
        ("model picks", lambda r: r["model_picks"]),
        ("picked / fastest", lambda r: fmt(r["chosen_over_best"], ".2f")),
    ])
    worst = max(r["chosen_over_best"] for r in records)
    md = "\n".join([
        "# IVF-Flat searches of fitted rows: FAISS's search against the BLAS join",
        "",
        f"Command: `python benchmarks/bench_ivf_paths.py{' --quick' if args.quick else ''}`. "
        "Each path in its own process, same index; k = 6.",
        "",
        table,
        "",
        f"The path the model picks is at worst {worst:.2f}x the faster one.",
        "",
        "Cost model fitted to these points (seconds; Q = queries x nprobe, S = size-weighted "
        "mean list size, d = features):",
        "",
        "- FAISS: Q x ({:.3g} + {:.3g} x S x d)".format(*model["faiss"]),
        "- join: nlist x {:.3g} + Q x ({:.3g} + {:.3g} x S x d)".format(*model["join"]),
        "",
        "The coefficients in use (`smote_ann.neighbors._faiss`): FAISS {}, join {}.".format(
            list(_faiss.FAISS_COST), list(_faiss.JOIN_COST)),
    ])
    print(md)
    stem = "ivf_paths_quick" if args.quick else "ivf_paths"
    (args.out / f"{stem}.json").write_text(json.dumps(
        {"environment": environment(), "model": model, "records": records}, indent=1))
    (args.out / f"{stem}.md").write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
