"""Streaming resampling: files and generators hold what fit_resample returns.

The references are independent of the streaming code: ``np.save`` of the
``fit_resample`` result (the ``.npy`` files must be byte-identical to it), and
pyarrow reading the Parquet files back.
"""

import errno
import io
import os
import sys
from collections import Counter

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification

import smote_ann._sinks as sinks
from smote_ann import ADASYN, SMOTE, BorderlineSMOTE, iter_resample, resample_to_file
from smote_ann._readers import is_mapped, release_pages, take_rows

SAMPLERS = [
    pytest.param(lambda **kw: SMOTE(**kw), id="SMOTE"),
    pytest.param(lambda **kw: BorderlineSMOTE(**kw), id="BorderlineSMOTE"),
    pytest.param(lambda **kw: ADASYN(**kw), id="ADASYN"),
]


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=1500, n_features=6, n_informative=4, weights=[0.85, 0.1],
        n_classes=3, n_clusters_per_class=1, random_state=0,
    )
    return X.astype(np.float32), y


@pytest.fixture
def mapped(data, tmp_path):
    """X saved to .npy and opened as a read-only memory map, and y."""
    X, y = data
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r"), y


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("make", SAMPLERS)
def test_npy_output_is_np_save_of_fit_resample(make, mapped, tmp_path):
    X, y = mapped
    X_ref, y_ref = make(random_state=3, chunk_size=128).fit_resample(np.array(X), y)
    out = resample_to_file(make(random_state=3, chunk_size=100), X, y, tmp_path / "out.npy")
    assert out == tmp_path / "out.npy"
    assert out.read_bytes() == _npy_bytes(X_ref)
    assert (tmp_path / "out.labels.npy").read_bytes() == _npy_bytes(y_ref)
    assert _leftovers(tmp_path) == []


def test_npy_float64_np_memmap_and_labels_path(data, tmp_path):
    X, y = data
    X64 = np.memmap(tmp_path / "X.raw", dtype=np.float64, mode="w+", shape=X.shape)
    X64[:] = X
    X64.flush()
    X64 = np.memmap(tmp_path / "X.raw", dtype=np.float64, mode="r", shape=X.shape)
    X_ref, y_ref = SMOTE(random_state=0).fit_resample(np.array(X64), y)
    labels = tmp_path / "labels" / "y.npy"
    labels.parent.mkdir()
    resample_to_file(SMOTE(random_state=0, chunk_size=77), X64, y, tmp_path / "o.npy", labels_path=labels)
    assert (tmp_path / "o.npy").read_bytes() == _npy_bytes(X_ref)
    assert labels.read_bytes() == _npy_bytes(y_ref)
    assert not (tmp_path / "o.labels.npy").exists()


def test_string_labels_npy_and_object_labels_refused(data, tmp_path):
    X, y = data
    y_str = np.array(["a", "bb", "ccc"])[y]
    _, y_ref = SMOTE(random_state=0).fit_resample(X, y_str)
    resample_to_file(SMOTE(random_state=0), X, y_str, tmp_path / "o.npy")
    assert np.array_equal(np.load(tmp_path / "o.labels.npy"), y_ref)
    with pytest.raises(TypeError, match="cannot be written to a .npy file without pickling"):
        resample_to_file(SMOTE(random_state=0), X, y_str.astype(object), tmp_path / "p.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.labels.npy", "o.npy"]


@pytest.mark.parametrize("make", SAMPLERS)
def test_parquet_matches_fit_resample(make, mapped, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    X, y = mapped
    X_ref, y_ref = make(random_state=5).fit_resample(np.array(X), y)
    chunk_size = 256
    resample_to_file(make(random_state=5, chunk_size=chunk_size), X, y, tmp_path / "o.parquet")
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.column_names == [f"x{j}" for j in range(X.shape[1])] + ["y"]
    X_pq = np.column_stack([table.column(f"x{j}").to_numpy() for j in range(X.shape[1])])
    assert X_pq.dtype == np.float32
    assert X_pq.tobytes() == X_ref.tobytes()
    assert np.array_equal(table.column("y").to_numpy(), y_ref)
    # one row group per chunk: the originals, then each class's synthetic rows
    n_original = -(-X.shape[0] // chunk_size)
    n_synthetic = sum(-(-n // chunk_size) for n in Counter(y_ref[X.shape[0]:]).values())
    assert pq.ParquetFile(tmp_path / "o.parquet").num_row_groups == n_original + n_synthetic


def test_parquet_names_from_dataframe_and_series(data, tmp_path):
    pd = pytest.importorskip("pandas")
    pq = pytest.importorskip("pyarrow.parquet")
    X, y = data
    frame = pd.DataFrame(X, columns=[f"feature_{j}" for j in range(X.shape[1])])
    target = pd.Series(y, name="label")
    resample_to_file(SMOTE(random_state=0), frame, target, tmp_path / "o.parquet")
    names = pq.read_schema(tmp_path / "o.parquet").names
    assert names == list(frame.columns) + ["label"]
    with pytest.raises(ValueError, match="target name 'feature_0' is also a feature name"):
        resample_to_file(SMOTE(random_state=0), frame, y, tmp_path / "p.parquet", target_name="feature_0")
    assert _leftovers(tmp_path) == [] and not (tmp_path / "p.parquet").exists()


def test_generator_matches_fit_resample(mapped):
    X, y = mapped
    X_ref, y_ref = SMOTE(random_state=7).fit_resample(np.array(X), y)
    blocks = list(iter_resample(SMOTE(random_state=7, chunk_size=111), X, y))
    assert max(len(b[0]) for b in blocks) == 111
    assert np.concatenate([b[0] for b in blocks]).tobytes() == X_ref.tobytes()
    assert np.array_equal(np.concatenate([b[1] for b in blocks]), y_ref)


def test_generator_validates_at_call(data):
    X, y = data
    with pytest.raises(ValueError, match="y has 1 class"):
        iter_resample(SMOTE(), X, np.zeros_like(y))
    with pytest.raises(TypeError, match="needs a smote_ann over-sampler"):
        iter_resample(object(), X, y)


# Python >= 3.12 warns that forking a multi-threaded process may deadlock; the
# forked workers here only do NumPy arithmetic, which is what the test needs.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_backend_without_generators_gives_same_bytes(data):
    # joblib's multiprocessing backend has no return_as="generator"
    X, y = data
    X_ref, _ = SMOTE(random_state=0, chunk_size=50).fit_resample(X, y)
    with joblib.parallel_config(backend="multiprocessing", n_jobs=2):
        blocks = list(iter_resample(SMOTE(random_state=0, chunk_size=50), X, y))
    assert np.concatenate([b[0] for b in blocks]).tobytes() == X_ref.tobytes()


# ---------------------------------------------------------------------------
# Atomic output


class _FullDisk(io.BufferedWriter):
    """A file whose writes fail with ENOSPC once `limit` bytes are written."""

    limit = 0

    def __init__(self, path):
        super().__init__(io.FileIO(path, "xb"))
        self.written = 0

    def write(self, data):
        self.written += memoryview(data).nbytes
        if self.written > self.limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


@pytest.mark.parametrize("name", ["out.npy", "out.parquet"])
def test_disk_full_mid_write_leaves_nothing(name, data, tmp_path, monkeypatch):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    X, y = data
    monkeypatch.setattr(_FullDisk, "limit", 20_000)  # a few chunks of 100 rows
    monkeypatch.setattr(sinks, "_open_temp", _FullDisk)
    with pytest.raises(OSError) as excinfo:
        resample_to_file(SMOTE(random_state=0, chunk_size=100), X, y, tmp_path / name)
    assert "No space left on device" in str(excinfo.value)
    assert sorted(os.listdir(tmp_path)) == []


def test_interrupt_leaves_nothing_and_keeps_old_file(data, tmp_path, monkeypatch):
    X, y = data
    (tmp_path / "out.npy").write_bytes(b"old")
    (tmp_path / "out.labels.npy").write_bytes(b"old labels")
    calls = []

    def interrupt(n_rows):
        def update(n):
            calls.append(n)
            if len(calls) == 3:
                raise KeyboardInterrupt
        return update

    from smote_ann.streaming import _resample_to_file

    with pytest.raises(KeyboardInterrupt):
        _resample_to_file(
            SMOTE(random_state=0, chunk_size=100), X, y, tmp_path / "out.npy",
            overwrite=True, progress=interrupt,
        )
    assert (tmp_path / "out.npy").read_bytes() == b"old"
    assert (tmp_path / "out.labels.npy").read_bytes() == b"old labels"
    assert _leftovers(tmp_path) == []


def test_error_in_sampler_removes_temporaries(data, tmp_path):
    X, y = data
    with pytest.raises(ValueError, match="k_neighbors"):
        resample_to_file(SMOTE(k_neighbors=10_000), X, y, tmp_path / "out.npy")
    assert os.listdir(tmp_path) == []


def test_existing_output_needs_overwrite(data, tmp_path):
    X, y = data
    (tmp_path / "out.npy").write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="already exists. Pass overwrite=True"):
        resample_to_file(SMOTE(random_state=0), X, y, tmp_path / "out.npy")
    assert (tmp_path / "out.npy").read_bytes() == b"keep"
    resample_to_file(SMOTE(random_state=0), X, y, tmp_path / "out.npy", overwrite=True)
    assert np.load(tmp_path / "out.npy").shape[1] == X.shape[1]


def test_output_path_errors(data, tmp_path):
    X, y = data
    with pytest.raises(ValueError, match="unknown format '.txt'; supported: .npy, .parquet"):
        resample_to_file(SMOTE(), X, y, tmp_path / "out.txt")
    with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
        resample_to_file(SMOTE(), X, y, tmp_path / "missing" / "out.npy")
    (tmp_path / "folder.npy").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        resample_to_file(SMOTE(), X, y, tmp_path / "folder.npy")


def test_unwritable_folder_reported(data, tmp_path, monkeypatch):
    # root ignores folder permissions: simulate the refusal the kernel gives others
    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(sinks, "_open_temp", refuse)
    X, y = data
    with pytest.raises(PermissionError, match="Cannot write to the output folder"):
        resample_to_file(SMOTE(), X, y, tmp_path / "out.npy")
    assert os.listdir(tmp_path) == []


def test_read_only_folder(data, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        try:
            (folder / "probe").touch()
        except PermissionError:
            pass
        else:
            (folder / "probe").unlink()
            pytest.skip("folder permissions are not enforced for this user (root)")
        X, y = data
        with pytest.raises(PermissionError, match="Cannot write to the output folder"):
            resample_to_file(SMOTE(), X, y, folder / "out.npy")
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


def test_parquet_without_pyarrow(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    X, y = data
    with pytest.raises(ImportError, match=r'need pyarrow.*pip install "smote_ann\[io\]"'):
        resample_to_file(SMOTE(), X, y, tmp_path / "out.parquet")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Memory-mapped input is read without staying resident


def _rss_file_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status")


def test_take_rows_matches_fancy_indexing(mapped):
    X, _ = mapped
    rng = np.random.default_rng(0)
    assert is_mapped(X) and not is_mapped(np.array(X))
    for rows in (np.sort(rng.choice(len(X), 300, replace=False)), rng.integers(0, len(X), 300), np.array([-1, 0, -5])):
        got = take_rows(X, rows)
        assert got.flags.c_contiguous and type(got) is np.ndarray
        assert got.tobytes() == np.array(X)[rows].tobytes()


def test_copy_on_write_map_is_never_released(data, tmp_path):
    X, _ = data
    np.save(tmp_path / "X.npy", X)
    X_c = np.load(tmp_path / "X.npy", mmap_mode="c")
    X_c[0, 0] = 123.0  # a private change that releasing the page would lose
    assert not is_mapped(X_c)
    release_pages(X_c)
    assert X_c[0, 0] == 123.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_mapped_input_pages_do_not_stay_resident(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 250_000, 32  # a 32 MB input
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(n, d))
    X[:] = rng.standard_normal((n, d), dtype=np.float32)
    del X
    y = (rng.random(n) < 0.01).astype(np.int8)
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    resample_to_file(SMOTE(random_state=0), X[:2000], y[:2000], tmp_path / "warm.npy")  # load code
    before = _rss_file_kib()
    resample_to_file(SMOTE(random_state=0), X, y, tmp_path / "out.npy")
    grown_mib = (_rss_file_kib() - before) / 1024
    assert grown_mib < 8, f"{grown_mib:.0f} MiB of the 32 MB input stayed resident"
    X_ref, _ = SMOTE(random_state=0).fit_resample(np.array(X), y)
    assert (tmp_path / "out.npy").read_bytes() == _npy_bytes(X_ref)


def test_non_finite_mapped_input_same_message_as_in_memory(data, tmp_path):
    X, y = data
    X = X.copy()
    X[700, 2] = np.nan
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(ValueError) as in_memory:
        SMOTE().fit_resample(X, y)
    with pytest.raises(ValueError) as from_map:
        resample_to_file(SMOTE(), np.load(tmp_path / "X.npy", mmap_mode="r"), y, tmp_path / "o.npy")
    assert str(from_map.value) == str(in_memory.value)
    assert "Input X contains NaN" in str(from_map.value)
