# Writes examples/market.json: a synthetic BTC/ETH market (not real data) with realistic shapes.
# Raw SVI smiles per expiry (put skew, ATM vol term structure), forwards with a constant carry,
# and per-instrument quotes (bid/ask around the model price, 24h volume, open interest) that the
# liquidation-friction and concentration add-ons read. Deterministic: no randomness.
# Usage: python3 scripts/make_sample_market.py > examples/market.json
import json, math

VALUATION = "2026-11-20T08:00:00Z"
EXPIRIES = [("27NOV26", 7), ("25DEC26", 35), ("29JAN27", 70), ("26MAR27", 126), ("25JUN27", 217)]
UNDERLYINGS = {
    # index, carry/yr, ATM vol short/long, skew rho, strikes step, perp volume USD, option OI coins
    "BTC": dict(index=95000.0, carry=0.05, vol_short=0.50, vol_long=0.58, rho=-0.25, step=5000.0, perp_volume=1.5e9),
    "ETH": dict(index=3500.0, carry=0.06, vol_short=0.62, vol_long=0.70, rho=-0.20, step=250.0, perp_volume=6.0e8),
}

def ncdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))

def black(f, k, t, v, call):
    if v * math.sqrt(t) <= 0:
        return max((f - k) if call else (k - f), 0.0)
    s = v * math.sqrt(t)
    d1 = math.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    return f * ncdf(d1) - k * ncdf(d2) if call else k * ncdf(-d2) - f * ncdf(-d1)

def svi(u, t):
    # ATM vol rises with sqrt(T); wings (b) grow like sqrt(T) so total variance is calendar-ordered.
    atm = u["vol_short"] + (u["vol_long"] - u["vol_short"]) * min(1.0, math.sqrt(t / 0.6))
    sigma = 0.08 + 0.25 * math.sqrt(t)
    b = 0.12 * math.sqrt(t) / 0.55
    rho = u["rho"]
    a = atm * atm * t - b * sigma
    return dict(a=round(a, 8), b=round(b, 8), rho=rho, m=0.0, sigma=round(sigma, 8))

def w(p, k):
    return p["a"] + p["b"] * (p["rho"] * (k - p["m"]) + math.sqrt((k - p["m"]) ** 2 + p["sigma"] ** 2))

doc = {"valuation_time": VALUATION, "underlyings": {}, "usd_prices": {"USDC": 0.9998, "USDT": 1.0002},
       "rates": {"USD": 0.0}, "instruments": {}}
for code, u in UNDERLYINGS.items():
    s = u["index"]
    under = {"index": s, "perpetual_mark": round(s * 1.0001, 2), "forwards": {}, "smiles": {}}
    perp = code + "-PERPETUAL"
    doc["instruments"][perp] = {"mark_price": under["perpetual_mark"], "best_bid": round(s * 1.0001 - 0.5, 2),
                                "best_ask": round(s * 1.0001 + 0.5, 2), "volume_24h": u["perp_volume"],
                                "open_interest": u["perp_volume"] * 0.6}
    for code_e, days in EXPIRIES:
        t = days / 365.0
        f = round(s * math.exp(u["carry"] * t), 2)
        under["forwards"][code_e] = f
        p = svi(u, t)
        under["smiles"][code_e] = p
        if days >= 35:
            fut = f"{code}-{code_e}"
            doc["instruments"][fut] = {"mark_price": f, "best_bid": round(f - 2.5, 2), "best_ask": round(f + 2.5, 2),
                                       "volume_24h": u["perp_volume"] * 0.05, "open_interest": u["perp_volume"] * 0.04}
        for i in range(-8, 9):
            k = round(f / u["step"]) * u["step"] + i * u["step"] * (1 + days // 60)
            if k <= 0:
                continue
            vol = math.sqrt(w(p, math.log(k / f)) / t)
            for call in (True, False):
                name = f"{code}-{code_e}-{int(k)}-{'C' if call else 'P'}"
                coin = black(f, k, t, vol, call) / f
                half = max(0.0001, 0.005 * coin)
                distance = abs(math.log(k / f)) / (vol * math.sqrt(t))
                doc["instruments"][name] = {
                    "mark_price": round(coin, 8), "best_bid": round(max(coin - half, 0.0), 8), "best_ask": round(coin + half, 8),
                    "mark_iv": round(vol, 6), "volume_24h": round(400.0 * math.exp(-distance) * (50 if code == "ETH" else 1), 2),
                    "open_interest": round(3000.0 * math.exp(-0.5 * distance) * (50 if code == "ETH" else 1), 2)}
    doc["underlyings"][code] = under
print(json.dumps(doc, indent=1, sort_keys=True))
