"""FaissNN as the neighbours object of imbalanced-learn's over-samplers.

imbalanced-learn's convention: a neighbours *object* is used as given, and its
``n_neighbors`` counts the sample itself, so ``k_neighbors=5`` corresponds to
``FaissNN(n_neighbors=6)``. Each sampler is run twice with the same seed, once
with FaissNN (exact, flat index) and once with scikit-learn's
``NearestNeighbors``: on continuous data without ties both find the same
neighbours in the same order, so the resampled data must be the same. The
class counts are checked against the reference run and, where imbalanced-learn
balances exactly, against the majority count.
"""

from collections import Counter

import numpy as np
import pytest
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from smote_ann import FaissNN

over_sampling = pytest.importorskip("imblearn.over_sampling")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=600, n_features=6, n_informative=4, n_redundant=0, n_clusters_per_class=2,
        weights=[0.85, 0.15], class_sep=1.0, random_state=0,
    )
    return X, y


def _pair(neighbors, **kwargs):
    """(FaissNN, NearestNeighbors) with the same n_neighbors and kwargs."""
    return (FaissNN(n_neighbors=neighbors, **kwargs),
            NearestNeighbors(n_neighbors=neighbors, algorithm="brute"))


def _assert_same_resampling(make_sampler, X, y, exact_balance=True):
    X_faiss, y_faiss = make_sampler(0).fit_resample(X, y)
    X_ref, y_ref = make_sampler(1).fit_resample(X, y)
    counts = Counter(y_faiss)
    assert counts == Counter(y_ref)
    assert counts[1] > Counter(y)[1], "nothing was generated"
    if exact_balance:
        assert counts[0] == counts[1] == Counter(y)[0]
    np.testing.assert_array_equal(y_faiss, y_ref)
    np.testing.assert_allclose(X_faiss, X_ref, rtol=1e-10, atol=1e-10)


def test_smote(data):
    X, y = data
    nns = _pair(6)
    _assert_same_resampling(
        lambda i: over_sampling.SMOTE(k_neighbors=nns[i], random_state=0), X, y
    )


@pytest.mark.parametrize("kind", ["borderline-1", "borderline-2"])
def test_borderline_smote(data, kind):
    X, y = data
    k_nns, m_nns = _pair(6), _pair(11)
    _assert_same_resampling(
        lambda i: over_sampling.BorderlineSMOTE(
            k_neighbors=k_nns[i], m_neighbors=m_nns[i], kind=kind, random_state=0
        ),
        X, y,
    )


def test_svm_smote(data):
    X, y = data
    k_nns, m_nns = _pair(6), _pair(11)
    _assert_same_resampling(
        lambda i: over_sampling.SVMSMOTE(k_neighbors=k_nns[i], m_neighbors=m_nns[i],
                                         random_state=0),
        X, y, exact_balance=False,
    )


def test_adasyn(data):
    X, y = data
    nns = _pair(6)
    _assert_same_resampling(
        lambda i: over_sampling.ADASYN(n_neighbors=nns[i], random_state=0),
        X, y, exact_balance=False,
    )


def test_kmeans_smote(data):
    X, y = data
    nns = _pair(3)
    _assert_same_resampling(
        lambda i: over_sampling.KMeansSMOTE(
            k_neighbors=nns[i],
            kmeans_estimator=KMeans(n_clusters=4, n_init=1, random_state=0),
            cluster_balance_threshold=0.05,
            random_state=0,
        ),
        X, y, exact_balance=False,
    )


def test_smotenc_hands_sparse_one_hot_to_faissnn(data):
    X, y = data
    rng = np.random.default_rng(0)
    X = np.hstack([X, rng.integers(3, size=(len(X), 2))])  # two categorical columns
    nns = _pair(6)
    _assert_same_resampling(
        lambda i: over_sampling.SMOTENC(categorical_features=[6, 7], k_neighbors=nns[i],
                                        random_state=0),
        X, y,
    )
    # the neighbours object really received imbalanced-learn's sparse encoding
    RecordingFaissNN.seen.clear()
    over_sampling.SMOTENC(categorical_features=[6, 7], k_neighbors=RecordingFaissNN(6),
                          random_state=0).fit_resample(X, y)
    assert RecordingFaissNN.seen and all(RecordingFaissNN.seen)


class RecordingFaissNN(FaissNN):
    """FaissNN that records whether fit received a sparse matrix."""

    seen: list = []

    def fit(self, X, y=None):
        RecordingFaissNN.seen.append(sparse.issparse(X))
        return super().fit(X, y)


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_approximate_index_in_smote(data, index_type):
    X, y = data
    sampler = over_sampling.SMOTE(
        k_neighbors=FaissNN(n_neighbors=6, index_type=index_type, random_state=0),
        random_state=0,
    )
    X_res, y_res = sampler.fit_resample(X, y)
    assert Counter(y_res)[0] == Counter(y_res)[1] == Counter(y)[0]
    assert np.isfinite(X_res).all()


@pytest.mark.parametrize("name", ["SMOTE", "BorderlineSMOTE", "ADASYN"])
def test_our_samplers_in_imblearn_balanced_bagging(name, data):
    """imbalanced-learn's ensembles read the sampler's `_sampling_type`, as on
    its own samplers; each bag is resampled by ours."""
    import smote_ann
    from imblearn.ensemble import BalancedBaggingClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, y = data
    sampler = getattr(smote_ann, name)(random_state=0)
    bag = BalancedBaggingClassifier(DecisionTreeClassifier(random_state=0), n_estimators=3,
                                    sampler=sampler, random_state=0).fit(X, y)
    assert bag.sampler_._sampling_type == "over-sampling"
    assert bag.score(X, y) > 0.8
    # each bag's sampler oversampled the minority of the bootstrap sample it was given
    for pipe in bag.estimators_:
        strategy = pipe.steps[0][1].sampling_strategy_
        assert set(strategy) == {1} and strategy[1] > 0
