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
Draws are made in this process (by the caller, or by a worker thread); workers
elsewhere only gather rows and do arithmetic on what they are handed, which is
elementwise and so bit-identical wherever it runs.

Sinks
-----
A `Resampling` is consumed either as a stream of blocks (`Resampling.blocks`:
files, generators) or by filling preallocated arrays (`Resampling.fill`: the
in-memory result). When joblib's active backend shares this process's memory
(threads, the default), ``fill`` lets each worker write its chunk straight
into the output (`fill_synthetic`); with processes or a cluster the chunks
come back and are copied in. Both hold the same rows in the same order.
"""

# License: BSD-3-Clause

import sys
import threading
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from joblib.parallel import get_active_backend

from ._readers import is_mapped, release_pages, take_rows

#: Rows per random block. Part of the definition of the output: changing it
#: changes what a given ``random_state`` produces. It equals the default
#: ``chunk_size``, so that a default chunk draws exactly one block. 4096 made
#: four times as many short numpy calls, for which two threads wait on each
#: other's GIL: generation was 7 % slower with 1 thread and 15 % with 2.
BLOCK_SIZE = 16384

#: Bytes of rows interpolated at a time inside a chunk. Small enough for a
#: piece's partner rows to stay in the CPU's L2 cache between gather and
#: arithmetic (whole 2 MiB chunks were about 1.7x slower), large enough that
#: threads seldom wait for the GIL between numpy calls (128 KiB pieces did not
#: speed up with 2 threads; 512 KiB ones did, 1.7x). The result does not
#: depend on it.
PIECE_BYTES = 2**19

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
                cache["last"] = ((id(plan), b), block)
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


def interpolate(X, base_rows, partner_rows, step, out=None):
    """``X[base] + step * (X[partner] - X[base])`` in X's dtype, into `out` if given.

    Computed a piece of `PIECE_BYTES` at a time, so that each piece's partner
    rows are still in the CPU cache when they are combined. Every element is
    computed by the same operations whatever the piece size, so the result is
    too.
    """
    n_rows, n_features = len(base_rows), X.shape[1]
    if out is None:
        out = np.empty((n_rows, n_features), dtype=X.dtype)
    piece = max(1, PIECE_BYTES // max(1, n_features * X.itemsize))
    diff = np.empty((min(piece, n_rows), n_features), dtype=X.dtype)
    step = step.astype(X.dtype, copy=False)[:, np.newaxis]
    for start in range(0, n_rows, piece):
        stop = min(start + piece, n_rows)
        out_piece, diff_piece = out[start:stop], diff[: stop - start]
        # np.take gathers rows faster than X[rows]; with out=, mode="raise"
        # (the default) would gather into a temporary first. The rows come
        # from the plans, which hold valid row numbers only.
        np.take(X, base_rows[start:stop], axis=0, out=out_piece, mode="clip")
        np.take(X, partner_rows[start:stop], axis=0, out=diff_piece, mode="clip")
        diff_piece -= out_piece
        diff_piece *= step[start:stop]
        out_piece += diff_piece
    return out


def compact(X, plans):
    """Gather the rows the plans use into one array and renumber the plans.

    Returns ``(X_src, plans)`` where ``X_src`` holds only the base and partner
    rows (in their original order) as a C-contiguous array: what workers need,
    read once and sequentially from X (which may be a memory map).
    """
    pieces = [rows for p in plans for rows in (p.bases, p.partners.ravel())]
    # the inverse of np.unique is the renumbering (faster than searching `used`)
    used, inverse = np.unique(np.concatenate(pieces), return_inverse=True)
    inverse = inverse.astype(np.intp, copy=False).reshape(-1)
    ends = np.cumsum([len(rows) for rows in pieces])
    renumbered = np.split(inverse, ends[:-1])
    X_src = take_rows(X, used)
    return X_src, [
        p.replace_rows(renumbered[2 * i], renumbered[2 * i + 1].reshape(p.partners.shape))
        for i, p in enumerate(plans)
    ]


def _tasks(plans, chunk_size):
    """``(plan, start, stop, position)``: rows ``start:stop`` of `plan`, which
    begin at `position` among all the synthetic rows of `plans`."""
    position = 0
    for plan in plans:
        for start in range(0, plan.n_samples, chunk_size):
            yield plan, start, min(start + chunk_size, plan.n_samples), position + start
        position += plan.n_samples


def iter_synthetic(X_src, plans, entropy, *, chunk_size, n_jobs):
    """Yield ``(plan, X_chunk)`` for every chunk of synthetic rows, in order.

    Workers make at most ``2 * n_workers`` chunks ahead of the one the caller
    is taking, so a slow consumer (a disk) does not let finished chunks pile
    up: memory is bounded by a few ``chunk_size`` rows whatever the total.
    """
    tasks = list(_tasks(plans, chunk_size))
    n_workers = max(effective_n_jobs(n_jobs), 1)
    if n_workers > 1 and _shares_memory():
        yield from _iter_threads(X_src, tasks, entropy, n_workers)
    else:
        yield from _iter_windows(X_src, tasks, entropy, n_jobs, n_workers)


def _iter_windows(X_src, tasks, entropy, n_jobs, n_workers):
    """`iter_synthetic` through joblib's result retrieval (processes, a cluster).

    Tasks go to the workers in windows of ``2 * n_workers`` chunks, the next
    window once the caller has taken the previous one: joblib dispatches a new
    task whenever one completes, not when its result is consumed. The draws
    are made here, while dispatching.
    """
    window = 2 * n_workers
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
                for plan, start, stop, _ in part
            )
            for position, X_chunk in enumerate(results):  # to the end, or joblib stays busy
                yield part[position][0], X_chunk


def _iter_threads(X_src, tasks, entropy, n_workers):
    """`iter_synthetic` for thread backends: chunks handed over in order.

    `n_workers` joblib threads each loop, taking the next chunk while it is
    fewer than ``2 * n_workers`` ahead of the one the caller waits for,
    drawing and interpolating it, and handing it over under a condition. A
    chunk nobody has taken yet the caller makes itself, so it never waits on
    a worker that has not started. (Windows through joblib's retrieval made 2
    threads 3x slower than 1: every window ended in joblib's 10 ms poll.)

    If a worker fails, the others stop and its error is raised here. If the
    caller stops early, the workers stop after their current chunk, and their
    errors, if any, are not raised into the caller's ``close()``.
    """
    ahead = 2 * n_workers
    made = {}  # chunk index -> rows, not yet taken by the caller
    cond = threading.Condition()
    state = {"next": 0, "wanted": 0, "stop": False}

    def may_take():
        return (
            state["stop"] or state["next"] >= len(tasks)
            or state["next"] < state["wanted"] + ahead
        )

    def make(index, cache):
        plan, start, stop, _ = tasks[index]
        return interpolate(X_src, *draw(plan, entropy, start, stop, cache))

    def work():
        cache = {}  # this worker's last random block
        try:
            while True:
                with cond:
                    cond.wait_for(may_take)
                    if state["stop"] or state["next"] >= len(tasks):
                        return
                    index = state["next"]
                    state["next"] += 1
                X_chunk = make(index, cache)
                with cond:
                    made[index] = X_chunk
                    cond.notify_all()
        except BaseException:
            with cond:
                state["stop"] = True
                cond.notify_all()
            raise

    def stop():
        with cond:
            state["stop"] = True
            cond.notify_all()

    join = _start_threads(work, n_workers)
    own_cache = {}
    try:
        for index, (plan, *_) in enumerate(tasks):
            with cond:
                mine = index not in made and state["next"] == index and not state["stop"]
                if mine:  # no worker has taken it: make it here
                    state["next"] += 1
                else:
                    cond.wait_for(lambda: index in made or state["stop"])
                    if index not in made:  # a worker failed: its error is raised below
                        break
                    X_chunk = made.pop(index)
            if mine:
                X_chunk = make(index, own_cache)
            with cond:
                state["wanted"] = index + 1
                cond.notify_all()
            yield plan, X_chunk
    except BaseException:  # the caller closed the stream, or failed itself
        stop()
        join(raise_errors=False)
        raise
    stop()
    join()


def _start_threads(work, n_threads):
    """Run `work` in `n_threads` joblib threads; return ``join(raise_errors=True)``.

    ``join`` returns once every thread has ended, then raises the first error
    a thread raised. Errors are caught in the threads, so that joblib (which
    stops waiting at the first error it sees) waits for all of them: no
    thread is still writing when ``join`` returns. With no thread to start,
    or if joblib runs the tasks lazily in the caller (a sequential backend),
    ``work`` runs during ``join``, so callers must not rely on the threads
    for progress.
    """
    errors = []

    def run():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - raised again by join
            errors.append(exc)

    # A resolved count, not None (under a bare parallel_config(n_jobs=k),
    # joblib runs a sharedmem Parallel(n_jobs=None) lazily in the caller),
    # and at least 2: n_jobs=1 is joblib's sequential backend, lazy too.
    tasks = () if n_threads < 1 else Parallel(
        n_jobs=max(n_threads, 2), prefer="threads", require="sharedmem",
        return_as="generator_unordered",
    )(delayed(run)() for _ in range(n_threads))

    def join(raise_errors=True):
        if sys.is_finalizing():  # joblib's threads are frozen: waiting would hang
            return
        for _ in tasks:
            pass
        if errors and raise_errors:
            raise errors[0]

    return join


def _shares_memory():
    """Whether joblib's active backend runs tasks in this process (threads)."""
    backend, _ = get_active_backend(prefer="threads")
    return bool(getattr(backend, "supports_sharedmem", False))


def _block_runs(plans, chunk_size):
    """The tasks of `_tasks`, cut at random blocks and grouped by block.

    Yields, for each block of each plan, the list of ``(plan, start, stop,
    position)`` chunks (at most `chunk_size` rows) that cover it. A worker
    takes a whole run, so every block is drawn exactly once, however small
    the chunks and however many workers.
    """
    position = 0
    for plan in plans:
        for first in range(0, plan.n_samples, BLOCK_SIZE):
            end = min(first + BLOCK_SIZE, plan.n_samples)
            yield [
                (plan, start, min(start + chunk_size, end), position + start)
                for start in range(first, end, chunk_size)
            ]
        position += plan.n_samples


def fill_synthetic(X_src, plans, entropy, X_out, y_out, *, chunk_size, n_jobs):
    """Write the synthetic rows of `plans`, in order, into `X_out` and `y_out`.

    For backends that share this process's memory (threads). Each worker takes
    the next block's run of chunks (`_block_runs`), draws the block and writes
    the chunks in place: no chunk is copied, and a worker holds one block's
    draws, one chunk's row numbers and one piece of scratch.

    The calling thread is one of the workers; the others are joblib threads
    (`_start_threads`), each looping until the runs are exhausted. joblib thus
    dispatches ``n_workers - 1`` tasks in all and the caller never waits for a
    result while work remains: with a task per chunk, joblib's 10 ms polling
    for results and per-task dispatch left the workers idle (2 threads were
    no faster than 1). A worker that fails stops the others after their
    current run; its error is raised here once none is writing any more.
    """
    runs = _block_runs(plans, chunk_size)
    lock, failed = threading.Lock(), threading.Event()

    def work():
        cache = {}  # this worker's last random block
        try:
            while not failed.is_set():
                with lock:  # a generator cannot be advanced by two threads at once
                    run = next(runs, None)
                if run is None:
                    return
                for plan, start, stop, position in run:
                    rows = slice(position, position + stop - start)
                    interpolate(
                        X_src, *draw(plan, entropy, start, stop, cache), out=X_out[rows]
                    )
                    y_out[rows] = plan.label
        except BaseException:
            failed.set()  # the other workers stop after their current run
            raise

    join = _start_threads(work, max(effective_n_jobs(n_jobs), 1) - 1)
    try:
        work()  # sets `failed` if it raises
    except BaseException:
        join(raise_errors=False)  # the caller's error wins
        raise
    join()  # every worker has stopped writing; raises a worker's error


def _read_only(rows):
    """A read-only view of the caller's rows: a consumer cannot write into X or y."""
    view = np.asarray(rows).view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class Resampling:
    """A planned resampling, generated only when a sink consumes it.

    The output is the rows of `X` in their order, then the synthetic rows of
    `plans`, class by class in the order of the plans; `blocks` and `fill`
    give the same rows.

    Parameters
    ----------
    X, y : ndarray
        The validated input (X may be a memory map).
    plans : list of ClassPlan
        The plans, on the row numbers of `X`.
    entropy : list of int
        Seed material of the random blocks (`entropy_from`).
    chunk_size, n_jobs : int, int or None
        Rows per chunk and joblib workers.
    """

    X: np.ndarray
    y: np.ndarray
    plans: list
    entropy: list
    chunk_size: int
    n_jobs: int | None

    @property
    def n_rows(self):
        return self.X.shape[0] + sum(plan.n_samples for plan in self.plans)

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def y_dtype(self):
        return self.y.dtype

    def blocks(self):
        """Yield ``(X_chunk, y_chunk)``: the originals in order, then the synthetic rows."""
        X, y, chunk_size = self.X, self.y, self.chunk_size
        for start in range(0, X.shape[0], chunk_size):
            stop = min(start + chunk_size, X.shape[0])
            yield _read_only(X[start:stop]), _read_only(y[start:stop])
            release_pages(X[start:stop])  # a memory-mapped X does not stay resident
        synthetic = iter_synthetic(
            *self._compacted, self.entropy, chunk_size=chunk_size, n_jobs=self.n_jobs
        )
        for plan, X_chunk in synthetic:
            yield X_chunk, np.full(X_chunk.shape[0], plan.label, dtype=y.dtype)

    def fill(self, X_out, y_out):
        """Write the whole output into preallocated arrays of `n_rows` rows."""
        X, y, n = self.X, self.y, self.X.shape[0]
        for start in range(0, n, self.chunk_size):
            stop = min(start + self.chunk_size, n)
            X_out[start:stop], y_out[start:stop] = X[start:stop], y[start:stop]
            release_pages(X[start:stop])
        X_new, y_new = X_out[n:], y_out[n:]
        if not _shares_memory():  # processes, a cluster: their chunks are copied in
            position = 0
            for plan, X_chunk in iter_synthetic(
                *self._compacted, self.entropy, chunk_size=self.chunk_size, n_jobs=self.n_jobs
            ):
                rows = slice(position, position + X_chunk.shape[0])
                X_new[rows], y_new[rows] = X_chunk, plan.label
                position = rows.stop
            return
        # Threads gather straight from an X held in memory; a memory-mapped X
        # is read once, in order, into the compacted rows.
        X_src, plans = self._compacted if is_mapped(X) else (X, self.plans)
        fill_synthetic(
            X_src, plans, self.entropy, X_new, y_new,
            chunk_size=self.chunk_size, n_jobs=self.n_jobs,
        )

    @cached_property
    def _compacted(self):
        """``(X_src, plans)``: the rows the plans use, and the plans renumbered on them."""
        if not self.plans:
            return self.X[:0], []
        return compact(self.X, self.plans)
