"""Warnings that point at the user's line, whichever layer of smote_ann raised them."""

# License: BSD-3-Clause

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_at_caller(message, category=UserWarning):
    """Warn with the stack level of the first caller outside smote_ann.

    The call may come through `fit_resample`, a neighbours estimator fitted
    by a sampler, a streaming writer or the command line; the warning then
    points at the user's line in every case.
    """
    frame, stacklevel = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)
