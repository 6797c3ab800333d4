"""The pure generation engine: plans, draws, interpolation, chunking."""

import numpy as np
import pytest

from smote_ann._generation import (
    BLOCK_SIZE,
    FOREIGN_STEP_MAX,
    ClassPlan,
    compact,
    draw,
    interpolate,
    iter_resampled,
)

ENTROPY = [1, 2, 3, 4]


def _plan(n_samples, n_bases=7, k=3, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    bases = np.sort(rng.choice(100, size=n_bases, replace=False))
    partners = rng.integers(0, 100, size=(n_bases, k))
    return ClassPlan("c", 1, n_samples, bases, partners, **kwargs)


def test_interpolate_hand_computed():
    X = np.array([[0.0, 0.0], [2.0, 4.0], [10.0, -10.0]])
    out = interpolate(X, np.array([0, 1, 2]), np.array([1, 2, 2]), np.array([0.5, 0.25, 0.9]))
    np.testing.assert_array_equal(out, [[1.0, 2.0], [4.0, 0.5], [10.0, -10.0]])
    assert out.dtype == X.dtype


def test_interpolate_keeps_float32_and_input_untouched():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    before = X.copy()
    out = interpolate(X, np.array([0, 5]), np.array([5, 0]), np.array([0.5, 0.5]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[5.0, 6.0], [5.0, 6.0]])
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("splits", [[1], [BLOCK_SIZE - 1, BLOCK_SIZE + 1], [3, 5000, 9999], list(range(1, 10_000, 997))])
def test_draws_do_not_depend_on_chunk_boundaries(splits):
    plan = _plan(10_000)
    whole = draw(plan, ENTROPY, 0, plan.n_samples)
    edges = [0, *splits, plan.n_samples]
    parts = [draw(plan, ENTROPY, a, b) for a, b in zip(edges[:-1], edges[1:])]
    for whole_part, pieces in zip(whole, zip(*parts)):
        np.testing.assert_array_equal(whole_part, np.concatenate(pieces))


def test_draws_depend_on_seed_and_class():
    plan = _plan(500)
    other_class = ClassPlan("d", 2, 500, plan.bases, plan.partners)
    a = draw(plan, ENTROPY, 0, 500)
    assert not np.array_equal(a[2], draw(plan, [9, 9, 9, 9], 0, 500)[2])
    assert not np.array_equal(a[2], draw(other_class, ENTROPY, 0, 500)[2])


def test_pairs_uniform_over_base_and_partner():
    bases = np.array([10, 20, 30, 40])
    partners = np.array([[11, 12, 13], [21, 22, 23], [31, 32, 33], [41, 42, 43]])
    plan = ClassPlan("c", 0, 60_000, bases, partners)
    base_rows, partner_rows, step = draw(plan, ENTROPY, 0, plan.n_samples)
    # every partner belongs to its base (partner // 10 == base // 10 by construction)
    np.testing.assert_array_equal(partner_rows // 10, base_rows // 10)
    _, counts = np.unique(partner_rows, return_counts=True)
    assert counts.size == 12
    expected = plan.n_samples / 12
    assert np.all(np.abs(counts - expected) < 0.05 * expected)
    assert step.min() >= 0.0 and step.max() < 1.0
    assert abs(step.mean() - 0.5) < 0.01


def test_base_counts_assign_rows_in_order():
    counts = np.array([3, 0, 2, 5])
    plan = _plan(10, n_bases=4, k=2, base_counts=counts)
    base_rows, _, _ = draw(plan, ENTROPY, 0, 10)
    np.testing.assert_array_equal(base_rows, np.repeat(plan.bases, counts))
    # and the same when drawn in pieces
    pieces = [draw(plan, ENTROPY, a, b)[0] for a, b in [(0, 4), (4, 5), (5, 10)]]
    np.testing.assert_array_equal(np.concatenate(pieces), base_rows)


def test_foreign_partners_get_shortened_steps():
    foreign = np.zeros((7, 3), dtype=bool)
    foreign[:, 0] = True
    plan = _plan(20_000, foreign=foreign)
    base_rows, partner_rows, step = draw(plan, ENTROPY, 0, plan.n_samples)
    pos = np.searchsorted(plan.bases, base_rows)
    is_foreign = partner_rows == plan.partners[pos, 0]
    only_foreign = is_foreign & ~(partner_rows == plan.partners[pos, 1]) & ~(partner_rows == plan.partners[pos, 2])
    assert step[only_foreign].max() < FOREIGN_STEP_MAX
    # the product of U[0,1) and U[0,0.5) has mean 0.125
    assert abs(step[only_foreign].mean() - 0.125) < 0.01
    assert step[~is_foreign].max() > 0.9


def test_compact_keeps_rows():
    X = np.arange(200.0).reshape(100, 2)
    plans = [_plan(10, seed=1), _plan(10, seed=2)]
    X_src, renumbered = compact(X, plans)
    for before, after in zip(plans, renumbered):
        np.testing.assert_array_equal(X_src[after.bases], X[before.bases])
        np.testing.assert_array_equal(X_src[after.partners], X[before.partners])
    assert X_src.flags.c_contiguous and len(X_src) <= 100


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_iter_resampled_originals_then_synthetic(n_jobs):
    X = np.arange(200.0).reshape(100, 2)
    y = np.arange(100) % 2
    plans = [_plan(30, seed=1), ClassPlan("e", 3, 17, np.array([0, 1]), np.array([[1], [0]]))]
    X_src, renumbered = compact(X, plans)
    blocks = list(iter_resampled(X, y.astype(object), renumbered, X_src, ENTROPY, chunk_size=8, n_jobs=n_jobs))
    X_out = np.concatenate([b[0] for b in blocks])
    y_out = np.concatenate([b[1] for b in blocks])
    assert len(X_out) == 147
    np.testing.assert_array_equal(X_out[:100], X)
    assert list(y_out[100:]) == ["c"] * 30 + ["e"] * 17
    assert all(len(b[0]) <= 8 for b in blocks)
    # rows of class "e" lie between rows 0 and 1 of X
    seg = X_out[130:]
    assert np.all((seg >= X[0]) & (seg <= X[1]))


def test_block_cache_gives_the_same_draws():
    plan = _plan(9000)
    cache = {}
    pieces = [draw(plan, ENTROPY, a, min(a + 700, 9000), cache) for a in range(0, 9000, 700)]
    whole = draw(plan, ENTROPY, 0, 9000)
    for whole_part, parts in zip(whole, zip(*pieces)):
        np.testing.assert_array_equal(whole_part, np.concatenate(parts))
    other = ClassPlan("d", 2, 9000, plan.bases, plan.partners)  # another plan, same cache
    np.testing.assert_array_equal(draw(other, ENTROPY, 0, 10, cache)[2], draw(other, ENTROPY, 0, 10)[2])
