## Reference values for anova() of one gls or lme fit (nlme 3.1-162): the F
## tests of the fixed-effects terms (type = "sequential" and "marginal") and
## of linear combinations (L = ...), written as JSON test fixtures.
##
## Run from the repository root:
##     Rscript tools/reference_nlme_anova.R
## Writes tests/fixtures/nlme_anova/<model>.json, one per row of `tests`: the
## model's name (a row of `models` in reference_nlme_models.R, fitted with the
## tight settings of reference_nlme.R and, for lme, also by BFGS; below) and one
## table per anova() call.

source(file.path("tools", "reference_nlme_models.R"))

anova_dir <- file.path("tests", "fixtures", "nlme_anova")
dir.create(anova_dir, recursive = TRUE, showWarnings = FALSE)

## model -> list of anova() argument lists (type or L; L's columns named by
## coefficient, one row per hypothesis).
seq_marg <- list(list(type = "sequential"), list(type = "marginal"))
tests <- list(
  lme_orthodont_slope = c(seq_marg, list(list(L = t(c(age = 1, `age:SexFemale` = 1))))),
  lme_orthodont_intercept_ml = seq_marg,
  lme_orthodont_ar1 = seq_marg,
  lme_orthodont_ar1_ml = seq_marg,
  lme_orthodont_ident = seq_marg,
  lme_ovary_car1 = seq_marg,
  lme_hetero_exp_ar1 = c(seq_marg, list(list(L = rbind(c(time = 1, `time:dose` = 0), c(0, 1))))),
  lme_bodyweight_ratio = c(seq_marg, list(list(L = rbind(c(Diet2 = 1, Diet3 = 0), c(-1, 1))))),
  lme_oats_nested = seq_marg,
  lme_spatial_exp = seq_marg,
  gls_orthodont_ident_sex = seq_marg,
  gls_orthodont_fixed = c(seq_marg, list(list(L = t(c(SexFemale = 1, `age:SexFemale` = 8))))),
  gls_ovary_ar1_ml = seq_marg,
  gls_hetero_exp_ar1 = c(seq_marg, list(list(L = rbind(c(time = 1, dose = 0, `time:dose` = 0), c(0, 1, 2)))))
)

## One anova() table with the exact upper tail of F next to nlme's p-value
## (nlme's lme tables compute 1 - pf(F), which is 0 below about 1e-16).
anova_of <- function(m, args) {
  tab <- do.call(anova, c(list(m), args))
  out <- list(table = table_of(as.data.frame(tab)))
  den <- if ("denDF" %in% names(tab)) tab$denDF else m$dims$N - m$dims$p
  out$p_upper <- arr(pf(tab$`F-value`, tab$numDF, den, lower.tail = FALSE))
  out$denDF <- arr(as.double(den))
  if (!is.null(args$type)) out$type <- args$type
  if (!is.null(args$L)) out$L <- list(colnames = arr(colnames(args$L)), values = rows_of(args$L))
  out
}

## The F tests move with the weakly determined variance parameters (a change of
## 1e-11 in the log-likelihood moves F by ~1e-7), so lme fits are also redone
## with optim's BFGS at its tightest tolerance, and the fit with the higher
## log-likelihood is kept.
fit_tightest <- function(s, d) {
  m <- fit_tight(s, d)$model
  if (!inherits(m, "lme")) return(m)
  cl <- s$call
  cl$control <- lmeControl(opt = "optim", msMaxIter = 10000, msTol = 1e-16, returnObject = TRUE)
  bfgs <- suppressWarnings(eval(cl))
  if (c(logLik(bfgs)) > c(logLik(m))) bfgs else m
}

for (name in names(tests)) {
  s <- models[[name]]
  d <- nlme_data(s)
  m <- fit_tightest(s, d)
  fx <- list(name = name, call = paste(deparse(s$call, width.cutoff = 500), collapse = " "),
             method = m$method, logLik = c(logLik(m)),
             anova = lapply(tests[[name]], function(args) anova_of(m, args)),
             versions = paste(R.version.string, "; nlme", format(packageVersion("nlme")),
                              "; jsonlite", format(packageVersion("jsonlite"))))
  write_fixture(fx, file.path(anova_dir, paste0(name, ".json")))
  cat(sprintf("%-28s %d tables\n", name, length(fx$anova)))
}
