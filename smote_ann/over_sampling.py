"""SMOTE and its variants (Borderline-SMOTE, ADASYN) on the chunked, deterministic engine."""

# License: BSD-3-Clause

import numbers
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._generation import ClassPlan, Resampling, entropy_from
from ._readers import take_rows
from ._sampling_strategy import resolve_sampling_strategy
from ._sinks import to_arrays
from ._tags import sampler_tags
from ._warnings import warn_at_caller
from ._validation import (
    OutputFormatter,
    check_class_size,
    check_size,
    check_neighbors_object,
    check_sampler_input,
)
from .neighbors import FaissNN, _exclude_self

_NEIGHBORS_CONSTRAINT = [
    Interval(numbers.Integral, 1, None, closed="left"),
    HasMethods(["kneighbors", "kneighbors_graph"]),
]


# Docstring paragraphs shared by the samplers, filled in by `_shared_doc`.
_DOC_PARTS = {
    "random_state": """\
    random_state : int, RandomState instance or None, default=None
        Controls the random draws (bases, neighbours, steps), and seeds
        neighbour estimators left with ``random_state=None``. The same int
        gives the same output whatever `n_jobs`, `chunk_size` and joblib
        backend.
""",
    "neighbors_object": """\
        - an int ``k``: an exact :class:`~smote_ann.FaissNN` with
          ``n_neighbors=k + 1`` (the sample itself plus ``k`` neighbours);
        - an object with ``kneighbors`` and ``kneighbors_graph`` (a
          :class:`~smote_ann.FaissNN` with an approximate index,
          :class:`sklearn.neighbors.NearestNeighbors`, ...). It is cloned,
          never modified, and as in imbalanced-learn its ``n_neighbors``
          counts the sample itself.
""",
    "n_jobs": """\
    n_jobs : int, default=None
        Number of joblib workers generating the synthetic rows (threads by
        default; follows ``joblib.parallel_config``, e.g. a Dask backend).
        None means 1 unless in a ``joblib.parallel_config`` context; -1
        means all processors. The neighbour searches use FAISS's own threads.
""",
    "chunk_size": """\
    chunk_size : int, default=16384
        Number of synthetic rows generated per task. Working memory beyond
        the input and the output is a few chunks of ``chunk_size x n_features``.
        Does not change the output.
""",
    "neighbor_recall": """\
    neighbor_recall_ : dict
        ``{class: recall}``: for each class oversampled, the recall@k
        estimated by the neighbour searches that served it (the lowest, when
        several did), as reported by their fitted estimators'
        ``recall_estimate_`` (1.0 for an exact :class:`~smote_ann.FaissNN`;
        an approximate one measures itself, see its `target_recall`).
        Searches whose estimator reports no estimate (scikit-learn's
        ``NearestNeighbors``, ``FaissNN(target_recall=None)``) are left out,
        and a class served only by such searches is absent.

""",
    "fitted_features": """\
    n_features_in_ : int
        Number of features seen during :meth:`fit_resample`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit_resample`. Defined only when
        `X` has feature names that are all strings.
""",
}


def _shared_doc(cls):
    """Fill the shared ``%(name)s`` paragraphs into a sampler's docstring."""
    if cls.__doc__:  # None under python -OO
        cls.__doc__ = cls.__doc__ % _DOC_PARTS
    return cls


def _exact_neighbors(n_neighbors):
    return FaissNN(n_neighbors=n_neighbors, index_type="flat")


class BaseOverSampler(OneToOneFeatureMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared machinery of the SMOTE family: validation, strategy, engine, sinks.

    Subclasses implement `_make_plans`, the policy: which rows of each class
    may be bases, toward which partners, with which weights.
    """

    _estimator_type = "sampler"
    # imbalanced-learn's ensembles (BalancedBaggingClassifier) read it, as
    # they do on its own samplers
    _sampling_type = "over-sampling"

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
        X_res, y_res = to_arrays(self._resample(X, y, formatter))
        return formatter(X_res, y_res)

    def _resample(self, X, y, formatter=None):
        """Validate, plan, and return the `Resampling`, not yet generated.

        The random draws depend on `random_state` and on the position of each
        synthetic row only, so every sink (in memory, files, a generator)
        gets the same rows in the same order.
        """
        self._validate_params()
        X, y = check_sampler_input(self, X, y, formatter)
        strategy = resolve_sampling_strategy(self.sampling_strategy, y)
        entropy = entropy_from(check_random_state(self.random_state))
        # seeds unseeded neighbour estimators (IVF clustering) from the same entropy
        nn_seed = int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)
        # planned from locals only, the fitted attributes set at the end: two
        # calls at once on one instance (threads) each resample their own data
        plans, fitted = self._make_plans(X, y, np.unique(y), nn_seed, strategy)
        self.sampling_strategy_ = strategy
        for name, value in fitted.items():
            setattr(self, name, value)
        return Resampling(X, y, plans, entropy, self.chunk_size, self.n_jobs)

    @abstractmethod
    def _make_plans(self, X, y, classes, nn_seed, strategy):
        """Plan the classes of `strategy` (``{class: n_new}``): ``(plans, fitted)``.

        `plans`: one `ClassPlan` per class to oversample, in `strategy`
        order; `fitted`: the policy's fitted attributes, ``{name: value}``.
        `nn_seed` seeds the neighbour estimators whose ``random_state`` is None.
        """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = False
        return sampler_tags(tags)


def _neighbors_within(nn, X_fit, X_query, self_rows=None):
    """Fit a clone of `nn` on X_fit; the neighbours of X_query, own index removed.

    Row ``i`` of X_query is row ``self_rows[i]`` of X_fit (default ``i``).
    The own index is removed wherever it appears, not assumed to be column 0:
    with duplicated rows or an approximate index it often is not. The fitted
    clone (its index, its reference to X_fit) is released on return, so it
    does not occupy memory while rows are generated. Returns the neighbours
    and the clone's recall estimate (see `_recall_of`).
    """
    fitted = clone(nn).fit(X_fit)
    return _kneighbors_excluding_self(fitted, X_query, self_rows), _recall_of(fitted)


def _recall_of(fitted):
    """The recall estimate a fitted neighbours estimator reports, or None."""
    recall = getattr(fitted, "recall_estimate_", None)
    return None if recall is None else float(recall)


def _note_recall(recalls, label, *estimates):
    """Record for class `label` the lowest of the recall estimates given."""
    known = [r for r in estimates if r is not None]
    if known:
        recalls[label] = min(known + ([recalls[label]] if label in recalls else []))


def _kneighbors_excluding_self(nn, X_query, self_rows=None):
    """Neighbours of X_query from the fitted `nn`, own index removed (see `_neighbors_within`)."""
    ind = np.asarray(nn.kneighbors(X_query, return_distance=False))
    if ind.shape[1] < 2:
        msg = (
            f"The neighbours estimator {nn!r} returns {ind.shape[1]} neighbour per "
            "sample, which is only the sample itself. Set its n_neighbors >= 2."
        )
        raise ValueError(msg)
    return _exclude_self(ind, self_rows=self_rows)


@_shared_doc
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

%(random_state)s
    k_neighbors : int or object, default=5
        The neighbourhood of each sample:

%(neighbors_object)s
%(n_jobs)s
%(chunk_size)s
    Attributes
    ----------
    sampling_strategy_ : dict
        ``{class: number of samples to add}`` for each class oversampled.

    nn_k_ : estimator object
        The neighbours estimator built from `k_neighbors`, unfitted: each class
        is searched by a fitted clone, released before generation so that its
        index does not occupy memory while rows are generated.

%(neighbor_recall)s%(fitted_features)s
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
        chunk_size=16384,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.k_neighbors = k_neighbors
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _make_plans(self, X, y, classes, nn_seed, strategy):
        nn_k = check_neighbors_object("k_neighbors", self.k_neighbors, 1, _exact_neighbors, nn_seed)
        recalls, plans = {}, []
        for label, n_samples in strategy.items():
            if n_samples == 0:
                continue
            rows = np.flatnonzero(y == label)
            check_class_size(label, rows.size, nn_k, "k_neighbors", self.k_neighbors)
            X_class = take_rows(X, rows)  # X[rows], light on a memory-mapped X
            neighbors, recall = _neighbors_within(nn_k, X_class, X_class)
            _note_recall(recalls, label, recall)
            class_key = int(np.searchsorted(classes, label))
            plans.append(ClassPlan(label, class_key, n_samples, rows, rows[neighbors]))
        return plans, {"nn_k_": nn_k, "neighbor_recall_": recalls}


# ---------------------------------------------------------------------------
# Policies that look at the whole dataset: Borderline-SMOTE and ADASYN
# ---------------------------------------------------------------------------
def _other_class_neighbors(nn, name, value, X, y, labels):
    """For each class in `labels`: its rows and, per row, how many of its
    neighbours in the whole dataset belong to another class.

    A clone of `nn` is fitted once on all of X and released on return; each
    row's own index is removed from its neighbours by index. Returns
    ``{label: (rows, n_other)}``, the number of neighbours per row and the
    clone's recall estimate.
    """
    check_size("X", X.shape[0], nn, name, value)
    nn = clone(nn).fit(X)
    result, n_neighbors = {}, None
    for label in labels:
        rows = np.flatnonzero(y == label)
        neighbors = _kneighbors_excluding_self(nn, take_rows(X, rows), self_rows=rows)
        n_neighbors = neighbors.shape[1]
        result[label] = rows, np.sum(y[neighbors] != label, axis=1)
    return result, n_neighbors, _recall_of(nn)


@_shared_doc
class BorderlineSMOTE(BaseOverSampler):
    """Borderline-SMOTE: SMOTE from the samples on the class border only.

    Same parameters and output semantics as
    :class:`imblearn.over_sampling.BorderlineSMOTE`, on the chunked,
    deterministic engine of :class:`SMOTE`, with FAISS nearest neighbours by
    default.

    A sample of the class being oversampled is *in danger* when at least
    half, but not all, of its `m_neighbors` nearest neighbours in the whole
    dataset belong to other classes (one-vs-rest). Only samples in danger
    serve as bases; samples with no neighbour of another class ("safe") or
    only such neighbours ("noise") do not. Each synthetic row is
    ``x + u * (x_nn - x)`` with ``u ~ U[0, 1)`` and ``x_nn`` drawn as follows:

    - ``kind="borderline-1"``: among the `k_neighbors` nearest neighbours of
      ``x`` within its class;
    - ``kind="borderline-2"``: among its `k_neighbors` nearest neighbours in
      the whole dataset; when ``x_nn`` belongs to another class the step is
      further multiplied by ``v ~ U[0, 0.5)``, so the synthetic row stays in
      the half of the segment nearer to ``x``.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        How many samples each class should have after resampling, resolved
        exactly as imbalanced-learn resolves it for over-samplers (see
        :class:`SMOTE`).

%(random_state)s
    k_neighbors : int or object, default=5
        The neighbours toward which synthetic samples are drawn:

%(neighbors_object)s
    m_neighbors : int or object, default=10
        The neighbours in the whole dataset that decide whether a sample is
        in danger; an int or an object, as for `k_neighbors`. This is the
        expensive search (every sample of the class against all samples),
        where an approximate :class:`~smote_ann.FaissNN` (``index_type="ivf"``
        or ``"hnsw"``) pays most.

    kind : {"borderline-1", "borderline-2"}, default="borderline-1"
        Whether synthetic samples are drawn toward neighbours of the same
        class only (``"borderline-1"``) or toward neighbours of any class,
        with shortened steps toward other classes (``"borderline-2"``).

%(n_jobs)s
%(chunk_size)s
    Attributes
    ----------
    sampling_strategy_ : dict
        ``{class: number of samples to add}`` for each class oversampled, as
        requested. A class without samples in danger gets none (see Notes).

    nn_k_ : estimator object
        The neighbours estimator built from `k_neighbors`, unfitted: searches
        use fitted clones, released before generation so that their indexes
        do not occupy memory while rows are generated.

    nn_m_ : estimator object
        The neighbours estimator built from `m_neighbors`, unfitted (as
        `nn_k_`).

    in_danger_indices_ : dict of ndarray
        ``{class: indices}``: the rows of X in danger, which served as bases,
        for each class that had some. Also available under imbalanced-learn's
        name ``in_danger_indices``.

%(neighbor_recall)s%(fitted_features)s
    See Also
    --------
    imblearn.over_sampling.BorderlineSMOTE : The reference implementation.
    SMOTE : Oversample from every sample of the class.
    ADASYN : Oversample each sample in proportion to its neighbours of other
        classes.

    Notes
    -----
    When no sample of a class is in danger (all are safe or noise),
    imbalanced-learn silently generates nothing for that class. This class
    does the same, so class counts stay equal to imbalanced-learn's, but
    emits one ``UserWarning`` per call naming the classes left as they were.
    Use :class:`SMOTE` for such classes.

    The sample's own index is removed from its neighbour lists wherever it
    appears (imbalanced-learn drops column 0, which with duplicated rows can
    be a duplicate, possibly of another class). Multiclass data is handled
    one-vs-rest, as in imbalanced-learn.

    References
    ----------
    .. [1] H. Han, W.-Y. Wang, B.-H. Mao, "Borderline-SMOTE: a new
       over-sampling method in imbalanced data sets learning", Advances in
       Intelligent Computing (ICIC 2005), LNCS 3644, 878-887, 2005.

    Examples
    --------
    >>> from collections import Counter
    >>> from sklearn.datasets import make_classification
    >>> from smote_ann import BorderlineSMOTE
    >>> X, y = make_classification(n_samples=1000, weights=[0.9], flip_y=0.05,
    ...                            random_state=0)
    >>> sorted(Counter(y).items())
    [(np.int64(0), 877), (np.int64(1), 123)]
    >>> sampler = BorderlineSMOTE(random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> sorted(Counter(y_res).items())
    [(np.int64(0), 877), (np.int64(1), 877)]
    >>> int(sampler.in_danger_indices_[1].size)
    77
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "k_neighbors": _NEIGHBORS_CONSTRAINT,
        "m_neighbors": _NEIGHBORS_CONSTRAINT,
        "kind": [StrOptions({"borderline-1", "borderline-2"})],
    }

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        random_state=None,
        k_neighbors=5,
        m_neighbors=10,
        kind="borderline-1",
        n_jobs=None,
        chunk_size=16384,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.k_neighbors = k_neighbors
        self.m_neighbors = m_neighbors
        self.kind = kind
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    @property
    def in_danger_indices(self):
        """imbalanced-learn's name for `in_danger_indices_`."""
        return self.in_danger_indices_

    def _make_plans(self, X, y, classes, nn_seed, strategy):
        nn_m_ = check_neighbors_object("m_neighbors", self.m_neighbors, 1, _exact_neighbors, nn_seed)
        nn_k_ = check_neighbors_object("k_neighbors", self.k_neighbors, 1, _exact_neighbors, nn_seed)
        in_danger_indices, recalls = {}, {}
        fitted = {"nn_m_": nn_m_, "nn_k_": nn_k_, "in_danger_indices_": in_danger_indices,
                  "neighbor_recall_": recalls}
        targets = {c: n for c, n in strategy.items() if n > 0}
        if not targets:
            return [], fitted
        whole_dataset = self.kind == "borderline-2"
        if whole_dataset:
            check_size("X", X.shape[0], nn_k_, "k_neighbors", self.k_neighbors)
        other, m, m_recall = _other_class_neighbors(
            nn_m_, "m_neighbors", self.m_neighbors, X, y, targets
        )
        # borderline-2: one fitted clone for all classes, released on return
        nn_k = clone(nn_k_).fit(X) if whole_dataset else None
        plans, no_danger = [], []
        for label, n_samples in targets.items():
            rows, n_other = other[label]
            # imbalanced-learn's rule: in danger when m/2 <= n_other < m.
            in_danger = (n_other >= m / 2) & (n_other < m)
            bases = rows[in_danger]
            if bases.size == 0:
                no_danger.append(label)
                continue
            in_danger_indices[label] = bases
            class_key = int(np.searchsorted(classes, label))
            if whole_dataset:
                _note_recall(recalls, label, m_recall, _recall_of(nn_k))
                partners = _kneighbors_excluding_self(nn_k, take_rows(X, bases), self_rows=bases)
                foreign = y[partners] != label
                plans.append(ClassPlan(label, class_key, n_samples, bases, partners, foreign=foreign))
            else:
                # checked only for classes with danger rows: a class without
                # any is skipped whatever its size, as in imbalanced-learn
                check_class_size(label, rows.size, nn_k_, "k_neighbors", self.k_neighbors)
                neighbors, k_recall = _neighbors_within(
                    nn_k_, take_rows(X, rows), take_rows(X, bases), self_rows=np.flatnonzero(in_danger)
                )
                _note_recall(recalls, label, m_recall, k_recall)
                plans.append(ClassPlan(label, class_key, n_samples, bases, rows[neighbors]))
        if no_danger:
            msg = (
                f"BorderlineSMOTE found no sample in danger in class(es) {no_danger}: "
                f"none has at least half, but not all, of its {m} nearest neighbours "
                "(m_neighbors) in other classes, so no samples were generated for "
                "them and they keep their size (imbalanced-learn skips them silently). "
                "Use SMOTE to oversample such classes, or change m_neighbors."
            )
            warn_at_caller(msg)
        return plans, fitted


class NoOtherClassNeighborsError(ValueError, RuntimeError):
    """ADASYN found no neighbour of another class: a ValueError, and the
    RuntimeError imbalanced-learn raises there, so either ``except`` works."""


@_shared_doc
class ADASYN(BaseOverSampler):
    """ADASYN: adaptive synthetic sampling, more samples where classes mix.

    Same parameters and output semantics as
    :class:`imblearn.over_sampling.ADASYN`, on the chunked, deterministic
    engine of :class:`SMOTE`, with FAISS nearest neighbours by default.

    Each sample ``x_i`` of the class being oversampled gets a weight
    ``r_i``: the share of its `n_neighbors` nearest neighbours in the whole
    dataset that belong to other classes (one-vs-rest). It then serves as
    base for ``rint(r_i / sum(r) * n_samples)`` synthetic rows
    ``x_i + u * (x_nn - x_i)``, with ``x_nn`` drawn among its `n_neighbors`
    nearest neighbours within its class and ``u ~ U[0, 1)``. Because of the
    rounding, the number of rows generated may differ slightly from the one
    `sampling_strategy` asks for, as in imbalanced-learn.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        How many samples each class should have after resampling (before the
        rounding above), resolved exactly as imbalanced-learn resolves it for
        over-samplers (see :class:`SMOTE`).

%(random_state)s
    n_neighbors : int or object, default=5
        The neighbourhood of each sample, used both for the weights (in the
        whole dataset) and for the partners (within the class):

%(neighbors_object)s
        The whole-dataset search is the expensive one, where an approximate
        :class:`~smote_ann.FaissNN` pays most.

%(n_jobs)s
%(chunk_size)s
    Attributes
    ----------
    sampling_strategy_ : dict
        ``{class: number of samples to add}`` for each class oversampled, as
        requested; the number generated is ``synthetic_counts_[c].sum()``.

    nn_ : estimator object
        The neighbours estimator built from `n_neighbors`, unfitted: searches
        use fitted clones, released before generation so that their indexes
        do not occupy memory while rows are generated.

    synthetic_counts_ : dict of ndarray
        ``{class: counts}``: the number of synthetic rows generated from each
        sample of the class, in the order of ``np.flatnonzero(y == class)``.

%(neighbor_recall)s%(fitted_features)s
    See Also
    --------
    imblearn.over_sampling.ADASYN : The reference implementation.
    SMOTE : Oversample every sample of the class alike.
    BorderlineSMOTE : Oversample only the samples on the class border.

    Notes
    -----
    Raises a ValueError where imbalanced-learn raises: when no sample of a
    class has a neighbour of another class (the weights are all zero: the
    class is well separated and SMOTE suits it better; the error is also a
    RuntimeError, what imbalanced-learn raises there), and when the rounding
    leaves no sample to generate.

    The synthetic rows of a class come base by base, in the order of the
    class's rows, as in imbalanced-learn. The sample's own index is removed
    from its neighbour lists wherever it appears (imbalanced-learn drops
    column 0, which with duplicated rows can be a duplicate, possibly of
    another class).

    References
    ----------
    .. [1] H. He, Y. Bai, E. A. Garcia, S. Li, "ADASYN: adaptive synthetic
       sampling approach for imbalanced learning", IEEE International Joint
       Conference on Neural Networks (IJCNN 2008), 1322-1328, 2008.

    Examples
    --------
    >>> from collections import Counter
    >>> from sklearn.datasets import make_classification
    >>> from smote_ann import ADASYN
    >>> X, y = make_classification(n_samples=1000, weights=[0.9], flip_y=0.05,
    ...                            random_state=0)
    >>> sorted(Counter(y).items())
    [(np.int64(0), 877), (np.int64(1), 123)]
    >>> sampler = ADASYN(random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> sorted(Counter(y_res).items())
    [(np.int64(0), 877), (np.int64(1), 885)]
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "n_neighbors": _NEIGHBORS_CONSTRAINT,
    }

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        random_state=None,
        n_neighbors=5,
        n_jobs=None,
        chunk_size=16384,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _make_plans(self, X, y, classes, nn_seed, strategy):
        nn = check_neighbors_object("n_neighbors", self.n_neighbors, 1, _exact_neighbors, nn_seed)
        synthetic_counts, recalls = {}, {}
        fitted = {"nn_": nn, "synthetic_counts_": synthetic_counts, "neighbor_recall_": recalls}
        targets = {c: n for c, n in strategy.items() if n > 0}
        if not targets:
            return [], fitted
        for label in targets:
            n_class = int(np.count_nonzero(y == label))
            check_class_size(label, n_class, nn, "n_neighbors", self.n_neighbors)
        other, k, weight_recall = _other_class_neighbors(
            nn, "n_neighbors", self.n_neighbors, X, y, targets
        )
        for label, n_samples in targets.items():
            synthetic_counts[label] = self._counts(label, n_samples, other[label][1], k)
        plans = []
        for label in targets:
            rows, counts = other[label][0], synthetic_counts[label]
            used = np.flatnonzero(counts)
            neighbors, recall = _neighbors_within(
                nn, take_rows(X, rows), take_rows(X, rows[used]), self_rows=used
            )
            _note_recall(recalls, label, weight_recall, recall)
            class_key = int(np.searchsorted(classes, label))
            plans.append(
                ClassPlan(
                    label, class_key, int(counts.sum()), rows[used], rows[neighbors],
                    base_counts=counts[used],
                )
            )
        return plans, fitted

    @staticmethod
    def _counts(label, n_samples, n_other, k):
        """imbalanced-learn's per-sample counts, with the same float operations."""
        ratio = n_other / k
        total = np.sum(ratio)
        if not total:
            msg = (
                f"ADASYN found no neighbour of another class among the {k} nearest "
                f"neighbours (n_neighbors) of any sample of class {label!r}, so every "
                "weight is zero and there is nothing to adapt to. Use SMOTE for this "
                "class, or increase n_neighbors."
            )
            raise NoOtherClassNeighborsError(msg)
        ratio /= total
        counts = np.rint(ratio * n_samples).astype(np.intp)
        if not counts.any():
            msg = (
                f"ADASYN would generate no samples for class {label!r}: the "
                f"{n_samples} samples asked for, spread over {n_other.size} weighted "
                "samples, all round to zero. Ask for more samples in "
                "sampling_strategy, or use SMOTE."
            )
            raise ValueError(msg)
        return counts
