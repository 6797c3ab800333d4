"""SMOTE at scale: end to end against imbalanced-learn, from 1M to 10M (or 20M) rows.

::

    python benchmarks/bench_scale.py                      # the 1M and SUSY-sized jobs
    python benchmarks/bench_scale.py --jobs 1m susy 10m   # + 10M x 32 (ours and imblearn+FaissNN)
    python benchmarks/bench_scale.py --jobs 20m           # 20M x 50, 1 % minority (opt-in)

Jobs (clustered float32 data from ``_common.clustered_data``, balanced 1:1):

- ``1m``:   1,000,000 x 32, 10 % minority
- ``susy``: 2,881,796 x 18, 169,623 minority (the size of the SUSY IR16 job)
- ``10m``:  10,000,000 x 32, 10 % minority
- ``20m``:  20,000,000 x 50, 1 % minority

Configurations, each in its own process (wall time of ``fit_resample``, peak
RSS over the import baseline, the share of the time spent in the neighbour
search):

- ``imblearn``: ``imblearn.over_sampling.SMOTE`` (exact scikit-learn neighbours)
- ``imblearn_sklearnex``: the same after ``sklearnex.patch_sklearn()``
  (skipped when scikit-learn-intelex is not installed)
- ``imblearn_faissnn``: imbalanced-learn's SMOTE with ``FaissNN(6, index_type="ivf")``
- ``ours_exact``: ``smote_ann.SMOTE()`` (exact FaissNN)
- ``ours_ivf``: ``smote_ann.SMOTE(k_neighbors=FaissNN(6, index_type="ivf"))``

The exact configurations (imbalanced-learn's, with or without
scikit-learn-intelex, and ours) are skipped on the 10M and 20M jobs (an exact
graph of 1M rows is 10^12 distances: many minutes to more than an hour) unless
``--configs`` names them. Recall of the
approximate configurations: recall@5 of the minority's neighbour graph on 1000
sampled rows against an exact search (``smote_ann.measure_recall``).

Results: ``results/scale.json``, ``results/scale.md`` and the plot of time
against rows ``results/scale_time.png`` (rows of the jobs and configurations
not run this time are kept from earlier runs).
"""

# License: BSD-3-Clause

import argparse
import importlib.util
import json
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
)

HERE = Path(__file__).resolve().parent
K = 5
JOBS = {
    "1m": dict(rows=1_000_000, features=32, minority=0.1),
    "susy": dict(rows=2_881_796, features=18, minority=169_623 / 2_881_796),
    "10m": dict(rows=10_000_000, features=32, minority=0.1),
    "20m": dict(rows=20_000_000, features=50, minority=0.01),
}
CONFIGS = ["imblearn", "imblearn_sklearnex", "imblearn_faissnn", "ours_exact", "ours_ivf"]
SLOW_ON_LARGE = {"imblearn", "imblearn_sklearnex", "ours_exact"}


def _uses_faiss(config):
    return config.startswith("ours") or config == "imblearn_faissnn"


def _sampler(config):
    # imbalanced-learn's own configurations never import smote_ann (nor FAISS
    # and its OpenMP runtime): measured so, plain imblearn ran 1.8x faster
    if config.startswith("imblearn"):
        if config == "imblearn_sklearnex":
            from sklearnex import patch_sklearn

            patch_sklearn(verbose=False)
        from imblearn.over_sampling import SMOTE

        if config == "imblearn_faissnn":
            from smote_ann import FaissNN

            return SMOTE(random_state=0, k_neighbors=FaissNN(K + 1, index_type="ivf",
                                                             random_state=0))
        return SMOTE(random_state=0, k_neighbors=K)
    from smote_ann import SMOTE, FaissNN

    if config == "ours_ivf":
        return SMOTE(random_state=0, k_neighbors=FaissNN(K + 1, index_type="ivf", random_state=0))
    return SMOTE(random_state=0, k_neighbors=K)


def _timed(owner, name, spent, phase):
    """Wrap ``owner.name`` so that its calls add their wall time to ``spent[phase]``."""
    real = getattr(owner, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[phase] += time.perf_counter() - t0

    setattr(owner, name, timed)


# Phases of our fit_resample, in the order they run: validation of X and y,
# the neighbour search (fit and kneighbors of the neighbour estimators), the
# rest of the planning (the random plan of bases and partners), the
# allocation of the output, the copy of the original rows into it, and the
# generation of the synthetic rows (interpolation, written in place).
PHASES = ["validation", "neighbours", "plan", "allocation", "copy", "generation"]


def _phase_clock(config):
    """Seconds spent in each phase, summed over calls (imbalanced-learn's
    configurations: the neighbour search only)."""
    from sklearn.neighbors import NearestNeighbors

    spent = dict.fromkeys(PHASES, 0.0)
    owners = [NearestNeighbors]
    if _uses_faiss(config):
        from smote_ann import FaissNN

        owners.append(FaissNN)
    for cls in owners:
        for name in ("fit", "kneighbors"):
            _timed(cls, name, spent, "neighbours")
    if config.startswith("ours"):
        import numpy

        from smote_ann import _generation, _sinks, over_sampling

        _timed(over_sampling, "check_sampler_input", spent, "validation")
        _timed(over_sampling.SMOTE, "_make_plans", spent, "plan")  # minus the search, below
        _timed(_generation.Resampling, "fill", spent, "copy")  # minus the generation
        _timed(_generation, "fill_synthetic", spent, "generation")

        real_empty = numpy.empty

        def to_arrays(resampling):  # _sinks.to_arrays with its allocation timed
            t0 = time.perf_counter()
            X_out = real_empty((resampling.n_rows, resampling.n_features), resampling.dtype)
            y_out = real_empty(resampling.n_rows, resampling.y_dtype)
            spent["allocation"] += time.perf_counter() - t0
            resampling.fill(X_out, y_out)
            return X_out, y_out

        _sinks.to_arrays = over_sampling.to_arrays = to_arrays
    return spent


def _phase_shares(spent, wall):
    """Each phase's share of the wall time (nested phases made exclusive)."""
    seconds = dict(spent)
    seconds["plan"] = max(0.0, seconds["plan"] - seconds["neighbours"])
    seconds["copy"] = max(0.0, seconds["copy"] - seconds["generation"])
    seconds["other"] = max(0.0, wall - sum(seconds.values()))
    return seconds


def worker(probe, data, config):
    """One fit_resample: wall time, peak RSS, neighbour-search share, recall."""
    sampler = _sampler(config)
    spent = _phase_clock(config)
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    n_features = np.load(f"{data}.X.npy", mmap_mode="r").shape[1]
    warm = rng.normal(size=(400, n_features)).astype(np.float32)
    clone(sampler).fit_resample(warm, (np.arange(400) % 10 == 0).astype(np.int8))
    spent.update(dict.fromkeys(spent, 0.0))
    probe.start()
    X, y = load_arrays(data, "X", "y")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        X_res, y_res = sampler.fit_resample(X, y)
    wall = time.perf_counter() - t0
    result = {
        "wall_s": wall, "neighbours_s": spent["neighbours"], "peak_bytes": probe.peak_bytes(),
        "phases_s": _phase_shares(spent, wall) if config.startswith("ours") else None,
        "input_bytes": X.nbytes + y.nbytes, "output_bytes": X_res.nbytes + y_res.nbytes,
        "n_out": int(len(y_res)),
    }
    del X_res, y_res
    if config in ("ours_ivf", "imblearn_faissnn"):
        from smote_ann import FaissNN, measure_recall

        X_min = X[y == 1]
        nn = FaissNN(K + 1, index_type="ivf", random_state=0).fit(X_min)
        result["recall"] = measure_recall(nn, X_min, n_neighbors=K, random_state=0).recall
    return result


def partition_worker(probe, data, factor):
    """The pruned exact graph of the minority with sqrt(n) * factor lists."""
    import math

    from smote_ann.neighbors import _faiss, _graph

    X, y = load_arrays(data, "X", "y")
    X = np.ascontiguousarray(X[y == 1], dtype=np.float32)
    n_lists = max(1, round(math.sqrt(len(X)) * factor))
    t0 = time.perf_counter()
    part = _graph.Partition(X, _faiss.kmeans_centroids(X, n_lists, seed=0))
    t1 = time.perf_counter()
    _graph.pruned_exact_search(X, part, X, K + 1, home=part.home)
    return {"n_lists": n_lists, "partition_s": t1 - t0, "search_s": time.perf_counter() - t1}


def partition_sweep(args, log):
    """Time of the exact graph against the number of lists of the partition."""
    spec = JOBS["susy"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="smote_ann_scale_") as tmp:
        X, y = clustered_data(spec["rows"], spec["features"], minority=spec["minority"])
        save_arrays(f"{tmp}/train", X=X, y=y)
        del X, y
        for factor in (0.25, 0.5, 1, 2, 4):
            res = run_isolated(__file__, "partition_worker",
                               dict(data=f"{tmp}/train", factor=factor))
            rows.append({"factor": factor, **res})
            log(f"  lists = sqrt(n) x {factor}: {res}")
    table = markdown_table(rows, [
        ("lists / sqrt(n)", lambda r: str(r["factor"])),
        ("lists", lambda r: str(r.get("n_lists", "–"))),
        ("partition s", lambda r: fmt(r.get("partition_s"), ".2f")),
        ("search s", lambda r: fmt(r.get("search_s"), ".2f")),
        ("total s", lambda r: fmt(r.get("partition_s", 0) + r.get("search_s", 0), ".2f")),
    ])
    md = ("# Exact graph of the SUSY-sized minority (170k x 18) against the partition's "
          "lists\n\nCommand: `python benchmarks/bench_scale.py --partition-sweep`\n\n"
          + table + "\n")
    print(md)
    (args.out / "scale_partition.md").write_text(md)
    (args.out / "scale_partition.json").write_text(json.dumps(rows, indent=1))


def plot(records, path):
    """Wall time against output rows, one line per configuration (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for config in CONFIGS:
        points = sorted((r["n_out"], r["wall_s"]) for r in records
                        if r["config"] == config and "wall_s" in r)
        if points:
            ax.plot(*zip(*points), marker="o", label=config)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows out (originals + synthetic)")
    ax.set_ylabel("fit_resample wall time, s")
    ax.set_title("SMOTE end to end, balanced 1:1 (2 cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=["1m", "susy"])
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=None,
                        help="configurations to run (default: all that finish within an "
                             "hour; see the module docstring)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--partition-sweep", action="store_true",
                        help="only time the exact graph of the SUSY-sized minority against "
                             "the number of lists of its partition")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    have_sklearnex = importlib.util.find_spec("sklearnex") is not None
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", file=sys.stderr, flush=True)

    if args.partition_sweep:
        partition_sweep(args, log)
        return 0
    store = args.out / "scale.json"
    saved = json.loads(store.read_text()) if store.exists() else {"records": []}
    def configs_of(job):
        return args.configs or [c for c in CONFIGS
                                if not (job in ("10m", "20m") and c in SLOW_ON_LARGE)]

    run = {(job, config) for job in args.jobs for config in configs_of(job)}
    records = [r for r in saved["records"] if (r["job"], r["config"]) not in run]
    for job in args.jobs:
        spec = JOBS[job]
        configs = configs_of(job)
        with tempfile.TemporaryDirectory(prefix="smote_ann_scale_") as tmp:
            data = f"{tmp}/train"
            X, y = clustered_data(spec["rows"], spec["features"], minority=spec["minority"])
            save_arrays(data, X=X, y=y)
            n_min = int(y.sum())
            del X, y
            log(f"{job}: {spec['rows']:,} x {spec['features']}, {n_min:,} minority")
            for config in configs:
                if config == "imblearn_sklearnex" and not have_sklearnex:
                    records.append({"job": job, "config": config,
                                    "error": "scikit-learn-intelex not installed"})
                    continue
                res = run_isolated(__file__, "worker", dict(data=data, config=config),
                                   timeout=args.timeout)
                records.append({"job": job, "config": config, "rows": spec["rows"],
                                "features": spec["features"], "minority": n_min, **res})
                log(f"  {config}: {res.get('wall_s', res.get('error'))}")
    for r in records:
        ref = next((q for q in records if q["job"] == r["job"] and q["config"] == "imblearn"
                    and "wall_s" in q), None)
        if "wall_s" in r and ref is not None:
            r["speedup_vs_imblearn"] = ref["wall_s"] / r["wall_s"]
    order = {job: i for i, job in enumerate(JOBS)}
    records.sort(key=lambda r: (order[r["job"]], CONFIGS.index(r["config"])))
    table = markdown_table(records, [
        ("job", lambda r: r["job"]),
        ("configuration", lambda r: r["config"]),
        ("wall s", lambda r: fmt(r.get("wall_s"), ".2f") if "wall_s" in r else r["error"]),
        ("× vs imblearn", lambda r: fmt(r.get("speedup_vs_imblearn"), ".1f")),
        ("neighbour search share", lambda r: fmt(r["neighbours_s"] / r["wall_s"], ".0%")
         if "wall_s" in r else "–"),
        ("peak MiB over baseline", lambda r: fmt(r.get("peak_bytes", 0) / MIB, ".0f")
         if "peak_bytes" in r else "–"),
        ("peak / (in + 1.25 out)", lambda r: fmt(
            r["peak_bytes"] / (r["input_bytes"] + 1.25 * r["output_bytes"]), ".2f")
         if "peak_bytes" in r else "–"),
        ("recall@5", lambda r: fmt(r.get("recall"), ".3f") if "recall" in r else
         ("exact" if "wall_s" in r else "–")),
    ])
    timed = [r for r in records if r.get("phases_s")]
    phase_table = markdown_table(timed, [
        ("job", lambda r: r["job"]),
        ("configuration", lambda r: r["config"]),
        ("wall s", lambda r: fmt(r["wall_s"], ".2f")),
        *[(phase, lambda r, phase=phase: "{:.2f} s ({:.0%})".format(
            r["phases_s"][phase], r["phases_s"][phase] / r["wall_s"]))
          for phase in PHASES + ["other"]],
    ]) if timed else "(no phase timings recorded)"
    env = environment()
    md = "\n".join([
        "# SMOTE at scale, end to end (balanced 1:1, clustered float32 data)",
        "",
        f"Command: `python benchmarks/bench_scale.py --jobs {' '.join(args.jobs)}` "
        "(rows not run by it come from earlier runs of the script).  ",
        f"Machine: {env['cpu_count']} cores, load average "
        f"{env.get('loadavg_1min_at_start', 0):.1f} at start. Each configuration in its own "
        "process; peak RSS over the baseline after imports, input included.",
        "",
        table,
        "",
        "## Where our time goes",
        "",
        "Seconds (share of the wall time) of each phase of `fit_resample`: validation of "
        "X and y; the neighbour search (building the index, tuning it, the graph); the "
        "rest of the planning (drawing bases and partners); the allocation of the "
        "output; the copy of the original rows into it; the generation of the "
        "synthetic rows in place; other (formatting the output, bookkeeping).",
        "",
        phase_table,
    ])
    print(md)
    store.write_text(json.dumps({"environment": env, "records": records}, indent=1))
    (args.out / "scale.md").write_text(md + "\n")
    plot(records, args.out / "scale_time.png")
    log(f"done: {store}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
