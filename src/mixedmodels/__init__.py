"""mixedmodels: mixed-effects models for Python with lme4's formulas and numbers.

>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> print(m.summary())
"""

from . import datasets, families
from .engine.optimize import OptimizerControl
from .errors import ConvergenceWarning, FitError, FormulaError, ModelMessage
from .inference.comparison import anova
from .models import nlme  # mm.nlme.anova: nlme's layout of the likelihood-ratio table
from .models.aov import AovResult, aov
from .models.glmm import (
    GeneralizedLinearMixedModel,
    NegativeBinomial2MixedModel,
    NegativeBinomialMixedModel,
    glmer,
    glmer_nb,
)
from .models.lmm import LinearMixedModel, lmer
from .models.nlme import (
    CorAR1,
    CorARMA,
    CorCAR1,
    CorCompSymm,
    CorExp,
    CorGaus,
    CorLin,
    CorRatio,
    CorSpher,
    CorSymm,
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarIdent,
    VarPower,
    gls,
    gls_known_covariance,
    lme,
)

__all__ = [
    "AovResult",
    "ConvergenceWarning",
    "CorAR1",
    "CorARMA",
    "CorCAR1",
    "CorCompSymm",
    "CorExp",
    "CorGaus",
    "CorLin",
    "CorRatio",
    "CorSpher",
    "CorSymm",
    "FitError",
    "FormulaError",
    "GeneralizedLinearMixedModel",
    "NegativeBinomialMixedModel",
    "NegativeBinomial2MixedModel",
    "LinearMixedModel",
    "ModelMessage",
    "OptimizerControl",
    "anova",
    "aov",
    "VarComb",
    "VarConstPower",
    "VarExp",
    "VarFixed",
    "VarIdent",
    "VarPower",
    "datasets",
    "families",
    "glmer",
    "glmer_nb",
    "gls",
    "gls_known_covariance",
    "lme",
    "lmer",
    "nlme",
]
__version__ = "0.1.0"
