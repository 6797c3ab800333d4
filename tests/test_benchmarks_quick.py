"""Smoke test of the benchmark suite (its quick profile), and of its measuring helpers."""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _import(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_quick_profile_runs_and_writes_well_formed_results(tmp_path):
    # The acceptance smoke test of the suite: the quick profile, end to end, into tmp_path.
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "suite.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| dataset | index |" in proc.stdout  # markdown tables on stdout
    assert "| rows | method |" in proc.stdout

    results = json.loads((tmp_path / "suite_quick.json").read_text())
    assert results["profile"] == "quick"
    assert (tmp_path / "suite_quick.md").read_text().startswith("# smote_ann benchmark suite")

    # Neighbours: every configuration ran; every approximate timing has its recall.
    nn = results["neighbors"]
    assert {r["method"] for r in nn} == {"sklearn", "flat", "ivf", "hnsw"}
    assert not [r for r in nn if "error" in r]
    for r in nn:
        assert r["us_per_query"] > 0 and r["build_s"] >= 0 and r["peak_mib"] >= 0
        assert 0.0 <= r["recall"] <= 1.0
    # Exact search agrees with scikit-learn's exact search (the reference).
    assert all(r["recall"] > 0.999 for r in nn if r["method"] == "flat")
    assert len(_read_csv(tmp_path / "suite_quick_neighbors.csv")) == len(nn)

    # Resampling: ours and imbalanced-learn at each size, each timing next to a score.
    rs = results["resampling"]
    assert not [r for r in rs if "error" in r]
    assert {"imblearn", "ours_exact", "ours_ivf", "ours_hnsw"} <= {r["method"] for r in rs}
    for r in rs:
        assert r["wall_s"] > 0 and r["peak_mib"] > 0
        if r["method"] in ("imblearn", "ours_exact", "ours_ivf", "ours_hnsw"):
            n_majority = r["rows"] - r["n_minority"]
            assert r["n_out"] == 2 * n_majority  # balanced
        assert 0.0 < r["lr_ap"] <= 1.0
        if r["method"] in ("ours_ivf", "ours_hnsw"):
            assert 0.0 <= r["nn_recall"] <= 1.0
    assert len(_read_csv(tmp_path / "suite_quick_resampling.csv")) == len(rs)

    # Downstream (needs ../shared/data; the suite says so and skips it otherwise).
    if "downstream" in results and results["downstream"]:
        summary = results["downstream_summary"]
        methods = {r["method"] for r in summary}
        assert methods == {"raw", "imblearn", "ours_exact", "ours_ivf", "ours_hnsw"}
        for r in summary:
            for key in ("recall", "precision", "f1", "ap"):
                assert 0.0 <= r[key] <= 1.0 and r[key + "_std"] >= 0.0
        assert _read_csv(tmp_path / "suite_quick_downstream.csv")
    else:
        assert "skipping the downstream section" in proc.stderr

    for name in results["plots"]:
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert len(results["plots"]) == (3 if results.get("downstream") else 2)


def test_recall_at_k_is_tie_tolerant():
    suite = _import("suite")
    X = np.array([[0.0], [1.0], [1.0], [2.0], [5.0]])
    queries = np.array([[0.0]])
    kth = np.array([1.0])  # exact 2-NN of 0: itself, then one of the two 1.0's
    assert suite.recall_at_k(X, queries, np.array([[0, 2]]), kth) == 1.0  # the other duplicate
    assert suite.recall_at_k(X, queries, np.array([[0, 3]]), kth) == 0.5  # 2.0 is too far
    assert suite.recall_at_k(X, queries, np.array([[4, 3]]), kth) == 0.0


def test_memory_probe_sees_a_short_lived_allocation():
    common = _import("_common")
    probe = common.MemoryProbe().start()
    a = np.ones(40 * 2**20 // 8)  # 40 MiB, touched, then freed at once
    del a
    assert probe.peak_bytes() >= 38 * 2**20


def test_run_isolated_reports_worker_errors(tmp_path):
    common = _import("_common")
    script = tmp_path / "worker.py"
    script.write_text(
        "def ok(probe, n):\n    probe.start()\n    return {'n': n * 2}\n\n"
        "def boom(probe):\n    raise ValueError('bad configuration')\n"
    )
    assert common.run_isolated(script, "ok", {"n": 21})["n"] == 42
    assert "bad configuration" in common.run_isolated(script, "boom", {})["error"]
