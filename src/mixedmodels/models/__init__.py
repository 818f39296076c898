"""Fitted models, one family per module: what every family's results share (:mod:`.base`), the linear
mixed model (:mod:`.lmm`, with :mod:`.predictions`), nlme's gls and lme (:mod:`.nlme`) and the classical
ANOVA of designed experiments (:mod:`.aov`)."""
