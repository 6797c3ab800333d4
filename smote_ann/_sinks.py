"""Sinks: where the resampled ``(X_chunk, y_chunk)`` blocks go.

A sink knows formats and how to write, never sampling: the in-memory arrays
of ``fit_resample`` (`to_arrays`), and files written chunk by chunk under a
temporary name that is renamed at the end (`open_sink`, `write_blocks`).
"""

# License: BSD-3-Clause

import errno
import io
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._readers import _format_of
from ._tempfiles import owned_name, remove_stale


def to_arrays(resampling):
    """The whole `Resampling` in arrays preallocated once (no concatenation)."""
    r = resampling
    X_out = np.empty((r.n_rows, r.n_features), dtype=r.dtype)
    y_out = np.empty(r.n_rows, dtype=r.y_dtype)
    r.fill(X_out, y_out)
    return X_out, y_out


# --------------------------------------------------------------------------
# File sinks: written under a temporary name, renamed at the end.


def _open_temp(path):
    """Create `path` for writing, failing if it exists (the tests patch this)."""
    return open(path, "xb")


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder; the rename is still done
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _owned_name(path, suffix):
    return owned_name(path.parent, path.name, suffix)


def remove_stale_files(path):
    """Remove the ``.part`` files a killed run left for the output `path` (see `_tempfiles`)."""
    path = Path(path)
    return remove_stale(path.parent, path.name, "part")


class _TempFile:
    """A file written as ``.NAME.HOST-PID-RANDOM.part`` beside its final name.

    `sync` flushes and fsyncs it; `discard` closes and removes it (`commit`
    puts a set of them in place). The temporary file is created with the
    usual permissions (``0o666`` less the umask), as the final file would be.
    """

    def __init__(self, path):
        self.path = Path(path)
        folder = self.path.parent
        self.tmp = _owned_name(self.path, "part")
        try:
            self.file = _open_temp(self.tmp)
        except PermissionError as exc:
            msg = (
                f"Cannot write to the output folder {str(folder)!r}: permission denied. "
                "Choose a folder you can write to."
            )
            raise PermissionError(exc.errno, msg) from exc
        except OSError as exc:
            if exc.errno == errno.EROFS:
                msg = f"Cannot write to the output folder {str(folder)!r}: read-only file system."
                raise PermissionError(exc.errno, msg) from exc
            raise

    def sync(self):
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()

    def discard(self):
        try:
            self.file.close()
        except OSError:  # closing flushes, which can fail again on a full disk
            pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


# errno values of file systems without hard links
_NO_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, getattr(errno, "ENOTSUP", -1),
             getattr(errno, "EOPNOTSUPP", -1), getattr(errno, "ENOSYS", -1)}


def _place(tmp, final):
    """Give the file `tmp` the name `final`, failing if `final` exists.

    A hard link then unlink: atomic, and it never replaces a file that
    appeared under `final` meanwhile (another job writing the same output).
    Where the file system has no hard links, a rename after a check.
    """
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise _exists_error(final) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(final):
            raise _exists_error(final) from None
        os.rename(tmp, final)  # on Windows, rename itself refuses to replace
        return
    os.unlink(tmp)


def _exists_error(final):
    msg = (
        f"Output {str(final)!r} appeared while the data was being written (another job "
        "writing the same file?). It was kept; nothing of this run was left under that "
        "name. Write to another name, or pass overwrite=True (--overwrite) to replace it."
    )
    return FileExistsError(errno.EEXIST, msg)


def commit(files, overwrite):
    """Put the synced temporary `files` under their final names, all or none.

    With `overwrite`, each previous file is first renamed to a backup
    (``.NAME.HOST-PID-RANDOM.old``); on any failure the new files are removed
    and the backups renamed back, so the final names hold either every new
    file or every previous one, never a mix and never neither. Without
    `overwrite`, a file that appeared under a final name is kept and
    FileExistsError is raised.
    """
    placed, backups = [], []
    try:
        for f in files:
            if overwrite and os.path.lexists(f.path):
                backup = _owned_name(f.path, "old")
                os.rename(f.path, backup)
                backups.append((backup, f.path))
            _place(f.tmp, f.path)
            placed.append(f.path)
    except BaseException:
        for final in placed:
            try:
                os.unlink(final)
            except OSError:
                pass
        lost = []
        for backup, final in reversed(backups):
            try:
                os.replace(backup, final)
            except OSError:
                lost.append(f"{str(final)!r} is kept as {str(backup)!r}")
        if lost:
            msg = (
                "The new output could not be put in place and a previous file could not be "
                f"restored: {'; '.join(lost)}. Rename it back by hand."
            )
            raise OSError(msg) from None
        raise
    for backup, _ in backups:
        try:
            os.unlink(backup)
        except OSError:
            pass


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while output was being written."""

    def __init__(self, signum):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


_TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


@contextmanager
def clean_termination():
    """Let SIGTERM and SIGHUP unwind the block (removing its temporary files)
    before the process ends as they would have ended it.

    Only in the main thread, and only for signals whose handler is the
    default one (a handler of yours is left alone). When such a signal
    arrives, `Terminated` is raised where the program is; once the block has
    cleaned up, the default action is restored and the signal sent again.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed = [sig for sig in _TERMINATING if signal.getsignal(sig) is signal.SIG_DFL]
    for sig in installed:
        signal.signal(sig, _raise_terminated)
    try:
        yield
    except Terminated as exc:
        for sig in installed:
            signal.signal(sig, signal.SIG_DFL)
        installed = []
        if exc.signum in _TERMINATING and signal.getsignal(exc.signum) is signal.SIG_DFL:
            os.kill(os.getpid(), exc.signum)
        raise
    finally:
        for sig in installed:
            signal.signal(sig, signal.SIG_DFL)


def _check_output_path(path, overwrite, role="Output"):
    path = Path(path)
    if path.is_dir():
        msg = f"{role} {str(path)!r} is a folder; give a file name."
        raise IsADirectoryError(msg)
    if path.exists() and not overwrite:
        msg = (
            f"{role} {str(path)!r} already exists. "
            "Pass overwrite=True (--overwrite) to replace it."
        )
        raise FileExistsError(msg)
    folder = path.parent
    if not folder.is_dir():
        msg = f"The output folder {str(folder)!r} does not exist. Create it first."
        raise FileNotFoundError(msg)
    return path


def labels_path_for(path):
    """The labels file beside an ``.npy`` output: ``OUT.npy`` -> ``OUT.labels.npy``."""
    path = Path(path)
    return path.with_name(path.name[: -len(path.suffix)] + ".labels" + path.suffix)


def _npy_header(shape, dtype):
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": tuple(int(n) for n in shape),
    }
    buffer = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buffer, header)
    except ValueError:  # header longer than 64 KiB
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def _write_array(file, array, dtype):
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.dtype.kind in "mM":  # datetimes: the buffer protocol has no such type
        array = array.view(np.int64)
    file.write(array.data.cast("B"))


class NpySink:
    """``X`` to an ``.npy`` file and ``y`` to another, a chunk at a time.

    The header is written first (the final shape is known before the first
    chunk), then the bytes of each chunk are appended: no memory map of the
    output, so written pages do not stay in the process's memory.
    """

    def __init__(self, path, labels_path):
        x_file = _TempFile(path)
        try:
            y_file = _TempFile(labels_path)
        except BaseException:
            x_file.discard()
            raise
        self.files = [x_file, y_file]

    def start(self, n_rows, n_features, dtype, y_dtype, feature_names, target_name):
        if np.dtype(y_dtype).hasobject:
            msg = (
                f"Labels of dtype {np.dtype(y_dtype)} (Python objects) cannot be written "
                "to a .npy file without pickling. Convert them (y.astype(str) or "
                "integer codes) or write Parquet instead."
            )
            raise TypeError(msg)
        self.dtype, self.y_dtype = np.dtype(dtype), np.dtype(y_dtype)
        x_file, y_file = (f.file for f in self.files)
        x_file.write(_npy_header((n_rows, n_features), self.dtype))
        y_file.write(_npy_header((n_rows,), self.y_dtype))

    def write(self, X_chunk, y_chunk):
        x_file, y_file = (f.file for f in self.files)
        _write_array(x_file, X_chunk, self.dtype)
        _write_array(y_file, y_chunk, self.y_dtype)

    def close(self):
        pass

    def abort(self):
        pass


class ParquetSink:
    """``X`` and ``y`` as the columns of one Parquet file, one row group per chunk."""

    def __init__(self, path, labels_path=None):
        from ._readers import import_pyarrow_parquet

        self.pq = import_pyarrow_parquet("Parquet files")
        if labels_path is not None:
            msg = "A Parquet output holds its labels as a column; labels_path must be None."
            raise ValueError(msg)
        self.files = [_TempFile(path)]
        self.writer = None

    def start(self, n_rows, n_features, dtype, y_dtype, feature_names, target_name):
        import pyarrow as pa

        if feature_names is None:
            feature_names = [f"x{j}" for j in range(n_features)]
        feature_names = [str(name) for name in feature_names]
        target_name = "y" if target_name is None else str(target_name)
        if target_name in feature_names:
            msg = (
                f"The target name {target_name!r} is also a feature name. "
                "Give another target_name."
            )
            raise ValueError(msg)
        self.dtype = np.dtype(dtype)
        self.pa = pa
        self.fields = [(name, pa.from_numpy_dtype(self.dtype)) for name in feature_names]
        self.target_name, self.y_dtype = target_name, np.dtype(y_dtype)

    def _open_writer(self, y_type):
        schema = self.pa.schema(self.fields + [(self.target_name, y_type)])
        self.schema = schema
        self.writer = self.pq.ParquetWriter(self.files[0].file, schema)

    def _labels(self, y_chunk):
        """The labels as an Arrow array; object labels (strings from pandas) typed by value."""
        y_chunk = np.asarray(y_chunk)
        y_type = None if self.writer is None else self.schema.field(self.target_name).type
        try:
            return self.pa.array(y_chunk, type=y_type)
        except (self.pa.ArrowInvalid, self.pa.ArrowTypeError, TypeError) as exc:
            msg = (
                f"The labels cannot be written to Parquet as one column type ({exc}). "
                "Give labels of one type (all strings or all numbers)."
            )
            raise TypeError(msg) from None

    def write(self, X_chunk, y_chunk):
        columns = np.ascontiguousarray(np.asarray(X_chunk, dtype=self.dtype).T)
        labels = self._labels(y_chunk)
        if self.writer is None:
            self._open_writer(labels.type)
        arrays = [self.pa.array(column) for column in columns] + [labels]
        table = self.pa.Table.from_arrays(arrays, schema=self.schema)
        self.writer.write_table(table, row_group_size=max(len(table), 1))

    def close(self):
        if not hasattr(self, "fields"):  # never started
            return
        if self.writer is None:  # no rows: the label type from the dtype alone
            y_type = (self.pa.string() if self.y_dtype.hasobject
                      else self.pa.from_numpy_dtype(self.y_dtype))
            self._open_writer(y_type)
        self.writer.close()
        self.writer = None

    def abort(self):
        writer, self.writer = self.writer, None
        if writer is not None:
            try:  # writes the footer; fails on a full disk, and the file goes anyway
                writer.close()
            except Exception:
                pass


SINKS = {".npy": NpySink, ".parquet": ParquetSink, ".pq": ParquetSink}


def check_output(path, *, labels_path=None, overwrite=False):
    """Check the output paths before any work: ``(sink_class, labels_path)``.

    Raises for an unknown format, an existing file (unless `overwrite`), a
    folder given as a file, or a missing folder.
    """
    sink_class = _format_of(path, SINKS, "Output")
    _check_output_path(path, overwrite)
    if sink_class is NpySink:
        labels_path = labels_path_for(path) if labels_path is None else Path(labels_path)
        if Path(labels_path).resolve() == Path(path).resolve():
            msg = f"labels_path={str(labels_path)!r} is the output path itself; give another file."
            raise ValueError(msg)
        _check_output_path(labels_path, overwrite, role="Labels output")
    return sink_class, labels_path


@contextmanager
def open_sink(path, *, labels_path=None, overwrite=False):
    """Open a file sink for `path` (its format from the suffix); commit on success.

    The output files are created at once under temporary names in their
    folder, so a missing, read-only or full folder fails before any work.
    On leaving the block normally, the files are flushed, fsynced and renamed
    to their final names together (see `commit`: the final names hold either
    every new file or every previous one). On any exception, ``KeyboardInterrupt``
    and SIGTERM / SIGHUP included (`clean_termination`), the temporary files
    are removed. Leftovers of a run killed outright are removed by the next
    run writing the same output (`remove_stale_files`).
    """
    if not isinstance(overwrite, bool):
        msg = f"overwrite must be True or False; got overwrite={overwrite!r}."
        raise TypeError(msg)
    sink_class, labels_path = check_output(path, labels_path=labels_path, overwrite=overwrite)
    for final in (path, labels_path):
        if final is not None:
            remove_stale_files(final)
    with clean_termination():
        sink = sink_class(path, labels_path)
        try:
            yield sink
            sink.close()
            for f in sink.files:
                f.sync()
            commit(list(reversed(sink.files)), overwrite)  # the labels file first
        except BaseException:
            sink.abort()
            for f in sink.files:
                f.discard()
            raise
        for folder in {f.path.parent for f in sink.files}:
            _fsync_folder(folder)


def write_blocks(sink, resampling, *, feature_names=None, target_name=None, progress=None):
    """Write every block of a `Resampling` to an open sink.

    `progress`, if given, is called with the number of rows of each block.
    """
    r = resampling
    sink.start(r.n_rows, r.n_features, r.dtype, r.y_dtype, feature_names, target_name)
    n_written = 0
    for X_chunk, y_chunk in r.blocks():
        sink.write(X_chunk, y_chunk)
        n_written += X_chunk.shape[0]
        if progress is not None:
            progress(X_chunk.shape[0])
    if n_written != r.n_rows:  # a broken engine must not leave a truncated file
        msg = f"Wrote {n_written} rows instead of the {r.n_rows} announced."
        raise RuntimeError(msg)
