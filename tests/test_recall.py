"""Recall you can trust: FaissNN's self-tuning to target_recall, measure_recall, and
the recall the samplers report.

The reference is scikit-learn's exact brute force over all queries (float64), with
tie-tolerant recall computed here, independently of smote_ann's own estimator.
"""

import pickle
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from smote_ann import (
    ADASYN,
    SMOTE,
    BorderlineSMOTE,
    FaissNN,
    LowRecallWarning,
    RecallReport,
    measure_recall,
)
from smote_ann.neighbors._faiss import default_nprobe
from smote_ann.neighbors._graph import exact_search
from smote_ann.neighbors._recall import smallest_reaching

K = 5


def make_clustered(n, d=32, intrinsic=8, n_clusters=32, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(n_clusters, intrinsic))
    z = centers[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, intrinsic))
    proj = rng.random((intrinsic, d))
    return np.sin(z @ proj * (rng.random(d) * 0.6 + 0.1)).astype(np.float32)


def true_recall(X, ind, k=K):
    """Tie-tolerant recall@k of kneighbors(X=None) answers `ind`, over every row,
    against scikit-learn's exact brute force in float64."""
    X64 = np.asarray(X, dtype=np.float64)
    ref = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X64)
    kth = ref.kneighbors()[0][:, -1]  # sklearn excludes each row by index
    d = np.sqrt(((X64[:, np.newaxis, :] - X64[ind]) ** 2).sum(axis=2))
    hit = d <= kth[:, np.newaxis] * (1 + 1e-5) + 1e-9
    return float((hit & (ind != np.arange(len(X))[:, np.newaxis])).mean())


@pytest.fixture(scope="module")
def classification():
    # make_classification's defaults (20 features, informative and redundant
    # ones): IVF with a fixed nprobe of 8 had recall 0.60 on such data
    X, _ = make_classification(20_000, random_state=0)
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def clustered():
    return make_clustered(20_000, seed=3)


@pytest.fixture(scope="module")
def duplicated(load_shared):
    """The minority class of ADBench donors, the search SMOTE runs on it: 36,710
    rows x 10 of which only 7,667 are distinct (a 20k sample keeps the copies)."""
    X, y = load_shared("adbench:11_donors")
    X = X[y == 1]
    X = X[np.random.default_rng(0).choice(len(X), 20_000, replace=False)]
    std = X.std(axis=0)
    X = ((X - X.mean(axis=0)) / np.where(std > 0, std, 1)).astype(np.float32)  # 4 constant columns
    assert len(np.unique(X, axis=0)) < len(X) // 2, "the point of this set is its duplicates"
    return X


# --------------------------------------------------------------------------
# Defaults reach the target, and the estimate is honest
# --------------------------------------------------------------------------
@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
@pytest.mark.parametrize("data", ["classification", "clustered", "duplicated"])
def test_defaults_reach_target_recall(request, data, index_type):
    X = request.getfixturevalue(data)
    nn = FaissNN(index_type=index_type, random_state=0).fit(X)
    measured = true_recall(X, nn.kneighbors(return_distance=False))
    assert measured >= 0.95
    assert abs(nn.recall_estimate_ - measured) <= 0.02
    assert nn.recall_sample_size_ == 1000
    assert 0 < nn.tuning_time_


def test_fixed_nprobe_was_far_below_target(classification):
    # what the tuning fixes: the old fixed default on the same data
    nn = FaissNN(index_type="ivf", target_recall=None, random_state=0).fit(classification)
    assert nn.nprobe_ == default_nprobe(nn.nlist_) and nn.recall_estimate_ is None
    assert true_recall(classification, nn.kneighbors(return_distance=False)) < 0.9


def test_tuned_value_is_the_smallest_reaching_the_target(clustered):
    X = clustered[:5000]
    nn = FaissNN(index_type="ivf", random_state=1, recall_sample_size=5000).fit(X)
    # the whole set is the sample: the sample's recall is the true recall
    below = FaissNN(index_type="ivf", nprobe=nn.nprobe_ - 1, random_state=1).fit(X)
    assert true_recall(X, nn.kneighbors(return_distance=False)) >= 0.95
    assert true_recall(X, below.kneighbors(return_distance=False)) < 0.95
    assert nn.recall_sample_size_ == 5000


def test_higher_target_gives_wider_search(clustered):
    low = FaissNN(index_type="hnsw", target_recall=0.8, random_state=0).fit(clustered)
    high = FaissNN(index_type="hnsw", target_recall=0.99, random_state=0).fit(clustered)
    assert low.ef_search_ < high.ef_search_
    assert low.recall_estimate_ >= 0.8 and high.recall_estimate_ >= 0.99


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_other_metrics_are_tuned_too(clustered, metric):
    X = clustered[:4000]
    nn = FaissNN(index_type="ivf", metric=metric, random_state=0).fit(X)
    exact = FaissNN(metric=metric).fit(X)
    ind, ref = nn.kneighbors()[1], exact.kneighbors()[0][:, -1]
    if metric == "cosine":
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        d = 1 - np.einsum("id,ikd->ik", Xn.astype(np.float64), Xn[ind].astype(np.float64))
    else:
        d = ((X[:, None, :].astype(np.float64) - X[ind]) ** 2).sum(axis=2)
    assert (d <= ref[:, None] + 1e-5).mean() >= 0.95
    assert nn.recall_estimate_ >= 0.95


# --------------------------------------------------------------------------
# What is tuned and what is not
# --------------------------------------------------------------------------
def test_parameters_set_by_the_user_are_respected(clustered):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # below target, but the user chose: no warning
        ivf = FaissNN(index_type="ivf", nprobe=1, random_state=0).fit(clustered)
        hnsw = FaissNN(index_type="hnsw", ef_search=6, hnsw_m=4, random_state=0).fit(clustered)
    assert ivf.nprobe_ == 1 and hnsw.ef_search_ == 6
    for nn in (ivf, hnsw):  # their recall is still measured, and honest
        measured = true_recall(clustered, nn.kneighbors(return_distance=False))
        assert measured < 0.95 and abs(nn.recall_estimate_ - measured) <= 0.02


def test_flat_is_exact_and_not_measured():
    nn = FaissNN().fit(make_clustered(500))
    assert nn.recall_estimate_ == 1.0 and nn.recall_sample_size_ == 0


def test_target_recall_none_uses_parameters_as_given(clustered):
    nn = FaissNN(index_type="hnsw", target_recall=None).fit(clustered[:2000])
    assert nn.ef_search_ == 32 and nn.recall_estimate_ is None and nn.recall_sample_size_ == 0


def test_sample_larger_than_the_data_uses_every_row():
    X = make_clustered(300, seed=5)
    nn = FaissNN(index_type="hnsw", recall_sample_size=10_000, random_state=0).fit(X)
    assert nn.recall_sample_size_ == 300
    assert nn.recall_estimate_ == pytest.approx(true_recall(X, nn.kneighbors()[1]), abs=1e-9)


def test_single_row_has_nothing_to_measure():
    nn = FaissNN(1, index_type="hnsw").fit(np.ones((1, 3)))
    assert nn.recall_estimate_ is None


def test_unreachable_target_warns_once_and_keeps_the_best(clustered):
    X = clustered[:4000]
    with pytest.warns(LowRecallWarning) as record:
        nn = FaissNN(index_type="IVF16,PQ4np", random_state=0).fit(X)
    assert len(record) == 1
    message = str(record[0].message)
    assert "below target_recall=0.95" in message and "index_type='flat'" in message
    assert f"{nn.recall_estimate_:.3f}" in message and f"nprobe={nn.nprobe_}" in message
    # the best setting found: no other nprobe does better on the whole set
    recalls = {p: true_recall(X, FaissNN(index_type="IVF16,PQ4np", nprobe=p,
                                         random_state=0).fit(X).kneighbors()[1])
               for p in (nn.nprobe_, 16)}
    assert recalls[nn.nprobe_] >= recalls[16] - 0.02
    assert record[0].filename == __file__  # points at the user's line


def test_index_without_knobs_is_measured_and_warned_about():
    X = make_clustered(3000, seed=2)
    with pytest.warns(LowRecallWarning, match=r"FaissNN\(index_type='PQ4np'\) reaches recall@5"):
        nn = FaissNN(index_type="PQ4np", random_state=0).fit(X)
    assert nn.recall_estimate_ < 0.95 and nn.nprobe_ is None and nn.ef_search_ is None


def test_chosen_parameters_are_a_function_of_random_state(classification):
    X = classification[:8000]
    fits = [FaissNN(index_type=t, random_state=s, n_jobs=1).fit(X)
            for t in ("ivf", "hnsw") for s in (7, 7)]
    for a, b in (fits[:2], fits[2:]):
        assert (a.nprobe_, a.ef_search_, a.recall_estimate_) == (b.nprobe_, b.ef_search_,
                                                                 b.recall_estimate_)


def test_pickle_keeps_the_tuned_parameters(classification):
    nn = FaissNN(index_type="ivf", random_state=0).fit(classification[:8000])
    assert nn.nprobe_ != default_nprobe(nn.nlist_)  # tuned away from the fixed default
    loaded = pickle.loads(pickle.dumps(nn))
    assert (loaded.nprobe_, loaded.recall_estimate_) == (nn.nprobe_, nn.recall_estimate_)
    np.testing.assert_array_equal(loaded.kneighbors()[1], nn.kneighbors()[1])


@pytest.mark.parametrize(
    "value, error, match",
    [
        (0, ValueError, "target_recall"),
        (1.5, ValueError, "target_recall"),
        (-0.1, ValueError, "target_recall"),
        ("high", TypeError, "target_recall"),
    ],
)
def test_bad_target_recall(value, error, match):
    with pytest.raises(error, match=match):
        FaissNN(index_type="ivf", target_recall=value).fit(make_clustered(100))


def test_bad_recall_sample_size():
    with pytest.raises(ValueError, match="recall_sample_size"):
        FaissNN(index_type="ivf", recall_sample_size=0).fit(make_clustered(100))


# --------------------------------------------------------------------------
# The search primitives
# --------------------------------------------------------------------------
def test_smallest_reaching_finds_the_smallest_from_any_start():
    values = np.minimum(1.0, np.arange(101) / 60)  # reaches 0.95 at 57
    for start in (1, 30, 57, 58, 100):
        calls = []

        def evaluate(p):
            calls.append(p)
            return values[p]

        p, value, reached = smallest_reaching(evaluate, 1, 100, start, 0.95)
        assert (p, reached) == (57, True) and value == values[57]
        assert len(calls) == len(set(calls)) <= 16  # memoised, logarithmic
    p, value, reached = smallest_reaching(lambda p: min(p, 40) / 100, 1, 100, 10, 0.95)
    assert (p, value, reached) == (40, 0.4, False)  # the smallest of the best


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("kind", ["dense", "float64", "sparse", "memmap"])
def test_exact_search_matches_sklearn(metric, kind, tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(9000, 7)).astype(np.float32)
    X = np.vstack([X, X[:500]])  # duplicates: ties the order must resolve
    queries = X[rng.choice(len(X), 300, replace=False)]
    if metric == "cosine":
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    data = {"dense": X, "float64": X.astype(np.float64),
            "sparse": sparse.csr_matrix(X)}.get(kind)
    if kind == "memmap":
        np.save(tmp_path / "X.npy", X)
        data = np.load(tmp_path / "X.npy", mmap_mode="r")
    _, ind = exact_search(data, queries, 8, metric=metric)
    ref = NearestNeighbors(n_neighbors=8, algorithm="brute", metric=metric).fit(X)
    ref_dist = ref.kneighbors(queries)[0]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True) if metric == "cosine" else X
    got = np.sqrt(((queries[:, None, :].astype(np.float64) - Xn[ind]) ** 2).sum(axis=2))
    if metric == "cosine":
        got = got**2 / 2  # 1 - cos of unit vectors
    np.testing.assert_allclose(got, ref_dist, atol=1e-5)


# --------------------------------------------------------------------------
# measure_recall
# --------------------------------------------------------------------------
class FixedAnswers(BaseEstimator):
    """Answers each query row i with the rows ``answers[i]``, whatever is asked."""

    def __init__(self, answers=None):
        self.answers = answers

    def fit(self, X, y=None):
        self.X_ = np.asarray(X)
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        rows = [int(np.flatnonzero((self.X_ == x).all(axis=1))[0]) for x in np.asarray(X)]
        ind = np.asarray(self.answers)[rows][:, :n_neighbors]
        return (np.zeros(ind.shape), ind) if return_distance else ind


def test_measure_recall_matches_a_hand_computed_case():
    # points on a line: the 2 nearest of 0 are 1, 3; of 1: 0, 3; of 3: 1, then 0 and 6
    # tied; of 6: 3, 10; of 10: 6, 3
    X = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    answers = [
        [0, 1, 2],  # row 0: self, 1, 3 -> 2 of 2
        [1, 0, 4],  # row 1: self, 0, 10 -> 1 of 2
        [2, 3, 4],  # row 2: self, 6, 10 -> 1 of 2 (6 ties with 0 for 2nd: it counts)
        [4, 0, 1],  # row 3: no self -> farthest dropped: 10, 0 -> 1 of 2
        [3, 2, 4],  # row 4: 6, 3 (self dropped) -> 2 of 2
    ]
    report = measure_recall(FixedAnswers(answers), X, n_neighbors=2, n_queries=10)
    assert isinstance(report, RecallReport)
    assert report.recall == pytest.approx((2 + 1 + 1 + 1 + 2) / 10)
    assert report.n_queries == 5 and report.n_neighbors == 2
    assert min(report.fit_seconds, report.query_seconds, report.exact_seconds) >= 0


def test_measure_recall_of_exact_and_approximate_estimators(clustered):
    exact = measure_recall(NearestNeighbors(), clustered, random_state=0)
    assert exact.recall == 1.0 and exact.n_queries == 1000
    coarse = FaissNN(index_type="ivf", nprobe=1, random_state=0)
    report = measure_recall(coarse, clustered, random_state=0)
    assert report.recall == pytest.approx(true_recall(clustered, report.estimator.kneighbors()[1]),
                                          abs=0.03)
    assert coarse.get_params()["nprobe"] == 1 and not hasattr(coarse, "index_")  # not touched


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"estimator": object()}, TypeError, "needs a neighbours estimator with fit and kneighbors"),
        ({"n_queries": 0}, ValueError, "n_queries must be a positive int; got n_queries=0"),
        ({"n_queries": -3}, ValueError, "n_queries must be a positive int"),
        ({"n_queries": 2.5}, TypeError, "n_queries must be an int"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors must be a positive int"),
        ({"n_neighbors": 50}, ValueError, "X has 20 rows but recall@50 needs at least 51"),
        ({"estimator": NearestNeighbors(metric="manhattan")}, ValueError,
         "metric is 'manhattan'"),
    ],
)
def test_measure_recall_bad_input(kwargs, error, match):
    args = {"estimator": FaissNN(), "X": make_clustered(20)} | kwargs
    with pytest.raises(error, match=match):
        measure_recall(args.pop("estimator"), args.pop("X"), **args)


# --------------------------------------------------------------------------
# The samplers report it
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def imbalanced():
    X, y = make_classification(12_000, weights=[0.8, 0.2], random_state=1)
    return X.astype(np.float32), y


def ivf(k):
    return FaissNN(n_neighbors=k + 1, index_type="ivf", random_state=0)


def test_smote_reports_the_recall_of_its_search(imbalanced):
    X, y = imbalanced
    sampler = SMOTE(k_neighbors=ivf(5), random_state=0).fit(X, y)
    assert not hasattr(sampler, "neighbor_recall_")  # fit_resample sets it
    sampler.fit_resample(X, y)
    assert list(sampler.neighbor_recall_) == [1]
    # the class's search, measured again from outside
    check = measure_recall(ivf(5), X[y == 1], n_neighbors=6, random_state=1)
    assert sampler.neighbor_recall_[1] >= 0.95 and check.recall >= 0.93
    exact = SMOTE(random_state=0)
    exact.fit_resample(X, y)
    assert exact.neighbor_recall_ == {1: 1.0}
    sklearn = SMOTE(k_neighbors=NearestNeighbors(n_neighbors=6), random_state=0)
    sklearn.fit_resample(X, y)
    assert sklearn.neighbor_recall_ == {}


@pytest.mark.parametrize("kind", ["borderline-1", "borderline-2"])
def test_borderline_reports_the_lowest_of_its_searches(imbalanced, kind):
    X, y = imbalanced
    coarse = FaissNN(11, index_type="ivf", nprobe=1, random_state=0)  # low, on purpose
    sampler = BorderlineSMOTE(m_neighbors=coarse, kind=kind, random_state=0)
    sampler.fit_resample(X, y)
    m_recall = FaissNN(11, index_type="ivf", nprobe=1, random_state=0).fit(X).recall_estimate_
    assert sampler.neighbor_recall_ == {1: pytest.approx(m_recall)}
    assert m_recall < 0.95


def test_adasyn_reports_its_searches(imbalanced):
    X, y = imbalanced
    sampler = ADASYN(n_neighbors=ivf(5), random_state=0)
    sampler.fit_resample(X, y)
    assert set(sampler.neighbor_recall_) == {1} and sampler.neighbor_recall_[1] >= 0.95


def test_ivf_list_ranks_match_the_quantizers_order(clustered):
    import faiss

    from smote_ann.neighbors._faiss import ivf_list_ranks

    X = clustered[:5000]
    nn = FaissNN(index_type="IVF50,Flat", target_recall=None, random_state=0).fit(X)
    ivf = faiss.extract_index_ivf(nn.index_)
    targets = np.random.default_rng(0).integers(0, len(X), size=(200, 4))
    ranks = ivf_list_ranks(nn.index_, X[:200], targets)
    _, order = ivf.quantizer.search(X[:200], 50)  # every list, nearest first
    lists = ivf.quantizer.assign(X[targets.ravel()], 1).reshape(targets.shape)
    expected = np.argmax(order[:, np.newaxis, :] == lists[:, :, np.newaxis], axis=2)
    np.testing.assert_array_equal(ranks, expected)


@pytest.mark.parametrize("index_type", ["PCA16,IVF64,Flat", "IVF64,SQ8", "IVF64_HNSW8,Flat",
                                        "HNSW8,SQ8"])
def test_factory_strings_with_ivf_or_hnsw_parts_are_tuned(clustered, index_type):
    X = clustered[:6000]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nn = FaissNN(index_type=index_type, random_state=0).fit(X)
    measured = true_recall(X, nn.kneighbors(return_distance=False))
    assert abs(nn.recall_estimate_ - measured) <= 0.02
    reached = nn.recall_estimate_ >= 0.95
    assert reached == (not [w for w in caught if w.category is LowRecallWarning])
    assert (nn.nprobe_ is not None) == ("IVF" in index_type)
    assert (nn.ef_search_ is not None) == index_type.startswith("HNSW")
