"""mixedmodels: mixed-effects models for Python with lme4's formulas and numbers.

>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> print(m.summary())
"""

from . import datasets
from .aov import AovResult, aov
from .engine.optimize import ConvergenceWarning, OptimizerControl
from .formula import FormulaError
from .frame import ModelMessage
from .inference.comparison import anova
from .lmm import LinearMixedModel, lmer

__all__ = [
    "AovResult",
    "ConvergenceWarning",
    "FormulaError",
    "LinearMixedModel",
    "ModelMessage",
    "OptimizerControl",
    "anova",
    "aov",
    "datasets",
    "lmer",
]
__version__ = "0.1.0"
