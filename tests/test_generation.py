"""The pure generation engine: plans, draws, interpolation, chunking."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from joblib import parallel_config

from smote_ann import _generation

from smote_ann._generation import (
    BLOCK_SIZE,
    FOREIGN_STEP_MAX,
    ClassPlan,
    compact,
    draw,
    Resampling,
    interpolate,
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("piece_bytes", [1, 64, 2**17])
def test_interpolate_in_pieces_is_the_plain_formula(dtype, piece_bytes, monkeypatch):
    # pieces of 1 row (smaller than a row), a few rows, and the default size
    monkeypatch.setattr(_generation, "PIECE_BYTES", piece_bytes)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5)).astype(dtype)
    base, partner = rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)
    step = rng.random(2000)
    expected = X[base] + step.astype(dtype)[:, None] * (X[partner] - X[base])
    out = np.full((2010, 5), 7, dtype=dtype)
    result = interpolate(X, base, partner, step, out=out[5:2005])
    assert np.shares_memory(result, out)  # written in place
    assert out[5:2005].tobytes() == expected.tobytes()
    assert np.all(out[:5] == 7) and np.all(out[2005:] == 7)
    assert interpolate(X, base, partner, step).tobytes() == expected.tobytes()


N_DRAWS = 2 * BLOCK_SIZE + 1000  # two whole blocks and part of a third


@pytest.mark.parametrize("splits", [
    [1],
    [BLOCK_SIZE - 1, BLOCK_SIZE + 1],
    [3, 5000, 2 * BLOCK_SIZE + 1],
    list(range(1, N_DRAWS, 997)),
])
def test_draws_do_not_depend_on_chunk_boundaries(splits):
    plan = _plan(N_DRAWS)
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


def _resampling(chunk_size, n_jobs, X=None):
    X = np.arange(200.0).reshape(100, 2) if X is None else X
    y = (np.arange(100) % 2).astype(object)
    plans = [_plan(30, seed=1), ClassPlan("e", 3, 17, np.array([0, 1]), np.array([[1], [0]]))]
    return Resampling(X, y, plans, ENTROPY, chunk_size, n_jobs)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_blocks_originals_then_synthetic(n_jobs):
    r = _resampling(chunk_size=8, n_jobs=n_jobs)
    assert (r.n_rows, r.n_features, r.dtype, r.y_dtype) == (147, 2, np.float64, object)
    blocks = list(r.blocks())
    X_out = np.concatenate([b[0] for b in blocks])
    y_out = np.concatenate([b[1] for b in blocks])
    assert len(X_out) == 147
    np.testing.assert_array_equal(X_out[:100], r.X)
    assert list(y_out[100:]) == ["c"] * 30 + ["e"] * 17
    assert all(len(b[0]) <= 8 for b in blocks)
    # rows of class "e" lie between rows 0 and 1 of X
    seg = X_out[130:]
    assert np.all((seg >= r.X[0]) & (seg <= r.X[1]))
    # class "c": each row on the segment from its base to its partner (hand-computed)
    plan = _plan(30, seed=1)
    base_rows, partner_rows, step = draw(plan, ENTROPY, 0, 30)
    expected = r.X[base_rows] + step[:, None] * (r.X[partner_rows] - r.X[base_rows])
    assert X_out[100:130].tobytes() == expected.tobytes()


@pytest.mark.parametrize("backend", ["threading", "sequential", "loky"])
@pytest.mark.parametrize("chunk_size", [1, 5, 8, 1000])
def test_fill_writes_the_same_rows_as_blocks(backend, chunk_size):
    reference = _resampling(chunk_size=8, n_jobs=1)
    X_ref = np.concatenate([b[0] for b in reference.blocks()])
    y_ref = np.concatenate([b[1] for b in reference.blocks()])
    r = _resampling(chunk_size=chunk_size, n_jobs=2)
    X_out, y_out = np.empty((r.n_rows, 2)), np.empty(r.n_rows, dtype=object)
    with parallel_config(backend=backend):
        # threads write in place; loky's processes send their chunks back
        assert _generation._shares_memory() is (backend != "loky")
        r.fill(X_out, y_out)
    assert X_out.tobytes() == X_ref.tobytes()
    assert list(y_out) == list(y_ref)


def _plain_reference(X, plans):
    """Every synthetic row by the formula, from draws of whole plans."""
    parts = []
    for plan in plans:
        base, partner, step = draw(plan, ENTROPY, 0, plan.n_samples)
        parts.append(X[base] + step.astype(X.dtype)[:, None] * (X[partner] - X[base]))
    return np.concatenate(parts)


def _multi_block_plans():
    """X and two plans, one of three random blocks (the last partial)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 3)).astype(np.float32)
    return X, [
        ClassPlan("a", 0, 2 * BLOCK_SIZE + 5, np.arange(0, 500, 2), rng.integers(0, 500, (250, 4))),
        ClassPlan("b", 1, 3000, np.arange(1, 500, 2), rng.integers(0, 500, (250, 2))),
    ]


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
@pytest.mark.parametrize("chunk_size", [700, BLOCK_SIZE, BLOCK_SIZE + 333])
def test_fill_synthetic_across_blocks_and_threads(n_jobs, chunk_size, monkeypatch):
    # chunks smaller than, equal to and across blocks
    X, plans = _multi_block_plans()
    drawn = []
    real_draw_block = _generation._draw_block
    monkeypatch.setattr(_generation, "_draw_block",
                        lambda plan, e, b: drawn.append((plan.label, b)) or real_draw_block(plan, e, b))
    n_rows = sum(p.n_samples for p in plans)
    X_out, y_out = np.full((n_rows, 3), np.nan, np.float32), np.empty(n_rows, dtype=object)
    with parallel_config(backend="threading"):
        _generation.fill_synthetic(X, plans, ENTROPY, X_out, y_out, chunk_size=chunk_size, n_jobs=n_jobs)
    monkeypatch.undo()
    assert X_out.tobytes() == _plain_reference(X, plans).tobytes()
    assert list(y_out) == ["a"] * plans[0].n_samples + ["b"] * plans[1].n_samples
    # a block's chunks go to one worker: every block is drawn once
    assert sorted(drawn) == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]


@pytest.mark.parametrize("backend", ["threading", "loky"])
@pytest.mark.parametrize("chunk_size", [700, BLOCK_SIZE + 333])
def test_blocks_across_random_blocks(backend, chunk_size):
    # the streaming path (draws in the caller, chunks from the workers)
    X, plans = _multi_block_plans()
    r = Resampling(X, np.full(len(X), "a", dtype=object), plans, ENTROPY, chunk_size, 2)
    with parallel_config(backend=backend):
        synthetic = np.concatenate([chunk for chunk, _ in r.blocks()])[len(X):]
    assert synthetic.tobytes() == _plain_reference(X, plans).tobytes()


def _counting_interpolate(monkeypatch, fail_at=None):
    """Count the chunks interpolated; raise on the `fail_at`-th."""
    calls, real = [], _generation.interpolate

    def counted(X, base, partner, step, out=None):
        calls.append(len(base))
        if len(calls) == fail_at:
            raise RuntimeError("worker failed")
        return real(X, base, partner, step, out=out)

    monkeypatch.setattr(_generation, "interpolate", counted)
    return calls


@pytest.mark.parametrize("n_jobs", [2, 3])
def test_thread_stream_stays_a_few_chunks_ahead_and_stops_with_the_caller(n_jobs, monkeypatch):
    X, plans = _multi_block_plans()
    calls = _counting_interpolate(monkeypatch)
    with parallel_config(backend="threading"):
        chunks = _generation.iter_synthetic(X, plans, ENTROPY, chunk_size=100, n_jobs=n_jobs)
        next(chunks)
        time.sleep(0.3)  # a slow consumer: the workers must wait for it
        assert len(calls) <= 1 + 2 * n_jobs
        chunks.close()  # the caller stops early: the workers stop too
    n_made = len(calls)
    time.sleep(0.1)
    assert len(calls) == n_made <= 1 + 2 * n_jobs + n_jobs


def test_thread_stream_raises_a_workers_error(monkeypatch):
    X, plans = _multi_block_plans()
    calls = _counting_interpolate(monkeypatch, fail_at=5)
    with parallel_config(backend="threading"), pytest.raises(RuntimeError, match="worker failed"):
        for _ in _generation.iter_synthetic(X, plans, ENTROPY, chunk_size=100, n_jobs=2):
            pass
    assert len(calls) < 20  # the other worker stopped too (there are 361 chunks)


def test_fill_synthetic_stops_and_raises_when_a_worker_fails():
    X = np.zeros((10, 2))
    plans = [ClassPlan(i, i, 2 * BLOCK_SIZE, np.arange(10), np.zeros((10, 1), dtype=np.intp))
             for i in range(8)]
    n_rows = sum(p.n_samples for p in plans)
    y_out = np.zeros(n_rows, dtype=np.int8)
    written = []

    class Output(np.ndarray):  # an output whose rows of plan 3 cannot be written
        def __setitem__(self, rows, value):
            written.append(rows.start)
            if rows.start == 3 * 2 * BLOCK_SIZE:
                raise RuntimeError("disk full")
            super().__setitem__(rows, value)

    for n_jobs in (1, 2, 3):
        written.clear()
        y = y_out.view(Output)
        with parallel_config(backend="threading"), pytest.raises(RuntimeError, match="disk full"):
            _generation.fill_synthetic(X, plans, ENTROPY, np.zeros((n_rows, 2)), y,
                                       chunk_size=BLOCK_SIZE, n_jobs=n_jobs)
        n_written = len(written)
        time.sleep(0.05)
        assert len(written) == n_written  # nothing is written once the call has ended
        # after the failure, each other worker finishes at most its current run
        # (one chunk here), then stops
        after_failure = written[written.index(3 * 2 * BLOCK_SIZE) + 1 :]
        assert len(after_failure) <= n_jobs - 1


def test_fill_synthetic_uses_every_worker(monkeypatch):
    X, plans = _multi_block_plans()
    threads, real = set(), _generation.interpolate

    def slow(*args, **kwargs):
        threads.add(threading.get_ident())
        time.sleep(0.02)  # long enough for every worker to take a run
        return real(*args, **kwargs)

    monkeypatch.setattr(_generation, "interpolate", slow)
    n_rows = sum(p.n_samples for p in plans)
    X_out, y_out = np.empty((n_rows, 3), np.float32), np.empty(n_rows, dtype=object)
    # a bare n_jobs (joblib's default backend is loky; threads are used here)
    with parallel_config(n_jobs=2):
        _generation.fill_synthetic(X, plans, ENTROPY, X_out, y_out, chunk_size=4000, n_jobs=None)
    assert len(threads) == 2


def _run_python(code, timeout=120):
    """Run `code` in a fresh interpreter (a hang fails the test, not the suite)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


STREAM_SETUP = """
import numpy as np
from joblib import parallel_config
from smote_ann import SMOTE
from smote_ann.streaming import iter_resample
rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 4)).astype(np.float32)
y = np.r_[np.zeros(2700, int), np.ones(300, int)]
"""


@pytest.mark.parametrize("config, n_jobs", [
    ("n_jobs=2", None),  # no backend named: joblib's default is loky
    ("prefer='processes'", 2),
    ("backend='threading', n_jobs=3", None),
])
def test_streams_and_fills_under_joblib_configs(config, n_jobs):
    out = _run_python(STREAM_SETUP + f"""
reference, _ = SMOTE(random_state=0).fit_resample(X, y)
with parallel_config({config}):
    s = SMOTE(random_state=0, chunk_size=100, n_jobs={n_jobs})
    streamed = np.concatenate([c for c, _ in iter_resample(s, X, y)])
    filled, _ = s.fit_resample(X, y)
print(streamed.tobytes() == reference.tobytes(), filled.tobytes() == reference.tobytes())
""")
    assert out.split() == ["True", "True"]


def test_interpreter_exits_with_a_stream_left_open():
    # joblib's threads are frozen at exit: the stream must not wait for them
    out = _run_python(STREAM_SETUP + """
with parallel_config(backend="threading"):
    blocks = iter_resample(SMOTE(random_state=0, chunk_size=100, n_jobs=2), X, y)
    for i, b in enumerate(blocks):
        if i == 40:
            break  # `blocks` stays referenced and suspended
print("done")
""", timeout=60)
    assert out.split() == ["done"]


def test_closing_a_stream_does_not_raise_a_workers_error(monkeypatch):
    X, plans = _multi_block_plans()
    # 2 workers stay at most 4 chunks ahead: the 5th chunk is only begun
    # once the caller holds the first
    calls = _counting_interpolate(monkeypatch, fail_at=5)
    with parallel_config(backend="threading"):
        chunks = _generation.iter_synthetic(X, plans, ENTROPY, chunk_size=100, n_jobs=2)
        next(chunks)
        while len(calls) < 5:  # a worker fails while the caller holds a chunk
            time.sleep(0.01)
        chunks.close()  # the caller stops: nothing to raise into close()


def test_block_cache_gives_the_same_draws():
    plan = _plan(N_DRAWS)
    cache = {}
    pieces = [draw(plan, ENTROPY, a, min(a + 700, N_DRAWS), cache) for a in range(0, N_DRAWS, 700)]
    whole = draw(plan, ENTROPY, 0, N_DRAWS)
    for whole_part, parts in zip(whole, zip(*pieces)):
        np.testing.assert_array_equal(whole_part, np.concatenate(parts))
    other = ClassPlan("d", 2, N_DRAWS, plan.bases, plan.partners)  # another plan, same cache
    np.testing.assert_array_equal(draw(other, ENTROPY, 0, 10, cache)[2], draw(other, ENTROPY, 0, 10)[2])


def test_fill_from_a_memory_map_reads_compacted_rows(tmp_path, monkeypatch):
    reference = _resampling(chunk_size=8, n_jobs=1)
    X_ref = np.concatenate([b[0] for b in reference.blocks()])
    np.save(tmp_path / "X.npy", reference.X)
    r = _resampling(chunk_size=5, n_jobs=2, X=np.load(tmp_path / "X.npy", mmap_mode="r"))
    sources, real_fill = [], _generation.fill_synthetic

    def spy(X_src, *args, **kwargs):
        sources.append(X_src)
        return real_fill(X_src, *args, **kwargs)

    monkeypatch.setattr(_generation, "fill_synthetic", spy)
    X_out, y_out = np.empty((r.n_rows, 2)), np.empty(r.n_rows, dtype=object)
    r.fill(X_out, y_out)
    assert X_out.tobytes() == X_ref.tobytes()
    # the plans' rows, gathered once in order: not the map itself
    assert not isinstance(sources[0], np.memmap) and len(sources[0]) < len(r.X)

