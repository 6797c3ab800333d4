"""The ``smote-ann`` command line (also ``python -m smote_ann``).

``smote-ann resample INPUT --out OUTPUT`` resamples a dataset file to another,
streaming the output a chunk at a time (see :func:`smote_ann.resample_to_file`);
``smote-ann neighbors INPUT`` compares exact and approximate neighbour searches
on each class of a dataset file (see :func:`smote_ann.measure_recall`);
``smote-ann demo`` runs SMOTE on a small built-in dataset with exact and
approximate (IVF) FAISS neighbours. The command line parses arguments, picks a
reader and a sink and shows progress; the work is done by the library.
"""

# License: BSD-3-Clause

import argparse
import sys
import time
from inspect import signature
from pathlib import Path

from .neighbors import FaissNN
from .over_sampling import SMOTE, BorderlineSMOTE

PROG = "smote-ann"
_STRATEGIES = ("auto", "minority", "not minority", "not majority", "all")
_METHODS = ("smote", "borderline-1", "borderline-2", "adasyn")
# the estimators' defaults, not copies of them
_DEFAULT_CHUNK_SIZE = signature(SMOTE).parameters["chunk_size"].default
_DEFAULT_M_NEIGHBORS = signature(BorderlineSMOTE).parameters["m_neighbors"].default
_DEFAULT_TARGET_RECALL = signature(FaissNN).parameters["target_recall"].default


def _sampling_strategy(text):
    if text in _STRATEGIES:
        return text
    try:
        return float(text)
    except ValueError:
        msg = f"{text!r} is neither one of {', '.join(_STRATEGIES)} nor a float ratio"
        raise argparse.ArgumentTypeError(msg) from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _target_recall(text):
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'none'") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def _add_label_options(parser):
    """Where the labels of INPUT come from: a column / array, or a .npy file."""
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument(
        "--target", "-t", metavar="NAME",
        help="the label column (CSV, Parquet) or the labels array (.npz)",
    )
    labels.add_argument(
        "--labels", "-l", metavar="FILE", help="a .npy file of labels, one per row of INPUT"
    )


def _add_search_options(parser, index_help, several=False):
    """The options of the FaissNN behind every neighbour search."""
    parser.add_argument(
        "--index-type", default=["flat", "ivf", "hnsw"] if several else "flat",
        nargs="+" if several else None, metavar="INDEX", help=index_help,
    )
    parser.add_argument(
        "--target-recall", type=_target_recall, default=_DEFAULT_TARGET_RECALL,
        metavar="R",
        help="approximate indexes tune nprobe / ef-search to reach this recall@k on a "
        "sample of each search's rows; 'none' uses them as given "
        f"(default: {_DEFAULT_TARGET_RECALL})",
    )
    parser.add_argument(
        "--nprobe", type=_positive_int, default=None, metavar="N",
        help="IVF lists visited per query (default: tuned to --target-recall)",
    )
    parser.add_argument(
        "--ef-search", type=_positive_int, default=None, metavar="N",
        help="HNSW search beam width (default: tuned to --target-recall)",
    )


def _faiss_nn(args, n_neighbors, index_type=None):
    """The FaissNN the search options describe."""
    return FaissNN(
        n_neighbors=n_neighbors, index_type=index_type or args.index_type,
        target_recall=args.target_recall, nprobe=args.nprobe, ef_search=args.ef_search,
        random_state=args.random_state,
    )


def _n_jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value == 0:
        raise argparse.ArgumentTypeError("0 is not a number of workers (use -1 for all cores)")
    return value


def _build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Large-scale SMOTE oversampling with FAISS nearest neighbours.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    resample = commands.add_parser(
        "resample",
        help="resample a dataset file to another file, a chunk at a time",
        description=(
            "Resample INPUT with SMOTE (or a variant: --method) and write the result "
            "to OUTPUT: the original rows in order, then the synthetic rows. INPUT: .npy (memory-mapped; "
            "labels from --labels), .npz, .csv or .parquet (labels from the column "
            "--target). OUTPUT: .npy (labels to OUTPUT with .labels.npy, or "
            "--labels-out) or .parquet (labels as a column). The output is written "
            "under a temporary name and renamed when complete."
        ),
    )
    resample.add_argument("input", metavar="INPUT", help="the dataset (.npy, .npz, .csv, .parquet)")
    resample.add_argument(
        "--out", "-o", required=True, metavar="OUTPUT", help="the result (.npy or .parquet)"
    )
    _add_label_options(resample)
    resample.add_argument(
        "--labels-out", metavar="FILE",
        help="where a .npy OUTPUT puts its labels (default: OUTPUT with .labels.npy)",
    )
    resample.add_argument(
        "--method", "-m", choices=_METHODS, default="smote",
        help="smote, borderline-1 / borderline-2 (Borderline-SMOTE) or adasyn (default: smote)",
    )
    resample.add_argument(
        "--sampling-strategy", "-s", type=_sampling_strategy, default="auto", metavar="STRATEGY",
        help="auto, minority, 'not minority', 'not majority', all, or a float "
        "minority/majority ratio for two classes (default: auto)",
    )
    resample.add_argument(
        "--k-neighbors", "-k", type=_positive_int, default=5, metavar="K",
        help="neighbours per sample: SMOTE's and Borderline-SMOTE's k_neighbors, "
        "ADASYN's n_neighbors (default: 5)",
    )
    resample.add_argument(
        "--m-neighbors", type=_positive_int, default=None, metavar="M",
        help="Borderline-SMOTE: neighbours, of any class, that decide which rows are "
        f"in danger (default: {_DEFAULT_M_NEIGHBORS})",
    )
    _add_search_options(
        resample,
        "FAISS index of every neighbour search: flat (exact), ivf, hnsw, or a "
        "faiss.index_factory string such as IVF256,PQ16 (default: flat)",
    )
    resample.add_argument(
        "--n-jobs", "-j", type=_n_jobs, default=None, metavar="N",
        help="joblib workers generating the synthetic rows; -1 for all cores (default: 1)",
    )
    resample.add_argument(
        "--chunk-size", type=_positive_int, default=_DEFAULT_CHUNK_SIZE, metavar="ROWS",
        help="rows per chunk; memory grows with it, the output does not change "
        f"(default: {_DEFAULT_CHUNK_SIZE})",
    )
    resample.add_argument(
        "--random-state", type=int, default=None, metavar="SEED",
        help="seed; the same seed gives the same bytes (default: a fresh seed per run)",
    )
    resample.add_argument("--overwrite", action="store_true", help="replace existing output files")
    resample.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    resample.set_defaults(run=_resample)

    neighbors = commands.add_parser(
        "neighbors",
        help="compare exact and approximate neighbours on each class of a dataset file",
        description=(
            "For each class of INPUT, search every row's neighbours within its class "
            "(what SMOTE asks) with each index of --index-type, and print the chosen "
            "search parameters, the recall@k measured against an exact search on a "
            "sample of the class, and the build and query times. INPUT and labels as "
            "for resample."
        ),
    )
    neighbors.add_argument("input", metavar="INPUT", help="the dataset (.npy, .npz, .csv, .parquet)")
    _add_label_options(neighbors)
    _add_search_options(
        neighbors,
        "the indexes to compare, one or more of flat, ivf, hnsw or factory strings "
        "such as IVF256,Flat (default: flat ivf hnsw)",
        several=True,
    )
    neighbors.add_argument(
        "--k-neighbors", "-k", type=_positive_int, default=5, metavar="K",
        help="neighbours per row, the row itself excluded (default: 5)",
    )
    neighbors.add_argument(
        "--n-queries", type=_positive_int, default=1000, metavar="N",
        help="rows per class whose recall is measured (default: 1000)",
    )
    neighbors.add_argument(
        "--classes", metavar="LABELS",
        help="comma-separated labels of the classes to search (default: every class)",
    )
    neighbors.add_argument(
        "--random-state", type=int, default=0, metavar="SEED",
        help="seed of the indexes and of the rows measured (default: 0)",
    )
    neighbors.add_argument("--json", action="store_true", help="print the table as JSON")
    neighbors.set_defaults(run=_neighbors)

    demo = commands.add_parser(
        "demo",
        help="resample a small built-in dataset with exact and IVF neighbours",
        description=(
            "Resample a built-in dataset (scikit-learn's make_classification, 5%% "
            "minority) with SMOTE on exact (flat) and approximate (IVF) FAISS "
            "neighbours, and print the class counts and times."
        ),
    )
    demo.add_argument(
        "--n-samples", type=_positive_int, default=20000, metavar="N", help="rows (default: 20000)"
    )
    demo.add_argument(
        "--random-state", type=int, default=0, metavar="SEED", help="seed (default: 0)"
    )
    demo.set_defaults(run=_demo)
    return parser


def _counts(y):
    import numpy as np

    labels, counts = np.unique(y, return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist()))


def _format_counts(counts):
    return "{" + ", ".join(f"{label!r}: {n}" for label, n in counts.items()) + "}"


def _progress_bar(disable):
    """A factory ``n_rows -> update(n)`` showing a tqdm bar on stderr, or None."""
    if disable:
        return None, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional (the io extra): no bar
        return None, lambda: None
    bars = []

    def factory(n_rows):
        bar = tqdm(total=n_rows, unit="rows", unit_scale=True, file=sys.stderr, desc="writing")
        bars.append(bar)
        return bar.update

    def close():
        for bar in bars:
            bar.close()

    return factory, close


def _sampler(args):
    """The sampler the options describe, with a FaissNN for every neighbour search."""
    from . import ADASYN

    def neighbors(k):  # k neighbours besides the sample itself
        if args.index_type == "flat":
            return k
        return _faiss_nn(args, k + 1)

    if args.index_type == "flat" and (args.nprobe is not None or args.ef_search is not None):
        msg = "--nprobe and --ef-search apply to approximate indexes; add --index-type ivf or hnsw."
        raise ValueError(msg)

    borderline = args.method.startswith("borderline")
    if args.m_neighbors is not None and not borderline:
        msg = f"--m-neighbors applies to borderline-1 and borderline-2, not to {args.method}."
        raise ValueError(msg)
    common = dict(
        sampling_strategy=args.sampling_strategy, random_state=args.random_state,
        n_jobs=args.n_jobs, chunk_size=args.chunk_size,
    )
    if args.method == "smote":
        return SMOTE(k_neighbors=neighbors(args.k_neighbors), **common)
    if borderline:
        m_neighbors = _DEFAULT_M_NEIGHBORS if args.m_neighbors is None else args.m_neighbors
        return BorderlineSMOTE(
            kind=args.method, k_neighbors=neighbors(args.k_neighbors),
            m_neighbors=neighbors(m_neighbors), **common,
        )
    return ADASYN(n_neighbors=neighbors(args.k_neighbors), **common)


def _resample(args):
    from ._readers import open_input
    from ._sinks import check_output
    from .streaming import _resample_to_file

    start = time.perf_counter()
    sampler = _sampler(args)
    check_output(args.out, labels_path=args.labels_out, overwrite=args.overwrite)  # fail early
    show_bar = not args.quiet and sys.stderr.isatty()
    with open_input(
        args.input, target=args.target, labels=args.labels,
        spill_folder=Path(args.out).parent,  # CSV, Parquet, .npz: a temporary copy
    ) as (X, y, feature_names, target_name):
        if show_bar:
            print(f"{PROG}: finding neighbours and planning {X.shape[0]} rows ...",
                  file=sys.stderr)
        factory, close_bar = _progress_bar(disable=not show_bar)
        try:
            resampling = _resample_to_file(
                sampler, X, y, args.out,
                labels_path=args.labels_out, feature_names=feature_names,
                target_name=target_name, overwrite=args.overwrite, progress=factory,
            )
        finally:
            close_bar()
        added = {}  # what was written: ADASYN's counts need not equal sampling_strategy_
        for plan in resampling.plans:
            added[plan.label] = added.get(plan.label, 0) + plan.n_samples
        del X, resampling  # unmap a temporary copy before it is removed
    if not args.quiet:
        before = _counts(y)
        after = {label: n + added.get(label, 0) for label, n in before.items()}
        recall = ""
        if args.index_type != "flat":
            estimates = {label: f"{r:.3f}" for label, r in sampler.neighbor_recall_.items()}
            recall = f"; neighbour recall@k (estimated, per class) {_format_counts(estimates)}"
        print(
            f"{PROG}: {sum(before.values())} -> {sum(after.values())} rows in "
            f"{time.perf_counter() - start:.1f} s; class counts before "
            f"{_format_counts(before)}, after {_format_counts(after)}{recall}; wrote {args.out}"
        )


def _neighbors(args):
    import json

    import numpy as np

    from ._readers import open_input, take_rows
    from .neighbors import measure_recall

    with open_input(args.input, target=args.target, labels=args.labels) as (X, y, _, _):
        counts = _counts(y)
        wanted = list(counts)
        if args.classes is not None:
            names = {str(label): label for label in counts}
            asked = [c.strip() for c in args.classes.split(",")]
            unknown = [c for c in asked if c not in names]
            if unknown:
                msg = f"--classes: no class {', '.join(unknown)} in the labels; they are {', '.join(names)}."
                raise ValueError(msg)
            wanted = [names[c] for c in asked]
        records = []
        for label in wanted:
            rows = np.flatnonzero(y == label)
            if rows.size <= args.k_neighbors:
                print(f"{PROG}: class {label!r} has {rows.size} rows, too few for "
                      f"{args.k_neighbors} neighbours: skipped", file=sys.stderr)
                continue
            X_class = take_rows(X, rows)
            class_records = []
            for index_type in args.index_type:
                report = measure_recall(
                    _faiss_nn(args, args.k_neighbors, index_type), X_class,
                    n_neighbors=args.k_neighbors, n_queries=args.n_queries, query="all",
                    random_state=args.random_state,
                )
                nn = report.estimator
                seconds = report.fit_seconds + report.query_seconds
                class_records.append({
                    "class": label, "rows": int(rows.size), "index": nn.index_description_,
                    "nprobe": nn.nprobe_, "ef_search": nn.ef_search_,
                    "recall": report.recall, "recall_estimate": nn.recall_estimate_,
                    "recall_queries": report.n_queries,
                    "build_seconds": report.fit_seconds, "query_seconds": report.query_seconds,
                    "total_seconds": seconds,
                })
            # against flat wherever it stands in --index-type
            flat = [r["total_seconds"] for r in class_records if r["index"] == "Flat"]
            for r in class_records:
                r["speedup_vs_flat"] = flat[0] / r["total_seconds"] if flat else None
            records.extend(class_records)
            del X_class
    if args.json:
        print(json.dumps(records, indent=2, default=str))
        return
    print(f"recall@{args.k_neighbors} of each class's rows against the class "
          f"(measured on up to {args.n_queries} rows per class against an exact search):")
    header = ["class", "rows", "index", "parameters", "recall", "build s", "query s",
              "total s", "vs flat"]
    lines = []
    for r in records:
        params = ", ".join(f"{name}={r[name]}" for name in ("nprobe", "ef_search")
                           if r[name] is not None) or "-"
        speedup = "-" if r["speedup_vs_flat"] is None else f"{r['speedup_vs_flat']:.1f}x"
        lines.append([repr(r["class"]), str(r["rows"]), r["index"], params,
                      f"{r['recall']:.3f}", f"{r['build_seconds']:.2f}",
                      f"{r['query_seconds']:.2f}", f"{r['total_seconds']:.2f}", speedup])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _demo(args):
    import numpy as np
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=args.n_samples, n_features=32, n_informative=16, weights=[0.95],
        flip_y=0, random_state=args.random_state,
    )
    X = X.astype(np.float32)
    print(f"{PROG} demo: {X.shape[0]} x {X.shape[1]} float32, make_classification, 5% minority")
    print(f"  {'before:':27s}{_format_counts(_counts(y))}")
    seed = args.random_state
    runs = [
        ("exact (flat)", FaissNN(n_neighbors=6, index_type="flat")),
        ("approximate (IVF)", FaissNN(n_neighbors=6, index_type="ivf", random_state=seed)),
    ]
    neighbors = {}
    for name, nn in runs:
        sampler = SMOTE(random_state=seed, k_neighbors=nn)
        start = time.perf_counter()
        _, y_res = sampler.fit_resample(X, y)
        seconds = time.perf_counter() - start
        print(f"  {'after, ' + name + ':':27s}{_format_counts(_counts(y_res))} in {seconds:.2f} s")
        minority = X[y == 1]  # the neighbourhoods SMOTE searched
        neighbors[name] = nn.fit(minority).kneighbors(n_neighbors=5, return_distance=False)
        estimates = sampler.neighbor_recall_
    exact, approx = neighbors.values()
    recall = np.mean([np.isin(a, e).mean() for a, e in zip(approx, exact)])
    ivf = runs[1][1]
    print(f"  IVF recall@5, estimated while tuning (nprobe={ivf.nprobe_} of {ivf.nlist_} "
          f"lists): {estimates[1]:.1%}; measured against the exact neighbours: {recall:.1%}")


def _message(exc):
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror if exc.filename is None else f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv=None):
    """Run the command line; return the exit status (0 on success).

    Parameters
    ----------
    argv : list of str, default=None
        The arguments, without the program name. None reads ``sys.argv[1:]``.
    """
    from ._sinks import clean_termination

    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        # SIGTERM / SIGHUP unwind every with-block (output and input temporary
        # files removed), then end the process as they would have
        with clean_termination():
            args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output written", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, RuntimeError, ImportError, MemoryError) as exc:
        print(f"{PROG}: error: {_message(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
