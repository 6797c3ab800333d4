"""The only module that talks to FAISS.

Everything FAISS-specific lives here: the metric table, the index-builder
table, float32 conversion, batched search with repair of FAISS's ``-1``
placeholders, the scoped OpenMP thread count and index (de)serialisation.
The rest of the package sees numpy arrays and an opaque index object.
"""

# License: BSD-3-Clause

import ctypes
import functools
import math
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import faiss
import joblib
import numpy as np
from scipy import sparse

# FAISS's k-means warns (on stderr, from C++) below this many training points
# per centroid; we never ask for fewer, so the warning never fires.
_MIN_POINTS_PER_CENTROID = 39
# IVF k-means trains on at most this many points per list (FAISS's own cap is
# 256): centroids of the same quality for search, 4x less training time. We
# sample before converting, so a float64 or sparse X is never converted whole.
_MAX_POINTS_PER_CENTROID = 64


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------
def _sqrt_clipped(d):
    # FAISS returns squared L2 computed as |x|^2 + |y|^2 - 2<x, y>: round-off
    # can make it slightly negative.
    return np.sqrt(np.maximum(d, 0.0))


def _clipped(d):
    return np.maximum(d, 0.0)


def _cosine_from_similarity(s):
    return np.clip(1.0 - s, 0.0, 2.0)


@dataclass(frozen=True)
class _Metric:
    faiss_metric: int
    normalize: bool  # unit-normalise rows (a copy) before add and search
    to_distance: Callable  # FAISS score -> scikit-learn distance


METRICS = {
    "euclidean": _Metric(faiss.METRIC_L2, False, _sqrt_clipped),
    "sqeuclidean": _Metric(faiss.METRIC_L2, False, _clipped),
    "cosine": _Metric(faiss.METRIC_INNER_PRODUCT, True, _cosine_from_similarity),
}


# --------------------------------------------------------------------------
# Default search parameters chosen from the data size
# --------------------------------------------------------------------------
def default_nlist(n_samples):
    """About 2*sqrt(n) inverted lists, never fewer than 39 training points each.

    Twice FAISS's usual sqrt(n): smaller lists halve the vectors scanned per
    probe, which pays for the longer k-means once n is in the tens of
    thousands (benchmarks/bench_neighbors.py).
    """
    return int(max(1, min(round(2 * math.sqrt(n_samples)),
                          n_samples // _MIN_POINTS_PER_CENTROID)))


def default_nprobe(nlist):
    """Visit about 1/64 of the lists, at least 8 (all of them if there are fewer).

    With `default_nlist`: 8 of 200 lists at 10k rows, 10 of 632 at 100k, 31
    of 2000 at 1M, i.e. 1.6-4 % of the vectors scanned per query. Measured on
    clustered data with low intrinsic dimension (benchmarks/
    bench_neighbors.py): recall@5 >= 0.99 at 10k and 100k rows.
    """
    return int(min(nlist, max(8, round(nlist / 64))))


def default_ef_search(n_samples, n_neighbors):
    """Beam width of the HNSW search: ``8 * ceil(log10(n))``, at least 2*k.

    32 at 10k rows, 40 at 100k, 48 at 1M: recall@5 >= 0.99 on clustered data
    with low intrinsic dimension (benchmarks/bench_neighbors.py).
    """
    return int(max(2 * n_neighbors, 8 * math.ceil(math.log10(max(n_samples, 10)))))


# --------------------------------------------------------------------------
# Index builders: index_type -> FAISS factory description
# --------------------------------------------------------------------------
def _flat_description(n_samples, p):
    return "Flat"


def _ivf_description(n_samples, p):
    nlist = p["nlist"] if p["nlist"] is not None else default_nlist(n_samples)
    return f"IVF{nlist},Flat"


def _hnsw_description(n_samples, p):
    return f"HNSW{p['hnsw_m']},Flat"


INDEX_BUILDERS = {"flat": _flat_description, "ivf": _ivf_description, "hnsw": _hnsw_description}


def index_description(index_type, n_samples, params):
    """The FAISS factory string for `index_type` (a factory string is kept as is)."""
    builder = INDEX_BUILDERS.get(index_type)
    return index_type if builder is None else builder(n_samples, params)


# Largest HNSW / NSG graph degree accepted: FAISS allocates 2 * M links per
# vector up front (M = 10**8 ends in std::bad_alloc); beyond 64 recall no
# longer improves.
MAX_GRAPH_DEGREE = 512
_MAX_DESCRIPTION_LENGTH = 200
_NUMBER = re.compile(r"\d+")


def _description_problem(description, n_samples):
    """What is wrong with a factory string before FAISS sees it, or None.

    FAISS's parser segfaults on very long strings, allocates sizes it was
    given before checking them against the data (``IVF99999999``,
    ``HNSW100000000``), stops at a NUL, and accepts degenerate dimensions
    (``PCA0``) and indexes whose distances are not the metric's (``LSH``).
    """
    if len(description) > _MAX_DESCRIPTION_LENGTH:
        return f"is {len(description)} characters long; FAISS's are at most {_MAX_DESCRIPTION_LENGTH}"
    bad = sorted(set(re.sub(r"[A-Za-z0-9_,()]", "", description)))
    if bad:
        return (f"contains {', '.join(map(repr, bad))}; factory strings are letters, digits "
                "and , _ ( )")
    if not description or description.startswith(",") or ",," in description or description.endswith(","):
        return "has an empty component"
    depth = 0
    for char in description:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        return "has unbalanced parentheses"
    for number in _NUMBER.findall(description):
        if int(number) == 0:
            return "has a size of 0 (every count and dimension must be at least 1)"
        if int(number) > np.iinfo(np.int32).max:
            return f"has the size {number}, larger than FAISS accepts"
    if re.search(r"(^|[,(_])LSH", description):
        return ("is an LSH index, which compares binary codes: its distances are not "
                "euclidean, sqeuclidean or cosine distances")
    for kind, number in re.findall(r"(HNSW|NSG)(\d+)", description):
        if int(number) > MAX_GRAPH_DEGREE:
            return (f"asks for {kind} graphs of {number} links per vector; FAISS allocates "
                    f"2 x {number} per vector up front. Use at most {MAX_GRAPH_DEGREE} "
                    "(16 to 64 suit most data)")
    top_ivf = re.match(r"^(?:[A-Za-z]+\d*(?:_\d+)?,)*?IVF(\d+)", description)
    if top_ivf and int(top_ivf.group(1)) > n_samples:
        return (f"has {top_ivf.group(1)} IVF lists but only {n_samples} samples to train "
                "them: use at most one list per sample")
    return None


def check_description(description, n_samples, name):
    """Raise ValueError if the factory string `description` must not reach FAISS."""
    problem = _description_problem(description, n_samples)
    if problem is not None:
        shown = name if len(name) <= 60 else name[:40] + "..."
        msg = (
            f"index_type={shown!r} {problem}. Use 'flat', 'ivf', 'hnsw' or a factory "
            "string such as 'IVF256,Flat' or 'HNSW32,Flat'."
        )
        raise ValueError(msg)


def check_factory_string(index_type, n_samples, n_features, metric):
    """Raise ValueError if `index_type` must not reach FAISS or FAISS cannot parse it."""
    check_description(index_type, n_samples, name=index_type)
    _new_index(index_type, n_features, metric, name=index_type)


def check_float32_range(X, name, batch_size):
    """Raise ValueError if X's values are too large for FAISS's float32 distances.

    FAISS squares differences in float32: beyond about
    ``sqrt(float32 max / (4 * n_features))`` they overflow and every distance
    becomes infinite. X is read in batches (memory maps stay light).
    """
    n_samples, n_features = X.shape
    limit = math.sqrt(float(np.finfo(np.float32).max) / (4 * max(n_features, 1)))
    largest = 0.0
    if sparse.issparse(X):
        largest = float(np.abs(X.data).max()) if X.nnz else 0.0
    else:
        for rows in _batches(n_samples, max(batch_size, 1 << 16)):
            block = X[rows]
            if block.size:
                largest = max(largest, float(np.abs(block).max()))
    if largest > limit:
        msg = (
            f"{name} has values up to {largest:.3g} in absolute value: their squared "
            f"distances overflow FAISS's float32 (values must stay below {limit:.3g} "
            f"with {n_features} features). Scale the data first (for example with "
            "sklearn.preprocessing.StandardScaler), or use scikit-learn's NearestNeighbors."
        )
        raise ValueError(msg)


_FAISS_LOCATION = re.compile(r"^Error in .*? at \S+:\d+: (Error: '.*?' failed: )?", re.DOTALL)


def _faiss_reason(exc):
    """The human part of a FAISS C++ exception (without function and file)."""
    return _FAISS_LOCATION.sub("", str(exc).strip()).strip()


def _new_index(description, n_features, metric, name):
    try:
        return faiss.index_factory(int(n_features), description, METRICS[metric].faiss_metric)
    except RuntimeError as exc:
        reason = _faiss_reason(exc)
        msg = (
            f"index_type={name!r} is not a valid FAISS index_factory string "
            f"for {n_features} features (FAISS said: {reason}). Use 'flat', 'ivf', "
            "'hnsw' or a factory string such as 'IVF256,Flat' or 'HNSW32,Flat'."
        )
        raise ValueError(msg) from None


@dataclass(frozen=True)
class SearchParameters:
    """Search-time parameters of a built index (None where they do not apply)."""

    nlist: int | None
    nprobe: int | None
    ef_search: int | None


# --------------------------------------------------------------------------
# Conversion to FAISS's float32
# --------------------------------------------------------------------------
def as_float32_rows(X, rows, normalize):
    """Rows of X (a slice or an index array) as a C-contiguous float32 array.

    Sparse rows are densified; when `normalize`, rows are scaled to unit norm
    in a private copy, so the caller's array is never written.
    """
    block = X[rows]
    if sparse.issparse(block):
        block = block.toarray()
    block = np.array(block, dtype=np.float32, order="C", copy=True if normalize else None)
    if normalize:
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        np.divide(block, norms, out=block, where=norms > 0)
    return block


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


# --------------------------------------------------------------------------
# Exact duplicates (graph indexes)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class DuplicateGroups:
    """Rows of X grouped by identical float32 vector.

    Many copies of one vector (real data has groups of thousands) fill the
    HNSW neighbour lists with zero-distance links and cut the graph: queries
    near the group no longer find their way out (recall@5 0.80 on ADBench
    mammography, whatever efSearch). Graph indexes therefore store each
    distinct vector once; `expand` turns its ids back into rows of X.
    """

    representatives: np.ndarray  # (n_unique,) first row of X of each group
    members: np.ndarray  # (n_samples,) rows of X, grouped, ascending within a group
    starts: np.ndarray  # (n_unique,) offset of each group in `members`
    counts: np.ndarray  # (n_unique,) size of each group
    owner: np.ndarray  # (n_samples,) the group of each row of X

    @classmethod
    def of(cls, X32):
        """The groups of the float32 rows X32, or None if all rows differ."""
        rows = np.ascontiguousarray(X32)
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
        _, first, inverse, counts = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        if len(first) == len(keys):
            return None
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        owner = inverse.ravel()
        members = np.argsort(owner, kind="stable")
        return cls(first, members, starts, counts, owner)

    def expand(self, dist, ind, n_neighbors):
        """Replace each group id by its rows (same distance), keep `n_neighbors`.

        `ind` holds group ids sorted by distance; there must be at least
        `n_neighbors` rows in the groups of each row of `ind`.
        """
        n_queries, n_groups = ind.shape
        flat = ind.ravel()
        lens = np.minimum(self.counts[flat], n_neighbors)
        source = np.repeat(np.arange(flat.size), lens)  # (row, col) of each output
        offset = np.cumsum(lens) - lens
        rows = self.members[self.starts[flat][source] + np.arange(source.size)
                            - offset[source]]
        query = source // n_groups
        rank = np.arange(source.size) - np.searchsorted(query, query)
        keep = rank < n_neighbors
        shape = (n_queries, n_neighbors)
        return dist.ravel()[source[keep]].reshape(shape), rows[keep].reshape(shape)


# Fitted rows sampled to see whether copies are common, and the share of them
# with a copy from which the distinct rows are searched once each.
_COPIES_SAMPLE = 1000
_MIN_COPIES_SHARE = 0.05


def fitted_copies(index, X, metric, partition=None, seed=0):
    """`DuplicateGroups` of the fitted rows X if copies are common, else None.

    A query of the fitted rows then searches each distinct row once (see
    `search`): on data where rows come in groups of thousands of copies, the
    lists holding them make every copy a query against all the others.
    Whether copies are common is read off a sample of rows, each compared
    with the rows of its own inverted list (IVF-Flat) or partition list
    (flat, `partition`), where its copies are: a few passes over those lists,
    not a sort of all rows, unless copies are found.
    """
    lists = flat_lists(index)
    if lists is not None:
        ids = lists.ids
        vectors = lists.vectors.__getitem__
    elif partition is not None:
        ids = partition.ids
        flat = flat_vectors(index)
        vectors = lambda lst: flat[ids[lst]]  # noqa: E731 (the sampled lists only)
    else:
        return None
    n = int(index.ntotal)
    home = np.empty(n, dtype=np.int64)
    for lst, rows in enumerate(ids):
        home[rows] = lst
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, _COPIES_SAMPLE), replace=False)
    with_copies = 0
    for lst in np.unique(home[sample]):
        block = vectors(lst)
        for row in np.flatnonzero(np.isin(ids[lst], sample[home[sample] == lst])):
            q = block[row]
            same = np.flatnonzero(block[:, 0] == q[0])
            with_copies += int((block[same] == q).all(axis=1).sum() > 1)
    if with_copies < _MIN_COPIES_SHARE * len(sample):
        return None
    normalize = METRICS[metric].normalize
    if isinstance(X, np.ndarray) and X.dtype == np.float32 and not normalize:
        return DuplicateGroups.of(X)  # the rows as FAISS holds them, without a copy
    return DuplicateGroups.of(np.vstack([as_float32_rows(X, part, normalize)
                                         for part in _batches(n, 1 << 16)]))


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------
@contextmanager
def faiss_threads(n_jobs):
    """Set FAISS's OpenMP thread count for the block, then restore it.

    ``None`` keeps FAISS's current setting; ``-1`` means all cores, ``-2`` all
    but one, and so on, as in joblib.
    """
    previous = faiss.omp_get_max_threads()
    if n_jobs is None:
        yield
        return
    n_threads = n_jobs if n_jobs > 0 else max(1, joblib.cpu_count() + 1 + n_jobs)
    faiss.omp_set_num_threads(int(n_threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def max_threads():
    """FAISS's current number of threads (what `faiss_threads` set, if inside it)."""
    return int(faiss.omp_get_max_threads())


# --------------------------------------------------------------------------
# Building and searching
# --------------------------------------------------------------------------
def build_index(X, description, *, metric, n_neighbors, nprobe, ef_search,
                ef_construction, batch_size, seed, name, nlist_is_automatic=False):
    """Build, train and fill the index `description` from X.

    X is any 2-D array or sparse matrix; it is read in batches of
    `batch_size` rows, never converted as a whole (except for graph indexes,
    which store every vector anyway: they are grouped by `DuplicateGroups`).
    Returns the index, its `SearchParameters` (`nprobe` and `ef_search`
    default from the data size when None) and the `DuplicateGroups` (None
    unless a graph index was given duplicated rows). `name` is what the user
    called the index, for messages. With `nlist_is_automatic`, a user's
    `nprobe` larger than the chosen number of lists is clamped to it.
    """
    n_samples, n_features = X.shape
    m = METRICS[metric]
    index = _new_index(description, n_features, metric, name=name)

    ivf = _extract_ivf(index)
    hnsw = _extract_hnsw(index)
    _check_structure(ivf, hnsw, name)
    if ivf is not None and nprobe is not None and nlist_is_automatic:
        nprobe = min(nprobe, int(ivf.nlist))
    groups = None
    graph = hnsw is not None or _is_nsg(index)  # built from all vectors in one add
    if graph:
        X32 = np.vstack([as_float32_rows(X, rows, m.normalize)
                         for rows in _batches(n_samples, batch_size)])
        groups = DuplicateGroups.of(X32)
        X = X32 if groups is None else X32[groups.representatives]
        del X32
    params = SearchParameters(
        nlist=int(ivf.nlist) if ivf is not None else None,
        nprobe=(nprobe if nprobe is not None else default_nprobe(ivf.nlist))
        if ivf is not None else None,
        ef_search=(ef_search if ef_search is not None
                   else default_ef_search(n_samples, n_neighbors))
        if hnsw is not None else None,
    )
    if ivf is not None:
        _check_ivf(params, n_samples)
        ivf.cp.seed = int(seed)
        ivf.cp.min_points_per_centroid = 1  # the size check is ours, see default_nlist
    if hnsw is not None:
        hnsw.efConstruction = int(ef_construction)

    n_rows = X.shape[0]  # distinct rows only, for graph indexes
    if not index.is_trained:
        n_train = n_rows
        if ivf is not None:
            n_train = min(n_rows, _MAX_POINTS_PER_CENTROID * params.nlist)
        rows = slice(None)
        if n_train < n_rows:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(n_rows, size=n_train, replace=False))
        try:
            index.train(as_float32_rows(X, rows, m.normalize))
        except RuntimeError as exc:
            reason = _faiss_reason(exc)
            msg = (
                f"FAISS could not train index_type={name!r} on {n_samples} samples "
                f"with {n_features} features (FAISS said: {reason}). Use fewer "
                "clusters or codes, more data, or index_type='flat'."
            )
            raise ValueError(msg) from None
    # a plain IVF-Flat index gets its rows' lists from `_graph.nearest_centroids`
    # (FAISS compares every row with every centroid: most of the build)
    preassign = plain_ivf_flat(index) is not None and ivf.metric_type == faiss.METRIC_L2
    if preassign:
        from . import _graph

        centroids = faiss.downcast_index(ivf.quantizer).reconstruct_n(0, int(ivf.nlist))
        batch_size = max(batch_size, _PREASSIGN_BATCH)
    # a graph is added in one call: its float32 copy exists already, and the
    # graph then does not depend on batch_size
    for rows in _batches(n_rows, max(n_rows, 1) if graph else batch_size):
        try:
            vectors = as_float32_rows(X, rows, m.normalize)
            if preassign:
                lists = _graph.nearest_centroids(centroids, vectors)
                ivf.add_core(len(vectors), faiss.swig_ptr(vectors), None,
                             faiss.swig_ptr(np.ascontiguousarray(lists, dtype=np.int64)))
            else:
                index.add(vectors)
        except RuntimeError as exc:
            msg = (
                f"FAISS could not add vectors to index_type={name!r} (FAISS said: "
                f"{_faiss_reason(exc)}). Use 'flat', 'ivf', 'hnsw' or a factory "
                "string of an index that numbers its vectors itself, such as "
                "'IVF256,Flat' or 'HNSW32,Flat'."
            )
            raise ValueError(msg) from None
    set_search_parameters(index, params)
    return index, params, groups


def _check_structure(ivf, hnsw, name):
    """Refuse degenerate factory strings that FAISS would accept, then crash on."""
    if ivf is not None and ivf.nlist < 1:
        msg = f"index_type={name!r} has no IVF lists. Use at least one list, e.g. 'IVF16,Flat'."
        raise ValueError(msg)
    # level 0 holds 2 * M links; HNSW1 even has no level table at all
    if hnsw is not None and (hnsw.cum_nneighbor_per_level.size() < 2 or hnsw.nb_neighbors(0) < 4):
        msg = (
            f"index_type={name!r} gives each HNSW node fewer than 2 links, which "
            "FAISS cannot build. Use at least 2, e.g. 'HNSW16,Flat'."
        )
        raise ValueError(msg)


def check_nlist(nlist, n_samples):
    """Raise if an IVF index has more lists than samples to train them."""
    if nlist > n_samples:
        msg = (
            f"The IVF index has nlist={nlist} lists but only {n_samples} "
            "samples to train them. Set nlist <= n_samples (or leave nlist=None "
            "to choose it from the data size)."
        )
        raise ValueError(msg)


def _check_ivf(params, n_samples):
    check_nlist(params.nlist, n_samples)
    if params.nprobe > params.nlist:
        msg = (
            f"nprobe={params.nprobe} is larger than the number of IVF lists "
            f"(nlist_={params.nlist}). Set nprobe <= nlist."
        )
        raise ValueError(msg)


def is_exact(index):
    """Whether `index` is a brute-force index of full vectors (no approximation)."""
    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


def _extract_ivf(index):
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _is_nsg(index):
    return hasattr(faiss.downcast_index(index), "nsg")


def _extract_hnsw(index):
    index = faiss.downcast_index(index)
    return getattr(index, "hnsw", None)


def set_search_parameters(index, params):
    """Apply nprobe / efSearch, including after deserialisation."""
    ivf = _extract_ivf(index)
    if ivf is not None and params.nprobe is not None:
        ivf.nprobe = int(params.nprobe)
    hnsw = _extract_hnsw(index)
    if hnsw is not None and params.ef_search is not None:
        hnsw.efSearch = int(params.ef_search)


# Serialises the widen-search-restore sequence of `_exhaustive`: two threads
# repairing results on one index would otherwise save each other's widened
# setting and leave it in place for good.
_WIDEN_LOCK = threading.Lock()


@contextmanager
def _exhaustive(index, n_neighbors, attempt):
    """Temporarily widen the search so that every list / more of the graph is visited.

    Searches by other threads meanwhile may also be widened (more accurate,
    slower); the index's own settings are always restored.
    """
    with _WIDEN_LOCK:
        ivf = _extract_ivf(index)
        hnsw = _extract_hnsw(index)
        saved = (ivf.nprobe if ivf is not None else None,
                 hnsw.efSearch if hnsw is not None else None)
        if ivf is not None:
            ivf.nprobe = int(ivf.nlist)
        if hnsw is not None:
            hnsw.efSearch = int(max(hnsw.efSearch, n_neighbors) * 4**attempt)
        try:
            yield
        finally:
            if ivf is not None:
                ivf.nprobe = saved[0]
            if hnsw is not None:
                hnsw.efSearch = saved[1]


# Queries searched at once by the grouped IVF-Flat search (its GEMMs need
# many queries per list; memory: about 100 bytes per query beyond the float32 rows).
_JOIN_BATCH = 1 << 20
_PRUNED_BATCH = 1 << 16
# Rows assigned to their lists at once when an IVF-Flat index is filled.
_PREASSIGN_BATCH = 1 << 18

# Seconds to search Q (query, probed list) pairs of an IVF-Flat index of
# `nlist` lists, scanning W = Q x probed list size x features in all:
# FAISS's search costs Q x a + W x b; the BLAS join (`_graph.ivf_flat_search`)
# costs nlist x c + Q x e + W x f: a few numpy calls for every list, then
# less per pair and per scanned value. Fitted to side-by-side timings
# (benchmarks/bench_ivf_paths.py); only their ratios matter.
FAISS_COST = (1.0e-6, 3.5e-10)
JOIN_COST = (4.2e-4, 1.2e-6, 7.4e-11)


def join_pays(nlist, n_pairs, n_values):
    """Whether the BLAS join is expected to beat FAISS's own IVF-Flat search."""
    a, b = FAISS_COST
    c, e, f = JOIN_COST
    return nlist * c + n_pairs * e + n_values * f < n_pairs * a + n_values * b


def search(index, X, n_neighbors, *, metric, batch_size, groups=None, fitted_rows=False,
           partition=None, query_groups=None):
    """k-nearest-neighbour search of the rows of X, in batches.

    Returns ``(dist, ind)``: float64 distances in scikit-learn's convention,
    sorted ascending, and int64 indices. Rows where the index returned fewer
    than `n_neighbors` results (FAISS's ``-1`` placeholders, possible with
    IVF and HNSW) are searched again with a widened search (every IVF list,
    a larger HNSW beam); if results are still missing a RuntimeError says so.
    With `groups`, the index holds one vector per group of duplicated rows
    and its results are expanded back to rows of X.

    An IVF-Flat index searched with many queries per list is searched list
    by list through BLAS (`_graph.ivf_flat_search`: the same neighbours,
    faster where `join_pays`); `fitted_rows` says that X holds the fitted rows
    in order (True) or which fitted row each row of X is (row numbers),
    which lets it find each query's lists from its own. `query_groups`
    (`DuplicateGroups` of the rows of X) has each distinct row searched
    once, its answer given to all its copies: the same answer as searching
    every copy, since identical queries get identical answers. A flat
    index given a `partition` of its rows (`_graph.Partition`) is searched
    exactly, list by list, skipping the lists the triangle inequality rules
    out (`_graph.pruned_exact_search`).
    """
    from . import _graph

    if query_groups is not None:
        distinct = query_groups.representatives
        if fitted_rows is True:
            rows = distinct
        elif fitted_rows is not False:
            rows = np.asarray(fitted_rows)[distinct]
        else:
            rows = False
        dist, ind = search(index, X[distinct], n_neighbors, metric=metric,
                           batch_size=batch_size, groups=groups, fitted_rows=rows,
                           partition=partition)
        return dist[query_groups.owner], ind[query_groups.owner]
    m = METRICS[metric]
    n_neighbors = int(n_neighbors)  # FAISS's SWIG wrapper rejects numpy integers
    n_queries = X.shape[0]
    query_rows = None  # the fitted row of each query, if they are fitted rows
    if fitted_rows is True:
        query_rows = np.arange(n_queries)
    elif fitted_rows is not False:
        query_rows = np.asarray(fitted_rows, dtype=np.int64)
    dist = np.empty((n_queries, n_neighbors), dtype=np.float64)
    ind = np.empty((n_queries, n_neighbors), dtype=np.int64)
    k = n_neighbors if groups is None else min(n_neighbors, len(groups.counts))
    lists = flat_lists(index)
    if lists is not None:
        n_pairs = min(n_queries, _JOIN_BATCH) * min(lists.nprobe, len(lists.ids))
        # queries fall in a list as often as rows do: the size of a probed
        # list is, on average, the size-weighted mean (duplicated rows make
        # a few lists far longer than the others)
        sizes = np.array([len(ids) for ids in lists.ids], dtype=np.float64)
        probed_size = float(sizes @ sizes) / max(float(sizes.sum()), 1.0)
        if not join_pays(len(lists.ids), n_pairs, n_pairs * probed_size * X.shape[1]):
            lists = None
    home = None
    if lists is not None:
        batch_size = max(batch_size, _JOIN_BATCH)
        if query_rows is not None:
            home = np.empty(int(index.ntotal), dtype=np.int64)
            for lst, ids in enumerate(lists.ids):
                home[ids] = lst
            home = home[query_rows]
    if partition is not None:
        # (query, list) pairs to scan are held for a batch: about 4 bytes x lists each
        batch_size = max(batch_size, _PRUNED_BATCH)
        vectors = flat_vectors(index)
    for out in _batches(n_queries, batch_size):
        # a slice of a float32 C-ordered X is searched without a copy
        query = as_float32_rows(X, out, m.normalize)
        # a zero row has no direction: its cosine ranking is not a distance ranking
        directionless = m.normalize and not np.einsum("ij,ij->i", query, query).all()
        if partition is not None and not directionless:
            _, i = _graph.pruned_exact_search(
                vectors, partition, query, k,
                home=None if query_rows is None else partition.home[query_rows[out]])
            # distances summed over the differences (a copy is at 0), then re-ordered
            d = _graph.direct_distances(query, vectors, i)
            order = np.argsort(d, axis=1, kind="stable")
            d, i = np.take_along_axis(d, order, axis=1), np.take_along_axis(i, order, axis=1)
            if m.normalize:  # unit vectors: |x - q|^2 = 2 - 2 x.q
                d = 1.0 - 0.5 * d
        elif lists is not None:
            d, i = _graph.ivf_flat_search(lists, query, k,
                                          home=None if home is None else home[out])
        else:
            d, i = index.search(query, k)
        missing = np.flatnonzero((i < 0).any(axis=1))
        for attempt in range(1, 4):
            if missing.size == 0:
                break
            with _exhaustive(index, k, attempt):
                d[missing], i[missing] = index.search(query[missing], k)
            missing = missing[(i[missing] < 0).any(axis=1)]
        if missing.size:
            msg = (
                f"The FAISS index returned fewer than {n_neighbors} neighbours for "
                f"{missing.size} queries even with an exhaustive search. Use "
                "index_type='flat' or an index that stores every vector."
            )
            raise RuntimeError(msg)
        d = m.to_distance(d)
        if groups is not None:
            d, i = groups.expand(d, i, n_neighbors)
        dist[out] = d
        ind[out] = i
    if partition is not None or lists is not None:
        _release_freed_memory()
    return dist, ind


def _release_freed_memory():
    """Give the heap's free pages back to the system (glibc only).

    The BLAS searches free many medium-sized temporaries, which glibc keeps
    for reuse; without this, the resident memory they leave stays counted
    while the samplers allocate their output (SMOTE on a 1M x 32 job, 100k
    minority rows: 112 MB left after the search, 53 MB of it given back).
    """
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        pass


@functools.lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL("libc.so.6")


# --------------------------------------------------------------------------
# IVF structure (the start of nprobe tuning)
# --------------------------------------------------------------------------
def _ivf_and_input(index, queries):
    """The IVF part of `index` and `queries` as its coarse quantizer sees them.

    Walks the wrappers factory strings put around an IVF index (a refinement
    stage, vector transforms such as PCA or OPQ). Returns ``(None, None)``
    for any other structure.
    """
    node = faiss.downcast_index(index)
    while True:
        if isinstance(node, faiss.IndexIVF):
            return node, queries
        if isinstance(node, faiss.IndexRefine):
            node = faiss.downcast_index(node.base_index)
        elif isinstance(node, faiss.IndexPreTransform):
            for i in range(node.chain.size()):
                queries = faiss.downcast_VectorTransform(node.chain.at(i)).apply(queries)
            node = faiss.downcast_index(node.index)
        else:
            return None, None


def ivf_list_ranks(index, queries, targets):
    """For each query, the rank of the IVF list holding each of its targets.

    ``ranks[i, j] = r`` means the list of fitted row ``targets[i, j]`` is the
    ``r``-th nearest list (0-based) to query ``i``, so a search with
    ``nprobe > r`` scans it. The smallest `nprobe` reaching a recall is read
    off these ranks without searching. None when `index` has no IVF part
    with a flat coarse quantizer that this function can see through.
    """
    ivf, coarse_queries = _ivf_and_input(index, queries)
    if ivf is None:
        return None
    quantizer = faiss.downcast_index(ivf.quantizer)
    if not isinstance(quantizer, faiss.IndexFlat):
        return None
    nlist = int(ivf.nlist)
    list_of = np.full(int(ivf.ntotal), nlist, dtype=np.int64)
    invlists = ivf.invlists
    for lst in range(nlist):
        size = invlists.list_size(lst)
        if size:
            list_of[faiss.rev_swig_ptr(invlists.get_ids(lst), size)] = lst
    # each query's score of every list, as the quantizer ranks them (smaller first)
    centroids = quantizer.reconstruct_n(0, nlist)
    inner = quantizer.metric_type == faiss.METRIC_INNER_PRODUCT
    bias = None if inner else np.einsum("ij,ij->i", centroids, centroids)
    target_lists = list_of[targets]
    ranks = np.full(targets.shape, nlist, dtype=np.int64)
    step = max(1, (1 << 22) // (nlist * max(1, targets.shape[1])))
    for start in range(0, len(coarse_queries), step):
        part = slice(start, start + step)
        score = np.ascontiguousarray(coarse_queries[part]) @ centroids.T
        score *= -1.0 if inner else -2.0
        if bias is not None:
            score += bias
        score = np.hstack([score, np.full((len(score), 1), np.inf, dtype=score.dtype)])
        own = np.take_along_axis(score, target_lists[part], axis=1)
        known = target_lists[part] < nlist
        counts = (score[:, np.newaxis, :nlist] < own[:, :, np.newaxis]).sum(axis=2)
        ranks[part] = np.where(known, counts, nlist)
    return ranks


def flat_vectors(index):
    """The float32 rows stored by a flat index (a view of its memory), else None."""
    flat = faiss.downcast_index(index)
    if not isinstance(flat, faiss.IndexFlat) or flat.ntotal == 0:
        return None
    n, d = int(flat.ntotal), int(flat.d)
    return faiss.rev_swig_ptr(flat.get_xb(), n * d).view(np.float32).reshape(n, d)


def kmeans_centroids(vectors, n_clusters, seed):
    """k-means centroids of float32 `vectors`, trained on a seeded sample."""
    n, d = vectors.shape
    rows = slice(None)
    if n > _MAX_POINTS_PER_CENTROID * n_clusters:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n, size=_MAX_POINTS_PER_CENTROID * n_clusters, replace=False))
    kmeans = faiss.Kmeans(d, int(n_clusters), niter=10, seed=int(seed),
                          min_points_per_centroid=1, max_points_per_centroid=1 << 30)
    kmeans.train(np.ascontiguousarray(vectors[rows]))
    return kmeans.centroids


@dataclass(frozen=True)
class FlatLists:
    """The inverted lists of an IVF index of full float32 vectors, as numpy views.

    The views read the index's own memory: valid while the index lives and
    is not modified.
    """

    centroids: np.ndarray  # (nlist, d) float32
    ids: list  # nlist int64 arrays: the fitted rows of each list, ascending
    vectors: list  # nlist (size, d) float32 arrays: those rows as stored
    inner_product: bool  # scores are inner products (larger is nearer)
    nprobe: int  # the index's current number of lists visited per query


def plain_ivf_flat(index):
    """`index` as an ``IndexIVFFlat`` if it is one with a flat coarse
    quantizer and lists in memory, nothing around it; else None."""
    ivf = faiss.downcast_index(index)
    if type(ivf) is not faiss.IndexIVFFlat:
        return None
    if not isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexFlat) or not isinstance(
        faiss.downcast_InvertedLists(ivf.invlists), faiss.ArrayInvertedLists
    ):
        return None
    return ivf


def flat_lists(index):
    """`FlatLists` of an ``IVF{n},Flat`` index with a flat coarse quantizer, else None.

    Only the plain structure qualifies (no transform or refinement around
    it): its search is an exact search of the probed lists, which
    `_graph.ivf_flat_search` computes through BLAS.
    """
    ivf = plain_ivf_flat(index)
    if ivf is None:
        return None
    quantizer = faiss.downcast_index(ivf.quantizer)
    invlists = faiss.downcast_InvertedLists(ivf.invlists)
    d, nlist = int(ivf.d), int(ivf.nlist)
    ids, vectors = [], []
    for lst in range(nlist):
        size = invlists.list_size(lst)
        if size == 0:
            ids.append(np.empty(0, dtype=np.int64))
            vectors.append(np.empty((0, d), dtype=np.float32))
            continue
        ids.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).view(np.int64))
        codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * invlists.code_size)
        vectors.append(codes.view(np.float32).reshape(size, d))
    return FlatLists(
        centroids=quantizer.reconstruct_n(0, nlist),
        ids=ids,
        vectors=vectors,
        inner_product=ivf.metric_type == faiss.METRIC_INNER_PRODUCT,
        nprobe=int(ivf.nprobe),
    )


# --------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------
def serialize(index):
    return faiss.serialize_index(index)


def deserialize(blob, params):
    index = faiss.deserialize_index(np.asarray(blob, dtype=np.uint8))
    set_search_parameters(index, params)
    return index
