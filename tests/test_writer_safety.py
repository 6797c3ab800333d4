"""The file writers never lose or clobber data: all new files or all previous ones under
the final names, a file that appears meanwhile kept, SIGTERM cleaned up like Ctrl-C,
leftovers of killed runs recognised and removed. Real files in a temporary folder."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sklearn.datasets import make_classification

import smote_ann._sinks as sinks
from smote_ann import _tempfiles
from smote_ann import SMOTE, resample_to_file


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(600, n_features=4, weights=[0.8], random_state=0)
    return X.astype(np.float32), y


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def previous_pair(tmp_path):
    """An existing o.npy + o.labels.npy from an earlier run."""
    np.save(tmp_path / "o.npy", np.zeros((3, 4), dtype=np.float32))
    np.save(tmp_path / "o.labels.npy", np.array([7, 7, 7]))
    return tmp_path, (tmp_path / "o.npy").read_bytes(), (tmp_path / "o.labels.npy").read_bytes()


@pytest.mark.parametrize("fail_on", ["link", "backup rename"])
def test_failed_commit_over_a_previous_pair_keeps_it_whole(data, previous_pair, monkeypatch, fail_on):
    folder, old_x, old_y = previous_pair
    real_link, real_rename = os.link, os.rename

    def link(src, dst):  # the features cannot be put in place (an immutable o.npy, ...)
        if fail_on == "link" and str(dst).endswith("o.npy"):
            raise PermissionError(13, "Operation not permitted", str(dst))
        return real_link(src, dst)

    def rename(src, dst):
        if fail_on == "backup rename" and str(src).endswith("o.npy"):
            raise PermissionError(13, "Operation not permitted", str(src))
        return real_rename(src, dst)

    monkeypatch.setattr(sinks.os, "link", link)
    monkeypatch.setattr(sinks.os, "rename", rename)
    with pytest.raises(PermissionError):
        resample_to_file(SMOTE(random_state=0), *data, folder / "o.npy", overwrite=True)
    # both previous files, untouched; nothing else left
    assert (folder / "o.npy").read_bytes() == old_x
    assert (folder / "o.labels.npy").read_bytes() == old_y
    assert leftovers(folder) == []


def test_successful_overwrite_replaces_both(data, previous_pair):
    folder, old_x, _ = previous_pair
    resample_to_file(SMOTE(random_state=0), *data, folder / "o.npy", overwrite=True)
    X_ref, y_ref = SMOTE(random_state=0).fit_resample(*data)
    np.testing.assert_array_equal(np.load(folder / "o.npy"), X_ref)
    np.testing.assert_array_equal(np.load(folder / "o.labels.npy"), y_ref)
    assert leftovers(folder) == []


@pytest.mark.parametrize("appears", ["o.npy", "o.labels.npy"])
def test_file_appearing_during_the_run_is_kept(data, tmp_path, appears):
    intruder = b"another job's output"

    def progress_factory(n_rows):
        def progress(n):  # while the chunks are written, another job writes the same name
            if not (tmp_path / appears).exists():
                (tmp_path / appears).write_bytes(intruder)
        return progress

    from smote_ann.streaming import _resample_to_file

    with pytest.raises(FileExistsError, match=r"appeared while the data was being written.*It was kept"):
        _resample_to_file(SMOTE(random_state=0), *data, tmp_path / "o.npy", progress=progress_factory)
    assert (tmp_path / appears).read_bytes() == intruder
    other = {"o.npy": "o.labels.npy", "o.labels.npy": "o.npy"}[appears]
    assert not (tmp_path / other).exists()  # nothing of this run under a final name
    assert leftovers(tmp_path) == []


def test_overwrite_must_be_a_bool(data, tmp_path):
    with pytest.raises(TypeError, match="overwrite must be True or False; got overwrite='no'"):
        resample_to_file(SMOTE(random_state=0), *data, tmp_path / "o.npy", overwrite="no")
    assert list(tmp_path.iterdir()) == []


SLOW_WRITER = """
    import sys, time
    import numpy as np
    from sklearn.datasets import make_classification
    from smote_ann import SMOTE
    from smote_ann.streaming import _resample_to_file
    X, y = make_classification(4000, n_features=4, weights=[0.8], random_state=0)
    def factory(n_rows):
        def progress(n):
            print("writing", flush=True)
            time.sleep(0.2)
        return progress
    {call}
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("how", ["api", "cli"])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(tmp_path, signum, how):
    if how == "api":
        call = (f"_resample_to_file(SMOTE(random_state=0, chunk_size=100), X, y, "
                f"{str(tmp_path / 'o.npy')!r}, progress=factory)")
        code = textwrap.dedent(SLOW_WRITER).format(call=call)
    else:  # the command line, reading a CSV (its input spill file must go too)
        lines = ["a,b,c,d,label"] + [f"{i},{i % 7},{i % 5},{i % 3},{int(i % 9 == 0)}"
                                     for i in range(4000)]
        (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
        code = textwrap.dedent("""
            import time
            import smote_ann.__main__ as cli
            real = cli._progress_bar
            def slow(disable):
                def factory(n_rows):
                    def progress(n):
                        print("writing", flush=True)
                        time.sleep(0.2)
                    return progress
                return factory, lambda: None
            cli._progress_bar = slow
            cli.sys.stderr.isatty = lambda: True
            cli.main(["resample", {inp!r}, "-t", "label", "-o", {out!r}, "--chunk-size", "100"])
        """).format(inp=str(tmp_path / "in.csv"), out=str(tmp_path / "o.npy"))
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()  # mid-write
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signum, err  # ended by the signal, as without smote_ann
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == (["in.csv"] if how == "cli" else [])


def test_leftovers_of_a_killed_run_are_recognised_and_removed(data, tmp_path):
    # a run killed outright (SIGKILL) cannot clean up: its .part files stay
    code = textwrap.dedent(SLOW_WRITER).format(
        call=f"_resample_to_file(SMOTE(random_state=0, chunk_size=100), X, y, "
             f"{str(tmp_path / 'o.npy')!r}, progress=factory)")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "writing"
        proc.kill()
        proc.communicate(timeout=60)
    stale = leftovers(tmp_path)
    assert len(stale) == 2 and all(name.endswith(".part") and f"-{proc.pid}-" in name
                                   for name in stale)
    # a live process's files are not touched
    alive = tmp_path / f".o.npy.{_tempfiles.HOST}-{os.getpid()}-0000abcd.part"
    alive.write_bytes(b"")
    resample_to_file(SMOTE(random_state=0), *data, tmp_path / "o.npy")
    assert leftovers(tmp_path) == [alive.name]


def test_input_spills_of_killed_runs_are_removed(tmp_path):
    from smote_ann.__main__ import main

    lines = ["a,b,label"] + [f"{i},{i % 7},{int(i % 5 == 0)}" for i in range(300)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    dead = int(done.stdout)  # a process that has ended
    stale = tmp_path / f".in.csv.{_tempfiles.HOST}-{dead}-0123abcd.input.part"
    stale.write_bytes(b"\0" * 64)
    assert main(["resample", str(tmp_path / "in.csv"), "-t", "label", "-o",
                 str(tmp_path / "o.npy"), "-q"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "o.labels.npy", "o.npy"]
