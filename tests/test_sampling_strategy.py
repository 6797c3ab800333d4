"""sampling_strategy resolution against imbalanced-learn's check_sampling_strategy."""

import numpy as np
import pytest

from smote_ann._sampling_strategy import resolve_sampling_strategy

imblearn_utils = pytest.importorskip("imblearn.utils")

BINARY = np.array([0] * 90 + [1] * 10)
MULTICLASS = np.array([0] * 50 + [1] * 30 + [2] * 12 + [3] * 5)
STRINGS = np.array(["maj"] * 40 + ["mid"] * 15 + ["min"] * 6, dtype=object)


def _reference(strategy, y):
    return dict(imblearn_utils.check_sampling_strategy(strategy, y, "over-sampling"))


def _half_of_majority(y):
    classes, counts = np.unique(y, return_counts=True)
    return {c: max(n, counts.max() // 2) for c, n in zip(classes, counts)}


STRATEGIES = [
    "auto",
    "minority",
    "not minority",
    "not majority",
    "all",
    _half_of_majority,
]


@pytest.mark.parametrize("y", [BINARY, MULTICLASS, STRINGS], ids=["binary", "multiclass", "str"])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: getattr(s, "__name__", s))
def test_matches_imblearn(strategy, y):
    ours = resolve_sampling_strategy(strategy, y)
    assert dict(ours) == _reference(strategy, y)
    assert list(ours) == sorted(ours)


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.75, 1.0])
def test_float_matches_imblearn(ratio):
    assert dict(resolve_sampling_strategy(ratio, BINARY)) == _reference(ratio, BINARY)


@pytest.mark.parametrize(
    "y, targets",
    [(BINARY, {1: 50}), (MULTICLASS, {1: 50, 3: 7}), (MULTICLASS, {0: 50, 2: 12})],
)
def test_dict_matches_imblearn(y, targets):
    assert dict(resolve_sampling_strategy(targets, y)) == _reference(targets, y)


def test_hand_computed_multiclass():
    # 'not minority' grows 1 and 2 (not the minority class 3) up to 50.
    assert dict(resolve_sampling_strategy("not minority", MULTICLASS)) == {0: 0, 1: 20, 2: 38}


@pytest.mark.parametrize(
    "strategy, y, match",
    [
        (0.5, MULTICLASS, "only when y is binary"),
        (0.05, BINARY, "remove samples"),
        (1.5, BINARY, r"outside \(0, 1\]"),
        ({1: 5}, BINARY, "already has 10"),
        ({1: -1}, BINARY, "negative"),
        ({7: 100}, BINARY, r"not in y"),
        ("majority", BINARY, "is not one of"),
        (lambda y: [1, 2], BINARY, None),
    ],
)
def test_errors_where_imblearn_errors(strategy, y, match):
    with pytest.raises((ValueError, TypeError), match=match):
        resolve_sampling_strategy(strategy, y)
    if not callable(strategy):
        with pytest.raises(ValueError):
            _reference(strategy, y)


def test_single_class():
    with pytest.raises(ValueError, match="at least 2 classes"):
        resolve_sampling_strategy("auto", np.zeros(10))
    with pytest.raises(ValueError):
        _reference("auto", np.zeros(10))
