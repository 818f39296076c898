## R's model matrices and lme4's double-bar expansion, for tests/test_formula.py.
##
## Run from the repository root:  Rscript tools/reference_formula.R
## Writes tests/fixtures/formula/data.csv (a small table with numeric, character, logical and non-ASCII
## columns) and tests/fixtures/formula/model_matrices.json: for each right-hand side, the column names
## and values of model.matrix(~ rhs, data) on that table or on cake (R orders terms by degree, writes an
## interaction's variables in the order they first appear in the formula and codes a factor by
## indicators where the term without it is not in the formula), and for each lme4 formula with a
## double bar the formula lme4's expandDoubleVerts makes of it.

source(file.path("tools", "reference_common.R"))

out_dir <- file.path("tests", "fixtures", "formula")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

n <- 24
d <- data.frame(
  x = seq(0.5, 12, by = 0.5),
  z = round(sin(seq_len(n)) * 3, 3),
  cyl = rep(c(4L, 6L, 8L), n / 3),
  f = rep(c("a", "b", "c"), each = n / 3),
  sector = rep(c("Public", "Catholic"), n / 2),
  g = rep(paste0("g", 1:4), n / 4),
  stringsAsFactors = FALSE
)
d$meanses <- d$x / 10
d$cses <- d$z
d$flag <- d$x > 6
d[["größe"]] <- d$x * 2
d[["время"]] <- rep(c("u", "v"), each = n / 2)
write.csv(d, file.path(out_dir, "data.csv"), row.names = FALSE, fileEncoding = "UTF-8")

## read back as the tests do: character columns are factors with sorted levels
d <- read.csv(file.path(out_dir, "data.csv"), check.names = FALSE, stringsAsFactors = TRUE,
              encoding = "UTF-8")

rhs <- c(
  "meanses * cses + sector * cses",
  "f:x + x",
  "x:f + f",
  "f:(x + z)",
  "z:f + f:x",
  "x:z:f + f:x + z",
  "x + z:x + f:z:x",
  "(x + z + f)^2",
  "(f + sector) * (x + z)",
  "sector:f + f:x:sector",
  "z + f * x - f",
  "0 + f + x:f",
  "log(x):f + f",
  "I(x^2):sector + sector",
  "poly(x, 2):f",
  "flag * x",
  "I(x > 6) * f",
  "0 + I(z < 0)",
  "factor(cyl) + x",
  "as.factor(cyl) * x",
  "factor(cyl):f",
  "0 + factor(cyl)",
  "as.numeric(f) + x",
  "größe + время",
  "größe:время + время"
)

## colnames and values of model.matrix(~ r, data) on the rows `rows` (1-based; NULL for all), with
## R's default contrasts or with contr.sum for unordered factors (as aov's Type III does)
matrix_of <- function(r, data, name, rows = NULL, sum_contrasts = FALSE) {
  old <- options(contrasts = c(if (sum_contrasts) "contr.sum" else "contr.treatment", "contr.poly"))
  on.exit(options(old))
  m <- model.matrix(as.formula(paste("~", r)), data)
  if (is.null(rows)) rows <- seq_len(nrow(m))
  list(rhs = r, data = name, sum_contrasts = sum_contrasts, rows_index = arr(rows - 1L),
       columns = arr(colnames(m)), rows = rows_of(m[rows, , drop = FALSE]))
}

matrices <- lapply(rhs, matrix_of, data = d, name = "formula")

## cake: temperature is an ordered factor (polynomial contrasts), replicate a number
cake <- read_dataset("cake")
some <- seq(1, nrow(cake), by = 7)
matrices <- c(matrices, list(
  matrix_of("factor(temperature)", cake, "cake", some),
  matrix_of("recipe * temperature", cake, "cake", some),
  matrix_of("factor(recipe):temperature", cake, "cake", some),
  matrix_of("factor(replicate) + recipe * temperature", cake, "cake", some, sum_contrasts = TRUE)
))

double_bars <- c(
  "y ~ (0 + f || g)",
  "y ~ (f || g)",
  "y ~ (x * f || g)",
  "y ~ (meanses * cses + sector * cses || g)"
)
expanded <- lapply(double_bars, function(f) {
  list(formula = f, expanded = deparse(lme4:::expandDoubleVerts(as.formula(f)), width.cutoff = 500L))
})

write_fixture(list(versions = versions_line(), model_matrices = matrices, double_bars = expanded),
              file.path(out_dir, "model_matrices.json"))
cat("wrote", length(matrices), "model matrices and", length(double_bars), "double-bar expansions\n")
