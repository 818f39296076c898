## Reference fits for structured random-effects covariances (us, diag, cs, ar1, toep) from glmmTMB.
##
## Run from the repository root:  Rscript tools/reference_structured.R
## Writes tests/fixtures/structured/<name>.json with logLik, fixed effects and their covariance, the
## residual standard deviation and each term's random-effects covariance matrix.  glmmTMB fits by ML
## unless REML = TRUE; nlminb runs with tight tolerances.

source(file.path("tools", "reference_common.R"))
suppressPackageStartupMessages(library(glmmTMB))

out_dir <- file.path("tests", "fixtures", "structured")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-12))

specs <- list(
  list(name = "sleepstudy_us", data = "sleepstudy", formula = "Reaction ~ Days + us(Days | Subject)", reml = FALSE),
  list(name = "sleepstudy_diag", data = "sleepstudy", formula = "Reaction ~ Days + diag(Days | Subject)", reml = FALSE),
  list(name = "sleepstudy_cs", data = "sleepstudy", formula = "Reaction ~ Days + cs(Days | Subject)", reml = FALSE),
  list(name = "sleepstudy_diag_reml", data = "sleepstudy", formula = "Reaction ~ Days + diag(Days | Subject)", reml = TRUE),
  list(name = "machines_us", data = "Machines", formula = "score ~ Machine + us(0 + Machine | Worker)", reml = FALSE),
  list(name = "machines_diag", data = "Machines", formula = "score ~ Machine + diag(0 + Machine | Worker)", reml = FALSE),
  list(name = "machines_cs", data = "Machines", formula = "score ~ Machine + cs(0 + Machine | Worker)", reml = FALSE),
  list(name = "machines_ar1", data = "Machines", formula = "score ~ Machine + ar1(0 + Machine | Worker)", reml = FALSE),
  list(name = "machines_toep", data = "Machines", formula = "score ~ Machine + toep(0 + Machine | Worker)", reml = FALSE),
  list(name = "machines_cs_reml", data = "Machines", formula = "score ~ Machine + cs(0 + Machine | Worker)", reml = TRUE)
)

for (s in specs) {
  d <- read_dataset(s$data)
  fit <- glmmTMB(as.formula(s$formula), data = d, REML = s$reml, control = tight)
  vc <- VarCorr(fit)$cond
  terms <- lapply(names(vc), function(g) list(group = g, names = arr(colnames(vc[[g]])),
                                              covariance = rows_of(vc[[g]])))
  fe <- fixef(fit)$cond
  write_fixture(list(
    name = s$name, dataset = s$data, formula = s$formula, reml = s$reml,
    versions = paste(R.version.string, "; glmmTMB", format(packageVersion("glmmTMB"))),
    convergence = fit$fit$convergence,
    loglik = as.numeric(logLik(fit)), aic = AIC(fit), bic = BIC(fit),
    fixef = list(names = arr(names(fe)), values = arr(fe)),
    vcov = rows_of(vcov(fit)$cond), sigma = sigma(fit), terms = terms
  ), file.path(out_dir, paste0(s$name, ".json")))
  cat(s$name, "logLik", format(as.numeric(logLik(fit)), digits = 12), "\n")
}
