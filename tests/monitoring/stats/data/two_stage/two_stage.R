# Reference values for the two-stage design the product carries into estimation
# (tests/monitoring/stats/test_sampling.py, test_design_columns_match_r).
# Run from this directory:  Rscript two_stage.R     Writes two_stage_r.csv.
#
# The sample (two_stage_sample.csv, made by make_sample.py) is one draw of PPS streets
# (one certainty street) and households within them.  The design is rebuilt here from
# the draw alone, independently of the Python mapping (sampling.design_columns):
#   * a certainty street is a stratum of its own, first-stage fpc 1;
#   * any other stratum's first-stage fpc is n_h / mean(pi1) over its n_h streets;
#   * second stage: the street's population M_i.
# "product" is that design; "brewer" is R's own PPS without-replacement approximation
# (pps = "brewer", per-street 1 - pi1, second stage scaled by pi1), for comparison.
suppressMessages(library(survey))
options(survey.lonely.psu = "adjust")
num <- function(x) sprintf("%.17g", x)
d <- read.csv("two_stage_sample.csv", stringsAsFactors = FALSE)
d$vstratum <- ifelse(d$certainty == 1, paste0(d$stratum, "|", d$street), d$stratum)
cl <- d[!duplicated(d$street), ]
nh <- tapply(cl$pi1, cl$vstratum, length)
mean_pi <- tapply(cl$pi1, cl$vstratum, mean)
d$fpc <- ifelse(d$certainty == 1, 1, (nh / mean_pi)[d$vstratum])
d$fpc2 <- d$size
d$pi2 <- ave(d$person, d$street, FUN = length) / d$size
designs <- list(
  product = svydesign(ids = ~street + person, strata = ~vstratum, fpc = ~fpc + fpc2,
                      weights = ~weight, data = d),
  brewer = svydesign(ids = ~street + person, strata = ~vstratum, fpc = ~pi1 + pi2,
                     weights = ~weight, data = d, pps = "brewer"))
rows <- list()
for (name in names(designs)) {
  des <- designs[[name]]
  m <- svymean(~y, des)
  t <- svytotal(~y, des)
  b <- svyby(~y, ~group, des, svymean)
  rows[[length(rows) + 1]] <- data.frame(
    design = name, stat = c("mean", "total", "mean", "mean"),
    group = c("", "", as.character(b$group)),
    estimate = num(c(coef(m), coef(t), coef(b))), se = num(c(SE(m), SE(t), SE(b))))
}
write.csv(do.call(rbind, rows), "two_stage_r.csv", row.names = FALSE)
