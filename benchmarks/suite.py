"""smote_ann benchmark suite: neighbours, resampling, downstream quality.

One command::

    python benchmarks/suite.py --quick      # < 2 min on 2 cores (the smoke test runs it)
    python benchmarks/suite.py              # full profile, < 30 min on 2 cores

Sections (``--sections`` picks a subset):

1. ``neighbors``  FaissNN flat / IVF (several nprobe) / HNSW (several
   ef_search) and scikit-learn's NearestNeighbors: build time, query time,
   recall@k against exact search, peak memory; synthetic clustered data of
   increasing size and real sets from ../shared/data.
2. ``resampling`` ours (exact and approximate) against imbalanced-learn's
   SMOTE (and the variants when both libraries have them) at increasing
   sizes: wall time, peak RSS, ratios, plus the recall of the approximate
   neighbour table and the score of a classifier trained on the output.
3. ``downstream`` the classic SMOTE tutorial workflow on real sets:
   stratified split, LogisticRegression and HistGradientBoostingClassifier on
   the raw / imbalanced-learn SMOTE / ours exact / ours approximate training
   split; minority recall, precision, F1, average precision, mean ± std over
   seeds.

Every configuration of sections 1 and 2 runs in its own Python process
(`_common.run_isolated`), so each peak RSS is that configuration's own.
Output: markdown tables on stdout and in ``suite_<profile>.md``, a JSON file
with everything, one CSV per section and PNG plots, all in ``--out``
(default ``benchmarks/results``).
"""

# License: BSD-3-Clause

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    MIB,
    clustered_data,
    environment,
    fmt,
    load_arrays,
    load_real,
    markdown_table,
    run_isolated,
    save_arrays,
    shared_data_reason,
    warm_up,
    write_records,
)

HERE = Path(__file__).resolve().parent
K = 6  # neighbours asked of the index: SMOTE's k_neighbors=5 plus the sample itself

PROFILES = {
    "quick": {
        "nn_synthetic_sizes": [4_000],
        "nn_real": [],  # real sets: full profile only
        "nn_queries": 200,
        "nprobe": [1, 4, 16],
        "ef_search": [16, 64],
        "rs_sizes": [5_000, 20_000],
        "rs_variant_max_rows": 5_000,
        "rs_test_rows": 5_000,
        "ds_sets": {"keel:yeast4": None, "adbench:23_mammography": None},
        "ds_seeds": [0, 1],
        "hgb_max_iter": 30,
        "timeout": 300,
    },
    "full": {
        "nn_synthetic_sizes": [10_000, 100_000, 1_000_000],
        "nn_real": ["adbench:11_donors", "adbench:10_cover", "adbench:8_celeba", "caravan"],
        "nn_queries": 2_000,
        "nprobe": [1, 2, 4, 8, 16, 32, 64],
        "ef_search": [16, 32, 64, 128, 256],
        "rs_sizes": [10_000, 100_000, 1_000_000],
        "rs_variant_max_rows": 100_000,
        "rs_test_rows": 50_000,
        "ds_sets": {
            "keel:yeast4": None,
            "adbench:23_mammography": None,
            "caravan": None,
            "adbench:11_donors": 60_000,  # stratified subsample of this many rows
        },
        "ds_seeds": [0, 1, 2, 3, 4],
        "hgb_max_iter": 100,
        "timeout": 1800,
    },
}


# ==========================================================================
# Shared pieces used inside the workers
# ==========================================================================
def _ours_smote(seed, index_type):
    from smote_ann import SMOTE, FaissNN

    if index_type == "flat":
        return SMOTE(random_state=seed)  # the default: exact FaissNN, k_neighbors=5
    return SMOTE(random_state=seed, k_neighbors=FaissNN(K, index_type=index_type, random_state=seed))


def _imblearn(name):
    def build(seed):
        from imblearn import over_sampling

        return getattr(over_sampling, name)(random_state=seed)

    return build


def _ours_variant(name):
    def build(seed):
        import smote_ann

        return getattr(smote_ann, name)(random_state=seed)

    return build


#: method name -> (library, neighbours, builder(seed) -> sampler or None for "no resampling")
SAMPLERS = {
    "raw": ("none", "-", lambda seed: None),
    "imblearn": ("imbalanced-learn", "exact", _imblearn("SMOTE")),
    "ours_exact": ("smote_ann", "exact", lambda seed: _ours_smote(seed, "flat")),
    "ours_ivf": ("smote_ann", "IVF", lambda seed: _ours_smote(seed, "ivf")),
    "ours_hnsw": ("smote_ann", "HNSW", lambda seed: _ours_smote(seed, "hnsw")),
    "imblearn_borderline": ("imbalanced-learn", "exact", _imblearn("BorderlineSMOTE")),
    "ours_borderline": ("smote_ann", "exact", _ours_variant("BorderlineSMOTE")),
    "imblearn_adasyn": ("imbalanced-learn", "exact", _imblearn("ADASYN")),
    "ours_adasyn": ("smote_ann", "exact", _ours_variant("ADASYN")),
}
RESAMPLING_METHODS = ["imblearn", "ours_exact", "ours_ivf", "ours_hnsw"]
VARIANT_METHODS = ["imblearn_borderline", "ours_borderline", "imblearn_adasyn", "ours_adasyn"]
DOWNSTREAM_METHODS = ["raw", "imblearn", "ours_exact", "ours_ivf", "ours_hnsw"]


def variants_available():
    """Variant methods present in both libraries (smote_ann's are being added)."""
    import imblearn.over_sampling
    import smote_ann

    out = []
    for name in ("BorderlineSMOTE", "ADASYN"):
        if hasattr(smote_ann, name) and hasattr(imblearn.over_sampling, name):
            suffix = "borderline" if name == "BorderlineSMOTE" else "adasyn"
            out += [f"imblearn_{suffix}", f"ours_{suffix}"]
    return out


def recall_at_k(X, queries, ind, kth_exact):
    """Tie-tolerant recall@k: share of returned neighbours no farther than the exact k-th.

    Distances are recomputed in float64 from the indices, so float32 round-off
    and equal-distance duplicates (frequent in real data) do not count as misses.
    """
    Q = np.asarray(queries, dtype=np.float64)
    d = np.sqrt(((np.asarray(X[ind], dtype=np.float64) - Q[:, None, :]) ** 2).sum(axis=2))
    ok = d <= kth_exact[:, None] * (1 + 1e-5) + 1e-6
    return float(np.minimum(ok.sum(axis=1), ind.shape[1]).mean() / ind.shape[1])


def exact_kth(X, queries, k):
    """Distance to the exact k-th neighbour (scikit-learn brute force, float64)."""
    from sklearn.neighbors import NearestNeighbors

    Xd = np.asarray(X, dtype=np.float64)
    ind = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(Xd).kneighbors(
        np.asarray(queries, dtype=np.float64), return_distance=False
    )
    Q = np.asarray(queries, dtype=np.float64)
    return np.sqrt(((Xd[ind] - Q[:, None, :]) ** 2).sum(axis=2)).max(axis=1)


def table_recall(sampler, X_class, seed, n=1000):
    """Recall@k of the neighbour search a sampler used, on (a sample of) one class.

    The sampler's neighbours estimator (``nn_k_``, with its random_state, so
    the same index) is refitted on the class outside any timing: smote_ann
    releases its fitted index before generating. None for exact searches
    (imbalanced-learn's NearestNeighbors, FaissNN flat).
    """
    from sklearn.base import clone

    nn = getattr(sampler, "nn_k_", None)
    if nn is None or getattr(nn, "index_type", "flat") == "flat":
        return None
    nn = clone(nn).fit(X_class)
    rng = np.random.default_rng(seed)
    rows = rng.choice(X_class.shape[0], size=min(n, X_class.shape[0]), replace=False)
    ind = nn.kneighbors(X_class[rows], n_neighbors=nn.n_neighbors, return_distance=False)
    return recall_at_k(X_class, X_class[rows], ind, exact_kth(X_class, X_class[rows], nn.n_neighbors))


def minority_scores(y_true, proba):
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support

    pred = (proba >= 0.5).astype(int)
    p, r, f, _ = precision_recall_fscore_support(
        y_true, pred, pos_label=1, average="binary", zero_division=0
    )
    return {"recall": r, "precision": p, "f1": f, "ap": average_precision_score(y_true, proba)}


# ==========================================================================
# Section 1: neighbours (one process per dataset x method)
# ==========================================================================
def _set_search(nn, nprobe=None, ef_search=None):
    """Change a fitted FaissNN's search breadth without rebuilding its index."""
    from smote_ann.neighbors import _faiss

    params = _faiss.SearchParameters(nn.nlist_, nprobe, ef_search)
    _faiss.set_search_parameters(nn.index_, params)
    nn.nprobe_, nn.ef_search_ = nprobe, ef_search


def nn_worker(probe, data, truth, method, sweep, n_queries, seed):
    """Build one index on the data at `data`, then query it for each sweep value."""
    if method == "sklearn":
        from sklearn.neighbors import NearestNeighbors
    else:
        from smote_ann import FaissNN
    (X,) = load_arrays(data, "X")
    queries = X[np.random.default_rng(seed).choice(X.shape[0], n_queries, replace=False)]
    probe.start()  # data loaded: the peak is the index and the search
    t0 = time.perf_counter()
    if method == "sklearn":
        nn = NearestNeighbors(n_neighbors=K).fit(X)
    else:
        nn = FaissNN(K, index_type=method, random_state=seed).fit(X)
    build_s = time.perf_counter() - t0
    default = {"ivf": getattr(nn, "nprobe_", None), "hnsw": getattr(nn, "ef_search_", None)}.get(method)
    if default is not None:
        sweep = sorted(set(sweep) | {int(default)})
    rows = []
    kth = np.load(truth) if Path(truth).exists() else None
    for value in sweep or [None]:
        if method == "ivf" and value is not None:
            _set_search(nn, nprobe=value)
        elif method == "hnsw" and value is not None:
            _set_search(nn, ef_search=value)
        t0 = time.perf_counter()
        ind = nn.kneighbors(queries, return_distance=False)
        query_s = time.perf_counter() - t0
        if method == "sklearn" and kth is None:
            Q = queries.astype(np.float64)
            kth = np.sqrt(((X[ind].astype(np.float64) - Q[:, None, :]) ** 2).sum(axis=2)).max(axis=1)
            np.save(truth, kth)
        rows.append({
            "param": None if value is None else int(value),
            "default": value is not None and value == default,
            "query_s": query_s,
            "us_per_query": 1e6 * query_s / n_queries,
            "recall": None if kth is None else recall_at_k(X, queries, ind, kth),
        })
    info = {
        "build_s": build_s,
        "peak_mib": probe.peak_bytes() / MIB,
        "memory_method": probe.method,
        "index": getattr(nn, "index_description_", None)
        or f"NearestNeighbors({nn._fit_method})",
    }
    return {"rows": [dict(info, **r) for r in rows]}


def run_neighbors(cfg, workdir, log):
    datasets = [(f"synthetic {n:,}x32", ("synthetic", n)) for n in cfg["nn_synthetic_sizes"]]
    reason = shared_data_reason()
    for name in cfg["nn_real"]:
        if reason:
            log(f"skipping {name}: {reason}")
        else:
            datasets.append((name, ("real", name)))

    records = []
    sweeps = {"sklearn": None, "flat": None, "ivf": cfg["nprobe"], "hnsw": cfg["ef_search"]}
    param_name = {"ivf": "nprobe", "hnsw": "ef_search"}
    for label, (kind, what) in datasets:
        if kind == "synthetic":
            X, _ = clustered_data(what, 32, seed=0)
        else:
            from sklearn.preprocessing import StandardScaler

            X, _ = load_real(what)
            X = StandardScaler().fit_transform(X).astype(np.float32)
        path = str(workdir / f"nn_{len(records)}_{label.split()[0].replace(':', '_')}")
        save_arrays(path, X=X)
        n, d = X.shape
        del X
        truth = path + ".truth.npy"
        n_queries = min(cfg["nn_queries"], n)
        for method, sweep in sweeps.items():
            if method == "ivf":
                # nprobe is capped by the number of lists of the default index.
                from smote_ann.neighbors._faiss import default_nlist

                sweep = [p for p in sweep if p <= default_nlist(n)]
            t0 = time.perf_counter()
            res = run_isolated(
                __file__, "nn_worker",
                dict(data=path, truth=truth, method=method, sweep=sweep,
                     n_queries=n_queries, seed=0),
                timeout=cfg["timeout"],
            )
            if "error" in res:
                log(f"  {label} {method}: FAILED {res['error']}")
                records.append({"dataset": label, "n": n, "d": d, "method": method,
                                "error": res["error"]})
                continue
            log(f"  {label} {method}: {time.perf_counter() - t0:.1f} s")
            for r in res["rows"]:
                records.append({
                    "dataset": label, "n": n, "d": d, "method": method,
                    "param_name": param_name.get(method), **r,
                })
    return records


def report_neighbors(records):
    ok = [r for r in records if "error" not in r]

    def setting(r):
        if r["param"] is None:
            return r["method"]
        return f"{r['method']} {r['param_name']}={r['param']}" + (" (default)" if r.get("default") else "")

    return markdown_table(ok, [
        ("dataset", "dataset"),
        ("index", setting),
        ("build s", lambda r: fmt(r["build_s"], ".2f")),
        ("µs / query", lambda r: fmt(r["us_per_query"], ".1f")),
        (f"recall@{K}", lambda r: fmt(r["recall"], ".3f")),
        ("peak MiB", lambda r: fmt(r["peak_mib"], ".0f")),
        ("FAISS / sklearn index", "index"),
    ])


# ==========================================================================
# Section 2: resampling end to end (one process per size x method)
# ==========================================================================
def resample_worker(probe, train, test, method, seed):
    """fit_resample once (timed, peak RSS over the import baseline), then score it."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    sampler = SAMPLERS[method][2](seed)  # imports the library
    warm_up(sampler, np.load(f"{train}.X.npy", mmap_mode="r").shape[1])
    probe.start()  # import baseline: the peak includes the input
    X, y = load_arrays(train, "X", "y")
    t0 = time.perf_counter()
    X_res, y_res = sampler.fit_resample(X, y)
    wall_s = time.perf_counter() - t0
    peak = probe.peak_bytes()
    in_bytes, out_bytes = X.nbytes + y.nbytes, X_res.nbytes + y_res.nbytes
    recall = table_recall(sampler, X[y == 1], seed)
    del sampler, X, y

    X_test, y_test = load_arrays(test, "X", "y")
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # lbfgs convergence on 1M+ rows: the score is what counts
        clf = LogisticRegression(max_iter=300).fit(X_res, y_res)
    scores = minority_scores(y_test, clf.predict_proba(X_test)[:, 1])
    return {
        "wall_s": wall_s,
        "peak_mib": peak / MIB,
        "input_mib": in_bytes / MIB,
        "output_mib": out_bytes / MIB,
        "peak_over_in_out": peak / (in_bytes + out_bytes),
        "n_out": int(X_res.shape[0]),
        "nn_recall": recall,
        "lr_ap": scores["ap"],
        "lr_f1": scores["f1"],
        "memory_method": probe.method,
    }


def run_resampling(cfg, workdir, log):
    methods = RESAMPLING_METHODS
    variants = variants_available()
    if not variants:
        log("variants (BorderlineSMOTE, ADASYN) not in smote_ann yet: skipped")
    X_test, y_test = clustered_data(cfg["rs_test_rows"], 32, seed=999)
    test = str(workdir / "rs_test")
    save_arrays(test, X=X_test, y=y_test)
    records = []
    for n in cfg["rs_sizes"]:
        X, y = clustered_data(n, 32, seed=0)
        train = str(workdir / f"rs_{n}")
        save_arrays(train, X=X, y=y)
        n_minority = int(y.sum())
        del X, y
        todo = methods + (variants if n <= cfg["rs_variant_max_rows"] else [])
        for method in todo:
            res = run_isolated(
                __file__, "resample_worker",
                dict(train=train, test=test, method=method, seed=0),
                timeout=cfg["timeout"],
            )
            lib, neigh, _ = SAMPLERS[method]
            rec = {"rows": n, "n_minority": n_minority, "method": method, "library": lib,
                   "neighbors": neigh, **res}
            if "error" in res:
                log(f"  {n:,} rows {method}: FAILED {res['error']}")
            else:
                log(f"  {n:,} rows {method}: {res['wall_s']:.2f} s, {res['peak_mib']:.0f} MiB")
            records.append(rec)
    # Ratios against imbalanced-learn's same algorithm at the same size.
    ref = {(r["rows"], _family(r["method"])): r for r in records
           if r["library"] == "imbalanced-learn" and "error" not in r}
    for r in records:
        base = ref.get((r["rows"], _family(r["method"])))
        if base is not None and "error" not in r:
            r["speedup_vs_imblearn"] = base["wall_s"] / r["wall_s"]
            r["memory_vs_imblearn"] = r["peak_mib"] / base["peak_mib"] if base["peak_mib"] else None
    return records


def _family(method):
    for fam in ("borderline", "adasyn"):
        if fam in method:
            return fam
    return "smote"


def report_resampling(records):
    ok = [r for r in records if "error" not in r]
    return markdown_table(ok, [
        ("rows", lambda r: f"{r['rows']:,}"),
        ("method", "method"),
        ("neighbours", "neighbors"),
        ("wall s", lambda r: fmt(r["wall_s"], ".2f")),
        ("× vs imblearn", lambda r: fmt(r.get("speedup_vs_imblearn"), ".2f")),
        ("peak MiB", lambda r: fmt(r["peak_mib"], ".0f")),
        ("peak / (in+out)", lambda r: fmt(r["peak_over_in_out"], ".2f")),
        (f"nn recall@{K}", lambda r: fmt(r["nn_recall"], ".3f") if r["nn_recall"] is not None
         else "exact"),
        ("LR AP", lambda r: fmt(r["lr_ap"], ".3f")),
        ("LR F1", lambda r: fmt(r["lr_f1"], ".3f")),
    ])


# ==========================================================================
# Section 3: downstream quality (in process: nothing here measures memory)
# ==========================================================================
def _classifiers(hgb_max_iter, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    return {
        "LogisticRegression": LogisticRegression(max_iter=1000),
        "HistGradientBoosting": HistGradientBoostingClassifier(
            max_iter=hgb_max_iter, random_state=seed
        ),
    }


def _subsample(X, y, n, seed):
    from sklearn.model_selection import train_test_split

    if n is None or n >= X.shape[0]:
        return X, y
    X, _, y, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=seed)
    return X, y


def run_downstream(cfg, workdir, log):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    reason = shared_data_reason()
    if reason:
        log(f"skipping the downstream section: {reason}")
        return []
    records = []
    for name, n_sub in cfg["ds_sets"].items():
        X_all, y_all = _subsample(*load_real(name), n_sub, seed=12345)
        label = name if n_sub is None else f"{name} ({n_sub // 1000}k subsample)"
        t_set = time.perf_counter()
        for seed in cfg["ds_seeds"]:
            X_tr, X_te, y_tr, y_te = train_test_split(
                X_all, y_all, test_size=0.3, stratify=y_all, random_state=seed
            )
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
            for method in DOWNSTREAM_METHODS:
                sampler = SAMPLERS[method][2](seed)
                t0 = time.perf_counter()
                X_fit, y_fit = (X_tr, y_tr) if sampler is None else sampler.fit_resample(X_tr, y_tr)
                resample_s = time.perf_counter() - t0
                recall = None if sampler is None else table_recall(sampler, X_tr[y_tr == 1], seed)
                for clf_name, clf in _classifiers(cfg["hgb_max_iter"], seed).items():
                    # One thread: the classifiers are not what is measured, and
                    # OpenMP spin-waiting on a shared, busy machine is erratic.
                    with warnings.catch_warnings(), threadpool_limits(1):
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        clf.fit(X_fit, y_fit)
                    scores = minority_scores(y_te, clf.predict_proba(X_te)[:, 1])
                    records.append({
                        "dataset": label, "n": int(X_all.shape[0]), "d": int(X_all.shape[1]),
                        "n_minority": int(y_all.sum()), "seed": seed, "method": method,
                        "classifier": clf_name, "resample_s": resample_s,
                        "nn_recall": recall, **scores,
                    })
        log(f"  {label}: {time.perf_counter() - t_set:.1f} s")
    return records


def summarise_downstream(records):
    """Mean and std over seeds per (dataset, classifier, method)."""
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["classifier"], r["method"]), []).append(r)
    out = []
    for (dataset, clf, method), rs in groups.items():
        row = {"dataset": dataset, "classifier": clf, "method": method, "n_seeds": len(rs)}
        for key in ("recall", "precision", "f1", "ap", "resample_s"):
            v = np.array([r[key] for r in rs], dtype=float)
            row[key], row[key + "_std"] = float(v.mean()), float(v.std())
        rec = [r["nn_recall"] for r in rs if r["nn_recall"] is not None]
        row["nn_recall"] = float(np.mean(rec)) if rec else None
        out.append(row)
    return out


def report_downstream(summary):
    def pm(key):
        return lambda r: f"{r[key]:.3f} ± {r[key + '_std']:.3f}"

    return markdown_table(summary, [
        ("dataset", "dataset"),
        ("classifier", "classifier"),
        ("training data", "method"),
        ("resample s", lambda r: "–" if r["method"] == "raw" else fmt(r["resample_s"], ".3f")),
        (f"nn recall@{K}", lambda r: "–" if r["method"] == "raw"
         else ("exact" if r["nn_recall"] is None else fmt(r["nn_recall"], ".3f"))),
        ("minority recall", pm("recall")),
        ("precision", pm("precision")),
        ("F1", pm("f1")),
        ("average precision", pm("ap")),
    ])


# ==========================================================================
# Plots
# ==========================================================================
def plot_all(results, out, prefix):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    nn = [r for r in results.get("neighbors", []) if "error" not in r and r["recall"] is not None]
    if nn:
        datasets = list(dict.fromkeys(r["dataset"] for r in nn))
        ncols = min(3, len(datasets))
        nrows = math.ceil(len(datasets) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4 * nrows), squeeze=False)
        styles = {"sklearn": ("k", "s"), "flat": ("tab:blue", "D"), "ivf": ("tab:orange", "o"),
                  "hnsw": ("tab:green", "^")}
        for ax, ds in zip(axes.flat, datasets):
            for method, (color, marker) in styles.items():
                rs = [r for r in nn if r["dataset"] == ds and r["method"] == method]
                if not rs:
                    continue
                x = [r["us_per_query"] for r in rs]
                y = [r["recall"] for r in rs]
                label = {"sklearn": "sklearn NearestNeighbors", "flat": "FaissNN flat",
                         "ivf": "FaissNN IVF (nprobe)", "hnsw": "FaissNN HNSW (ef_search)"}[method]
                ax.plot(x, y, color=color, marker=marker, label=label)
                for r in rs:
                    if r["param"] is not None:
                        ax.annotate(str(r["param"]), (r["us_per_query"], r["recall"]),
                                    textcoords="offset points", xytext=(3, -9), fontsize=7)
            ax.set_xscale("log")
            ax.set_title(ds, fontsize=10)
            ax.set_xlabel("query time per point (µs, log)")
            ax.set_ylabel(f"recall@{K} vs exact")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(datasets):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7, loc="lower right")
        fig.suptitle("Neighbour search: recall vs query time (2 cores)")
        fig.tight_layout()
        path = out / f"{prefix}_neighbors_recall_vs_time.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    rs = [r for r in results.get("resampling", []) if "error" not in r]
    if rs:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for method in dict.fromkeys(r["method"] for r in rs):
            pts = sorted((r["rows"], r["wall_s"], r["peak_mib"]) for r in rs if r["method"] == method)
            style = "--" if method.startswith("imblearn") else "-"
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=method)
            ax2.plot([p[0] for p in pts], [p[2] for p in pts], style, marker="o", label=method)
        ax1.set(xscale="log", yscale="log", xlabel="rows (32 features, 10% minority)",
                ylabel="fit_resample wall time (s)", title="Wall time")
        ax2.set(xscale="log", yscale="log", xlabel="rows (32 features, 10% minority)",
                ylabel="peak RSS over import baseline (MiB)", title="Peak memory")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3, which="both")
        ax1.legend(fontsize=8)
        fig.suptitle("Resampling to balance: smote_ann vs imbalanced-learn")
        fig.tight_layout()
        path = out / f"{prefix}_resampling_scaling.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    summary = results.get("downstream_summary", [])
    if summary:
        datasets = list(dict.fromkeys(r["dataset"] for r in summary))
        clfs = list(dict.fromkeys(r["classifier"] for r in summary))
        methods = list(dict.fromkeys(r["method"] for r in summary))
        fig, axes = plt.subplots(len(clfs), 1, figsize=(max(7, 2.2 * len(datasets)), 3.4 * len(clfs)),
                                 squeeze=False)
        width = 0.8 / len(methods)
        for ax, clf in zip(axes[:, 0], clfs):
            for j, method in enumerate(methods):
                vals = [next((r for r in summary if r["dataset"] == ds and r["classifier"] == clf
                              and r["method"] == method), None) for ds in datasets]
                x = np.arange(len(datasets)) + (j - (len(methods) - 1) / 2) * width
                ax.bar(x, [v["ap"] if v else 0 for v in vals], width,
                       yerr=[v["ap_std"] if v else 0 for v in vals], capsize=2, label=method)
            ax.set_xticks(np.arange(len(datasets)))
            ax.set_xticklabels(datasets, fontsize=8)
            ax.set_ylabel("average precision (test)")
            ax.set_title(clf, fontsize=10)
            ax.grid(alpha=0.3, axis="y")
        axes[0, 0].legend(fontsize=7, ncol=len(methods))
        fig.suptitle("Downstream: minority average precision, mean ± std over seeds")
        fig.tight_layout()
        path = out / f"{prefix}_downstream.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


# ==========================================================================
# Main
# ==========================================================================
SECTIONS = ("neighbors", "resampling", "downstream")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small profile (< 2 min on 2 cores)")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="output folder (default: benchmarks/results)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {list(SECTIONS)}")

    profile = "quick" if args.quick else "full"
    cfg = PROFILES[profile]
    prefix = f"suite_{profile}"
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    results = {"profile": profile, "config": cfg, "environment": environment(), "k": K}
    md = [f"# smote_ann benchmark suite ({profile} profile)", "",
          f"Command: `python benchmarks/suite.py{' --quick' if args.quick else ''}`  ",
          f"Machine: {results['environment']['cpu_count']} cores, "
          f"load average {results['environment'].get('loadavg_1min_at_start', float('nan')):.1f} "
          "at start (shared machine: timings are indicative).", ""]
    with tempfile.TemporaryDirectory(prefix="smote_ann_bench_") as tmp:
        workdir = Path(tmp)
        if "neighbors" in sections:
            log("section 1: neighbours")
            results["neighbors"] = run_neighbors(cfg, workdir, log)
            write_records(args.out / f"{prefix}_neighbors.csv", results["neighbors"])
            md += ["## 1. Neighbour search", "",
                   f"{K} neighbours of {cfg['nn_queries']:,} query rows drawn from the indexed data; "
                   "recall@k against exact search (tie-tolerant); peak RSS of building and "
                   "querying, over the loaded data.", "",
                   report_neighbors(results["neighbors"]), ""]
        if "resampling" in sections:
            log("section 2: resampling")
            results["resampling"] = run_resampling(cfg, workdir, log)
            write_records(args.out / f"{prefix}_resampling.csv", results["resampling"])
            md += ["## 2. Resampling end to end", "",
                   "Synthetic clustered data, 32 float32 features, ~10% minority, balanced; "
                   "each row its own process. Peak RSS over the import baseline (input "
                   "included). nn recall: the approximate neighbour table against exact "
                   "search. LR AP / F1: LogisticRegression trained on the output, scored "
                   f"on {cfg['rs_test_rows']:,} held-out rows.", "",
                   report_resampling(results["resampling"]), ""]
        if "downstream" in sections:
            log("section 3: downstream")
            results["downstream"] = run_downstream(cfg, workdir, log)
            results["downstream_summary"] = summarise_downstream(results["downstream"])
            write_records(args.out / f"{prefix}_downstream.csv", results["downstream"])
            md += ["## 3. Downstream quality", "",
                   "Stratified 70/30 split, standardised; the training split resampled (or "
                   "not), the test split untouched; minority-class scores at threshold 0.5, "
                   f"mean ± std over seeds {cfg['ds_seeds']}.", "",
                   report_downstream(results["downstream_summary"]), ""]
    if not args.no_plots:
        log("plots")
        results["plots"] = [p.name for p in plot_all(results, args.out, prefix)]
        md += [f"![{p}]({p})" for p in results["plots"]]
    results["total_s"] = time.perf_counter() - t_start
    md += ["", f"Total: {results['total_s']:.0f} s."]
    (args.out / f"{prefix}.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / f"{prefix}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    log(f"done: {args.out}/{prefix}.*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
