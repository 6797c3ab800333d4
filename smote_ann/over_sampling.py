"""SMOTE on the chunked, deterministic generation engine."""

# License: BSD-3-Clause

import numbers
from abc import abstractmethod
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._generation import ClassPlan, compact, entropy_from, iter_resampled
from ._sampling_strategy import resolve_sampling_strategy
from ._sinks import to_arrays
from ._tags import sampler_tags
from ._validation import (
    OutputFormatter,
    check_class_size,
    check_neighbors_object,
    check_sampler_input,
)
from .neighbors import FaissNN, _exclude_self

_NEIGHBORS_CONSTRAINT = [
    Interval(numbers.Integral, 1, None, closed="left"),
    HasMethods(["kneighbors", "kneighbors_graph"]),
]


class Resampling(NamedTuple):
    """A resampling in progress: its size and its blocks, not yet consumed."""

    n_rows: int
    n_features: int
    dtype: np.dtype
    y_dtype: np.dtype
    blocks: object  # iterator of (X_chunk, y_chunk)


def _exact_neighbors(n_neighbors):
    return FaissNN(n_neighbors=n_neighbors, index_type="flat")


class BaseOverSampler(OneToOneFeatureMixin, BaseEstimator):
    """Shared machinery of the SMOTE family: validation, strategy, engine, sinks.

    Subclasses implement `_make_plans`, the policy: which rows of each class
    may be bases, toward which partners, with which weights.
    """

    _estimator_type = "sampler"

    _parameter_constraints: dict = {
        "sampling_strategy": [
            Interval(numbers.Real, 0, 1, closed="right"),
            StrOptions({"auto", "minority", "not minority", "not majority", "all"}),
            Mapping,
            callable,
        ],
        "random_state": ["random_state"],
        "n_jobs": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Integral, None, -1, closed="right"),
            None,
        ],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def fit(self, X, y):
        """Check the inputs and resolve `sampling_strategy`; prefer :meth:`fit_resample`.

        Parameters
        ----------
        X : {array-like, dataframe} of shape (n_samples, n_features)
            Data to resample.

        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
            The estimator, with `sampling_strategy_` set.
        """
        self._validate_params()
        X, y = check_sampler_input(self, X, y)
        self.sampling_strategy_ = resolve_sampling_strategy(self.sampling_strategy, y)
        return self

    def fit_resample(self, X, y):
        """Resample the dataset.

        Parameters
        ----------
        X : {array-like, dataframe} of shape (n_samples, n_features)
            Data to resample. float32 stays float32; other numeric types
            become float64 (a DataFrame gets its column dtypes back).

        y : array-like of shape (n_samples,)
            Class labels, of any type.

        Returns
        -------
        X_resampled : {ndarray, dataframe} of shape (n_samples_new, n_features)
            The original rows in their order, then the synthetic rows class by
            class (in sorted class order).

        y_resampled : {ndarray, series} of shape (n_samples_new,)
            The labels of `X_resampled`.
        """
        formatter = OutputFormatter(X, y)
        r = self._resample(X, y, formatter)
        X_res, y_res = to_arrays(r.blocks, r.n_rows, r.n_features, r.dtype, r.y_dtype)
        return formatter(X_res, y_res)

    def _resample(self, X, y, formatter=None):
        """Validate, plan, and return the resampling as lazy blocks.

        The random draws depend on `random_state` and on the position of each
        synthetic row only. Every sink (in memory, files, a generator) consumes
        the same blocks, so they all hold the same rows in the same order.
        """
        self._validate_params()
        X, y = check_sampler_input(self, X, y, formatter)
        self.sampling_strategy_ = resolve_sampling_strategy(self.sampling_strategy, y)
        entropy = entropy_from(check_random_state(self.random_state))
        plans = self._make_plans(X, y, np.unique(y))
        if plans:
            X_src, plans = compact(X, plans)
        else:
            X_src = X[:0]
        blocks = iter_resampled(
            X, y, plans, X_src, entropy, chunk_size=self.chunk_size, n_jobs=self.n_jobs
        )
        n_rows = X.shape[0] + sum(p.n_samples for p in plans)
        return Resampling(n_rows, X.shape[1], X.dtype, y.dtype, blocks)

    @abstractmethod
    def _make_plans(self, X, y, classes):
        """One `ClassPlan` per class to oversample, in `sampling_strategy_` order."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = False
        return sampler_tags(tags)


def _neighbors_within(nn, X_fit, X_query, self_rows=None):
    """Fit `nn` on X_fit and return the neighbours of X_query, own index removed.

    Row ``i`` of X_query is row ``self_rows[i]`` of X_fit (default ``i``).
    The own index is removed wherever it appears, not assumed to be column 0:
    with duplicated rows or an approximate index it often is not.
    """
    nn.fit(X_fit)
    ind = np.asarray(nn.kneighbors(X_query, return_distance=False))
    if ind.shape[1] < 2:
        msg = (
            f"The neighbours estimator {nn!r} returns {ind.shape[1]} neighbour per "
            "sample, which is only the sample itself. Set its n_neighbors >= 2."
        )
        raise ValueError(msg)
    return _exclude_self(ind, self_rows=self_rows)


class SMOTE(BaseOverSampler):
    """Synthetic Minority Over-sampling Technique, chunked and deterministic.

    Same parameters and output as :class:`imblearn.over_sampling.SMOTE`, with
    FAISS nearest neighbours by default and synthetic rows generated in
    chunks of `chunk_size` rows through joblib workers: working memory stays
    bounded, and the output is bit-identical for any `n_jobs`, `chunk_size`
    or joblib backend.

    Each synthetic row is ``x + u * (x_nn - x)`` where ``x`` is a sample of
    the class, ``x_nn`` one of its `k_neighbors` nearest neighbours of the
    same class, drawn uniformly over (sample, neighbour) pairs, and
    ``u ~ U[0, 1)``.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        How many samples each class should have after resampling:

        - float (binary y only): the ratio ``N_minority / N_majority`` wanted
          after resampling;
        - ``"minority"``: grow the minority class to the majority's size;
        - ``"not minority"``: grow every class but the minority;
        - ``"not majority"``: grow every class but the majority;
        - ``"all"``: grow every class;
        - ``"auto"``: same as ``"not majority"``;
        - dict ``{class: n_samples}``: the wanted size of each class named;
        - callable ``y -> dict``: the same dict computed from y.

        Resolved exactly as imbalanced-learn resolves it for over-samplers.

    random_state : int, RandomState instance or None, default=None
        Controls the draws of bases, neighbours and steps. The same int gives
        the same output whatever `n_jobs`, `chunk_size` and joblib backend.

    k_neighbors : int or object, default=5
        The neighbourhood of each sample:

        - an int ``k``: an exact :class:`~smote_ann.FaissNN` with
          ``n_neighbors=k + 1`` (the sample itself plus ``k`` neighbours);
        - an object with ``kneighbors`` and ``kneighbors_graph`` (a
          :class:`~smote_ann.FaissNN` with an approximate index,
          :class:`sklearn.neighbors.NearestNeighbors`, ...). It is cloned,
          never modified, and as in imbalanced-learn its ``n_neighbors``
          counts the sample itself.

    n_jobs : int, default=None
        Number of joblib workers generating the synthetic rows (threads by
        default; follows ``joblib.parallel_config``, e.g. a Dask backend).
        None means 1 unless in a ``joblib.parallel_config`` context; -1
        means all processors. The neighbour search uses FAISS's own threads.

    chunk_size : int, default=32768
        Number of synthetic rows generated per task. Working memory beyond
        the input and the output is a few chunks of ``chunk_size x n_features``.
        Does not change the output.

    Attributes
    ----------
    sampling_strategy_ : dict
        ``{class: number of samples to add}`` for each class oversampled.

    nn_k_ : estimator object
        The neighbours estimator built from `k_neighbors`, fitted on the last
        class oversampled.

    n_features_in_ : int
        Number of features seen during :meth:`fit_resample`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit_resample`. Defined only when
        `X` has feature names that are all strings.

    See Also
    --------
    imblearn.over_sampling.SMOTE : The reference implementation.
    smote_ann.FaissNN : FAISS neighbours, exact or approximate.

    Notes
    -----
    The sample's own index is removed from its neighbour list wherever it
    appears (imbalanced-learn drops column 0, which with duplicated rows can
    be a duplicate and leave the sample as its own partner). If the sample is
    not among its own results, the farthest neighbour is dropped instead.

    Unlike imbalanced-learn, classes are not re-seeded one by one: each class
    has its own random stream derived from one seed per call.

    References
    ----------
    .. [1] N. V. Chawla, K. W. Bowyer, L. O. Hall, W. P. Kegelmeyer, "SMOTE:
       synthetic minority over-sampling technique", Journal of Artificial
       Intelligence Research, 16, 321-357, 2002.

    Examples
    --------
    >>> from collections import Counter
    >>> from sklearn.datasets import make_classification
    >>> from smote_ann import SMOTE
    >>> X, y = make_classification(n_samples=1000, weights=[0.9], random_state=0)
    >>> sorted(Counter(y).items())
    [(np.int64(0), 898), (np.int64(1), 102)]
    >>> X_res, y_res = SMOTE(random_state=0).fit_resample(X, y)
    >>> sorted(Counter(y_res).items())
    [(np.int64(0), 898), (np.int64(1), 898)]
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "k_neighbors": _NEIGHBORS_CONSTRAINT,
    }

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        random_state=None,
        k_neighbors=5,
        n_jobs=None,
        chunk_size=32768,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.k_neighbors = k_neighbors
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _make_plans(self, X, y, classes):
        self.nn_k_ = check_neighbors_object("k_neighbors", self.k_neighbors, 1, _exact_neighbors)
        plans = []
        for label, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            rows = np.flatnonzero(y == label)
            check_class_size(label, rows.size, self.nn_k_, "k_neighbors", self.k_neighbors)
            X_class = X[rows]
            neighbors = _neighbors_within(self.nn_k_, X_class, X_class)
            class_key = int(np.searchsorted(classes, label))
            plans.append(ClassPlan(label, class_key, n_samples, rows, rows[neighbors]))
        return plans
