"""The fuzz scripts of tests/fuzz, each in a subprocess: a crash (a segfault inside FAISS)
fails the test with its exit status instead of ending the test run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).parent / "fuzz"


@pytest.mark.parametrize("script, examples", [("fuzz_faissnn.py", 600), ("fuzz_samplers.py", 200)])
def test_fuzz(script, examples):
    done = subprocess.run([sys.executable, str(FUZZ / script)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "FUZZ_EXAMPLES": str(examples)})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (
        f"exit status {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
