"""BorderlineSMOTE and ADASYN: smote_ann (FAISS IVF) vs imbalanced-learn.

On clustered float32 data (32 features, 10 % minority) each configuration
resamples the training split in its own Python process and reports:

- wall time of ``fit_resample`` and its peak RSS over the process baseline
  (input included, measured from the kernel's high-water mark);
- for ours with an approximate index: recall@m of the whole-dataset search
  (the expensive one: every minority row against all rows) against exact
  search on 2,000 minority rows, and how far the danger rows (Borderline)
  or the per-row counts (ADASYN) are from imbalanced-learn's;
- the downstream score of a LogisticRegression trained on the output and
  evaluated on a held-out stratified split: average precision and F1 of the
  minority class.

Usage::

    python benchmarks/bench_variants.py               # quick: 100k rows
    nice -n 10 python benchmarks/bench_variants.py --n-samples 1000000

Writes ``results/variants_<n>.{md,json,csv}``.
"""

# License: BSD-3-Clause

import argparse
import json
import os
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
    markdown_table,
    run_isolated,
    save_arrays,
    write_records,
)

HERE = Path(__file__).resolve().parent
M_NEIGHBORS, K_NEIGHBORS = 10, 5  # imbalanced-learn's defaults (plus the sample itself)


# ==========================================================================
# Samplers: (library, variant, neighbours) -> builder(seed)
# ==========================================================================
def _ours(variant, index_type, seed):
    from smote_ann import ADASYN, BorderlineSMOTE, FaissNN

    def nn(k):
        if index_type == "flat":
            return k  # the default: exact FaissNN with k + 1 neighbours
        return FaissNN(n_neighbors=k + 1, index_type=index_type, random_state=seed)

    if variant == "adasyn":
        return ADASYN(n_neighbors=nn(K_NEIGHBORS), random_state=seed)
    return BorderlineSMOTE(
        k_neighbors=nn(K_NEIGHBORS), m_neighbors=nn(M_NEIGHBORS), kind=variant, random_state=seed
    )


def _imblearn(variant, seed):
    from imblearn.over_sampling import ADASYN, BorderlineSMOTE

    if variant == "adasyn":
        return ADASYN(random_state=seed)
    return BorderlineSMOTE(kind=variant, random_state=seed)


def build(library, variant, index_type, seed):
    if library == "none":
        return None
    if library == "imbalanced-learn":
        return _imblearn(variant, seed)
    return _ours(variant, index_type, seed)


# ==========================================================================
# Worker (runs in its own process)
# ==========================================================================
def whole_data_recall(sampler, X, y, seed, n=2000):
    """Tie-tolerant recall@m of the approximate whole-dataset search, on n minority rows."""
    from smote_ann import FaissNN

    from sklearn.base import clone

    nn = getattr(sampler, "nn_m_", None) or getattr(sampler, "nn_", None)
    if nn is None or getattr(nn, "index_type", "flat") == "flat":
        return None
    nn = clone(nn).fit(X)  # the sampler's own fitted clone was released: same seed, same index
    rng = np.random.default_rng(seed)
    rows = rng.choice(np.flatnonzero(y == 1), size=n, replace=False)
    k = nn.n_neighbors
    ind = nn.kneighbors(X[rows], return_distance=False)
    exact = FaissNN(n_neighbors=k, index_type="flat").fit(X)
    dist, _ = exact.kneighbors(X[rows])
    d = np.linalg.norm(X[ind].astype(np.float64) - X[rows][:, None, :], axis=2)
    return float((d <= dist[:, -1:] * (1 + 1e-4) + 1e-6).sum(axis=1).clip(max=k).mean() / k)


def worker(probe, data, library, variant, index_type, seed, out):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, f1_score

    sampler = build(library, variant, index_type, seed)  # imports the library
    X, y = load_arrays(data + ".train", "X", "y")
    probe.start()  # baseline: libraries and input loaded
    t0 = time.perf_counter()
    if sampler is None:
        X_res, y_res = X, y
    else:
        X_res, y_res = sampler.fit_resample(X, y)
    wall_s = time.perf_counter() - t0
    peak = probe.peak_bytes()
    result = {
        "wall_s": wall_s,
        "peak_mib": peak / MIB,
        "n_out": int(X_res.shape[0]),
        "n_synthetic": int(X_res.shape[0] - X.shape[0]),
        "memory_method": probe.method,
    }
    if sampler is not None:
        danger = getattr(sampler, "in_danger_indices", {}).get(1)
        if danger is not None:
            np.save(out + ".danger.npy", np.asarray(danger))
            result["n_danger"] = int(len(danger))
        counts = getattr(sampler, "synthetic_counts_", {}).get(1)
        if counts is not None:
            np.save(out + ".counts.npy", counts)
        if library == "smote_ann":
            result["recall_whole"] = whole_data_recall(sampler, X, y, seed)
    del sampler

    X_test, y_test = load_arrays(data + ".test", "X", "y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at max_iter; the score is what counts
        clf = LogisticRegression(max_iter=300).fit(X_res, y_res)
    proba = clf.predict_proba(X_test)[:, 1]
    result["lr_ap"] = float(average_precision_score(y_test, proba))
    result["lr_f1"] = float(f1_score(y_test, proba >= 0.5))
    return result


# ==========================================================================
# Driver
# ==========================================================================
def imblearn_adasyn_counts(data, seed):
    """imbalanced-learn's ADASYN per-row counts for the minority (its own formula)."""
    from imblearn.over_sampling import ADASYN

    X, y = load_arrays(data + ".train", "X", "y")
    rows = np.flatnonzero(y == 1)
    nn = ADASYN(random_state=seed)
    nn._validate_estimator()
    nns = nn.nn_.fit(X).kneighbors(X[rows], return_distance=False)[:, 1:]
    ratio = np.sum(y[nns] != 1, axis=1) / K_NEIGHBORS
    ratio /= ratio.sum()
    return np.rint(ratio * (np.sum(y == 0) - rows.size)).astype(int)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=100_000,
                        help="training rows (default 100000; the issue's size is 1000000)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="held-out rows (default n_samples / 4)")
    parser.add_argument("--n-features", type=int, default=32)
    parser.add_argument("--variants", nargs="+", default=["borderline-1", "adasyn"],
                        choices=["borderline-1", "borderline-2", "adasyn"])
    parser.add_argument("--exact", action="store_true",
                        help="also run ours with exact FaissNN (default at <= 200k rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    n, seed = args.n_samples, args.seed
    n_test = args.n_test or n // 4
    exact = args.exact or n <= 200_000
    args.out.mkdir(parents=True, exist_ok=True)

    configs = [("none", "-", "-")]
    for variant in args.variants:
        configs.append(("imbalanced-learn", variant, "exact (sklearn)"))
        if exact:
            configs.append(("smote_ann", variant, "flat"))
        configs.append(("smote_ann", variant, "ivf"))

    records = []
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "data")
        from sklearn.model_selection import train_test_split

        X, y = clustered_data(n + n_test, args.n_features, minority=0.1, seed=seed)
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=n_test, stratify=y, random_state=seed
        )
        save_arrays(data + ".train", X=X_tr, y=y_tr)
        save_arrays(data + ".test", X=X_te, y=y_te)
        print(f"train {X_tr.shape} {X_tr.dtype}, minority {y_tr.mean():.3f}; test {X_te.shape}",
              flush=True)
        del X, y, X_tr, X_te, y_tr, y_te

        for i, (library, variant, index_type) in enumerate(configs):
            out = str(Path(tmp) / f"run{i}")
            kwargs = dict(data=data, library=library, variant=variant,
                          index_type=index_type, seed=seed, out=out)
            t0, load_before = time.perf_counter(), os.getloadavg()[0]
            res = run_isolated(HERE / "bench_variants.py", "worker", kwargs, timeout=args.timeout)
            print(f"  {library:16s} {variant:12s} {index_type:15s} "
                  f"{res.get('wall_s', float('nan')):8.1f} s  ({time.perf_counter() - t0:.0f} s "
                  f"with scoring) {res.get('error', '')}", flush=True)
            record = {"n": n, "d": args.n_features, "library": library, "variant": variant,
                      "neighbors": index_type, **res,
                      "loadavg": (load_before + os.getloadavg()[0]) / 2}
            for name in ("danger", "counts"):
                path = Path(out + f".{name}.npy")
                if path.exists():
                    record["_" + name] = np.load(path)
            records.append(record)

        if "adasyn" in args.variants:
            ref_counts = imblearn_adasyn_counts(data, seed)

    # agreement with imbalanced-learn: danger rows (Jaccard), ADASYN counts (L1 / total)
    refs = [r for r in records if r["library"] == "imbalanced-learn"]
    ref_danger = {r["variant"]: r.get("_danger") for r in refs}
    for r in records:
        if r["library"] != "smote_ann":
            continue
        ref = ref_danger.get(r["variant"])
        if r.get("_danger") is not None and ref is not None:
            a, b = set(r["_danger"].tolist()), set(ref.tolist())
            r["agreement"] = len(a & b) / max(1, len(a | b))
        if r.get("_counts") is not None:
            r["agreement"] = 1 - np.abs(r["_counts"] - ref_counts).sum() / (2 * ref_counts.sum())
    for r in records:
        r.pop("_danger", None)
        r.pop("_counts", None)

    ref_time = {r["variant"]: r.get("wall_s") for r in refs}
    ref_ap = {r["variant"]: r.get("lr_ap") for r in refs}
    for r in records:
        if r["library"] == "smote_ann" and ref_time.get(r["variant"]) and r.get("wall_s"):
            r["speedup"] = ref_time[r["variant"]] / r["wall_s"]
            r["delta_ap"] = r["lr_ap"] - ref_ap[r["variant"]]

    table = markdown_table(records, [
        ("variant", "variant"),
        ("library", "library"),
        ("neighbours", "neighbors"),
        ("fit_resample s", lambda r: fmt(r.get("wall_s"), ".1f")),
        ("speed-up", lambda r: fmt(r.get("speedup"), ".1f") + ("×" if r.get("speedup") else "")),
        ("peak RSS MiB", lambda r: fmt(r.get("peak_mib"), ".0f")),
        ("synthetic rows", lambda r: fmt(r.get("n_synthetic"), "d")),
        ("recall@m whole data", lambda r: fmt(r.get("recall_whole"), ".3f")),
        ("agreement with imblearn", lambda r: fmt(r.get("agreement"), ".3f")),
        ("LR avg precision", lambda r: fmt(r.get("lr_ap"), ".4f")),
        ("Δ AP vs imblearn", lambda r: fmt(r.get("delta_ap"), "+.4f")),
        ("LR minority F1", lambda r: fmt(r.get("lr_f1"), ".4f")),
        ("load avg", lambda r: fmt(r.get("loadavg"), ".1f")),
    ])
    args_used = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/bench_variants.py " + " ".join(args_used)
    notes = (
        f"{n:,} training rows x {args.n_features} float32 features (clustered, 10 % minority), "
        f"{n_test:,} held-out rows. Peak RSS over the process baseline with the input loaded. "
        "Agreement: Jaccard index of the danger rows (Borderline), or 1 - L1 distance / 2N of "
        "the per-row counts (ADASYN), against imbalanced-learn's. Recall: tie-tolerant recall "
        "of the approximate whole-dataset search on 2,000 minority rows. Load avg: the machine's "
        f"1-minute load average around the run ({os.cpu_count()} cores; other jobs share them)."
    )
    md = f"# BorderlineSMOTE / ADASYN benchmark\n\n`{command}`\n\n{notes}\n\n{table}\n"
    print("\n" + md)
    stem = args.out / f"variants_{n}"
    stem.with_suffix(".md").write_text(md)
    write_records(str(stem) + ".csv", records)
    with open(str(stem) + ".json", "w") as f:
        json.dump({"command": command, "environment": environment(), "records": records}, f,
                  indent=2, default=float)
    return records


if __name__ == "__main__":
    main()
