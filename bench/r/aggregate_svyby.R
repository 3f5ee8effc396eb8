# The benchmark city's aggregates with R's survey package (bench/bench_aggregate.py).
#
#   Rscript bench/r/aggregate_svyby.R city.csv cells.csv
#
# Reads the respondent table, computes the six person indicators from their definitions
# (NA where the respondent is outside the population or every referenced answer is
# missing, as the expressions do), builds the design (districts as strata, streets as
# PSUs, fpc = streets in the district's population) and estimates every measure for
# every domain with svymean / svyby(svymean, na.rm = TRUE): everyone, district, age
# band, sex, each group flag and each group x district (a group's domains from the
# design restricted to its members, so only member cells are computed, as ours).
# Prints the estimation time (design + estimates, not reading) and writes one row per
# cell: measure, dimension, group_value, district, estimate, se.
suppressPackageStartupMessages(library(survey))
options(survey.lonely.psu = "adjust")
args <- commandArgs(trailingOnly = TRUE)
t_read <- system.time(
  d <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "")
)[["elapsed"]]

city <- "city"
groups <- c("older_adult", "farmer", "industrial_worker", "migrant_worker", "young_people")

# the indicators, written out from their expressions
older <- d$age_band %in% c("60+", "60-69", "70+")
d$older_adult_education <- ifelse(older, as.numeric(d$elder_education == "regular"), NA)
d$community_training_rate <- as.numeric(d$community_training == "yes")
topics <- grep("^topics__", names(d), value = TRUE)
topics_answered <- rowSums(!is.na(d[topics])) > 0
d$arts_interest <- ifelse(topics_answered, as.numeric(d$topics__arts %in% 1), NA)
d$many_interests <- ifelse(topics_answered,
                           as.numeric(rowSums(d[topics] == 1, na.rm = TRUE) >= 2), NA)
trained <- d$community_training %in% "yes"
d$trained_often <- ifelse(trained & !is.na(d$training_times),
                          as.numeric(d$training_times >= 3), NA)
sat <- d$scale_satisfaction
d$satisfied_learners <- ifelse(is.na(sat) & is.na(d$community_training), NA,
                               as.numeric(!is.na(sat) & sat >= 3.5 & trained))

measures <- c("older_adult_education", "community_training_rate", "arts_interest",
              "many_interests", "trained_often", "satisfied_learners",
              sort(grep("^scale_", names(d), value = TRUE)),
              grep("^(topics|channels|barriers)__", names(d), value = TRUE))

cells <- list()
add <- function(measure, dimension, group_value, district, estimate, se) {
  cells[[length(cells) + 1]] <<- data.frame(
    measure = measure, dimension = dimension, group_value = group_value,
    district = district, estimate = unname(estimate), se = unname(se))
}
whole <- function(f, design, measure, dimension, group_value) {
  r <- tryCatch(svymean(f, design, na.rm = TRUE), error = function(e) NULL)
  if (!is.null(r)) add(measure, dimension, group_value, city, coef(r), SE(r))
}
by <- function(f, by_f, design, measure, dimension, group_value = NULL) {
  r <- tryCatch(svyby(f, by_f, design, svymean, na.rm = TRUE), error = function(e) NULL)
  if (is.null(r)) return(invisible())
  level <- as.character(r[[1]])
  district <- if (dimension %in% c("district", "group_x_district")) level else city
  add(measure, dimension, if (is.null(group_value)) level else group_value, district,
      coef(r), SE(r))
}

t_est <- system.time({
  des <- svydesign(ids = ~psu, strata = ~stratum, fpc = ~fpc, weights = ~weight,
                   data = d, nest = TRUE)
  members <- lapply(groups, function(g) des[d[[paste0("group__", g)]] %in% 1, ])
  for (m in measures) {
    f <- as.formula(paste0("~", m))
    whole(f, des, m, "all", "")
    by(f, ~district, des, m, "district")
    by(f, ~age_band, des, m, "age_band")
    by(f, ~sex, des, m, "sex")
    for (k in seq_along(groups)) {
      whole(f, members[[k]], m, "group", groups[k])
      by(f, ~district, members[[k]], m, "group_x_district", groups[k])
    }
  }
})[["elapsed"]]

write.csv(do.call(rbind, cells), args[2], row.names = FALSE)
cat(sprintf("read seconds %.3f\n", t_read))
cat(sprintf("estimation seconds %.3f\n", t_est))
