# Reference values for carotidkit's survival statistics, computed with R's reference packages on
# real public cohorts from R's survival package (pbc, lung, mgus2). Writes the data sets and the
# values as CSV under tests/data/r_reference/; tests/test_survival_vs_r.py compares against them
# without R. Re-run with `make crosscheck` (needs Debian's r-base-core r-cran-survival
# r-cran-cmprsk):  Rscript tools/survival_reference.R tests/data/r_reference
suppressMessages({library(survival); library(cmprsk)})
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "tests/data/r_reference"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
w <- function(x, name) write.csv(x, file.path(out, name), row.names = FALSE)
vals <- list()
put <- function(quantity, key, value) vals[[length(vals) + 1]] <<- data.frame(quantity = quantity, key = key, value = value)

# ---- data sets (complete cases of the columns used) ----------------------------------------
pbc2 <- pbc[!is.na(pbc$protime) & !is.na(pbc$albumin) & !is.na(pbc$bili) & !is.na(pbc$edema),
            c("id", "time", "status", "age", "edema", "bili", "albumin", "protime")]
lung2 <- na.omit(lung[, c("time", "status", "age", "sex", "ph.karno")])
lung2$status <- lung2$status - 1
mg <- mgus2
mg$etime <- ifelse(mg$pstat == 0, mg$futime, mg$ptime)
mg$ecode <- ifelse(mg$pstat == 0, 2 * mg$death, 1)   # 0 censored, 1 PCM, 2 death
mg$male <- as.integer(mg$sex == "M")
mg <- na.omit(mg[, c("id", "etime", "ecode", "age", "male", "mspike")])
w(pbc2, "pbc.csv"); w(lung2, "lung.csv"); w(mg, "mgus2.csv")

# ---- Cox (Efron) and the exact PH test of cox.zph -------------------------------------------
fp <- coxph(Surv(time, status == 2) ~ age + edema + log(bili) + log(albumin) + log(protime), data = pbc2)
for (tr in c("km", "rank", "identity")) {
  z <- cox.zph(fp, transform = tr)$table
  for (i in seq_len(nrow(z))) {
    put(paste0("zph_pbc_", tr, "_chisq"), rownames(z)[i], z[i, "chisq"])
    put(paste0("zph_pbc_", tr, "_p"), rownames(z)[i], z[i, "p"])
  }
}
for (i in seq_along(coef(fp))) put("cox_pbc_coef", names(coef(fp))[i], coef(fp)[i])
fl <- coxph(Surv(time, status) ~ age + sex + ph.karno, data = lung2)
z <- cox.zph(fl)$table
for (i in seq_len(nrow(z))) {
  put("zph_lung_km_chisq", rownames(z)[i], z[i, "chisq"]); put("zph_lung_km_p", rownames(z)[i], z[i, "p"])
}
# robust (sandwich) variance with delayed entry, weights and clusters: pbc split at 2 years
set.seed(1)
ps <- survSplit(Surv(time, status == 2) ~ ., data = pbc2, cut = c(730, 1825), episode = "ep")
ps$wt <- 0.5 + (ps$id %% 3) / 2
fr <- coxph(Surv(tstart, time, event) ~ age + log(bili) + edema, data = ps, weights = wt, cluster = id)
for (i in seq_along(coef(fr))) {
  put("cox_split_coef", names(coef(fr))[i], coef(fr)[i])
  put("cox_split_robust_se", names(coef(fr))[i], sqrt(diag(fr$var))[i])
  put("cox_split_naive_se", names(coef(fr))[i], sqrt(diag(fr$naive.var))[i])
}

# ---- Fine-Gray on mgus2: finegray + coxph(weights, cluster) ----------------------------------
mg$ev <- factor(mg$ecode, 0:2, labels = c("censor", "pcm", "death"))
fgd <- finegray(Surv(etime, ev) ~ ., data = mg, etype = "pcm")
fg <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + male + mspike, data = fgd, weights = fgwt, cluster = id)
for (i in seq_along(coef(fg))) {
  put("fg_mgus2_coef", names(coef(fg))[i], coef(fg)[i])
  put("fg_mgus2_robust_se", names(coef(fg))[i], sqrt(diag(fg$var))[i])
}
put("fg_mgus2_rows", "n", nrow(fgd))

# ---- Aalen-Johansen: cmprsk::cuminc --------------------------------------------------------
cm <- cuminc(mg$etime, mg$ecode, cencode = 0)
tt <- sort(unique(c(sort(unique(mg$etime[mg$ecode == 1]))[c(1, 5, 10, 20, 40)], 12, 24, 60, 120, 240, 360)))  # timepoints() sorts
tp <- timepoints(cm, tt)$est
for (j in seq_along(tt)) put("aj_mgus2_pcm", tt[j], tp["1 1", j])
for (j in seq_along(tt)) put("aj_mgus2_death", tt[j], tp["1 2", j])
cp <- cuminc(pbc2$time, pbc2$status, cencode = 0)   # 1 transplant (competing), 2 death
tt <- sort(unique(c(365, 730, 1095, 1460, 1825, 2555, 3650, sort(unique(pbc2$time[pbc2$status == 2]))[c(3, 30, 60)])))
tp <- timepoints(cp, tt)$est
for (j in seq_along(tt)) put("aj_pbc_death", tt[j], tp["1 2", j])

# ---- Calibration at 5 years (pbc, death; transplant censored) ------------------------------
t0 <- 1825
pbc2$death <- as.integer(pbc2$status == 2)
fit <- coxph(Surv(time, death) ~ age + edema + log(bili), data = pbc2)
pbc2$pred <- 1 - summary(survfit(fit, newdata = pbc2), times = t0)$surv[1, ]
pbc2$pred_mis <- plogis(0.8 * qlogis(pbc2$pred) + 0.3)
old <- coxph(Surv(time, death) ~ age + edema, data = pbc2)
pbc2$pred_old <- 1 - summary(survfit(old, newdata = pbc2), times = t0)$surv[1, ]
w(pbc2[, c("id", "time", "death", "pred", "pred_mis", "pred_old")], "pbc_predictions.csv")
km <- survfit(Surv(time, death) ~ 1, data = pbc2)
obs <- 1 - summary(km, times = t0)$surv
# IPCW weights: G = KM of censoring, events leaving before censorings at a tied time (written
# out here rather than survfit(Surv(time, 1 - death)), which keeps tied deaths at risk)
ct <- sort(unique(pbc2$time[pbc2$death == 0]))
gs <- cumprod(sapply(ct, function(u) 1 - sum(pbc2$time == u & pbc2$death == 0) /
                       (sum(pbc2$time > u) + sum(pbc2$time == u & pbc2$death == 0))))
Gfun <- function(t) sapply(t, function(s) { k <- sum(ct <= s); if (k == 0) 1 else gs[k] })   # G(t)
Gleft <- function(t) sapply(t, function(s) { k <- sum(ct < s); if (k == 0) 1 else gs[k] })   # G(t-)
case <- pbc2$death == 1 & pbc2$time <= t0
ctrl <- pbc2$time > t0
wt <- ifelse(case, 1 / Gleft(pbc2$time), ifelse(ctrl, 1 / Gfun(t0), 0))
rcs3 <- function(x, knots) {   # Harrell's restricted cubic spline, 3 knots (rms::rcs normalisation)
  k <- knots; p <- function(u) pmax(u, 0)^3
  (p(x - k[1]) - p(x - k[2]) * (k[3] - k[1]) / (k[3] - k[2]) + p(x - k[3]) * (k[2] - k[1]) / (k[3] - k[2])) / (k[3] - k[1])^2
}
for (col in c("pred", "pred_mis")) {
  p <- pbc2[[col]]
  put(paste0("cal_", col), "observed", obs)
  put(paste0("cal_", col), "expected", mean(p))
  put(paste0("cal_", col), "o_e", obs / mean(p))
  lp <- qlogis(p)
  citl <- suppressWarnings(glm(case ~ offset(lp), family = binomial, weights = wt, subset = wt > 0))
  put(paste0("cal_", col), "calibration_in_the_large", coef(citl)[1])
  sl <- suppressWarnings(glm(case ~ lp, family = binomial, weights = wt, subset = wt > 0))
  put(paste0("cal_", col), "calibration_slope", coef(sl)[2])
  cll <- log(-log(1 - p))
  kn <- quantile(cll, c(0.1, 0.5, 0.9), type = 7)   # rms default knot positions for 3 knots
  dd <- data.frame(time = pbc2$time, death = pbc2$death, x1 = cll, x2 = rcs3(cll, kn))
  cf <- coxph(Surv(time, death) ~ x1 + x2, data = dd)
  obs_i <- 1 - summary(survfit(cf, newdata = dd), times = t0)$surv[1, ]
  err <- abs(p - obs_i)
  put(paste0("cal_", col), "ici", mean(err))
  put(paste0("cal_", col), "e50", median(err))
  put(paste0("cal_", col), "e90", unname(quantile(err, 0.9)))
}
# ---- Competing-risk calibration (mgus2, PCM at 10 years; Austin 2022, Fine-Gray on rcs(cll)) --
t1 <- 120
fgp <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + male + mspike, data = fgd, weights = fgwt)
mg$pred <- 1 - summary(survfit(fgp, newdata = mg), times = t1)$surv[1, ]
w(mg[, c("id", "pred")], "mgus2_predictions.csv")
aj <- timepoints(cuminc(mg$etime, mg$ecode, cencode = 0), t1)$est["1 1", 1]
put("calcr_mgus2", "observed", aj); put("calcr_mgus2", "expected", mean(mg$pred)); put("calcr_mgus2", "o_e", aj / mean(mg$pred))
mg$cll <- log(-log(1 - mg$pred))
kn <- quantile(mg$cll, c(0.1, 0.5, 0.9), type = 7)
mg$x1 <- mg$cll; mg$x2 <- rcs3(mg$cll, kn)
fgc <- finegray(Surv(etime, ev) ~ x1 + x2 + id, data = mg, etype = "pcm")
cfc <- coxph(Surv(fgstart, fgstop, fgstatus) ~ x1 + x2, data = fgc, weights = fgwt)
obs_i <- 1 - summary(survfit(cfc, newdata = mg), times = t1)$surv[1, ]
err <- abs(mg$pred - obs_i)
put("calcr_mgus2", "ici", mean(err)); put("calcr_mgus2", "e50", median(err)); put("calcr_mgus2", "e90", unname(quantile(err, 0.9)))

# ---- NRI at 5 years (pbc): categories <10 %, 10-20 %, >=20 % ---------------------------------
cat3 <- function(p) cut(p, c(-Inf, 0.1, 0.2, Inf), right = FALSE, labels = c("low", "moderate", "high"))
oc <- as.integer(cat3(pbc2$pred_old)); nc <- as.integer(cat3(pbc2$pred))
up <- nc > oc; down <- nc < oc
# KM-based (Pencina, Steyerberg, D'Agostino 2011)
kmrisk <- function(sel) if (sum(sel) == 0) 0 else 1 - summary(survfit(Surv(time, death) ~ 1, data = pbc2[sel, ]), times = t0, extend = TRUE)$surv
pe <- kmrisk(rep(TRUE, nrow(pbc2)))
pu <- mean(up); pd <- mean(down)
ev_km <- (kmrisk(up) * pu - kmrisk(down) * pd) / pe
ne_km <- ((1 - kmrisk(down)) * pd - (1 - kmrisk(up)) * pu) / (1 - pe)
put("nri_pbc", "km_events", ev_km); put("nri_pbc", "km_nonevents", ne_km); put("nri_pbc", "km_total", ev_km + ne_km)
# IPCW-based (same weights as above)
we <- wt * case; wn <- wt * (1 - case)
ev_w <- (sum(we * up) - sum(we * down)) / sum(we); ne_w <- (sum(wn * down) - sum(wn * up)) / sum(wn)
put("nri_pbc", "ipcw_events", ev_w); put("nri_pbc", "ipcw_nonevents", ne_w); put("nri_pbc", "ipcw_total", ev_w + ne_w)

res <- do.call(rbind, vals)
write.csv(res, file.path(out, "values.csv"), row.names = FALSE)
writeLines(c(paste("R", getRversion()), paste("survival", packageVersion("survival")),
             paste("cmprsk", packageVersion("cmprsk"))), file.path(out, "VERSIONS"))
cat("wrote", nrow(res), "reference values to", out, "\n")
