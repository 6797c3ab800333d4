"""Resolution of ``sampling_strategy`` to ``{class: n_samples_to_add}``.

The rules are imbalanced-learn 0.14's for over-samplers (``check_sampling_strategy``
with ``sampling_type="over-sampling"``), written again here so that
imbalanced-learn is not a runtime dependency; the tests compare both.
"""

# License: BSD-3-Clause

from collections import OrderedDict
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from sklearn.utils.multiclass import type_of_target


def _class_counts(y):
    classes, counts = np.unique(y, return_counts=True)
    return dict(zip(classes.tolist(), counts.tolist()))


def _majority(counts):
    return max(counts, key=counts.get)


def _minority(counts):
    return min(counts, key=counts.get)


def _to_majority(counts, keep):
    """Classes selected by `keep(label, counts)` grow to the majority's size."""
    n_majority = max(counts.values())
    return {c: n_majority - n for c, n in counts.items() if keep(c, counts)}


_STRING_STRATEGIES = {
    "minority": lambda c, counts: c == _minority(counts),
    "not minority": lambda c, counts: c != _minority(counts),
    "not majority": lambda c, counts: c != _majority(counts),
    "all": lambda c, counts: True,
    "auto": lambda c, counts: c != _majority(counts),
}


def _from_dict(targets, counts):
    unknown = set(targets) - set(counts)
    if unknown:
        msg = (
            f"sampling_strategy names classes {sorted(unknown, key=str)} that are "
            f"not in y (classes present: {sorted(counts, key=str)})."
        )
        raise ValueError(msg)
    not_int = {c: n for c, n in targets.items() if isinstance(n, bool) or not isinstance(n, Integral)}
    if not_int:
        msg = (
            f"sampling_strategy must give an int number of samples per class; got "
            f"{not_int}. Use e.g. {{class: 500}}."
        )
        raise TypeError(msg)
    negative = {c: n for c, n in targets.items() if n < 0}
    if negative:
        raise ValueError(
            f"sampling_strategy asks for a negative number of samples: {negative}. "
            "Give the number of samples wanted after resampling."
        )
    result = {}
    for c, n in targets.items():
        if n < counts[c]:
            msg = (
                f"sampling_strategy asks for {n} samples of class {c!r}, which "
                f"already has {counts[c]}; an over-sampler cannot remove samples. "
                f"Ask for at least {counts[c]}."
            )
            raise ValueError(msg)
        result[c] = n - counts[c]
    return result


def _from_float(ratio, y, counts):
    if not 0 < ratio <= 1:
        msg = (
            f"sampling_strategy={ratio!r} is a float outside (0, 1]; it is the "
            "ratio of minority to majority samples wanted after resampling."
        )
        raise ValueError(msg)
    if type_of_target(y) != "binary":
        msg = (
            "sampling_strategy can be a float only when y is binary; y has "
            f"{len(counts)} classes. Use a dict of target counts per class instead."
        )
        raise ValueError(msg)
    majority = _majority(counts)
    n_majority = counts[majority]
    result = {c: int(n_majority * ratio - n) for c, n in counts.items() if c != majority}
    if any(n <= 0 for n in result.values()):
        msg = (
            f"sampling_strategy={ratio!r} would need to remove samples from the "
            "minority class (it already has at least that ratio to the majority). "
            "Increase the ratio."
        )
        raise ValueError(msg)
    return result


def resolve_sampling_strategy(sampling_strategy, y):
    """Return an ordered ``{class: n_samples_to_add}`` sorted by class.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
        As documented on :class:`smote_ann.SMOTE`.

    y : ndarray of shape (n_samples,)
        Validated 1-D target.

    Returns
    -------
    OrderedDict
        Classes to oversample and how many samples to add to each.
    """
    counts = _class_counts(y)
    if len(counts) <= 1:
        msg = (
            f"y has {len(counts)} class; resampling needs at least 2 classes. "
            "Check that y holds the class labels."
        )
        raise ValueError(msg)
    if isinstance(sampling_strategy, str):
        if sampling_strategy not in _STRING_STRATEGIES:
            msg = (
                f"sampling_strategy={sampling_strategy!r} is not one of "
                f"{sorted(_STRING_STRATEGIES)}."
            )
            raise ValueError(msg)
        keep = _STRING_STRATEGIES[sampling_strategy]
        result = _to_majority(counts, keep)
    elif isinstance(sampling_strategy, Mapping):
        result = _from_dict(sampling_strategy, counts)
    elif isinstance(sampling_strategy, Real) and not isinstance(sampling_strategy, bool):
        result = _from_float(sampling_strategy, y, counts)
    elif callable(sampling_strategy):
        targets = sampling_strategy(y)
        if not isinstance(targets, Mapping):
            msg = (
                "A callable sampling_strategy must return a dict {class: n_samples}; "
                f"got {type(targets).__name__}."
            )
            raise TypeError(msg)
        result = _from_dict(targets, counts)
    else:
        msg = (
            "sampling_strategy must be a float, a str, a dict or a callable; got "
            f"{type(sampling_strategy).__name__}."
        )
        raise TypeError(msg)
    return OrderedDict(sorted(result.items()))
