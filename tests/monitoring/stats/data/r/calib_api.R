# Reference values for calibrated designs (tests/monitoring/stats/test_calibration.py).
# Run from this directory:  Rscript calib_api.R   (R 4.2.2 and survey 4.1-1 made the outputs)
# Writes calib_api.csv (estimates and SEs), calib_trim_weights.csv (trimmed weights)
# and calib_totals.csv (the population totals used, from data(apipop)).
suppressMessages(library(survey))
data(api)
options(survey.lonely.psu = "fail")
tight <- list(maxit = 500, epsilon = 1e-13)  # R's default epsilon = 1 is loose
num <- function(x) sprintf("%.17g", x)
rows <- list()
rec <- function(case, stat, variable, by, level, est, se) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, stat = stat, variable = variable,
    by = by, level = as.character(level), estimate = num(est), se = num(se))
}
record <- function(case, d, vars = c("api00", "enroll"), by = "awards") {
  for (v in vars) {
    f <- as.formula(paste0("~", v))
    m <- svymean(f, d); t <- svytotal(f, d)
    rec(case, "mean", v, "", "", coef(m), SE(m))
    rec(case, "total", v, "", "", coef(t), SE(t))
    if (!is.null(by)) {
      for (stat in c("mean", "total")) {
        b <- svyby(f, as.formula(paste0("~", by)), d,
                   if (stat == "mean") svymean else svytotal)
        rec(case, stat, v, by, b[[by]], coef(b), SE(b))
      }
    }
  }
}

pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
pop_awards <- as.data.frame(table(awards = apipop$awards))
N <- nrow(apipop)
write.csv(rbind(data.frame(variable = "stype", level = pop_stype$stype, total = pop_stype$Freq),
                data.frame(variable = "awards", level = as.character(pop_awards$awards),
                           total = pop_awards$Freq)),
          "calib_totals.csv", row.names = FALSE)

dclus1 <- svydesign(id = ~dnum, weights = ~pw, data = apiclus1, fpc = ~fpc)
dstrat <- svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat, fpc = ~fpc)

record("clus1_uncalibrated", dclus1)
ps1 <- postStratify(dclus1, ~stype, pop_stype)
record("clus1_ps_stype", ps1)
rk1 <- rake(dclus1, list(~stype, ~awards), list(pop_stype, pop_awards), control = tight)
record("clus1_rake_stype_awards", rk1)
lin <- calibrate(dclus1, ~stype + awards,
                 population = c(`(Intercept)` = N, stypeH = 755, stypeM = 1018,
                                awardsYes = pop_awards$Freq[pop_awards$awards == "Yes"]))
record("clus1_linear_stype_awards", lin)
# two calibration steps in a row: post-stratify, then rake
ps_rk <- rake(postStratify(dclus1, ~awards, pop_awards), list(~stype, ~awards),
              list(pop_stype, pop_awards), control = tight)
record("clus1_ps_awards_then_rake", ps_rk)
# stratified design with fpc, post-stratified on a variable crossing the strata
pss <- postStratify(dstrat, ~awards, pop_awards)
record("strat_ps_awards", pss, by = "stype")

# replicate designs (JK1 for dclus1, JKn for dstrat), recalibrated replicate by replicate
for (mse in c(TRUE, FALSE)) {
  tag <- if (mse) "mse" else "nomse"
  r1 <- as.svrepdesign(dclus1, type = "JK1", mse = mse)
  record(paste0("clus1_jk1_", tag), r1)
  record(paste0("clus1_jk1_ps_stype_", tag), postStratify(r1, ~stype, pop_stype))
  record(paste0("clus1_jk1_rake_", tag),
         rake(r1, list(~stype, ~awards), list(pop_stype, pop_awards), control = tight))
  rs <- as.svrepdesign(dstrat, type = "JKn", mse = mse)
  record(paste0("strat_jkn_ps_awards_", tag), postStratify(rs, ~awards, pop_awards),
         by = "stype")
}

# trimWeights (additive redistribution), on a calibrated and on a stratified design
tr_ps <- trimWeights(ps1, upper = 38, strict = TRUE)
record("clus1_ps_stype_trim38", tr_ps)
tr_st <- trimWeights(dstrat, upper = 40, lower = 20, strict = TRUE)
record("strat_trim_20_40", tr_st, by = "stype")
tr_st1 <- trimWeights(dstrat, upper = 40, lower = 20)   # one pass only (strict = FALSE)
# the raked weights (30.2 ... 55.7) capped at 35: the first share pushes 32.5 over the cap
tr_rk <- trimWeights(rk1, upper = 35, strict = TRUE)
record("clus1_rake_trim35", tr_rk)
tr_rk1 <- trimWeights(rk1, upper = 35)
write.csv(rbind(
  data.frame(case = "clus1_ps_stype_trim38", snum = apiclus1$snum, weight = num(weights(tr_ps))),
  data.frame(case = "strat_trim_20_40", snum = apistrat$snum, weight = num(weights(tr_st))),
  data.frame(case = "strat_trim_20_40_onepass", snum = apistrat$snum,
             weight = num(weights(tr_st1))),
  data.frame(case = "clus1_rake_trim35", snum = apiclus1$snum, weight = num(weights(tr_rk))),
  data.frame(case = "clus1_rake_trim35_onepass", snum = apiclus1$snum,
             weight = num(weights(tr_rk1))),
  data.frame(case = "clus1_rake_stype_awards", snum = apiclus1$snum, weight = num(weights(rk1))),
  data.frame(case = "clus1_linear_stype_awards", snum = apiclus1$snum,
             weight = num(weights(lin)))),
  "calib_trim_weights.csv", row.names = FALSE)

write.csv(do.call(rbind, rows), "calib_api.csv", row.names = FALSE)
cat(R.version.string, "survey", as.character(packageVersion("survey")), "\n")
