"""The BLAS searches behind FaissNN: grouped IVF-Flat search and the exact tiles.

References are independent of the code under test: FAISS's own search of the
same IVF index (query by query, in C++), scikit-learn's brute-force
neighbours on float64 copies, and numpy's lexsort for the top-k selection.
"""

import faiss  # tests only: FAISS's own IVF search is the reference
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from smote_ann import FaissNN
from smote_ann.neighbors import _faiss, _graph


def clustered(n, d=16, n_clusters=24, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_clusters, d))
    X = centers[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, d))
    return X.astype(np.float32)


def ivf_index(X, nlist, nprobe, metric="euclidean"):
    nn = FaissNN(7, index_type="ivf", nlist=nlist, nprobe=nprobe, metric=metric,
                 target_recall=None, random_state=0).fit(X)
    return nn


def assert_same_neighbours(d, i, d_ref, i_ref, rtol=1e-4, atol=1e-4):
    """Same sorted distances; same rows wherever the distances are not tied."""
    np.testing.assert_allclose(d, d_ref, rtol=rtol, atol=atol)
    gaps = np.diff(d_ref, axis=1)
    distinct = np.ones(d_ref.shape, dtype=bool)
    distinct[:, 1:] &= gaps > 1e-3
    distinct[:, :-1] &= gaps > 1e-3
    np.testing.assert_array_equal(i[distinct], i_ref[distinct])


def _spy_on(monkeypatch, name):
    """Records each call of ``_graph.<name>`` (True when given the queries'
    home lists), so that a test knows which search ran."""
    calls = []
    real = getattr(_graph, name)

    def wrapped(*args, **kwargs):
        calls.append(kwargs.get("home") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(_graph, name, wrapped)
    return calls


@pytest.fixture
def spy(monkeypatch):
    """Records the grouped IVF searches, which run whenever an IVF-Flat
    index is searched (not only where the cost model expects them to pay)."""
    monkeypatch.setattr(_faiss, "join_pays", lambda *args: True)
    return _spy_on(monkeypatch, "ivf_flat_search")


@pytest.fixture
def model_spy(monkeypatch):
    """Records the grouped IVF searches; the cost model chooses the path."""
    return _spy_on(monkeypatch, "ivf_flat_search")


@pytest.fixture
def pruned_spy(monkeypatch):
    return _spy_on(monkeypatch, "pruned_exact_search")


# --------------------------------------------------------------------------
# Grouped IVF-Flat search = FAISS's IVF search
# --------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("nprobe", [1, 3, 10])
def test_grouped_ivf_search_equals_faiss_search(metric, nprobe, spy):
    X = clustered(6000)
    nn = ivf_index(X, nlist=40, nprobe=nprobe, metric=metric)
    Q = _faiss.as_float32_rows(X, slice(None), metric == "cosine")
    d_ref, i_ref = nn.index_.search(Q, 8)  # FAISS, query by query
    d_ref = _faiss.METRICS[metric].to_distance(d_ref)
    dist, ind = nn.kneighbors(n_neighbors=7)
    assert spy == [True]  # ran, told the queries are the fitted rows
    # FAISS's answer includes each row itself first (distance 0 here: no duplicates)
    assert_same_neighbours(dist, ind, d_ref[:, 1:], i_ref[:, 1:])


def test_new_queries_use_the_grouped_search_too(spy):
    X = clustered(6000)
    nn = ivf_index(X, nlist=40, nprobe=4)
    Q = clustered(3000, seed=1)
    d_ref, i_ref = nn.index_.search(Q, 7)
    dist, ind = nn.kneighbors(Q)
    assert spy == [False]  # no home list for rows that were not fitted
    assert_same_neighbours(dist, ind, np.sqrt(np.maximum(d_ref, 0)), i_ref)


def test_querying_the_fitted_array_is_recognised(spy):
    """imbalanced-learn fits a class and queries the same rows: same answers
    as kneighbors(X=None) with each row itself first."""
    X = clustered(5000).astype(np.float64)
    nn = ivf_index(X, nlist=30, nprobe=5)
    ind_self = nn.kneighbors(X.copy(), n_neighbors=8, return_distance=False)
    ind_none = nn.kneighbors(n_neighbors=7, return_distance=False)
    assert spy == [True, True]
    np.testing.assert_array_equal(ind_self[:, 0], np.arange(len(X)))
    np.testing.assert_array_equal(ind_self[:, 1:], ind_none)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_all_lists_probed_is_exact(metric, spy):
    """nprobe = nlist scans every row: scikit-learn's brute force is the reference."""
    X = clustered(3000, d=8)
    nn = ivf_index(X, nlist=20, nprobe=20, metric=metric)
    dist, ind = nn.kneighbors(n_neighbors=6)
    ref = NearestNeighbors(n_neighbors=6, algorithm="brute", metric=metric).fit(
        X.astype(np.float64))
    d_ref, i_ref = ref.kneighbors()
    assert spy
    assert_same_neighbours(dist, ind, d_ref, i_ref, atol=2e-3)


def test_duplicates_and_lists_smaller_than_k():
    """Many copies of a few rows, and lists too small for k: complete, exact
    distances, each row's own index never returned."""
    rng = np.random.default_rng(3)
    base = clustered(400, d=4)
    X = np.vstack([base, np.repeat(base[:5], 200, axis=0)])[rng.permutation(1400)]
    nn = ivf_index(X, nlist=35, nprobe=2)
    dist, ind = nn.kneighbors(n_neighbors=9)
    assert (ind >= 0).all()
    assert not (ind == np.arange(len(X))[:, np.newaxis]).any()
    true = ((X[:, np.newaxis, :].astype(np.float64) - X[ind]) ** 2).sum(axis=2)
    # float32 round-off of |x|^2 + |q|^2 - 2 x.q, relative to the squared norms
    np.testing.assert_allclose(dist**2, true, atol=1e-6 * (X.astype(np.float64) ** 2).sum(1).max())
    assert (np.diff(dist, axis=1) >= -1e-6).all()


def test_home_lists_give_the_exact_probes():
    """The probes found near each row's own list are those of a full search."""
    X = clustered(8000, d=12)
    nn = ivf_index(X, nlist=300, nprobe=6)  # more lists than the candidate set
    lists = _faiss.flat_lists(nn.index_)
    home = np.empty(len(X), dtype=np.int64)
    for lst, ids in enumerate(lists.ids):
        home[ids] = lst
    with_home = _graph._probes(lists, X, 6, home)
    _, reference = nn.index_.quantizer.search(X, 6)  # FAISS's coarse quantizer
    same = (np.sort(with_home, axis=1) == np.sort(reference, axis=1)).all(axis=1)
    assert same.mean() > 0.999
    # where they differ, only by a tie: the same distances in float64
    C = lists.centroids.astype(np.float64)
    for q in np.flatnonzero(~same):
        ours = np.sort(((C[with_home[q]] - X[q]) ** 2).sum(axis=1))
        theirs = np.sort(((C[reference[q]] - X[q]) ** 2).sum(axis=1))
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_grouped_search_is_identical_across_n_jobs(spy):
    X = clustered(20000)
    X[5000:5400] = X[:400]  # ties
    out = [FaissNN(6, index_type="ivf", nlist=60, nprobe=5, n_jobs=n_jobs,
                   random_state=1).fit(X).kneighbors() for n_jobs in (1, 2, 3)]
    for dist, ind in out[1:]:
        np.testing.assert_array_equal(ind, out[0][1])
        np.testing.assert_array_equal(dist, out[0][0])


def test_few_queries_use_faiss(model_spy):
    X = clustered(6000)
    nn = ivf_index(X, nlist=40, nprobe=2)
    nn.kneighbors(X[:20])
    assert model_spy == []


def test_cost_model_picks_the_join_for_graphs_only():
    """A tuning sample of 1000 rows goes to FAISS (the join's cost per list
    dominates); a graph of a million rows of many features to the join."""
    def pays(n_queries, nlist, nprobe, n_samples, d):
        n_pairs = n_queries * nprobe
        return _faiss.join_pays(nlist, n_pairs, n_pairs * n_samples / nlist * d)

    assert not pays(1000, 632, 50, 100_000, 20)
    assert not pays(1000, 2000, 30, 1_000_000, 32)
    assert pays(1_000_000, 2000, 5, 1_000_000, 32)
    assert pays(100_000, 632, 50, 100_000, 20)
    # more queries never make FAISS the better choice again
    verdicts = [pays(q, 827, 5, 170_000, 18) for q in np.geomspace(10, 1e6, 30).astype(int)]
    assert verdicts == sorted(verdicts)


# --------------------------------------------------------------------------
# Selection and exact tiles
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_top_k_grouped_matches_lexsort(seed):
    rng = np.random.default_rng(seed)
    n_groups, k = 50, 4
    group = np.sort(rng.integers(0, n_groups - 5, 600))  # some groups empty
    values = rng.integers(-3, 4, group.size).astype(np.float32) * 0.5  # many ties, negatives
    rows = rng.permutation(10_000)[:group.size]
    best = np.sort(rng.normal(size=(n_groups, k)).astype(np.float32), axis=1)
    best_rows = rng.permutation(np.arange(20_000, 30_000))[:n_groups * k].reshape(n_groups, k)
    best_rows[:3] = -1
    best[:3] = np.inf
    got_v, got_r = _graph.top_k_grouped(group, values, rows, n_groups, k, best, best_rows)
    for g in range(n_groups):
        cand_v = np.concatenate([best[g][best_rows[g] >= 0], values[group == g]])
        cand_r = np.concatenate([best_rows[g][best_rows[g] >= 0], rows[group == g]])
        order = np.lexsort((cand_r, cand_v))[:k]
        n = len(order)
        np.testing.assert_array_equal(got_v[g, :n], cand_v[order])
        np.testing.assert_array_equal(got_r[g, :n], cand_r[order])
        assert (got_r[g, n:] == -1).all() and np.isinf(got_v[g, n:]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_exact_tiles_cut_in_odd_places_match_sklearn(metric, dtype):
    """More rows than one block, more queries than one tile, duplicates."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4096 + 700, 5)).astype(dtype)
    X[4090:4110] = X[0]  # copies across a block boundary
    queries = np.ascontiguousarray(X[::17][:300], dtype=np.float32)
    if metric == "cosine":
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    score, ind = _graph.exact_search(X, queries, 6, metric=metric)
    X64 = X.astype(np.float64)
    ref = NearestNeighbors(n_neighbors=6, algorithm="brute", metric=metric).fit(X64)
    d_ref, i_ref = ref.kneighbors(X64[::17][:300])
    dist = _faiss.METRICS[metric].to_distance(
        score if metric != "cosine" else -score)
    assert_same_neighbours(dist, ind, d_ref, i_ref, atol=2e-3 if metric == "euclidean" else 1e-4)


# --------------------------------------------------------------------------
# Flat index: exact search pruned by a partition of the rows
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_pruned_flat_search_matches_sklearn(metric, dtype, pruned_spy):
    X = clustered(9000, d=10).astype(dtype)
    X[4000:4300] = X[:300]  # duplicates
    dist, ind = FaissNN(6, metric=metric).fit(X).kneighbors()
    assert pruned_spy == [True]
    X = X.astype(np.float64)
    ref = NearestNeighbors(n_neighbors=6, algorithm="brute", metric=metric).fit(X)
    d_ref, i_ref = ref.kneighbors()
    assert not (ind == np.arange(len(X))[:, np.newaxis]).any()
    np.testing.assert_allclose(dist, d_ref, atol={"euclidean": 3e-3}.get(metric, 1e-4), rtol=1e-4)
    # the rows returned are at the distances returned (ties with copies may swap rows)
    B = X / np.linalg.norm(X, axis=1, keepdims=True) if metric == "cosine" else X
    true = ((B[:, np.newaxis, :] - B[ind]) ** 2).sum(axis=2)
    if metric == "cosine":
        true = true / 2  # 1 - cos of unit vectors
    elif metric == "euclidean":
        true = np.sqrt(true)
    np.testing.assert_allclose(dist, true, atol={"euclidean": 3e-3}.get(metric, 1e-4), rtol=1e-4)


def test_pruned_flat_search_of_new_queries_and_hard_data(pruned_spy):
    """Rows that were not fitted, and uniform data where little can be pruned."""
    rng = np.random.default_rng(0)
    for X, Q in [(clustered(6000), clustered(5000, seed=2)),
                 (rng.random((6000, 24)), rng.random((5000, 24)))]:
        dist, ind = FaissNN(5).fit(X).kneighbors(Q)
        d_ref, i_ref = NearestNeighbors(n_neighbors=5, algorithm="brute").fit(
            X.astype(np.float64)).kneighbors(Q)
        assert_same_neighbours(dist, ind, d_ref, i_ref, atol=3e-3)
    assert pruned_spy == [False, False]


def test_pruned_flat_search_is_identical_across_n_jobs_and_pickling():
    import pickle

    X = clustered(12000)
    X[6000:6500] = X[:500]
    fitted = [FaissNN(6, n_jobs=n_jobs).fit(X) for n_jobs in (1, 2)]
    fitted.append(pickle.loads(pickle.dumps(fitted[1])))
    out = [nn.kneighbors() for nn in fitted]
    for dist, ind in out[1:]:
        np.testing.assert_array_equal(ind, out[0][1])
        np.testing.assert_array_equal(dist, out[0][0])


def test_partition_radii_bound_every_row():
    X = clustered(5000, d=6)
    centroids = _faiss.kmeans_centroids(X, 30, seed=0)
    part = _graph.Partition(X, centroids)
    assert sorted(np.concatenate(part.ids)) == list(range(len(X)))
    for c, ids in enumerate(part.ids):
        gap = np.linalg.norm(X[ids].astype(np.float64) - centroids[c], axis=1)
        assert (gap <= part.radii[c] + 1e-9).all()
        assert (part.home[ids] == c).all()


def test_cosine_with_zero_rows_matches_sklearn():
    """A zero row has no direction (cosine distance 1 to everything): the
    pruned search, which ranks unit vectors by distance, must not serve it."""
    rng = np.random.default_rng(4)
    X = rng.integers(0, 3, size=(6000, 2)).astype(np.float64)  # (0, 0) rows among them
    assert not X.any(axis=1).all()
    nn = FaissNN(5, metric="cosine").fit(X)
    d_ref = NearestNeighbors(n_neighbors=5, metric="cosine", algorithm="brute").fit(X)
    np.testing.assert_allclose(nn.kneighbors()[0], d_ref.kneighbors()[0], atol=1e-5)
    queries = np.vstack([np.zeros((1, 2)), X[:5000]])
    np.testing.assert_allclose(nn.kneighbors(queries)[0], d_ref.kneighbors(queries)[0], atol=1e-5)


# --------------------------------------------------------------------------
# Fitted rows with many copies: each distinct row searched once
# --------------------------------------------------------------------------
def copied(seed=0):
    """2,000 distinct rows, a few of them copied 2,000 times, the rest 1 to 3 times."""
    rng = np.random.default_rng(seed)
    base = clustered(2000, d=6, seed=seed)
    counts = rng.integers(1, 4, size=len(base))
    counts[:4] = 2000
    return np.repeat(base, counts, axis=0)[rng.permutation(counts.sum())]


@pytest.fixture
def copies_spy(monkeypatch):
    """Records what `fitted_copies` found: the number of distinct rows, or None."""
    found = []
    real = _faiss.fitted_copies

    def wrapped(*args, **kwargs):
        groups = real(*args, **kwargs)
        found.append(None if groups is None else len(groups.counts))
        return groups

    monkeypatch.setattr(_faiss, "fitted_copies", wrapped)
    return found


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_graph_of_copied_rows_matches_sklearn(metric, copies_spy):
    X = copied()
    n_distinct = len(np.unique(X, axis=0))
    dist, ind = FaissNN(6, metric=metric).fit(X).kneighbors()
    assert copies_spy[-1] == n_distinct  # looked for on the first search of all rows
    d_ref, _ = NearestNeighbors(n_neighbors=6, algorithm="brute", metric=metric).fit(
        X.astype(np.float64)).kneighbors()
    np.testing.assert_allclose(dist, d_ref, atol=2e-3)
    assert not (ind == np.arange(len(X))[:, np.newaxis]).any()
    # the distances returned are those of the rows returned
    true = np.sqrt(((X[:, np.newaxis, :].astype(np.float64) - X[ind]) ** 2).sum(axis=2))
    if metric == "euclidean":
        np.testing.assert_allclose(dist, true, atol=2e-3)


def test_ivf_graph_of_copied_rows_is_faiss_search_of_every_row(spy, copies_spy):
    """Each distinct row searched once gets the answer FAISS gives every copy."""
    X = copied(1)
    nn = ivf_index(X, nlist=60, nprobe=3)
    dist, ind = nn.kneighbors(n_neighbors=6)
    assert copies_spy == [len(np.unique(X, axis=0))]  # looked for when fitted
    assert spy == [True]
    d_ref, _ = nn.index_.search(X, 7)  # FAISS, every row, itself among the answers
    # the row itself is at distance 0, the first of FAISS's answers in value
    # (its copies, at 0 too, stay): squared distances, up to float32 round-off
    np.testing.assert_allclose(dist**2, np.maximum(d_ref[:, 1:], 0),
                               atol=1e-6 * (X.astype(np.float64) ** 2).sum(1).max())
    assert not (ind == np.arange(len(X))[:, np.newaxis]).any()


def test_rows_without_copies_are_searched_as_they_are(copies_spy):
    X = clustered(6000)
    FaissNN(6).fit(X).kneighbors()
    FaissNN(6, index_type="ivf", random_state=0).fit(X).kneighbors()
    assert copies_spy and set(copies_spy) == {None}


def test_copied_rows_identical_across_n_jobs_and_pickling():
    import pickle

    X = copied(2)
    fitted = [FaissNN(6, index_type="ivf", random_state=0, n_jobs=n_jobs).fit(X)
              for n_jobs in (1, 2)]
    fitted.append(pickle.loads(pickle.dumps(fitted[1])))
    out = [nn.kneighbors() for nn in fitted]
    for dist, ind in out[1:]:
        np.testing.assert_array_equal(ind, out[0][1])
        np.testing.assert_array_equal(dist, out[0][0])


# --------------------------------------------------------------------------
# Rows assigned to their IVF lists
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n_centroids", [50, 700])
def test_nearest_centroids_is_exact(n_centroids):
    """Each row's centroid is its nearest (float64 brute force, ties tolerated)."""
    X = clustered(20000, d=12, seed=4)
    C = clustered(n_centroids, d=12, seed=5)
    got = _graph.nearest_centroids(C, X)
    d = ((X[:, np.newaxis, :].astype(np.float64) - C[np.newaxis]) ** 2).sum(axis=2)
    np.testing.assert_allclose(d[np.arange(len(X)), got], d.min(axis=1), rtol=1e-5, atol=1e-5)


def test_ivf_lists_are_those_faiss_fills():
    """The lists FaissNN fills itself hold the rows FAISS's own add puts there."""
    X = clustered(30000, d=10, seed=6)
    nn = FaissNN(6, index_type="ivf", nlist=300, target_recall=None, random_state=0).fit(X)
    ours = _faiss.flat_lists(nn.index_)
    theirs = faiss.IndexIVFFlat(faiss.IndexFlatL2(10), 10, 300)
    theirs.quantizer.add(ours.centroids)
    theirs.is_trained = True
    theirs.add(X)
    same = [np.array_equal(a, b) for a, b in zip(ours.ids, _faiss.flat_lists(theirs).ids)]
    assert np.mean(same) > 0.99  # a row on a boundary may fall on either side


def test_recall_reference_with_copies_is_the_plain_reference():
    """The tuning's exact reference, each distinct row searched once, finds the
    same k-th distances as the search of every row."""
    from smote_ann.neighbors import _recall

    X = copied(3)
    copies = _faiss.DuplicateGroups.of(X)
    rows = np.random.default_rng(0).choice(len(X), 300, replace=False)
    plain = _recall.Reference.of(X, rows, 5, metric="euclidean")
    grouped = _recall.Reference.of(X, rows, 5, metric="euclidean", copies=copies)
    np.testing.assert_allclose(grouped.kth, plain.kth, rtol=1e-6, atol=1e-9)
    assert not (grouped.neighbors == rows[:, np.newaxis]).any()


@pytest.mark.parametrize("seed", range(3))
def test_selection_among_many_equal_scores_matches_lexsort(seed, monkeypatch):
    """Columns where most scores are equal (a list of copies of one row): the k
    smallest (score, row), ties in row order, as a lexsort gives them, through
    the selection that does not sort every tied entry."""
    calls = []
    real = _graph._first_smallest
    monkeypatch.setattr(_graph, "_first_smallest",
                        lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(seed)
    n_rows, n_cols, k = 400, 30, int(rng.integers(1, 7))
    score = rng.integers(0, 3, size=(n_rows, n_cols)).astype(np.float32)
    values, rows = _graph._smallest_per_column(score, k)
    assert calls  # the tie path ran
    for c in range(n_cols):
        ref = np.lexsort((np.arange(n_rows), score[:, c]))[:k]
        np.testing.assert_array_equal(rows[c], ref)
        np.testing.assert_array_equal(values[c], score[ref, c])
