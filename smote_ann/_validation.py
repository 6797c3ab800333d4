"""Data-dependent checks shared by the estimators, and the pandas round trip."""

# License: BSD-3-Clause

import sys
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data


def _pandas_type(obj, name):
    pd = sys.modules.get("pandas")  # pandas is optional: never import it here
    return pd is not None and isinstance(obj, getattr(pd, name))


class OutputFormatter:
    """Give resampled arrays the container type of the input (imbalanced-learn's rule).

    A DataFrame X comes back as a DataFrame with the same columns and dtypes,
    a Series y as a Series with the same name and dtype.
    """

    def __init__(self, X, y):
        self.x_frame = _pandas_type(X, "DataFrame")
        self.columns = X.columns if self.x_frame else None
        self.x_dtypes = X.dtypes if self.x_frame else None
        self.y_series = _pandas_type(y, "Series")
        self.y_name = y.name if self.y_series else None
        self.y_dtype = y.dtype if self.y_series else None

    def __call__(self, X_res, y_res):
        if self.x_frame:
            import pandas as pd

            X_res = pd.DataFrame(X_res, columns=self.columns).astype(self.x_dtypes, copy=False)
        if self.y_series:
            import pandas as pd

            y_res = pd.Series(y_res, name=self.y_name, dtype=self.y_dtype)
            if self.x_frame:
                y_res.index = X_res.index
        return X_res, y_res


def check_sampler_input(estimator, X, y):
    """Validate X and y for a sampler; X keeps a float dtype, y is 1-D."""
    if y is None:
        msg = f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        raise ValueError(msg)
    X, y = validate_data(
        estimator,
        X,
        y,
        reset=True,
        accept_sparse=False,
        dtype=[np.float64, np.float32],
        ensure_all_finite=True,
    )
    check_classification_targets(y)
    return X, y


def check_neighbors_object(name, value, additional_neighbor, default_factory):
    """An unfitted neighbours estimator for the parameter `name`.

    An int ``k`` gives ``default_factory(k + additional_neighbor)``; an object
    with ``kneighbors`` and ``kneighbors_graph`` is cloned, so the user's object
    is never fitted or modified.
    """
    if isinstance(value, Integral):
        return default_factory(int(value) + additional_neighbor)
    return clone(value)


def check_class_size(label, n_class, nn, name, value):
    """Raise if a class is too small for its neighbours estimator."""
    n_needed = getattr(nn, "n_neighbors", None)
    if n_class < 2:
        msg = (
            f"Class {label!r} has {n_class} sample; synthetic samples are drawn "
            "between a sample and its neighbours of the same class, so at least 2 "
            "are needed. Leave this class out of sampling_strategy."
        )
        raise ValueError(msg)
    if n_needed is None or n_class >= n_needed:
        return
    if isinstance(value, Integral):
        what = f"{name}={value} needs at least {n_needed} (the sample itself plus {value} neighbours)"
        fix = f"Set {name} <= {n_class - 1}"
    else:
        what = (
            f"{name} has n_neighbors={n_needed} (the sample itself plus "
            f"{n_needed - 1} neighbours), which needs at least {n_needed}"
        )
        fix = f"Set its n_neighbors <= {n_class}"
    msg = (
        f"Class {label!r} has {n_class} samples but {what}. {fix}, or leave "
        "this class out of sampling_strategy."
    )
    raise ValueError(msg)
