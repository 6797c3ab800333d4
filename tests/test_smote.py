"""SMOTE: API, guarantees and bad input, checked against independent references."""

import pickle
import warnings

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import parametrize_with_checks

from smote_ann import SMOTE, FaissNN
from smote_ann._generation import BLOCK_SIZE

# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def make_data(n=600, n_features=4, weights=(0.8, 0.2), dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(len(weights), size=n, p=weights)
    X = rng.standard_normal((n, n_features)) + y[:, None] * 1.5
    return X.astype(dtype), y


def segment_partners(X_class, synthetic, k, atol=1e-6):
    """For each synthetic row, whether it lies on a segment from a class sample
    to one of that sample's k nearest same-class neighbours.

    The neighbourhoods come from scikit-learn's exact search and are
    tie-tolerant: every sample within the k-th neighbour distance counts.
    """
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X_class)
    dist, _ = nn.kneighbors(X_class)
    kth = dist[:, -1]
    full = np.linalg.norm(X_class[:, None, :] - X_class[None, :, :], axis=2)
    np.fill_diagonal(full, np.inf)  # a sample is not its own partner
    base_idx, partner_idx = np.nonzero(full <= kth[:, None] * (1 + 1e-9) + 1e-12)
    a = X_class[base_idx]  # (P, d)
    b = X_class[partner_idx]
    ab = b - a
    ok = np.zeros(len(synthetic), dtype=bool)
    for start in range(0, len(synthetic), 256):
        s = synthetic[start : start + 256, None, :]  # (S, 1, d)
        denom = np.maximum((ab**2).sum(axis=1), 1e-300)
        u = ((s - a) * ab).sum(axis=2) / denom  # (S, P)
        residual = np.linalg.norm(s - (a + u[..., None] * ab), axis=2)
        on_segment = (u >= -atol) & (u <= 1 + atol) & (residual <= atol * (1 + np.abs(a).max()))
        ok[start : start + 256] = on_segment.any(axis=1)
    return ok


# ---------------------------------------------------------------------------
# estimator checks: scikit-learn's, and imbalanced-learn's sampler checks
# ---------------------------------------------------------------------------

# The expected-failures tables are empty on purpose: SMOTE passes every check.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [SMOTE(random_state=0)], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _imblearn_checks():
    try:
        from imblearn.utils.estimator_checks import _yield_all_checks
    except ImportError:
        return []
    return list(_yield_all_checks(SMOTE(random_state=0)))


@pytest.mark.parametrize("check", _imblearn_checks(), ids=lambda c: getattr(c, "__name__", str(c)))
def test_imblearn_sampler_checks(check):
    pytest.importorskip("imblearn")
    pytest.importorskip("pandas")
    with warnings.catch_warnings():
        # check_samplers_2d_target passes y of shape (n, 1) on purpose; scikit-learn's
        # column_or_1d warns about it, as for any estimator.
        warnings.simplefilter("ignore", DataConversionWarning)
        check("SMOTE", SMOTE(random_state=0))


# ---------------------------------------------------------------------------
# what comes out
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["auto", "minority", "not majority", "all", 0.6, {1: 400}])
def test_counts_equal_targets_and_originals_first(strategy):
    X, y = make_data()
    smote = SMOTE(sampling_strategy=strategy, random_state=0)
    X_res, y_res = smote.fit_resample(X, y)
    counts = dict(zip(*np.unique(y, return_counts=True)))
    expected = {c: counts[c] + smote.sampling_strategy_.get(c, 0) for c in counts}
    assert dict(zip(*np.unique(y_res, return_counts=True))) == expected
    np.testing.assert_array_equal(X_res[: len(X)], X)
    np.testing.assert_array_equal(y_res[: len(y)], y)


def test_counts_match_imblearn_multiclass():
    imblearn = pytest.importorskip("imblearn.over_sampling")
    X, y = make_data(n=900, weights=(0.6, 0.25, 0.1, 0.05))
    for strategy in ["auto", "not minority", "all", {2: 300, 3: 100}]:
        _, y_ours = SMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
        _, y_ref = imblearn.SMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
        assert np.array_equal(np.sort(y_ours), np.sort(y_ref))
        # synthetic rows come class by class, in sorted class order, as in imblearn
        np.testing.assert_array_equal(y_ours, y_ref)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_synthetic_rows_lie_on_segments_to_k_nearest_neighbours(k):
    X, y = make_data(n=300, n_features=3, weights=(0.85, 0.15))
    X_res, y_res = SMOTE(k_neighbors=k, random_state=1).fit_resample(X, y)
    synthetic = X_res[len(X) :]
    assert np.all(y_res[len(X) :] == 1)
    assert segment_partners(X[y == 1], synthetic, k).all()


def test_synthetic_rows_are_not_on_farther_segments():
    # The reference check must be able to fail: with k=1 the rows would not all
    # lie on segments to the first neighbour if SMOTE used k=5.
    X, y = make_data(n=300, n_features=3, weights=(0.85, 0.15))
    X_res, _ = SMOTE(k_neighbors=5, random_state=1).fit_resample(X, y)
    assert not segment_partners(X[y == 1], X_res[len(X) :], 1).all()


def test_own_index_removed_wherever_it_appears():
    # A neighbours object that returns each sample LAST (behind its 3 true
    # neighbours): dropping column 0, as imbalanced-learn does, would keep the
    # sample as its own partner and copy it exactly.
    class SelfLast(NearestNeighbors):
        def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
            dist, ind = super().kneighbors(X, n_neighbors, return_distance=True)
            dist, ind = np.roll(dist, -1, axis=1), np.roll(ind, -1, axis=1)
            return (dist, ind) if return_distance else ind

    X, y = make_data(n=400, n_features=3)
    X_res, _ = SMOTE(k_neighbors=SelfLast(n_neighbors=4), random_state=0).fit_resample(X, y)
    synthetic = X_res[len(X) :]
    minority = X[y == 1]
    exact_copies = (synthetic[:, None, :] == minority[None, :, :]).all(axis=2).any(axis=1)
    assert not exact_copies.any()
    assert segment_partners(minority, synthetic, 3).all()


def test_duplicated_minority_rows():
    # 10 distinct rows, each repeated 8 times: column 0 of a neighbour query is
    # often a duplicate, not the sample itself.
    rng = np.random.default_rng(3)
    minority = np.repeat(rng.standard_normal((10, 2)) + 4, 8, axis=0)
    X = np.vstack([rng.standard_normal((300, 2)), minority])
    y = np.r_[np.zeros(300, int), np.ones(80, int)]
    X_res, y_res = SMOTE(k_neighbors=3, random_state=0).fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [300, 300]
    # every partner is a duplicate (same values, another index) or a real neighbour
    assert segment_partners(minority, X_res[len(X) :], 3).all()


def test_float32_kept_and_int_becomes_float64():
    X, y = make_data(dtype=np.float32)
    X_res, _ = SMOTE(random_state=0).fit_resample(X, y)
    assert X_res.dtype == np.float32
    X_int = np.round(X * 10).astype(np.int64)
    X_res, _ = SMOTE(random_state=0).fit_resample(X_int, y)
    assert X_res.dtype == np.float64


def test_string_labels_and_pandas_round_trip():
    pd = pytest.importorskip("pandas")
    X, y = make_data(n=400)
    labels = np.where(y == 1, "fraud", "ok")
    X_df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).astype({"a": np.float32})
    y_s = pd.Series(labels, name="target")
    X_res, y_res = SMOTE(random_state=0).fit_resample(X_df, y_s)
    assert isinstance(X_res, pd.DataFrame) and isinstance(y_res, pd.Series)
    assert list(X_res.columns) == ["a", "b", "c", "d"]
    assert X_res.dtypes.tolist() == X_df.dtypes.tolist()
    assert y_res.name == "target"
    assert y_res.value_counts().to_dict() == {"ok": (y == 0).sum(), "fraud": (y == 0).sum()}
    X_np, y_np = SMOTE(random_state=0).fit_resample(X_df.to_numpy(), labels)
    np.testing.assert_allclose(X_res.to_numpy(dtype=np.float64), X_np, rtol=1e-6)
    assert list(y_np) == list(y_res)


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------


def test_bit_identical_across_n_jobs_chunk_size_and_backend():
    X, y = make_data(n=3000, weights=(0.7, 0.2, 0.1), dtype=np.float32)
    reference, y_ref = SMOTE(random_state=42, n_jobs=1).fit_resample(X, y)
    for n_jobs, chunk_size in [(1, 1), (2, 7), (2, 1000), (1, 4096), (2, 5000)]:
        X_res, y_res = SMOTE(random_state=42, n_jobs=n_jobs, chunk_size=chunk_size).fit_resample(X, y)
        assert X_res.tobytes() == reference.tobytes(), (n_jobs, chunk_size)
        assert np.array_equal(y_res, y_ref)
    for backend in ["loky", "threading"]:
        with parallel_config(backend=backend):
            X_res, _ = SMOTE(random_state=42, n_jobs=2, chunk_size=333).fit_resample(X, y)
        assert X_res.tobytes() == reference.tobytes(), backend


def test_same_seed_same_output_other_seed_other_output():
    X, y = make_data()
    a, _ = SMOTE(random_state=0).fit_resample(X, y)
    b, _ = SMOTE(random_state=0).fit_resample(X, y)
    c, _ = SMOTE(random_state=1).fit_resample(X, y)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    d, _ = SMOTE(random_state=np.random.RandomState(0)).fit_resample(X, y)
    assert d.tobytes() == a.tobytes()


def test_classes_do_not_draw_the_same_numbers():
    # Two classes with identical geometry: with per-class re-seeding (as in
    # imbalanced-learn) both would get the same bases, partners and steps.
    rng = np.random.default_rng(0)
    block = rng.standard_normal((20, 2))
    X = np.vstack([rng.standard_normal((100, 2)), block, block + 100])
    y = np.r_[np.zeros(100, int), np.ones(20, int), np.full(20, 2)]
    X_res, y_res = SMOTE(random_state=0).fit_resample(X, y)
    new1 = X_res[len(X) :][y_res[len(X) :] == 1]
    new2 = X_res[len(X) :][y_res[len(X) :] == 2] - 100
    assert not np.allclose(new1, new2)


# ---------------------------------------------------------------------------
# neighbours objects
# ---------------------------------------------------------------------------


def test_int_k_neighbors_is_exact_faissnn_with_k_plus_one():
    X, y = make_data()
    smote = SMOTE(k_neighbors=4, random_state=0)
    smote.fit_resample(X, y)
    assert isinstance(smote.nn_k_, FaissNN)
    assert smote.nn_k_.n_neighbors == 5 and smote.nn_k_.index_type == "flat"


@pytest.mark.parametrize(
    "nn",
    [FaissNN(n_neighbors=6, index_type="hnsw", random_state=0), NearestNeighbors(n_neighbors=6)],
    ids=["faiss-hnsw", "sklearn"],
)
def test_user_neighbours_object_is_cloned_not_modified(nn):
    X, y = make_data()
    params = nn.get_params()
    X_res, y_res = SMOTE(k_neighbors=nn, random_state=0).fit_resample(X, y)
    assert nn.get_params() == params
    assert not hasattr(nn, "n_samples_fit_")
    assert np.bincount(y_res).tolist() == [np.sum(y == 0)] * 2
    assert segment_partners(X[y == 1], X_res[len(X) :], 5).mean() > 0.95


def test_duck_typed_neighbours_object():
    class Duck:
        def __init__(self, n_neighbors=4):
            self.n_neighbors = n_neighbors

        def get_params(self, deep=True):
            return {"n_neighbors": self.n_neighbors}

        def set_params(self, **params):
            self.n_neighbors = params["n_neighbors"]
            return self

        def fit(self, X):
            self._nn = NearestNeighbors(n_neighbors=self.n_neighbors).fit(X)
            return self

        def kneighbors(self, X, return_distance=True):
            return self._nn.kneighbors(X, return_distance=return_distance)

        def kneighbors_graph(self, X):
            return self._nn.kneighbors_graph(X)

    X, y = make_data()
    X_res, _ = SMOTE(k_neighbors=Duck(), random_state=0).fit_resample(X, y)
    assert segment_partners(X[y == 1], X_res[len(X) :], 3).all()


def test_pickle_and_clone():
    X, y = make_data()
    smote = SMOTE(random_state=0)
    X_res, _ = smote.fit_resample(X, y)
    again = pickle.loads(pickle.dumps(smote))
    assert again.sampling_strategy_ == smote.sampling_strategy_
    assert again.fit_resample(X, y)[0].tobytes() == X_res.tobytes()
    assert clone(smote).get_params() == smote.get_params()


# ---------------------------------------------------------------------------
# pipelines
# ---------------------------------------------------------------------------


def test_imblearn_pipeline_cross_val_and_grid_search():
    pipeline = pytest.importorskip("imblearn.pipeline")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

    X, y = make_data(n=600)
    pipe = pipeline.Pipeline([("smote", SMOTE(random_state=0)), ("clf", LogisticRegression())])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv, scoring="f1")
    assert scores.shape == (3,) and np.all(scores > 0.5)
    grid = GridSearchCV(
        pipe,
        {"smote__k_neighbors": [3, FaissNN(n_neighbors=6, index_type="ivf", random_state=0)]},
        cv=cv,
        scoring="f1",
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 2


# ---------------------------------------------------------------------------
# bad input: a clear error, inputs untouched
# ---------------------------------------------------------------------------


def _bad_cases():
    X, y = make_data(n=60)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    X_inf = X.copy()
    X_inf[5, 0] = np.inf
    tiny = np.r_[np.zeros(50, int), np.ones(3, int)]
    three = np.r_[np.zeros(30, int), np.ones(20, int), np.full(10, 2)]
    return [
        ("nan", SMOTE(), X_nan, y, ValueError, "NaN"),
        ("inf", SMOTE(), X_inf, y, ValueError, "infinity"),
        ("single class", SMOTE(), X, np.zeros(60, int), ValueError, "at least 2 classes"),
        ("small class", SMOTE(k_neighbors=5), X[:53], tiny, ValueError,
         r"Class 1 has 3 samples but k_neighbors=5 needs at least 6.*Set k_neighbors <= 2"),
        ("small class object", SMOTE(k_neighbors=FaissNN(n_neighbors=6)), X[:53], tiny, ValueError,
         r"Class 1 has 3 samples but k_neighbors has n_neighbors=6"),
        ("float multiclass", SMOTE(sampling_strategy=0.5), X, three, ValueError, "only when y is binary"),
        ("dict below count", SMOTE(sampling_strategy={1: 2}), X, y, ValueError, "cannot remove"),
        ("length mismatch", SMOTE(), X, y[:-1], ValueError, "inconsistent numbers of samples"),
        ("2-D y", SMOTE(), X, np.c_[y, y], ValueError, "multioutput targets are not supported"),
        ("strings", SMOTE(), np.array([["a", "b"]] * 60, dtype=object), y, ValueError, "could not convert"),
        ("no kneighbors", SMOTE(k_neighbors=object()), X, y, ValueError, "k_neighbors"),
        ("k zero", SMOTE(k_neighbors=0), X, y, ValueError, "k_neighbors"),
        ("chunk zero", SMOTE(chunk_size=0), X, y, ValueError, "chunk_size"),
        ("continuous y", SMOTE(), X, np.linspace(0, 1, 60), ValueError, "Unknown label type"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
def test_bad_input_clear_error_inputs_untouched(case):
    _, smote, X, y, error, match = case
    X_before, y_before = X.copy(), np.array(y, copy=True)
    with pytest.raises(error, match=match):
        smote.fit_resample(X, y)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_sparse_input_refused_clearly():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = make_data(n=60)
    with pytest.raises(TypeError, match=r"dense data is required.*toarray"):
        SMOTE().fit_resample(sparse.csr_matrix(X), y)


def test_caller_arrays_untouched_on_success():
    X, y = make_data(dtype=np.float32)
    X.setflags(write=False)
    X_before = X.copy()
    SMOTE(random_state=0, k_neighbors=FaissNN(6, metric="cosine")).fit_resample(X, y)
    np.testing.assert_array_equal(X, X_before)


# ---------------------------------------------------------------------------
# review follow-ups
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_unseeded_approximate_neighbours_still_deterministic(index_type):
    # the sampler's random_state seeds a neighbour clone left with random_state=None
    X, y = make_data(n=3000, dtype=np.float32)
    nn = FaissNN(n_neighbors=6, index_type=index_type, n_jobs=1)
    a, _ = SMOTE(k_neighbors=nn, random_state=7).fit_resample(X, y)
    b, _ = SMOTE(k_neighbors=nn, random_state=7).fit_resample(X, y)
    assert a.tobytes() == b.tobytes()
    assert nn.random_state is None  # the user's object is untouched


def test_determinism_across_random_blocks():
    # the minority class needs more than one random block; chunk sizes that
    # do not divide the block size, and one larger than a block
    X, y = make_data(n=45_000, weights=(0.8, 0.2), dtype=np.float32)
    assert np.bincount(y)[0] - np.bincount(y)[1] > BLOCK_SIZE
    reference, _ = SMOTE(random_state=3).fit_resample(X, y)
    for n_jobs, chunk_size in [(2, 1000), (1, BLOCK_SIZE + 1), (2, 3)]:
        X_res, _ = SMOTE(random_state=3, n_jobs=n_jobs, chunk_size=chunk_size).fit_resample(X, y)
        assert X_res.tobytes() == reference.tobytes(), (n_jobs, chunk_size)


def test_dict_strategy_needs_int_counts():
    X, y = make_data(n=60)
    for bad in (40.5, "40", True):
        with pytest.raises(TypeError, match="int number of samples per class"):
            SMOTE(sampling_strategy={1: bad}).fit_resample(X, y)


def test_dataframe_with_some_sparse_columns():
    pd = pytest.importorskip("pandas")
    X, y = make_data(n=200)
    X_df = pd.DataFrame(X, columns=list("abcd"))
    X_df["a"] = X_df["a"].astype(pd.SparseDtype(float, 0.0))
    X_res, _ = SMOTE(random_state=0).fit_resample(X_df, y)
    X_ref, _ = SMOTE(random_state=0).fit_resample(X, y)
    np.testing.assert_allclose(X_res.astype(float).to_numpy(), X_ref)
    assert isinstance(X_res["a"].dtype, pd.SparseDtype)


# ---------------------------------------------------------------------------
# property tests (hypothesis)
# ---------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(
    n_major=st.integers(20, 80),
    n_minor=st.integers(4, 19),
    n_features=st.integers(1, 4),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    chunk_size=st.integers(1, 50),
    float32=st.booleans(),
)
def test_properties(n_major, n_minor, n_features, k, seed, chunk_size, float32):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if float32 else np.float64
    X = rng.normal(size=(n_major + n_minor, n_features)).astype(dtype)
    X[n_major:] += 2.0
    y = np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]
    smote = SMOTE(k_neighbors=k, random_state=seed)
    X_res, y_res = smote.fit_resample(X, y)
    # counts match sampling_strategy_, originals first, dtype kept
    assert np.bincount(y_res).tolist() == [n_major, n_major]
    assert smote.sampling_strategy_ == {1: n_major - n_minor}
    assert X_res.dtype == dtype
    assert X_res[: len(X)].tobytes() == X.tobytes()
    # each synthetic row lies on a segment to one of its k exact neighbours
    atol = 1e-4 if float32 else 1e-8
    assert segment_partners(X[y == 1].astype(np.float64), X_res[len(X) :].astype(np.float64), k, atol=atol).all()
    # same seed, any chunking: same bytes
    again, _ = SMOTE(k_neighbors=k, random_state=seed, chunk_size=chunk_size).fit_resample(X, y)
    assert again.tobytes() == X_res.tobytes()


@pytest.mark.parametrize("make", ["SMOTE", "BorderlineSMOTE", "ADASYN"])
def test_two_calls_at_once_on_one_instance_each_resample_their_own_data(make):
    import threading

    from sklearn.base import BaseEstimator
    from sklearn.neighbors import NearestNeighbors

    from smote_ann import ADASYN, BorderlineSMOTE

    barrier = threading.Barrier(2, timeout=30)

    class Rendezvous(BaseEstimator):
        """Exact neighbours whose fit waits for the other thread: the two plannings overlap."""

        def __init__(self, n_neighbors=6):
            self.n_neighbors = n_neighbors

        def fit(self, X, y=None):
            barrier.wait()
            self.nn_ = NearestNeighbors(n_neighbors=self.n_neighbors).fit(X)
            return self

        def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
            return self.nn_.kneighbors(X, n_neighbors, return_distance)

        def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
            return self.nn_.kneighbors_graph(X, n_neighbors, mode)

    def make_sampler(nn):
        return {"SMOTE": lambda: SMOTE(k_neighbors=nn, random_state=0),
                "BorderlineSMOTE": lambda: BorderlineSMOTE(k_neighbors=nn, m_neighbors=nn,
                                                           random_state=0),
                "ADASYN": lambda: ADASYN(n_neighbors=nn, random_state=0)}[make]()

    sampler = make_sampler(Rendezvous())
    rng = np.random.default_rng(0)
    datasets = []
    for n_major, n_minor in ((300, 60), (500, 40)):
        X = np.vstack([rng.normal(size=(n_major, 3)), rng.normal(0.7, size=(n_minor, 3))])
        datasets.append((X, np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]))
    expected = [make_sampler(NearestNeighbors(n_neighbors=6)).fit_resample(X, y)
                for X, y in datasets]
    results = [None, None]

    def run(i):
        results[i] = sampler.fit_resample(*datasets[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for (X_res, y_res), (X_ref, y_ref) in zip(results, expected):
        np.testing.assert_array_equal(y_res, y_ref)
        np.testing.assert_array_equal(X_res, X_ref)
