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
`open_input` opens ``.npy``, ``.npz``, ``.csv`` and ``.parquet`` files as
``(X, y, feature_names, target_name)`` without reading the features into
memory: a ``.npy`` is memory-mapped; the others are read a chunk of rows at a
time into a temporary raw file (a *spill*, in a folder the caller chooses),
which is then memory-mapped and removed when the caller is done. Only the
labels are held in memory.
"""

# License: BSD-3-Clause

import mmap
import os
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.lib.array_utils import byte_bounds
from sklearn.utils import assert_all_finite

from ._tempfiles import owned_name, remove_stale

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


def _mapped_file(X):
    """The file behind a memory-mapped X (or a view of one), or None."""
    obj = X
    while isinstance(obj, np.ndarray):
        if isinstance(obj, np.memmap):
            return getattr(obj, "filename", None)
        obj = obj.base
    return None


def float_copy_of_map(X, dtype):
    """A float memory map of the mapped X, converted a window of rows at a time.

    For memory-mapped inputs that are not native float32 / float64 (integers,
    float16, another byte order): converting them whole would hold the whole
    converted array in memory. The copy is written beside X's file (or in the
    temporary folder if that is not writable) and unlinked once mapped where
    the system allows it, so nothing is left behind.
    """
    import atexit
    import tempfile

    source = _mapped_file(X)
    folder = os.path.dirname(source) if source else None
    if not folder or not os.access(folder, os.W_OK):
        folder = tempfile.gettempdir()
    spill = _Spill(folder, os.path.basename(source or "X"), dtype, X.shape[1])
    try:
        for start in range(0, X.shape[0], CHUNK_ROWS):
            window = X[start : start + CHUNK_ROWS]
            spill.append(window)
            release_pages(window)
        converted = spill.mapped()
    except BaseException:
        spill.remove()
        raise
    try:
        os.unlink(spill.path)  # the map keeps the data; the name goes now
    except OSError:  # Windows: an open file cannot be removed
        atexit.register(spill.remove)
    return converted


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
        if Path(path).is_dir():
            what = "is a folder, not a file"
        elif os.path.exists(path):  # a FIFO, a device, a socket
            what = "is not a regular file (a pipe or a device?); give a file on disk"
        else:
            what = "does not exist"
        msg = f"{role} {str(path)!r} {what}."
        raise FileNotFoundError(msg)


def _load_npy(path, role, mmap_mode=None):
    """``np.load`` of a ``.npy`` file, with the file's problems said in one line."""
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            msg = (f"{role} {str(path)!r} holds Python objects, which are not read (they "
                   "would run code). Save it with a numeric or string dtype.")
        elif mmap_mode is not None and "mmap length" in str(exc):
            msg = f"{role} {str(path)!r} is truncated: it is shorter than its header says."
        else:
            msg = f"{role} {str(path)!r} is not a valid .npy file ({exc})."
        raise ValueError(msg) from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        msg = f"{role} {str(path)!r} is not a valid .npy file ({exc})."
        raise ValueError(msg) from None
    return array


def _check_unique_columns(columns, path):
    seen, repeated = set(), []
    for name in columns:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        msg = (
            f"Input {str(path)!r} has repeated column names: {_short(repeated)}. "
            "Give every column its own name."
        )
        raise ValueError(msg)


def _labels_from_file(labels, n_rows):
    _check_exists(labels, "Labels file")
    if Path(labels).suffix.lower() != ".npy":
        msg = f"Labels file {str(labels)!r} must be a .npy file holding a 1-D array."
        raise ValueError(msg)
    y = _load_npy(labels, "Labels file")
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


def _typed_labels(texts):
    """A label column read as text, typed once for the whole file.

    Integers if every label is one, else floats, else booleans (``True`` /
    ``False``), else strings; what pandas infers for a column, but for the
    whole column rather than each chunk of rows.
    """
    texts = np.asarray(texts, dtype=object)
    if any(not isinstance(v, str) for v in texts.tolist()):  # missing values
        msg = "The target column has missing labels. Fill them in or drop those rows."
        raise ValueError(msg)
    strings = texts.astype(str)
    for dtype in (np.int64, np.float64):
        try:
            return strings.astype(dtype)
        except (ValueError, OverflowError):
            pass
    if set(np.unique(strings).tolist()) <= {"True", "False"}:
        return strings == "True"
    return strings


def _read_npy(path, target, labels, spill_of):
    if target is not None:
        msg = (
            "A .npy input holds no columns: give its labels with --labels FILE.npy, "
            f"not --target (for {str(path)!r})."
        )
        raise ValueError(msg)
    X = _load_npy(path, "Input", mmap_mode="r")
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


class _Spill:
    """Rows of features appended to a raw file, then memory-mapped.

    Created as ``.NAME.HOST-PID-RANDOM.input.part`` in `folder` (the spills
    of killed runs for the same input are removed first); `remove` deletes it.
    """

    def __init__(self, folder, name, dtype, n_features):
        remove_stale(folder, name, "input.part")
        self.path = owned_name(folder, name, "input.part")
        self.dtype, self.n_features, self.n_rows = np.dtype(dtype), n_features, 0
        self.file = open(self.path, "xb")

    def append(self, rows):
        rows = np.ascontiguousarray(rows, dtype=self.dtype).reshape(-1, self.n_features)
        if rows.size:  # a memoryview of nothing cannot be cast to bytes
            self.file.write(memoryview(rows).cast("B"))
            self.n_rows += rows.shape[0]

    def mapped(self):
        """The rows written, as a read-only memory map (a plain array when empty)."""
        self.file.close()
        if self.n_rows == 0:  # mmap cannot map an empty file
            return np.empty((self.n_rows, self.n_features), dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.n_rows, self.n_features))

    def remove(self):
        self.file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _checked_pair(X, y, path):
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        msg = (
            f"Input {str(path)!r}: features of shape {X.shape} and labels of shape "
            f"{y.shape} do not match; expected (n_samples, n_features) and (n_samples,)."
        )
        raise ValueError(msg)


def _spill_npy_stream(stream, spill_of, path, member):
    """Copy a ``.npy`` stream (an archive member) into a spill, a chunk of rows at a time."""
    version = np.lib.format.read_magic(stream)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read_header is None:
        msg = f"Array {member!r} of {str(path)!r} has .npy format {version}; expected 1.0 or 2.0."
        raise ValueError(msg)
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        msg = f"Array {member!r} of {str(path)!r} holds Python objects; expected numbers."
        raise ValueError(msg)
    if len(shape) != 2:
        msg = (
            f"Array {member!r} of {str(path)!r} has shape {shape}; "
            "expected 2-D (n_samples, n_features)."
        )
        raise ValueError(msg)
    spill = spill_of(dtype, shape[1])
    if fortran_order:  # column-major: rows are not contiguous, read it whole
        data = stream.read(dtype.itemsize * shape[0] * shape[1])
        spill.append(np.frombuffer(data, dtype=dtype).reshape(shape, order="F"))
        return spill
    row_bytes = dtype.itemsize * shape[1]
    for start in range(0, shape[0], CHUNK_ROWS):
        n = min(CHUNK_ROWS, shape[0] - start)
        data = stream.read(n * row_bytes)
        if len(data) != n * row_bytes:
            msg = f"Array {member!r} of {str(path)!r} is truncated."
            raise ValueError(msg)
        spill.append(np.frombuffer(data, dtype=dtype))
    return spill


def _read_npz(path, target, labels, spill_of):
    try:
        return _read_npz_archive(path, target, labels, spill_of)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        msg = f"Input {str(path)!r} is not a valid .npz archive (damaged or truncated: {exc})."
        raise ValueError(msg) from None


def _read_npz_archive(path, target, labels, spill_of):
    # np.load(path) leaks its file handle when the archive is damaged: open it here
    with open(path, "rb") as file, np.load(file, allow_pickle=False) as archive:
        names = list(archive.files)
        if labels is not None:
            if len(names) != 1:
                msg = (
                    f"Input {str(path)!r} holds arrays {names}; with --labels it must "
                    "hold only the features. Otherwise name the labels array with --target."
                )
                raise ValueError(msg)
            features, y, target_name = names[0], None, "y"
        else:
            others = _target_column(names, target, path)
            if len(others) != 1:
                msg = (
                    f"Input {str(path)!r} holds arrays {names}; besides the target "
                    f"{target!r} it must hold exactly one array, the features."
                )
                raise ValueError(msg)
            features, y, target_name = others[0], _npz_member(archive, target, path), target
    with zipfile.ZipFile(path) as archive:
        members = archive.namelist()
        member = f"{features}.npy" if f"{features}.npy" in members else features
        with archive.open(member) as stream:
            spill = _spill_npy_stream(stream, spill_of, path, features)
    X = spill.mapped()
    if y is None:
        y = _labels_from_file(labels, X.shape[0])
    _checked_pair(X, y, path)
    return X, y, None, target_name


def _npz_member(archive, name, path):
    try:
        return archive[name]
    except ValueError as exc:
        msg = f"Array {name!r} of {str(path)!r} cannot be read ({exc})."
        raise ValueError(msg) from None


def _not_numeric(name, path, dtype):
    msg = (
        f"Column {name!r} of {str(path)!r} is not numeric ({dtype}); features "
        "must be numbers. Encode it, or drop it from the file."
    )
    return ValueError(msg)


def _check_numeric(frame, path):
    import pandas as pd

    if len(frame) == 0:  # no values: pandas types the columns of an empty file as object
        return
    for name, dtype in frame.dtypes.items():
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise _not_numeric(name, path, dtype)


def _read_csv(path, target, labels, spill_of):
    pd = _import_io("pandas", "CSV files")
    import csv

    with open(path, newline="") as file:
        header = next(csv.reader(file), [])
    _check_unique_columns(header, path)  # pandas would rename a repeat "label" to "label.1"
    spill, label_chunks, features = None, [], None
    # the labels as text, typed once for the whole file (not chunk by chunk)
    text_target = {} if labels is not None or target not in header else {target: object}
    with pd.read_csv(path, chunksize=CHUNK_ROWS, dtype=text_target) as reader:
        for frame in reader:
            if features is None:
                features = list(frame.columns) if labels is not None else (
                    _target_column(list(frame.columns), target, path)
                )
                spill = spill_of(np.float64, len(features))  # a CSV has no dtypes
            _check_numeric(frame[features], path)
            spill.append(frame[features].to_numpy(dtype=np.float64))
            if labels is None:
                label_chunks.append(frame[target].to_numpy())
    X = spill.mapped()
    if labels is not None:
        y, target_name = _labels_from_file(labels, X.shape[0]), "y"
    else:
        y = _typed_labels(np.concatenate(label_chunks) if label_chunks else np.empty(0, object))
        target_name = str(target)
    return X, y, [str(c) for c in features], target_name


def _arrow_dtype(schema, names, path):
    import pyarrow as pa

    for name in names:
        field_type = schema.field(name).type
        if not (pa.types.is_integer(field_type) or pa.types.is_floating(field_type)
                or pa.types.is_boolean(field_type)):
            raise _not_numeric(name, path, field_type)
    return np.result_type(*(schema.field(n).type.to_pandas_dtype() for n in names))


def _read_parquet(path, target, labels, spill_of):
    pq = import_pyarrow_parquet("Parquet files")
    file = pq.ParquetFile(path, pre_buffer=False)
    columns = file.schema_arrow.names
    _check_unique_columns(columns, path)
    if labels is not None:
        features, target_name = list(columns), "y"
    else:
        features, target_name = _target_column(list(columns), target, path), str(target)
    spill = spill_of(_arrow_dtype(file.schema_arrow, features, path), len(features))
    # A row group at a time, one column at a time: pyarrow's record batches
    # would decode every column of the row group at once (about 4x the memory).
    for group in range(file.num_row_groups):
        block = np.empty((file.metadata.row_group(group).num_rows, len(features)), spill.dtype)
        for j, name in enumerate(features):
            column = file.read_row_group(group, columns=[name], use_threads=False).column(0)
            if column.null_count:
                msg = (
                    f"Column {name!r} of {str(path)!r} has missing values; features "
                    "must be numbers. Fill them in, or drop the rows or the column."
                )
                raise ValueError(msg)
            block[:, j] = column.to_numpy()
        spill.append(block)
    X = spill.mapped()
    if labels is not None:
        y = _labels_from_file(labels, X.shape[0])
    else:
        y = _labels_array(file.read(columns=[target]).column(target).to_numpy())
    return X, y, [str(c) for c in features], target_name


READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}


@contextmanager
def open_input(path, *, target=None, labels=None, spill_folder=None):
    """Open a dataset file as ``(X, y, feature_names, target_name)``.

    The features are memory-mapped: a ``.npy`` directly, the other formats
    through a spill file in `spill_folder`, written a chunk of rows at a time
    and removed when the ``with`` block ends. Only the labels are read into
    memory.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (features; labels from `labels`), ``.npz`` (two arrays: the
        features and the one named `target`), ``.csv`` or ``.parquet`` (a
        table; the labels are the column `target`, the other columns the
        features, which must be numeric).
    target : str, default=None
        The label column (CSV, Parquet) or array (``.npz``).
    labels : str or path-like, default=None
        A ``.npy`` file of labels, one per row, instead of `target`.
    spill_folder : str or path-like, default=None
        Where the spill goes (the folder of `path` if None); it needs room
        for the features in their dtype (float64 for a CSV).

    Yields
    ------
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
    path = os.fspath(path)
    folder = Path(path).parent if spill_folder is None else Path(spill_folder)
    spills = []

    def spill_of(dtype, n_features):
        if n_features == 0:
            msg = f"Input {path!r} has no feature columns besides the labels."
            raise ValueError(msg)
        spills.append(_Spill(folder, path, dtype, n_features))
        return spills[-1]

    try:
        yield reader(path, target, labels, spill_of)
    finally:
        for spill in spills:
            spill.remove()
