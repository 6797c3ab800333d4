"""Neighbour graphs of the fitted rows: queries of a fitted set against itself."""

# License: BSD-3-Clause

import threading
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
# Column groups whose minima give each query a first bound on its k-th score.
_BOUND_GROUPS_PER_NEIGHBOR = 4
_BLAS = []  # the process's thread-pool controller, made once (its library scan takes ~30 ms)


def _single_threaded_blas():
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


_END = object()


def _for_each(func, items, n_threads):
    """``func(item)`` for every item, on `n_threads` threads, the caller's one.

    The calling thread works too: each new thread that calls BLAS gets its
    own OpenBLAS buffer (about 36 MB resident), and the caller has one
    already. Items are handed out one at a time, in order.
    """
    items = iter(items)
    n_threads = max(1, int(n_threads))
    if n_threads == 1:
        for item in items:
            func(item)
        return
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                item = next(items, _END)
            if item is _END:
                return
            func(item)

    with ThreadPoolExecutor(n_threads - 1) as helpers:
        running = [helpers.submit(work) for _ in range(n_threads - 1)]
        try:
            work()
        finally:
            for helper in running:
                helper.result()


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
    return _blocked_search(X, queries, n_neighbors, l2=not m.normalize, normalize=m.normalize)


def _blocked_search(X, queries, n_neighbors, *, l2, normalize):
    """`exact_search` on squared L2 distances (`l2`) or inner products, rows
    of X unit-normalised first when `normalize`."""
    n_samples, n_features = X.shape
    n_queries = queries.shape[0]
    k = int(min(n_neighbors, n_samples))
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
        if start == 0:  # a first bound: the k-th best of the minima of column groups
            bound = _kth_bound(score, k)
        else:
            bound = best[tile, k - 1:k]
        hits = np.flatnonzero(score <= bound)
        if hits.size:
            best[tile], best_ind[tile] = _merge(
                best[tile], best_ind[tile], score.ravel()[hits], hits, score.shape[1], start
            )

    n_threads = min(len(tiles), _faiss.max_threads())
    with _single_threaded_blas():
        for start in range(0, n_samples, _ROWS_PER_BLOCK):
            rows = slice(start, start + _ROWS_PER_BLOCK)
            block = _faiss.as_float32_rows(X, rows, normalize)
            if l2:
                block = np.hstack([block, np.einsum("ij,ij->i", block, block)[:, np.newaxis]])
            _for_each(lambda tile: search_tile(tile, block, start), tiles, n_threads)
    if l2:
        best += (queries.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)[:, np.newaxis]
    return best, best_ind


def _smallest_per_column(score, k):
    """The k smallest entries of each column of `score` (candidates x queries).

    Returns ``(values, rows)`` of shape (n_columns, k), ascending, equal
    values in row order; ``inf`` / ``-1`` where a column has fewer than k.
    A bound on each column's k-th value from the minima of 4 k groups of rows
    (one elementwise pass) leaves few entries to sort.
    """
    n_rows, n_cols = score.shape
    if n_rows > k:
        n_groups = min(n_rows, _BOUND_GROUPS_PER_NEIGHBOR * k)
        per_group = n_rows // n_groups
        minima = score[:per_group * n_groups].reshape(per_group, n_groups, n_cols).min(axis=0)
        bound = np.partition(minima, k - 1, axis=0)[k - 1]
        hits = np.flatnonzero(score <= bound)  # few: about k to 2 k per column
        if hits.size > _MAX_HITS_PER_NEIGHBOR * k * n_cols:
            hits = _first_smallest(score, k)  # values tied at the bound: duplicated rows
    else:
        hits = np.arange(score.size)
    row, col = np.divmod(hits, n_cols)
    order = np.argsort(col, kind="stable")
    return top_k_grouped(col[order], score.ravel()[hits[order]], row[order], n_cols, k)


# Entries under the first bound beyond which the exact selection of
# `_first_smallest` is cheaper than sorting them all (many equal values).
_MAX_HITS_PER_NEIGHBOR = 8


def _first_smallest(score, k):
    """Flat indices of each column's k smallest entries of `score`, equal
    values in row order: exactly k per column (n_rows > k).

    For columns with many equal values (a list full of copies of one row,
    whose distances to a query are all equal): the exact k-th value of each
    column, then the entries below it and its first ties, a block of rows at
    a time, instead of a sort of every tied entry.
    """
    n_rows, n_cols = score.shape
    kth = np.partition(score, k - 1, axis=0)[k - 1]
    below = score < kth
    hits = [np.flatnonzero(below)]
    need = k - below.sum(axis=0)  # entries equal to the k-th value to take, >= 1
    del below
    taken = np.zeros(n_cols, dtype=np.int64)
    for start in range(0, n_rows, _TIE_ROWS):
        tied = score[start:start + _TIE_ROWS] == kth
        count = np.cumsum(tied, axis=0) + taken
        hits.append(np.flatnonzero(tied & (count <= need)) + start * n_cols)
        taken = count[-1]
        if (taken >= need).all():
            break
    return np.sort(np.concatenate(hits))


_TIE_ROWS = 64


def _kth_bound(score, k):
    """An upper bound on each row's k-th smallest score, in one pass.

    The k-th smallest of the minima of ``4 k`` groups of columns: those
    minima are k distinct entries no larger than it. Rows of at most k
    entries get infinity (every entry is kept).
    """
    width = score.shape[1]
    if width <= k:
        return np.full((len(score), 1), np.inf, dtype=score.dtype)
    n_groups = min(width, _BOUND_GROUPS_PER_NEIGHBOR * k)
    edges = (np.arange(n_groups) * width) // n_groups
    minima = np.minimum.reduceat(score, edges, axis=1)
    return np.partition(minima, k - 1, axis=1)[:, k - 1:k]


def _merge(best, best_ind, values, hits, width, offset):
    """Merge the entries `hits` (flat indices into a tile of `width` columns,
    ascending) with each query's current `best`; keep the k best per query
    (equal scores: the lower row index first)."""
    q, col = np.divmod(hits, width)
    return top_k_grouped(q, values, col + offset, best.shape[0], best.shape[1],
                         best, best_ind)


_PAD = np.uint64(0xFFFFFFFFFFFFFFFF)
_SIGN = np.uint32(0x80000000)


def _keys(values, rows):
    """uint64 keys that sort as (float32 value, row): the value's bits made
    monotonic in the high word, the row (< 2**32) in the low word."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    ordered = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return (ordered.astype(np.uint64) << np.uint64(32)) | rows.astype(np.uint64)


def _from_keys(keys):
    pad = keys == _PAD
    ordered = (keys >> np.uint64(32)).astype(np.uint32)
    bits = np.where(ordered & _SIGN, ordered ^ _SIGN, ~ordered)
    values = np.where(pad, np.float32(np.inf), bits.view(np.float32))
    rows = np.where(pad, -1, (keys & np.uint64(0xFFFFFFFF)).astype(np.int64))
    return values, rows


def top_k_grouped(group, values, rows, n_groups, k, best=None, best_rows=None):
    """The k smallest (value, row) of each group, ascending (ties: lower row).

    `group` (ascending) says which group each candidate belongs to; `best`
    / `best_rows` (n_groups, k), if given, are merged in. One padded matrix
    of uint64 keys, sorted along its rows. Returns ``(values, rows)`` of
    shape (n_groups, k), ``inf`` / ``-1`` where a group has fewer.
    """
    counts = np.bincount(group, minlength=n_groups)
    lead = 0 if best is None else k
    width = max(k, lead + (int(counts.max()) if counts.size else 0))
    keys = np.full((n_groups, width), _PAD, dtype=np.uint64)
    if best is not None:
        known = best_rows >= 0
        keys[:, :k] = np.where(known, _keys(best, np.maximum(best_rows, 0)), _PAD)
    within = np.arange(group.size) - np.repeat(np.cumsum(counts) - counts, counts)
    keys[group, lead + within] = _keys(values, rows)
    keys.sort(axis=1)
    return _from_keys(keys[:, :k])


# IVF-Flat searches of many queries are grouped by inverted list: each list's
# vectors against all the queries that probe it, one float32 GEMM, instead of
# FAISS scanning the lists query by query (which runs at a few GFLOP/s).
# `_faiss.join_pays` says when that is worth it.
# Groups of more queries than this are cut in tiles (bounds the GEMM result).
_TILE_QUERIES = 2048


def ivf_flat_search(lists, queries, n_neighbors, *, home=None):
    """The `n_neighbors` best rows among the IVF lists each query probes.

    The same answer as FAISS's search of the IVF-Flat index `lists` comes
    from (an exact search of the ``nprobe`` lists nearest to each query, up
    to float32 round-off and the order of ties), computed list by list:

    1. each query's lists, nearest first, by an exact search of the centroids;
    2. each list against the queries it is the nearest list of: their best
       rows there, with a bound from column-group minima;
    3. each list against the queries that probe it further down: only
       scores under the query's k-th best so far are kept;
    4. those merged into each query's best.

    `queries` are float32 (unit-normalised for an inner-product index).
    `home`, if given, is a list near each query (the list of a fitted row):
    the probes are then searched among the centroids nearest to it (see
    `_probes`). Returns ``(score, ind)``: float32 squared L2 distances or inner products
    (as FAISS returns them) and int64 fitted rows, best first; queries whose
    probed lists hold fewer than `n_neighbors` rows have ``-1`` entries.
    """
    inner = lists.inner_product
    nlist = len(lists.ids)
    nprobe = min(lists.nprobe, nlist)
    k = int(n_neighbors)
    n_queries = len(queries)
    probes = _probes(lists, queries, nprobe, home)
    # scores are "smaller is better": |x|^2 - 2 q.x (|q|^2 is added at the end), or -q.x
    scaled = queries * np.float32(-1.0 if inner else -2.0)
    best = np.full((n_queries, k), np.inf, dtype=np.float32)
    best_ind = np.full((n_queries, k), -1, dtype=np.int64)
    first = _groups(probes[:, 0], nlist)
    further = _groups(probes[:, 1:].ravel(), nlist)

    def scores(lst, rows, by_query=False):  # (list rows, queries), or transposed
        if by_query:
            s = scaled[rows] @ lists.vectors[lst].T
            return s if inner else s.__iadd__(norms[lst])
        s = lists.vectors[lst] @ scaled[rows].T
        return s if inner else s.__iadd__(norms[lst][:, np.newaxis])

    def search_first(lst):
        ids = lists.ids[lst]
        if ids.size == 0:
            return
        for rows in _tiles(first[lst]):
            _set_best(scores(lst, rows), rows, ids, best, best_ind)

    def search_further(lst):
        ids = lists.ids[lst]
        for rows in _tiles(further[lst] // max(nprobe - 1, 1)) if ids.size else ():
            s = scores(lst, rows, by_query=True)
            _merge_under(s, rows, ids, best, best_ind, merging)

    merging = threading.Lock()
    n_threads = max(1, min(nlist, _faiss.max_threads()))
    norms = None if inner else [np.einsum("ij,ij->i", v, v) for v in lists.vectors]
    with _single_threaded_blas():
        _for_each(search_first, range(nlist), n_threads)
        # the further lists merge into each query's best as they come: the
        # k smallest (score, row) of all candidates, whatever the order
        _for_each(search_further, range(nlist), n_threads)
    if not inner:
        best += np.einsum("ij,ij->i", queries, queries)[:, np.newaxis]
    else:
        best *= -1.0
    return best, best_ind


_ULPS = 8 * float(np.finfo(np.float32).eps)
# Centroids nearest to a query's home list among which its probes are sought.
_CANDIDATE_LISTS = 128
# Home lists whose queries are searched together, against the union of their
# candidates: neighbouring lists share most of them, and one product for
# several lists saves the numpy calls of the others.
_HOMES_PER_GROUP = 8


def _probes(lists, queries, nprobe, home):
    """The `nprobe` lists nearest to each query, nearest first (exactly).

    Without `home`, an exact search of all centroids. With it, each query's
    lists are first sought among the `_CANDIDATE_LISTS` centroids nearest to
    its home centroid h: by the triangle inequality, no other centroid c is
    nearer than ``|c_h - c| - |q - c_h|``, so the answer is exact when that
    is at least the query's `nprobe`-th distance; the queries where it is not
    (rare on data whose lists are compact) search all centroids. The queries
    of a few neighbouring home lists are searched at once, against the union
    of their candidates (a superset of each one's: the same answer).
    """
    inner = lists.inner_product
    centroids = lists.centroids
    nlist = len(centroids)
    n_candidates = max(_CANDIDATE_LISTS, 4 * nprobe)
    if home is None or inner or n_candidates >= nlist:
        return _blocked_search(centroids, queries, nprobe, l2=not inner, normalize=False)[1]
    home = np.asarray(home)
    # each centroid's nearest centroids, and the distance beyond them
    near_score, near = _blocked_search(centroids, centroids, n_candidates + 1, l2=True,
                                       normalize=False)
    reach = np.sqrt(np.maximum(near_score[:, -1], 0.0))
    near = near[:, :-1]
    probes = np.empty((len(queries), nprobe), dtype=np.int64)
    exact = np.empty(len(queries), dtype=bool)
    norms = np.einsum("ij,ij->i", centroids, centroids)
    q_norms = np.einsum("ij,ij->i", queries, queries)
    slack_base = _ULPS * float(norms.max())

    def search_group(homes):
        cand = np.unique(near[homes])
        rows = np.concatenate([by_home[h] for h in homes])
        for rows in _tiles(rows):
            if nprobe == 1:  # (queries, candidates): a row-wise minimum, contiguous
                s = queries[rows] @ centroids[cand].T
                s *= -2.0
                s += norms[cand]
                pos = s.argmin(axis=1)[:, np.newaxis]
                top = np.take_along_axis(s, pos, axis=1)
            else:
                s = centroids[cand] @ queries[rows].T
                s *= -2.0
                s += norms[cand][:, np.newaxis]
                top, pos = _smallest_per_column(s, nprobe)
            probes[rows] = cand[pos]
            q_norm = q_norms[rows]
            h = home[rows]
            farthest = np.sqrt(np.maximum(top[:, -1] + q_norm, 0.0))
            own = np.sqrt(np.maximum(
                norms[h] - 2.0 * np.einsum("ij,ij->i", queries[rows], centroids[h]) + q_norm,
                0.0))
            # float32 round-off of the expanded squared distances
            slack = np.sqrt(_ULPS * q_norm + slack_base)
            exact[rows] = reach[h] - own >= farthest + 2 * slack

    by_home = _groups(home, nlist)
    groups = _neighbouring_groups(near, _HOMES_PER_GROUP)
    with _single_threaded_blas():
        _for_each(search_group, groups, min(len(groups), _faiss.max_threads()))
    redo = np.flatnonzero(~exact)
    if redo.size:
        probes[redo] = _blocked_search(centroids, queries[redo], nprobe, l2=True,
                                       normalize=False)[1]
    return probes


def nearest_centroids(centroids, queries):
    """The nearest of the float32 `centroids` to each float32 query (squared L2).

    Exact (as a search of every centroid, up to float32 round-off), with
    fewer distances: each query's nearest among about ``2 sqrt(nlist)``
    centroids spread over the set is its home, and its nearest centroid is
    sought among those nearest to that home, as `_probes` does (the triangle
    inequality says where that is enough). At 2000 centroids, about a fifth
    of the distances of a full search.
    """
    nlist = len(centroids)
    n_coarse = max(1, min(nlist, round(2 * np.sqrt(nlist))))
    coarse = np.unique(np.linspace(0, nlist - 1, n_coarse).round().astype(np.int64))
    scaled = centroids[coarse] * np.float32(-2.0)
    norms = np.einsum("ij,ij->i", centroids[coarse], centroids[coarse])
    home = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), _TILE_QUERIES * 8):
        part = slice(start, start + _TILE_QUERIES * 8)
        score = queries[part] @ scaled.T
        score += norms
        home[part] = coarse[score.argmin(axis=1)]
    lists = _faiss.FlatLists(centroids=centroids, ids=None, vectors=None,
                             inner_product=False, nprobe=1)
    return _probes(lists, queries, 1, home)[:, 0]


def _neighbouring_groups(near, size):
    """Lists grouped with their nearest unassigned neighbours, `size` at most.

    `near[h]` are the lists nearest to list h, nearest first. Every list is
    in exactly one group; a group is a list and the first unassigned lists
    among its nearest.
    """
    assigned = np.zeros(len(near), dtype=bool)
    groups = []
    for h in range(len(near)):
        if assigned[h]:
            continue
        mates = near[h][: 4 * size]
        group = np.r_[h, mates[~assigned[mates] & (mates != h)][: size - 1]]
        assigned[group] = True
        groups.append(group)
    return groups


def _set_best(score, rows, ids, best, best_ind):
    """Each query's best from its first list: the k smallest of each column of
    `score` (fitted rows `ids` x queries `rows`), before any other list."""
    top, pos = _smallest_per_column(score, best.shape[1])
    best[rows] = top
    best_ind[rows] = np.where(pos >= 0, ids[np.maximum(pos, 0)], -1)


def _merge_under(score, rows, ids, best, best_ind, lock):
    """Merge the entries of `score` (queries `rows` x fitted rows `ids`) that
    are no worse than each query's k-th best into its best, under `lock`.

    The k-th best only improves, so a stale read of it keeps more entries,
    never loses one that counts: the result is the k smallest (score, row)
    of all entries whatever the order in which threads merge.
    """
    k = best.shape[1]
    query, pos = np.divmod(np.flatnonzero(score <= best[rows, k - 1:k]), len(ids))
    if query.size == 0:
        return
    # `query` ascends: number its distinct values 0, 1, ... (the merge's groups)
    new = np.r_[True, query[1:] != query[:-1]]
    line = np.cumsum(new) - 1
    owners = rows[query[new]]
    with lock:
        best[owners], best_ind[owners] = top_k_grouped(
            line, score[query, pos], ids[pos], len(owners), k, best[owners], best_ind[owners])


def _groups(owner, n_groups):
    """For each group, the positions of `owner` that belong to it, ascending."""
    order = np.argsort(owner, kind="stable")
    limits = np.searchsorted(owner[order], np.arange(n_groups + 1))
    return [order[limits[g]:limits[g + 1]] for g in range(n_groups)]


def _tiles(rows):
    for start in range(0, len(rows), _TILE_QUERIES):
        yield rows[start:start + _TILE_QUERIES]


# --------------------------------------------------------------------------
# Exact search pruned by a partition of the rows
# --------------------------------------------------------------------------
# Rows assigned to their centroid at once when a partition is made.
_PARTITION_BLOCK = 1 << 16


class Partition:
    """Rows of a fitted set grouped around centroids, for exact pruned searches.

    `ids[c]` are the rows nearest to centroid c (ascending), `radii[c]` the
    largest distance from c to one of them. No row of list c is nearer to a
    query q than ``|q - c| - radii[c]`` (triangle inequality).
    """

    def __init__(self, vectors, centroids):
        self.centroids = centroids
        nlist = len(centroids)
        self.home = np.empty(len(vectors), dtype=np.int64)
        self.radii = np.zeros(nlist, dtype=np.float64)
        # a block of rows at a time: no copy of all the rows (a flat index may hold millions)
        for start in range(0, len(vectors), _PARTITION_BLOCK):
            block = vectors[start:start + _PARTITION_BLOCK]
            owner = _blocked_search(centroids, block, 1, l2=True, normalize=False)[1][:, 0]
            self.home[start:start + len(block)] = owner
            gap = block.astype(np.float64) - centroids[owner]
            np.maximum.at(self.radii, owner, np.sqrt(np.einsum("ij,ij->i", gap, gap)))
        self.ids = _groups(self.home, nlist)


# A batch is searched without pruning when more than this share of its
# (query, row) pairs would be scanned anyway (data of high intrinsic dimension).
_MAX_PRUNED_SHARE = 0.5


def pruned_exact_search(vectors, partition, queries, n_neighbors, *, home=None):
    """The exact `n_neighbors` nearest `vectors` (squared L2) of each float32 query.

    Each query first searches its home list (the list of its nearest
    centroid, or `home`), then only the lists whose triangle-inequality
    bound does not exclude a row nearer than its k-th best so far. The
    answer is that of `exact_search` (up to float32 round-off and the order
    of ties); on data where little can be pruned, `exact_search` runs instead.
    Returns ``(score, ind)`` as `exact_search` does.
    """
    centroids = partition.centroids
    nlist = len(centroids)
    k = int(min(n_neighbors, len(vectors)))
    n_queries = len(queries)
    if home is None:
        home = _blocked_search(centroids, queries, 1, l2=True, normalize=False)[1][:, 0]
    scaled = queries * np.float32(-2.0)
    q_norms = np.einsum("ij,ij->i", queries, queries)
    best = np.full((n_queries, k), np.inf, dtype=np.float32)
    best_ind = np.full((n_queries, k), -1, dtype=np.int64)
    by_home = _groups(np.asarray(home), nlist)
    c_norms = np.einsum("ij,ij->i", centroids, centroids)
    slack = 2 * np.sqrt(_ULPS * (q_norms.max(initial=0.0) + c_norms.max(initial=0.0)))
    n_threads = max(1, min(nlist, _faiss.max_threads()))
    merging = threading.Lock()
    needed = [[] for _ in range(nlist)]  # per list: the queries that must scan it

    def rows_of(lst):
        ids = partition.ids[lst]
        block = vectors[ids]
        return ids, block, np.einsum("ij,ij->i", block, block)

    def search_home(h):
        ids, block, norms = rows_of(h)
        for rows in _tiles(by_home[h]):
            if ids.size:
                s = block @ scaled[rows].T
                s += norms[:, np.newaxis]
                _set_best(s, rows, ids, best, best_ind)
            # the lists that may hold a row nearer than the k-th found here
            d = scaled[rows] @ centroids.T
            d += c_norms
            d += q_norms[rows][:, np.newaxis]
            kth = np.sqrt(np.maximum(best[rows, k - 1] + q_norms[rows], 0.0))
            reach = np.sqrt(np.maximum(d, 0.0)) - partition.radii
            query, lst = np.nonzero(reach <= (kth + slack)[:, np.newaxis])
            keep = lst != h
            with merging:
                for part_list, part_rows in _split_by(lst[keep], rows[query[keep]].astype(np.int32)):
                    needed[part_list].append(part_rows)

    def search_list(lst):
        if not needed[lst]:
            return
        ids, block, norms = rows_of(lst)
        for rows in _tiles(np.sort(np.concatenate(needed[lst]))):
            s = scaled[rows] @ block.T
            s += norms
            _merge_under(s, rows, ids, best, best_ind, merging)

    with _single_threaded_blas():
        _for_each(search_home, range(nlist), n_threads)
        sizes = np.array([len(ids) for ids in partition.ids])
        scanned = sum(sizes[lst] * sum(map(len, parts)) for lst, parts in enumerate(needed))
        if scanned > _MAX_PRUNED_SHARE * n_queries * len(vectors):
            return _blocked_search(vectors, queries, k, l2=True, normalize=False)
        _for_each(search_list, range(nlist), n_threads)
    best += q_norms[:, np.newaxis]
    return best, best_ind


def _split_by(keys, values):
    """``(key, values of that key)`` for each distinct key."""
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else []
    for a, b in zip(starts, list(starts[1:]) + [keys.size]):
        yield keys[a], values[a:b]


def direct_distances(queries, vectors, ind):
    """Squared L2 distances from each query to its rows `ind` of `vectors`,
    summed over the differences (no |x|^2 + |q|^2 - 2 x.q cancellation: an
    identical row is at distance 0). ``-1`` entries get infinity."""
    out = np.empty(ind.shape, dtype=np.float32)
    step = max(1, (1 << 18) // max(1, ind.shape[1] * queries.shape[1]))
    for start in range(0, len(ind), step):
        part = slice(start, start + step)
        rows = ind[part]
        diff = vectors[np.maximum(rows, 0)] - queries[part][:, np.newaxis, :]
        out[part] = np.einsum("qkd,qkd->qk", diff, diff)
        out[part][rows < 0] = np.inf
    return out
