# Fits a polynomial p(r) ~ e^r on [-ln(2)/2, ln(2)/2] of the given degree minimising the maximum
# relative error (Lawson reweighting of least squares), in 60-digit mpmath, with p(0) = 1 exactly.
# Usage: python3 fit_exp_minimax.py DEGREE (needs mpmath). The coefficients printed for degree 9
# are the ones in crates/pricing/src/kernel.rs.
import mpmath as mp, sys
mp.mp.dps = 60
DEG, NPTS = int(sys.argv[1]), 400
H = mp.log(2) / 2
rs = [H * mp.cos(mp.pi * (i + 0.5) / NPTS) for i in range(NPTS)]
w = [mp.mpf(1)] * NPTS
for it in range(80):
    # p(r) = 1 + sum_{j>=1} c_j r^j; minimise sum w (p(r)/e^r - 1)^2.
    A = mp.matrix([[wi * r**j / mp.exp(r) for j in range(1, DEG + 1)] for r, wi in zip(rs, w)])
    b = mp.matrix([wi * (1 - 1 / mp.exp(r)) for r, wi in zip(rs, w)])
    c = mp.qr_solve(A, b)[0]
    coef = [mp.mpf(1)] + [c[j] for j in range(DEG)]
    errs = [abs(sum(cj * r**j for j, cj in enumerate(coef)) / mp.exp(r) - 1) for r in rs]
    emax = max(errs)
    w = [wi * (e / emax) ** mp.mpf(0.5) + mp.mpf(1e-40) for wi, e in zip(w, errs)]
    s = sum(w); w = [wi / s * NPTS for wi in w]
cf = [float(x) for x in coef]
worst = 0.0
for i in range(20001):
    r = float(-H + 2 * H * i / 20000)
    p = 0.0
    for cj in reversed(cf):
        p = p * r + cj
    worst = max(worst, abs(p / float(mp.exp(r)) - 1))
print("degree", DEG, "max rel err (double coeffs):", worst)
print("coefficients, degree 0 upwards:", [repr(x) for x in cf])
