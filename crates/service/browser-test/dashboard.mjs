// Loads the dashboard of a running `ballast serve` in headless Chromium, checks that an
// account's risk-array heatmap is drawn, pushes a moved market through the API and checks that
// the heatmap updates live (WebSocket → re-fetch) with different P&L.
//
// It signs in as the dashboard's users do: the key in the address's fragment, which the page
// keeps for its tab and removes from the address; the test's own API calls send it too.
//
// Usage: node dashboard.mjs http://127.0.0.1:PORT/ KEY [screenshot.png]
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.argv[2];
const key = process.argv[3];
const screenshot = process.argv[4];
const auth = { authorization: `Bearer ${key}` };
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT_MS = 30_000;

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  // Without a key the page asks for one and shows no account.
  await page.goto(base, { timeout: TIMEOUT_MS });
  await page.waitForSelector("#sign-in:not([hidden])", { timeout: TIMEOUT_MS });
  assert.equal(await page.$$eval("#accounts tbody tr", (rows) => rows.length), 0);
  await page.goto(`${base}#key=${key}`, { timeout: TIMEOUT_MS });
  await page.waitForSelector('#accounts tbody tr[data-account="hedged-book"]', { timeout: TIMEOUT_MS });
  assert.ok(!(await page.evaluate(() => location.hash)).includes("key="), "the key left the address");
  assert.ok(await page.$eval("#sign-in", (form) => form.hidden), "signed in");
  await page.click('#accounts tbody tr[data-account="hedged-book"]');
  await page.waitForFunction(
    () => document.querySelector("#account-title").textContent.includes("hedged-book") &&
      document.querySelectorAll('#heatmap table[data-underlying="BTC"] td.cell').length >= 9,
    null, { timeout: TIMEOUT_MS });
  await page.waitForFunction(() => document.querySelector("#connection").textContent === "live",
    null, { timeout: TIMEOUT_MS });
  const cells = () => page.$$eval('#heatmap table[data-underlying="BTC"] td.cell',
    (all) => all.map((c) => Number(c.dataset.pnl)));
  const before = await cells();
  const seqBefore = await page.$eval("#heatmap", (e) => e.dataset.marketSeq);

  // BTC up 10 %: index, perpetual mark and every forward.
  const market = await (await fetch(new URL("api/markets/latest", base), { headers: auth })).json();
  const btc = market.underlyings.BTC;
  btc.index *= 1.1;
  btc.perpetual_mark *= 1.1;
  for (const expiry of Object.keys(btc.forwards)) btc.forwards[expiry] *= 1.1;
  const pushed = await fetch(new URL("api/markets", base), {
    method: "POST", headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify(market) });
  const answer = await pushed.text();
  assert.equal(pushed.status, 202, answer);
  const { seq } = JSON.parse(answer);
  await page.waitForFunction((s) => document.querySelector("#heatmap").dataset.marketSeq === s,
    String(seq), { timeout: TIMEOUT_MS });
  const after = await cells();
  assert.equal(after.length, before.length);
  assert.ok(after.some((pnl, i) => Math.abs(pnl - before[i]) > 1e-6), "heatmap P&L unchanged");
  const index = await page.$eval('#heatmap table[data-underlying="BTC"] caption',
    (c) => c.textContent);
  const moved = btc.index.toLocaleString("en-US", { maximumFractionDigits: 0 });
  assert.ok(index.includes(`index ${moved};`), `caption ${index} shows the index ${moved}`);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  assert.deepEqual(errors, []);
  console.log(`dashboard: ${before.length} BTC heatmap cells; market ${seqBefore} -> ${seq} ` +
    "seen live");
} finally {
  await browser.close();
}
