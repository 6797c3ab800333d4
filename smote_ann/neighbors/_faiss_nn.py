"""FaissNN: scikit-learn's nearest-neighbours API on a FAISS index."""

# License: BSD-3-Clause

import math
import numbers
import threading

import numpy as np
from scipy import sparse
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._warnings import warn_at_caller
from . import _faiss, _recall
from ._graph import Partition, exclude_self
from ._recall import LowRecallWarning


# A flat index answers fewer queries than this (or holds fewer rows) with
# FAISS's own search: a partition would cost more than it saves.
_MIN_PRUNED_QUERIES = 4096
# The partition only speeds up an exact search; a fixed seed makes its answer
# (the order of equally near duplicates included) a function of the data alone.
_PARTITION_SEED = 0


class FaissNN(BaseEstimator):
    """Unsupervised nearest neighbours backed by a FAISS index.

    A drop-in for :class:`sklearn.neighbors.NearestNeighbors` wherever only
    :meth:`kneighbors` and :meth:`kneighbors_graph` are used (for instance the
    ``k_neighbors`` slot of imbalanced-learn's and smote_ann's samplers), that
    searches exactly with a flat index or approximately with an IVF or HNSW
    index, or with any FAISS ``index_factory`` string.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours returned by :meth:`kneighbors` by default.

    index_type : {"flat", "ivf", "hnsw"} or str, default="flat"
        The FAISS index:

        - ``"flat"``: exact brute-force search (same neighbours as
          ``NearestNeighbors(algorithm="brute")`` up to float32 round-off);
        - ``"ivf"``: inverted lists over k-means cells (``IVF{nlist},Flat``),
          approximate; see `nlist` and `nprobe`;
        - ``"hnsw"``: a hierarchical navigable small-world graph
          (``HNSW{hnsw_m},Flat``), approximate; see `hnsw_m`,
          `ef_construction` and `ef_search`;
        - any other string is passed to ``faiss.index_factory``, for example
          ``"IVF256,PQ16"`` or ``"HNSW32,SQ8"``.

    metric : {"euclidean", "sqeuclidean", "cosine"}, default="euclidean"
        Distance returned by :meth:`kneighbors`. ``"euclidean"`` distances are
        true (not squared) distances; ``"cosine"`` is ``1 - cos(x, y)``,
        searched as an inner product on unit-normalised copies of the rows.

    nlist : int, default=None
        Number of IVF lists when ``index_type="ivf"``. None chooses about
        ``2 * sqrt(n_samples)``, with at least 39 training samples per list.
        Ignored by the other index types (a factory string carries its own).

    nprobe : int, default=None
        Number of IVF lists visited per query. Larger `nprobe` visits more
        lists: higher recall, slower queries. None tunes it to
        `target_recall` (the smallest number of lists that reaches it on a
        sample of the data); with ``target_recall=None``, about 1/64 of the
        lists, at least 8. Must not exceed `nlist` when `nlist` is set; with
        ``nlist=None`` it is clamped to the number of lists chosen (small
        classes, cross-validation folds).

    hnsw_m : int, default=16
        Number of graph links per vector for ``index_type="hnsw"``: more links
        give higher recall and a larger, slower-to-build index (32 suits data of
        high intrinsic dimension). At most 512.

    ef_construction : int, default=20
        Beam width while building an HNSW graph: larger is slower to build and
        gives a better graph. The graph build dominates the cost of a
        ``kneighbors(X=None)`` query of the training set.

    ef_search : int, default=None
        Beam width of an HNSW search: larger gives higher recall, slower
        queries. None tunes it to `target_recall`, as `nprobe`; with
        ``target_recall=None``, ``max(2 * n_neighbors, 8 * ceil(log10(n)))``
        for ``n`` fitted samples (40 at 100k samples).

    target_recall : float in (0, 1] or None, default=0.95
        The recall@`n_neighbors` an approximate index is tuned to. After
        building the index, :meth:`fit` queries `recall_sample_size` fitted
        rows (each excluded from its own answer, as ``kneighbors(X=None)``
        does), compares the answers with an exact search over all fitted
        rows, and sets each of `nprobe` and `ef_search` left None to the
        smallest value whose sample recall reaches the target by two standard
        errors (so that the recall over all rows reaches it too). Parameters you
        set are used as given, and the recall they give is still measured.
        When the target cannot be reached (a compressed index such as
        ``"IVF256,PQ8"``, or one too coarse), a :class:`LowRecallWarning`
        says so and the best setting found is kept. None skips the
        measurement and uses the parameters as given (the defaults above).
        A flat index is exact: nothing is measured. The tuning is for
        `n_neighbors` neighbours: queries asking for more may need a wider
        search for the same recall.

    recall_sample_size : int, default=1000
        Number of fitted rows queried to estimate the recall (all rows when
        fewer are fitted). 1000 give the recall to about +-0.01; the exact
        search of the sample costs ``recall_sample_size / n_samples`` of an
        exact ``kneighbors(X=None)``.

    batch_size : int, default=8192
        Number of rows converted to float32 and searched at once; bounds the
        memory used by queries (and by adding vectors in :meth:`fit`). The
        BLAS searches of many queries (see Notes) take at least 65,536
        (flat) or 1,048,576 (IVF-Flat) queries at once, about 100 bytes each
        beyond their float32 rows.

    n_jobs : int, default=None
        Number of FAISS (OpenMP) threads used by :meth:`fit` and the queries.
        None keeps FAISS's current setting (all cores unless changed), -1 means
        all cores. The previous global setting is restored after each call.

    random_state : int, RandomState instance or None, default=None
        Seeds the k-means clustering of IVF indexes, the choice of its
        training sample and the rows that estimate the recall. Pass an int
        for reproducible indexes and tuned parameters.

    Attributes
    ----------
    index_ : faiss.Index
        The fitted FAISS index.

    index_description_ : str
        The FAISS factory string that was built, e.g. ``"IVF316,Flat"``.

    nlist_ : int or None
        Number of IVF lists of the index, None if it has none.

    nprobe_ : int or None
        Number of IVF lists visited per query, None if the index has none.

    ef_search_ : int or None
        HNSW search beam width, None if the index is not an HNSW graph.

    recall_estimate_ : float or None
        The recall@`n_neighbors` measured on the sample with the chosen
        parameters (tie-tolerant: an equally near row counts as a true
        neighbour); 1.0 for a flat index; None when ``target_recall=None``
        or a single row was fitted.

    recall_sample_size_ : int
        Number of fitted rows the recall was estimated on (0 when not
        estimated).

    tuning_time_ : float
        Seconds :meth:`fit` spent estimating the recall and tuning.

    effective_metric_ : str
        The distance metric used.

    n_samples_fit_ : int
        Number of samples in the fitted data.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`. Defined only when `X` has
        feature names that are all strings.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : Exact neighbours in scikit-learn.
    smote_ann.SMOTE : The oversampler this estimator was written for.

    Notes
    -----
    FAISS computes in float32, so distances agree with a float64 exact search
    to float32 precision and near-ties may come in another order.

    ``kneighbors(X=None)`` excludes each training point from its own
    neighbours by index, as scikit-learn does. When a point is not among its
    own ``n_neighbors + 1`` results (more duplicates than neighbours, or an
    approximate index that missed it), the farthest result is dropped;
    scikit-learn drops the nearest, which with exact search is an equally
    distant duplicate.

    Approximate indexes may return fewer than ``n_neighbors`` results for some
    queries; those queries are repeated with a widened search (all IVF lists, a
    larger HNSW beam), so the result never contains FAISS's ``-1``
    placeholders. If results are still missing a RuntimeError is raised.

    Searches of many queries run through BLAS (matrix products of queries
    and fitted rows) rather than one query at a time. A flat index with 4096
    queries or more groups the fitted rows around about ``sqrt(n) / 2``
    k-means centroids (once, on the first such search) and skips the groups
    the triangle inequality rules out: the answer stays exact. An
    ``IVF{n},Flat`` index scans each list against all the queries that probe
    it, where that is cheaper than FAISS's own search (many queries): the
    lists scanned, hence the neighbours, are those of FAISS's own search.
    Querying the fitted array again (``fit(X)`` then ``kneighbors(X)``, as
    imbalanced-learn does) is recognised and answered like ``kneighbors()``,
    each row then first among its own neighbours.

    HNSW graphs (``index_type="hnsw"`` or an ``"HNSW..."`` factory string)
    store each distinct row once: thousands of copies of one row, common in
    real imbalanced data, would otherwise cut the graph and ruin the recall of
    the points around them. Results list every copy, as an exact search does.
    When all the fitted rows are queried and many of them have copies (looked
    for once, in a sample), each distinct row is searched once and its answer
    given to its copies, which is the answer each copy would get.

    Examples
    --------
    >>> import numpy as np
    >>> from smote_ann import FaissNN
    >>> X = np.array([[0.0], [1.0], [3.0], [6.0]])
    >>> nn = FaissNN(n_neighbors=2).fit(X)
    >>> dist, ind = nn.kneighbors([[0.9]])
    >>> ind
    array([[1, 0]])
    >>> nn.kneighbors(return_distance=False)
    array([[1, 2],
           [0, 2],
           [1, 0],
           [2, 1]])
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "index_type": [StrOptions({"flat", "ivf", "hnsw"}), str],
        "metric": [StrOptions(set(_faiss.METRICS))],
        "nlist": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "nprobe": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "hnsw_m": [Interval(numbers.Integral, 2, _faiss.MAX_GRAPH_DEGREE, closed="both")],
        "ef_construction": [Interval(numbers.Integral, 1, None, closed="left")],
        "ef_search": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "target_recall": [Interval(numbers.Real, 0, 1, closed="right"), None],
        "recall_sample_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Integral, None, -1, closed="right"),
            None,
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_neighbors=5,
        *,
        index_type="flat",
        metric="euclidean",
        nlist=None,
        nprobe=None,
        hnsw_m=16,
        ef_construction=20,
        ef_search=None,
        target_recall=0.95,
        recall_sample_size=1000,
        batch_size=8192,
        n_jobs=None,
        random_state=None,
    ):
        self.n_neighbors = n_neighbors
        self.index_type = index_type
        self.metric = metric
        self.nlist = nlist
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.target_recall = target_recall
        self.recall_sample_size = recall_sample_size
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y=None):
        """Build the FAISS index on X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float64 and float32 are accepted (FAISS searches in
            float32); sparse input is densified batch by batch.

        y : None
            Ignored, present for API consistency.

        Returns
        -------
        self : FaissNN
            The fitted estimator.
        """
        self._validate_params()
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
        n_samples, n_features = X.shape
        if self.index_type not in _faiss.INDEX_BUILDERS:
            _faiss.check_factory_string(self.index_type, n_samples, n_features, self.metric)
        _faiss.check_float32_range(X, "X", self.batch_size)
        random_state = check_random_state(self.random_state)
        seed = random_state.randint(np.iinfo(np.int32).max)
        if self.index_type == "ivf" and self.nlist is not None:
            _faiss.check_nlist(self.nlist, n_samples)  # before FAISS allocates the lists
        description = _faiss.index_description(
            self.index_type, n_samples, {"nlist": self.nlist, "hnsw_m": self.hnsw_m}
        )
        with _faiss.faiss_threads(self.n_jobs):
            index, params, groups = _faiss.build_index(
                X,
                description,
                metric=self.metric,
                n_neighbors=self.n_neighbors,
                nprobe=self.nprobe,
                ef_search=self.ef_search,
                ef_construction=self.ef_construction,
                batch_size=self.batch_size,
                seed=seed,
                name=self.index_type,
                nlist_is_automatic=self.index_type == "ivf" and self.nlist is None,
            )
            # rows with many copies are searched once each (the tuning's
            # reference, then every search of all the fitted rows): graph
            # indexes know them, IVF-Flat lists show them; a flat index
            # looks on its first large search (None: not looked for yet)
            copies = None
            if groups is None and _faiss.plain_ivf_flat(index) is not None:
                copies = _faiss.fitted_copies(index, X, self.metric) or False
            known = groups if groups is not None else copies or None
            tuning = self._tune(index, X, params, groups, known, random_state)
        self.index_ = index
        self.index_description_ = description
        self.nlist_ = tuning.params.nlist
        self.nprobe_ = tuning.params.nprobe
        self.ef_search_ = tuning.params.ef_search
        self.recall_estimate_ = tuning.recall
        self.recall_sample_size_ = tuning.n_queries
        self.tuning_time_ = tuning.seconds
        self.effective_metric_ = self.metric
        self.n_samples_fit_ = n_samples
        self._fit_X = X
        self._duplicate_groups = groups
        self._partition = None
        self._copies = copies
        self._partition_lock = threading.Lock()
        return self

    def _tune(self, index, X, params, groups, copies, random_state):
        """Measure the recall on a sample, tune the knobs left None, warn if short."""
        if self.target_recall is None:
            return _recall.Tuning(params, None, 0, True, (), (), 0.0)
        if _faiss.is_exact(index):
            return _recall.Tuning(params, 1.0, 0, True, (), (), 0.0)
        tuning = _recall.tune(
            index, X, params,
            n_neighbors=self.n_neighbors,
            target=float(self.target_recall),
            tune_nprobe=self.nprobe is None,
            tune_ef_search=self.ef_search is None,
            n_queries=self.recall_sample_size,
            rng=random_state,
            metric=self.metric,
            batch_size=self.batch_size,
            groups=groups,
            copies=copies,
        )
        # parameters the user set are theirs to choose: their recall is reported, not warned about
        if not tuning.reached and (tuning.tuned or not tuning.knobs):
            setting = ", ".join(f"{name}={getattr(tuning.params, name)}" for name in tuning.tuned)
            at = f" at best ({setting})" if setting else ""
            msg = (
                f"FaissNN(index_type={self.index_type!r}) reaches recall@{self.n_neighbors} "
                f"{tuning.recall:.3f}{at} on a sample of {tuning.n_queries} fitted rows, "
                f"below target_recall={self.target_recall}. Use a finer index (more "
                "lists or graph links, full vectors such as 'IVF256,Flat' or 'HNSW32,Flat' "
                "rather than compressed codes), index_type='flat' for exact neighbours, "
                "or a lower target_recall."
            )
            warn_at_caller(msg, LowRecallWarning)
        return tuning

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the k nearest neighbours of each query point.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features), default=None
            The query points. If None, the neighbours of each training point
            are returned, the point itself excluded.

        n_neighbors : int, default=None
            Number of neighbours per query; defaults to the constructor's.

        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors)
            Distances to the neighbours, ascending; only if
            ``return_distance=True``.

        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Indices of the neighbours in the fitted data.
        """
        check_is_fitted(self)
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        elif not isinstance(n_neighbors, numbers.Integral) or isinstance(n_neighbors, bool):
            raise TypeError(
                f"n_neighbors must be an int; got {n_neighbors!r} of type "
                f"{type(n_neighbors).__name__}."
            )
        elif n_neighbors <= 0:
            raise ValueError(f"Expected n_neighbors > 0. Got {n_neighbors}")
        n_neighbors = int(n_neighbors)  # FAISS's SWIG wrapper rejects numpy integers

        query_is_train = X is None
        if query_is_train:
            X = self._fit_X
            n_search = n_neighbors + 1
        else:
            X = validate_data(
                self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=False
            )
            _faiss.check_float32_range(X, "X", self.batch_size)
            n_search = n_neighbors
        # the fitted rows queried again (as imbalanced-learn does): the same
        # answers, found faster from each row's place in the index
        fitted_rows = query_is_train or _same_rows(X, self._fit_X)
        if n_search > self.n_samples_fit_:
            inequality = (
                "n_neighbors < n_samples_fit" if query_is_train else "n_neighbors <= n_samples_fit"
            )
            raise ValueError(
                f"Expected {inequality}, but n_neighbors = {n_neighbors}, "
                f"n_samples_fit = {self.n_samples_fit_}, n_samples = {X.shape[0]}. "
                "Ask for fewer neighbours or fit on more samples."
            )

        partition = self._exact_partition(X.shape[0])
        many_fitted = fitted_rows and X.shape[0] >= _MIN_PRUNED_QUERIES
        with _faiss.faiss_threads(self.n_jobs):
            dist, ind = _faiss.search(
                self.index_,
                X,
                n_search,
                metric=self.metric,
                batch_size=self.batch_size,
                groups=self._duplicate_groups,
                fitted_rows=fitted_rows,
                partition=partition,
                query_groups=self._fitted_copies(partition) if many_fitted else None,
            )
        if query_is_train:
            dist, ind = exclude_self(ind, dist)
        return (dist, ind) if return_distance else ind

    def _exact_partition(self, n_queries):
        """The partition that prunes a flat index's searches of many queries.

        Made on the first such search (k-means on a sample drawn with a
        fixed seed, about sqrt(n) / 2 lists: the fastest of sqrt(n) x 1/4,
        1/2, 1, 2 and 4 on a 170k-row class, ``benchmarks/bench_scale.py
        --partition-sweep``), then kept. None for other indexes and for few
        queries, which FAISS searches directly.
        """
        if n_queries < _MIN_PRUNED_QUERIES or self.n_samples_fit_ < _MIN_PRUNED_QUERIES:
            return None
        with self._partition_lock:
            if self._partition is None:
                vectors = _faiss.flat_vectors(self.index_)
                if vectors is None or (_faiss.METRICS[self.metric].normalize and not np.einsum(
                        "ij,ij->i", vectors, vectors).all()):
                    # not flat, or zero rows, whose cosine ranks no distance: never
                    self._partition = False
                else:
                    n_lists = max(1, round(math.sqrt(self.n_samples_fit_) / 2))
                    with _faiss.faiss_threads(self.n_jobs):
                        centroids = _faiss.kmeans_centroids(vectors, n_lists,
                                                            _PARTITION_SEED)
                        self._partition = Partition(vectors, centroids)
            return self._partition or None

    def _fitted_copies(self, partition):
        """Groups of identical fitted rows, if copies are common (else None).

        A search of all the fitted rows then searches each distinct row once
        and gives its answer to its copies (the answer each copy would get):
        real data with rows copied thousands of times otherwise makes every
        copy a query against all the others. Looked for on the first such
        search, then kept; graph indexes know their groups already.
        """
        if self._duplicate_groups is not None:
            return self._duplicate_groups
        with self._partition_lock:
            if self._copies is None:
                self._copies = _faiss.fitted_copies(
                    self.index_, self._fit_X, self.metric, partition) or False
            return self._copies or None

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Compute the (weighted) graph of k-neighbours of the points in X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features), default=None
            The query points. If None, the graph of the training points, each
            point excluded from its own neighbours.

        n_neighbors : int, default=None
            Number of neighbours per query; defaults to the constructor's.

        mode : {"connectivity", "distance"}, default="connectivity"
            ``"connectivity"`` puts ones on the edges, ``"distance"`` the
            distances.

        Returns
        -------
        A : sparse matrix of shape (n_queries, n_samples_fit_)
            CSR matrix where ``A[i, j]`` is the weight of the edge from query
            ``i`` to fitted point ``j``.
        """
        check_is_fitted(self)
        if mode not in ("connectivity", "distance"):
            raise ValueError(
                'Unsupported mode, must be one of "connectivity", '
                f'or "distance" but got "{mode}" instead'
            )
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        dist, ind = self.kneighbors(X, n_neighbors, return_distance=True)
        n_queries = ind.shape[0]
        data = np.ones(ind.size) if mode == "connectivity" else dist.ravel()
        indptr = np.arange(0, ind.size + 1, n_neighbors)
        return csr_matrix((data, ind.ravel(), indptr), shape=(n_queries, self.n_samples_fit_))

    def __getstate__(self):
        state = self.__dict__.copy()
        if "index_" in state:
            state["index_"] = _faiss.serialize(state["index_"])
        state.pop("_partition_lock", None)
        state.pop("_partition", None)  # made again when needed
        state.pop("_copies", None)
        return state

    def __setstate__(self, state):
        if "index_" in state:
            params = _faiss.SearchParameters(
                state["nlist_"], state["nprobe_"], state["ef_search_"]
            )
            state["index_"] = _faiss.deserialize(state["index_"], params)
            state["_partition"] = None
            state["_copies"] = None
            state["_partition_lock"] = threading.Lock()
        self.__dict__.update(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _same_rows(X, fitted):
    """Whether X holds exactly the fitted rows, in order (one pass at most)."""
    if X is fitted:
        return True
    if X.shape != fitted.shape or sparse.issparse(X) or sparse.issparse(fitted):
        return False
    return bool(np.array_equal(X, fitted))
