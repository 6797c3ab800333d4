"""Readers: the command line's input formats, and memory-mapped arrays read lightly.

Memory-mapped input
-------------------
Every page of a memory map that has been read stays in the process's resident
set (RSS) until the map is closed, so reading a 10 GB ``.npy`` opened with
``np.load(path, mmap_mode="r")`` from end to end leaves 10 GB resident, even
though the kernel could drop it at any time. The helpers below read a mapped
array in chunks of rows and hand each chunk's pages back to the kernel
(``madvise(MADV_DONTNEED)``) once it has been used, so the resident set stays
a few chunks whatever the input size. They do nothing to arrays held in memory.

Pages are handed back only for shared maps (``np.memmap`` modes ``"r"``,
``"r+"``, ``"w+"``): the data stay in the file and the page cache, and the next
read faults them in again. A copy-on-write map (mode ``"c"``) is never touched,
since dropping its pages would drop the caller's in-memory changes.

File formats
------------
`read_input` reads ``.npy`` (memory-mapped), ``.npz``, ``.csv`` and
``.parquet`` into ``(X, y, feature_names, target_name)``. Only ``.npy`` is
memory-mapped; the others are read into memory (pandas / pyarrow).
"""

# License: BSD-3-Clause

import mmap
import os
from pathlib import Path

import numpy as np
from numpy.lib.array_utils import byte_bounds
from sklearn.utils import assert_all_finite

#: Rows read between two hand-backs of pages to the kernel.
CHUNK_ROWS = 65536

_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)
_SHARED_MODES = frozenset({"r", "r+", "w+"})

IO_EXTRA_HINT = 'pip install "smote_ann[io]"'


def _shared_map(X):
    """The ``mmap.mmap`` behind X if X views a shared ``np.memmap``, else None."""
    obj = X
    while isinstance(obj, np.ndarray):
        if isinstance(obj, np.memmap):
            mm = getattr(obj, "_mmap", None)
            if isinstance(mm, mmap.mmap) and obj.mode in _SHARED_MODES:
                return mm
            return None
        obj = obj.base
    return None


def is_mapped(X):
    """Whether X is (a view of) a shared memory map whose pages can be released."""
    return _MADV_DONTNEED is not None and _shared_map(X) is not None


def release_pages(view):
    """Hand the pages under `view` back to the kernel if it views a shared map.

    The data are unchanged: a later read faults the pages in again from the
    page cache or the file. A no-op for arrays in memory.
    """
    if _MADV_DONTNEED is None or view.size == 0:
        return
    mm = _shared_map(view)
    if mm is None or mm.closed:
        return
    map_start = np.frombuffer(mm, dtype=np.uint8, count=0).ctypes.data
    low, high = byte_bounds(view)
    start = max(low - map_start, 0)
    start -= start % mmap.PAGESIZE
    stop = min(high - map_start, len(mm))
    if stop > start:
        mm.madvise(_MADV_DONTNEED, start, stop - start)


def take_rows(X, rows):
    """``X[rows]`` as a new C-contiguous array, reading a mapped X in windows.

    For an array in memory this is exactly ``X[rows]``. For a shared memory
    map, the rows are gathered window by window of `CHUNK_ROWS` rows of X,
    and the pages of each window are released once it has been read, so the
    map does not stay resident however the rows are spread.
    """
    if not is_mapped(X):
        return np.ascontiguousarray(X[rows])
    rows = np.asarray(rows, dtype=np.intp)
    rows = np.where(rows < 0, rows + X.shape[0], rows)
    order = None
    if np.any(rows[1:] < rows[:-1]):
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
    out = np.empty((rows.shape[0],) + X.shape[1:], dtype=X.dtype)
    windows = np.arange(0, X.shape[0] + CHUNK_ROWS, CHUNK_ROWS)
    ends = np.searchsorted(rows, windows)
    for w_start, start, stop in zip(windows[:-1], ends[:-1], ends[1:]):
        if stop > start:
            np.take(X, rows[start:stop], axis=0, out=out[start:stop])
            release_pages(X[w_start : w_start + CHUNK_ROWS])
    if order is not None:
        unsorted = np.empty_like(out)
        unsorted[order] = out
        out = unsorted
    return out


def check_finite(X, *, estimator_name):
    """scikit-learn's finiteness check (same messages), a chunk of rows at a time."""
    for start in range(0, X.shape[0], CHUNK_ROWS):
        chunk = X[start : start + CHUNK_ROWS]
        assert_all_finite(chunk, allow_nan=False, estimator_name=estimator_name, input_name="X")
        release_pages(chunk)


# --------------------------------------------------------------------------
# File formats of the command line


def _import_io(module, what):
    try:
        return __import__(module)
    except ImportError as exc:
        msg = (
            f"{what} need {module}, which is not installed. "
            f"Install the io extra: {IO_EXTRA_HINT}"
        )
        raise ImportError(msg) from exc


def import_pyarrow_parquet(what="Parquet files"):
    """``pyarrow.parquet``, or an ImportError naming the extra to install."""
    _import_io("pyarrow", what)
    import pyarrow.parquet as pq

    return pq


def _format_of(path, formats, role):
    suffix = Path(path).suffix.lower()
    if suffix not in formats:
        msg = (
            f"{role} {str(path)!r} has an unknown format {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(sorted(formats))}."
        )
        raise ValueError(msg)
    return formats[suffix]


def _check_exists(path, role):
    if not Path(path).is_file():
        what = "is a folder, not a file" if Path(path).is_dir() else "does not exist"
        msg = f"{role} {str(path)!r} {what}."
        raise FileNotFoundError(msg)


def _labels_from_file(labels, n_rows):
    _check_exists(labels, "Labels file")
    if Path(labels).suffix.lower() != ".npy":
        msg = f"Labels file {str(labels)!r} must be a .npy file holding a 1-D array."
        raise ValueError(msg)
    y = np.load(labels, allow_pickle=False)
    if y.ndim != 1:
        msg = f"Labels file {str(labels)!r} holds an array of shape {y.shape}; expected 1-D."
        raise ValueError(msg)
    if y.shape[0] != n_rows:
        msg = (
            f"Labels file {str(labels)!r} has {y.shape[0]} labels but the data have "
            f"{n_rows} rows. Give the labels of exactly these rows."
        )
        raise ValueError(msg)
    return y


def _target_column(columns, target, path):
    if target is None:
        msg = (
            f"Give the target column of {str(path)!r} with --target NAME "
            f"(columns: {_short(columns)})."
        )
        raise ValueError(msg)
    if target not in columns:
        msg = f"Target column {target!r} is not in {str(path)!r} (columns: {_short(columns)})."
        raise ValueError(msg)
    return [c for c in columns if c != target]


def _short(names, n=8):
    names = [str(c) for c in names]
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _labels_array(values):
    """Labels as a NumPy array with a fixed dtype (strings become ``<U``)."""
    y = np.asarray(values)
    if y.dtype == object and all(isinstance(v, str) for v in y.tolist()):
        y = y.astype(str)
    return y


def _read_npy(path, target, labels):
    if target is not None:
        msg = (
            "A .npy input holds no columns: give its labels with --labels FILE.npy, "
            f"not --target (for {str(path)!r})."
        )
        raise ValueError(msg)
    X = np.load(path, mmap_mode="r", allow_pickle=False)
    if X.ndim != 2:
        msg = (
            f"Input {str(path)!r} holds an array of shape {X.shape}; "
            "expected 2-D (n_samples, n_features)."
        )
        raise ValueError(msg)
    if labels is None:
        msg = f"A .npy input holds no labels: give them with --labels FILE.npy (for {str(path)!r})."
        raise ValueError(msg)
    return X, _labels_from_file(labels, X.shape[0]), None, "y"


def _read_npz(path, target, labels):
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if labels is not None:
            if len(names) != 1:
                msg = (
                    f"Input {str(path)!r} holds arrays {names}; with --labels it must "
                    "hold only the features. Otherwise name the labels array with --target."
                )
                raise ValueError(msg)
            X = archive[names[0]]
            y, target_name = _labels_from_file(labels, X.shape[0]), "y"
        else:
            features = _target_column(names, target, path)
            if len(features) != 1:
                msg = (
                    f"Input {str(path)!r} holds arrays {names}; besides the target "
                    f"{target!r} it must hold exactly one array, the features."
                )
                raise ValueError(msg)
            X, y, target_name = archive[features[0]], archive[target], target
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        msg = (
            f"Input {str(path)!r}: features of shape {X.shape} and labels of shape "
            f"{y.shape} do not match; expected (n_samples, n_features) and (n_samples,)."
        )
        raise ValueError(msg)
    return X, y, None, target_name


def _split_columns(columns, n_rows, matrix, column, target, labels, path):
    """``(X, y, feature_names, target_name)`` of a table.

    `matrix(names)` returns the named columns as one 2-D array, `column(name)`
    one column as a 1-D array.
    """
    if labels is not None:
        features, y, target_name = list(columns), _labels_from_file(labels, n_rows), "y"
    else:
        features = _target_column(list(columns), target, path)
        y, target_name = _labels_array(column(target)), str(target)
    return matrix(features), y, [str(c) for c in features], target_name


def _read_csv(path, target, labels):
    pd = _import_io("pandas", "CSV files")
    frame = pd.read_csv(path)
    return _split_columns(
        frame.columns, len(frame),
        lambda names: frame[names].to_numpy(),
        lambda name: frame[name].to_numpy(),
        target, labels, path,
    )


def _arrow_matrix(table, names):
    dtype = np.result_type(*(table.schema.field(n).type.to_pandas_dtype() for n in names))
    X = np.empty((table.num_rows, len(names)), dtype=dtype)
    for j, name in enumerate(names):
        X[:, j] = table.column(name).to_numpy()
    return X


def _read_parquet(path, target, labels):
    pq = import_pyarrow_parquet("Parquet files")
    table = pq.read_table(path)
    return _split_columns(
        table.column_names, table.num_rows,
        lambda names: _arrow_matrix(table, names),
        lambda name: table.column(name).to_numpy(),
        target, labels, path,
    )


READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}


def read_input(path, *, target=None, labels=None):
    """Read a dataset file into ``(X, y, feature_names, target_name)``.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (features, memory-mapped; labels from `labels`), ``.npz``
        (two arrays: the features and the one named `target`), ``.csv`` or
        ``.parquet`` (a table; the labels are the column `target`).
    target : str, default=None
        The label column (CSV, Parquet) or array (``.npz``).
    labels : str or path-like, default=None
        A ``.npy`` file of labels, one per row, instead of `target`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    feature_names : list of str or None
    target_name : str
    """
    reader = _format_of(path, READERS, "Input")
    _check_exists(path, "Input")
    if target is not None and labels is not None:
        msg = (
            "Give the labels either as a target column (--target) or as a file "
            "(--labels), not both."
        )
        raise ValueError(msg)
    return reader(os.fspath(path), target, labels)
