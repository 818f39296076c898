"""Generalized linear mixed models (lme4's ``glmer``): fitting and results."""

from .fitting import GeneralizedMixedProblem, assemble, fit, glmer
from .results import GeneralizedLinearMixedModel

__all__ = ["GeneralizedLinearMixedModel", "GeneralizedMixedProblem", "assemble", "fit", "glmer"]
