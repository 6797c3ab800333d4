"""The smote-ann command line: every input format, every error path, progress."""

import errno
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_classification

import smote_ann._sinks as sinks
import smote_ann.streaming as streaming
from smote_ann import ADASYN, SMOTE, BorderlineSMOTE, FaissNN
from smote_ann.__main__ import main


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=800, n_features=5, n_informative=3, weights=[0.8], random_state=0)
    return X.astype(np.float32), y


@pytest.fixture
def files(data, tmp_path):
    """The same dataset as .npy + labels, .npz, CSV and (if pyarrow) Parquet."""
    X, y = data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "d.npz", features=X, label=y)
    lines = [",".join([f"f{j}" for j in range(X.shape[1])] + ["label"])]
    lines += [",".join([repr(float(v)) for v in row] + [f"c{label}"]) for row, label in zip(X, y)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        columns = {f"f{j}": X[:, j] for j in range(X.shape[1])}
        columns["label"] = np.array(["c0", "c1"])[y]
        pq.write_table(pa.table(columns), tmp_path / "d.parquet")
    return tmp_path


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_npy_with_labels_file_equals_fit_resample(data, files, capsys):
    X, y = data
    code, out, err = run(
        ["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.npy",
         "--random-state", "3", "--chunk-size", "100", "-k", "4"],
        capsys,
    )
    assert code == 0 and err == ""
    X_ref, y_ref = SMOTE(random_state=3, k_neighbors=4).fit_resample(X, y)
    assert (files / "o.npy").read_bytes() == _npy_bytes(X_ref)
    assert (files / "o.labels.npy").read_bytes() == _npy_bytes(y_ref)
    n0, n1 = np.bincount(y)
    assert out.count("\n") == 1  # a one-line summary
    assert f"class counts before {{0: {n0}, 1: {n1}}}, after {{0: {n0}, 1: {n0}}}" in out


def test_csv_target_column_to_parquet(data, files, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pandas")
    X, y = data
    code, out, _ = run(
        ["resample", files / "d.csv", "--target", "label", "--out", files / "o.parquet",
         "--random-state", "0", "--sampling-strategy", "0.5"],
        capsys,
    )
    assert code == 0
    X_ref, y_ref = SMOTE(random_state=0, sampling_strategy=0.5).fit_resample(X.astype(np.float64), y)
    table = pq.read_table(files / "o.parquet")
    assert table.column_names == [f"f{j}" for j in range(X.shape[1])] + ["label"]
    X_out = np.column_stack([table.column(f"f{j}").to_numpy() for j in range(X.shape[1])])
    assert X_out.tobytes() == X_ref.tobytes()  # CSV reads as float64
    assert table.column("label").to_pylist() == [f"c{v}" for v in y_ref]
    assert "'c0'" in out and "'c1'" in out


def test_parquet_target_column_and_npz(data, files, capsys):
    pytest.importorskip("pyarrow")
    X, y = data
    X_ref, _ = SMOTE(random_state=1).fit_resample(X, y)
    code, _, _ = run(["resample", files / "d.parquet", "-t", "label", "-o", files / "a.npy", "--random-state", "1"], capsys)
    assert code == 0
    assert (files / "a.npy").read_bytes() == _npy_bytes(X_ref)
    assert np.load(files / "a.labels.npy").dtype.kind == "U"
    code, _, _ = run(
        ["resample", files / "d.npz", "--target", "label", "--out", files / "b.npy",
         "--labels-out", files / "b_y.npy", "--random-state", "1", "--quiet"],
        capsys,
    )
    assert code == 0
    assert (files / "b.npy").read_bytes() == _npy_bytes(X_ref)
    assert (files / "b_y.npy").exists()


def test_index_type_and_n_jobs(data, files, capsys):
    X, y = data
    code, _, _ = run(
        ["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.npy",
         "--index-type", "hnsw", "--n-jobs", "2", "--random-state", "0", "-q"],
        capsys,
    )
    assert code == 0
    nn = FaissNN(n_neighbors=6, index_type="hnsw", random_state=0)
    X_ref, _ = SMOTE(random_state=0, k_neighbors=nn).fit_resample(X, y)
    assert (files / "o.npy").read_bytes() == _npy_bytes(X_ref)


METHODS = {
    "borderline-1": lambda nn: BorderlineSMOTE(random_state=5, kind="borderline-1", k_neighbors=nn(4), m_neighbors=nn(7)),
    "borderline-2": lambda nn: BorderlineSMOTE(random_state=5, kind="borderline-2", k_neighbors=nn(4), m_neighbors=nn(7)),
    "adasyn": lambda nn: ADASYN(random_state=5, n_neighbors=nn(4)),
}


@pytest.mark.parametrize("index_type", ["flat", "ivf"])
@pytest.mark.parametrize("method", METHODS)
def test_method_equals_the_variant(method, index_type, data, files, capsys):
    X, y = data
    argv = ["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.npy",
            "--method", method, "-k", "4", "--random-state", "5", "--index-type", index_type]
    if method != "adasyn":
        argv += ["--m-neighbors", "7"]
    code, out, err = run(argv, capsys)
    assert code == 0 and err == ""

    def nn(k):  # what the options mean: k neighbours besides the sample itself
        return k if index_type == "flat" else FaissNN(n_neighbors=k + 1, index_type="ivf", random_state=5)

    X_ref, y_ref = METHODS[method](nn).fit_resample(X, y)
    assert (files / "o.npy").read_bytes() == _npy_bytes(X_ref)
    assert (files / "o.labels.npy").read_bytes() == _npy_bytes(y_ref)
    # the summary gives the counts written (ADASYN's need not balance exactly)
    after = dict(zip(*(a.tolist() for a in np.unique(y_ref, return_counts=True))))
    assert f"after {{0: {after[0]}, 1: {after[1]}}}" in out


ERRORS = [
    (["resample", "missing.npy", "--labels", "y.npy", "--out", "o.npy"], "Input 'missing.npy' does not exist."),
    (["resample", "d.txt", "--out", "o.npy"], "Input 'd.txt' has an unknown format '.txt'"),
    (["resample", "X.npy", "--labels", "y.npy", "--out", "o.csv"], "Output 'o.csv' has an unknown format '.csv'"),
    (["resample", "d.csv", "--target", "nope", "--out", "o.npy"], "Target column 'nope' is not in 'd.csv'"),
    (["resample", "d.csv", "--out", "o.npy"], "Give the target column of 'd.csv' with --target NAME"),
    (["resample", "X.npy", "--out", "o.npy"], "A .npy input holds no labels: give them with --labels"),
    (["resample", "X.npy", "--target", "y", "--out", "o.npy"], "A .npy input holds no columns"),
    (["resample", "X.npy", "--labels", "short.npy", "--out", "o.npy"],
     "Labels file 'short.npy' has 799 labels but the data have 800 rows."),
    (["resample", "X.npy", "--labels", "y.npy", "--out", "no/o.npy"], "The output folder 'no' does not exist."),
    (["resample", "X.npy", "--labels", "y.npy", "--out", "o.npy", "-k", "1000"], "k_neighbors=1000 needs at least 1001"),
    (["resample", "X.npy", "--labels", "y.npy", "--out", "o.npy", "--m-neighbors", "5"],
     "--m-neighbors applies to borderline-1 and borderline-2, not to smote."),
    (["resample", "X.npy", "--labels", "y.npy", "--out", "o.npy", "-m", "adasyn", "-k", "1000"],
     "n_neighbors=1000 needs at least 1001"),
]


@pytest.mark.parametrize("argv, message", ERRORS, ids=[m[:30] for _, m in ERRORS])
def test_errors_are_one_line_without_traceback(argv, message, data, files, capsys, monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.chdir(files)
    np.save("short.npy", data[1][:-1])
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    assert err.startswith("smote-ann: error: ") and err.count("\n") == 1
    assert message in err
    assert not any(name.startswith("o.") or name.endswith(".part") for name in os.listdir("."))


def test_existing_output_needs_overwrite(files, capsys):
    argv = ["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.npy", "-q"]
    (files / "o.npy").write_bytes(b"old")
    code, _, err = run(argv, capsys)
    assert code == 1 and "already exists. Pass overwrite=True (--overwrite)" in err
    assert (files / "o.npy").read_bytes() == b"old"
    assert run([*argv, "--overwrite"], capsys)[0] == 0
    assert np.load(files / "o.npy").shape[1] == 5


def test_unwritable_folder(files, capsys, monkeypatch):
    # root ignores folder permissions: simulate the kernel's refusal
    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(sinks, "_open_temp", refuse)
    code, _, err = run(["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.npy"], capsys)
    assert code == 1
    assert err == f"smote-ann: error: Cannot write to the output folder {str(files)!r}: permission denied. Choose a folder you can write to.\n"


def test_disk_full_and_interrupt_leave_nothing(files, capsys, monkeypatch):
    argv = ["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.npy", "--chunk-size", "50"]
    before = sorted(os.listdir(files))
    calls = []

    def failing(exc):
        def write_blocks(sink, r, **kwargs):
            sink.start(r.n_rows, r.n_features, r.dtype, r.y_dtype, None, None)
            for X_chunk, y_chunk in r.blocks():
                sink.write(X_chunk, y_chunk)
                calls.append(1)
                if len(calls) % 3 == 0:
                    raise exc
        return write_blocks

    monkeypatch.setattr(streaming, "write_blocks", failing(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    code, _, err = run(argv, capsys)
    assert (code, err) == (1, "smote-ann: error: No space left on device\n")
    monkeypatch.setattr(streaming, "write_blocks", failing(KeyboardInterrupt()))
    code, _, err = run(argv, capsys)
    assert (code, err) == (130, "smote-ann: interrupted; no output written\n")
    assert sorted(os.listdir(files)) == before


def test_parquet_without_pyarrow(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    code, _, err = run(["resample", files / "d.parquet", "-t", "label", "--out", files / "o.npy"], capsys)
    assert code == 1
    assert err == 'smote-ann: error: Parquet files need pyarrow, which is not installed. Install the io extra: pip install "smote_ann[io]"\n'
    code, _, err = run(["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.parquet"], capsys)
    assert code == 1 and 'pip install "smote_ann[io]"' in err
    assert not (files / "o.parquet").exists()


def test_bad_option_values_are_usage_errors(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["resample", str(files / "X.npy"), "--out", "o.npy", "--sampling-strategy", "most"])
    assert exit_info.value.code == 2
    assert "'most' is neither one of auto, minority" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal(files, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    argv = ["resample", str(files / "X.npy"), "--labels", str(files / "y.npy"), "--out", str(files / "o.npy"), "--overwrite"]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(argv) == 0
    assert "rows" in terminal.getvalue() and "100%" in terminal.getvalue()
    assert "class counts before" in capsys.readouterr().out
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([*argv, "--quiet"]) == 0
    assert terminal.getvalue() == "" and capsys.readouterr().out == ""


def test_no_tqdm_no_bar_no_crash(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["resample", str(files / "X.npy"), "--labels", str(files / "y.npy"), "--out", str(files / "o.npy")]
    assert main(argv) == 0
    assert "100%" not in terminal.getvalue()
    assert "class counts before" in capsys.readouterr().out


def test_demo(capsys):
    assert main(["demo", "--n-samples", "4000"]) == 0
    out = capsys.readouterr().out
    assert "before:" in out and "{0: 3800, 1: 200}" in out
    assert out.count("{0: 3800, 1: 3800}") == 2  # exact and IVF
    assert "recall@5" in out


def test_python_dash_m_and_exit_status(files):
    ok = subprocess.run(
        [sys.executable, "-m", "smote_ann", "resample", "X.npy", "--labels", "y.npy", "--out", "o.npy", "--random-state", "0"],
        cwd=files, capture_output=True, text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "class counts before" in ok.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "smote_ann", "resample", "X.npy", "--labels", "y.npy", "--out", "o.npy"],
        cwd=files, capture_output=True, text=True,
    )
    assert failed.returncode == 1
    assert failed.stderr == "smote-ann: error: Output 'o.npy' already exists. Pass overwrite=True (--overwrite) to replace it.\n"


@pytest.mark.parametrize("method", ["smote", "borderline-1", "adasyn"])
def test_defaults_are_the_estimators_defaults(method):
    from smote_ann import ADASYN, SMOTE, BorderlineSMOTE
    from smote_ann.__main__ import _build_parser, _sampler

    estimator = {"smote": SMOTE, "borderline-1": BorderlineSMOTE, "adasyn": ADASYN}[method]
    args = _build_parser().parse_args(["resample", "in.npy", "-o", "out.npy", "-m", method])
    assert _sampler(args).get_params() == estimator().get_params()


# --------------------------------------------------------------------------
# Recall: --target-recall, --nprobe, --ef-search, and the neighbors command
# --------------------------------------------------------------------------
def test_search_options_reach_the_faissnn(data, files, capsys):
    X, y = data
    code, out, _ = run(
        ["resample", files / "X.npy", "--labels", files / "y.npy", "--out", files / "o.npy",
         "--index-type", "ivf", "--target-recall", "0.99", "--random-state", "0"],
        capsys,
    )
    assert code == 0
    sampler = SMOTE(random_state=0, k_neighbors=FaissNN(6, index_type="ivf", target_recall=0.99,
                                                        random_state=0))
    X_ref, _ = sampler.fit_resample(X, y)
    assert (files / "o.npy").read_bytes() == _npy_bytes(X_ref)
    # the summary shows the recall each class's search reached
    assert f"neighbour recall@k (estimated, per class) {{1: {sampler.neighbor_recall_[1]:.3f}}}" in out
    for option, value, param in [("--nprobe", "3", "nprobe"), ("--ef-search", "9", "ef_search"),
                                 ("--target-recall", "none", "target_recall")]:
        from smote_ann.__main__ import _build_parser, _sampler

        args = _build_parser().parse_args(
            ["resample", "in.npy", "-o", "o.npy", "--index-type", "hnsw", option, value])
        expected = None if value == "none" else int(value)
        assert _sampler(args).k_neighbors.get_params()[param] == expected


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--target-recall", "0"], "argument --target-recall: '0' is not in (0, 1]"),
        (["--target-recall", "high"], "argument --target-recall: 'high' is neither a number nor 'none'"),
        (["--nprobe", "0"], "argument --nprobe: '0' must be at least 1"),
    ],
)
def test_bad_search_options_are_usage_errors(argv, message, files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["resample", str(files / "X.npy"), "-l", str(files / "y.npy"), "-o", "o.npy", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_nprobe_without_an_approximate_index_is_refused(files, capsys):
    code, _, err = run(["resample", files / "X.npy", "-l", files / "y.npy", "-o",
                        files / "o.npy", "--nprobe", "4"], capsys)
    assert code == 1 and "--nprobe and --ef-search apply to approximate indexes" in err


def test_neighbors_command_table_and_json(data, files, capsys):
    import json

    X, y = data
    code, out, _ = run(["neighbors", files / "d.csv", "--target", "label", "--json"], capsys)
    assert code == 0
    records = json.loads(out)
    assert [(r["class"], r["index"].split(",")[0][:3]) for r in records] == [
        (c, t) for c in ("c0", "c1") for t in ("Fla", "IVF", "HNS")]
    for r in records:
        assert r["rows"] == int(np.sum(y == int(r["class"][1])))
        assert 0.95 <= r["recall"] <= 1.0 and r["build_seconds"] >= 0
        if r["index"] == "Flat":
            assert r["recall"] == 1.0 and r["speedup_vs_flat"] == 1.0
        else:
            assert (r["nprobe"] or r["ef_search"]) and r["recall_estimate"] >= 0.95
    # the measured recall is that of an independent exact reference (scikit-learn)
    from sklearn.neighbors import NearestNeighbors

    X1 = X[y == 1].astype(np.float64)
    ivf = FaissNN(5, index_type="ivf", random_state=0).fit(X1)
    ind = ivf.kneighbors(return_distance=False)
    kth = NearestNeighbors(n_neighbors=5).fit(X1).kneighbors()[0][:, -1]
    d = np.sqrt(((X1[:, None, :] - X1[ind]) ** 2).sum(axis=2))
    recall = np.mean(d <= kth[:, None] * (1 + 1e-5) + 1e-7)
    assert records[4]["recall"] == pytest.approx(recall, abs=1e-9)  # 160 rows: all measured

    code, out, _ = run(["neighbors", files / "X.npy", "-l", files / "y.npy",
                        "--index-type", "hnsw", "flat", "--classes", "1", "-k", "3"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[2].split()[-1].endswith("x")  # flat listed second: HNSW is still compared to it
    lines = lines[:2] + [lines[3], lines[2]]  # flat first, as the checks below read them
    assert lines[0].startswith("recall@3 of each class's rows")
    assert lines[1].split() == ["class", "rows", "index", "parameters", "recall", "build", "s",
                                "query", "s", "total", "s", "vs", "flat"]
    assert [line.split()[2] for line in lines[2:]] == ["Flat", "HNSW16,Flat"]
    assert lines[2].split()[3:5] == ["-", "1.000"]


def test_neighbors_command_errors(files, capsys):
    code, _, err = run(["neighbors", files / "X.npy", "-l", files / "y.npy", "--classes", "7"], capsys)
    assert code == 1 and "--classes: no class 7 in the labels; they are 0, 1." in err
    code, _, err = run(["neighbors", files / "X.npy", "-l", files / "y.npy",
                        "--index-type", "IVF16,PQ3"], capsys)
    assert code == 1 and "index_type='IVF16,PQ3' is not a valid FAISS index_factory string" in err
