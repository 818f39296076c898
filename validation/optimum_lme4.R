# lme4's REML criterion and ML deviance for every data set that validation/optimum.py writes.
# Usage: Rscript validation/optimum_lme4.R datasets.csv out.csv
# The CSV holds the data sets stacked, with columns design, replicate and the model's variables.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(TRUE)
data <- read.csv(args[1], stringsAsFactors = TRUE)
formulas <- c(
  nested = y ~ trt + (1 | block / plot),
  crossed = y ~ x + cond + (1 | subj) + (1 | item),
  slopes = y ~ t + (t | g)
)
# the tight settings of tools/reference_common.R; the lower of the two optimizers' optima is kept
controls <- list(
  lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6)),
  lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14,
                                                      xtol_rel = 1e-12, ftol_rel = 1e-14, maxeval = 1e5))
)
rows <- list()
for (key in unique(paste(data$design, data$replicate))) {
  part <- droplevels(data[paste(data$design, data$replicate) == key, ])
  design <- as.character(part$design[1])
  criterion <- function(reml) {
    min(vapply(controls, function(control) {
      fit <- suppressMessages(suppressWarnings(lmer(formulas[[design]], part, REML = reml, control = control)))
      if (reml) REMLcrit(fit) else deviance(fit)
    }, numeric(1)))
  }
  rows[[key]] <- data.frame(design = design, replicate = part$replicate[1],
                            reml_lme4 = criterion(TRUE), ml_lme4 = criterion(FALSE))
}
write.csv(do.call(rbind, rows), args[2], row.names = FALSE)
