## Reference values for gls() and lme() with variance functions and
## correlation structures (nlme 3.1-162), written as JSON test fixtures.
##
## Run from the repository root:
##     Rscript tools/reference_nlme.R
## Writes to tests/fixtures/nlme/:
##   <model>.json        one per row of `models`: the fit (coefficients, vcov,
##                       summary table, sigma, logLik, AIC, BIC, variance
##                       function / correlation / random-effects parameters on
##                       nlme's reported and unconstrained scales), intervals(),
##                       apVar, fitted values, residuals of the three types,
##                       random effects, predictions on new data;
##   anova_<name>.json   one per row of `comparisons`: anova(m1, m2, ...);
##   known_v.json        GLS with a known block-diagonal covariance, by hand.
##
## The data, the models and their tight fits come from reference_nlme_models.R;
## data loading and the exact JSON writer from reference_common.R (the data are
## the package's CSV files, factors rebuilt with R's level order).

source(file.path("tools", "reference_nlme_models.R"))

## Likelihood-ratio comparisons: anova(m1, m2, ...) of fits in `models`.
comparisons <- list(
  ovary_ar1_ml = c("gls_ovary_ml", "gls_ovary_ar1_ml"),
  orthodont_ml = c("lme_orthodont_intercept_ml", "lme_orthodont_ar1_ml",
                   "lme_orthodont_slope_ml"),
  orthodont_gls_lme = c("gls_orthodont_compsymm", "lme_orthodont_ar1",
                        "gls_orthodont_symm_ident"),
  hetero_reml = c("gls_hetero_power_ar1", "gls_hetero_comb_ar1")
)

## ---------------------------------------------------------------------------
## apVar with an accurate Hessian
## ---------------------------------------------------------------------------

## nlme's apVar is the inverse of minus the Hessian of the log-likelihood on its
## natural scale, by fdHess: one finite-difference design with steps
## eps^(1/3) max(|par|, 0.05), which loses several digits to rounding (for
## parameters near 0 the steps are ~3e-7).  The same function is
## differentiated here by central differences with steps 1e-4 max(|par|, 1)
## (error ~1e-8 for smooth functions, rounding error ~1e-5; no Richardson
## extrapolation, which goes wrong on corSpher/corLin, whose likelihoods have a
## kink in the second derivative wherever a distance equals the range).
## intervals() of a copy of the fit carrying that apVar gives nlme's intervals
## without the rounding error.  The arguments nlme passes to lmeApVar /
## glsApVar are captured with trace() on the final fit.
central_hessian <- function(f, x, ...) {
  n <- length(x)
  h <- 1e-4 * pmax(abs(x), 1)
  at <- function(i, si, j = 0, sj = 0) {
    z <- x
    if (i) z[i] <- z[i] + si * h[i]
    if (j) z[j] <- z[j] + sj * h[j]
    f(z, ...)
  }
  f0 <- f(x, ...)
  H <- matrix(0, n, n)
  for (i in seq_len(n)) {
    H[i, i] <- (at(i, 1) - 2 * f0 + at(i, -1)) / h[i]^2
    for (j in seq_len(i - 1)) {
      H[i, j] <- H[j, i] <- (at(i, 1, j, 1) - at(i, 1, j, -1) - at(i, -1, j, 1) +
                             at(i, -1, j, -1)) / (4 * h[i] * h[j])
    }
  }
  H
}

captured <- new.env()
trace("lmeApVar", where = asNamespace("nlme"), print = FALSE,
      tracer = quote({ captured$kind <- "lme"; captured$st <- lmeSt
                       captured$sigma <- sigma; captured$conLin <- conLin }))
trace("glsApVar", where = asNamespace("nlme"), print = FALSE,
      tracer = quote({ captured$kind <- "gls"; captured$st <- glsSt
                       captured$sigma <- sigma; captured$conLin <- conLin }))

accurate_apvar <- function() {
  st <- captured$st; sigma <- captured$sigma; conLin <- captured$conLin
  conLin[["logLik"]] <- 0
  cSt <- st[["corStruct"]]
  if (!is.null(cSt) && inherits(cSt, "corSymm")) {   # natural = TRUE
    natPar <- coef(cSt, unconstrained = FALSE)
    class(cSt) <- c("corNatural", "corStruct")
    coef(cSt) <- log((1 + natPar) / (1 - natPar))
    st[["corStruct"]] <- cSt
  }
  dims <- conLin$dims
  if (captured$kind == "gls") {
    if (!length(coef(st))) return(NULL)
    N <- dims$N - dims$REML * dims$p
    Pars <- c(coef(st), lSigma = log(sigma))
    H <- central_hessian(nlme:::glsApVar.fullGlsLogLik, Pars, object = st,
                           conLin = conLin, dims = dims, N = N)
  } else {
    sett <- attr(st, "settings")
    N <- dims$N - sett[1L] * dims$ncol[dims$Q + 1L]
    sett[2:3] <- c(1, 0)
    reSt <- st[["reStruct"]]
    for (i in seq_along(reSt)) {
      matrix(reSt[[i]]) <- as.double(sigma^2) * pdMatrix(reSt[[i]])
      if (inherits(reSt[[i]], "pdSymm")) reSt[[i]] <- pdNatural(reSt[[i]])
    }
    st[["reStruct"]] <- reSt
    Pars <- c(coef(st), lSigma = log(sigma))
    H <- central_hessian(nlme:::lmeApVar.fullLmeLogLik, Pars, object = st,
                           conLin = conLin, dims = dims, N = N, settings = sett)
  }
  val <- solve(-H)
  dimnames(val) <- list(names(Pars), names(Pars))
  attr(val, "Pars") <- Pars
  attr(val, "natural") <- TRUE
  val
}

## ---------------------------------------------------------------------------
## Extraction
## ---------------------------------------------------------------------------

named <- function(x) list(names = arr(if (is.null(names(x))) character(0) else names(x)),
                          values = arr(as.double(x)))
table_of <- function(x) {
  x <- as.data.frame(x, check.names = FALSE, stringsAsFactors = FALSE)
  list(rownames = arr(rownames(x)), columns = arr(colnames(x)),
       values = lapply(x, function(col) arr(if (is.numeric(col)) as.double(col)
                                            else as.character(col))))
}
matrix_of <- function(m) list(rownames = arr(rownames(m)), colnames = arr(colnames(m)),
                              values = rows_of(m))

## intervals(): every component as {rownames, lower, est, upper}.
intervals_of <- function(m) {
  iv <- intervals(m)
  one <- function(x) {
    if (is.null(dim(x))) x <- matrix(x, 1, 3, dimnames = list("sigma", names(x)))
    list(rownames = arr(rownames(x)), lower = arr(x[, 1]), est = arr(x[, 2]),
         upper = arr(x[, 3]))
  }
  out <- list()
  for (nm in names(iv)) {
    if (nm == "reStruct") out$reStruct <- lapply(iv$reStruct, one)
    else out[[nm]] <- one(iv[[nm]])
  }
  out
}

## Random-effects covariance per grouping level (absolute scale).
restruct_of <- function(m) {
  lapply(m$modelStruct$reStruct, function(pd) {
    v <- as.matrix(pd) * m$sigma^2
    matrix_of(v)
  })
}

ranef_of <- function(m) {
  re <- ranef(m)
  if (is.data.frame(re)) re <- setNames(list(re), names(m$modelStruct$reStruct))
  lapply(re, table_of)
}

struct_coef <- function(st, unconstrained)
  if (is.null(st)) NULL else named(coef(st, unconstrained = unconstrained))

## Normalized residuals with the correlation factor applied to each group's own
## rows.  nlme's resid(type = "normalized") applies the factors, which are laid
## out for the rows sorted by group, to the residuals in the data's order: the
## two agree only when the data are already sorted by group.
grouped_normalized <- function(m) {
  val <- resid(m, type = "pearson")
  cSt <- m$modelStruct$corStruct
  if (is.null(cSt)) return(arr(as.double(val)))
  grps <- m$groups
  ord <- if (is.data.frame(grps)) do.call(order, unname(as.list(grps))) else order(grps)
  out <- numeric(length(val))
  out[ord] <- recalc(cSt, list(Xy = as.matrix(as.double(val)[ord])))$Xy[, 1]
  arr(out)
}

max_rel_diff <- function(a, b) {
  a <- as.double(unlist(a)); b <- as.double(unlist(b))
  if (!length(b)) return(0)
  max(abs(a - b) / pmax(abs(b), 1e-3))
}

extract <- function(s, fits, d) {
  m <- fits$model
  is_lme <- inherits(m, "lme")
  sm <- summary(m)
  ms <- m$modelStruct
  out <- list(
    name = s$name, call = paste(deparse(s$call, width.cutoff = 500), collapse = " "),
    dataset = s$dataset, data_changes = s$data_changes,
    method = m$method, nobs = nobs(m),
    coefficients = named(if (is_lme) fixef(m) else coef(m)),
    vcov = matrix_of(vcov(m)),
    tTable = table_of(sm$tTable),
    sigma = m$sigma,
    logLik = c(logLik(m)), df = attr(logLik(m), "df"),
    AIC = AIC(m), BIC = BIC(m),
    varStruct = struct_coef(ms$varStruct, FALSE),
    varStruct_unconstrained = struct_coef(ms$varStruct, TRUE),
    corStruct = struct_coef(ms$corStruct, FALSE),
    corStruct_unconstrained = struct_coef(ms$corStruct, TRUE),
    apVar = if (is.null(m$apVar)) NULL else if (is.character(m$apVar)) list(error = m$apVar) else
      c(matrix_of(m$apVar), list(pars = named(attr(m$apVar, "Pars")))),
    intervals = tryCatch(intervals_of(m), error = function(e) list(error = conditionMessage(e))),
    apVar_accurate = if (is.null(acc <- fits$accurate)) NULL else
      c(matrix_of(acc), list(pars = named(attr(acc, "Pars")))),
    intervals_accurate = if (is.null(fits$accurate)) NULL else {
      m_acc <- m
      m_acc$apVar <- fits$accurate
      intervals_of(m_acc)
    },
    fitted = if (is_lme) table_of(fitted(m, level = 0:m$dims$Q)) else arr(fitted(m)),
    residuals = list(response = arr(resid(m, type = "response")),
                     pearson = arr(resid(m, type = "pearson")),
                     normalized = arr(resid(m, type = "normalized")),
                     normalized_grouped = grouped_normalized(m)),
    default_logLik = c(logLik(fits$default)),
    default_max_rel_diff = max_rel_diff(coef(fits$default$modelStruct),
                                        coef(m$modelStruct))
  )
  if (s$dataset == "hetero")
    out$data_levels <- list(arm = arr(levels(d$arm)))
  if (is_lme) {
    out$reStruct <- restruct_of(m)
    out$ranef <- ranef_of(m)
    out$fixDF <- list(X = named(m$fixDF$X), terms = named(m$fixDF$terms))
    out$ngroups <- named(m$dims$ngrps[seq_len(m$dims$Q)])
  }
  if (!is.null(s$newdata)) {
    nd <- d[s$newdata, , drop = FALSE]
    out$newdata_rows <- arr(s$newdata)
    out$predict <- if (is_lme) table_of(predict(m, nd, level = 0:m$dims$Q))
                   else arr(predict(m, nd))
  }
  out
}

## ---------------------------------------------------------------------------
## Run
## ---------------------------------------------------------------------------

fitted_models <- list()
for (s in models) {
  d <- nlme_data(s)
  t0 <- proc.time()[["elapsed"]]
  fits <- fit_tight(s, d)
  captured$st <- NULL
  invisible(suppressWarnings(eval(fits$call)))  # the final fit once more, capturing its apVar inputs
  fits$accurate <- if (is.null(captured$st)) NULL else accurate_apvar()
  fitted_models[[s$name]] <- fits$model
  fx <- extract(s, fits, d)
  fx$versions <- paste(R.version.string, "; nlme", format(packageVersion("nlme")),
                       "; jsonlite", format(packageVersion("jsonlite")))
  write_fixture(fx, file.path(fixture_dir, paste0(s$name, ".json")))
  cat(sprintf("%-30s %6.2fs logLik %.8f (default %+.2e, max rel par diff %.1e)\n",
              s$name, proc.time()[["elapsed"]] - t0, fx$logLik,
              fx$default_logLik - fx$logLik, fx$default_max_rel_diff))
}

for (nm in names(comparisons)) {
  fits <- fitted_models[comparisons[[nm]]]
  tab <- do.call(anova, unname(fits))
  tab <- as.data.frame(tab)
  tab$call <- NULL
  rownames(tab) <- comparisons[[nm]]
  write_fixture(list(name = nm, models = arr(comparisons[[nm]]), table = table_of(tab)),
                file.path(fixture_dir, paste0("anova_", nm, ".json")))
  cat("anova", nm, "\n")
}

## GLS with a known covariance: V_i = 4 * AR(1)(0.6) correlation + 1 on the
## diagonal for each Subject of Orthodont (4 x 4 blocks), by hand.
known_v <- local({
  d <- get_dataset("Orthodont")
  X <- model.matrix(~ age * Sex, d)
  y <- d$distance
  block <- 4 * 0.6^abs(outer(1:4, 1:4, "-")) + diag(4)
  groups <- split(seq_len(nrow(d)), d$Subject)
  XtVX <- 0; XtVy <- 0; logdet <- 0
  for (rows in groups) {
    Vi <- block[seq_along(rows), seq_along(rows)]
    Vinv <- solve(Vi)
    XtVX <- XtVX + t(X[rows, ]) %*% Vinv %*% X[rows, ]
    XtVy <- XtVy + t(X[rows, ]) %*% Vinv %*% y[rows]
    logdet <- logdet + determinant(Vi)$modulus
  }
  cov_beta <- solve(XtVX)
  beta <- drop(cov_beta %*% XtVy)
  r <- y - drop(X %*% beta)
  quad <- 0
  for (rows in groups) quad <- quad + drop(t(r[rows]) %*% solve(block[seq_along(rows), seq_along(rows)], r[rows]))
  list(block = rows_of(block), coefficients = named(beta), vcov = matrix_of(cov_beta),
       logLik = -0.5 * (nrow(d) * log(2 * pi) + c(logdet) + quad))
})
write_fixture(known_v, file.path(fixture_dir, "known_v.json"))
cat("known_v\n")
