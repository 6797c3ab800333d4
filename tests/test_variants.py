"""BorderlineSMOTE and ADASYN, checked against imbalanced-learn and exact references.

References are independent of the implementation: scikit-learn's exact
neighbours (brute force), full distance matrices, imbalanced-learn's own
samplers, and imbalanced-learn's formulas written out and proven against
imbalanced-learn's output.

Ties and duplicates
-------------------
imbalanced-learn drops column 0 of ``kneighbors(X_class)`` on the whole data
and assumes it is the sample itself; we remove the sample's own index. Both
also break exact distance ties in whatever order their search returns them
(FAISS computes in float32, scikit-learn in float64). On real data with
repeated rows or integer-valued features (mammography, fars) the two may
therefore legitimately disagree on a row. The comparisons below are built so
that every row is either compared exactly or shown to be one of those cases:

- danger rows: a full distance matrix gives, for every row, the range of
  other-class counts any correct tie-breaking can produce. Rows whose danger
  decision is the same over the whole range, with no other-class row at
  distance zero, must agree exactly with imbalanced-learn; every other row
  must take a decision the range allows.
- ADASYN per-row counts depend on every row of the class (the weights are
  normalised), so one tie anywhere changes them all. They are compared (a)
  with one shared exact scikit-learn neighbours object, which breaks ties
  identically for both, leaving only the self-exclusion rule as a
  difference, and (b) with the default FAISS search on copies whose ties are
  broken by a tiny jitter.
"""

import warnings
from collections import Counter

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import parametrize_with_checks

from smote_ann import ADASYN, SMOTE, BorderlineSMOTE, FaissNN
from smote_ann._generation import BLOCK_SIZE

imblearn = pytest.importorskip("imblearn.over_sampling")

REAL_SETS = ["keel:yeast4", "keel:ecoli1", "adbench:23_mammography", "fars"]
NO_DANGER = "BorderlineSMOTE found no sample in danger"

# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def make_data(n=600, n_features=4, weights=(0.8, 0.2), shift=1.2, dtype=np.float64, seed=0):
    """Overlapping Gaussian classes: continuous, so no distance ties."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(weights), size=n, p=weights)
    X = rng.standard_normal((n, n_features)) + y[:, None] * shift
    return X.astype(dtype), y


_REAL = {}


def load_real(load_shared, name):
    """A real dataset as (float64 X, int y), cached for the session."""
    if name not in _REAL:
        X, y = load_shared(name)
        if name == "fars":
            # 101k x 338 is too slow for exact references in a unit test: keep 2 %
            # of every class (stratified), and at least 9 rows of each.
            rng = np.random.default_rng(0)
            keep = []
            for c in np.unique(y):
                rows = np.flatnonzero(y == c)
                n = min(rows.size, max(9, round(0.02 * rows.size)))
                keep.append(rng.choice(rows, n, replace=False))
            keep = np.sort(np.concatenate(keep))
            X, y = X[keep], y[keep]
        _REAL[name] = np.ascontiguousarray(X, dtype=np.float64), y.astype(np.int64)
    return _REAL[name]


def break_ties(X, y, seed=0):
    """A copy without repeated rows and with every distance tie broken:
    standardised, plus a jitter far larger than float32 round-off and far
    smaller than the data's spread."""
    _, first = np.unique(X, axis=0, return_index=True)
    first = np.sort(first)
    X, y = X[first], y[first]
    rng = np.random.default_rng(seed)
    scale = X.std(axis=0)
    Z = (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    return Z + rng.uniform(-1e-3, 1e-3, size=Z.shape), y


def targets_of(y, strategy="auto"):
    counts = Counter(y.tolist())
    n_max = max(counts.values())
    assert strategy == "auto"
    return [c for c in sorted(counts) if counts[c] != n_max]


# ---------------------------------------------------------------------------
# exact references
# ---------------------------------------------------------------------------


def other_class_range(X, y, label, m, rtol=1e-6, batch=512):
    """For each row of class `label`: the range ``[lo, hi]`` of the number of
    other-class rows among its m nearest neighbours (own index excluded) over
    every way of breaking distance ties, and whether an other-class row lies
    at distance zero (where dropping column 0 differs from dropping the own
    index). Distances within float32 round-off count as ties."""
    rows = np.flatnonzero(y == label)
    sq = np.einsum("ij,ij->i", X, X)
    other = y != label
    lo, hi = np.empty(rows.size, int), np.empty(rows.size, int)
    zero_dup = np.empty(rows.size, bool)
    for s in range(0, rows.size, batch):
        r = rows[s : s + batch]
        d2 = euclidean_distances(X[r], X, squared=True)
        d2[np.arange(r.size), r] = np.inf
        tol = rtol * (sq[r][:, None] + sq[None, :]) + 1e-12
        kth = np.partition(d2, m - 1, axis=1)[:, m - 1 : m]
        certain = d2 < kth - tol
        tied = np.abs(d2 - kth) <= tol
        slots = m - certain.sum(axis=1)
        n_other = (certain & other).sum(axis=1)
        tied_other, tied_same = (tied & other).sum(axis=1), (tied & ~other).sum(axis=1)
        lo[s : s + batch] = n_other + np.maximum(0, slots - tied_same)
        hi[s : s + batch] = n_other + np.minimum(slots, tied_other)
        zero_dup[s : s + batch] = ((d2 <= tol) & other).any(axis=1)
    return rows, lo, hi, zero_dup


def in_danger(n_other, m):
    return (n_other >= m / 2) & (n_other < m)


def exact_neighbors(X_fit, X_query, k, self_rows):
    """k exact neighbours (scikit-learn brute force), own index removed."""
    ind = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X_fit)
    ind = ind.kneighbors(X_query, return_distance=False)
    keep = ind != np.asarray(self_rows)[:, None]
    keep[keep.all(axis=1), -1] = False
    return ind[keep].reshape(len(ind), k)


def adasyn_counts(n_other, k, n_samples):
    """imbalanced-learn 0.14's ADASYN per-row counts, same float operations."""
    ratio = n_other / k
    ratio /= np.sum(ratio)
    return np.rint(ratio * n_samples).astype(int)


def imblearn_adasyn_counts(X, y, nn, seed):
    """imbalanced-learn's per-row ADASYN counts for every class it oversamples.

    imbalanced-learn does not expose them: they are computed with its own
    steps (whole-data neighbours of the class, column 0 dropped), and then
    proven to be the ones it used by rebuilding its synthetic rows exactly
    from them and its random stream.
    """
    sampler = imblearn.ADASYN(n_neighbors=nn, random_state=seed)
    X_ref, _ = sampler.fit_resample(X, y)
    rng = np.random.RandomState(seed)
    if isinstance(nn, int):  # imblearn's default: NearestNeighbors(n_neighbors=k + 1)
        k = nn
        nn = NearestNeighbors(n_neighbors=k + 1)
    else:
        k = nn.n_neighbors - 1

    def make_nn():
        return clone(nn)
    counts, rebuilt = {}, []
    for label, n_samples in sampler.sampling_strategy_.items():
        if n_samples == 0:
            continue
        rows = np.flatnonzero(y == label)
        nns = make_nn().fit(X).kneighbors(X[rows], return_distance=False)[:, 1:]
        counts[label] = adasyn_counts(np.sum(y[nns] != label, axis=1), k, n_samples)
        n = counts[label].sum()
        X_class = X[rows]
        nns = make_nn().fit(X_class).kneighbors(X_class, return_distance=False)[:, 1:]
        base = np.repeat(np.arange(rows.size), counts[label])
        cols = rng.choice(k, size=n)
        steps = rng.uniform(size=(n, 1))
        rebuilt.append(X_class[base] + steps * (X_class[nns[base, cols]] - X_class[base]))
    np.testing.assert_allclose(X_ref[len(X) :], np.vstack(rebuilt), rtol=1e-12, atol=1e-12)
    return counts


def allowed_steps(X, y, bases, label, k, whole_dataset, foreign_max=0.5):
    """(base, partner, max step) for every allowed pair, from exact neighbours."""
    if whole_dataset:
        partners = exact_neighbors(X, X[bases], k, self_rows=bases)
    else:
        rows = np.flatnonzero(y == label)
        pos = np.searchsorted(rows, bases)
        partners = rows[exact_neighbors(X[rows], X[bases], k, self_rows=pos)]
    base_col = np.repeat(bases, k)
    partner_col = partners.ravel()
    max_step = np.where(y[partner_col] == label, 1.0, foreign_max)
    return base_col, partner_col, max_step


def match_segments(X, synthetic, base, partner, max_step, group=None, atol=1e-7):
    """For each synthetic row, the first allowed pair whose segment holds it
    (``x_b + t (x_p - x_b)`` with ``0 <= t <= max_step``), or -1.

    With `group`, synthetic row ``i`` may only use pairs
    ``i * group : (i + 1) * group`` (its own base's).
    """
    a, ab = X[base], X[partner] - X[base]
    denom = np.maximum((ab**2).sum(axis=1), 1e-300)
    tol = atol * (1 + np.abs(X).max())
    if group is not None:
        a, ab, denom = (v.reshape(len(synthetic), group, *v.shape[1:]) for v in (a, ab, denom))
        mx = max_step.reshape(len(synthetic), group)
        S = synthetic[:, None, :]
        t = ((S - a) * ab).sum(axis=2) / denom
        residual = np.linalg.norm(S - (a + t[..., None] * ab), axis=2)
        ok = (t >= -atol) & (t <= mx + atol) & (residual <= tol)
        return np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
    match = np.full(len(synthetic), -1)
    for s in range(0, len(synthetic), 256):
        S = synthetic[s : s + 256, None, :]
        t = ((S - a) * ab).sum(axis=2) / denom
        residual = np.linalg.norm(S - (a + t[..., None] * ab), axis=2)
        ok = (t >= -atol) & (t <= max_step + atol) & (residual <= tol)
        match[s : s + 256] = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
    return match


# ---------------------------------------------------------------------------
# estimator checks
# ---------------------------------------------------------------------------

ESTIMATORS = [
    BorderlineSMOTE(random_state=0),
    BorderlineSMOTE(random_state=0, kind="borderline-2"),
    ADASYN(random_state=0),
]

# Empty on purpose: both samplers pass every check.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _imblearn_checks():
    from imblearn.utils.estimator_checks import _yield_all_checks

    return [(est, check) for est in ESTIMATORS for check in _yield_all_checks(est)]


@pytest.mark.parametrize(
    "estimator, check",
    _imblearn_checks(),
    ids=lambda v: getattr(v, "__name__", None) or f"{type(v).__name__}-{getattr(v, 'kind', '')}",
)
def test_imblearn_sampler_checks(estimator, check):
    pytest.importorskip("pandas")
    with warnings.catch_warnings():
        # check_samplers_2d_target passes y of shape (n, 1) on purpose; scikit-learn's
        # column_or_1d warns about it, as for any estimator.
        warnings.simplefilter("ignore", DataConversionWarning)
        check(type(estimator).__name__, clone(estimator))


# ---------------------------------------------------------------------------
# agreement with imbalanced-learn on real data
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_SETS)
def test_danger_rows_equal_imblearn(load_shared, name):
    X, y = load_real(load_shared, name)
    m = 10
    ours = BorderlineSMOTE(random_state=0)
    ref = imblearn.BorderlineSMOTE(random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours.fit_resample(X, y)
    ref.fit_resample(X, y)
    n_compared = n_rows = 0
    for label in targets_of(y):
        rows, lo, hi, zero_dup = other_class_range(X, y, label, m)
        ours_mask = np.isin(rows, ours.in_danger_indices.get(label, []))
        ref_mask = np.isin(rows, ref.in_danger_indices.get(label, []))
        possible = [{bool(in_danger(v, m)) for v in range(a, b + 1)} for a, b in zip(lo, hi)]
        # every decision is one some tie-breaking of the exact neighbours gives
        assert all(o in p for o, p in zip(ours_mask, possible)), label
        # where the decision does not depend on ties or duplicates: exactly imblearn's
        firm = np.array([len(p) == 1 for p in possible]) & ~zero_dup
        np.testing.assert_array_equal(ours_mask[firm], ref_mask[firm], err_msg=f"class {label}")
        np.testing.assert_array_equal(ours_mask[firm], in_danger(lo, m)[firm])
        n_compared += firm.sum()
        n_rows += rows.size
    # ties only on a minority of rows (fars' integer features tie most: ~65 % compared)
    assert n_compared >= 0.6 * n_rows
    # the classes without rows in danger are the ones imblearn skips, and we warn about them
    skipped = [c for c in targets_of(y) if c not in ref.in_danger_indices]
    assert [str(w.message).startswith(NO_DANGER) for w in caught] == ([True] if skipped else [])


@pytest.mark.parametrize("name", REAL_SETS)
def test_adasyn_counts_equal_imblearn_with_shared_exact_neighbors(load_shared, name):
    # One exact scikit-learn neighbours object for both: ties are broken the same
    # way, so the only difference left is dropping column 0 vs the own index.
    X, y = load_real(load_shared, name)
    k = 5
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute")
    expected = imblearn_adasyn_counts(X, y, nn, seed=0)
    ours = ADASYN(n_neighbors=nn, random_state=0)
    ours.fit_resample(X, y)
    assert sorted(ours.synthetic_counts_) == sorted(expected)
    for label, ref_counts in expected.items():
        rows = np.flatnonzero(y == label)
        ind = clone(nn).fit(X).kneighbors(X[rows], return_distance=False)
        col0_is_self = np.all(ind[:, 0] == rows)
        if col0_is_self:  # the two exclusion rules coincide: imblearn's counts exactly
            np.testing.assert_array_equal(ours.synthetic_counts_[label], ref_counts)
        # in every case: imblearn's formula on neighbours with the own index removed
        keep = ind != rows[:, None]
        keep[keep.all(axis=1), -1] = False
        n_other = np.sum(y[ind[keep].reshape(rows.size, k)] != label, axis=1)
        n_samples = ours.sampling_strategy_[label]
        expected_ours = adasyn_counts(n_other, k, n_samples)
        np.testing.assert_array_equal(ours.synthetic_counts_[label], expected_ours)


@pytest.mark.parametrize("name", REAL_SETS)
def test_adasyn_counts_equal_imblearn_default_neighbors(load_shared, name):
    # Default exact FAISS search vs imblearn's default NearestNeighbors, on a copy
    # without repeated rows and with ties broken (checked: no row of any class
    # has a tie at its n_neighbors-th neighbour).
    X, y = load_real(load_shared, name)
    X, y = break_ties(X, y)
    k = 5
    for label in targets_of(y):
        _, lo, hi, zero_dup = other_class_range(X, y, label, k)
        assert np.array_equal(lo, hi) and not zero_dup.any()
    expected = imblearn_adasyn_counts(X, y, k, seed=0)
    ours = ADASYN(random_state=0)
    _, y_res = ours.fit_resample(X, y)
    assert ours.synthetic_counts_.keys() == expected.keys()
    for label, ref_counts in expected.items():
        np.testing.assert_array_equal(ours.synthetic_counts_[label], ref_counts)
    _, y_ref = imblearn.ADASYN(random_state=0).fit_resample(X, y)
    np.testing.assert_array_equal(y_res, y_ref)


# ---------------------------------------------------------------------------
# class counts for every sampling_strategy form
# ---------------------------------------------------------------------------

STRATEGIES = [
    "auto",
    "minority",
    "not minority",
    "not majority",
    "all",
    {1: 500, 2: 300},
    lambda y: {1: int(np.sum(y == 0)), 2: 2 * int(np.sum(y == 2))},
]
SAMPLERS = {
    "borderline-1": lambda **kw: (BorderlineSMOTE(**kw), imblearn.BorderlineSMOTE(**kw)),
    "borderline-2": lambda **kw: (
        BorderlineSMOTE(kind="borderline-2", **kw),
        imblearn.BorderlineSMOTE(kind="borderline-2", **kw),
    ),
    "adasyn": lambda **kw: (ADASYN(**kw), imblearn.ADASYN(**kw)),
}


@pytest.mark.parametrize("variant", SAMPLERS)
def test_class_counts_equal_imblearn_every_strategy_form(variant):
    X, y = make_data(n=700, weights=(0.6, 0.3, 0.1), seed=1)
    Xb, yb = make_data(n=400, weights=(0.75, 0.25), seed=2)
    cases = [(X, y, s) for s in STRATEGIES] + [(Xb, yb, 0.8), (Xb, yb, "auto")]
    for X_, y_, strategy in cases:
        ours, ref = SAMPLERS[variant](sampling_strategy=strategy, random_state=0)
        X_res, y_res = ours.fit_resample(X_, y_)
        _, y_ref = ref.fit_resample(X_, y_)
        # same labels in the same order: originals first, then class by class
        np.testing.assert_array_equal(y_res, y_ref, err_msg=f"{variant} {strategy}")
        np.testing.assert_array_equal(X_res[: len(X_)], X_)


def test_class_without_danger_skipped_like_imblearn_with_one_warning():
    # class 2 is far from everything: none of its rows is in danger
    X, y = make_data(n=700, weights=(0.6, 0.3, 0.1), seed=1)
    X[y == 2] += 50
    sampler = BorderlineSMOTE(random_state=0)
    with pytest.warns(UserWarning, match=rf"{NO_DANGER} in class\(es\) \[2\]") as caught:
        _, y_res = sampler.fit_resample(X, y)
    assert len(caught) == 1
    assert caught[0].filename == __file__  # stacklevel points at this call
    _, y_ref = imblearn.BorderlineSMOTE(random_state=0).fit_resample(X, y)
    np.testing.assert_array_equal(y_res, y_ref)
    assert sorted(sampler.in_danger_indices_) == [1]


def test_no_danger_anywhere_returns_the_data_and_warns_once():
    X, y = make_data(n=300, shift=50)
    with pytest.warns(UserWarning, match=NO_DANGER) as caught:
        X_res, y_res = BorderlineSMOTE(random_state=0).fit_resample(X, y)
    assert len(caught) == 1
    np.testing.assert_array_equal(X_res, X)
    np.testing.assert_array_equal(y_res, y)


# ---------------------------------------------------------------------------
# every synthetic row on a segment to an allowed partner
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["borderline-1", "borderline-2"])
@pytest.mark.parametrize("weights", [(0.8, 0.2), (0.6, 0.25, 0.15)])
def test_borderline_rows_on_allowed_segments(kind, weights):
    X, y = make_data(n=500, n_features=3, weights=weights, seed=3)
    k, m = 4, 8
    sampler = BorderlineSMOTE(k_neighbors=k, m_neighbors=m, kind=kind, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    start = len(X)
    used_foreign = False
    for label, n_samples in sampler.sampling_strategy_.items():
        if n_samples == 0:
            continue
        rows, lo, hi, _ = other_class_range(X, y, label, m)
        assert np.array_equal(lo, hi)  # continuous data: no ties
        bases = rows[in_danger(lo, m)]
        np.testing.assert_array_equal(sampler.in_danger_indices_[label], bases)
        synthetic = X_res[start : start + n_samples]
        assert np.all(y_res[start : start + n_samples] == label)
        start += n_samples
        base, partner, max_step = allowed_steps(X, y, bases, label, k, kind == "borderline-2")
        match = match_segments(X, synthetic, base, partner, max_step)
        assert np.all(match >= 0), f"class {label}: {np.sum(match < 0)} rows off every segment"
        used_foreign |= bool(np.any(y[partner[match]] != label))
    assert start == len(X_res)
    # borderline-2 does step toward other classes (then at most half way); borderline-1 never
    assert used_foreign == (kind == "borderline-2")


def test_borderline_2_foreign_steps_are_shortened():
    # The segment check must be able to fail: without the U[0, 0.5) factor some
    # steps toward other classes would go past half way.
    X, y = make_data(n=500, n_features=3, seed=3)
    sampler = BorderlineSMOTE(k_neighbors=4, m_neighbors=8, kind="borderline-2", random_state=0)
    X_res, _ = sampler.fit_resample(X, y)
    bases = sampler.in_danger_indices_[1]
    base, partner, max_step = allowed_steps(X, y, bases, 1, 4, True, foreign_max=1.0)
    a, ab = X[base], X[partner] - X[base]
    match = match_segments(X, X_res[len(X) :], base, partner, max_step)
    assert np.all(match >= 0)
    synthetic = X_res[len(X) :]
    t = ((synthetic - a[match]) * ab[match]).sum(axis=1) / (ab[match] ** 2).sum(axis=1)
    foreign = y[partner[match]] != 1
    assert foreign.sum() > 50
    assert t[foreign].max() < 0.5 and t[~foreign].max() > 0.9
    # steps toward other classes are u * v with u ~ U[0,1), v ~ U[0,0.5): mean 1/8
    assert abs(t[foreign].mean() - 0.125) < 0.03


@pytest.mark.parametrize("weights", [(0.8, 0.2), (0.6, 0.25, 0.15)])
def test_adasyn_rows_on_allowed_segments_with_reference_counts(weights):
    X, y = make_data(n=500, n_features=3, weights=weights, seed=4)
    k = 4
    sampler = ADASYN(n_neighbors=k, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    start = len(X)
    for label, n_asked in sampler.sampling_strategy_.items():
        if n_asked == 0:
            continue
        rows, lo, hi, _ = other_class_range(X, y, label, k)
        assert np.array_equal(lo, hi)
        counts = adasyn_counts(lo, k, n_asked)
        np.testing.assert_array_equal(sampler.synthetic_counts_[label], counts)
        n = counts.sum()
        synthetic = X_res[start : start + n]
        assert np.all(y_res[start : start + n] == label)
        start += n
        # rows come base by base, each base exactly its count, each on a segment
        # from that base to one of its k exact neighbours within the class
        expected_base = np.repeat(rows, counts)
        base, partner, max_step = allowed_steps(X, y, expected_base, label, k, False)
        on_segment = match_segments(X, synthetic, base, partner, max_step, group=k)
        assert np.all(on_segment >= 0)
    assert start == len(X_res)


# ---------------------------------------------------------------------------
# determinism, dtype, pandas
# ---------------------------------------------------------------------------

VARIANTS = {
    "borderline-1": lambda **kw: BorderlineSMOTE(**kw),
    "borderline-2": lambda **kw: BorderlineSMOTE(kind="borderline-2", **kw),
    "adasyn": lambda **kw: ADASYN(**kw),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_bit_identical_across_n_jobs_chunk_size_and_backend(variant):
    # more than a random block of synthetic rows for a class: several blocks and chunks
    X, y = make_data(n=24_000, weights=(0.8, 0.15, 0.05), shift=0.8, dtype=np.float32)
    make = VARIANTS[variant]
    X_ref, y_ref = make(random_state=7).fit_resample(X, y)
    assert X_ref.dtype == np.float32 and max(np.bincount(y_ref) - np.bincount(y)) > BLOCK_SIZE
    for n_jobs, chunk_size in [(2, 7), (2, 1000), (1, BLOCK_SIZE + 1)]:
        X_res, y_res = make(random_state=7, n_jobs=n_jobs, chunk_size=chunk_size).fit_resample(X, y)
        np.testing.assert_array_equal(X_res, X_ref)
        np.testing.assert_array_equal(y_res, y_ref)
    with parallel_config(backend="loky", n_jobs=2):
        X_res, _ = make(random_state=7, chunk_size=1500).fit_resample(X, y)
    np.testing.assert_array_equal(X_res, X_ref)
    assert not np.array_equal(make(random_state=8).fit_resample(X, y)[0], X_ref)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pandas_round_trip_and_input_untouched(variant):
    pd = pytest.importorskip("pandas")
    X, y = make_data(n=400)
    X_df = pd.DataFrame(X, columns=list("abcd")).astype({"a": np.float32})
    y_s = pd.Series(np.where(y == 1, "rare", "common"), name="target")
    before = X_df.copy()
    X_res, y_res = VARIANTS[variant](random_state=0).fit_resample(X_df, y_s)
    assert isinstance(X_res, pd.DataFrame) and isinstance(y_res, pd.Series)
    assert X_res.dtypes.tolist() == X_df.dtypes.tolist() and y_res.name == "target"
    pd.testing.assert_frame_equal(X_df, before)
    X_np, y_np = VARIANTS[variant](random_state=0).fit_resample(X_df.to_numpy(), y_s.to_numpy())
    np.testing.assert_allclose(X_res.to_numpy(dtype=np.float64), X_np, rtol=1e-6)
    assert y_res.tolist() == y_np.tolist()


# ---------------------------------------------------------------------------
# neighbours parameters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, params",
    [
        (BorderlineSMOTE, ("k_neighbors", "m_neighbors")),
        (lambda **kw: BorderlineSMOTE(kind="borderline-2", **kw), ("k_neighbors", "m_neighbors")),
        (ADASYN, ("n_neighbors",)),
    ],
)
def test_neighbor_objects_are_cloned_and_equivalent_to_ints(make, params):
    X, y = make_data(n=500)
    ints = {"k_neighbors": 3, "m_neighbors": 7, "n_neighbors": 3}
    objects = {p: NearestNeighbors(n_neighbors=ints[p] + 1) for p in params}
    with_objects = make(random_state=0, **objects)
    X_obj, _ = with_objects.fit_resample(X, y)
    for obj in objects.values():
        assert not hasattr(obj, "n_samples_fit_")  # never fitted or modified
    X_int, _ = make(random_state=0, **{p: ints[p] for p in params}).fit_resample(X, y)
    np.testing.assert_allclose(X_obj, X_int, rtol=1e-12)


def test_own_index_removed_wherever_it_appears_in_whole_data_search():
    # A neighbours object returning each sample LAST: dropping column 0 (as
    # imbalanced-learn does) would count the sample among its own neighbours.
    class SelfLast(NearestNeighbors):
        def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
            dist, ind = super().kneighbors(X, n_neighbors, return_distance=True)
            dist, ind = np.roll(dist, -1, axis=1), np.roll(ind, -1, axis=1)
            return (dist, ind) if return_distance else ind

    X, y = make_data(n=500)
    plain = BorderlineSMOTE(m_neighbors=NearestNeighbors(n_neighbors=11), random_state=0)
    rolled = BorderlineSMOTE(m_neighbors=SelfLast(n_neighbors=11), random_state=0)
    X_plain, _ = plain.fit_resample(X, y)
    np.testing.assert_array_equal(rolled.fit_resample(X, y)[0], X_plain)
    ada = [ADASYN(n_neighbors=cls(n_neighbors=6), random_state=0) for cls in (NearestNeighbors, SelfLast)]
    np.testing.assert_array_equal(ada[0].fit_resample(X, y)[0], ada[1].fit_resample(X, y)[0])


def test_approximate_whole_data_search_finds_nearly_the_same_danger_rows():
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((20, 8)) * 4
    X = (centers[rng.integers(0, 20, 20000)] + rng.standard_normal((20000, 8))).astype(np.float32)
    y = (rng.random(20000) < 0.1 + 0.4 * (X[:, 0] > 2)).astype(int)
    exact = BorderlineSMOTE(random_state=0).fit(X, y)
    exact.fit_resample(X, y)
    ivf = FaissNN(n_neighbors=11, index_type="ivf", random_state=0)
    approx = BorderlineSMOTE(m_neighbors=ivf, random_state=0)
    approx.fit_resample(X, y)
    a, b = set(exact.in_danger_indices_[1]), set(approx.in_danger_indices_[1])
    assert len(a & b) / len(a | b) > 0.9


# ---------------------------------------------------------------------------
# bad input: what happened and what to change
# ---------------------------------------------------------------------------


def test_adasyn_without_other_class_neighbors():
    X, y = make_data(n=300, shift=50)
    with pytest.raises(ValueError, match=r"no neighbour of another class.*class 1.*Use SMOTE"):
        ADASYN(random_state=0).fit_resample(X, y)
    # drop-in: code written for imbalanced-learn catches a RuntimeError here
    with pytest.raises(RuntimeError, match=r"no neighbour of another class"):
        ADASYN(random_state=0).fit_resample(X, y)
    with pytest.raises(RuntimeError, match="Use SMOTE instead"):  # imblearn raises too
        imblearn.ADASYN(random_state=0).fit_resample(X, y)


def test_adasyn_rounding_to_zero_samples():
    X, y = make_data(n=600, shift=0.3)
    n_class = int(np.sum(y == 1))
    strategy = {1: n_class + 1}  # one sample spread over ~120 weighted rows
    with pytest.raises(ValueError, match=r"ADASYN would generate no samples for class 1.*the 1 "):
        ADASYN(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    with pytest.raises(ValueError, match="No samples will be generated"):
        imblearn.ADASYN(sampling_strategy=strategy, random_state=0).fit_resample(X, y)


@pytest.mark.parametrize(
    "sampler, match",
    [
        (BorderlineSMOTE(k_neighbors=20), r"Class 1 has 10 samples but k_neighbors=20 needs at le"),
        (BorderlineSMOTE(m_neighbors=40), r"X has 30 samples but m_neighbors=40 needs.*<= 29"),
        (BorderlineSMOTE(kind="borderline-2", k_neighbors=40), r"X has 30 samples but k_neigh"),
        (ADASYN(n_neighbors=NearestNeighbors(n_neighbors=25)), r"n_neighbors has n_neighbors=25"),
        (ADASYN(n_neighbors=NearestNeighbors(n_neighbors=1)), r"only the sample itself"),
        (BorderlineSMOTE(kind="borderline-3"), r"The 'kind' parameter"),
        (ADASYN(n_neighbors=0), r"The 'n_neighbors' parameter"),
    ],
)
def test_bad_parameters_name_value_and_fix(sampler, match):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    y = np.r_[np.zeros(20, int), np.ones(10, int)]
    with pytest.raises(ValueError, match=match):
        sampler.fit_resample(X, y)


def test_in_danger_indices_alias_and_fitted_attributes():
    X, y = make_data(n=400)
    sampler = BorderlineSMOTE(random_state=0)
    assert not hasattr(sampler, "in_danger_indices")
    sampler.fit_resample(X, y)
    assert sampler.in_danger_indices is sampler.in_danger_indices_
    assert isinstance(sampler.nn_m_, FaissNN) and sampler.nn_m_.n_neighbors == 11
    assert isinstance(sampler.nn_k_, FaissNN) and sampler.nn_k_.n_neighbors == 6
    ada = ADASYN(random_state=0).fit(X, y)
    assert ada.sampling_strategy_ == {1: int(np.sum(y == 0) - np.sum(y == 1))}
    ada.fit_resample(X, y)
    assert isinstance(ada.nn_, FaissNN) and ada.nn_.n_neighbors == 6
    # the searches used fitted clones, released before generation (no index kept)
    for nn in (sampler.nn_m_, sampler.nn_k_, ada.nn_):
        assert not hasattr(nn, "index_")
    assert SMOTE().get_params().keys() < BorderlineSMOTE().get_params().keys()


def test_tiny_noise_class_skipped_not_refused_like_imblearn():
    # class 2 has 4 rows scattered inside the majority: all their neighbours are
    # of other classes (noise, not danger), so both libraries skip it, whatever
    # k_neighbors would need
    rng = np.random.default_rng(5)
    noise = np.array([[-1.0, -1.0], [-1.0, 0.5], [0.5, -1.0], [0.0, 0.0]])
    X = np.vstack([rng.normal(size=(300, 2)), rng.normal(size=(60, 2)) * 0.5 + 2.5, noise])
    y = np.r_[np.zeros(300, int), np.ones(60, int), np.full(4, 2)]
    with pytest.warns(UserWarning, match=NO_DANGER):
        _, y_ours = BorderlineSMOTE(random_state=0).fit_resample(X, y)
    _, y_ref = imblearn.BorderlineSMOTE(random_state=0).fit_resample(X, y)
    assert np.bincount(y_ours).tolist() == np.bincount(y_ref).tolist()
    assert np.bincount(y_ours)[2] == 4
