"""Penalized quasi-likelihood, as MASS's ``glmmPQL`` (Breslow & Clayton 1993; Venables & Ripley 2002,
section 10.4): a linear mixed model on the working response with the working weights, iterated.

``glmmPQL`` starts from R's ``glm`` without random effects (its working weights of the last IRLS
iteration and the working response at its estimates), then repeats: fit the LMM ``z ~ X + random`` by
maximum likelihood with prior weights ``w`` (nlme's ``lme(method = "ML", weights = varFixed(~1/w))``;
here the library's lmer engine, :func:`..lmm.fitting.assemble` and :func:`..lmm.fitting.fit`), take
its linear predictor ``eta`` (random effects and offset included) and stop once
``sum((eta - eta_old)^2) < 1e-6 sum(eta^2)``, else make the working response ``eta - offset + (y -
mu) / mu_eta`` and weights ``prior mu_eta^2 / V(mu)`` at ``eta`` and fit again (at most 10 fits).  The
same steps give glmmPQL's numbers; the rule stops ~1e-3 (relative, in eta) short of the fixed point, so
a fit iterated to convergence would differ from glmmPQL's by about that much.

There is no likelihood: as glmmPQL's, ``loglik`` is NaN (and so are AIC and BIC).  The t tests of the
fixed effects are those of glmmPQL's ``summary`` (an lme fit's): nlme's inner-outer denominator df,
which need the grouping factors to be nested, as glmmPQL's ``random =`` levels are.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import numpy as np
import pandas as pd

from ...data.frame import ModelFrame
from ...engine.families import Family
from ...engine.optimize import OptimizerControl
from ...engine.pirls import GlmRows
from ...errors import check_choice
from .. import predictions
from ..lmm.fitting import assemble, fit
from ..lmm.results import LinearMixedModel
from ..nlme.fixdf import fixed_effects_df, t_table, term_columns
from ..nlme.groups import sort_order

__all__ = ["PenalizedQuasiLikelihoodFit", "fit_pql"]

MAX_FITS = 10  # glmmPQL's niter
ETA_TOL = 1e-6  # glmmPQL: stop when sum((eta - eta_old)^2) < 1e-6 sum(eta^2)
GLM_EPSILON = 1e-8  # glm.control's epsilon
GLM_MAXIT = 25  # glm.control's maxit


def glm_working_start(family: Family, rows: GlmRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's ``glm.fit`` without random effects, as glmmPQL's start: the linear predictor at the estimates,
    the working response there and the working weights of the last IRLS iteration (``fit$weights``,
    made at the iteration's start), each iteration a weighted least-squares fit, until the deviance
    changes by less than ``1e-8 (|deviance| + 0.1)``."""
    eta = family.link.linkfun(family.mustart(rows.y, rows.prior_weights))
    deviance_old = family.deviance(rows.y, family.link.linkinv(eta), rows.prior_weights)
    for _ in range(GLM_MAXIT):
        response, weights = rows.working(family, eta, family.link.linkinv(eta))
        root = np.sqrt(weights)
        beta = np.linalg.lstsq(rows.x * root[:, None], response * root, rcond=None)[0]
        eta = rows.x @ beta + rows.offset
        mu = family.link.linkinv(eta)
        if not (family.link.valid_eta(eta) and family.valid_mu(mu)):
            raise ValueError(f"glmmPQL's start, a {family.name} glm, failed: invalid fitted means")
        deviance = family.deviance(rows.y, mu, rows.prior_weights)
        if abs(deviance - deviance_old) / (abs(deviance) + 0.1) < GLM_EPSILON:
            break
        deviance_old = deviance
    return eta, rows.working(family, eta, family.link.linkinv(eta))[0], weights


def fit_pql(
    frame: ModelFrame,
    family: Family,
    rows: GlmRows,
    formula_text: str,
    control: OptimizerControl | None = None,
) -> PenalizedQuasiLikelihoodFit:
    """glmmPQL's iteration on the rows of ``frame`` (see the module docstring)."""
    eta, response, weights = glm_working_start(family, rows)
    for fits in range(1, MAX_FITS + 1):  # noqa: B007 - the count is reported
        working_frame = replace(frame, y=response, weights=weights, offset=None)
        lmm = fit(assemble(working_frame, reml=False), control)
        eta_old, eta = eta, lmm.fitted.to_numpy() + rows.offset
        converged = np.sum((eta - eta_old) ** 2) < ETA_TOL * np.sum(eta**2)
        if converged:
            break
        response, weights = rows.working(family, eta, family.link.linkinv(eta))
    return PenalizedQuasiLikelihoodFit(lmm, family, rows, formula_text, fits, bool(converged))


def nested_level_codes(frame: ModelFrame) -> list[np.ndarray]:
    """The grouping codes of the random-effects terms as nlme's grouping levels, outermost (fewest
    groups) first: ``(1 | a/b)`` gives ``a`` and ``b:a``.  nlme's df need each level nested in the
    one outside it; crossed grouping factors are an error."""
    codes: dict[str, np.ndarray] = {}
    for term, block in zip(frame.terms, frame.blocks):
        codes.setdefault(term.group.name, block.codes)
    levels = sorted(codes.items(), key=lambda item: len(np.unique(item[1])))
    for (outer, outer_codes), (inner, inner_codes) in zip(levels, levels[1:]):
        pairs = np.unique(np.column_stack([inner_codes, outer_codes]), axis=0)
        if len(pairs) != len(np.unique(inner_codes)):
            raise ValueError(
                f"nlme's denominator df need nested grouping factors, as glmmPQL's random = levels; "
                f"{inner!r} is not nested in {outer!r}"
            )
    return [c for _, c in levels]


class PenalizedQuasiLikelihoodFit:
    """The result of glmmPQL's iteration: the last linear mixed model on the working response
    (``working_model``) and what the GLMM reads from it: ``fixef``, ``vcov``, ``std_errors``, ``ranef``,
    ``varcorr``, ``sigma`` (the working model's residual standard deviation), the linear predictor."""

    def __init__(
        self,
        working_model: LinearMixedModel,
        family: Family,
        rows: GlmRows,
        formula_text: str,
        iterations: int,
        converged: bool,
    ):
        self.working_model = working_model
        self.family = family
        self.rows = rows
        self.formula_text = formula_text
        self.iterations = iterations  # LMM fits made (glmmPQL's "iteration i" messages)
        self.converged = converged  # False when glmmPQL's 10 fits ended without meeting its rule
        self.loglik = float("nan")

    @property
    def fixef(self) -> pd.Series:
        return self.working_model.fixef

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, ``sigma^2 (R_X'R_X)^{-1}`` of the ML fit (``vcov`` of
        glmmPQL's fit)."""
        return self.working_model.vcov

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors as glmmPQL's ``summary`` (nlme's ``summary.lme``, ``adjustSigma = TRUE``):
        those of :attr:`vcov` times ``sqrt(n / (n - p))``, sigma on the REML scale."""
        n, p = self.working_model.nobs, self.working_model.n_fixed
        values = np.sqrt(np.diag(self.vcov.to_numpy()) * n / (n - p))
        return pd.Series(values, index=self.vcov.index, name="Std. Error")

    @cached_property
    def fixed_df(self) -> pd.Series:
        """nlme's inner-outer denominator df of each fixed effect (``getFixDF``), as glmmPQL's summary."""
        frame = self.working_model.frame
        codes = nested_level_codes(frame)
        order = sort_order(codes, frame.nobs)
        df, _ = fixed_effects_df(frame.x[order], [c[order] for c in codes], term_columns(frame))
        return pd.Series(df, index=frame.fixed_names, name="df")

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, df, t value and Pr(>|t|) of the fixed effects, as glmmPQL's ``summary``
        (nlme's Value, Std.Error, DF, t-value, p-value): :attr:`std_errors` and :attr:`fixed_df`."""
        return t_table(
            self.fixef.index.tolist(),
            self.fixef.to_numpy(),
            self.std_errors.to_numpy(),
            self.fixed_df.to_numpy(),
        )

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        return self.working_model.ranef

    @property
    def varcorr(self) -> pd.DataFrame:
        return self.working_model.varcorr

    @property
    def sigma(self) -> float:
        return self.working_model.sigma

    @property
    def working_response(self) -> np.ndarray:
        """The working response of the last fit (glmmPQL's ``zz``, offset taken out)."""
        return self.working_model.frame.y

    @property
    def working_weights(self) -> np.ndarray:
        """The working weights of the last fit (glmmPQL's ``1 / invwt``)."""
        return self.working_model.frame.weights

    @cached_property
    def fitted(self) -> pd.Series:
        """Fitted means ``g^{-1}(eta)``, random effects included."""
        return self.predict(type="response").rename("fitted")

    def predict(
        self,
        newdata=None,
        type: str = "link",  # noqa: A002
        re_form=None,
        allow_new_levels: bool = False,
        offset=None,
    ):
        """The linear predictor (``type="link"``) or means (``"response"``) of the data used or of
        ``newdata``, with all random effects or (``re_form="~0"``) none, as glmmPQL's ``predict`` at
        level 1 or 0; the offset of new data as :meth:`mixedmodels.LinearMixedModel.predict` (the
        formula's ``offset(...)`` and an ``offset=`` column evaluated on it, or ``offset`` given)."""
        type = check_choice("type", type, ("link", "response"))
        eta = self.working_model.predict(newdata, re_form, allow_new_levels, offset)
        if newdata is None:
            eta = eta + self.rows.offset
        return eta if type == "link" else predictions.on_response_scale(eta, self.family.link)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.formula_text!r} {self.family!r} by PQL, "
            f"{self.working_model.nobs} obs, {self.iterations} fits>"
        )
