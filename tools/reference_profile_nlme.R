## Reference likelihood-profile confidence limits for gls() and lme() fits with
## a correlation structure or a variance function (nlme 3.1-162), computed
## independently of the library: nlme has no profile() for these models.
##
## Run from the repository root:
##     Rscript tools/reference_profile_nlme.R
## Writes tests/fixtures/nlme_profile/<model>.json.
##
## The convention is lme4's profile.merMod (and mixedmodels'): the profile is
## of the ML deviance for every parameter, also for models fitted by REML
## (lme4's devfun2 refits by ML).  For a parameter psi,
##     d(psi) = min over all other parameters of the ML deviance, psi held;
## the 95% limits are the two solutions of d(psi) - d_hat = qchisq(0.95, 1).
## They are found here by uniroot (tol 1e-12) on d(psi), each d(psi) by
## refitting with psi held:
##   * a structure's parameter (corAR1's Phi, varPower's power): the structure
##     held at the value (corAR1(value, fixed = TRUE); varPower(fixed = value),
##     whose `fixed` is the value itself: varPower(value, fixed = TRUE) would
##     leave the power at 1);
##   * a fixed effect b_j: the model without x_j fitted to y - b x_j (nlme's
##     gls and lme have no offset(); the response shift is the same model);
##   * sigma: glsControl(sigma = value) / lmeControl(sigma = value).
## Whatever else is free is optimized tightly: the structure's parameter of a
## gls by optimize() (tol 1e-10) on gls fits with the structure fixed, the
## random-effects parameters of an lme by nlminb with rel.tol = 1e-13.

source(file.path("tools", "reference_nlme_models.R"))

out_dir <- file.path("tests", "fixtures", "nlme_profile")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
cutoff <- qchisq(0.95, 1)

## The ML deviance with the named parameters held (`phi`: the structure's
## value; `sigma`; `beta`: list(name = , value = )); the structure's
## parameter is optimized when it is not held.
deviance_held <- function(s, phi = NULL, sigma = NULL, beta = NULL) {
  d <- s$data
  response <- s$response
  formula <- s$formula
  if (!is.null(beta)) {
    ## the model matrix less column b_j, not the formula less a term: R would
    ## recode the remaining interactions (age:Sex without age spans age again)
    x <- model.matrix(formula, d)
    d$.shifted <- d[[response]] - beta$value * x[, beta$name]
    d$.x <- x[, colnames(x) != beta$name, drop = FALSE]
    formula <- .shifted ~ .x - 1
  }
  one <- function(value) {
    structure <- s$structure(value)
    args <- list(formula, data = d, method = "ML")
    args[[s$argument]] <- structure
    if (s$kind == "lme") {
      args$random <- s$random
      args$control <- lmeControl(msMaxIter = 1000, msMaxEval = 5000,
                                 rel.tol = 1e-13, returnObject = TRUE,
                                 sigma = if (is.null(sigma)) 0 else sigma)
      fit <- suppressWarnings(do.call(lme, args))
    } else {
      args$control <- glsControl(sigma = if (is.null(sigma)) 0 else sigma)
      fit <- do.call(gls, args)
    }
    -2 * c(logLik(fit))
  }
  if (!is.null(phi)) return(one(phi))
  optimize(one, s$range, tol = 1e-10)$objective
}

## Limits of one parameter: uniroot on each side of the estimate, the bracket
## widened in steps of `step` until the deviance passes the cutoff.
limits <- function(s, held, estimate, step, d_hat) {
  excess <- function(v) held(v) - d_hat - cutoff
  side <- function(direction) {
    far <- estimate + direction * step
    while (excess(far) < 0) far <- estimate + 2 * (far - estimate)
    uniroot(excess, sort(c(estimate, far)), tol = 1e-12)$root
  }
  c(side(-1), side(1))
}

profile_model <- function(s) {
  ## the ML optimum: the structure's parameter by optimize(), the rest closed
  ## form (gls) or by nlminb (lme)
  best <- optimize(function(v) deviance_held(s, phi = v), s$range, tol = 1e-10)
  phi_hat <- best$minimum
  d_hat <- best$objective
  structure <- s$structure(phi_hat)
  args <- list(s$formula, data = s$data, method = "ML")
  args[[s$argument]] <- structure
  if (s$kind == "lme") {
    args$random <- s$random
    args$control <- lmeControl(msMaxIter = 1000, msMaxEval = 5000,
                               rel.tol = 1e-13, returnObject = TRUE)
    fit <- suppressWarnings(do.call(lme, args))
    beta_hat <- fixef(fit)
  } else {
    fit <- do.call(gls, args)
    beta_hat <- coef(fit)
  }
  sigma_hat <- fit$sigma
  se <- sqrt(diag(vcov(fit)))
  out <- list()
  out[[s$phi_name]] <- limits(s, function(v) deviance_held(s, phi = v), phi_hat,
                              0.1 * s$phi_scale, d_hat)
  ## lme's sigma is not held here: with lmeControl(sigma = ) nlme 3.1-162
  ## reports another likelihood (at the ML sigma, -2 logLik is 2337.2 where the
  ## free fit's is 1553.0 for lme_ovary_ar1), so its limits are checked
  ## through the lme fits that equal lmer fits (lme4's profiles) instead.
  if (s$kind == "gls")
    out$sigma <- limits(s, function(v) deviance_held(s, sigma = v), sigma_hat,
                        0.1 * sigma_hat, d_hat)
  for (b in s$fixed) {
    out[[b]] <- limits(s, function(v)
      deviance_held(s, beta = list(name = b, value = v)), beta_hat[[b]],
      se[[b]], d_hat)
  }
  list(
    model = s$name, call = s$text,
    convention = paste("ML deviance profile (lme4's profile.merMod); limits",
                       "where d(psi) - d_hat = qchisq(0.95, 1)"),
    ml_deviance = d_hat,
    estimates = c(setNames(list(phi_hat), s$phi_name), list(sigma = sigma_hat),
                  as.list(beta_hat[s$fixed])),
    limits = lapply(out, arr),
    versions = paste(R.version.string, "; nlme", format(packageVersion("nlme")))
  )
}

ovary_data <- ovary(get_dataset("Ovary"))
orthodont_data <- get_dataset("Orthodont")

specs <- list(
  list(name = "gls_ovary_ar1", kind = "gls", data = ovary_data,
       text = "gls(follicles ~ sinT + cosT, correlation = corAR1(form = ~ 1 | Mare))",
       formula = follicles ~ sinT + cosT, response = "follicles",
       argument = "correlation", phi_name = "corStruct.Phi", range = c(-0.99, 0.99),
       phi_scale = 0.5,
       structure = function(v) corAR1(v, form = ~ 1 | Mare, fixed = TRUE),
       fixed = c("sinT", "cosT")),
  list(name = "gls_orthodont_power", kind = "gls", data = orthodont_data,
       text = "gls(distance ~ age * Sex, weights = varPower(form = ~ age))",
       formula = distance ~ age * Sex, response = "distance",
       argument = "weights", phi_name = "varStruct.power", range = c(-3, 3),
       phi_scale = 1,
       structure = function(v) varPower(form = ~ age, fixed = v),
       fixed = c("age")),
  list(name = "lme_ovary_ar1", kind = "lme", data = ovary_data,
       text = "lme(follicles ~ sinT + cosT, random = ~ 1 | Mare, correlation = corAR1())",
       formula = follicles ~ sinT + cosT, response = "follicles", random = ~ 1 | Mare,
       argument = "correlation", phi_name = "corStruct.Phi", range = c(-0.99, 0.99),
       phi_scale = 0.5,
       structure = function(v) corAR1(v, fixed = TRUE),
       fixed = c("sinT"))
)

## Rscript tools/reference_profile_nlme.R [name ...]: only the named models (all by default).
wanted <- commandArgs(trailingOnly = TRUE)
if (length(wanted)) specs <- Filter(function(s) s$name %in% wanted, specs)

for (s in specs) {
  result <- profile_model(s)
  write_fixture(result, file.path(out_dir, paste0(s$name, ".json")))
  cat(s$name, "\n")
  str(result$limits)
}
