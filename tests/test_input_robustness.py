"""Inputs that used to get through: each gives a result or a one-line error naming the
file and the fix (through the command line: exit status 1, no traceback)."""

import os
import zipfile

import numpy as np
import pytest

from smote_ann.__main__ import main
from smote_ann._readers import open_input


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), (rng.random(200) < 0.2).astype(int)
    np.savez(tmp_path / "d.npz", features=X, label=y)
    return tmp_path / "d.npz"


def test_truncated_and_damaged_npz_are_one_line_errors(npz, tmp_path, capsys):
    data = npz.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    damaged = bytearray(data)
    damaged[200] ^= 0xFF  # inside the first member's bytes: a bad CRC
    (tmp_path / "crc.npz").write_bytes(bytes(damaged))
    for name in ("cut.npz", "crc.npz"):
        code, _, err = cli(["resample", tmp_path / name, "-t", "label", "-o", tmp_path / "o.npy"],
                           capsys)
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
        assert f"{name}' is not a valid .npz archive" in err or "cannot be read" in err


def test_npz_members_without_npy_names_are_read(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 2)), np.arange(50) % 2
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:
        for name, array in (("X", X), ("y", y)):
            with archive.open(name, "w") as member:  # no ".npy" in the member name
                np.lib.format.write_array(member, array)
    with open_input(tmp_path / "raw.npz", target="y") as (X_in, y_in, _, _):
        np.testing.assert_array_equal(X_in, X)
        np.testing.assert_array_equal(y_in, y)


def test_csv_labels_are_typed_once_for_the_whole_file(tmp_path, capsys):
    n = 70_000  # more than one 65,536-row chunk
    labels = np.where(np.arange(n) % 10 == 0, "1", "0").astype(object)
    labels[-1] = "x"  # one string label after the first chunk
    lines = ["a,label"] + [f"{i},{lab}" for i, lab in enumerate(labels)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    with open_input(tmp_path / "d.csv", target="label") as (_, y, _, _):
        assert y.dtype.kind == "U" and set(np.unique(y)) == {"0", "1", "x"}
    # all-integer labels stay integers, as pandas would read them
    (tmp_path / "i.csv").write_text("a,label\n" + "".join(f"{i},{i % 3}\n" for i in range(100)))
    with open_input(tmp_path / "i.csv", target="label") as (_, y, _, _):
        assert y.dtype == np.int64 and set(y.tolist()) == {0, 1, 2}
    (tmp_path / "m.csv").write_text("a,label\n1,0\n2,\n3,1\n")
    code, _, err = cli(["resample", tmp_path / "m.csv", "-t", "label", "-o", tmp_path / "o.npy"],
                       capsys)
    assert code == 1 and "The target column has missing labels" in err


def test_repeated_column_names_are_refused(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("f0,label,label\n1,0,0\n2,1,1\n")
    code, _, err = cli(["resample", tmp_path / "d.csv", "-t", "label", "-o", tmp_path / "o.npy"],
                       capsys)
    assert code == 1 and "has repeated column names: label" in err
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([0, 1]), pa.array([0, 1])],
                                 names=["f0", "label", "label"])
    pq.write_table(table, tmp_path / "d.parquet")
    code, _, err = cli(["resample", tmp_path / "d.parquet", "-t", "label", "-o",
                        tmp_path / "o.npy"], capsys)
    assert code == 1 and "has repeated column names: label" in err and "Traceback" not in err


def test_a_pipe_is_not_reported_as_missing(tmp_path, capsys):
    fifo = tmp_path / "in.npy"
    os.mkfifo(fifo)
    code, _, err = cli(["resample", fifo, "-l", fifo, "-o", tmp_path / "o.npy"], capsys)
    assert code == 1 and "is not a regular file (a pipe or a device?)" in err


def test_truncated_npy_says_so(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.zeros((1000, 4)))
    np.save(tmp_path / "y.npy", np.arange(1000) % 2)
    data = (tmp_path / "X.npy").read_bytes()
    (tmp_path / "X.npy").write_bytes(data[:-100])
    code, _, err = cli(["resample", tmp_path / "X.npy", "-l", tmp_path / "y.npy", "-o",
                        tmp_path / "o.npy"], capsys)
    assert code == 1 and "is truncated: it is shorter than its header says" in err


def test_string_labels_from_pandas_and_object_arrays_to_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    from smote_ann import SMOTE, resample_to_file

    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    labels = np.where(np.arange(120) < 90, "legit", "fraud")
    for y in (pd.Series(labels, name="kind"), labels.astype(object)):
        out = tmp_path / "o.parquet"
        resample_to_file(SMOTE(random_state=0), X, y, out, overwrite=True)
        table = pd.read_parquet(out)
        _, y_ref = SMOTE(random_state=0).fit_resample(X, labels)
        assert table.iloc[:, -1].tolist() == y_ref.tolist()


def test_datetime_labels_to_npy(tmp_path):
    from smote_ann import SMOTE, resample_to_file

    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 2))
    y = np.where(np.arange(100) < 80, np.datetime64("2024-01-01"), np.datetime64("2025-06-30"))
    resample_to_file(SMOTE(random_state=0), X, y, tmp_path / "o.npy")
    _, y_ref = SMOTE(random_state=0).fit_resample(X, y)
    np.testing.assert_array_equal(np.load(tmp_path / "o.labels.npy"), y_ref)
    assert np.load(tmp_path / "o.labels.npy").dtype == y.dtype


def test_mixed_label_types_are_one_clear_error():
    from smote_ann import SMOTE

    X = np.random.default_rng(4).normal(size=(60, 2))
    y = np.array([1] * 40 + ["a"] * 20, dtype=object)
    with pytest.raises(ValueError, match=r"y mixes labels of different types \(number, str\)"):
        SMOTE(k_neighbors=3).fit_resample(X, y)


@pytest.mark.parametrize("dtype", [">f4", ">f8", "uint8", "int16", "float16"])
def test_non_native_inputs_give_imbalanced_learns_dtype_and_values(dtype, tmp_path):
    from smote_ann import SMOTE, resample_to_file

    rng = np.random.default_rng(6)
    X = (rng.random((3000, 4)) * 100).astype(dtype)
    y = (rng.random(3000) < 0.1).astype(int)
    expected = np.float32 if np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize == 4 else np.float64
    native = X.astype(expected)
    X_ref, y_ref = SMOTE(random_state=0).fit_resample(native, y)
    X_res, y_res = SMOTE(random_state=0).fit_resample(X, y)  # in memory
    assert X_res.dtype == expected
    np.testing.assert_array_equal(X_res, X_ref)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")  # mapped: converted a window at a time
    X_map, _ = SMOTE(random_state=0).fit_resample(mapped, y)
    np.testing.assert_array_equal(X_map, X_ref)
    resample_to_file(SMOTE(random_state=0), mapped, y, tmp_path / "o.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), X_ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "o.labels.npy", "o.npy"]


def test_mapped_integer_input_is_never_converted_whole(tmp_path):
    import subprocess
    import sys
    import textwrap

    rng = np.random.default_rng(7)
    X = rng.integers(0, 255, size=(1_000_000, 16), dtype=np.uint8)  # 16 MB; as float64 128 MB
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", (rng.random(1_000_000) < 0.1).astype(np.int8))
    code = textwrap.dedent(f"""
        import resource
        import numpy as np
        from smote_ann import SMOTE, FaissNN, resample_to_file
        X = np.load({str(tmp_path / 'X.npy')!r}, mmap_mode="r")
        y = np.load({str(tmp_path / 'y.npy')!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sampler = SMOTE(sampling_strategy=0.12, random_state=0,
                        k_neighbors=FaissNN(6, index_type="ivf", random_state=0))
        resample_to_file(sampler, X, y, {str(tmp_path / 'o.npy')!r})
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    grew_mib = int(done.stdout.split()[-1])
    assert grew_mib < 100, f"peak grew by {grew_mib} MiB: the 128 MiB float64 copy was made"
    assert np.load(tmp_path / "o.npy", mmap_mode="r").dtype == np.float64
