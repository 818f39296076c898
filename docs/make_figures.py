"""Make the README's pictures: ``python docs/make_figures.py`` from the repository root."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mixedmodels as mm  # noqa: E402

orthodont = mm.lmer("distance ~ age * Sex + (1 | Subject)", mm.datasets.load("Orthodont"))
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
orthodont.plot.residuals(ax=left)
orthodont.plot.qq(ax=right)
figure.savefig("docs/orthodont_residuals.png", dpi=110)

sleepstudy = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
sleepstudy.plot.shrinkage().savefig("docs/sleepstudy_shrinkage.png", dpi=110)
