"""Neighbour graphs of the fitted rows: queries of a fitted set against itself."""

# License: BSD-3-Clause

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from . import _faiss


def exclude_self(ind, dist=None, self_rows=None):
    """Drop each query's own index from its row of results (k+1 -> k columns).

    Query ``i`` is fitted point ``self_rows[i]`` (default ``i``). Where that
    index is not among the results (more duplicates than neighbours, or an
    approximate index that missed it), the last (farthest) column is dropped
    instead. Returns ``ind`` or ``(dist, ind)`` when `dist` is given.
    """
    n_queries, n_cols = ind.shape
    if self_rows is None:
        self_rows = np.arange(n_queries)
    keep = ind != np.asarray(self_rows)[:, np.newaxis]
    absent = keep.all(axis=1)
    keep[absent, -1] = False
    shape = (n_queries, n_cols - 1)
    if dist is None:
        return ind[keep].reshape(shape)
    return dist[keep].reshape(shape), ind[keep].reshape(shape)


# Tiles of the exact search: a block of rows of X (converted to float32 once)
# times a tile of queries, one float32 GEMM whose 4 MB result stays in cache
# for the passes that follow (3x faster than one GEMM per block of all queries).
# Tiles run on FAISS's number of threads, each GEMM on one BLAS thread:
# multi-threaded BLAS on GEMMs this small was 1.3-1.6 s instead of 0.16-0.18 s
# for 1000 queries x 100k rows on a loaded 2-core machine (and no faster when
# the machine was quiet).
_ROWS_PER_BLOCK = 4096
_QUERIES_PER_TILE = 256
# Columns of the first block sorted to start each query's bound on its k-th score.
_SEED_COLUMNS = 256
_BLAS = []  # the process's thread-pool controller, made once (its library scan takes ~30 ms)


def _single_threaded_blas():
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def exact_search(X, queries, n_neighbors, *, metric):
    """The `n_neighbors` nearest rows of X to each float32 row of `queries`, exactly.

    X (any 2-D array, sparse matrix or memory map) is read a block of rows
    at a time, converted to float32 and multiplied with tiles of queries
    through BLAS. Each query keeps a bound on its k-th best score; only the
    entries of a tile under the bound are merged into its results, so the
    selection costs little next to the GEMM. `queries` must be float32 and,
    for the cosine metric, unit-normalised. Returns ``(score, ind)`` best
    first: float32 squared L2 distances (cosine: ``-x.y`` of the normalised
    rows, which ranks as the cosine distance) and int64 indices into X.
    """
    m = _faiss.METRICS[metric]
    n_samples, n_features = X.shape
    n_queries = queries.shape[0]
    k = int(min(n_neighbors, n_samples))
    l2 = not m.normalize
    # L2: score = [-2q, 1] . [x, |x|^2] = |x - q|^2 - |q|^2, one GEMM with the
    # norms in an extra column (|q|^2, constant per query, is added at the
    # end); cosine on unit vectors: score = -q.x
    scaled = np.empty((n_queries, n_features + l2), dtype=np.float32)
    scaled[:, :n_features] = queries
    scaled[:, :n_features] *= -2.0 if l2 else -1.0
    if l2:
        scaled[:, -1] = 1.0
    best = np.full((n_queries, k), np.inf, dtype=np.float32)
    best_ind = np.full((n_queries, k), -1, dtype=np.int64)
    tiles = [slice(q0, q0 + _QUERIES_PER_TILE) for q0 in range(0, n_queries, _QUERIES_PER_TILE)]

    def search_tile(tile, block, start):
        score = scaled[tile] @ block.T
        if start == 0:  # a first bound: the k-th best among the first columns
            bound = np.sort(score[:, :max(k, _SEED_COLUMNS)], axis=1)[:, k - 1:k]
        else:
            bound = best[tile, k - 1:k]
        hits = np.flatnonzero(score <= bound)
        if hits.size:
            best[tile], best_ind[tile] = _merge(
                best[tile], best_ind[tile], score.ravel()[hits], hits, score.shape[1], start
            )

    n_threads = min(len(tiles), _faiss.max_threads())
    with _single_threaded_blas(), ThreadPoolExecutor(n_threads) as pool:
        for start in range(0, n_samples, _ROWS_PER_BLOCK):
            rows = slice(start, start + _ROWS_PER_BLOCK)
            block = _faiss.as_float32_rows(X, rows, m.normalize)
            if l2:
                block = np.hstack([block, np.einsum("ij,ij->i", block, block)[:, np.newaxis]])
            for done in pool.map(search_tile, tiles, [block] * len(tiles), [start] * len(tiles)):
                pass
    if l2:
        best += (queries.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)[:, np.newaxis]
    return best, best_ind


def _merge(best, best_ind, values, hits, width, offset):
    """Merge the entries `hits` (flat indices into a tile of `width` columns,
    ascending) with each query's current `best`; keep the k best per query.

    Each query's candidates go in one padded row, sorted in place: stable, so
    that equal scores keep the lower row index.
    """
    n_tile, k = best.shape
    q, col = np.divmod(hits, width)
    counts = np.bincount(q, minlength=n_tile)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = k + np.arange(hits.size) - starts[q]
    row_score = np.full((n_tile, k + counts.max()), np.inf, dtype=np.float32)
    row_ind = np.full(row_score.shape, -1, dtype=np.int64)
    row_score[:, :k], row_ind[:, :k] = best, best_ind
    row_score[q, slot], row_ind[q, slot] = values, col + offset
    order = np.argsort(row_score, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(row_score, order, axis=1), np.take_along_axis(row_ind, order, axis=1)
