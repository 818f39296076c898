"""The random effects of a fitted mixed model, shared by the linear and generalized families: variance
components, conditional modes and their conditional variances (lme4's ``VarCorr``, ``ranef(condVar =
TRUE)`` and ``coef``).

A model class using :class:`RandomEffectsResults` defines ``frame``, ``lambdas`` (each term's relative
covariance factor T_k), ``_spherical`` (the spherical random effects u per term), ``sigma``, ``chol``
(the blocked Cholesky factor at the estimates), ``is_singular`` and ``has_residual_variance``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

__all__ = ["RandomEffectsResults", "per_level_records"]


class RandomEffectsResults:
    """Variance components, conditional modes b = T u and conditional variances of a fit."""

    has_residual_variance = True  # VarCorr's "Residual" row (not for a binomial or Poisson GLMM)

    def _fit_messages(self) -> list[str]:
        """The model frame's messages, and lme4's note on a boundary (singular) fit."""
        messages = list(self.frame.messages)
        if self.is_singular:
            messages.append("boundary (singular) fit: see help(is_singular)")
        return messages

    @property
    def ngroups(self) -> dict[str, int]:
        return {name: self.frame.terms[ks[0]].group.nlevels for name, ks in self._terms_by_group().items()}

    # -- variance components ---------------------------------------------------------------------------------
    def _term_group_names(self) -> list[str]:
        """lme4's group labels in VarCorr: repeated factors get ``.1``, ``.2`` (R's make.unique)."""
        seen: dict[str, int] = {}
        names = []
        for term in self.frame.terms:
            name = term.group.name
            count = seen.get(name, 0)
            names.append(name if count == 0 else f"{name}.{count}")
            seen[name] = count + 1
        return names

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variances, covariances, standard deviations and correlations of the random effects.

        Rows in the order of R's ``as.data.frame(VarCorr(m))``: per term its variances, then its
        covariances, and the residual last.
        """
        rows = []
        s2 = self.sigma**2
        for term, group, t in zip(self.frame.terms, self._term_group_names(), self.lambdas):
            cov = s2 * t @ t.T
            sd = np.sqrt(np.diag(cov))
            names = term.column_names
            for a, name in enumerate(names):
                rows.append((group, name, None, cov[a, a], sd[a]))
            for a in range(len(names)):
                for b in range(a + 1, len(names)):
                    corr = cov[a, b] / (sd[a] * sd[b]) if sd[a] > 0 and sd[b] > 0 else np.nan
                    rows.append((group, names[a], names[b], cov[a, b], corr))
        if self.has_residual_variance:
            rows.append(("Residual", None, None, s2, np.sqrt(s2)))
        return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])

    # -- random effects --------------------------------------------------------------------------------------
    @cached_property
    def term_effects(self) -> list[np.ndarray]:
        """Conditional modes b of each term as (nlevels, p) arrays."""
        effects = []
        for term, t, u in zip(self.frame.terms, self.lambdas, self._spherical):
            effects.append(u.reshape(term.group.nlevels, term.ncols) @ t.T)
        return effects

    def _terms_by_group(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for k, term in enumerate(self.frame.terms):
            groups.setdefault(term.group.name, []).append(k)
        return groups

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: grouping factor -> DataFrame (levels x terms)."""
        result = {}
        for name, ks in self._terms_by_group().items():
            group = self.frame.terms[ks[0]].group
            blocks = [
                pd.DataFrame(self.term_effects[k], columns=self.frame.terms[k].column_names) for k in ks
            ]
            frame = pd.concat(blocks, axis=1)
            frame.index = group.levels.copy()
            frame.index.name = name
            result[name] = frame
        return result

    @cached_property
    def ranef_condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariances of the random effects: factor -> array (levels, q, q).

        As lme4's ``condVar``: the covariance of b given y at the estimated theta, beta and sigma,
        sigma^2 Lambda (Lambda'Z'WZ Lambda + I)^{-1} Lambda', per level.  Columns follow ``ranef``.
        """
        chol = self.chol
        s2 = self.sigma**2
        lambdas = self.lambdas
        result = {}
        for name, ks in self._terms_by_group().items():
            sizes = [self.frame.terms[k].ncols for k in ks]
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            nlevels = self.frame.terms[ks[0]].group.nlevels
            out = np.zeros((nlevels, offsets[-1], offsets[-1]))
            for a, ka in enumerate(ks):
                for b, kb in enumerate(ks):
                    if b < a:
                        continue
                    spherical = chol.conditional_covariance_blocks(ka, kb)
                    block = s2 * np.einsum("ij,kjl,ml->kim", lambdas[ka], spherical, lambdas[kb])
                    out[:, offsets[a] : offsets[a + 1], offsets[b] : offsets[b + 1]] = block
                    out[:, offsets[b] : offsets[b + 1], offsets[a] : offsets[a + 1]] = block.transpose(
                        0, 2, 1
                    )
            result[name] = out
        return result

    @cached_property
    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-level coefficients: fixed effects plus the level's random effects (lme4's ``coef``)."""
        fixef = self.fixef
        result = {}
        for name, effects in self.ranef.items():
            table = pd.DataFrame(
                np.tile(fixef.to_numpy(), (len(effects), 1)), index=effects.index, columns=fixef.index
            )
            for column in effects.columns:
                if column in table.columns:
                    table[column] = table[column] + effects[column]
                else:
                    table[column] = effects[column]
            result[name] = table
        return result


def per_level_records(tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, dict]]:
    """grouping factor -> level -> column -> value, for JSON."""
    return {g: {str(k): v for k, v in df.to_dict(orient="index").items()} for g, df in tables.items()}
