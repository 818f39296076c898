"""The results of an lme fit (nlme's ``lme``): random effects, fitted values at each level, ``vcov.lme``,
nlme's inner-outer degrees of freedom and intervals."""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd

from ...errors import FitError, check_integer, check_probability
from .likelihood import natural_covariance, split_natural
from .results import NlmeModel

__all__ = ["LMEModel"]


class LMEModel(NlmeModel):
    """A fitted lme model; see :func:`lme`."""

    kind = "lme"

    def _estimate(self) -> None:
        """The blocked Cholesky solve at the parameters: beta, sigma, the criterion, the random effects."""
        likelihood = self.likelihood
        result = likelihood.chol_at(self._params)
        if result is None:
            raise FitError("the estimates give a singular system")
        chol, _ = result
        self._chol = chol
        self._criterion = likelihood.deviance(self._params)
        beta, spherical = chol.solve()
        self._beta = beta
        self._sigma = math.sqrt(chol.pwrss() / likelihood.nr)
        self._theta = self._params[: likelihood.n_theta]
        lambdas = likelihood.lambdas(self._theta)
        self._effects = [
            u.reshape(nlevels, ncols) @ f.T
            for nlevels, ncols, f, u in zip(likelihood.nlevels, likelihood.ncols, lambdas, spherical)
        ]
        self._lambdas = lambdas

    # -- random effects --------------------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """lme4's relative covariance parameters of the random-effects terms (frame's term order)."""
        return self._theta.copy()

    @property
    def covariances(self):
        """The covariance parameterization of each random-effects term (unstructured, as nlme's)."""
        return self.likelihood.covariances

    @property
    def lambdas(self) -> list[np.ndarray]:
        """Each term's relative covariance factor at the fit (its random effects' covariance / sigma^2
        is ``lambda_ @ lambda_.T``)."""
        return self._lambdas

    @property
    def levels(self):
        """nlme's grouping levels, outermost first."""
        return self.data.levels

    @property
    def ngroups(self) -> dict[str, int]:
        return {level.name: self.frame.terms[level.term_indices[0]].group.nlevels for level in self.levels}

    def _term_covariance(self, k: int) -> np.ndarray:
        t = self._lambdas[k]
        return self._sigma**2 * t @ t.T

    def random_terms(self) -> list:
        """The random-effects terms (in the sorted row order) and their covariances G_k."""
        order = self.data.order
        return [(block.rows(order), self._term_covariance(k)) for k, block in enumerate(self.frame.blocks)]

    @property
    def random_covariance(self) -> dict[str, pd.DataFrame]:
        """Covariance matrix of the random effects of each grouping level (``getVarCov``)."""
        out = {}
        for level in self.levels:
            names = [n for k in level.term_indices for n in self.frame.terms[k].column_names]
            cov = np.zeros((len(names), len(names)))
            start = 0
            for k in level.term_indices:
                q = self.frame.terms[k].ncols
                cov[start : start + q, start : start + q] = self._term_covariance(k)
                start += q
            out[level.name] = pd.DataFrame(cov, index=names, columns=names)
        return out

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variances, covariances, SDs and correlations of the random effects and the residual, in the
        layout of lmer's ``varcorr`` (outermost level first)."""
        rows = []
        for level in self.levels:
            for k in level.term_indices:
                cov = self._term_covariance(k)
                names = self.frame.terms[k].column_names
                sd = np.sqrt(np.diag(cov))
                for a, name in enumerate(names):
                    rows.append((level.name, name, None, cov[a, a], sd[a]))
                for a in range(len(names)):
                    for b in range(a + 1, len(names)):
                        rows.append((level.name, names[a], names[b], cov[a, b], cov[a, b] / (sd[a] * sd[b])))
        rows.append(("Residual", None, None, self._sigma**2, self._sigma))
        return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes (BLUPs) of the random effects, by level (outermost first); rows are the
        groups in nlme's order and labels (``"I/Victory"`` for nested levels)."""
        out = {}
        order = self.data.order
        for level in self.levels:
            codes = self.frame.blocks[level.term_indices[0]].codes[order]
            first = np.unique(codes, return_index=True)[1]
            appearance = codes[np.sort(first)]
            labels = level.labels[appearance]
            blocks = [
                pd.DataFrame(self._effects[k][appearance], columns=self.frame.terms[k].column_names)
                for k in level.term_indices
            ]
            table = pd.concat(blocks, axis=1)
            table.index = pd.Index(labels, name=level.name)
            out[level.name] = table
        return out

    @property
    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-group coefficients: fixed effects plus the group's random effects (each level)."""
        out = {}
        for name, effects in self.ranef.items():
            table = pd.DataFrame(
                np.tile(self._beta, (len(effects), 1)), index=effects.index, columns=self.frame.fixed_names
            )
            for column in effects.columns:
                table[column] = table[column] + effects[column] if column in table else effects[column]
            out[name] = table
        return out

    # -- fitted values ---------------------------------------------------------------------------------
    def _checked_level(self, level: int | None) -> int:
        """``level`` (None: the innermost), checked to be 0 (fixed effects only) to the number of levels."""
        if level is None:
            return len(self.levels)
        level = check_integer("level", level, minimum=0)
        if level > len(self.levels):
            raise ValueError(f"level must be between 0 and {len(self.levels)} (grouping levels), not {level}")
        return level

    def _add_random_effects(self, values: np.ndarray, level: int, block) -> np.ndarray:
        """``values`` plus z'b of every term of the outermost ``level`` levels; ``block(k)`` gives term k's
        :class:`ReBlock` of the rows, codes -1 (groups not in the fit) giving NaN."""
        for lev in self.levels[:level]:
            for k in lev.term_indices:
                rows = block(k)
                effects = self._effects[k][np.maximum(rows.codes, 0)]
                values = values + np.where(rows.codes >= 0, np.einsum("nq,nq->n", rows.z, effects), np.nan)
        return values

    def _fitted_values(self, level: int | None = None) -> np.ndarray:
        """Fitted values in frame order at ``level`` (0 = fixed effects only, default innermost)."""
        return self._add_random_effects(
            self.frame.x @ self._beta, self._checked_level(level), self.frame.blocks.__getitem__
        )

    def _fitted_sorted_innermost(self) -> np.ndarray:
        return self._fitted_values()[self.data.order]

    @property
    def fitted(self) -> pd.Series:
        """Fitted values at the innermost level, indexed like the rows used from the input."""
        return pd.Series(self._fitted_values(), index=self._index, name="fitted")

    def fitted_levels(self) -> pd.DataFrame:
        """Fitted values at every level: ``fixed`` and one column per grouping level (``fitted(m, 0:Q)``)."""
        columns = {"fixed": self._fitted_values(0)}
        for i, level in enumerate(self.levels, start=1):
            columns[level.name] = self._fitted_values(i)
        return pd.DataFrame(columns, index=self._index)

    def predict(self, newdata=None, level: int | None = None) -> pd.Series:
        """Predictions at ``level`` (0 = population, default innermost) for the fit's rows or ``newdata``.

        As nlme, rows of groups not seen in the fit are NaN at levels that include those groups.  New data
        are materialized with the model spec alone (``frame.spec``), not the fit's rows.
        """
        if newdata is None:
            return pd.Series(self._fitted_values(level), index=self._index, name="predicted")
        level = self._checked_level(level)
        spec = self.frame.spec
        random = tuple(spec.terms[k].term for lev in self.levels[:level] for k in lev.term_indices)
        data, leveled = spec.new_data(newdata, random)
        values = self._add_random_effects(
            spec.fixed_matrix(leveled) @ self._beta,
            level,
            lambda k: spec.terms[k].block(data, leveled),
        )
        return pd.Series(values, index=data.index, name="predicted")

    # -- inference ----------------------------------------------------------------------------------------
    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, sigma^2 (R_X'R_X)^-1 (nlme's ``vcov.lme``)."""
        cov = self._sigma**2 * self._chol.inverse_fixed_crossprod()
        names = self.frame.fixed_names
        return pd.DataFrame(cov, index=names, columns=names)

    @cached_property
    def _nlme_df(self) -> tuple[np.ndarray, dict[str, float]]:
        """nlme's inner-outer denominator df (``getFixDF``) of the fixed effects and of the terms."""
        from .fixdf import fixed_effects_df, term_columns

        order = self.data.order
        codes = [self.frame.blocks[level.term_indices[0]].codes[order] for level in self.levels]
        return fixed_effects_df(self.data.x, codes, term_columns(self.frame))

    @property
    def wald_vcov(self) -> pd.DataFrame:
        """The covariance of the fixed effects nlme's t and F tests use: ``vcov``, for ML fits scaled by
        N / (N - p) (nlme's ``adjustSigma``)."""
        return self.vcov if self.reml else self.vcov * (self.nobs / (self.nobs - self.n_fixed))

    @property
    def n_variance_params(self) -> int:
        return self.likelihood.n_theta + self.residual.n_params

    def _natural_random(self) -> np.ndarray:
        return np.concatenate([natural_covariance(self._term_covariance(k)) for k in self._apvar_terms()])

    def _apvar_terms(self) -> list[int]:
        """Terms in nlme's reStruct order: innermost level first."""
        return [k for level in reversed(self.levels) for k in level.term_indices]

    def _split_apvar(self, natural: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """The random-effects blocks of an apVar vector by term, and the rest of it."""
        terms = self._apvar_terms()
        blocks, rest = split_natural(natural, [self.frame.terms[k].ncols for k in terms])
        return dict(zip(terms, blocks)), rest

    def _block_names(self, k: int) -> list[str]:
        """Names of term k's pdNatural parameters: sd(column) ..., cor(column,column) ..."""
        columns = self.frame.terms[k].column_names
        pairs = zip(*np.triu_indices(len(columns), 1))
        return [f"sd({c})" for c in columns] + [f"cor({columns[a]},{columns[b]})" for a, b in pairs]

    def _level_names(self) -> dict[int, str]:
        """The grouping level of each term."""
        return {k: level.name for level in self.levels for k in level.term_indices}

    def _random_natural_names(self) -> list[str]:
        levels = self._level_names()
        return [f"{name}|{levels[k]}" for k in self._apvar_terms() for name in self._block_names(k)]

    def _loglik_sigma(self, natural):
        permuted = self._to_theta_order(natural)
        sizes = [self.frame.terms[k].ncols for k in range(len(self.frame.terms))]
        return self.likelihood.loglik_sigma(permuted, sizes)

    def _to_theta_order(self, natural: np.ndarray) -> np.ndarray:
        """The apVar vector (terms innermost level first) with its random part in the model's term order."""
        blocks, rest = self._split_apvar(natural)
        return np.concatenate([blocks[k] for k in range(len(self.frame.terms))] + [rest])

    def _random_intervals(self, bounds) -> dict[str, object]:
        blocks_of_bound = {key: self._split_apvar(values)[0] for key, values in bounds.items()}
        levels = self._level_names()
        per_level: dict[str, list[pd.DataFrame]] = {}
        for k in self._apvar_terms():
            q = self.frame.terms[k].ncols
            table = {
                key: np.concatenate([np.exp(blocks[k][:q]), np.tanh(blocks[k][q:] / 2)])
                for key, blocks in blocks_of_bound.items()
            }
            per_level.setdefault(levels[k], []).append(pd.DataFrame(table, index=self._block_names(k)))
        return {"reStruct": {level.name: pd.concat(per_level[level.name]) for level in self.levels}}

    def intervals(self, level: float = 0.95) -> dict[str, object]:
        """nlme's ``intervals.lme``: {"fixed", "reStruct": {level: table}, "corStruct", "varStruct",
        "sigma"}, each with columns lower, est., upper."""
        level = check_probability("level", level)
        out: dict[str, object] = {"fixed": self._coef_intervals(level, self.fixed_df.to_numpy())}
        out.update(self._variance_intervals(level))
        return out

    def to_dict(self) -> dict:
        """The results as plain Python types (for JSON), with the random effects' groups and variances."""
        return super().to_dict() | {
            "ngroups": self.ngroups,
            "varcorr": self.varcorr.replace({np.nan: None}).to_dict(orient="records"),
        }
