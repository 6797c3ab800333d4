"""FaissNN against scikit-learn's exact brute-force neighbours and FAISS's own contract.

References are independent of the implementation: ``NearestNeighbors(algorithm="brute")``
on float64 copies of the data, and distances recomputed in float64 with numpy.
"""

import pickle

import faiss  # tests only: to read FAISS's global thread count and raw search results
import joblib
import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize
from sklearn.utils.estimator_checks import parametrize_with_checks

from smote_ann import FaissNN, LowRecallWarning

METRICS = ["euclidean", "sqeuclidean", "cosine"]
# FAISS computes in float32 (squared L2 as |x|^2 + |y|^2 - 2<x, y>): absolute error
# ~1e-6 on squared distances of unit-scale data, ~1e-3 after a square root near 0.
ATOL = {"euclidean": 2e-3, "sqeuclidean": 1e-4, "cosine": 1e-5}
RTOL = 1e-4


# --------------------------------------------------------------------------
# Data and references
# --------------------------------------------------------------------------
def make_clustered(n, d=32, intrinsic=8, n_clusters=32, spread=2.0, seed=0):
    """Gaussian clusters in an `intrinsic`-dimensional latent space, embedded
    non-linearly in `d` dimensions (in the spirit of FAISS's SyntheticDataset)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(n_clusters, intrinsic))
    z = centers[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, intrinsic))
    proj = rng.random((intrinsic, d))
    return np.sin(z @ proj * (rng.random(d) * 0.6 + 0.1)).astype(np.float32)


def make_data(n=120, d=6, duplicates=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if duplicates:
        # rows with 2, 3 and 5 copies: more copies than neighbours for k < 4
        X = np.vstack([X, X[:10], X[10:15], X[10:15], X[15:18], X[15:18], X[15:18], X[15:18]])
        X = X[rng.permutation(len(X))]
    return X


def true_distances(X_fit, X_query, ind, metric):
    """float64 distances from each query row to the fitted rows it was given."""
    A = np.asarray(X_query, dtype=np.float64)
    B = np.asarray(X_fit, dtype=np.float64)
    if metric == "cosine":
        return 1.0 - np.einsum("qd,qkd->qk", normalize(A), normalize(B)[ind])
    sq = ((A[:, np.newaxis, :] - B[ind]) ** 2).sum(axis=2)
    return np.sqrt(sq) if metric == "euclidean" else sq


def reference(X_fit, X_query, k, metric):
    """scikit-learn's exact neighbours on float64 copies (X_query None: X=None)."""
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric)
    nn.fit(np.asarray(X_fit, dtype=np.float64))
    query = None if X_query is None else np.asarray(X_query, dtype=np.float64)
    return nn.kneighbors(query)


def assert_matches_reference(X_fit, X_query, dist, ind, metric):
    """Tie-tolerant agreement with scikit-learn's brute force.

    Equal (or float32-near-equal) distances may swap indices, so indices are
    checked through their true float64 distances, which must equal the
    reference's sorted distances.
    """
    k = ind.shape[1]
    ref_dist, _ = reference(X_fit, X_query, k, metric)
    queries = X_fit if X_query is None else X_query
    n_fit = np.asarray(X_fit).shape[0]
    assert dist.shape == ind.shape == ref_dist.shape
    assert dist.dtype == np.float64 and ind.dtype.kind == "i"
    assert ((ind >= 0) & (ind < n_fit)).all()
    assert np.isfinite(dist).all()
    assert (np.diff(dist, axis=1) >= 0).all(), "rows must be sorted by distance"
    assert all(len(set(row)) == k for row in ind), "indices must be distinct per row"
    if X_query is None:
        assert not (ind == np.arange(n_fit)[:, np.newaxis]).any(), "self not excluded"
    tol = dict(rtol=RTOL, atol=ATOL[metric])
    np.testing.assert_allclose(dist, ref_dist, **tol)
    recomputed = np.sort(true_distances(X_fit, queries, ind, metric), axis=1)
    np.testing.assert_allclose(recomputed, ref_dist, **tol)


def recall(X_fit, ind, ref_dist, metric):
    """Tie-tolerant recall@k of kneighbors(X=None): a returned neighbour counts
    when its true distance is within the reference k-th distance."""
    d = true_distances(X_fit, X_fit, ind, metric)
    kth = ref_dist[:, -1:]
    hit = d <= kth + 1e-6 + 1e-5 * np.abs(kth)
    self_hit = ind == np.arange(len(ind))[:, np.newaxis]
    return float((hit & ~self_hit).mean())


# --------------------------------------------------------------------------
# Exact search: agreement with scikit-learn
# --------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("query", ["train", "explicit"])
@pytest.mark.parametrize("duplicates", [False, True])
def test_flat_matches_sklearn_brute(metric, dtype, query, duplicates):
    X = make_data(duplicates=duplicates, seed=1).astype(dtype)
    rng = np.random.default_rng(2)
    X_query = None
    if query == "explicit":
        # fresh points plus exact copies of training points (distance 0)
        X_query = np.vstack([rng.normal(size=(30, X.shape[1])), X[:10]]).astype(dtype)
    for k in (1, 3, 6):
        nn = FaissNN(n_neighbors=k, metric=metric).fit(X)
        dist, ind = nn.kneighbors(X_query)
        assert_matches_reference(X, X_query, dist, ind, metric)
        ind_only = nn.kneighbors(X_query, return_distance=False)
        np.testing.assert_array_equal(ind_only, ind)


def test_flat_more_duplicates_than_neighbours_returns_copies():
    # 4 copies of one row, k=2: scikit-learn returns two other copies at distance 0
    X = np.vstack([np.zeros((4, 3)), np.arange(30.0).reshape(10, 3) + 1])
    dist, ind = FaissNN(n_neighbors=2).fit(X).kneighbors()
    ref_dist, _ = reference(X, None, 2, "euclidean")
    np.testing.assert_allclose(dist, ref_dist, atol=ATOL["euclidean"])
    for i in range(4):
        assert set(ind[i]) <= {0, 1, 2, 3} - {i}


def test_query_n_neighbors_overrides_constructor():
    X = make_data(seed=3)
    nn = FaissNN(n_neighbors=2).fit(X)
    dist, ind = nn.kneighbors(n_neighbors=np.int64(7))
    assert ind.shape == (len(X), 7)
    assert_matches_reference(X, None, dist, ind, "euclidean")


def test_kneighbors_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FaissNN().kneighbors(np.zeros((2, 2)))


# --------------------------------------------------------------------------
# kneighbors_graph
# --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["connectivity", "distance"])
@pytest.mark.parametrize("query", ["train", "explicit"])
@pytest.mark.parametrize("metric", METRICS)
def test_kneighbors_graph_matches_sklearn(mode, query, metric):
    X = make_data(n=80, d=5, seed=4)
    X_query = None if query == "train" else np.random.default_rng(5).normal(size=(25, 5))
    k = 4
    A = FaissNN(n_neighbors=k, metric=metric).fit(X).kneighbors_graph(X_query, mode=mode)
    ref = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(X)
    A_ref = ref.kneighbors_graph(X_query, mode=mode)
    n_queries = len(X) if X_query is None else len(X_query)
    assert sparse.issparse(A) and A.format == "csr"
    assert A.shape == A_ref.shape == (n_queries, len(X))
    np.testing.assert_array_equal(A.getnnz(axis=1), k)
    # continuous random data: no ties, the graphs are equal up to float32 round-off
    np.testing.assert_array_equal(A.toarray() != 0, A_ref.toarray() != 0)
    np.testing.assert_allclose(A.toarray(), A_ref.toarray(), rtol=RTOL, atol=ATOL[metric])
    if mode == "connectivity":
        np.testing.assert_array_equal(A.data, 1.0)


def test_kneighbors_graph_with_duplicates_is_tie_tolerant():
    X = make_data(n=60, d=4, duplicates=True, seed=6)
    k = 3
    A = FaissNN(n_neighbors=k).fit(X).kneighbors_graph(mode="distance")
    assert A.shape == (len(X), len(X)) and A.format == "csr"
    # each row holds its neighbours in kneighbors order: rebuild (dist, ind)
    ind = A.indices.reshape(len(X), k)
    dist = A.data.reshape(len(X), k)
    assert_matches_reference(X, None, dist, ind, "euclidean")
    C = FaissNN(n_neighbors=k).fit(X).kneighbors_graph()
    np.testing.assert_array_equal(C.indices, A.indices)
    np.testing.assert_array_equal(C.data, 1.0)


def test_kneighbors_graph_bad_mode():
    nn = FaissNN(n_neighbors=2).fit(make_data(n=10))
    with pytest.raises(ValueError, match='Unsupported mode.*"weights"'):
        nn.kneighbors_graph(mode="weights")


# --------------------------------------------------------------------------
# n_neighbors errors: scikit-learn's messages
# --------------------------------------------------------------------------
def _sklearn_message(X, k, query):
    try:
        NearestNeighbors(n_neighbors=1, algorithm="brute").fit(X).kneighbors(query, k)
    except ValueError as exc:
        return str(exc)
    raise AssertionError("scikit-learn did not raise")


@pytest.mark.parametrize("query", ["train", "explicit"])
def test_too_many_neighbours_raises_sklearn_error(query):
    X = make_data(n=6, d=3)
    X_query = None if query == "train" else X[:2]
    k = 6 if query == "train" else 7
    expected = _sklearn_message(X, k, X_query)
    nn = FaissNN(n_neighbors=1).fit(X)
    with pytest.raises(ValueError) as info:
        nn.kneighbors(X_query, n_neighbors=k)
    assert str(info.value).startswith(expected)
    with pytest.raises(ValueError, match="n_neighbors"):
        nn.kneighbors_graph(X_query, n_neighbors=k)
    # the largest allowed value works
    assert nn.kneighbors(X_query, n_neighbors=k - 1)[1].shape[1] == k - 1


@pytest.mark.parametrize("k", [0, -1])
def test_non_positive_n_neighbors(k):
    X = make_data(n=6, d=3)
    nn = FaissNN(n_neighbors=1).fit(X)
    with pytest.raises(ValueError, match=f"Expected n_neighbors > 0. Got {k}"):
        nn.kneighbors(n_neighbors=k)
    with pytest.raises(ValueError, match="'n_neighbors' parameter of FaissNN must be"):
        FaissNN(n_neighbors=k).fit(X)


@pytest.mark.parametrize("k", [2.0, "3", True])
def test_non_integer_n_neighbors(k):
    X = make_data(n=6, d=3)
    nn = FaissNN(n_neighbors=1).fit(X)
    with pytest.raises(TypeError, match="n_neighbors must be an int"):
        nn.kneighbors(n_neighbors=k)
    if k is not True:  # scikit-learn's Interval(Integral) accepts bools in the constructor
        with pytest.raises(ValueError, match="'n_neighbors' parameter of FaissNN must be"):
            FaissNN(n_neighbors=k).fit(X)


# --------------------------------------------------------------------------
# Approximate indexes: recall
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clustered():
    X = make_clustered(6000, seed=7)
    ref_dist, _ = reference(X, None, 5, "euclidean")
    return X, ref_dist


# Observed on this data: every configuration >= 0.99 (defaults included).
@pytest.mark.parametrize(
    "params, threshold",
    [
        ({"index_type": "ivf"}, 0.93),
        ({"index_type": "ivf", "nprobe": 24}, 0.97),
        ({"index_type": "ivf", "nlist": 40, "nprobe": 2}, 0.85),
        ({"index_type": "hnsw"}, 0.95),
        ({"index_type": "hnsw", "ef_search": 128}, 0.97),
        ({"index_type": "hnsw", "hnsw_m": 8, "ef_search": 16}, 0.85),
    ],
)
def test_recall_on_clustered_data(clustered, params, threshold):
    X, ref_dist = clustered
    nn = FaissNN(n_neighbors=5, random_state=0, **params).fit(X)
    dist, ind = nn.kneighbors()
    assert recall(X, ind, ref_dist, "euclidean") >= threshold
    assert ((ind >= 0) & (ind < len(X))).all() and np.isfinite(dist).all()


def test_tuning_raises_recall(clustered):
    X, ref_dist = clustered
    low = FaissNN(index_type="ivf", nlist=64, nprobe=1, random_state=0).fit(X)
    high = FaissNN(index_type="ivf", nlist=64, nprobe=16, random_state=0).fit(X)
    r_low = recall(X, low.kneighbors()[1], ref_dist, "euclidean")
    r_high = recall(X, high.kneighbors()[1], ref_dist, "euclidean")
    assert r_high > r_low


@pytest.fixture(scope="module")
def mammography(load_shared):
    """ADBench mammography (11k x 6, one row copied 1448 times in this sample:
    the case that breaks an HNSW graph built on raw rows), a seeded 5k sample,
    and a cache for the exact references."""
    X, _ = load_shared("adbench:23_mammography")
    return X[np.random.default_rng(8).choice(len(X), 5000, replace=False)], {}


@pytest.mark.parametrize(
    "params, threshold",
    [
        ({"index_type": "ivf"}, 0.9),
        ({"index_type": "ivf", "nprobe": 32}, 0.95),
        ({"index_type": "hnsw"}, 0.9),
        ({"index_type": "hnsw", "ef_search": 128}, 0.95),
    ],
)
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_recall_on_real_data(mammography, params, threshold, metric):
    X, references = mammography
    if metric not in references:
        references[metric] = reference(X, None, 5, metric)[0]
    ref_dist = references[metric]
    nn = FaissNN(metric=metric, random_state=0, **params).fit(X)
    assert recall(X, nn.kneighbors()[1], ref_dist, metric) >= threshold


@pytest.mark.slow
@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_default_recall_at_100k(index_type):
    # The target for the defaults: recall@5 >= 0.95 at 100k rows x 32.
    X = make_clustered(100_000, seed=9)
    sample = np.random.default_rng(10).choice(len(X), 2000, replace=False)
    ref = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(X)
    ref_dist = np.delete(ref.kneighbors(X[sample])[0], 0, axis=1)  # drop self (distinct rows)
    ind = FaissNN(index_type=index_type, random_state=0).fit(X).kneighbors()[1][sample]
    d = np.sqrt(((X[sample][:, None, :].astype(np.float64) - X[ind]) ** 2).sum(axis=2))
    assert (d <= ref_dist[:, -1:] + 1e-5).mean() >= 0.95


# --------------------------------------------------------------------------
# Index types, factory strings, tiny data, -1 placeholders
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "index_type, min_recall",
    [
        ("IVF16,Flat", 0.8),
        ("HNSW16,Flat", 0.9),
        ("IVF16,PQ4np", 0.2),  # lossy codes: low recall is expected
        # FAISS's polysemous training of 8-bit PQ codes takes ~10 s whatever n
        pytest.param("IVF16,PQ4", 0.2, marks=pytest.mark.slow),
        ("Flat", 1.0),
    ],
)
def test_factory_strings(index_type, min_recall):
    X = make_clustered(2000, seed=11)  # 32 features: divisible by PQ4's 4 sub-quantizers
    ref_dist, _ = reference(X, None, 5, "euclidean")
    nn = FaissNN(index_type=index_type, random_state=0)
    if "PQ" in index_type:  # lossy codes cannot reach the default target recall
        with pytest.warns(LowRecallWarning, match=r"below target_recall=0.95"):
            nn.fit(X)
    else:
        nn.fit(X)
        assert nn.recall_estimate_ >= 0.95
    dist, ind = nn.kneighbors()
    assert nn.index_description_ == index_type
    assert ind.shape == (2000, 5) and ((ind >= 0) & (ind < 2000)).all()
    assert np.isfinite(dist).all() and (np.diff(dist, axis=1) >= 0).all()
    assert recall(X, ind, ref_dist, "euclidean") >= min_recall - 1e-9
    if index_type.startswith("IVF"):  # nprobe tuned within the 16 lists
        assert nn.nlist_ == 16 and 1 <= nn.nprobe_ <= 16
    if index_type.startswith("HNSW"):  # ef_search tuned, at least k + 1
        assert nn.ef_search_ >= 6


@pytest.mark.parametrize(
    "index_type, match",
    [
        ("bogus", r"index_type='bogus' is not a valid FAISS index_factory string.*"
                  r"could not parse index string bogus"),
        ("IVF16,PQ5", r"index_type='IVF16,PQ5' is not a valid .*multiple of the number "
                      r"of subquantizers"),
        ("IDMap,Flat", r"could not add vectors to index_type='IDMap,Flat'"),
        ("PQ4", r"could not train index_type='PQ4' on 100 samples.*at least as large"),
    ],
)
def test_bad_index_strings(index_type, match):
    X = make_clustered(100, seed=12)
    with pytest.raises(ValueError, match=match):
        FaissNN(index_type=index_type).fit(X)


def test_ivf_parameter_errors():
    X = make_data(n=200, d=4)
    with pytest.raises(ValueError, match=r"nprobe=32 is larger than the number of IVF lists "
                                         r"\(nlist_=16\). Set nprobe <= nlist."):
        FaissNN(index_type="ivf", nlist=16, nprobe=32).fit(X)
    with pytest.raises(ValueError, match=r"nprobe=17 is larger.*nlist_=16"):
        FaissNN(index_type="IVF16,Flat", nprobe=17).fit(X)
    with pytest.raises(ValueError, match=r"nlist=500 lists but only 200 samples.*"
                                         r"Set nlist <= n_samples"):
        FaissNN(index_type="ivf", nlist=500).fit(X)
    # nlist == n_samples is allowed (one point per list)
    nn = FaissNN(index_type="ivf", nlist=200, nprobe=200, random_state=0).fit(X)
    assert_matches_reference(X, None, *nn.kneighbors(), "euclidean")


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_tiny_fits(n, index_type):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 4))
    X_query = rng.normal(size=(5, 4))
    nn = FaissNN(n_neighbors=1, index_type=index_type, random_state=0).fit(X)
    # a handful of vectors is searched exhaustively by every index type
    assert_matches_reference(X, X_query, *nn.kneighbors(X_query, n_neighbors=n), "euclidean")
    if n > 1:
        assert_matches_reference(X, None, *nn.kneighbors(n_neighbors=n - 1), "euclidean")
    else:
        with pytest.raises(ValueError, match="Expected n_neighbors < n_samples_fit"):
            nn.kneighbors()


def test_default_ivf_never_trains_fewer_than_39_points_per_list():
    from smote_ann.neighbors._faiss import default_nlist, default_nprobe

    for n in [1, 10, 38, 39, 78, 100, 1000, 10_000, 100_000, 10**6, 10**7]:
        nlist = default_nlist(n)
        assert 1 <= nlist <= max(1, n // 39)
        assert 1 <= default_nprobe(nlist) <= nlist


def test_sparse_ivf_lists_never_return_placeholders():
    # 16 lists of ~19 vectors, nprobe=1, k=100: FAISS fills rows with -1 ...
    X = make_clustered(300, d=8, seed=13)
    nn = FaissNN(n_neighbors=100, index_type="ivf", nlist=16, nprobe=1, random_state=0).fit(X)
    _, raw = nn.index_.search(np.ascontiguousarray(X[:20], dtype=np.float32), 100)
    assert (raw < 0).any(), "the case must actually produce FAISS placeholders"
    # ... which FaissNN repairs with an exhaustive search: exact results
    for query in (None, X[:50]):
        dist, ind = nn.kneighbors(query)
        assert (ind >= 0).all() and np.isfinite(dist).all()
        assert_matches_reference(X, query, dist, ind, "euclidean")
    assert nn.index_.nprobe == 1  # the widened search is undone


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("index_type", ["hnsw", "HNSW8,Flat"])
def test_hnsw_with_many_duplicates_matches_exact(metric, index_type):
    # One row copied 150 times, others 2-5 times: graph indexes group copies.
    rng = np.random.default_rng(26)
    X = make_data(n=200, d=4, duplicates=True, seed=26)
    X = np.vstack([X, np.repeat(X[:1], 150, axis=0)])[rng.permutation(len(X) + 150)]
    X_query = np.vstack([rng.normal(size=(20, 4)), X[:20]])
    # a thorough graph (exact on this small set): this test is about grouping copies
    nn = FaissNN(index_type=index_type, metric=metric, ef_construction=64, ef_search=64).fit(X)
    assert nn.index_.ntotal < len(X)
    for k in (1, 4, 160):
        assert_matches_reference(X, None, *nn.kneighbors(n_neighbors=k), metric)
        assert_matches_reference(X, X_query, *nn.kneighbors(X_query, n_neighbors=k), metric)
    # fewer distinct rows than neighbours asked for
    X_small = np.repeat(np.eye(3), [2, 3, 4], axis=0)
    nn = FaissNN(index_type=index_type, metric=metric).fit(X_small)
    assert_matches_reference(X_small, None, *nn.kneighbors(n_neighbors=8), metric)


def test_trained_graph_index_with_duplicates():
    # "HNSW,SQ8" is trained: training must sample from the distinct rows only
    X = np.repeat(make_clustered(300, d=8, seed=27), 3, axis=0)
    nn = FaissNN(index_type="HNSW16,SQ8", random_state=0).fit(X)
    assert nn.index_.ntotal == 300
    dist, ind = nn.kneighbors()
    assert (ind >= 0).all() and (dist[:, :2] < 1e-2).all()  # the 2 other copies first


def test_hnsw_large_k_never_returns_placeholders():
    X = make_clustered(400, d=8, seed=14)
    nn = FaissNN(n_neighbors=300, index_type="hnsw", hnsw_m=4, ef_search=1).fit(X)
    dist, ind = nn.kneighbors()
    assert (ind >= 0).all() and np.isfinite(dist).all()
    assert all(len(set(row)) == 300 for row in ind)


# --------------------------------------------------------------------------
# Input forms
# --------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_dtypes_orders_and_memmap_agree(metric, tmp_path):
    X = make_data(n=90, d=5, duplicates=True, seed=15)
    X_query = np.random.default_rng(16).normal(size=(20, 5))
    expected = FaissNN(n_neighbors=4, metric=metric).fit(X).kneighbors(X_query)
    assert_matches_reference(X, X_query, *expected, metric)
    np.save(tmp_path / "X.npy", X)
    memmap = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert not memmap.flags.writeable
    forms = {
        "float32": X.astype(np.float32),
        "fortran": np.asfortranarray(X),
        "fortran32": np.asfortranarray(X, dtype=np.float32),
        "memmap": memmap,
        "non-contiguous": np.repeat(X, 2, axis=1)[:, ::2],
    }
    for name, form in forms.items():
        nn = FaissNN(n_neighbors=4, metric=metric).fit(form)
        dist, ind = nn.kneighbors(X_query)
        assert_matches_reference(X, X_query, dist, ind, metric)
        assert_matches_reference(X, None, *nn.kneighbors(), metric)
        # queries in any form give the same answers
        dist2, ind2 = nn.kneighbors(np.asfortranarray(X_query, dtype=np.float32))
        np.testing.assert_array_equal(ind2, ind)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_sparse_input_agrees_with_dense(metric, index_type):
    rng = np.random.default_rng(17)
    # a one-hot block plus continuous columns, as SMOTENC hands it over
    X = np.hstack([np.eye(4)[rng.integers(4, size=150)], rng.normal(size=(150, 3))])
    X_query = np.hstack([np.eye(4)[rng.integers(4, size=20)], rng.normal(size=(20, 3))])
    params = dict(n_neighbors=3, metric=metric, index_type=index_type, random_state=0,
                  batch_size=64)
    dense = FaissNN(**params).fit(X)
    for fmt in ("csr", "csc", "coo"):
        sp = FaissNN(**params).fit(sparse.csr_matrix(X).asformat(fmt))
        for query in (None, X_query):
            d_dense, i_dense = dense.kneighbors(query)
            q = None if query is None else sparse.csr_matrix(query).asformat(fmt)
            d_sp, i_sp = sp.kneighbors(q)
            np.testing.assert_allclose(d_sp, d_dense, atol=1e-6)
            if index_type == "flat":
                assert_matches_reference(X, query, d_sp, i_sp, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_callers_arrays_are_not_modified(metric):
    X = make_data(n=50, d=4, seed=18) * 10
    X32 = X.astype(np.float32)
    Q = np.random.default_rng(19).normal(size=(7, 4)) * 10
    Xs = sparse.csr_matrix(X)
    copies = [a.copy() for a in (X, X32, Q)]
    data_copy = Xs.data.copy()
    for fit_X in (X, X32, Xs):
        nn = FaissNN(n_neighbors=3, metric=metric).fit(fit_X)
        nn.kneighbors(Q)
        nn.kneighbors()
        nn.kneighbors_graph(Q, mode="distance")
    for original, copy in zip((X, X32, Q), copies):
        np.testing.assert_array_equal(original, copy)
    np.testing.assert_array_equal(Xs.data, data_copy)


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_batch_size_does_not_change_results(index_type):
    X = make_clustered(700, d=16, seed=20)
    Q = make_clustered(130, d=16, seed=21)
    params = dict(n_neighbors=6, index_type=index_type, random_state=0)
    one = FaissNN(**params, batch_size=10_000).fit(X)
    many = FaissNN(**params, batch_size=61).fit(X)
    for query in (None, Q):
        d1, i1 = one.kneighbors(query)
        d2, i2 = many.kneighbors(query)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)


# --------------------------------------------------------------------------
# Serialisation, clone, parameters, threads
# --------------------------------------------------------------------------
SERIALISED = [
    {"index_type": "flat"},
    {"index_type": "flat", "metric": "cosine"},
    {"index_type": "ivf", "nlist": 16, "nprobe": 3},
    {"index_type": "hnsw", "hnsw_m": 8, "ef_search": 6},
    {"index_type": "IVF8,Flat", "nprobe": 2},
    {"index_type": "HNSW8,Flat"},
]


@pytest.mark.parametrize("params", SERIALISED, ids=lambda p: "-".join(map(str, p.values())))
@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_serialisation_round_trip(params, how, tmp_path):
    X = make_clustered(800, d=8, seed=22)
    Q = make_clustered(60, d=8, seed=23)
    nn = FaissNN(n_neighbors=5, random_state=0, **params).fit(X)
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(nn))
    else:
        joblib.dump(nn, tmp_path / "nn.joblib")
        loaded = joblib.load(tmp_path / "nn.joblib")
    assert loaded.index_.ntotal == nn.index_.ntotal
    assert (loaded.nlist_, loaded.nprobe_, loaded.ef_search_) == (nn.nlist_, nn.nprobe_,
                                                                   nn.ef_search_)
    for query in (None, Q):
        d1, i1 = nn.kneighbors(query)
        d2, i2 = loaded.kneighbors(query)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)
    # search-time parameters are re-applied to the deserialised index
    if nn.nprobe_ is not None:
        assert faiss.extract_index_ivf(loaded.index_).nprobe == nn.nprobe_
    if nn.ef_search_ is not None:
        assert faiss.downcast_index(loaded.index_).hnsw.efSearch == nn.ef_search_


def test_unfitted_pickle_clone_and_params():
    nn = FaissNN(3, index_type="hnsw", hnsw_m=8, ef_search=20, random_state=1)
    assert pickle.loads(pickle.dumps(nn)).get_params() == nn.get_params()
    params = nn.get_params()
    assert params == {
        "n_neighbors": 3, "index_type": "hnsw", "metric": "euclidean", "nlist": None,
        "nprobe": None, "hnsw_m": 8, "ef_construction": 20, "ef_search": 20,
        "target_recall": 0.95, "recall_sample_size": 1000,
        "batch_size": 8192, "n_jobs": None, "random_state": 1,
    }
    fitted = nn.fit(make_data(n=30))
    cloned = clone(fitted)
    assert cloned.get_params() == params and not hasattr(cloned, "index_")
    assert cloned.set_params(index_type="ivf", nprobe=2) is cloned
    assert cloned.get_params()["index_type"] == "ivf"
    assert fitted.get_params()["index_type"] == "hnsw"


def test_same_random_state_same_ivf_index():
    X = make_clustered(2000, d=8, seed=24)
    a = FaissNN(index_type="ivf", nprobe=1, random_state=3).fit(X).kneighbors()
    b = FaissNN(index_type="ivf", nprobe=1, random_state=3).fit(X).kneighbors()
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("n_jobs", [1, -1, None])
@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_faiss_thread_count_is_restored(n_jobs, index_type):
    before = faiss.omp_get_max_threads()
    try:
        for preset in (1, before):
            faiss.omp_set_num_threads(preset)
            nn = FaissNN(index_type=index_type, n_jobs=n_jobs).fit(make_data(n=200))
            assert faiss.omp_get_max_threads() == preset
            nn.kneighbors()
            nn.kneighbors_graph(make_data(n=5, seed=1))
            assert faiss.omp_get_max_threads() == preset
    finally:
        faiss.omp_set_num_threads(before)


def test_n_jobs_does_not_change_results():
    X = make_clustered(500, d=8, seed=25)
    a = FaissNN(n_neighbors=4, n_jobs=1).fit(X).kneighbors()
    b = FaissNN(n_neighbors=4, n_jobs=-1).fit(X).kneighbors()
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "X, error, match",
    [
        ([[0.0, 1.0], [np.nan, 2.0]], ValueError, "Input X contains NaN"),
        ([[0.0, 1.0], [np.inf, 2.0]], ValueError, "Input X contains infinity"),
        (np.empty((0, 3)), ValueError, r"Found array with 0 sample\(s\)"),
        (np.empty((3, 0)), ValueError, r"Found array with 0 feature\(s\)"),
        ([1.0, 2.0, 3.0], ValueError, "Expected 2D array, got 1D array instead"),
        ([["a", "b"], ["c", "d"]], ValueError, "could not convert string to float: 'a'"),
        (np.array([[1, {}]], dtype=object), TypeError, "must be a string or a.* number"),
    ],
)
def test_bad_fit_input(X, error, match):
    with pytest.raises(error, match=match):
        FaissNN(n_neighbors=1).fit(X)


def test_bad_query_input():
    nn = FaissNN(n_neighbors=2).fit(make_data(n=10, d=3))
    with pytest.raises(ValueError, match="X has 2 features, but FaissNN is expecting 3"):
        nn.kneighbors(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="X has 4 features, but FaissNN is expecting 3"):
        nn.kneighbors_graph(sparse.csr_matrix(np.zeros((4, 4))))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        nn.kneighbors([[0.0, np.nan, 1.0]])
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead"):
        nn.kneighbors([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        nn.kneighbors(np.empty((0, 3)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"metric": "manhattan"}, "'metric' parameter of FaissNN must be"),
        ({"index_type": 3}, "'index_type' parameter of FaissNN must be"),
        ({"nprobe": 0}, "'nprobe' parameter of FaissNN must be"),
        ({"nlist": 0}, "'nlist' parameter of FaissNN must be"),
        ({"hnsw_m": 1}, "'hnsw_m' parameter of FaissNN must be"),
        ({"batch_size": 0}, "'batch_size' parameter of FaissNN must be"),
        ({"n_jobs": 0}, "'n_jobs' parameter of FaissNN must be"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        FaissNN(**params).fit(make_data(n=10))


# --------------------------------------------------------------------------
# scikit-learn's estimator checks: no expected failures
# --------------------------------------------------------------------------
EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(
    [FaissNN(), FaissNN(index_type="ivf"), FaissNN(index_type="hnsw", metric="cosine")],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "index_type, match",
    [("HNSW0,Flat", "has a size of 0"), ("HNSW1,Flat", "fewer than 2 links"),
     ("IVF0,Flat", "has a size of 0")],
)
def test_degenerate_factory_strings_refused_before_faiss_crashes(index_type, match):
    # FAISS aborts (HNSW0), segfaults (HNSW1) or fails later (IVF0) on these
    with pytest.raises(ValueError, match=match):
        FaissNN(index_type=index_type).fit(make_data(n=100))


def test_user_nprobe_clamped_to_automatic_nlist_only():
    X = make_data(n=300)
    nn = FaissNN(6, index_type="ivf", nprobe=16).fit(X)  # nlist chosen: 7 lists
    assert nn.nprobe_ == nn.nlist_ < 16
    ref = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(return_distance=False)
    assert (np.sort(nn.kneighbors(return_distance=False), axis=1) == np.sort(ref, axis=1)).mean() > 0.99
    with pytest.raises(ValueError, match=r"nprobe=16 is larger than the number of IVF lists"):
        FaissNN(6, index_type="ivf", nlist=4, nprobe=16).fit(X)
