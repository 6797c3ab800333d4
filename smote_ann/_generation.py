"""The generation engine: sampling plans, random draws and chunked interpolation.

Arrays in, arrays out: this module knows neither FAISS nor estimators nor file
formats. A policy (SMOTE, Borderline-SMOTE, ADASYN) describes each class to
oversample as a `ClassPlan`; the engine turns the plans into synthetic rows.

Determinism
-----------
The random numbers behind synthetic row ``r`` of a class are drawn from a
block of `BLOCK_SIZE` rows whose generator is keyed by ``(entropy, class_key,
r // BLOCK_SIZE)``. They are therefore a function of the seed and the row's
position only, never of ``n_jobs``, ``chunk_size`` or the joblib backend.
Draws are made in the calling process; workers only gather rows and do
arithmetic on what they are handed, which is elementwise and so bit-identical
wherever it runs.
"""

# License: BSD-3-Clause

from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from ._readers import release_pages, take_rows

#: Rows per random block. Part of the definition of the output: changing it
#: changes what a given ``random_state`` produces.
BLOCK_SIZE = 4096

#: Borderline-SMOTE-2 shortens steps toward other classes by a further U[0, 0.5).
FOREIGN_STEP_MAX = 0.5


@dataclass(frozen=True, eq=False)
class ClassPlan:
    """What a policy decided for one class.

    Parameters
    ----------
    label : object
        The class label of the synthetic rows.
    class_key : int
        Position of the class among all classes; keys its random stream.
    n_samples : int
        Number of synthetic rows to generate.
    bases : ndarray of shape (n_bases,), dtype=intp
        Rows of the source array that may serve as base samples.
    partners : ndarray of shape (n_bases, k), dtype=intp
        For each base, the rows of the source array it may step toward.
    base_counts : ndarray of shape (n_bases,) or None
        If given (ADASYN), the number of synthetic rows each base gets, in
        order, summing to `n_samples`; only the partner is drawn. If None
        (SMOTE), each row draws its (base, partner) pair uniformly.
    foreign : ndarray of shape (n_bases, k), dtype=bool, or None
        Partners of another class (Borderline-SMOTE-2): the step toward them
        is further multiplied by U[0, FOREIGN_STEP_MAX).
    """

    label: object
    class_key: int
    n_samples: int
    bases: np.ndarray
    partners: np.ndarray
    base_counts: np.ndarray | None = None
    foreign: np.ndarray | None = None
    _base_ends: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.base_counts is not None:
            object.__setattr__(self, "_base_ends", np.cumsum(self.base_counts))

    def replace_rows(self, bases, partners):
        """The same plan on another row numbering (see `compact`)."""
        return ClassPlan(
            self.label, self.class_key, self.n_samples, bases, partners,
            self.base_counts, self.foreign,
        )


def entropy_from(random_state):
    """128 bits of seed material drawn once per call from a RandomState."""
    return [int(v) for v in random_state.randint(0, 2**32, size=4, dtype=np.uint64)]


def _draw_block(plan, entropy, block):
    """Draws for rows ``[block * BLOCK_SIZE, ...)`` of `plan`.

    Returns ``(pair, step)``: ``pair = base_position * k + partner_column``
    indexes the flattened partner table, and ``step`` the interpolation step.
    """
    start = block * BLOCK_SIZE
    n = min(BLOCK_SIZE, plan.n_samples - start)
    seed = np.random.SeedSequence(entropy, spawn_key=(plan.class_key, block))
    rng = np.random.Generator(np.random.PCG64(seed))
    n_bases, k = plan.partners.shape
    if plan.base_counts is None:
        pair = rng.integers(0, n_bases * k, size=n)
    else:
        base_pos = np.searchsorted(plan._base_ends, np.arange(start, start + n), side="right")
        pair = base_pos * k + rng.integers(0, k, size=n)
    step = rng.random(n)
    if plan.foreign is not None:
        shrink = rng.random(n) * FOREIGN_STEP_MAX
        step = np.where(np.take(plan.foreign, pair), step * shrink, step)
    return pair, step


def draw(plan, entropy, start, stop, cache=None):
    """Base rows, partner rows and steps of synthetic rows ``start:stop`` of `plan`.

    `cache`, a dict kept by the caller across consecutive chunks of one plan,
    holds the last block drawn, so that chunks smaller than a block do not
    draw it again (the draws, and so the output, are the same either way).
    """
    first, last = start // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE
    blocks = []
    for b in range(first, last + 1):
        key, block = cache.get("last", (None, None)) if cache is not None else (None, None)
        if key != (id(plan), b):
            block = _draw_block(plan, entropy, b)
            if cache is not None:
                cache["last"] = ((id(plan), b), block)  # one assignment: atomic
        blocks.append(block)
    offset = start - first * BLOCK_SIZE
    if len(blocks) == 1:
        pair, step = blocks[0]
    else:
        pair, step = (np.concatenate(parts) for parts in zip(*blocks))
    pair, step = pair[offset : offset + stop - start], step[offset : offset + stop - start]
    k = plan.partners.shape[1]
    # np.take on the flattened (C-ordered) table: faster than 2-D fancy indexing
    return np.take(plan.bases, pair // k), np.take(plan.partners, pair), step


def interpolate(X, base_rows, partner_rows, step):
    """``X[base] + step * (X[partner] - X[base])`` in X's dtype."""
    out = np.take(X, base_rows, axis=0)  # np.take gathers rows faster than X[rows]
    diff = np.take(X, partner_rows, axis=0)
    diff -= out
    diff *= step.astype(X.dtype, copy=False)[:, np.newaxis]
    out += diff
    return out


def compact(X, plans):
    """Gather the rows the plans use into one array and renumber the plans.

    Returns ``(X_src, plans)`` where ``X_src`` holds only the base and partner
    rows (in their original order) as a C-contiguous array: what workers need,
    read once and sequentially from X (which may be a memory map).
    """
    used = np.unique(np.concatenate([np.r_[p.bases, p.partners.ravel()] for p in plans]))
    X_src = take_rows(X, used)

    def renumber(rows):
        return np.searchsorted(used, rows).astype(np.intp)

    return X_src, [p.replace_rows(renumber(p.bases), renumber(p.partners)) for p in plans]


def _tasks(plans, chunk_size):
    for plan in plans:
        for start in range(0, plan.n_samples, chunk_size):
            yield plan, start, min(start + chunk_size, plan.n_samples)


def iter_synthetic(X_src, plans, entropy, *, chunk_size, n_jobs):
    """Yield ``(plan, X_chunk)`` for every chunk of synthetic rows, in order.

    Tasks go to the workers in windows of ``2 * n_workers`` chunks, the next
    window once the caller has taken the previous one: joblib dispatches a new
    task whenever one completes, not when its result is consumed, so without
    windows a slow consumer (a disk) would let finished chunks pile up. Memory
    is bounded by a few ``chunk_size`` rows whatever the total.
    """
    tasks = list(_tasks(plans, chunk_size))
    window = 2 * max(effective_n_jobs(n_jobs), 1)
    try:
        parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
    except ValueError:  # a backend without generators (multiprocessing): lists
        parallel = Parallel(n_jobs=n_jobs, prefer="threads")
    cache = {}  # the last random block drawn (chunks smaller than a block share it)
    with parallel:
        for first in range(0, len(tasks), window):
            part = tasks[first : first + window]
            results = parallel(
                delayed(interpolate)(X_src, *draw(plan, entropy, start, stop, cache))
                for plan, start, stop in part
            )
            for position, X_chunk in enumerate(results):  # to the end, or joblib stays busy
                yield part[position][0], X_chunk


def _read_only(rows):
    """A read-only view of the caller's rows: a consumer cannot write into X or y."""
    view = np.asarray(rows).view()
    view.flags.writeable = False
    return view


def iter_resampled(X, y, plans, X_src, entropy, *, chunk_size, n_jobs):
    """Yield ``(X_chunk, y_chunk)``: the originals in order, then the synthetic rows.

    Synthetic rows come class by class in the order of `plans`.
    """
    for start in range(0, X.shape[0], chunk_size):
        stop = min(start + chunk_size, X.shape[0])
        yield _read_only(X[start:stop]), _read_only(y[start:stop])
        release_pages(X[start:stop])  # a memory-mapped X does not stay resident
    synthetic = iter_synthetic(X_src, plans, entropy, chunk_size=chunk_size, n_jobs=n_jobs)
    for plan, X_chunk in synthetic:
        yield X_chunk, np.full(X_chunk.shape[0], plan.label, dtype=y.dtype)
