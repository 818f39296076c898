"""Numerical kernels for linear mixed models: arrays in, arrays out, no pandas and no formulas.

The layout follows Bates et al. (2015, J. Stat. Softw. 67(1)) and MixedModels.jl: one pass over the rows
builds the blocks of [Z X y]'[Z X y] (:mod:`crossprod`); the profiled objective is then evaluated from a
blocked Cholesky factor of those blocks (:mod:`cholesky`, :mod:`deviance`) at a cost that does not grow
with the number of rows.
"""
