"""Recall of approximate neighbours: estimated on a sample, tuned to a target, measured.

Recall@k of a query is the share of its k returned neighbours that are true
k nearest neighbours. It is tie-tolerant: a returned row counts when its true
(float64) distance is no larger than the exact k-th distance, up to the
round-off of FAISS's float32 arithmetic, so that equally near duplicates,
common in real data, are not counted as misses. Queries are
fitted rows, each excluded from its own answer, as ``kneighbors(X=None)``
does.
"""

# License: BSD-3-Clause

import math
import numbers
import time
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from . import _faiss
from ._graph import exact_search, exclude_self

# Extra exact candidates fetched in float32 and re-ranked in float64, so that
# float32 round-off near the k-th distance cannot pick the wrong k-th row.
_SLACK = 4
# A returned row is a true neighbour when its squared distance is within
# float32 round-off of the exact k-th one: FAISS computes |x|^2 + |q|^2 - 2 x.q
# in float32, so rows nearer than a few float32 ulps of |q|^2 are ties to it.
_RTOL = 1e-5
_ULPS = 8 * float(np.finfo(np.float32).eps)
# Values of float64 rows gathered at once when recomputing distances.
_BLOCK_VALUES = 1 << 22
# No HNSW beam wider than this is tried: beyond it a graph index is slower
# than an exact search on any data.
_MAX_EF_SEARCH = 4096


class LowRecallWarning(UserWarning):
    """An approximate index could not reach its `target_recall` on the sample."""


# --------------------------------------------------------------------------
# The exact reference for a sample of fitted rows
# --------------------------------------------------------------------------
def sample_rows(n_samples, n_queries, rng):
    """`n_queries` distinct rows of ``range(n_samples)``, ascending (all if fewer)."""
    if n_queries >= n_samples:
        return np.arange(n_samples)
    return np.sort(rng.choice(n_samples, size=n_queries, replace=False))


def _rows64(X, rows, normalize):
    """Rows of X as a float64 array (a private copy), unit-normalised if asked."""
    block = X[rows]
    if sparse.issparse(block):
        block = block.toarray()
    block = np.array(block, dtype=np.float64, copy=True)
    if normalize:
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        np.divide(block, norms, out=block, where=norms > 0)
    return block


def squared_distances(X, rows, ind, metric):
    """float64 squared distances from fitted row ``rows[i]`` to rows ``ind[i]`` of X.

    For the cosine metric, between unit-normalised rows (``2 - 2 cos``,
    which ranks as the cosine distance does).
    """
    normalize = _faiss.METRICS[metric].normalize
    out = np.empty(ind.shape, dtype=np.float64)
    n_features = X.shape[1]
    step = max(1, _BLOCK_VALUES // max(1, ind.shape[1] * n_features))
    for start in range(0, len(rows), step):
        part = slice(start, start + step)
        wanted, inverse = np.unique(ind[part], return_inverse=True)
        B = _rows64(X, wanted, normalize)[inverse.reshape(ind[part].shape)]
        A = _rows64(X, rows[part], normalize)
        out[part] = np.einsum("qkd,qkd->qk", B - A[:, np.newaxis, :], B - A[:, np.newaxis, :])
    return out


@dataclass(frozen=True)
class Reference:
    """The exact neighbours of a sample of fitted rows, each row excluded."""

    rows: np.ndarray  # (n_queries,) rows of X queried
    queries: np.ndarray  # (n_queries, n_features) those rows as FAISS searches them (float32)
    neighbors: np.ndarray  # (n_queries, k) exact neighbours, nearest first
    kth: np.ndarray  # (n_queries,) float64 squared distance of the k-th
    tolerance: np.ndarray  # (n_queries,) float32 round-off of squared distances

    @classmethod
    def of(cls, X, rows, n_neighbors, *, metric, copies=None):
        """Search X exactly (in blocks, through BLAS) for the rows `rows`.

        With `copies` (`_faiss.DuplicateGroups` of X), each distinct row is
        searched once and the groups found are expanded to their rows: the
        same candidates, without scanning thousands of copies of a row. Not
        for the cosine metric, whose groups put zero rows (no direction)
        together with distances that do not rank them.
        """
        normalize = _faiss.METRICS[metric].normalize
        queries = _faiss.as_float32_rows(X, rows, normalize)
        n_candidates = min(n_neighbors + 1 + _SLACK, X.shape[0])
        if copies is None or normalize:
            _, candidates = exact_search(X, queries, n_candidates, metric=metric)
        else:
            distinct = _faiss.as_float32_rows(X, copies.representatives, normalize)
            score, groups = exact_search(distinct, queries,
                                         min(n_candidates, len(distinct)), metric=metric)
            candidates = copies.expand(score, groups, n_candidates)[1]
        d = squared_distances(X, rows, candidates, metric)
        d[candidates == rows[:, np.newaxis]] = np.inf  # each row excluded by index
        order = np.argsort(d, axis=1, kind="stable")[:, :n_neighbors]
        kth = np.take_along_axis(d, order, axis=1)[:, -1]
        squared_norms = (_rows64(X, rows, _faiss.METRICS[metric].normalize) ** 2).sum(axis=1)
        return cls(rows, queries, np.take_along_axis(candidates, order, axis=1), kth,
                   kth * _RTOL + squared_norms * _ULPS)

    def recall(self, X, ind, metric):
        """Tie-tolerant recall of each query's answer `ind` (own rows excluded)."""
        d = squared_distances(X, self.rows, ind, metric)
        hit = ((d <= (self.kth + self.tolerance)[:, np.newaxis])
               & (ind != self.rows[:, np.newaxis]))
        return hit.mean(axis=1)


def lower_bound(per_query, n_population):
    """The mean recall less two standard errors (one-sided, about 97.7 %).

    With the finite-population correction: a sample of every row has no
    sampling error.
    """
    n = per_query.size
    if n < 2:
        return float(per_query.mean())
    fpc = max(0.0, 1.0 - n / n_population)
    return float(per_query.mean() - 2.0 * per_query.std(ddof=1) * math.sqrt(fpc / n))


# --------------------------------------------------------------------------
# Tuning a search parameter to a target recall
# --------------------------------------------------------------------------
def smallest_reaching(evaluate, lo, hi, start, target):
    """The smallest integer p in [lo, hi] with ``evaluate(p) >= target``.

    `evaluate` is taken as non-decreasing (recall grows with nprobe and with
    efSearch). From `start` (a good guess makes this cheap), gallop down or up
    with doubling steps, then bisect. Returns ``(p, evaluate(p), reached)``;
    when no p reaches the target, the smallest p of the highest value seen.
    """
    seen = {}

    def value(p):
        if p not in seen:
            seen[p] = evaluate(p)
        return seen[p]

    p = min(max(start, lo), hi)
    if value(p) >= target:
        good, bad, step = p, lo - 1, 1
        while good > lo:
            q = max(lo, good - step)
            if value(q) < target:
                bad = q
                break
            good, step = q, step * 2
    else:
        bad, good = p, None
        while bad < hi:
            q = min(hi, max(bad + 1, 2 * bad))
            if value(q) >= target:
                good = q
                break
            bad = q
        if good is None:
            best = max(seen, key=lambda q: (seen[q], -q))
            return best, seen[best], False
    while good - bad > 1:
        mid = (good + bad) // 2
        if value(mid) >= target:
            good = mid
        else:
            bad = mid
    return good, value(good), True


@dataclass(frozen=True)
class Tuning:
    """What `tune` chose, and what it measured."""

    params: _faiss.SearchParameters
    recall: float | None  # None: no neighbours to measure (a single row)
    n_queries: int
    reached: bool
    knobs: tuple  # search parameters the index has ("nprobe", "ef_search")
    tuned: tuple  # those of them chosen here
    seconds: float


def tune(index, X, params, *, n_neighbors, target, tune_nprobe, tune_ef_search,
         n_queries, rng, metric, batch_size, groups, copies=None):
    """Estimate the recall of `index` on a sample of X; tune the knobs left free.

    `params` are the search parameters the index was built with; those
    flagged by `tune_nprobe` / `tune_ef_search` are replaced by the smallest
    value reaching `target` on the sample (or the best one seen). The chosen
    parameters are left applied to `index`. `groups`: the index holds one
    vector per group of identical rows; `copies`: groups of identical rows of
    X (known or found; None if unknown), for the exact reference (`Reference.of`).
    """
    t0 = time.perf_counter()
    knobs = tuple(name for name, value in (("nprobe", params.nprobe),
                                           ("ef_search", params.ef_search))
                  if value is not None)
    n_samples = X.shape[0]
    k = min(n_neighbors, n_samples - 1)
    if k < 1:  # a single row has no neighbour to find
        return Tuning(params, None, 0, True, knobs, (), time.perf_counter() - t0)
    rows = sample_rows(n_samples, n_queries, rng)
    reference = Reference.of(X, rows, k, metric=metric, copies=copies)
    queries = X[rows]
    # identical sampled rows (data with many copies) get identical answers: searched once
    sample_copies = _faiss.DuplicateGroups.of(reference.queries)

    means = {}

    def score(p):
        """Lower confidence bound of the sample's recall with parameters p."""
        _faiss.set_search_parameters(index, p)
        ind = _faiss.search(index, queries, k + 1, metric=metric, batch_size=batch_size,
                            groups=groups, query_groups=sample_copies)[1]
        per_query = reference.recall(X, exclude_self(ind, self_rows=rows), metric)
        means[p] = float(per_query.mean())
        return lower_bound(per_query, n_samples)

    # The target must be reached by the lower bound, not the sample mean: the
    # smallest setting whose *sample* recall reaches it is, by construction,
    # as likely to fall short of it over all rows as to exceed it.
    tuned, reached = [], True
    if tune_nprobe and params.nprobe is not None:
        start, floor = _nprobe_guess(index, reference, target, params.nprobe, n_samples)
        # below a guess read off the lists' ranks the target is out of reach
        # (fewer true neighbours scanned; ties aside): no search there
        nprobe, _, reached = smallest_reaching(
            lambda p: score(replace(params, nprobe=p)), start if floor else 1,
            params.nlist, start, target
        )
        params = replace(params, nprobe=nprobe)
        tuned.append("nprobe")
    if tune_ef_search and params.ef_search is not None:
        n_vectors = n_samples if groups is None else len(groups.counts)
        lo = k + 1  # FAISS searches with max(efSearch, k)
        hi = max(lo, min(n_vectors, _MAX_EF_SEARCH))
        ef_search, _, reached = smallest_reaching(
            lambda e: score(replace(params, ef_search=e)), lo, hi, params.ef_search, target
        )
        params = replace(params, ef_search=ef_search)
        tuned.append("ef_search")
    if params not in means:
        reached = score(params) >= target
    _faiss.set_search_parameters(index, params)
    return Tuning(params, means[params], len(rows), reached, knobs, tuple(tuned),
                  time.perf_counter() - t0)


def _nprobe_guess(index, reference, target, default, n_population):
    """The nprobe whose scanned IVF lists hold the target share of the true neighbours.

    Read off the rank of each true neighbour's list for its query, with the
    criterion `tune` applies to searches; exact for an IVF index storing full
    vectors (up to ties), a lower bound for compressed codes. Returns
    ``(nprobe, floor)``: `floor` says no smaller nprobe can reach the target
    (read off the ranks); ``(default, False)`` when the lists cannot be read.
    """
    ranks = _faiss.ivf_list_ranks(index, reference.queries, reference.neighbors)
    if ranks is None:
        return default, False

    def covered(p):
        return lower_bound((ranks < p).mean(axis=1), n_population) >= target

    nlist = int(ranks.max()) + 1
    lo, hi = 0, nlist  # covered(hi) holds unless some list is unknown
    if not covered(hi):
        return hi, True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if covered(mid) else (mid, hi)
    return hi, True


# --------------------------------------------------------------------------
# measure_recall: any estimator with kneighbors, on the user's data
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class RecallReport:
    """The recall of a neighbours estimator on a sample of its fitted rows.

    Attributes
    ----------
    recall : float
        Mean recall@`n_neighbors` of the sampled queries, tie-tolerant.

    n_neighbors : int
        Number of neighbours per query (each query's own row excluded).

    n_queries : int
        Number of fitted rows queried.

    fit_seconds : float
        Time to fit a clone of the estimator on X.

    query_seconds : float
        Time of the estimator's ``kneighbors`` on the rows queried (the
        sample, or every row with ``query="all"``).

    n_rows_queried : int
        Number of rows whose neighbours were searched and timed.

    exact_seconds : float
        Time of the exact search (FAISS's blocked BLAS search) of the same
        rows, the reference.

    estimator : object
        The fitted clone that was measured.
    """

    recall: float
    n_neighbors: int
    n_queries: int
    fit_seconds: float
    query_seconds: float
    n_rows_queried: int
    exact_seconds: float
    estimator: object


_EUCLIDEAN = {"euclidean", "l2", "sqeuclidean"}


def _ranking_metric(nn):
    """The metric the fitted `nn` ranks neighbours by, as "euclidean" or "cosine"."""
    metric = getattr(nn, "effective_metric_", None)
    params = nn.get_params(deep=False) if hasattr(nn, "get_params") else {}
    if metric is None:
        metric = params.get("metric", "euclidean")
    if metric == "minkowski":
        p = (getattr(nn, "effective_metric_params_", None) or {}).get("p", params.get("p", 2))
        metric = "euclidean" if p == 2 else f"minkowski with p={p}"
    if metric in _EUCLIDEAN:
        return "euclidean"
    if metric == "cosine":
        return "cosine"
    msg = (
        f"measure_recall compares against an exact Euclidean or cosine search, but "
        f"the estimator's metric is {metric!r}. Measure an estimator with metric "
        "'euclidean', 'sqeuclidean', 'cosine' or 'minkowski' with p=2."
    )
    raise ValueError(msg)


def _check_count(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        msg = f"{name} must be an int; got {value!r} of type {type(value).__name__}."
        raise TypeError(msg)
    if value <= 0:
        msg = f"{name} must be a positive int; got {name}={value}."
        raise ValueError(msg)


def measure_recall(estimator, X, *, n_neighbors=5, n_queries=1000, query="sample",
                   random_state=None):
    """Measure the recall of a neighbours estimator on your data.

    A clone of `estimator` is fitted on X; `n_queries` rows of X, drawn at
    random, are queried with ``kneighbors``, each excluded from its own
    answer (as ``kneighbors(X=None)`` does); the answers are compared with an
    exact search of the same rows over all of X. Works for any estimator with
    ``fit`` and ``kneighbors`` (:class:`~smote_ann.FaissNN`,
    :class:`sklearn.neighbors.NearestNeighbors`, others) whose metric is
    Euclidean or cosine.

    Parameters
    ----------
    estimator : estimator object
        The neighbours estimator to measure. It is cloned, never modified.

    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data: the estimator is fitted on it and queried with its rows.

    n_neighbors : int, default=5
        Recall@`n_neighbors`: neighbours per query, the query itself excluded.

    n_queries : int, default=1000
        Number of rows queried; all rows when X has fewer. Recall is a mean
        over queries: 1000 give it to about +-0.01.

    query : {"sample", "all"}, default="sample"
        Which rows the estimator searches, and the query time measures: the
        `n_queries` sampled rows, or every row of X (the whole neighbour
        graph, what SMOTE asks of a class: slower, but its time is the one
        resampling will take). The recall is measured on the sample either
        way.

    random_state : int, RandomState instance or None, default=None
        Chooses the rows whose recall is measured.

    Returns
    -------
    report : RecallReport
        The recall, and the time of the fit, of the estimator's queries and of
        the exact search of the same rows.

    Notes
    -----
    Recall is tie-tolerant: a returned row counts when its true distance is no
    larger than the exact `n_neighbors`-th distance (duplicated rows are
    equally good neighbours), computed in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from smote_ann import FaissNN, measure_recall
    >>> X = np.random.default_rng(0).normal(size=(2000, 8))
    >>> report = measure_recall(FaissNN(index_type="flat"), X, random_state=0)
    >>> report.recall, report.n_queries
    (1.0, 1000)
    """
    if not (hasattr(estimator, "fit") and hasattr(estimator, "kneighbors")):
        msg = (
            "measure_recall needs a neighbours estimator with fit and kneighbors "
            f"(FaissNN, sklearn.neighbors.NearestNeighbors, ...); got "
            f"{type(estimator).__name__}."
        )
        raise TypeError(msg)
    _check_count("n_neighbors", n_neighbors)
    _check_count("n_queries", n_queries)
    if query not in ("sample", "all"):
        msg = f"query must be 'sample' or 'all'; got query={query!r}."
        raise ValueError(msg)
    X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
    n_samples = X.shape[0]
    if n_neighbors + 1 > n_samples:
        msg = (
            f"X has {n_samples} rows but recall@{n_neighbors} needs at least "
            f"{n_neighbors + 1} (each query plus {n_neighbors} neighbours). Set "
            f"n_neighbors <= {n_samples - 1}."
        )
        raise ValueError(msg)
    nn = clone(estimator)
    t0 = time.perf_counter()
    nn.fit(X)
    fit_seconds = time.perf_counter() - t0
    metric = _ranking_metric(nn)
    rows = sample_rows(n_samples, int(n_queries), check_random_state(random_state))
    queried = rows if query == "sample" else slice(None)
    t0 = time.perf_counter()
    ind = np.asarray(nn.kneighbors(X[queried], n_neighbors=int(n_neighbors) + 1,
                                   return_distance=False))
    query_seconds = time.perf_counter() - t0
    n_rows_queried = len(ind)
    if query == "all":
        ind = ind[rows]
    t0 = time.perf_counter()
    reference = Reference.of(X, rows, int(n_neighbors), metric=metric)
    exact_seconds = time.perf_counter() - t0
    recall = float(reference.recall(X, exclude_self(ind, self_rows=rows), metric).mean())
    return RecallReport(recall, int(n_neighbors), len(rows), fit_seconds, query_seconds,
                        n_rows_queried, exact_seconds, nn)
