## The gls() and lme() models of the nlme reference scripts (reference_nlme.R,
## reference_nlme_anova.R): their data, their calls and the tight fits.
##
## Not run on its own: the scripts source() it from the repository root.
## Sourcing it writes the simulated data sets to tests/fixtures/nlme/ (the same
## bytes every time).

source(file.path("tools", "reference_common.R"))
suppressPackageStartupMessages(library(nlme))
stopifnot(packageVersion("nlme") == "3.1.162")

fixture_dir <- file.path("tests", "fixtures", "nlme")
dir.create(fixture_dir, recursive = TRUE, showWarnings = FALSE)

## ---------------------------------------------------------------------------
## Data
## ---------------------------------------------------------------------------

## Ovary: the harmonic terms as columns (Pinheiro & Bates 2000, section 5.3.4).
ovary <- function(d) {
  d$sinT <- sin(2 * pi * d$Time)
  d$cosT <- cos(2 * pi * d$Time)
  d
}
ovary_changes <- "new columns sinT = sin(2*pi*Time), cosT = cos(2*pi*Time)"

## Simulated data (written to tests/fixtures/nlme/<name>.csv, so Python reads
## exactly these numbers).
##   spatial: 8 fields of 15 plots at random coordinates; within a field the
##            errors have covariance 0.3 I + exp(-distance / 2.5).
##   hetero:  20 units measured at times 1..8 in three arms; AR(1) errors
##            (phi = 0.5) with sd 0.4 time^0.8 (x 1, 1.8, 0.7 by arm) and a
##            random unit intercept (sd 1.5).
simulated <- list(
  spatial = function() {
    set.seed(20261121)
    nf <- 8; np <- 15
    d <- do.call(rbind, lapply(1:nf, function(f) {
      x <- round(runif(np, 0, 10), 2); y <- round(runif(np, 0, 10), 2)
      S <- 0.3 * diag(np) + exp(-as.matrix(dist(cbind(x, y))) / 2.5)
      e <- drop(t(chol(S)) %*% rnorm(np))
      data.frame(field = sprintf("f%d", f), x = x, y = y,
                 z = 10 + 0.3 * x - 0.2 * y + rnorm(1, 0, 0.7) + e)
    }))
    d$field <- factor(d$field)
    d
  },
  hetero = function() {
    set.seed(777)
    ng <- 20; nt <- 8
    d <- expand.grid(time = 1:nt, unit = 1:ng)
    d$unit <- factor(sprintf("u%02d", d$unit))
    d$arm <- factor(c("ctl", "low", "high")[(as.integer(d$unit) - 1) %% 3 + 1],
                    levels = c("ctl", "low", "high"))
    d$dose <- c(0, 1, 2)[as.integer(d$arm)]
    sdv <- 0.4 * d$time^0.8 * c(1, 1.8, 0.7)[as.integer(d$arm)]
    e <- unlist(lapply(split(seq_len(nrow(d)), d$unit), function(i)
      as.numeric(arima.sim(list(ar = 0.5), length(i))) * sqrt(1 - 0.25)))
    b <- rnorm(ng, 0, 1.5)[as.integer(d$unit)]
    d$y <- 5 + 0.6 * d$time - 0.4 * d$dose + 0.1 * d$time * d$dose + b + sdv * e
    d[c("unit", "arm", "time", "dose", "y")]
  })

## CSV with every double written exactly; factor levels in a second line of
## the JSON fixture is not needed: the simulated factors' levels are sorted,
## except hetero$arm (ctl, low, high), recorded in the fixtures' data_levels.
write_simulated <- function(d, name) {
  out <- d
  for (col in names(out)) if (is.double(out[[col]])) out[[col]] <- num_to_json(out[[col]])
  write.csv(out, file.path(fixture_dir, paste0(name, ".csv")), row.names = FALSE,
            quote = FALSE)
}
for (nm in names(simulated)) {
  simulated[[nm]] <- simulated[[nm]]()
  write_simulated(simulated[[nm]], nm)
}

## The data of a model: a bundled dataset (changed by `modify`) or a
## simulated one.
nlme_data <- function(s) {
  if (s$dataset %in% names(simulated)) return(simulated[[s$dataset]])
  d <- get_dataset(s$dataset)
  if (is.null(s$modify)) d else s$modify(d)
}

## ---------------------------------------------------------------------------
## Models
## ---------------------------------------------------------------------------

## `call` is evaluated with the data as `d`.  `newdata` (optional) picks rows
## of the data to predict as new data.
model <- function(name, dataset, call, modify = NULL, data_changes = NULL,
                  newdata = NULL)
  list(name = name, dataset = dataset, call = call, modify = modify,
       data_changes = data_changes, newdata = newdata)

ov <- function(name, call) model(name, "Ovary", call, ovary, ovary_changes)
ort <- function(name, call, ...) model(name, "Orthodont", call, ...)
bw <- function(name, call, ...) model(name, "BodyWeight", call, ...)
het <- function(name, call) model(name, "hetero", call)
spa <- function(name, call) model(name, "spatial", call)

models <- list(
  ## --- gls ------------------------------------------------------------------
  ov("gls_ovary_ar1", quote(gls(follicles ~ sinT + cosT, d,
     correlation = corAR1(form = ~ 1 | Mare)))),
  ov("gls_ovary_ar1_ml", quote(gls(follicles ~ sinT + cosT, d,
     correlation = corAR1(form = ~ 1 | Mare), method = "ML"))),
  ov("gls_ovary_ml", quote(gls(follicles ~ sinT + cosT, d, method = "ML"))),
  ov("gls_ovary_arma11", quote(gls(follicles ~ sinT + cosT, d,
     correlation = corARMA(form = ~ 1 | Mare, p = 1, q = 1)))),
  ov("gls_ovary_arma02", quote(gls(follicles ~ sinT + cosT, d,
     correlation = corARMA(form = ~ 1 | Mare, p = 0, q = 2)))),
  ov("gls_ovary_car1", quote(gls(follicles ~ sinT + cosT, d,
     correlation = corCAR1(form = ~ Time | Mare)))),
  ort("gls_orthodont_compsymm", quote(gls(distance ~ age * Sex, d,
      correlation = corCompSymm(form = ~ 1 | Subject)))),
  ort("gls_orthodont_symm_ident", quote(gls(distance ~ age * Sex, d,
      correlation = corSymm(form = ~ 1 | Subject),
      weights = varIdent(form = ~ 1 | age)))),
  ort("gls_orthodont_symm_ident_ml", quote(gls(distance ~ age * Sex, d,
      correlation = corSymm(form = ~ 1 | Subject),
      weights = varIdent(form = ~ 1 | age), method = "ML"))),
  ort("gls_orthodont_ident_sex", quote(gls(distance ~ age * Sex, d,
      weights = varIdent(form = ~ 1 | Sex))),
      newdata = c(1, 5, 60, 100)),
  ort("gls_orthodont_fixed", quote(gls(distance ~ age * Sex, d,
      weights = varFixed(~ age)))),
  bw("gls_bodyweight_power_fitted", quote(gls(weight ~ Time * Diet, d,
     weights = varPower(), correlation = corCompSymm(form = ~ 1 | Rat)))),
  het("gls_hetero_power_ar1", quote(gls(y ~ time * dose, d,
      weights = varPower(form = ~ time), correlation = corAR1(form = ~ 1 | unit)))),
  het("gls_hetero_exp_ar1", quote(gls(y ~ time * dose, d,
      weights = varExp(form = ~ time), correlation = corAR1(form = ~ 1 | unit)))),
  het("gls_hetero_constpower_ar1", quote(gls(y ~ time * dose, d,
      weights = varConstPower(form = ~ time),
      correlation = corAR1(form = ~ 1 | unit)))),
  het("gls_hetero_ident_ar1", quote(gls(y ~ time * dose, d,
      weights = varIdent(form = ~ 1 | arm),
      correlation = corAR1(form = ~ 1 | unit)))),
  het("gls_hetero_comb_ar1", quote(gls(y ~ time * dose, d,
      weights = varComb(varIdent(form = ~ 1 | arm), varPower(form = ~ time)),
      correlation = corAR1(form = ~ 1 | unit)))),
  het("gls_hetero_power_strata_ar1", quote(gls(y ~ time * dose, d,
      weights = varPower(form = ~ time | arm),
      correlation = corAR1(form = ~ 1 | unit)))),
  spa("gls_spatial_exp", quote(gls(z ~ x + y, d,
      correlation = corExp(form = ~ x + y | field)))),
  spa("gls_spatial_exp_nugget", quote(gls(z ~ x + y, d,
      correlation = corExp(form = ~ x + y | field, nugget = TRUE)))),
  spa("gls_spatial_gaus", quote(gls(z ~ x + y, d,
      correlation = corGaus(form = ~ x + y | field)))),
  spa("gls_spatial_gaus_manhattan", quote(gls(z ~ x + y, d,
      correlation = corGaus(form = ~ x + y | field, metric = "manhattan")))),
  spa("gls_spatial_lin_nugget", quote(gls(z ~ x + y, d,
      correlation = corLin(c(3, 0.2), form = ~ x + y | field, nugget = TRUE)))),
  spa("gls_spatial_ratio_nugget", quote(gls(z ~ x + y, d,
      correlation = corRatio(form = ~ x + y | field, nugget = TRUE)))),
  spa("gls_spatial_spher_nugget", quote(gls(z ~ x + y, d,
      correlation = corSpher(form = ~ x + y | field, nugget = TRUE)))),

  ## --- lme ------------------------------------------------------------------
  ort("lme_orthodont_slope", quote(lme(distance ~ age * Sex, d,
      random = ~ age | Subject)), newdata = c(1, 5, 60, 100)),
  ort("lme_orthodont_slope_ml", quote(lme(distance ~ age * Sex, d,
      random = ~ age | Subject, method = "ML"))),
  ort("lme_orthodont_intercept_ml", quote(lme(distance ~ age * Sex, d,
      random = ~ 1 | Subject, method = "ML"))),
  ort("lme_orthodont_ar1", quote(lme(distance ~ age * Sex, d,
      random = ~ 1 | Subject, correlation = corAR1()))),
  ort("lme_orthodont_ar1_ml", quote(lme(distance ~ age * Sex, d,
      random = ~ 1 | Subject, correlation = corAR1(), method = "ML"))),
  ort("lme_orthodont_ident", quote(lme(distance ~ age * Sex, d,
      random = ~ 1 | Subject, weights = varIdent(form = ~ 1 | Sex)))),
  ort("lme_orthodont_compsymm", quote(lme(distance ~ age * Sex, d,
      random = ~ age - 1 | Subject, correlation = corCompSymm()))),
  ort("lme_orthodont_symm", quote(lme(distance ~ age * Sex, d,
      random = ~ age - 1 | Subject, correlation = corSymm()))),
  ort("lme_orthodont_fixed", quote(lme(distance ~ age * Sex, d,
      random = ~ 1 | Subject, weights = varFixed(~ age)))),
  ov("lme_ovary_ar1", quote(lme(follicles ~ sinT + cosT, d,
     random = ~ 1 | Mare, correlation = corAR1()))),
  ov("lme_ovary_arma11", quote(lme(follicles ~ sinT + cosT, d,
     random = list(Mare = pdDiag(~ sinT)), correlation = corARMA(p = 1, q = 1)))),
  ov("lme_ovary_car1", quote(lme(follicles ~ sinT + cosT, d,
     random = ~ 1 | Mare, correlation = corCAR1(form = ~ Time)))),
  bw("lme_bodyweight_car1_power", quote(lme(weight ~ Time * Diet, d,
     random = ~ Time | Rat, weights = varPower(form = ~ Time),
     correlation = corCAR1(form = ~ Time))), newdata = c(1, 12, 100, 176)),
  bw("lme_bodyweight_power_fitted", quote(lme(weight ~ Time * Diet, d,
     random = ~ Time | Rat, weights = varPower()))),
  bw("lme_bodyweight_exp", quote(lme(weight ~ Time * Diet, d,
     random = ~ Time | Rat, correlation = corExp(form = ~ Time)))),
  bw("lme_bodyweight_exp_nugget", quote(lme(weight ~ Time * Diet, d,
     random = ~ Time | Rat, correlation = corExp(form = ~ Time, nugget = TRUE)))),
  bw("lme_bodyweight_ratio", quote(lme(weight ~ Time * Diet, d,
     random = ~ Time | Rat, correlation = corRatio(form = ~ Time)))),
  het("lme_hetero_power_ar1", quote(lme(y ~ time * dose, d, random = ~ 1 | unit,
      weights = varPower(form = ~ time), correlation = corAR1()))),
  het("lme_hetero_exp_ar1", quote(lme(y ~ time * dose, d, random = ~ 1 | unit,
      weights = varExp(form = ~ time), correlation = corAR1()))),
  het("lme_hetero_ident_ar1", quote(lme(y ~ time * dose, d, random = ~ 1 | unit,
      weights = varIdent(form = ~ 1 | arm), correlation = corAR1()))),
  het("lme_hetero_comb_ar1", quote(lme(y ~ time * dose, d, random = ~ 1 | unit,
      weights = varComb(varIdent(form = ~ 1 | arm), varPower(form = ~ time)),
      correlation = corAR1()))),
  bw("lme_bodyweight_constpower", quote(lme(weight ~ Time * Diet, d,
     random = ~ 1 | Rat, weights = varConstPower(form = ~ Time)))),
  spa("lme_spatial_exp", quote(lme(z ~ x + y, d, random = ~ 1 | field,
      correlation = corExp(form = ~ x + y)))),
  spa("lme_spatial_gaus_nugget", quote(lme(z ~ x + y, d, random = ~ 1 | field,
      correlation = corGaus(form = ~ x + y, nugget = TRUE)))),
  spa("lme_spatial_lin", quote(lme(z ~ x + y, d, random = ~ 1 | field,
      correlation = corLin(3, form = ~ x + y)))),
  spa("lme_spatial_ratio_nugget", quote(lme(z ~ x + y, d, random = ~ 1 | field,
      correlation = corRatio(form = ~ x + y, nugget = TRUE)))),
  spa("lme_spatial_spher", quote(lme(z ~ x + y, d, random = ~ 1 | field,
      correlation = corSpher(form = ~ x + y)))),
  model("lme_oats_nested", "Oats", quote(lme(yield ~ nitro, d,
        random = ~ 1 | Block / Variety)), newdata = c(1, 2, 40, 72)),
  model("lme_oats_nested_ident", "Oats", quote(lme(yield ~ nitro, d,
        random = ~ 1 | Block / Variety, weights = varIdent(form = ~ 1 | Variety))))
)
names(models) <- vapply(models, `[[`, "", "name")

## ---------------------------------------------------------------------------
## Fitting
## ---------------------------------------------------------------------------

## nlme's optimizers stop at a relative change of about 1e-10 in the
## log-likelihood, which leaves weakly determined parameters uncertain in the
## 4th digit.  The reference is the optimum itself: lme gets a tight nlminb
## tolerance, gls (whose control cannot pass one) is refitted from its own
## estimates until the log-likelihood stops changing.  The default fit is kept
## for comparison (default_logLik, default_max_rel_diff in the JSON).
tight_lme <- lmeControl(msMaxIter = 1000, msMaxEval = 5000, rel.tol = 1e-13,
                        returnObject = TRUE)

fit_tight <- function(s, d) {
  default <- eval(s$call)
  m <- default
  final <- s$call
  if (inherits(m, "lme")) {
    cl <- s$call
    cl$control <- tight_lme
    ## nlminb may end with "singular convergence (7)" at this tolerance: the
    ## fit is kept only if its log-likelihood is at least the default one's.
    tight <- suppressWarnings(eval(cl))
    if (c(logLik(tight)) >= c(logLik(default))) {
      m <- tight
      final <- cl
    }
  } else {
    for (i in 1:10) {
      cl <- s$call
      if (!is.null(cs <- m$modelStruct$corStruct)) cl$correlation <- cs
      if (!is.null(vs <- m$modelStruct$varStruct)) cl$weights <- vs
      polished <- eval(cl)
      change <- abs(c(logLik(polished)) - c(logLik(m)))
      if (c(logLik(polished)) >= c(logLik(m))) {
        m <- polished
        final <- cl
      }
      if (change < 1e-12) break
    }
  }
  list(model = m, default = default, call = final)
}

