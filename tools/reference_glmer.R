## Reference values for generalized linear mixed models (issue 13), written as
## JSON test fixtures: lme4::glmer (Laplace, nAGQ = 0, adaptive Gauss-Hermite),
## lme4::glmer.nb, glmmTMB's nbinom2 and MASS::glmmPQL.
##
## Run from the repository root:
##     Rscript tools/reference_glmer.R [name ...]
## Writes one file per model to tests/fixtures/glmm/<name>.json (only the
## named models when names are given).
##
## The data are read from the CSV files shipped with the Python package
## (src/mixedmodels/datasets/data, factor levels from factor_levels.json) or,
## for simulated data, from tests/fixtures/glmm/data/<name>.csv, which this
## script writes once from a fixed seed and then reads back.
##
## Every glmer fit is made with three optimizers at tight settings (bobyqa,
## Nelder_Mead, nloptwrap's BOBYQA, each for both of glmer's stages); the fit
## with the lowest -2 log-likelihood is kept and the spread of the three is
## recorded as "objective_spread".

source(file.path("tools", "reference_common.R"))
suppressPackageStartupMessages({
  library(MASS)
  library(glmmTMB)
})

fixture_dir <- file.path("tests", "fixtures", "glmm")
sim_dir <- file.path(fixture_dir, "data")
dir.create(sim_dir, recursive = TRUE, showWarnings = FALSE)

## ---------------------------------------------------------------------------
## Simulated data (written once; always read back from the CSV)
## ---------------------------------------------------------------------------

## Gamma responses, log link: 30 groups x 8 rows, y ~ Gamma(shape 4) with
## mean exp(1 + 0.5 x + b), b ~ N(0, 0.4^2).  Written with 6 decimals.
simulate_gamma <- function(path) {
  set.seed(20261)
  n_group <- 30; per <- 8
  g <- rep(sprintf("g%02d", seq_len(n_group)), each = per)
  x <- round(runif(n_group * per, -1, 1), 6)
  b <- rnorm(n_group, 0, 0.4)[rep(seq_len(n_group), each = per)]
  mu <- exp(1 + 0.5 * x + b)
  y <- round(rgamma(n_group * per, shape = 4, rate = 4 / mu), 6)
  write.csv(data.frame(y = y, x = x, g = g), path, row.names = FALSE, quote = FALSE)
}

## Negative binomial counts (size 2) with exposure t and a correlated random
## intercept and slope: 40 groups x 10 rows, mean t exp(0.5 + 0.4 x + b0 + b1 x),
## (b0, b1) normal with SDs 0.5 and 0.3, correlation 0.4.  Written with 6
## decimals.
simulate_nb_slope <- function(path) {
  set.seed(20262)
  n_group <- 40; per <- 10
  g <- rep(sprintf("g%02d", seq_len(n_group)), each = per)
  x <- round(runif(n_group * per, -1, 1), 6)
  t <- round(runif(n_group * per, 0.5, 2), 6)
  z <- matrix(rnorm(2 * n_group), n_group, 2)
  b0 <- 0.5 * z[, 1]
  b1 <- 0.3 * (0.4 * z[, 1] + sqrt(1 - 0.4^2) * z[, 2])
  i <- rep(seq_len(n_group), each = per)
  mu <- t * exp(0.5 + 0.4 * x + b0[i] + b1[i] * x)
  y <- rnbinom(n_group * per, size = 2, mu = mu)
  write.csv(data.frame(y = y, x = x, t = t, g = g), path, row.names = FALSE, quote = FALSE)
}

simulators <- list(gamma_sim = simulate_gamma, nb_slope_sim = simulate_nb_slope)

read_simulated <- function(name, maker) {
  path <- file.path(sim_dir, paste0(name, ".csv"))
  if (!file.exists(path)) maker(path)
  d <- read.csv(path, stringsAsFactors = FALSE, colClasses = c(g = "character"))
  d$g <- factor(d$g, levels = sort(unique(d$g)))
  d
}

load_data <- function(s) {
  d <- if (s$dataset %in% names(simulators)) read_simulated(s$dataset, simulators[[s$dataset]])
       else get_dataset(s$dataset)
  if (is.null(s$modify)) d else s$modify(d)
}

## ---------------------------------------------------------------------------
## Models
## ---------------------------------------------------------------------------

## method: "glmer", "glmer.nb", "glmmTMB" or "glmmPQL".  family is R code
## (a string), so that it is stored verbatim.  groups: the data columns that
## are grouping factors (the new data gets an unseen level in each).
gspec <- function(name, dataset, formula, family, nAGQ = 1L, weights = NULL,
                  modify = NULL, data_changes = NULL, groups, method = "glmer",
                  random = NULL, note = NULL) {
  list(name = name, dataset = dataset, formula = formula, family = family,
       nAGQ = as.integer(nAGQ), weights = weights, modify = modify,
       data_changes = data_changes, groups = groups, method = method,
       random = random, note = note)
}

cbpp_cbind <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
contra_fixed <- "use ~ 1 + age + I(age^2) + urban + livch"
add_prop <- function(d) { d$prop <- d$incidence / d$size; d }

gspecs <- list(
  gspec("cbpp_binomial", "cbpp", cbpp_cbind, "binomial", groups = "herd"),
  gspec("cbpp_binomial_nagq0", "cbpp", cbpp_cbind, "binomial", nAGQ = 0, groups = "herd"),
  gspec("cbpp_binomial_nagq25", "cbpp", cbpp_cbind, "binomial", nAGQ = 25, groups = "herd"),
  gspec("cbpp_proportion", "cbpp", "prop ~ period + (1 | herd)", "binomial",
        weights = "size", modify = add_prop, groups = "herd",
        data_changes = "new column prop = incidence / size; weights = size",
        note = "MixedModels.jl pins its Laplace deviance 100.0959 (laplace_objective)"),
  gspec("cbpp_probit", "cbpp", cbpp_cbind, 'binomial(link = "probit")', groups = "herd"),
  gspec("grouseticks_poisson", "grouseticks",
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
        "poisson", groups = c("BROOD", "INDEX", "LOCATION")),
  gspec("grouseticks_poisson_nagq0", "grouseticks",
        "TICKS ~ 1 + YEAR + cHEIGHT + (1 | INDEX) + (1 | BROOD) + (1 | LOCATION)",
        "poisson", nAGQ = 0, groups = c("BROOD", "INDEX", "LOCATION"),
        note = paste("MixedModels.jl's model (ch = centred height, fast = true);",
                     "it pins the Laplace deviance 851.4046 (laplace_objective)")),
  gspec("verbagg_binomial", "VerbAgg",
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "binomial",
        groups = c("id", "item"),
        note = "MixedModels.jl pins its Laplace deviance 8151.40 (laplace_objective)"),
  gspec("contraception_urbdist", "Contraception",
        paste(contra_fixed, "+ (1 | urban:district)"), "binomial",
        groups = "district",
        note = paste("MixedModels.jl's model (1 | urbdist); it pins the Laplace",
                     "deviance 2361.54575 (laplace_objective) and logLik -1180.77288")),
  gspec("contraception_district", "Contraception",
        paste(contra_fixed, "+ (1 | district)"), "binomial", groups = "district"),
  gspec("contraception_slope", "Contraception",
        paste(contra_fixed, "+ (urban | district)"), "binomial", groups = "district"),
  gspec("contraception_cloglog", "Contraception",
        paste(contra_fixed, "+ (1 | district)"), 'binomial(link = "cloglog")',
        groups = "district"),
  gspec("gamma_log", "gamma_sim", "y ~ x + (1 | g)", 'Gamma(link = "log")', groups = "g",
        note = "simulated data (tests/fixtures/glmm/data/gamma_sim.csv)"),
  gspec("cbpp_poisson_offset_weights", "cbpp",
        "incidence ~ period + offset(log(size)) + (1 | herd)", "poisson",
        weights = "w", groups = "herd",
        modify = function(d) { d$w <- 1 + (seq_len(nrow(d)) %% 3); d },
        data_changes = "new column w = 1 + (row %% 3) (1-based row), used as prior weights"),
  gspec("grouseticks_nb", "grouseticks",
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", "negative.binomial",
        method = "glmer.nb", groups = c("BROOD", "LOCATION")),
  gspec("grouseticks_nb_glmmtmb", "grouseticks",
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", "nbinom2",
        method = "glmmTMB", groups = c("BROOD", "LOCATION")),
  gspec("nb_slope_offset_glmmtmb", "nb_slope_sim", "y ~ x + offset(log(t)) + (1 + x | g)",
        "nbinom2", method = "glmmTMB", groups = "g",
        note = "simulated data (tests/fixtures/glmm/data/nb_slope_sim.csv)"),
  gspec("cbpp_nbinom2_weights_glmmtmb", "cbpp",
        "incidence ~ period + offset(log(size)) + (1 | herd)", "nbinom2",
        method = "glmmTMB", weights = "w", groups = "herd",
        modify = function(d) { d$w <- 1 + (seq_len(nrow(d)) %% 3); d },
        data_changes = "new column w = 1 + (row %% 3) (1-based row), used as prior weights"),
  gspec("cbpp_pql", "cbpp", "cbind(incidence, size - incidence) ~ period", "binomial",
        method = "glmmPQL", random = "~ 1 | herd", groups = "herd",
        note = "MASS::glmmPQL; the random effects are given by its random = argument"),
  gspec("contraception_pql", "Contraception", contra_fixed, "binomial",
        method = "glmmPQL", random = "~ 1 | district", groups = "district",
        note = "MASS::glmmPQL; the random effects are given by its random = argument")
)
names(gspecs) <- vapply(gspecs, `[[`, character(1), "name")

## ---------------------------------------------------------------------------
## Fitting
## ---------------------------------------------------------------------------

## Tight settings for both of glmer's stages.  tolPwrss is lme4's default.
glmer_controls <- list(
  bobyqa = glmerControl(optimizer = "bobyqa",
                        optCtrl = list(rhoend = 1e-10, maxfun = 1e5)),
  Nelder_Mead = glmerControl(optimizer = "Nelder_Mead",
                             optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-14,
                                            XtolRel = 1e-10, maxfun = 1e5)),
  nloptwrap = glmerControl(optimizer = "nloptwrap",
                           optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12,
                                          xtol_rel = 1e-10, ftol_rel = 1e-14,
                                          maxeval = 1e5))
)

fit_glmer <- function(s, data, control, devFunOnly = FALSE, nAGQ = s$nAGQ) {
  fn <- if (s$method == "glmer.nb") "glmer.nb" else "glmer"
  cl <- call(fn, formula = as.formula(s$formula), data = quote(data),
             control = quote(control))
  if (fn == "glmer") {
    cl$family <- str2lang(s$family)
    cl$nAGQ <- nAGQ
    cl$devFunOnly <- devFunOnly
  }
  if (!is.null(s$weights)) cl$weights <- as.name(s$weights)
  env <- environment()
  f <- with_conditions(eval(cl, envir = env))
  if (fn == "glmer.nb") f$value <- polish_nb_theta(f$value, control)
  f
}

## glmer.nb searches NB's theta with optimize(tol = 5e-5) on log theta (its
## tol = argument reaches glmer in lme4 1.1-31, an error), so the search is
## repeated near its answer with tol = 1e-10 through lme4's own refitNB.
polish_nb_theta <- function(m, control) {
  th0 <- getME(m, "glmer.nb.theta")
  dev_at <- function(t) -2 * as.numeric(logLik(lme4:::refitNB(m, theta = exp(t),
                                                               control = control)))
  opt <- optimize(dev_at, interval = log(th0) + c(-0.01, 0.01), tol = 1e-10)
  m2 <- lme4:::refitNB(m, theta = exp(opt$minimum), control = control)
  m2@call$family[["theta"]] <- exp(opt$minimum)
  m2
}

neg2ll <- function(m) -2 * as.numeric(logLik(m))

fit_best_glmer <- function(s, data) {
  fits <- lapply(glmer_controls, function(ctrl) {
    t0 <- proc.time()[["elapsed"]]
    f <- fit_glmer(s, data, ctrl)
    f$objective <- neg2ll(f$value)
    f$seconds <- proc.time()[["elapsed"]] - t0
    f
  })
  objs <- vapply(fits, `[[`, numeric(1), "objective")
  best <- names(which.min(objs))
  thetas <- lapply(fits, function(f) getME(f$value, "theta"))
  theta_spread <- max(vapply(thetas, function(t)
    max(abs(t - thetas[[best]]) / pmax(abs(thetas[[best]]), 1e-3)), numeric(1)))
  list(model = fits[[best]]$value, messages = fits[[best]]$messages,
       optimizer = best, objectives = as.list(objs),
       objective_spread = max(objs) - min(objs), theta_spread = theta_spread,
       all_messages = lapply(fits, `[[`, "messages"),
       seconds = vapply(fits, `[[`, numeric(1), "seconds"))
}

## lme4's optimized criterion at the fit: the Laplace (or, for nAGQ > 1, the
## adaptive quadrature) deviance without the constants of -2 log-likelihood.
## For nAGQ = 0 it is the Laplace deviance at the fit's theta and beta, which
## is what MixedModels.jl reports for fast = true.
laplace_objective <- function(s, data, m) {
  if (s$method == "glmer.nb") return(getME(m, "devcomp")$cmp[["dev"]])
  nagq <- max(s$nAGQ, 1L)
  devf <- fit_glmer(s, data, glmer_controls$bobyqa, devFunOnly = TRUE, nAGQ = nagq)$value
  devf(c(getME(m, "theta"), fixef(m)))
}

## ---------------------------------------------------------------------------
## New data for predictions: rows 1, 2 and the last of the fit data, and
## row 1 again with an unseen level in every grouping column.
## ---------------------------------------------------------------------------

make_newdata <- function(s, data) {
  nd <- data[c(1, 2, nrow(data), 1), , drop = FALSE]
  for (g in s$groups) {
    levels(nd[[g]]) <- c(levels(nd[[g]]), "new")
    nd[[g]][4] <- "new"
  }
  rownames(nd) <- NULL
  nd
}

columns_of <- function(d) {
  lapply(d, function(col) if (is.factor(col)) arr(as.character(col))
                          else arr(as.double(col)))
}

## ---------------------------------------------------------------------------
## Extraction
## ---------------------------------------------------------------------------

na_to_null <- function(x) if (length(x) == 1 && is.na(x)) NULL else x

by_row <- function(x) list(rows = arr(as.integer(names(x))), values = arr(unname(x)))

extract_varcorr <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i)
    list(grp = vc$grp[i], var1 = na_to_null(vc$var1[i]),
         var2 = na_to_null(vc$var2[i]), vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

extract_ranef <- function(re) {
  lapply(names(re), function(g) {
    x <- re[[g]]
    list(group = g, levels = arr(rownames(x)), columns = arr(colnames(x)),
         values = rows_of(x))
  })
}

## attr(ranef(m)[[g]], "postVar"): q x q x n array (one term per factor in
## these models, checked).
extract_condvar <- function(re) {
  lapply(names(re), function(g) {
    a <- attr(re[[g]], "postVar")
    stopifnot(is.array(a), length(dim(a)) == 3)
    q <- dim(a)[1]
    list(group = g, columns = arr(colnames(re[[g]])),
         values = lapply(seq_len(dim(a)[3]), function(l) rows_of(matrix(a[, , l], q, q))))
  })
}

family_of <- function(m) {
  f <- family(m)
  list(family = f$family, link = f$link)
}

versions <- function() {
  pk <- c("lme4", "Matrix", "minqa", "nloptr", "MASS", "nlme", "glmmTMB", "TMB", "jsonlite")
  c(list(R = R.version.string),
    setNames(lapply(pk, function(p) format(packageVersion(p))), pk))
}

common_header <- function(s, data) {
  list(name = s$name, dataset = s$dataset, formula = s$formula, method = s$method,
       family_code = s$family, nAGQ = s$nAGQ, weights = s$weights,
       data_changes = s$data_changes, note = s$note)
}

predictions <- function(m, nd, extra = list()) {
  p <- function(...) unname(do.call(predict, c(list(m, ...), extra)))
  list(
    predict_link = arr(p(type = "link")),
    predict_response = arr(p(type = "response")),
    newdata = columns_of(nd),
    newdata_predict_link = arr(p(newdata = nd, type = "link", allow.new.levels = TRUE)),
    newdata_predict_response = arr(p(newdata = nd, type = "response",
                                     allow.new.levels = TRUE)),
    newdata_predict_link_fixed = arr(p(newdata = nd, type = "link", re.form = NA)),
    newdata_predict_response_fixed = arr(p(newdata = nd, type = "response", re.form = NA))
  )
}

extract_glmer <- function(s, data, fit) {
  m <- fit$model
  re <- ranef(m, condVar = TRUE)
  V <- as.matrix(vcov(m))
  theta <- getME(m, "theta")
  ll <- logLik(m)
  pearson <- residuals(m, type = "pearson")
  nd <- make_newdata(s, data)
  c(common_header(s, data), family_of(m),
    list(
      optimizer = fit$optimizer, objectives = fit$objectives,
      objective_spread = fit$objective_spread,
      fixef = list(names = arr(names(fixef(m))), values = arr(fixef(m))),
      se = arr(sqrt(diag(V))),
      vcov = rows_of(V),
      theta = arr(theta), theta_names = arr(names(theta)),
      sigma = sigma(m),
      nb_theta = if (s$method == "glmer.nb") getME(m, "glmer.nb.theta") else NULL,
      deviance = deviance(m),
      loglik = as.numeric(ll), minus2loglik = -2 * as.numeric(ll),
      laplace_objective = laplace_objective(s, data, m),
      jl_deviance = sum(getME(m, "devcomp")$cmp[c("drsum", "ussq", "ldL2")]),
      aic = AIC(m), bic = BIC(m), df_loglik = attr(ll, "df"),
      df_resid = df.residual(m), nobs = nobs(m), ngroups = as.list(ngrps(m)),
      devcomp_cmp = as.list(getME(m, "devcomp")$cmp),
      is_singular = isSingular(m),
      varcorr = extract_varcorr(m),
      ranef = extract_ranef(re),
      condvar = extract_condvar(re),
      fitted = by_row(fitted(m))),
    predictions(m, nd),
    list(
      residuals = list(
        deviance = arr(unname(residuals(m, type = "deviance"))),
        pearson = arr(unname(pearson)),
        response = arr(unname(residuals(m, type = "response"))),
        working = arr(unname(residuals(m, type = "working")))),
      pearson_dispersion = sum(pearson^2) / df.residual(m),
      conv_messages = arr(as.character(m@optinfo$conv$lme4$messages)),
      messages = arr(fit$messages),
      versions = versions()))
}

## glmmTMB with family nbinom2 (the dispersion is sigma(m), NB's theta).
## nlminb's default rel.tol (1e-10): a tighter one ends in "singular
## convergence".  glmmTMB's Laplace uses the exact Hessian in u; lme4's uses
## the PIRLS (expected) weights, which differ for a non-canonical link such as
## NB's log, so the two fixtures are different approximations (logLik
## -888.908 here, glmer.nb's -888.841).
extract_glmmtmb <- function(s, data) {
  cl <- call("glmmTMB", formula = as.formula(s$formula), data = quote(data), family = quote(nbinom2),
             control = quote(glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4))))
  if (!is.null(s$weights)) cl$weights <- as.name(s$weights)
  env <- environment()
  f <- with_conditions(eval(cl, envir = env))
  m <- f$value
  re <- ranef(m, condVar = TRUE)$cond
  V <- as.matrix(vcov(m)$cond)
  ll <- logLik(m)
  pearson <- residuals(m, type = "pearson")
  nd <- make_newdata(s, data)
  c(common_header(s, data),
    list(family = family(m)$family, link = family(m)$link,
         fixef = list(names = arr(names(fixef(m)$cond)), values = arr(fixef(m)$cond)),
         se = arr(sqrt(diag(V))), vcov = rows_of(V)),
    glmmtmb_varcorr(m),
    list(nb_theta = sigma(m),
         loglik = as.numeric(ll), minus2loglik = -2 * as.numeric(ll),
         aic = AIC(m), bic = BIC(m), df_loglik = attr(ll, "df"),
         df_resid = df.residual(m), nobs = nobs(m),
         ngroups = as.list(vapply(names(re), function(g) nrow(re[[g]]), integer(1))),
         ranef = extract_ranef(re),
         condvar = lapply(names(re), function(g) {
           ## glmmTMB fills the diagonal only (the rest is NA: null)
           a <- attr(re[[g]], "condVar")
           q <- ncol(re[[g]])
           list(group = g, columns = arr(colnames(re[[g]])),
                values = lapply(seq_len(dim(a)[3]), function(l) rows_of(matrix(a[, , l], q, q))))
         }),
         fitted = by_row(fitted(m))),
    list(predict_link = arr(unname(predict(m, type = "link"))),
         predict_response = arr(unname(predict(m, type = "response"))),
         newdata = columns_of(nd),
         newdata_predict_link = arr(unname(predict(m, newdata = nd, type = "link",
                                                   allow.new.levels = TRUE))),
         newdata_predict_response = arr(unname(predict(m, newdata = nd, type = "response",
                                                       allow.new.levels = TRUE))),
         newdata_predict_link_fixed = arr(unname(predict(m, newdata = nd, type = "link",
                                                         re.form = NA,
                                                         allow.new.levels = TRUE))),
         newdata_predict_response_fixed = arr(unname(predict(m, newdata = nd,
                                                             type = "response",
                                                             re.form = NA,
                                                             allow.new.levels = TRUE)))),
    list(residuals = list(pearson = arr(unname(pearson)),
                          response = arr(unname(residuals(m, type = "response")))),
         pearson_dispersion = sum(pearson^2) / df.residual(m),
         conv_messages = arr(as.character(m$fit$message)),
         messages = arr(f$messages),
         exact_optimum = glmmtmb_exact_optimum(m)),
    list(versions = versions()))
}

## nlminb stops where the gradient of -log L is still up to ~5e-4, so
## glmmTMB's estimates are ~1e-5 (relative) from the optimum of its Laplace
## likelihood.  Newton steps with glmmTMB's own gradient (TMB's AD) and
## Hessian (optimHess, as sdreport's) reach it to ~1e-8; sdreport there gives
## the covariances at the optimum, where they do not depend on the
## parameterization (glmmTMB's: beta, log dispersion, log SDs).
glmmtmb_exact_optimum <- function(m) {
  obj <- m$obj
  par <- m$fit$par
  for (i in 1:5) {
    g <- as.numeric(obj$gr(par))
    if (max(abs(g)) < 1e-10) break
    par <- par - solve(optimHess(par, obj$fn, obj$gr), g)
  }
  loglik <- -obj$fn(par)
  at <- m  # the fit moved to the optimum, for VarCorr
  at$fit$par <- par
  at$fit$parfull <- obj$env$last.par
  sdr <- TMB::sdreport(obj, par.fixed = par)
  nb <- sum(names(par) == "beta")
  V <- sdr$cov.fixed[seq_len(nb), seq_len(nb)]
  c(list(newton_steps = i - 1, max_abs_gradient = max(abs(as.numeric(obj$gr(par)))),
         loglik = loglik, fixef = arr(par[names(par) == "beta"])),
    glmmtmb_varcorr(at),
    list(nb_theta = exp(par[["betad"]]), se = arr(sqrt(diag(V))), vcov = rows_of(V),
         ## level-major per term, terms in formula order (ranef's order)
         ranef = arr(sdr$par.random), condvar = arr(sdr$diag.cov.random)))
}

## The random effects' SDs and correlations per term (VarCorr), and for models
## of scalar terms only also theta / theta_names: lme4's theta there, the SDs.
glmmtmb_varcorr <- function(m) {
  vc <- VarCorr(m)$cond
  terms <- lapply(names(vc), function(g) {
    v <- vc[[g]]
    list(group = g, names = arr(colnames(v)), sd = arr(attr(v, "stddev")),
         corr = rows_of(if (ncol(v) > 1) attr(v, "correlation") else matrix(1, 1, 1)))
  })
  scalar <- all(vapply(vc, ncol, integer(1)) == 1)
  sds <- vapply(vc, function(v) attr(v, "stddev")[[1]], numeric(1))
  list(theta = if (scalar) arr(unname(sds)), theta_names = if (scalar) arr(names(sds)),
       varcorr = terms)
}

## MASS::glmmPQL: an lme fit to the working response with working weights
## 1 / invwt, iterated.  The final working response and weights are in m$data.
extract_pql <- function(s, data) {
  cl <- call("glmmPQL", fixed = as.formula(s$formula), random = as.formula(s$random),
             family = str2lang(s$family), data = quote(data), verbose = FALSE)
  if (!is.null(s$weights)) cl$weights <- as.name(s$weights)
  env <- environment()
  f <- with_conditions(eval(cl, envir = env))
  m <- f$value
  tt <- summary(m)$tTable
  V <- as.matrix(vcov(m))
  re <- ranef(m)
  ## VarCorr() of an lme prints to 7 digits; the variance in full precision:
  group_var <- nlme::pdMatrix(m$modelStruct$reStruct)[[1]][1, 1] * m$sigma^2
  nd <- make_newdata(s, data)
  g <- s$groups
  c(common_header(s, data),
    list(random = s$random, family = m$family$family, link = m$family$link,
         fixef = list(names = arr(names(fixef(m))), values = arr(fixef(m))),
         se = arr(unname(tt[, "Std.Error"])), vcov = rows_of(V),
         coef_table = table_of(tt),
         ranef = list(list(group = g, levels = arr(rownames(re)),
                           columns = arr(colnames(re)), values = rows_of(re))),
         varcorr = list(
           group_sd = sqrt(group_var),
           group_variance = group_var,
           residual_sd = m$sigma,
           residual_variance = m$sigma^2),
         nobs = nrow(m$data), ngroups = as.list(setNames(nrow(re), g)),
         working_weights = arr(unname(1 / m$data$invwt)),
         working_response = arr(unname(m$data$zz)),
         fitted_link = arr(unname(fitted(m))),
         predict_link = arr(unname(predict(m, type = "link"))),
         predict_response = arr(unname(predict(m, type = "response"))),
         predict_link_fixed = arr(unname(predict(m, type = "link", level = 0))),
         predict_response_fixed = arr(unname(predict(m, type = "response", level = 0))),
         messages = arr(f$messages),
         versions = versions()))
}

## ---------------------------------------------------------------------------
## Main loop
## ---------------------------------------------------------------------------

args <- commandArgs(trailingOnly = TRUE)
todo <- if (length(args)) gspecs[args] else gspecs
stopifnot(!any(vapply(todo, is.null, logical(1))))

for (s in todo) {
  t0 <- proc.time()[["elapsed"]]
  data <- load_data(s)
  out <- switch(s$method,
    glmer = , glmer.nb = {
      fit <- fit_best_glmer(s, data)
      x <- extract_glmer(s, data, fit)
      cat(sprintf("%-30s best=%-11s spread=%.1e theta_rel=%.1e  dev=%.10g lap=%.10g\n",
                  s$name, fit$optimizer, fit$objective_spread, fit$theta_spread,
                  x$deviance, x$laplace_objective))
      for (opt in names(fit$all_messages))
        for (msg in fit$all_messages[[opt]]) cat(sprintf("    [%s] %s\n", opt, msg))
      x
    },
    glmmTMB = extract_glmmtmb(s, data),
    glmmPQL = extract_pql(s, data))
  write_fixture(out, file.path(fixture_dir, paste0(s$name, ".json")))
  cat(sprintf("%-30s written (%.1fs)\n", s$name, proc.time()[["elapsed"]] - t0))
}
cat(versions_line(), "\n")
