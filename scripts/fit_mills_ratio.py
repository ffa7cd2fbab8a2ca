# Fits M(z) = (1 - Phi(z)) / phi(z), the Mills ratio, on [0, ZMAX] by a rational P(z)/Q(z) with
# Q(0) = 1, minimising the maximum relative error (Sanathanan-Koerner linearisation, then Lawson
# reweighting), in 60-digit mpmath. Usage: python3 fit_mills_ratio.py 6 7 12 (needs mpmath).
# The coefficients printed for (6, 7, 12) are the ones in crates/pricing/src/kernel.rs.
import mpmath as mp, sys
mp.mp.dps = 60
NP, NQ, ZMAX, NPTS = int(sys.argv[1]), int(sys.argv[2]), mp.mpf(sys.argv[3]), 300
def M(z): return mp.erfc(z/mp.sqrt(2))/2 / (mp.exp(-z*z/2)/mp.sqrt(2*mp.pi))
zs = [ZMAX*(1-mp.cos(mp.pi*(i+0.5)/NPTS))/2 for i in range(NPTS)]
ms = [M(z) for z in zs]
def solve(weights, qprev):
    rows=[]; rhs=[]
    for z,m,w,qp in zip(zs,ms,weights,qprev):
        s = w/(m*qp)
        row=[s*z**j for j in range(NP+1)] + [-s*m*z**j for j in range(1,NQ+1)]
        rows.append(row); rhs.append(s*m)
    A=mp.matrix(rows); b=mp.matrix(rhs)
    x = mp.qr_solve(A,b)[0]
    p=[x[j] for j in range(NP+1)]; q=[mp.mpf(1)]+[x[NP+1+j] for j in range(NQ)]
    return p,q
def ev(c,z): return sum(ci*z**i for i,ci in enumerate(c))
w=[mp.mpf(1)]*NPTS; qprev=[mp.mpf(1)]*NPTS
for it in range(60):
    p,q=solve(w,qprev)
    qprev=[ev(q,z) for z in zs]
    errs=[abs(ev(p,z)/ev(q,z)/m-1) for z,m in zip(zs,ms)]
    emax=max(errs)
    if it>=5: w=[wi*(e/emax)**mp.mpf(0.5)+mp.mpf(1e-30) for wi,e in zip(w,errs)]; s=sum(w); w=[wi/s*NPTS for wi in w]
# dense check in double-rounded coefficients
pf=[float(c) for c in p]; qf=[float(c) for c in q]
def evf(c,z):
    r=0.0
    for ci in reversed(c): r=r*z+ci
    return r
worst=0; 
for i in range(20001):
    z=float(ZMAX)*i/20000*1.5
    m=M(mp.mpf(z)); r=evf(pf,z)/evf(qf,z)
    worst=max(worst, abs(r/float(m)-1)) if z<=float(ZMAX) else worst
print("max rel err (double coeffs, [0,ZMAX]):", worst, "emax fit", mp.nstr(emax,3))
print("positive coeffs:", all(c>0 for c in pf), all(c>0 for c in qf))
print("P =", [repr(c) for c in pf]); print("Q =", [repr(c) for c in qf])
