## Reference profile confidence limits of glmer fits (lme4's confint(m, method = "profile")).
##
## Run from the repository root:
##     Rscript tools/reference_glmer_profile.R [name ...]
## Writes tests/fixtures/glmm/profile_<name>.json for cbpp, grouseticks_poisson and grouseticks_nb
## (only the named ones when names are given).
##
## lme4's profile of a glmerMod holds one parameter (an sd/cor of theta or a fixed effect) and
## minimizes the Laplace deviance over all the others (devfun2 over sd/cor and beta); there is no
## .sigma row for the binomial, Poisson and negative binomial families.  Its limits interpolate the
## profile's trace with splines.
##
## cbpp is glmer's default fit.  The grouseticks fits use bobyqa with rhoend = 1e-10 (the control
## profile() reuses for its own optimizations, so the trace's points are found precisely).  The
## glmer.nb fit's theta is polished as in reference_glmer.R (grouseticks_nb.json); its profile holds
## the negative binomial's theta at that estimate, as lme4's does (the fit's family is
## negative.binomial(theta); only theta and beta are profiled).  lme4 profiles it on the devfun of
## getME(m, "devfun"), whose PIRLS stops early (tolPwrss = 1e-7): there that devfun is 2.7e-3 above
## the fit's -2 logLik at the estimates and ragged by a few 1e-3 along the profile.

source(file.path("tools", "reference_common.R"))
suppressPackageStartupMessages(library(jsonlite))

tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
grouse_poisson <- "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"
grouse_nb <- "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)"

## glmer.nb's theta found again near its answer with tol = 1e-10 (reference_glmer.R's polish_nb_theta).
polish_nb_theta <- function(m, control) {
  th0 <- getME(m, "glmer.nb.theta")
  dev_at <- function(t) -2 * as.numeric(logLik(lme4:::refitNB(m, theta = exp(t), control = control)))
  opt <- optimize(dev_at, interval = log(th0) + c(-0.01, 0.01), tol = 1e-10)
  lme4:::refitNB(m, theta = exp(opt$minimum), control = control)
}

models <- list(
  cbpp = function() list(
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)", family = "binomial",
    fit = glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = get_dataset("cbpp"),
                family = binomial)),
  grouseticks_poisson = function() list(
    formula = grouse_poisson, family = "poisson",
    fit = glmer(as.formula(grouse_poisson), data = get_dataset("grouseticks"), family = poisson,
                control = tight)),
  grouseticks_nb = function() {
    data <- get_dataset("grouseticks")
    m <- glmer.nb(as.formula(grouse_nb), data = data, control = tight)
    list(formula = grouse_nb, family = "negative_binomial", fit = polish_nb_theta(m, tight))
  }
)

args <- commandArgs(trailingOnly = TRUE)
todo <- if (length(args)) models[args] else models
stopifnot(!any(vapply(todo, is.null, logical(1))))

for (name in names(todo)) {
  spec <- todo[[name]]()
  m <- spec$fit
  t0 <- proc.time()[["elapsed"]]
  pr <- profile(m)
  ci <- confint(pr)  # what confint(m, method = "profile") gives
  seconds <- proc.time()[["elapsed"]] - t0
  out <- list(
    lme4_version = as.character(packageVersion("lme4")),
    formula = spec$formula,
    family = spec$family,
    deviance = -2 * c(logLik(m)),
    names = rownames(ci),
    lower = unname(ci[, 1]),
    upper = unname(ci[, 2])
  )
  if (name != "cbpp") {
    out$theta <- unname(getME(m, "theta"))
    out$fixef <- unname(fixef(m))
  }
  if (name == "grouseticks_nb") out$nb_theta <- getME(m, "glmer.nb.theta")
  if (name == "grouseticks_poisson") {
    ## .sig02's trace: LOCATION's sd (.sig03) reaches 0 between two of its points, where the spline
    ## that lme4's upper limit interpolates crosses the profile's kink
    tr <- as.data.frame(pr)
    tr <- tr[tr$.par == ".sig02", ]
    out$trace_sig02 <- list(zeta = tr$.zeta, sig02 = tr$.sig02, sig03 = tr$.sig03)
  }
  write_json(out, file.path("tests", "fixtures", "glmm", paste0("profile_", name, ".json")),
             digits = NA, pretty = TRUE, auto_unbox = TRUE)
  cat(sprintf("%-20s confint %.1fs\n", name, seconds))
  print(ci, digits = 10)
}
