## Export mlmRev's Contraception data set to
## src/mixedmodels/datasets/data/Contraception.csv and add its entry (level
## order of the factors) to factor_levels.json, in the layout of the other
## data sets (see SOURCES.md there).
##
## Run from the repository root:
##     Rscript tools/export_contraception.R

suppressPackageStartupMessages(library(mlmRev))

data_dir <- file.path("src", "mixedmodels", "datasets", "data")
stopifnot(dir.exists(data_dir))
d <- Contraception

## Doubles in the shortest of %.15g/%.16g/%.17g that reads back exactly.
shortest <- function(x) vapply(x, function(v) {
  for (p in 15:17) {
    s <- sprintf(paste0("%.", p, "g"), v)
    if (as.numeric(s) == v) return(s)
  }
  s
}, character(1))

out <- d
for (col in names(out))
  out[[col]] <- if (is.factor(out[[col]])) as.character(out[[col]]) else shortest(out[[col]])
write.csv(out, file.path(data_dir, "Contraception.csv"), row.names = FALSE, quote = FALSE)

quoted <- function(x) paste0("[", paste0('"', x, '"', collapse = ", "), "]")
factor_entry <- function(col) sprintf(
  '      "%s": {\n        "ordered": %s,\n        "levels": %s\n      }',
  col, tolower(is.ordered(d[[col]])), quoted(levels(d[[col]])))
facs <- names(d)[vapply(d, is.factor, logical(1))]
entry <- paste0(
  '  "Contraception.csv": {\n',
  '    "source": "mlmRev",\n',
  '    "object": "Contraception",\n',
  sprintf('    "rows": %d,\n', nrow(d)),
  sprintf('    "columns": %s,\n', quoted(names(d))),
  '    "factors": {\n', paste(vapply(facs, factor_entry, character(1)), collapse = ",\n"),
  '\n    }\n  }')

json_path <- file.path(data_dir, "factor_levels.json")
txt <- paste(readLines(json_path), collapse = "\n")
if (!grepl('"Contraception.csv"', txt, fixed = TRUE)) {
  txt <- sub("\n  }\n}$", paste0("\n  },\n", entry, "\n}"), txt)
  writeLines(txt, json_path)
}
stopifnot(identical(jsonlite::fromJSON(json_path)[["Contraception.csv"]]$rows, nrow(d)))
cat("mlmRev", format(packageVersion("mlmRev")), "\n")
