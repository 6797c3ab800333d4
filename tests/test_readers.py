"""Input files opened without reading the features into memory (smote_ann._readers)."""

import os

import numpy as np
import pytest

import smote_ann._readers as readers
from smote_ann._readers import open_input


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 4)).astype(np.float32)
    y = np.where(rng.random(1000) < 0.2, "fraud", "ok")
    return X, y


def _spills(folder):
    return [name for name in os.listdir(folder) if name.endswith(".input.part")]


def _write(kind, X, y, folder):
    path = folder / f"d.{kind}"
    if kind == "csv":
        lines = ["a,b,label,c,d"] + [
            ",".join([repr(float(v)) for v in row[:2]] + [label] + [repr(float(v)) for v in row[2:]])
            for row, label in zip(X, y)
        ]
        path.write_text("\n".join(lines) + "\n")
    elif kind == "parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        columns = {"a": X[:, 0], "b": X[:, 1], "label": y, "c": X[:, 2], "d": X[:, 3]}
        pq.write_table(pa.table(columns), path, row_group_size=300)
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_tables_are_spilled_in_chunks_and_mapped(kind, table, tmp_path, monkeypatch):
    if kind == "csv":
        pytest.importorskip("pandas")
    monkeypatch.setattr(readers, "CHUNK_ROWS", 128)  # several chunks, the last one short
    X, y = table
    path = _write(kind, X, y, tmp_path)
    spill_folder = tmp_path / "spill"
    spill_folder.mkdir()
    with open_input(path, target="label", spill_folder=spill_folder) as (X_in, y_in, names, target):
        assert isinstance(X_in, np.memmap) and not X_in.flags.writeable
        assert len(_spills(spill_folder)) == 1
        # a CSV has no dtypes: float64, as pandas reads it; Parquet keeps float32
        expected = X.astype(np.float64) if kind == "csv" else X
        assert X_in.dtype == expected.dtype
        np.testing.assert_array_equal(X_in, expected)
        assert list(y_in) == list(y) and y_in.dtype.kind == "U"
        assert (names, target) == (["a", "b", "c", "d"], "label")
    assert _spills(spill_folder) == []


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("order", ["C", "F"])
def test_npz_member_is_spilled(compressed, order, table, tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 100)
    X, y = table
    features = np.asarray(X, order=order)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "d.npz", features=features, label=y)
    with open_input(tmp_path / "d.npz", target="label") as (X_in, y_in, names, target):
        assert isinstance(X_in, np.memmap)
        assert X_in.tobytes() == np.ascontiguousarray(X).tobytes()
        assert list(y_in) == list(y) and (names, target) == (None, "label")
    assert _spills(tmp_path) == []


def test_spill_is_removed_when_the_caller_fails(table, tmp_path):
    pytest.importorskip("pandas")
    X, y = table
    path = _write("csv", X, y, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with open_input(path, target="label"):
            assert len(_spills(tmp_path)) == 1
            raise KeyboardInterrupt
    assert _spills(tmp_path) == []


def test_a_bad_column_fails_clearly_and_leaves_nothing(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,oops,x\n")  # the bad value is in the 2nd chunk
    with pytest.raises(ValueError, match="Column 'b' of .* is not numeric .*Encode it, or drop it"):
        with open_input(path, target="label"):
            pass
    assert _spills(tmp_path) == []


def test_parquet_non_numeric_feature_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": [1.0, 2.0], "city": ["x", "y"], "label": [0, 1]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="Column 'city' of .* is not numeric"):
        with open_input(tmp_path / "d.parquet", target="label"):
            pass
    assert _spills(tmp_path) == []


def test_parquet_missing_values(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": pa.array([1, None], pa.int64()), "label": [0, 1]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="Column 'a' of .* has missing values"):
        with open_input(tmp_path / "d.parquet", target="label"):
            pass
    assert _spills(tmp_path) == []


def test_csv_with_labels_file_and_int_labels(tmp_path):
    pytest.importorskip("pandas")
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    np.save(tmp_path / "y.npy", np.array([0, 1, 0]))
    with open_input(tmp_path / "d.csv", labels=tmp_path / "y.npy") as (X_in, y_in, names, target):
        np.testing.assert_array_equal(X_in, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        assert y_in.tolist() == [0, 1, 0] and (names, target) == (["a", "b"], "y")
    (tmp_path / "e.csv").write_text("a,label\n1,0\n2,1\n")
    with open_input(tmp_path / "e.csv", target="label") as (_, y_in, _, _):
        assert y_in.dtype.kind == "i" and y_in.tolist() == [0, 1]


def test_header_only_and_label_only_csv(tmp_path):
    pytest.importorskip("pandas")
    (tmp_path / "empty.csv").write_text("a,b,label\n")
    with open_input(tmp_path / "empty.csv", target="label") as (X_in, y_in, names, _):
        assert X_in.shape == (0, 2) and y_in.shape == (0,) and names == ["a", "b"]
    (tmp_path / "labels.csv").write_text("label\n1\n0\n")
    with pytest.raises(ValueError, match="has no feature columns besides the labels"):
        with open_input(tmp_path / "labels.csv", target="label"):
            pass
    assert _spills(tmp_path) == []
