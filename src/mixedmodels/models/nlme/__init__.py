"""nlme's model family: gls and lme with variance functions and correlation structures.

>>> import mixedmodels as mm
>>> ovary = mm.datasets.load("Ovary")
>>> m = mm.gls("follicles ~ Time", ovary, correlation=mm.CorAR1("~ 1 | Mare"))
"""

from .anova import anova
from .arma import CorARMA
from .corstruct import CorAR1, CorCAR1, CorCompSymm, CorStruct, CorSymm
from .known import KnownCovarianceGLS, gls_known_covariance
from .models import GLSModel, LMEModel, gls, lme
from .spatial import CorExp, CorGaus, CorLin, CorRatio, CorSpher
from .varfunc import VarComb, VarConstPower, VarExp, VarFixed, VarFunc, VarIdent, VarPower

__all__ = [
    "CorAR1",
    "CorARMA",
    "CorCAR1",
    "CorCompSymm",
    "CorExp",
    "CorGaus",
    "CorLin",
    "CorRatio",
    "CorSpher",
    "CorStruct",
    "CorSymm",
    "GLSModel",
    "KnownCovarianceGLS",
    "LMEModel",
    "VarComb",
    "VarConstPower",
    "VarExp",
    "VarFixed",
    "VarFunc",
    "VarIdent",
    "VarPower",
    "anova",
    "gls",
    "gls_known_covariance",
    "lme",
]
