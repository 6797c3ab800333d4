"""Which algorithm builds the k-nearest-neighbour graph of a set of rows fastest.

::

    python benchmarks/bench_graph_candidates.py                        # both sets below
    python benchmarks/bench_graph_candidates.py --sets susy_minority   # one set
    python benchmarks/bench_graph_candidates.py --candidates faiss_ivf hnsw_default
    python benchmarks/bench_graph_candidates.py --quick                # 30k x 16, ~1 min

SMOTE needs the graph of a class against itself: every row queried against
the same rows, its own index excluded, k = 5 neighbours (k + 1 searched, self
dropped by index). This script times the candidate ways of building that
graph with FAISS, each in its own process (``_common.run_isolated``):

- ``faiss_ivf``: ``IndexIVFFlat`` with ``nlist = round(2 sqrt(n))`` (k-means
  on at most 64 x nlist rows sampled with a fixed seed), ``index.search``;
- ``faiss_ivf_big_batch``: the same index searched with
  ``faiss.contrib.big_batch_search.big_batch_search`` (queries grouped by
  list, one ``faiss.knn`` per list);
- ``ours_join``: the same index searched by ``smote_ann.neighbors._graph.
  ivf_flat_search`` (each list against the queries that probe it, one GEMM),
  with each row's own list as the start of its probe search;
- ``faissnn_ivf``: the library's estimator end to end,
  ``FaissNN(6, index_type="ivf").fit(X).kneighbors(X)`` (it tunes ``nprobe``
  to recall 0.95 itself; fit, tuning included, and search timed apart);
- ``nndescent``: ``IndexNNDescentFlat(d, 32)``, searched with ``search_L``;
  ``nndescent_graph``: the same build, its graph read as it is (the first 5
  of each row's 32 neighbours, no search);
- ``hnsw_default`` / ``hnsw_cheap``: ``IndexHNSWFlat`` with M = 32,
  efConstruction = 40 (FAISS's defaults) / M = 16, efConstruction = 20;
- ``ivf_fastscan_refine``: ``IVF{nlist},PQ{d/2}x4fsr,RFlat`` (4-bit fast-scan
  codes of the residuals to the list centroids, ``k_factor`` x k candidates
  re-ranked on the full vectors);
- ``exact_flat``: ``IndexFlatL2``, the reference. Above ``--flat-max-rows``
  its graph is timed on 20,000 sampled rows and extrapolated linearly
  (marked ``*``).

Parameters of the approximate candidates: the search knob (``nprobe``,
``efSearch``, ``search_L``; for the fast-scan index ``nprobe`` for each
re-ranking ``k_factor``) is swept from cheap to costly on a fixed sample of
2000 rows, until the recall@5 of the sample reaches 0.95; among the settings
that reach it the one whose sample search was fastest is kept (with a single
knob, the first that reaches it). The full graph is then built and searched
once at that setting (index build and graph search timed apart, the sweep in
neither) and its recall computed on the same 2000 rows.

Recall@5 is tie-tolerant: a returned neighbour counts if its squared distance
(float64, recomputed) is at most the exact 5th-neighbour squared distance
x (1 + 1e-5) + 1e-6, the row itself excluded by index. Exact neighbours: a
flat search of 7 neighbours of the sample rows, self removed by index,
distances recomputed in float64.

Data (``_common.clustered_data``): ``susy_minority``, the minority class of
``bench_scale.py``'s SUSY-sized job (about 170k x 18), and ``clustered_1m``
(1M x 32); ``--quick``: ``clustered_30k`` (30k x 16). NN-descent is skipped
above ``--nndescent-max-rows`` rows (default 300k): its build is by far the
slowest (13 s for 30k x 16 on 2 cores, where the IVF index takes 0.1 s).

Results: ``results/graph_candidates.json`` and ``results/graph_candidates.md``
(``--quick``: ``graph_candidates_quick.*``); rows of the sets and candidates
not run this time are kept from earlier runs.
"""

# License: BSD-3-Clause

import argparse
import contextlib
import io
import json
import math
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
K = 5  # SMOTE's neighbours; every search asks for K + 1 (the row itself)
TARGET = 0.95
SAMPLE_ROWS = 2000
FLAT_SAMPLE_ROWS = 20_000  # rows of the extrapolated exact graph
NPROBES = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64]
EF_SEARCHES = [16, 24, 32, 48, 64, 96, 128, 192, 256]
NNDESCENT_K = 32
# NN-descent's search starts from search_L random rows: at least 2 x its K
SEARCH_LS = [64, 96, 128, 192, 256, 384, 512]
REFINE_K_FACTORS = [4, 8]

SETS = {
    "susy_minority": "minority class of the SUSY-sized job (2,881,796 x 18, 169,623 class 1)",
    "clustered_1m": "clustered_data(1_000_000, 32)",
}
QUICK_SETS = {"clustered_30k": "clustered_data(30_000, 16)"}
CANDIDATES = ["faiss_ivf", "faiss_ivf_big_batch", "ours_join", "faissnn_ivf", "nndescent",
              "hnsw_default", "hnsw_cheap", "ivf_fastscan_refine", "exact_flat"]
# table order: the graph read from the NN-descent build comes from the nndescent worker
ROW_ORDER = CANDIDATES[:5] + ["nndescent_graph"] + CANDIDATES[5:]


def _data(name):
    if name == "susy_minority":
        X, y = clustered_data(2_881_796, 18, minority=169_623 / 2_881_796)
        return np.ascontiguousarray(X[y == 1])
    if name == "clustered_1m":
        return clustered_data(1_000_000, 32)[0]
    if name == "clustered_30k":
        return clustered_data(30_000, 16)[0]
    raise ValueError(name)


# --------------------------------------------------------------------------
# Exact reference and recall
# --------------------------------------------------------------------------
def _sq_distances(X, rows, ind):
    """float64 squared distances from rows ``X[rows]`` to rows ``X[ind]`` (-1: inf)."""
    valid = ind >= 0
    diff = X[np.where(valid, ind, 0)].astype(np.float64) - X[rows][:, None, :]
    d2 = np.einsum("ijk,ijk->ij", diff, diff)
    d2[~valid] = np.inf
    return d2


def reference(X, rows):
    """Tie-tolerant bound on each sample row's 5th exact squared distance."""
    import faiss

    from smote_ann.neighbors._graph import exclude_self

    flat = faiss.IndexFlatL2(X.shape[1])
    flat.add(X)
    _, ind = flat.search(X[rows], K + 2)
    ind = exclude_self(ind, self_rows=rows)
    kth = np.sort(_sq_distances(X, rows, ind), axis=1)[:, K - 1]
    return kth * (1 + 1e-5) + 1e-6


def recall(X, rows, bound, ind):
    """Share of the K returned neighbours of rows `rows` within their exact bound."""
    return float((_sq_distances(X, rows, ind[:, :K]) <= bound[:, None]).mean())


# --------------------------------------------------------------------------
# Candidates: build an index, set a search knob, search fitted rows (k + 1)
# --------------------------------------------------------------------------
def _nlist(n):
    return max(1, round(2 * math.sqrt(n)))


def _train_ivf(index, ivf, X):
    """Train `index` (whose IVF part is `ivf`) on a fixed sample of X, then add X."""
    ivf.cp.min_points_per_centroid = 1
    ivf.cp.seed = 0
    n = len(X)
    rows = np.sort(np.random.default_rng(0).choice(n, min(n, 64 * ivf.nlist), replace=False))
    index.train(X[rows])
    index.add(X)
    return index


def _build_ivf_flat(X):
    import faiss

    d = X.shape[1]
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, _nlist(len(X)))
    return _train_ivf(ivf, ivf, X)


def _build_fastscan_refine(X):
    import faiss

    d = X.shape[1]
    # after "IVF", "x4fs" codes the vectors themselves and "x4fsr" their
    # residuals to the list centroid: 16 centroids per sub-space over the whole
    # data range rank near neighbours no better than chance (recall@5 below
    # 0.7 at any nprobe on clustered 30k x 16), residuals reach 0.95
    index = faiss.index_factory(d, f"IVF{_nlist(len(X))},PQ{d // 2}x4fsr,RFlat")
    return _train_ivf(index, faiss.extract_index_ivf(index), X)


def _build_hnsw(m, ef_construction):
    def build(X):
        import faiss

        index = faiss.IndexHNSWFlat(X.shape[1], m)
        index.hnsw.efConstruction = ef_construction
        index.add(X)
        return index
    return build


def _build_nndescent(X):
    import faiss

    index = faiss.IndexNNDescentFlat(X.shape[1], NNDESCENT_K)
    index.add(X)  # builds the graph
    return index


def _build_flat(X):
    import faiss

    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    return index


def _set_nprobe(index, s):
    index.nprobe = s["nprobe"]


def _set_ef_search(index, s):
    index.hnsw.efSearch = s["efSearch"]


def _set_search_l(index, s):
    index.nndescent.search_L = s["search_L"]


def _set_refine(index, s):
    import faiss

    faiss.extract_index_ivf(index).nprobe = s["nprobe"]
    index.k_factor = s["k_factor"]


def _search_index(index, X, queries, rows):
    return index.search(queries, K + 1)[1]


def _search_big_batch(index, X, queries, rows):
    from faiss.contrib.big_batch_search import big_batch_search

    # verbose=0 (the default) prints a progress line for every list;
    # verbose=1 prints only a few timings, which are discarded here
    with contextlib.redirect_stdout(io.StringIO()):
        return big_batch_search(index, queries, K + 1, verbose=1)[1]


def _search_join(index, X, queries, rows):
    from smote_ann.neighbors import _faiss, _graph

    lists = _faiss.flat_lists(index)  # views of the index's lists, at its nprobe
    home = np.empty(index.ntotal, dtype=np.int64)
    for lst, ids in enumerate(lists.ids):
        home[ids] = lst
    return _graph.ivf_flat_search(lists, queries, K + 1, home=home[rows])[1]


def _knob(name, values):
    return [[{name: v} for v in values]]


# name: (build, groups of settings from cheap to costly, set the knob, search)
SPECS = {
    "faiss_ivf": (_build_ivf_flat, _knob("nprobe", NPROBES), _set_nprobe, _search_index),
    "faiss_ivf_big_batch": (_build_ivf_flat, _knob("nprobe", NPROBES), _set_nprobe,
                            _search_big_batch),
    "ours_join": (_build_ivf_flat, _knob("nprobe", NPROBES), _set_nprobe, _search_join),
    "nndescent": (_build_nndescent, _knob("search_L", SEARCH_LS), _set_search_l,
                  _search_index),
    "hnsw_default": (_build_hnsw(32, 40), _knob("efSearch", EF_SEARCHES), _set_ef_search,
                     _search_index),
    "hnsw_cheap": (_build_hnsw(16, 20), _knob("efSearch", EF_SEARCHES), _set_ef_search,
                   _search_index),
    "ivf_fastscan_refine": (_build_fastscan_refine,
                            [[{"nprobe": p, "k_factor": f} for p in NPROBES]
                             for f in REFINE_K_FACTORS],
                            _set_refine, _search_index),
    "exact_flat": (_build_flat, [[{}]], lambda index, s: None, _search_index),
}


def _setting_text(s):
    return ", ".join(f"{k}={v}" for k, v in s.items()) or "exact search"


def _warm_up(candidate, d):
    """Build and search a tiny index once: FAISS's thread pool, lazy imports."""
    X = np.random.default_rng(0).normal(size=(1000, d)).astype(np.float32)
    rows = np.arange(len(X))
    if candidate == "faissnn_ivf":
        from smote_ann import FaissNN

        FaissNN(K + 1, index_type="ivf", random_state=0).fit(X).kneighbors(X)
        return
    build, groups, apply, search = SPECS[candidate]
    index = build(X)
    apply(index, groups[0][0])
    search(index, X, X, rows)


def _sweep(index, X, rows, bound, groups, apply, search):
    """Recall and time of the sample's search at each setting, cheap to costly,
    each group until it reaches the target; the chosen setting."""
    from smote_ann.neighbors._graph import exclude_self

    queries = X[rows]
    points = []
    for group in groups:
        for setting in group:
            apply(index, setting)
            t0 = time.perf_counter()
            ind = search(index, X, queries, rows)
            seconds = time.perf_counter() - t0
            r = recall(X, rows, bound, exclude_self(ind, self_rows=rows))
            points.append({**setting, "sample_s": seconds, "recall": r})
            if r >= TARGET:
                break
    reached = [p for p in points if p["recall"] >= TARGET]
    if reached:
        best = min(reached, key=lambda p: p["sample_s"])
    else:  # none reaches the target: the most accurate, reported as such
        best = max(points, key=lambda p: (p["recall"], -p["sample_s"]))
    chosen = {k: v for k, v in best.items() if k not in ("sample_s", "recall")}
    return chosen, points


def worker(probe, data, candidate, flat_max_rows):
    """Build, sweep, then the full graph at the chosen setting, for one candidate."""
    from smote_ann.neighbors._graph import exclude_self

    X, rows, bound = load_arrays(data, "X", "rows", "bound")
    n, d = X.shape
    _warm_up(candidate, d)
    probe.start()
    if candidate == "faissnn_ivf":
        return {"records": [_faissnn_worker(X, rows, bound, probe)]}
    build, groups, apply, search = SPECS[candidate]
    t0 = time.perf_counter()
    index = build(X)
    build_s = time.perf_counter() - t0
    chosen, points = _sweep(index, X, rows, bound, groups, apply, search)
    apply(index, chosen)
    record = {"candidate": candidate, "setting": _setting_text(chosen), "build_s": build_s,
              "sweep": points}
    full_rows = np.arange(n)
    if candidate == "exact_flat" and n > flat_max_rows:  # a sample, extrapolated
        full_rows = np.sort(np.random.default_rng(2).choice(n, FLAT_SAMPLE_ROWS, replace=False))
        record["extrapolated"] = True
    queries = X if len(full_rows) == n else X[full_rows]
    t0 = time.perf_counter()
    graph = exclude_self(search(index, X, queries, full_rows), self_rows=full_rows)
    record["search_s"] = (time.perf_counter() - t0) * n / len(full_rows)
    if len(full_rows) == n:
        record["recall"] = recall(X, rows, bound, graph[rows])
    else:  # the exact graph of the sample rows, searched in the sweep
        record["recall"] = points[0]["recall"]
    record["peak_bytes"] = probe.peak_bytes()
    records = [record]
    if candidate == "nndescent":
        records.append(_nndescent_graph(index, X, rows, bound, build_s))
    return {"records": records}


def _nndescent_graph(index, X, rows, bound, build_s):
    """The NN-descent build's own graph: each row's K nearest of its NNDESCENT_K."""
    import faiss

    t0 = time.perf_counter()
    graph = faiss.vector_to_array(index.nndescent.final_graph).reshape(len(X), NNDESCENT_K)
    graph = graph[:, :K].astype(np.int64)  # sorted nearest first, self never in it
    return {"candidate": "nndescent_graph", "setting": f"K={NNDESCENT_K}, graph as built",
            "build_s": build_s, "search_s": time.perf_counter() - t0,
            "recall": recall(X, rows, bound, graph[rows])}


def _faissnn_worker(X, rows, bound, probe):
    from smote_ann import FaissNN
    from smote_ann.neighbors._graph import exclude_self

    t0 = time.perf_counter()
    nn = FaissNN(K + 1, index_type="ivf", random_state=0).fit(X)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph = exclude_self(nn.kneighbors(X, return_distance=False))
    search_s = time.perf_counter() - t0
    return {"candidate": "faissnn_ivf",
            "setting": f"nlist={nn.nlist_}, nprobe={nn.nprobe_} "
                       f"(tuned in {nn.tuning_time_:.2f} s)",
            "build_s": fit_s, "search_s": search_s, "nprobe": nn.nprobe_,
            "tuning_s": nn.tuning_time_, "recall": recall(X, rows, bound, graph[rows]),
            "peak_bytes": probe.peak_bytes()}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30k x 16 rows only")
    parser.add_argument("--sets", nargs="+", choices=list(SETS) + list(QUICK_SETS),
                        default=None)
    parser.add_argument("--candidates", nargs="+", choices=CANDIDATES, default=CANDIDATES)
    parser.add_argument("--nndescent-max-rows", type=int, default=300_000,
                        help="skip NN-descent on larger sets (default: %(default)s)")
    parser.add_argument("--flat-max-rows", type=int, default=250_000,
                        help="above, the exact graph is timed on %d rows and extrapolated"
                             % FLAT_SAMPLE_ROWS)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per process (default: 300 with --quick, else 2400)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sets = args.sets or list(QUICK_SETS if args.quick else SETS)
    timeout = args.timeout or (300 if args.quick else 2400)
    stem = "graph_candidates_quick" if args.quick else "graph_candidates"
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", file=sys.stderr, flush=True)

    store = args.out / f"{stem}.json"
    saved = json.loads(store.read_text()) if store.exists() else {"records": []}
    run = {(s, c) for s in sets for c in args.candidates}
    records = [r for r in saved["records"] if (r["set"], r["worker"]) not in run]
    for name in sets:
        with tempfile.TemporaryDirectory(prefix="smote_ann_graph_") as tmp:
            data = f"{tmp}/{name}"
            X = _data(name)
            n, d = X.shape
            rows = np.sort(np.random.default_rng(1).choice(n, min(n, SAMPLE_ROWS),
                                                           replace=False))
            save_arrays(data, X=X, rows=rows, bound=reference(X, rows))
            del X
            log(f"{name}: {n:,} x {d}")
            for candidate in args.candidates:
                base = {"set": name, "rows": n, "features": d, "worker": candidate}
                if candidate == "nndescent" and n > args.nndescent_max_rows:
                    reason = (f"skipped: {n:,} rows > --nndescent-max-rows "
                              f"{args.nndescent_max_rows:,}")
                    log(f"  {candidate}: {reason}")
                    records.append({**base, "candidate": candidate, "skipped": reason})
                    continue
                res = run_isolated(__file__, "worker", dict(
                    data=data, candidate=candidate, flat_max_rows=args.flat_max_rows),
                    timeout=timeout)
                if "error" in res:
                    log(f"  {candidate}: {res['error']}")
                    records.append({**base, "candidate": candidate, "error": res["error"]})
                    continue
                for r in res["records"]:
                    r["total_s"] = r["build_s"] + r["search_s"]
                    r["process_s"] = res["process_s"]
                    records.append({**base, **r})
                    log(f"  {r['candidate']}: {r['setting']}, build {r['build_s']:.2f} s, "
                        f"search {r['search_s']:.2f} s, recall {r['recall']:.3f}")

    order = {s: i for i, s in enumerate(list(SETS) + list(QUICK_SETS))}
    records.sort(key=lambda r: (order[r["set"]], ROW_ORDER.index(r["candidate"])))
    for r in records:
        ref = next((q for q in records if q["set"] == r["set"]
                    and q["candidate"] == "faiss_ivf" and "total_s" in q), None)
        if "total_s" in r and ref is not None:
            r["speedup_vs_faiss_ivf"] = ref["total_s"] / r["total_s"]

    def timed(key):
        def cell(r):
            if key not in r:
                return "–"
            return fmt(r[key], ".2f") + ("*" if r.get("extrapolated") and key != "build_s"
                                         else "")
        return cell

    table = markdown_table(records, [
        ("data", lambda r: f"{r['set']} ({r['rows']:,} x {r['features']})"),
        ("candidate", lambda r: r["candidate"]),
        ("setting", lambda r: r.get("setting") or r.get("skipped")
         or "failed: " + r.get("error", "–").split(" | ")[-1][-160:]),
        ("build s", timed("build_s")),
        ("search s", timed("search_s")),
        ("total s", timed("total_s")),
        ("recall@5 (sample)", lambda r: fmt(r.get("recall"), ".3f")),
        ("× vs faiss_ivf total", lambda r: fmt(r.get("speedup_vs_faiss_ivf"), ".2f")),
    ])
    conclusions = []
    for name in sorted({r["set"] for r in records}, key=order.get):
        ok = [r for r in records if r["set"] == name and r.get("recall", 0) >= TARGET]
        if ok:
            best = min(ok, key=lambda r: r["total_s"])
            ratio = best.get("speedup_vs_faiss_ivf")
            conclusions.append(
                f"{name}: fastest at recall@5 >= {TARGET} is {best['candidate']} "
                f"({best['setting']}), {best['total_s']:.2f} s"
                + ("." if not ratio or best["candidate"] == "faiss_ivf"
                   else f" ({ratio:.2f}x faiss_ivf's speed)."))
        else:
            conclusions.append(f"{name}: no candidate reached recall@5 >= {TARGET}.")
    env = environment()
    command = " ".join(["python benchmarks/bench_graph_candidates.py",
                        *(sys.argv[1:] if argv is None else argv)])
    md = "\n".join([
        "# Neighbour graph of a set against itself (k = 5, self excluded): candidates",
        "",
        f"Command: `{command}` (rows not run by it come from earlier runs).  ",
        f"Machine: {env['cpu_count']} cores, load average "
        f"{env.get('loadavg_1min_at_start', 0):.1f} at start; FAISS {env['faiss']}. "
        "Each candidate in its own process. Setting: the fastest whose recall@5 on "
        f"{SAMPLE_ROWS} sampled rows reaches {TARGET}, from a sweep of the search knob (not "
        "timed); build and graph search at that setting timed apart; recall of the full "
        "graph on the same rows, tie-tolerant. × vs faiss_ivf: faiss_ivf's total over the "
        "candidate's (> 1: faster). `*`: timed on "
        f"{FLAT_SAMPLE_ROWS:,} rows and extrapolated.",
        "",
        table,
        "",
        *conclusions,
    ])
    print(md)
    store.write_text(json.dumps({"environment": env, "records": records}, indent=1))
    (args.out / f"{stem}.md").write_text(md + "\n")
    log(f"done: {store}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
