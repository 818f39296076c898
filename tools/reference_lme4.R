## Reference values from R's lme4::lmer, written as JSON test fixtures.
##
## Run from the repository root:
##     Rscript tools/reference_lme4.R
## Writes one file per model to tests/fixtures/lme4/<name>.json.
##
## The data are read from the CSV files shipped with the Python package
## (src/mixedmodels/datasets/data), NOT from R's packaged datasets, so R and
## Python see exactly the same numbers, factor levels and level order.
##
## Every model is fitted twice with tight optimizer settings (bobyqa via minqa
## and BOBYQA via nloptwrap); the fit with the lower objective (REML criterion
## or ML deviance) is kept and the absolute difference of the two objectives is
## recorded as "objective_spread".
##
## The models (`specs`), data loading, fitting and JSON helpers are in
## reference_common.R, shared with reference_predict.R.

source(file.path("tools", "reference_common.R"))

fixture_dir <- file.path("tests", "fixtures", "lme4")
dir.create(fixture_dir, recursive = TRUE, showWarnings = FALSE)

## ---------------------------------------------------------------------------
## Fit check
## ---------------------------------------------------------------------------

## Check that the kept fit is the optimum in theta, not only in objective:
## restart bobyqa from its theta with a small trust region and report the
## largest relative change of theta (console only; ~1e-7 or less expected).
polish_check <- function(s, data, m) {
  devf <- fit_model(s, data, controls$bobyqa, devFunOnly = TRUE)$value
  theta <- getME(m, "theta")
  r <- minqa::bobyqa(theta, devf, lower = getME(m, "lower"),
                     control = list(rhobeg = 1e-4, rhoend = 1e-13, maxfun = 1e5))
  list(theta_rel = max(abs(r$par - theta) / pmax(abs(theta), 1e-3)),
       improvement = objective(m) - r$fval)
}

## ---------------------------------------------------------------------------
## Extraction helpers
## ---------------------------------------------------------------------------

na_to_null <- function(x) if (length(x) == 1 && is.na(x)) NULL else x

extract_varcorr <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i)
    list(grp = vc$grp[i], var1 = na_to_null(vc$var1[i]),
         var2 = na_to_null(vc$var2[i]), vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

## Random-effect terms per grouping factor: a list (one per factor in
## m@flist order) of lists of column-name vectors, one per term.
term_columns <- function(m) {
  asgn <- attr(m@flist, "assign")
  lapply(seq_along(m@flist), function(i) unname(m@cnms[asgn == i]))
}

extract_ranef <- function(re) {
  lapply(names(re), function(g) {
    x <- re[[g]]
    list(group = g, levels = arr(rownames(x)), terms = arr(colnames(x)),
         values = rows_of(x))
  })
}

## Conditional variances.  attr(ranef(m)[[g]], "postVar") is a q x q x n
## array when factor g has a single term, or a list of such arrays (one per
## term) when g appears in several terms (e.g. (1|g) + (0+x|g) or (x||g)).
extract_condvar <- function(m, re) {
  terms <- term_columns(m)
  out <- list()
  for (i in seq_along(re)) {
    g <- names(re)[i]
    pv <- attr(re[[g]], "postVar")
    blocks <- if (is.list(pv)) unname(pv) else list(pv)
    stopifnot(length(blocks) == length(terms[[i]]))
    for (k in seq_along(blocks)) {
      a <- blocks[[k]]
      q <- length(terms[[i]][[k]])
      stopifnot(dim(a)[1] == q, dim(a)[2] == q, dim(a)[3] == nrow(re[[g]]))
      out[[length(out) + 1]] <- list(
        group = g, terms = arr(terms[[i]][[k]]),
        values = lapply(seq_len(dim(a)[3]), function(l)
          rows_of(matrix(a[, , l], q, q))))
    }
  }
  out
}

## Named per-observation vector -> {rows, values}; optionally every
## thin-th used row only (rows 1, 1+thin, ...).
by_row <- function(x, thin = NULL) {
  idx <- seq_along(x)
  if (!is.null(thin)) idx <- seq(1, length(x), by = thin)
  list(rows = arr(as.integer(names(x)[idx])), values = arr(x[idx]))
}

extract_fixture <- function(s, fit) {
  m <- fit$model
  re <- ranef(m, condVar = TRUE)
  V <- as.matrix(vcov(m))
  theta <- getME(m, "theta")
  ll <- logLik(m)
  dropped <- attr(getME(m, "X"), "col.dropped")
  list(
    name = s$name, dataset = s$dataset, formula = s$formula, reml = s$reml,
    data_changes = s$data_changes,
    optimizer = fit$optimizer, objective_spread = fit$objective_spread,
    fixef = list(names = arr(names(fixef(m))), values = arr(fixef(m))),
    se = arr(sqrt(diag(V))),
    vcov = rows_of(V),
    theta = arr(theta), theta_names = arr(names(theta)),
    sigma = sigma(m),
    loglik = as.numeric(ll), aic = AIC(m), bic = BIC(m),
    ## For REML fits lme4 1.1-31 warns ("deprecated") and returns REMLcrit(m).
    deviance = tryCatch(suppressWarnings(deviance(m)), error = function(e) NULL),
    devcomp_cmp = as.list(getME(m, "devcomp")$cmp),
    reml_criterion = if (isREML(m)) REMLcrit(m) else NULL,
    df_loglik = attr(ll, "df"),
    nobs = nobs(m), ngroups = as.list(ngrps(m)),
    is_singular = isSingular(m),
    varcorr = extract_varcorr(m),
    ranef = extract_ranef(re),
    condvar = extract_condvar(m, re),
    fitted = by_row(fitted(m), s$thin),
    residuals = by_row(residuals(m), s$thin),
    messages = arr(fit$messages),
    dropped_columns = arr(if (is.null(dropped)) character(0) else names(dropped))
  )
}

## ---------------------------------------------------------------------------
## Main loop
## ---------------------------------------------------------------------------

summary_rows <- list()
for (s in specs) {
  data <- model_data(s)
  fit <- fit_best(s, data)
  pol <- polish_check(s, data, fit$model)
  path <- file.path(fixture_dir, paste0(s$name, ".json"))
  write_fixture(extract_fixture(s, fit), path)
  cat(sprintf(paste("%-23s best=%-9s spread=%.1e theta_rel=%.1e",
                    "polish: theta_rel=%.1e gain=%.1e  time=%s\n"),
              s$name, fit$optimizer, fit$objective_spread, fit$theta_spread,
              pol$theta_rel, pol$improvement,
              paste(sprintf("%.1fs", fit$seconds), collapse = "/")))
  for (opt in names(fit$all_messages))
    for (msg in fit$all_messages[[opt]])
      cat(sprintf("    [%s] %s\n", opt, msg))
  summary_rows[[s$name]] <- fit$objective_spread
}
cat("\nFixtures written to", fixture_dir, "\n")

spread <- unlist(summary_rows)
big <- spread[!is.na(spread) & spread > 1e-8]
cat("\nModels with objective spread > 1e-8:",
    if (length(big)) paste(sprintf("%s (%.3g)", names(big), big), collapse = ", ")
    else "none", "\n")
cat(versions_line(), "\n")
