# Reference proficiency-level shares from plausible values, with the interval made on
# the logit scale: for each PV m, svyglm(I(level_m == k) ~ 1, family = quasibinomial)
# (coefficient logit p_m, its linearisation variance), Rubin's rules over the M fits
# (mitools::MIcombine), and expit of coef -/+ t_df * SE.  The share and its SE:
# MIcombine of svymean(~as.numeric(level_m == k)).  Whole population (df.complete = degf(d))
# and the stype domains (df.complete = degf(subset(d, stype == s))) of apistrat.
#
# df: Barnard & Rubin (1999), nu = 1 / (1/nu_m + 1/nu_obs), nu_m = (M-1)/gamma^2,
# nu_obs = (nu_com+1)/(nu_com+3) nu_com (1 - gamma), gamma = (1+1/M) B / T -- written
# out below, because MIcombine's nu_obs uses Ubar/(Ubar+B) for 1 - gamma (it differs
# by the factor 1 + 1/M on B); MIcombine's own df is kept in the output (df_mitools).
#
#   Rscript tests/monitoring/stats/data/r/ci_pv_shares.R
#
# writes ci_pv_shares_data.csv (snum and 5 plausible values, simulated here with a fixed
# seed from api00, rounded to 4 decimals; the references use the rounded values) and
# ci_pv_shares.csv.  Read by tests/monitoring/stats/test_intervals.py.
suppressMessages({library(survey); library(mitools)})
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
st <- read.csv(file.path(here, "..", "apistrat.csv"), stringsAsFactors = FALSE)
M <- 5
set.seed(20240514)
pv <- sapply(1:M, function(m) round((st$api00 - 650) / 125 + rnorm(nrow(st), 0, 0.35), 4))
colnames(pv) <- paste0("pv", 1:M)
write.csv(data.frame(snum = st$snum, pv), file.path(here, "ci_pv_shares_data.csv"),
          row.names = FALSE)
cuts <- c(-0.5, 0, 0.5)
for (m in 1:M) st[[paste0("lev", m)]] <- findInterval(pv[, m], cuts)  # cuts[k] <= x
d <- svydesign(ids = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = st)

barnard_rubin <- function(q, u, nu_com) {
  M <- length(q)
  B <- var(q)
  Tv <- mean(u) + (1 + 1 / M) * B
  g <- (1 + 1 / M) * B / Tv
  nu_m <- (M - 1) / g^2
  nu_obs <- (nu_com + 1) / (nu_com + 3) * nu_com * (1 - g)
  1 / (1 / nu_m + 1 / nu_obs)
}
num <- function(x) sprintf("%.17g", x)
rows <- list()
domains <- list(list(by = "", label = "", design = d))
for (s in sort(unique(st$stype)))
  domains[[length(domains) + 1]] <- list(by = "stype", label = s,
                                         design = subset(d, stype == s))
for (dom in domains) {
  nu_com <- degf(dom$design)
  for (k in 0:length(cuts)) {
    f <- function(m) as.formula(sprintf("~as.numeric(lev%d == %d)", m, k))
    means <- lapply(1:M, function(m) svymean(f(m), dom$design))
    fits <- lapply(1:M, function(m) svyglm(as.formula(sprintf("I(lev%d == %d) ~ 1", m, k)),
                                           dom$design, family = quasibinomial))
    p <- MIcombine(means, df.complete = nu_com)
    l <- MIcombine(fits, df.complete = nu_com)
    p_df <- barnard_rubin(sapply(means, coef), sapply(means, vcov), nu_com)
    l_df <- barnard_rubin(sapply(fits, coef), sapply(fits, vcov), nu_com)
    q <- qt(0.975, l_df)
    lo <- plogis(coef(l) - q * sqrt(vcov(l)))
    hi <- plogis(coef(l) + q * sqrt(vcov(l)))
    rows[[length(rows) + 1]] <- data.frame(
      by = dom$by, domain = dom$label, level = k, estimate = num(coef(p)),
      se = num(sqrt(vcov(p))), df = num(p_df), ci_low = num(lo), ci_high = num(hi),
      logit_df = num(l_df), df_mitools = num(p$df), logit_df_mitools = num(l$df))
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "ci_pv_shares.csv"), row.names = FALSE)
cat(sprintf("R %s, survey %s, mitools %s: %d rows\n", getRversion(),
            packageVersion("survey"), packageVersion("mitools"), nrow(out)))
