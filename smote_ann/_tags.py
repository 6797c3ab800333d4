"""Sampler tags, shaped like imbalanced-learn's so its checks and tools read them.

imbalanced-learn is optional, so its tag classes are mirrored here instead of
imported: scikit-learn's ``Tags`` plus ``sampler_tags``, and ``InputTags``
plus ``dataframe``.
"""

# License: BSD-3-Clause

from dataclasses import dataclass, fields

from sklearn.utils import InputTags as _SklearnInputTags
from sklearn.utils import Tags as _SklearnTags


@dataclass(slots=True)
class InputTags(_SklearnInputTags):
    """scikit-learn's input tags plus whether a DataFrame is accepted."""

    dataframe: bool = True


@dataclass(slots=True)
class SamplerTags:
    """Sampler-specific tags (imbalanced-learn's)."""

    sample_indices: bool = False


@dataclass(slots=True)
class Tags(_SklearnTags):
    """scikit-learn's tags plus sampler tags."""

    sampler_tags: SamplerTags | None = None


def sampler_tags(base):
    """Turn scikit-learn's tags of a sampler into sampler tags."""
    values = {f.name: getattr(base, f.name) for f in fields(base)}
    values["input_tags"] = InputTags(
        **{f.name: getattr(base.input_tags, f.name) for f in fields(base.input_tags)}
    )
    values["estimator_type"] = "sampler"
    return Tags(**values, sampler_tags=SamplerTags())
