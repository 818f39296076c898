## Kenward-Roger reference values for gls() and lme() fits with variance
## functions and correlation structures (nlme 3.1-162), by dense matrix algebra.
##
## Run from the repository root:
##     Rscript tools/reference_kr_nlme.R
## Writes tests/fixtures/kr_nlme/<model>.json, one per row of `kr_models`.
##
## nlme does not give Kenward-Roger's method; this script is an independent
## implementation of Kenward & Roger (1997) in the form of pbkrtest and SAS
## PROC MIXED DDFM=KR, for testing the package's group-by-group one:
##
## * the fit: the tight nlme fit of reference_nlme_models.R (REML);
## * V(gamma): the dense N x N marginal covariance written out here from its
##   definition, in the covariance parameters gamma = (entries of the
##   random-effects covariance G, lower triangle column by column; sigma^2; the
##   correlation parameter; the variance function's parameters), the last two
##   on nlme's reported scale (coef(..., unconstrained = FALSE)).  It is checked
##   against nlme's getVarCov() at the estimates;
## * dV/dgamma and d2V/dgamma2: numDeriv::genD (Richardson extrapolation);
## * with P_i = -X'V^-1 V_i V^-1 X, Q_ij = X'V^-1 V_i V^-1 V_j V^-1 X,
##   R_ij = X'V^-1 V_ij V^-1 X, Phi = (X'V^-1 X)^-1 and the REML expected
##   information I_ij = tr(V^-1 V_i V^-1 V_j) / 2 - tr(Phi Q_ij)
##   + tr(Phi P_i Phi P_j) / 2, W = I^-1:
##       Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j - R_ij / 4)] Phi;
## * df, scaled F: pbkrtest's own .KR_adjust (pbkrtest 0.5.2) with these P, W;
##   type-III hypotheses: lmerTest's (get_contrasts_type3 of an lmer fit with the
##   same fixed effects; they depend on the fixed-effects design only).

source(file.path("tools", "reference_nlme_models.R"))
suppressPackageStartupMessages({
  library(numDeriv)
  library(pbkrtest)
  library(lmerTest)
})
stopifnot(packageVersion("pbkrtest") == "0.5.2")

out_dir <- file.path("tests", "fixtures", "kr_nlme")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

## name in `models` -> how V is written: the grouping variable of the residual
## correlation and random effects, the random-effects formula (lme), the
## correlation ("ar1", "cs") and the variance function (ident by a factor,
## power of a covariate).
kr_models <- list(
  gls_ovary_ar1 = list(group = "Mare", cor = "ar1"),
  gls_orthodont_compsymm = list(group = "Subject", cor = "cs"),
  gls_orthodont_ident_sex = list(group = "Subject", var = c("ident", "Sex")),
  gls_hetero_power_ar1 = list(group = "unit", cor = "ar1", var = c("power", "time")),
  lme_orthodont_ar1 = list(group = "Subject", random = ~ 1, cor = "ar1"),
  lme_orthodont_ident = list(group = "Subject", random = ~ 1, var = c("ident", "Sex")),
  lme_orthodont_compsymm = list(group = "Subject", random = ~ age - 1, cor = "cs"),
  lme_hetero_power_ar1 = list(group = "unit", random = ~ 1, cor = "ar1",
                              var = c("power", "time"))
)

## The marginal covariance V(gamma) and gamma at the estimates.
covariance_model <- function(fit, d, k) {
  g <- d[[k$group]]
  same <- outer(g, g, "==")
  position <- ave(seq_along(g), g, FUN = seq_along)
  lag <- abs(outer(position, position, "-"))
  z <- if (is.null(k$random)) NULL else model.matrix(k$random, d)
  q <- if (is.null(z)) 0 else ncol(z)
  lower <- if (q) which(lower.tri(diag(q), diag = TRUE)) else integer(0)
  estimate <- numeric(0)
  if (q) {
    G <- as.matrix(getVarCov(fit))
    estimate <- G[lower]
  }
  estimate <- c(estimate, sigma2 = fit$sigma^2)
  ncor <- 0
  if (!is.null(k$cor)) {
    ncor <- 1
    estimate <- c(estimate, coef(fit$modelStruct$corStruct, unconstrained = FALSE))
  }
  strata <- NULL
  if (!is.null(k$var)) {
    vc <- coef(fit$modelStruct$varStruct, unconstrained = FALSE)
    if (k$var[1] == "ident") strata <- names(vc)
    estimate <- c(estimate, vc)
  }
  V <- function(gamma) {
    i <- 0
    out <- matrix(0, nrow(d), nrow(d))
    if (q) {
      G <- matrix(0, q, q)
      G[lower] <- gamma[seq_along(lower)]
      G[upper.tri(G)] <- t(G)[upper.tri(G)]
      out <- (z %*% G %*% t(z)) * same
      i <- length(lower)
    }
    sigma2 <- gamma[i + 1]
    i <- i + 1
    C <- diag(nrow(d))
    if (!is.null(k$cor)) {
      r <- gamma[i + 1]
      i <- i + 1
      C <- if (k$cor == "ar1") r^lag * same else (r + (1 - r) * diag(nrow(d))) * same
    }
    s <- rep(1, nrow(d))
    if (!is.null(k$var)) {
      v <- gamma[(i + 1):length(gamma)]
      if (k$var[1] == "ident") {
        stratum <- as.character(d[[k$var[2]]])
        ratio <- setNames(v, strata)
        s <- ifelse(stratum %in% strata, ratio[stratum], 1)
      } else {
        s <- abs(d[[k$var[2]]])^v
      }
    }
    out + sigma2 * (s %o% s) * C
  }
  list(V = V, estimate = estimate, group = g)
}

## V at the estimates against nlme's own marginal covariance, for a few groups.
check_against_nlme <- function(fit, d, cm) {
  V <- cm$V(cm$estimate)
  for (label in unique(as.character(cm$group))[1:3]) {
    rows <- which(as.character(cm$group) == label)
    theirs <- if (inherits(fit, "lme"))
      getVarCov(fit, individuals = label, type = "marginal")[[1]]
    else if (is.null(fit$modelStruct$corStruct))  # no grouping: rows in the data's order
      diag(fit$sigma^2 / varWeights(fit$modelStruct$varStruct)[rows]^2, length(rows))
    else getVarCov(fit, individual = label)
    gap <- max(abs(V[rows, rows] - as.matrix(theirs))) / max(abs(V[rows, rows]))
    if (gap > 1e-10) stop("V differs from getVarCov() for group ", label, ": ", gap)
  }
}

kenward_roger <- function(cm, X) {
  m <- length(cm$estimate)
  n <- nrow(X)
  ## genD's default steps (1e-4 |gamma|) lose digits to rounding in second
  ## derivatives of small parameters (|phi| = 0.04: 1e-3 relative); steps of
  ## 1e-2 max(|gamma|, 0.1), halved 3 times with Richardson extrapolation,
  ## leave about 1e-10.
  scale <- pmax(abs(unname(cm$estimate)), 0.1)
  D <- genD(function(delta) as.vector(cm$V(unname(cm$estimate) + delta * scale)), rep(0, m),
            method.args = list(eps = 1e-2, r = 4, v = 2))$D
  D[, 1:m] <- sweep(D[, 1:m, drop = FALSE], 2, scale, "/")
  pairs <- which(lower.tri(diag(m), diag = TRUE), arr.ind = TRUE)
  pairs <- pairs[order(pairs[, 1], pairs[, 2]), , drop = FALSE]  # genD's order: (1,1), (2,1), (2,2), ...
  D[, -(1:m)] <- sweep(D[, -(1:m), drop = FALSE], 2, scale[pairs[, 1]] * scale[pairs[, 2]], "/")
  first <- lapply(1:m, function(i) matrix(D[, i], n, n))
  second <- matrix(list(), m, m)
  col <- m
  for (i in 1:m) for (j in 1:i) {
    col <- col + 1
    second[[i, j]] <- second[[j, i]] <- matrix(D[, col], n, n)
  }
  Vinv <- solve(cm$V(cm$estimate))
  VinvX <- Vinv %*% X
  Phi <- solve(t(X) %*% VinvX)
  P <- lapply(first, function(Vi) -t(VinvX) %*% Vi %*% VinvX)
  H <- lapply(first, function(Vi) Vinv %*% Vi)
  information <- matrix(0, m, m)
  correction <- matrix(0, ncol(X), ncol(X))
  Q <- matrix(list(), m, m)
  for (i in 1:m) for (j in 1:m) {
    Q[[i, j]] <- t(VinvX) %*% first[[i]] %*% Vinv %*% first[[j]] %*% VinvX
    information[i, j] <- sum(diag(H[[i]] %*% H[[j]])) / 2 - sum(diag(Phi %*% Q[[i, j]])) +
      sum(diag(Phi %*% P[[i]] %*% Phi %*% P[[j]])) / 2
  }
  W <- solve(information)
  for (i in 1:m) for (j in 1:m) {
    R <- t(VinvX) %*% second[[i, j]] %*% VinvX
    correction <- correction + W[i, j] * (Q[[i, j]] - P[[i]] %*% Phi %*% P[[j]] - R / 4)
  }
  PhiA <- Phi + 2 * Phi %*% correction %*% Phi
  attr(PhiA, "P") <- P
  attr(PhiA, "W") <- W
  list(Phi = Phi, PhiA = PhiA, W = W)
}

f_test <- function(kr, L, beta) {
  L <- rbind(L)
  a <- pbkrtest:::.KR_adjust(kr$PhiA, kr$Phi, L, beta, rep(0, length(beta)))
  list(L = rows_of(L), ndf = a$ndf, ddf = a$ddf, F = a$Fstat, F_unscaled = a$FstatU,
       p_value = a$p.value)
}

for (name in names(kr_models)) {
  s <- models[[name]]
  k <- kr_models[[name]]
  d <- nlme_data(s)
  fit <- fit_tight(s, d)$model
  stopifnot(fit$method == "REML")
  cm <- covariance_model(fit, d, k)
  check_against_nlme(fit, d, cm)
  X <- model.matrix(formula(fit), d)
  beta <- if (inherits(fit, "lme")) fixef(fit) else coef(fit)
  kr <- kenward_roger(cm, X)
  stopifnot(max(abs(kr$Phi - vcov(fit))) < 1e-8 * max(abs(vcov(fit))))
  p <- ncol(X)
  se <- sqrt(diag(kr$PhiA))
  df <- sapply(1:p, function(i) pbkrtest:::.KR_adjust(kr$PhiA, kr$Phi, rbind(diag(p)[i, ]),
                                                       beta, rep(0, p))$ddf)
  t_value <- beta / se
  coef_table <- data.frame(Estimate = beta, `Std. Error` = se, df = df, `t value` = t_value,
                           `Pr(>|t|)` = 2 * pt(abs(t_value), df, lower.tail = FALSE),
                           check.names = FALSE, row.names = colnames(X))
  contrasts <- list(f_test(kr, diag(p)[-1, , drop = FALSE], beta),
                    f_test(kr, rbind(c(0, 1, rep(0, p - 2)), c(0, 1, rep(-1, p - 2))), beta),
                    f_test(kr, rbind(c(1, rep(1, p - 1))), beta))
  ## lmerTest's type-III hypotheses of the fixed-effects terms
  shadow <- lmerTest::lmer(update(formula(fit), paste(". ~ . + (1 |", k$group, ")")), d)
  hypotheses <- lmerTest:::get_contrasts_type3(shadow)
  anova_rows <- lapply(hypotheses, function(L) f_test(kr, L, beta))
  write_fixture(list(
    name = name,
    call = paste(deparse(s$call, width.cutoff = 500), collapse = " "),
    gamma = as.list(cm$estimate),
    unconstrained = list(
      corStruct = if (is.null(k$cor)) NULL else I(unname(coef(fit$modelStruct$corStruct))),
      varStruct = if (is.null(k$var)) NULL else I(unname(coef(fit$modelStruct$varStruct)))),
    random_covariance = if (inherits(fit, "lme")) rows_of(as.matrix(getVarCov(fit))) else NULL,
    sigma = fit$sigma,
    fixef = I(unname(beta)),
    vcov = rows_of(kr$Phi),
    vcov_adjusted = rows_of(kr$PhiA),
    coef_table = table_of(coef_table),
    contrasts = contrasts,
    anova = list(terms = names(hypotheses), tests = unname(anova_rows)),
    versions = paste(R.version.string, "; nlme", format(packageVersion("nlme")),
                     "; pbkrtest", format(packageVersion("pbkrtest")),
                     "; numDeriv", format(packageVersion("numDeriv")))
  ), file.path(out_dir, paste0(name, ".json")))
  cat(name, "\n")
}
