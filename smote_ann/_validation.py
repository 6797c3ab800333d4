"""Data-dependent checks shared by the estimators, and the pandas round trip."""

# License: BSD-3-Clause

import sys
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.preprocessing import label_binarize
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import validate_data

from ._readers import check_finite, float_copy_of_map, is_mapped


def _pandas_type(obj, name):
    pd = sys.modules.get("pandas")  # pandas is optional: never import it here
    return pd is not None and isinstance(obj, getattr(pd, name))


class OutputFormatter:
    """Give resampled arrays the container type of the input (imbalanced-learn's rule).

    A DataFrame X comes back as a DataFrame with the same columns and dtypes,
    a Series or DataFrame y as the same with the same name(s) and dtype, a list
    as a list, and a one-vs-all encoded y in the same encoding.
    """

    def __init__(self, X, y):
        self.x_kind = _kind(X)
        self.columns = X.columns if self.x_kind == "DataFrame" else None
        self.x_dtypes = X.dtypes if self.x_kind == "DataFrame" else None
        self.y_kind = _kind(y)
        self.y_name = getattr(y, "name", None)
        self.y_columns = y.columns if self.y_kind == "DataFrame" else None
        self.y_dtype = getattr(y, "dtype", None) if self.y_kind == "Series" else None
        self.ova_classes = None  # set by check_sampler_input for one-vs-all y

    def __call__(self, X_res, y_res):
        if self.ova_classes is not None:
            y_res = label_binarize(y_res, classes=self.ova_classes)
        if self.x_kind == "DataFrame":
            import pandas as pd

            X_res = pd.DataFrame(X_res, columns=self.columns).astype(self.x_dtypes)
        elif self.x_kind == "list":
            X_res = X_res.tolist()
        if self.y_kind in ("Series", "DataFrame"):
            import pandas as pd

            if self.y_kind == "Series":
                y_res = pd.Series(y_res, name=self.y_name, dtype=self.y_dtype)
            else:
                y_res = pd.DataFrame(np.reshape(y_res, (len(y_res), -1)), columns=self.y_columns)
            if self.x_kind == "DataFrame":
                y_res.index = X_res.index
        elif self.y_kind == "list":
            y_res = y_res.tolist()
        return X_res, y_res


def _kind(obj):
    if isinstance(obj, list):
        return "list"
    for name in ("DataFrame", "Series"):
        if _pandas_type(obj, name):
            return name
    return "array"


def check_sampler_input(estimator, X, y, formatter=None):
    """Validate X and y for a sampler; X keeps a float dtype, y becomes 1-D.

    A one-vs-all encoded y (one 1 per row) is decoded as imbalanced-learn
    does, and `formatter` told to encode the output back.
    """
    if y is None:
        msg = f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        raise ValueError(msg)
    if _pandas_type(X, "DataFrame"):
        # pandas sparse columns are densified column by column (the rest untouched)
        sparse = {c: d.subtype for c, d in X.dtypes.items() if hasattr(d, "subtype")
                  and getattr(d, "name", "").startswith("Sparse")}
        if sparse:
            X = X.astype(sparse)
    y_array = np.asarray(y)
    if y_array.ndim == 2 and y_array.shape[1] > 1:
        if type_of_target(y_array) != "multilabel-indicator" or np.any(y_array.sum(axis=1) != 1):
            msg = (
                f"y has shape {y_array.shape}: multilabel and multioutput targets "
                "are not supported. Pass a 1-D array of class labels (or a one-vs-all "
                "encoding with exactly one 1 per row)."
            )
            raise ValueError(msg)
        if formatter is not None:
            formatter.ova_classes = np.arange(y_array.shape[1])
        y = y_array.argmax(axis=1)
    # float32 stays float32 whatever its byte order, as in imbalanced-learn;
    # other numbers become float64
    x_dtype = getattr(X, "dtype", None)
    is_float32 = isinstance(x_dtype, np.dtype) and x_dtype.kind == "f" and x_dtype.itemsize == 4
    if is_mapped(X) and X.dtype not in (np.float32, np.float64):
        # converted a window at a time into a mapped copy, never whole in memory
        X = float_copy_of_map(X, np.float32 if is_float32 else np.float64)
    # A float memory map is checked a chunk at a time so that it does not all
    # stay resident (smote_ann._readers); other inputs as scikit-learn does.
    mapped = is_mapped(X) and X.dtype in (np.float32, np.float64)
    X, y = validate_data(
        estimator,
        X,
        y,
        reset=True,
        accept_sparse=False,
        dtype=np.float32 if is_float32 else [np.float64, np.float32],
        ensure_all_finite=not mapped,
    )
    if mapped:
        check_finite(X, estimator_name=type(estimator).__name__)
    _check_one_label_type(y)
    check_classification_targets(y)
    return X, y


def _check_one_label_type(y):
    """Refuse object labels that mix kinds (numbers and strings cannot be sorted)."""
    if y.dtype != object:
        return
    kinds = {"number" if isinstance(v, (Integral, float, np.number)) and not isinstance(v, bool)
             else type(v).__name__ for v in y.tolist()}
    if len(kinds) > 1:
        msg = (
            f"y mixes labels of different types ({', '.join(sorted(kinds))}), which "
            "cannot be compared. Give labels of one type, e.g. y.astype(str)."
        )
        raise ValueError(msg)


def check_neighbors_object(name, value, additional_neighbor, default_factory, seed=None):
    """An unfitted neighbours estimator for the parameter `name`.

    An int ``k`` gives ``default_factory(k + additional_neighbor)``; an object
    with ``kneighbors`` and ``kneighbors_graph`` is cloned, so the user's object
    is never fitted or modified. A clone whose ``random_state`` is None gets
    `seed` (derived from the sampler's ``random_state``), so that an
    approximate index, and so the output, is the same for the same seed.
    """
    if isinstance(value, Integral):
        nn = default_factory(int(value) + additional_neighbor)
    else:
        nn = clone(value)
    params = nn.get_params(deep=False) if hasattr(nn, "get_params") else {}
    if seed is not None and "random_state" in params and params["random_state"] is None:
        nn.set_params(random_state=seed)
    return nn


def check_class_size(label, n_class, nn, name, value):
    """Raise if a class is too small for its neighbours estimator."""
    if n_class < 2:
        msg = (
            f"Class {label!r} has {n_class} sample; synthetic samples are drawn "
            "between a sample and its neighbours of the same class, so at least 2 "
            "are needed. Leave this class out of sampling_strategy."
        )
        raise ValueError(msg)
    check_size(f"Class {label!r}", n_class, nn, name, value,
               ", or leave this class out of sampling_strategy")


def check_size(subject, n_samples, nn, name, value, hint=""):
    """Raise if `subject` has fewer samples than `nn` (built from `name`=`value`) needs."""
    n_needed = getattr(nn, "n_neighbors", None)
    if n_needed is None or n_samples >= n_needed:
        return
    if isinstance(value, Integral):
        what = f"{name}={value} needs at least {n_needed} (the sample itself plus {value} neighbours)"
        fix = f"Set {name} <= {n_samples - 1}"
    else:
        what = (
            f"{name} has n_neighbors={n_needed} (the sample itself plus "
            f"{n_needed - 1} neighbours), which needs at least {n_needed}"
        )
        fix = f"Set its n_neighbors <= {n_samples}"
    msg = f"{subject} has {n_samples} samples but {what}. {fix}{hint}."
    raise ValueError(msg)
