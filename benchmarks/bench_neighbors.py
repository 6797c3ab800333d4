"""Recall matrix of FaissNN's default approximate indexes, with time against flat.

What it measures, per dataset, each configuration in its own process
(``_common.run_isolated``):

- ``FaissNN(5, index_type="ivf", random_state=0)`` and ``"hnsw"`` with their
  defaults (``target_recall=0.95``: ``fit`` builds the index, then measures
  recall@5 on 1000 sampled fitted rows and tunes ``nprobe`` / ``ef_search``):
  the time of ``fit`` (tuning included; ``tuning_time_`` reported apart) and of
  ``kneighbors()`` (the whole kNN graph, each row excluded from its own
  neighbours), the tuned setting, ``recall_estimate_``, the tuning share
  ``tuning_time_ / (fit + kneighbors)``, the TRUE recall@5 and
  ``|recall_estimate_ - true|``;
- ``FaissNN(5, index_type="flat")``: the same graph, exactly. Up to
  ``--exact-max-rows`` rows (default 250k, so that celeba's 202,599 rows get
  the full treatment) it is timed on the full graph; above, the flat
  ``kneighbors(X[sample], n_neighbors=6)`` of 20,000 sampled rows is timed and
  extrapolated linearly to all rows (marked ``*`` in the tables);
- ``--nlist-sweep`` (on by default): IVF with ``nlist = round(c * sqrt(n))``
  for c in 1, 2, 4 (``nprobe`` tuned) on latent10, make_classification,
  donors and cover: fit, kneighbors, total time and recall; which c is the
  fastest at true recall >= 0.95 (c = 2 is the default ``nlist``). Each
  configuration runs ``--sweep-repeats`` times (3), interleaved, and the
  fastest run is kept: the machine is shared, and the differences measured
  are tens of percent.

TRUE recall is tie-tolerant recall@5: a returned row counts if its float64
distance to the query is <= the exact 5th distance x (1 + 1e-5) + 1e-6 (and
it is not the query's own row: duplicates of the query are valid neighbours).
The exact 5th distance comes from a flat FaissNN asked for 11 candidates,
re-ranked in float64, own row dropped by index. It is computed over ALL rows
up to ``--exact-max-rows`` rows, else over 20,000 rows sampled with a seed
independent of the estimator's (the "truth" column says which, and the JSON
has its standard error). Also reported: a float32-tolerant variant (ties
within FAISS's float32 round-off count, as ``recall_estimate_`` counts them),
the strict recall of the exact (float32) flat graph itself, and per dataset a
maximum-likelihood estimate of the intrinsic dimension (Levina-Bickel, 10
neighbours) from the same exact neighbours.

Data (float32): ``latent{2,10,30}``: Gaussian clusters in an L-dimensional
latent space embedded non-linearly (sin of a random projection) in 32
features, at ``--sizes`` rows (100k and 1M); ``make_classification``:
scikit-learn's defaults (20 features), same sizes; the real sets of
``../shared/data`` (or ``$SMOTE_ANN_SHARED_DATA``) at their own size,
standardised (mean / std): donors (adbench:11_donors), cover
(adbench:10_cover), celeba (adbench:8_celeba), mammography
(adbench:23_mammography), http (adbench:16_http, duplicates kept) and fars.
Without ``../shared/data`` the real sets are skipped with the reason.

Usage::

    python benchmarks/bench_neighbors.py --quick      # smoke test: 20k rows, 2 sets, < 1 min
    nice -n 10 python benchmarks/bench_neighbors.py > /tmp/bench_neighbors.log 2>&1
                                                      # the full matrix + sweep (~80 min, 2 cores)
    python benchmarks/bench_neighbors.py --sets latent10 donors --sizes 100000
    python benchmarks/bench_neighbors.py --no-nlist-sweep
    python benchmarks/bench_neighbors.py --nlist-sweep --sweep-only --sets latent10
    python benchmarks/bench_neighbors.py --from-json benchmarks/results/neighbors.json
                                                      # re-render tables and plot only

Writes ``benchmarks/results/neighbors.json`` (command, environment, every
record), ``neighbors_table.md`` and ``neighbors_recall.png`` (``--quick``:
``neighbors_quick*``; ``--out`` changes the stem).
"""

# License: BSD-3-Clause

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import (  # noqa: E402
    MIB,
    environment,
    fmt,
    load_real,
    markdown_table,
    run_isolated,
    shared_data_reason,
)

K = 5
N_FEATURES = 32
SIZES = [100_000, 1_000_000]
EXACT_MAX_ROWS = 250_000
EVAL_SAMPLE = 20_000  # true-recall queries (and flat timing rows) above EXACT_MAX_ROWS
EVAL_SEED = 20_240_601  # not the estimators' random_state=0
SLACK = 5  # extra exact candidates re-ranked in float64
RTOL, ATOL = 1e-5, 1e-6
TARGET = 0.95
MAX_ABS_ERR = 0.02
MAX_TUNING_SHARE = 0.15
SWEEP_C = (1, 2, 4)
SYNTHETIC = {"latent2": 2, "latent10": 10, "latent30": 30}
GENERATED = [*SYNTHETIC, "make_classification"]
REAL = {
    "donors": "adbench:11_donors",
    "cover": "adbench:10_cover",
    "celeba": "adbench:8_celeba",
    "mammography": "adbench:23_mammography",
    "http": "adbench:16_http",
    "fars": "fars",
}
ALL_SETS = [*GENERATED, *REAL]
SWEEP_SETS = ["latent10", "make_classification", "donors", "cover"]
QUICK = {"sizes": [20_000], "sets": ["latent10", "make_classification"]}


# ==========================================================================
# Data
# ==========================================================================
def make_clustered(n, d=N_FEATURES, intrinsic=8, n_clusters=32, spread=2.0, seed=0):
    """Gaussian clusters in an `intrinsic`-dim latent space, embedded non-linearly in d dims.

    The generator of tests/test_neighbors.py, with the projection scaled by
    ``sqrt(8 / intrinsic)`` so that the embedding bends the latent space about
    as much at every `intrinsic` (identical to it at 8).
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(n_clusters, intrinsic))
    z = centers[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, intrinsic))
    proj = rng.random((intrinsic, d)) * math.sqrt(8 / intrinsic)
    return np.sin(z @ proj * (rng.random(d) * 0.6 + 0.1)).astype(np.float32)


def standardise(X):
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return np.ascontiguousarray((X - X.mean(axis=0)) / std, dtype=np.float32)


def make_data(name, n):
    """float32 X of set `name` (`n` rows for generated sets; None: a real set's own size)."""
    if name in SYNTHETIC:
        return make_clustered(n, intrinsic=SYNTHETIC[name])
    if name == "make_classification":
        from sklearn.datasets import make_classification

        return make_classification(n, random_state=0)[0].astype(np.float32)
    X = standardise(load_real(REAL[name])[0])
    if n is not None and n < X.shape[0]:
        rows = np.sort(np.random.default_rng(0).choice(X.shape[0], n, replace=False))
        X = X[rows]
    return X


# ==========================================================================
# Exact reference and true recall (used inside the workers)
# ==========================================================================
def _dist64(X, rows, ind):
    A = X[rows].astype(np.float64)
    return np.sqrt(((X[ind].astype(np.float64) - A[:, None, :]) ** 2).sum(axis=2))


def _chunks(n, size):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _chunk_rows(d):
    return max(1, (1 << 23) // ((K + 1 + SLACK) * d))


def exact_kth(flat, X, rows):
    """float64 distance of each row of X[rows] to its exact 5th neighbour, own row excluded.

    A flat FaissNN gives 11 candidates in float32; they are re-ranked in float64.
    Also returns each row's Levina-Bickel statistic ``mean_j log(T_10 / T_j)``
    over its 10 nearest (NaN for rows with a duplicate: ``T_1 = 0``), whose
    inverse mean is the maximum-likelihood intrinsic dimension
    (MacKay & Ghahramani's average).
    """
    kth = np.empty(len(rows))
    lb = np.full(len(rows), np.nan)
    m = K + SLACK  # neighbours other than the row itself
    # every row: the graph of the fitted rows, each row excluded (searched as
    # one job, so that rows with many copies are searched once)
    graph = (flat.kneighbors(n_neighbors=K + SLACK, return_distance=False)
             if len(rows) == len(X) else None)
    for part in _chunks(len(rows), 8192):
        r = rows[part]
        if graph is not None:
            ind = graph[r]
        else:
            ind = flat.kneighbors(X[r], n_neighbors=K + 1 + SLACK, return_distance=False)
        for sub in _chunks(len(r), _chunk_rows(X.shape[1])):
            d = _dist64(X, r[sub], ind[sub])
            d[ind[sub] == r[sub, None]] = np.inf
            d.sort(axis=1)
            kth[part][sub] = d[:, K - 1]
            T = d[:, :m]
            ok = T[:, 0] > 0
            stat = np.full(len(T), np.nan)
            stat[ok] = np.log(T[ok, m - 1:m] / T[ok, :m - 1]).mean(axis=1)
            lb[part][sub] = stat
    return kth, lb


def intrinsic_dimension(lb):
    """MLE intrinsic dimension (k = 10) from `exact_kth`'s per-row statistics."""
    lb = lb[np.isfinite(lb) & (lb > 0)]
    return float(1.0 / lb.mean()) if lb.size else None


def true_recall(X, rows, ind, kth):
    """Tie-tolerant recall@5 of the neighbours `ind` (one row per query row `rows`).

    Returns the strict recall (the brief's: distance <= kth * (1 + 1e-5) + 1e-6),
    its standard error, and a float32-tolerant variant (squared distances
    within FAISS's float32 round-off ``8 eps |q|^2`` of the 5th count too).
    """
    per_query = np.empty(len(rows))
    per_query32 = np.empty(len(rows))
    eps = 8 * float(np.finfo(np.float32).eps)
    for part in _chunks(len(rows), _chunk_rows(X.shape[1])):
        r, i, k = rows[part], ind[part], kth[part]
        d = _dist64(X, r, i)
        own = i == r[:, None]
        hit = (d <= k[:, None] * (1 + RTOL) + ATOL) & ~own
        norms = (X[r].astype(np.float64) ** 2).sum(axis=1)
        hit32 = (d**2 <= (k**2 * (1 + RTOL) + eps * norms)[:, None]) & ~own
        per_query[part] = hit.mean(axis=1)
        per_query32[part] = hit32.mean(axis=1)
    se = 0.0
    if len(rows) < X.shape[0]:
        se = float(per_query.std(ddof=1) / math.sqrt(len(rows)))
    return float(per_query.mean()), se, float(per_query32.mean())


def _eval_rows(path, n):
    return np.arange(n) if path is None else np.load(path)


def _loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _warm_up(index_type, d, n_jobs):
    """A tiny fit + query, so that lazy imports and OpenMP start-up are not timed."""
    from smote_ann import FaissNN

    X = np.random.default_rng(0).normal(size=(3000, d)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FaissNN(K, index_type=index_type, random_state=0, n_jobs=n_jobs).fit(X).kneighbors()


# ==========================================================================
# Workers (each runs in a fresh process)
# ==========================================================================
def flat_worker(probe, data, eval_rows, kth_out, full, n_jobs):
    """Time the exact graph (full, or a sample extrapolated), then save the reference."""
    from smote_ann import FaissNN

    X = np.load(data)
    n, d = X.shape
    _warm_up("flat", d, n_jobs)
    rows = _eval_rows(eval_rows, n)
    load0 = _loadavg()
    probe.start()
    t0 = time.perf_counter()
    nn = FaissNN(K, index_type="flat", n_jobs=n_jobs).fit(X)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if full:
        ind = nn.kneighbors(return_distance=False)
    else:
        ind6 = nn.kneighbors(X[rows], n_neighbors=K + 1, return_distance=False)
    timed_s = time.perf_counter() - t0
    peak = probe.peak_bytes()
    if not full:  # own row dropped by index (the farthest when absent), as kneighbors() does
        from smote_ann.neighbors._graph import exclude_self

        ind = exclude_self(ind6, self_rows=rows)
        ind_rows = rows
    else:
        ind_rows = np.arange(n)
    t0 = time.perf_counter()
    kth, lb = exact_kth(nn, X, rows)
    reference_s = time.perf_counter() - t0
    np.save(kth_out, kth)
    flat_recall, _, flat_recall32 = true_recall(X, ind_rows, ind[rows] if full else ind, kth)
    return {
        "fit_s": fit_s,
        "query_s": timed_s if full else timed_s * n / len(rows),
        "query_timed_s": timed_s,
        "query_timed_rows": n if full else len(rows),
        "extrapolated": not full,
        "reference_s": reference_s,
        "flat_recall": flat_recall,
        "flat_recall_f32tol": flat_recall32,
        "intrinsic_dim": intrinsic_dimension(lb),
        "rows_with_duplicate": float(np.mean(~np.isfinite(lb))),
        "peak_mib": peak / MIB,
        "loadavg": load0,
    }


def approx_worker(probe, data, index_type, nlist, eval_rows, kth, n_jobs):
    """Fit (build + tuning) and the full kneighbors() graph of one default index."""
    from smote_ann import FaissNN

    X = np.load(data)
    n, d = X.shape
    _warm_up(index_type, d, n_jobs)
    load0 = _loadavg()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe.start()
        t0 = time.perf_counter()
        nn = FaissNN(K, index_type=index_type, nlist=nlist, random_state=0,
                     n_jobs=n_jobs).fit(X)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ind = nn.kneighbors(return_distance=False)
        query_s = time.perf_counter() - t0
        peak = probe.peak_bytes()
    out = {
        "index": nn.index_description_,
        "nlist": nn.nlist_,
        "nprobe": nn.nprobe_,
        "ef_search": nn.ef_search_,
        "recall_est": nn.recall_estimate_,
        "recall_sample_size": nn.recall_sample_size_,
        "tuning_s": nn.tuning_time_,
        "fit_s": fit_s,
        "build_s": fit_s - nn.tuning_time_,
        "query_s": query_s,
        "total_s": fit_s + query_s,
        "tuning_share": nn.tuning_time_ / (fit_s + query_s),
        "peak_mib": peak / MIB,
        "loadavg": load0,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }
    if kth is not None and Path(kth).exists():
        rows = _eval_rows(eval_rows, n)
        rec, se, rec32 = true_recall(X, rows, ind[rows], np.load(kth))
        out.update(recall_true=rec, recall_true_se=se, recall_true_f32tol=rec32,
                   abs_err=abs(nn.recall_estimate_ - rec))
    return out


# ==========================================================================
# Orchestration
# ==========================================================================
def datasets(args, log):
    """(label, set name, rows wanted or None) for every dataset of the run."""
    small, large = [], []  # generated sets up to --exact-max-rows, the real sets, the rest
    for n in sorted(args.sizes):
        for name in args.sets:
            if name in GENERATED:
                (small if n <= args.exact_max_rows else large).append(
                    (f"{name} {_short(n)}", name, n))
    out = small
    real = [s for s in args.sets if s in REAL]
    reason = shared_data_reason() if real else None
    if reason:
        log(f"skipping the real sets {', '.join(real)}: {reason}")
        real = []
    for name in real:
        out.append((name, name, None))
        if args.real_subsample:
            out.append((f"{name} {_short(args.real_subsample)}", name, args.real_subsample))
    return out + large


def _short(n):
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def run(args, log):
    workdir = Path(tempfile.mkdtemp(prefix="bench_neighbors_"))
    matrix, sweep, data_info = [], [], []
    try:
        for label, name, n_wanted in datasets(args, log):
            t0 = time.perf_counter()
            X = make_data(name, n_wanted)
            if name in REAL and n_wanted is not None and n_wanted >= X.shape[0]:
                continue  # the subsample would be the whole set
            n, d = X.shape
            data = str(workdir / f"{label.replace(' ', '_')}.npy")
            np.save(data, X)
            full = n <= args.exact_max_rows
            eval_rows = None
            if not full:
                rows = np.random.default_rng(EVAL_SEED).choice(n, EVAL_SAMPLE, replace=False)
                eval_rows = data + ".eval.npy"
                np.save(eval_rows, np.sort(rows))
            n_unique = len(np.unique(X.view(np.dtype((np.void, X.dtype.itemsize * d))).ravel()))
            del X
            truth = "all" if full else f"{EVAL_SAMPLE // 1000}k sample"
            info = {"set": label, "name": name, "n": n, "d": d, "n_unique": n_unique,
                    "truth": truth, "prepare_s": time.perf_counter() - t0}
            data_info.append(info)
            log(f"{label}: {n:,} x {d} ({n_unique:,} distinct rows), true recall over {truth}")
            kth = data + ".kth.npy"
            base = {"set": label, "name": name, "n": n, "d": d, "truth": truth}

            flat = {}
            if not args.sweep_only:
                flat = _run(args, log, label, "flat", "flat_worker",
                            dict(data=data, eval_rows=eval_rows, kth_out=kth, full=full,
                                 n_jobs=args.n_jobs))
                flat_total = flat.get("fit_s", np.nan) + flat.get("query_s", np.nan)
                info["flat"] = flat
                for method in ("ivf", "hnsw"):
                    res = _run(args, log, label, method, "approx_worker",
                               dict(data=data, index_type=method, nlist=None,
                                    eval_rows=eval_rows, kth=kth, n_jobs=args.n_jobs))
                    matrix.append({**base, "method": method, **res,
                                   "flat_fit_s": flat.get("fit_s"),
                                   "flat_query_s": flat.get("query_s"),
                                   "flat_total_s": flat_total,
                                   "flat_extrapolated": flat.get("extrapolated"),
                                   "flat_recall": flat.get("flat_recall"),
                                   "speedup_vs_flat": flat_total / res.get("total_s", np.nan)})
            if args.nlist_sweep and name in args.sweep_sets:
                if not Path(kth).exists():  # sweep alone: the reference, untimed here
                    flat = _run(args, log, label, "flat (reference)", "flat_worker",
                                dict(data=data, eval_rows=eval_rows, kth_out=kth, full=full,
                                     n_jobs=args.n_jobs))
                runs = {c: [] for c in SWEEP_C}
                for repeat in range(args.sweep_repeats):  # interleaved: the load drifts
                    for c in SWEEP_C:
                        nlist = int(round(c * math.sqrt(n)))
                        res = _run(args, log, label,
                                   f"ivf nlist={nlist} (c={c}, run {repeat + 1})",
                                   "approx_worker",
                                   dict(data=data, index_type="ivf", nlist=nlist,
                                        eval_rows=eval_rows, kth=kth, n_jobs=args.n_jobs))
                        runs[c].append(res)
                sweep += [{**base, "c": c, **_fastest(rs)} for c, rs in runs.items()]
            for f in workdir.glob(f"{label.replace(' ', '_')}.npy*"):
                f.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return matrix, sweep, data_info


def _fastest(runs):
    """The fastest of repeated runs of one configuration (the least disturbed by other
    jobs), with every run's total time, the median, and the lowest recall seen."""
    ok = [r for r in runs if "total_s" in r]
    if not ok:
        return runs[0]
    best = dict(min(ok, key=lambda r: r["total_s"]))
    best["runs_total_s"] = [r["total_s"] for r in ok]
    best["median_total_s"] = float(np.median(best["runs_total_s"]))
    best["runs"] = len(ok)
    if best.get("recall_true") is not None:
        best["recall_true_min"] = min(r["recall_true"] for r in ok)
    best["nprobe_runs"] = [r["nprobe"] for r in ok]
    return best


def _run(args, log, label, what, func, kwargs):
    res = run_isolated(__file__, func, kwargs, timeout=args.timeout)
    if "error" in res:
        log(f"  {label} {what}: FAILED {res['error']}")
        return {"error": res["error"]}
    parts = [f"{res['process_s']:6.1f} s process"]
    if "total_s" in res:
        parts.append(f"fit {res['fit_s']:.2f} s (tuning {res['tuning_s']:.2f}) + "
                     f"kneighbors {res['query_s']:.2f} s; {res['index']} nprobe={res['nprobe']} "
                     f"ef={res['ef_search']}; est {res['recall_est']:.4f} "
                     f"true {res.get('recall_true', float('nan')):.4f}")
    else:
        parts.append(f"fit {res['fit_s']:.2f} s + kneighbors {res['query_s']:.2f} s"
                     f"{' (extrapolated)' if res['extrapolated'] else ''}; "
                     f"strict recall of the flat graph {res['flat_recall']:.4f} "
                     f"(float32-tolerant {res['flat_recall_f32tol']:.4f})")
    for w in res.get("warnings", []):
        parts.append(w[:200])
    log(f"  {label} {what}: " + "; ".join(parts))
    return res


# ==========================================================================
# Reporting
# ==========================================================================
def _setting(r):
    if r.get("nprobe") is not None:
        return f"nprobe={r['nprobe']}"
    if r.get("ef_search") is not None:
        return f"ef={r['ef_search']}"
    return "–"


def _s(key, spec=".2f"):
    return lambda r: fmt(r.get(key), spec)


def _flag(key, spec, bad):
    def cell(r):
        v = r.get(key)
        if v is None:
            return "–"
        text = format(v, spec)
        return f"**{text}**" if bad(v) else text

    return cell


def _times(v, spec=".1f"):
    return "–" if v is None or not np.isfinite(v) else format(v, spec) + "×"


def _truth(r):
    if r.get("truth") != "all" and r.get("recall_true_se"):
        return f"{r['truth']} ±{r['recall_true_se']:.4f}"
    return r.get("truth", "–")


def matrix_table(records):
    cols = [
        ("set", "set"),
        ("rows × d", lambda r: f"{r['n']:,} × {r['d']}"),
        ("method", "method"),
        ("index", lambda r: r.get("index", "FAILED: " + r.get("error", "")[:80])),
        ("tuned", _setting),
        ("fit s", _s("fit_s")),
        ("tuning s", _s("tuning_s")),
        ("kneighbors s", _s("query_s")),
        ("total s", _s("total_s")),
        ("tuning share", _flag("tuning_share", ".1%", lambda v: v > MAX_TUNING_SHARE)),
        ("est. recall", _s("recall_est", ".4f")),
        ("true recall", _flag("recall_true", ".4f", lambda v: v < TARGET)),
        ("truth", _truth),
        ("abs err", _flag("abs_err", ".4f", lambda v: v > MAX_ABS_ERR)),
        ("f32-tol", _s("recall_true_f32tol", ".4f")),
        ("flat s", lambda r: fmt(r.get("flat_total_s"), ".1f")
         + ("*" if r.get("flat_extrapolated") else "")),
        ("vs flat", lambda r: _times(r.get("speedup_vs_flat"))),
    ]
    return markdown_table(records, cols)


def datasets_table(info):
    def flat(key, spec):
        return lambda r: fmt((r.get("flat") or {}).get(key), spec)

    cols = [
        ("set", "set"),
        ("rows × d", lambda r: f"{r['n']:,} × {r['d']}"),
        ("distinct rows", lambda r: f"{r['n_unique']:,}"),
        ("rows with a duplicate", flat("rows_with_duplicate", ".1%")),
        ("intrinsic dim (MLE, k=10)", flat("intrinsic_dim", ".1f")),
        ("true recall over", "truth"),
        ("flat fit s", flat("fit_s", ".2f")),
        ("flat kneighbors s", lambda r: fmt((r.get("flat") or {}).get("query_s"), ".1f")
         + ("*" if (r.get("flat") or {}).get("extrapolated") else "")),
        ("flat graph strict recall", flat("flat_recall", ".4f")),
        ("f32-tol", flat("flat_recall_f32tol", ".4f")),
    ]
    return markdown_table(info, cols)


def sweep_table(records):
    by = {(r["set"], r["c"]): r for r in records}

    def vs2(r):
        ref = by.get((r["set"], 2), {})
        if "total_s" not in r or "total_s" not in ref:
            return "–"
        return f"{ref['total_s'] / r['total_s']:.2f}×"

    cols = [
        ("set", "set"),
        ("rows", lambda r: f"{r['n']:,}"),
        ("c", lambda r: str(r["c"]) + (" (default)" if r["c"] == 2 else "")),
        ("index", lambda r: r.get("index", "FAILED: " + r.get("error", "")[:80])),
        ("nprobe", lambda r: fmt(r.get("nprobe"), "d")),
        ("fit s", _s("fit_s")),
        ("tuning s", _s("tuning_s")),
        ("kneighbors s", _s("query_s")),
        ("total s", _s("total_s")),
        ("median total s", _s("median_total_s")),
        ("est. recall", _s("recall_est", ".4f")),
        ("true recall", _flag("recall_true", ".4f", lambda v: v < TARGET)),
        ("speed vs c=2", vs2),
    ]
    return markdown_table(records, cols)


def sweep_conclusions(records):
    lines, summary = [], []
    for label in dict.fromkeys(r["set"] for r in records):
        rs = [r for r in records if r["set"] == label and "total_s" in r]
        ok = [r for r in rs if r.get("recall_true", 0) >= TARGET]
        if not ok:
            lines.append(f"- {label}: no c reaches true recall >= {TARGET}")
            continue
        best = min(ok, key=lambda r: r["total_s"])
        others = ", ".join(f"c={r['c']} {r['total_s']:.2f} s ({r['total_s'] / best['total_s']:.2f}×)"
                           for r in rs if r is not best)
        lines.append(f"- {label}: fastest at true recall >= {TARGET}: c={best['c']} "
                     f"(nlist {best['nlist']}, nprobe {best['nprobe']}, {best['total_s']:.2f} s, "
                     f"recall {best['recall_true']:.4f}); {others}")
        summary.append({"set": label, "best_c": best["c"], "best_total_s": best["total_s"],
                        "times": {r["c"]: r["total_s"] for r in rs}})
    if summary:
        wins = {c: sum(s["best_c"] == c for s in summary) for c in SWEEP_C}
        ratio = [s["times"][2] / s["times"][s["best_c"]] for s in summary if 2 in s["times"]]
        lines.append(f"- fastest c per set: " + ", ".join(f"c={c}: {w}" for c, w in wins.items())
                     + f" of {len(summary)} sets; the default c=2 is on average "
                     f"{np.mean(ratio):.2f}× (at worst {max(ratio):.2f}×) the fastest's time")
    return lines, summary


def checks(matrix):
    ok = [r for r in matrix if "total_s" in r]
    failed = [f"{r['set']} {r['method']}: {r['error']}" for r in matrix if "error" in r]
    low = [f"{r['set']} {r['method']}: true recall {r['recall_true']:.4f}"
           for r in ok if r.get("recall_true") is not None and r["recall_true"] < TARGET]
    err = [f"{r['set']} {r['method']}: est {r['recall_est']:.4f} vs true "
           f"{r['recall_true']:.4f} (|diff| {r['abs_err']:.4f})"
           for r in ok if r.get("abs_err") is not None and r["abs_err"] > MAX_ABS_ERR]
    share = [f"{r['set']} {r['method']}: tuning {r['tuning_s']:.2f} s = "
             f"{r['tuning_share']:.1%} of {r['total_s']:.2f} s"
             for r in ok if r["tuning_share"] > MAX_TUNING_SHARE]
    lines = []
    for title, items in ((f"true recall < {TARGET}", low),
                         (f"|estimate - true| > {MAX_ABS_ERR}", err),
                         (f"tuning share > {MAX_TUNING_SHARE:.0%}", share),
                         ("failed configurations", failed)):
        lines.append(f"- {title}: " + ("none" if not items else ""))
        lines += [f"  - {i}" for i in items]
    if ok:
        worst = max(ok, key=lambda r: r.get("abs_err") or 0)
        lines.append(f"- largest |estimate - true|: {worst.get('abs_err', float('nan')):.4f} "
                     f"({worst['set']} {worst['method']}); largest tuning share: "
                     f"{max(r['tuning_share'] for r in ok):.1%}; lowest true recall: "
                     f"{min(r.get('recall_true', 1) for r in ok):.4f}")
    return lines, {"low_recall": low, "large_error": err, "large_tuning_share": share,
                   "failed": failed}


def plot(matrix, sweep, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_axes = 2 if sweep else 1
    fig, axes = plt.subplots(1, n_axes, figsize=(7 * n_axes, 5.5), squeeze=False)
    ax = axes[0, 0]
    ok = [r for r in matrix if r.get("recall_true") is not None
          and np.isfinite(r.get("speedup_vs_flat") or np.nan)]
    sets = list(dict.fromkeys(r["set"] for r in ok))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(sets), 2)))
    for r in ok:
        c = colours[sets.index(r["set"])]
        ax.scatter(r["speedup_vs_flat"], r["recall_true"], color=c, s=45,
                   marker="o" if r["method"] == "ivf" else "s", edgecolor="k", linewidth=0.4)
        ax.annotate(f"{r['set']} {r['method']}", (r["speedup_vs_flat"], r["recall_true"]),
                    fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.axhline(TARGET, color="grey", ls="--", lw=1)
    ax.axvline(1, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("speed-up over flat (fit + kneighbors(X=None)); flat extrapolated above "
                  f"{EXACT_MAX_ROWS // 1000}k rows", fontsize=8)
    ax.set_ylabel("true recall@5")
    ax.set_title("FaissNN defaults (target_recall=0.95): o IVF, □ HNSW", fontsize=10)
    if sweep:
        ax = axes[0, 1]
        labels = list(dict.fromkeys(r["set"] for r in sweep))
        for label in labels:
            rs = sorted((r for r in sweep if r["set"] == label and "total_s" in r),
                        key=lambda r: r["c"])
            ref = next((r["total_s"] for r in rs if r["c"] == 2), None)
            if not rs or ref is None:
                continue
            line, = ax.plot([r["c"] for r in rs], [r["total_s"] / ref for r in rs],
                            marker="o", label=label)
            for r in rs:
                if r.get("recall_true", 0) < TARGET:
                    ax.scatter(r["c"], r["total_s"] / ref, s=120, facecolor="none",
                               edgecolor="red")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(SWEEP_C), [str(c) for c in SWEEP_C])
        ax.set_xlabel("c in nlist = c·sqrt(n) (nprobe tuned to 0.95)")
        ax.set_ylabel("fit + kneighbors time / time at c=2 (default)")
        ax.set_title("IVF nlist sweep (red ring: true recall < 0.95)", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ==========================================================================
# Main
# ==========================================================================
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help=f"rows of the generated sets (default {SIZES}; --quick: 20000)")
    parser.add_argument("--sets", nargs="+", choices=ALL_SETS, default=None,
                        help="datasets (default all; --quick: latent10 make_classification)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 20k rows, latent10 and make_classification")
    sweep = parser.add_mutually_exclusive_group()
    sweep.add_argument("--nlist-sweep", dest="nlist_sweep", action="store_true", default=True,
                       help="run the IVF nlist = c*sqrt(n) sweep (default)")
    sweep.add_argument("--no-nlist-sweep", dest="nlist_sweep", action="store_false")
    parser.add_argument("--sweep-sets", nargs="+", choices=ALL_SETS, default=SWEEP_SETS,
                        help="sets of the nlist sweep (among --sets)")
    parser.add_argument("--sweep-only", action="store_true", help="only the nlist sweep")
    parser.add_argument("--sweep-repeats", type=int, default=None,
                        help="runs of each sweep configuration, interleaved; the fastest is "
                             "reported (default 3; --quick: 1)")
    parser.add_argument("--real-subsample", type=int, default=0,
                        help="also a random subsample of this many rows of larger real sets")
    parser.add_argument("--exact-max-rows", type=int, default=EXACT_MAX_ROWS,
                        help="full flat graph and true recall over all queries up to this size")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="FaissNN n_jobs of every configuration (default: FAISS's, all cores)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds allowed per configuration process")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default benchmarks/results/neighbors.json, "
                             "--quick: neighbors_quick.json); table and plot next to it")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="only re-render the tables and plot of a saved JSON (to --out, "
                             "default: next to it)")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        report(results, args.out or args.from_json, lambda msg: print(msg, flush=True))
        return 0
    if args.sizes is None:
        args.sizes = QUICK["sizes"] if args.quick else SIZES
    if args.sets is None:
        args.sets = QUICK["sets"] if args.quick else ALL_SETS
    if args.out is None:
        args.out = HERE / "results" / ("neighbors_quick.json" if args.quick else "neighbors.json")
    if args.sweep_only:
        args.nlist_sweep = True
    if args.sweep_repeats is None:
        args.sweep_repeats = 1 if args.quick else 3

    def log(msg):
        print(msg, flush=True)

    command = "python benchmarks/bench_neighbors.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    env = environment()
    log(f"{command.strip()}\nFaissNN({K}) defaults, target_recall={TARGET}; "
        f"{env['cpu_count']} CPUs, load {env.get('loadavg_1min_at_start')}, "
        f"faiss {env.get('faiss')}")
    env.update(_library_state())
    t_start = time.perf_counter()
    matrix, sweep, data_info = run(args, log)
    wall = time.perf_counter() - t_start
    results = {"command": command.strip(), "environment": env, "wall_s": wall,
               "settings": {"k": K, "target_recall": TARGET, "sizes": args.sizes,
                            "sets": args.sets, "exact_max_rows": args.exact_max_rows,
                            "eval_sample": EVAL_SAMPLE, "eval_seed": EVAL_SEED,
                            "rtol": RTOL, "atol": ATOL, "n_jobs": args.n_jobs,
                            "sweep_c": SWEEP_C, "sweep_sets": args.sweep_sets,
                            "sweep_repeats": args.sweep_repeats},
               "datasets": data_info, "matrix": matrix, "nlist_sweep": sweep}
    report(results, args.out, log)
    return 0


def _library_state():
    """The smote_ann commit and its uncommitted files (read-only git commands)."""
    import subprocess

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=HERE, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--", "../smote_ann")
    return {"git_head": git("rev-parse", "HEAD"),
            "smote_ann_uncommitted": status.splitlines() if status else []}


def report(results, out, log):
    """Markdown tables (stdout and ``<stem>_table.md``), the JSON and the plot."""
    matrix, sweep, env = results["matrix"], results["nlist_sweep"], results["environment"]
    sections = [f"`{results['command']}`", "",
                f"{env['date']}, {env['cpu_count']} CPUs, load average at start "
                f"{env.get('loadavg_1min_at_start')}, faiss {env.get('faiss')}, smote_ann "
                f"{(env.get('git_head') or '?')[:7]}; wall time {results['wall_s'] / 60:.1f} min.",
                ""]
    check_lines, check_summary = [], {}
    if results.get("datasets"):
        sections += ["## Datasets", "", datasets_table(results["datasets"]), "",
                     "intrinsic dim: Levina-Bickel maximum-likelihood estimate from the 10 "
                     "nearest neighbours (MacKay-Ghahramani average; rows with a duplicate "
                     "left out). flat graph strict recall: the strict true recall of FAISS's "
                     "exact float32 search itself (below 1 where float32 round-off cannot "
                     "separate neighbours: very dense data). * = extrapolated.", ""]
    if matrix:
        check_lines, check_summary = checks(matrix)
        sections += [
            "## Recall matrix: FaissNN(5) defaults, fit + kneighbors(X=None)", "",
            matrix_table(matrix), "",
            "fit includes tuning; tuning share = tuning_time_ / (fit + kneighbors). "
            "true recall: tie-tolerant recall@5 (float64 distance <= exact 5th x (1 + 1e-5) "
            f"+ 1e-6) over all rows (truth = all) or {EVAL_SAMPLE:,} rows sampled "
            "independently of the estimator (± its standard error); abs err = |est. recall - "
            "true recall|. f32-tol: the same, with ties within FAISS's float32 round-off "
            "(squared distance within 8 eps |q|^2 of the 5th) counted as the estimator counts "
            "them (the strict recall of the exact float32 graph itself is in Datasets). "
            "flat s: exact FaissNN fit + full graph; * = "
            f"extrapolated linearly from kneighbors of {EVAL_SAMPLE:,} rows. Bold: outside the "
            f"targets (recall < {TARGET}, |est - true| > {MAX_ABS_ERR}, tuning share > "
            f"{MAX_TUNING_SHARE:.0%}).",
            "", "Checks:", "", *check_lines, ""]
    sweep_lines, sweep_summary = [], []
    if sweep:
        sweep_lines, sweep_summary = sweep_conclusions(sweep)
        repeats = results["settings"].get("sweep_repeats", 1)
        sections += ["## IVF nlist sweep: nlist = round(c·sqrt(n)), nprobe tuned", "",
                     sweep_table(sweep), "",
                     f"Each configuration ran {repeats} time(s), interleaved (c = 1, 2, 4, "
                     "1, 2, 4, ...); the row is the fastest run (least disturbed by the other "
                     "jobs on the machine), the median of the runs' totals next to it.", "",
                     *sweep_lines, ""]
    text = "\n".join(sections)
    log("\n" + text)

    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    table_path = Path(f"{stem}_table.md")
    png_path = Path(f"{stem}_recall.png")
    plot(matrix, sweep, png_path)
    results = dict(results, checks=check_summary, sweep_summary=sweep_summary)
    with open(out, "w") as f:
        json.dump(_finite(results), f, indent=2, default=_json_default)
    table_path.write_text(text)
    log(f"wrote {out}, {table_path} and {png_path}")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


def _finite(obj):
    """NaN / inf -> None, so that the JSON is standard."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


if __name__ == "__main__":
    sys.exit(main())
