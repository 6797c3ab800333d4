"""Resampling datasets bigger than memory: to files, or as a stream of blocks."""

# License: BSD-3-Clause

from pathlib import Path

from ._sinks import open_sink, write_blocks
from ._validation import _pandas_type
from .over_sampling import BaseOverSampler

__all__ = ["iter_resample", "resample_to_file"]


def _check_sampler(sampler, caller):
    if not isinstance(sampler, BaseOverSampler):
        msg = (
            f"{caller} needs a smote_ann over-sampler (for instance smote_ann.SMOTE); "
            f"got {type(sampler).__name__}. Other samplers can be used through "
            "their own fit_resample."
        )
        raise TypeError(msg)


def iter_resample(sampler, X, y):
    """Resample `X`, `y` and return the result as a generator of blocks.

    The blocks hold the same rows, in the same order and with the same bytes,
    as ``sampler.fit_resample(X, y)`` with the same `random_state`: the
    original rows first, in their order, then the synthetic rows class by
    class. Only a few blocks exist at any time, so the result need not fit in
    memory; with a memory-mapped `X` (``np.load(path, mmap_mode="r")``) the
    input need not either.

    Parameters
    ----------
    sampler : BaseOverSampler
        A smote_ann over-sampler, for instance :class:`~smote_ann.SMOTE`. It
        is fitted (``sampling_strategy_``, ...) as by ``fit_resample``. Its
        `chunk_size` sets the number of rows per block.

    X : {array-like, memmap} of shape (n_samples, n_features)
        Data to resample. float32 stays float32; other numeric types become
        float64 (which needs a copy of X in memory).

    y : array-like of shape (n_samples,)
        Class labels.

    Returns
    -------
    blocks : generator of (X_chunk, y_chunk)
        ``X_chunk`` an ndarray of shape (n_rows, n_features), ``y_chunk`` of
        shape (n_rows,). Validation, the neighbour search and the sampling
        plan run when `iter_resample` is called, so bad input raises at once;
        the rows are produced as the generator is consumed. An original block
        may be a read-only view of a memory-mapped `X`; copy it to keep it.

    See Also
    --------
    resample_to_file : Write the same blocks to ``.npy`` or Parquet.

    Examples
    --------
    >>> from collections import Counter
    >>> from sklearn.datasets import make_classification
    >>> from smote_ann import SMOTE, iter_resample
    >>> X, y = make_classification(n_samples=1000, weights=[0.9], random_state=0)
    >>> counts = Counter()
    >>> for X_chunk, y_chunk in iter_resample(SMOTE(random_state=0, chunk_size=500), X, y):
    ...     counts.update(y_chunk.tolist())
    >>> sorted(counts.items())
    [(0, 898), (1, 898)]
    """
    _check_sampler(sampler, "iter_resample")
    resampling = sampler._resample(X, y)
    return resampling.blocks()


def resample_to_file(
    sampler,
    X,
    y,
    path,
    *,
    labels_path=None,
    feature_names=None,
    target_name=None,
    overwrite=False,
):
    """Resample `X`, `y` and write the result to a file, a chunk at a time.

    The file holds the same rows, in the same order and with the same bytes,
    as ``sampler.fit_resample(X, y)`` with the same `random_state`. Memory
    stays a few chunks of ``sampler.chunk_size`` rows beyond the neighbour
    index and the rows it is built on, whatever the output size; with a
    memory-mapped `X` (``np.load(path, mmap_mode="r")``) the input need not
    fit in memory either.

    The output is written under a temporary name in the folder of `path` and
    renamed when complete: if anything fails (a full disk, an error, Ctrl-C),
    no file is left under the final name and the temporary file is removed.

    Parameters
    ----------
    sampler : BaseOverSampler
        A smote_ann over-sampler, for instance :class:`~smote_ann.SMOTE`,
        fitted as by ``fit_resample``.

    X : {array-like, memmap} of shape (n_samples, n_features)
        Data to resample. float32 stays float32; other numeric types become
        float64 (which needs a copy of X in memory).

    y : array-like of shape (n_samples,)
        Class labels.

    path : str or path-like
        The output file; its suffix gives the format:

        - ``.npy``: the features as one 2-D array. The labels go to a second
          ``.npy`` file, `labels_path`, by default beside it with
          ``.labels`` before the suffix (``out.npy`` -> ``out.labels.npy``).
          Read them back with ``np.load(path, mmap_mode="r")``.
        - ``.parquet`` (or ``.pq``; needs pyarrow: ``pip install
          "smote_ann[io]"``): one column per feature and the labels as the
          last column, one row group per chunk.

    labels_path : str or path-like, default=None
        Where an ``.npy`` output puts the labels (see `path`). Must be None
        for Parquet.

    feature_names : list of str, default=None
        Parquet column names of the features. None takes the column names of
        a DataFrame `X`, else ``x0, x1, ...``. Ignored for ``.npy``.

    target_name : str, default=None
        Parquet column name of the labels. None takes the name of a Series
        `y`, else ``"y"``. Ignored for ``.npy``.

    overwrite : bool, default=False
        Replace existing output files. If False, an existing file raises
        ``FileExistsError`` before any work is done.

    Returns
    -------
    path : pathlib.Path
        The file written (for ``.npy``, the labels are at `labels_path`).

    See Also
    --------
    iter_resample : The same blocks as a generator, to write elsewhere.

    Notes
    -----
    Working memory: each original chunk is read from `X` and written out,
    and the pages of a memory-mapped `X` are handed back to the kernel once
    read, so they do not accumulate in the process's resident memory.
    The ``.npy`` file is written by appending bytes after its header, not
    through a memory map of the output (whose written pages would stay
    resident).

    Examples
    --------
    >>> import numpy as np
    >>> from collections import Counter
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> from sklearn.datasets import make_classification
    >>> from smote_ann import SMOTE, resample_to_file
    >>> X, y = make_classification(n_samples=1000, weights=[0.9], random_state=0)
    >>> with TemporaryDirectory() as folder:
    ...     out = resample_to_file(SMOTE(random_state=0), X, y, Path(folder) / "res.npy")
    ...     X_res = np.load(out, mmap_mode="r")
    ...     y_res = np.load(Path(folder) / "res.labels.npy")
    ...     print(X_res.shape, sorted(Counter(y_res.tolist()).items()))
    (1796, 20) [(0, 898), (1, 898)]
    """
    _resample_to_file(
        sampler, X, y, path,
        labels_path=labels_path, feature_names=feature_names,
        target_name=target_name, overwrite=overwrite,
    )
    return Path(path)


def _resample_to_file(
    sampler, X, y, path, *, labels_path=None, feature_names=None, target_name=None,
    overwrite=False, progress=None,
):
    """`resample_to_file`, with `progress(n_rows)` returning a per-block callback.

    Returns the `Resampling` written (its plans say how many rows each class got).
    """
    _check_sampler(sampler, "resample_to_file")
    if target_name is None and _pandas_type(y, "Series") and y.name is not None:
        target_name = y.name
    with open_sink(path, labels_path=labels_path, overwrite=overwrite) as sink:
        resampling = sampler._resample(X, y)
        if feature_names is None:
            feature_names = getattr(sampler, "feature_names_in_", None)
        write_blocks(
            sink, resampling, feature_names=feature_names, target_name=target_name,
            progress=None if progress is None else progress(resampling.n_rows),
        )
    return resampling
