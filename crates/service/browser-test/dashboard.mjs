// Drives the dashboard of a running `ballast serve` in headless Chromium, as a risk manager
// would use it, against the real service:
// - sign-in through the address's fragment (the key leaves the address);
// - an account's heatmap with its legend and worst cell, the worst scenario in words, the
//   positions table, and a live update (a pushed market re-draws the heatmap);
// - search by a part of an account id (the list's `q`), a BTC/ETH-margined account's figures to
//   the satoshi, a what-if at a given price (the premium paid) and a refused pre-trade check;
// - a moved market: accounts in MM breach read below 1, and the alert log shows the changes;
//   the breach starts a liquidation, listed with the plan the route serves;
// - a market without ETH: unpriced accounts show their reason and their stale last good figures;
// - after a reload, the stored margin history of an account and the logged alerts;
// - the latest backtest of each methodology, run through the API from ../shared/history;
// - the stored cross-venue book per account and venue, each amount the route's to the digit;
// - no horizontal overflow at 1280 px and 375 px, with screenshots of both for review.
//
// Usage: node dashboard.mjs http://127.0.0.1:PORT/ KEY [SCREENSHOT_DIR]
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.argv[2];
const key = process.argv[3];
const screenshots = process.argv[4];
const auth = { authorization: `Bearer ${key}` };
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT_MS = 30_000;
const wait = { timeout: TIMEOUT_MS };

async function call(method, path, body, headers = {}) {
  const response = await fetch(new URL(path, base), { method, headers: { ...auth,
    "content-type": "application/json", ...headers }, body: body && JSON.stringify(body) });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

// A BTC- and ETH-margined account (the segregated Deribit methodology keeps figures per coin),
// and an empty account, which has no MM at all.
async function createAccounts() {
  const toml = readFileSync(new URL("../../../methodologies/deribit-pm-segregated.toml",
    import.meta.url), "utf8");
  await call("POST", "api/methodologies", { toml });
  await call("POST", "api/accounts", {
    id: "coin-strangle", methodology: "deribit-pm-segregated",
    positions: [{ instrument: "BTC-25DEC26-120000-C", size: -2 },
      { instrument: "BTC-25DEC26-75000-P", size: -2 },
      { instrument: "ETH-26MAR27-3000-P", size: -10 }],
    balances: { BTC: "1.5", ETH: "3" },
  }, { "idempotency-key": "browser-test-coin-strangle" });
  await call("POST", "api/accounts", { id: "empty-book" },
    { "idempotency-key": "browser-test-empty-book" });
}

// `market` with BTC's index, perpetual mark and forwards scaled by `factor`.
function movedMarket(market, factor) {
  const moved = structuredClone(market);
  const btc = moved.underlyings.BTC;
  btc.index *= factor;
  btc.perpetual_mark *= factor;
  for (const expiry of Object.keys(btc.forwards)) btc.forwards[expiry] *= factor;
  return moved;
}

function withoutEth(market) {
  const cut = structuredClone(market);
  delete cut.underlyings.ETH;
  for (const name of Object.keys(cut.instruments)) {
    if (name.startsWith("ETH")) delete cut.instruments[name];
  }
  return cut;
}

async function push(market, path = "api/markets") {
  return (await call("POST", path, market)).seq;
}

// Waits until the account list shows market `seq`.
async function listOn(page, seq) {
  await page.waitForFunction((s) => document.querySelector("#breaches").textContent
    .includes(`market #${s})`), seq, wait);
}

async function noOverflow(page, width) {
  await page.setViewportSize({ width, height: 900 });
  const [scroll, inner] = await page.evaluate(() =>
    [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= inner, `${width} px: the page is ${scroll} px wide`);
}

async function screenshot(page, name) {
  if (!screenshots) return;
  const path = join(screenshots, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

// Selects `id` and waits until the account panel is drawn for it.
async function selectAccount(page, id) {
  await page.click(`#accounts tbody tr.account[data-account="${id}"]`);
  await page.waitForSelector(`#account-panel[data-account="${id}"]`, wait);
}

async function signIn(page) {
  // Without a key the page asks for one and shows no account.
  await page.goto(base, wait);
  await page.waitForSelector("#sign-in:not([hidden])", wait);
  assert.equal(await page.$$eval("#accounts tbody tr", (rows) => rows.length), 0);
  await page.goto(`${base}#key=${key}`, wait);
  await page.waitForSelector('#accounts tbody tr[data-account="hedged-book"]', wait);
  assert.ok(!(await page.evaluate(() => location.hash)).includes("key="), "key left address");
  assert.ok(await page.$eval("#sign-in", (form) => form.hidden), "signed in");
  await page.waitForFunction(() => document.querySelector("#connection").textContent === "live",
    null, wait);
}

// hedged-book: heatmap, legend, worst cell and words, positions.
async function checkAccountPanel(page) {
  await selectAccount(page, "hedged-book");
  await page.waitForFunction(() => document.querySelectorAll(
    '#heatmap table[data-underlying="BTC"] td.cell').length >= 9, null, wait);
  const worst = await page.$eval('#margin-cards .card[data-currency="USD"] tr.worst td:last-child',
    (td) => td.textContent);
  assert.match(worst, /^BTC [−+±]\d+(\.\d+)?\s%, vol ([+−]\d+(\.\d+)?\s%|unchanged)/, worst);
  assert.ok(!worst.includes("#"), `worst scenario in words: ${worst}`);
  const legend = await page.$eval('#heatmap .legend[data-underlying="BTC"]', (l) => l.textContent);
  assert.ok(legend.includes("loss") && legend.includes("gain") && legend.includes("USD"), legend);
  // The worst scenario is outlined on the grid, or listed under it when it is a tail move.
  const outlined = await page.$$eval('#heatmap table[data-underlying="BTC"] td.worst',
    (cells) => cells.length);
  const listed = await page.$$eval('#other-scenarios li.worst[data-underlying="BTC"]', (items) => items.length);
  assert.equal(outlined + listed, 1, `the worst scenario is marked once: ${outlined} + ${listed}`);
  assert.ok(legend.includes(outlined === 1 ? "outlined" : "below the grid"), legend);
  const positions = await page.$$eval("#positions tr[data-instrument]", (rows) =>
    rows.map((r) => [r.dataset.instrument, r.querySelector("td.mark").textContent]));
  const held = (await call("GET", "api/accounts/hedged-book")).positions;
  assert.equal(positions.length, held.length, JSON.stringify(positions));
  for (const [instrument, mark] of positions) assert.match(mark, /\d (BTC|ETH|USD)$/, instrument);
  // Greeks per underlying, as the margin report gives them.
  const report = (await call("GET", "api/accounts/hedged-book/margin")).report;
  await page.waitForSelector("#greeks table", wait);
  const greeks = await page.$$eval("#greeks tr", (rows) =>
    rows.slice(1).map((r) => r.querySelector("td").textContent));
  assert.deepEqual(greeks, Object.keys(report.greeks), "a Greeks row per underlying");
  console.log(`dashboard: hedged-book worst "${worst}", ${positions.length} positions`);
}

// The existing live check: BTC up 10 % re-draws the heatmap with different P&L.
async function checkLiveUpdate(page, original) {
  const cells = () => page.$$eval('#heatmap table[data-underlying="BTC"] td.cell',
    (all) => all.map((c) => Number(c.dataset.pnl)));
  const before = await cells();
  const seqBefore = await page.$eval("#heatmap", (e) => e.dataset.marketSeq);
  const market = movedMarket(original, 1.1);
  const seq = await push(market);
  await page.waitForFunction((s) => document.querySelector("#heatmap").dataset.marketSeq === s,
    String(seq), wait);
  const after = await cells();
  assert.equal(after.length, before.length);
  assert.ok(after.some((pnl, i) => Math.abs(pnl - before[i]) > 1e-6), "heatmap P&L unchanged");
  const caption = await page.$eval('#heatmap table[data-underlying="BTC"] caption',
    (c) => c.textContent);
  const moved = market.underlyings.BTC.index.toLocaleString("en-US",
    { maximumFractionDigits: 0 });
  assert.ok(caption.includes(`index ${moved};`), `caption ${caption} shows the index ${moved}`);
  await page.waitForFunction(() => Number(document.querySelector("#sparkline").dataset.points) >= 1,
    null, wait);
  console.log(`dashboard: ${before.length} BTC heatmap cells; market ${seqBefore} -> ${seq} ` +
    "seen live");
}

// Search finds the coin-margined account by a part of its id, and its figures are in coins to
// the satoshi (never rounded to whole coins).
async function checkSearchAndCoins(page) {
  await page.fill("#search", "in-str");
  await page.waitForFunction(() => {
    const ids = [...document.querySelectorAll("#accounts tbody tr.account")]
      .map((r) => r.dataset.account);
    return ids.length === 1 && ids[0] === "coin-strangle";
  }, null, wait);
  assert.match(await page.$eval("#page-info", (e) => e.textContent), /of 1 matching/);
  await selectAccount(page, "coin-strangle");
  await page.waitForSelector('#margin-cards .card[data-currency="BTC"]', wait);
  const row = (await call("GET", "api/accounts?q=coin-strangle")).accounts[0];
  for (const figures of row.figures) {
    const shown = await page.$eval(`#margin-cards .card[data-currency="${figures.currency}"] ` +
      "tr.im td:last-child", (td) => td.textContent);
    assert.match(shown, new RegExp(`^\\d+\\.\\d{2,8} ${figures.currency}$`), shown);
    const value = Number(shown.split(" ")[0].replaceAll(",", ""));
    assert.ok(Math.abs(value - figures.initial_margin) <= 5e-9 && !Number.isInteger(value),
      `${shown} is ${figures.initial_margin}`);
  }
  const listed = await page.$$eval('tr.account[data-account="coin-strangle"] td.im div',
    (lines) => lines.map((l) => l.textContent));
  assert.equal(listed.length, 2, "one IM per coin in the list");
  for (const text of listed) assert.match(text, /^\d+\.\d{2,8}$/, text);
  const currencies = await page.$$eval('tr.account[data-account="coin-strangle"] td.currency div',
    (lines) => lines.map((l) => l.textContent));
  assert.deepEqual(currencies, ["BTC", "ETH"]);
  console.log(`dashboard: coin-strangle IM ${listed[0]} BTC, ${listed[1]} ETH`);
}

async function tradeForm(page, instrument, size, price) {
  await page.fill("#trades tbody tr:first-child [name=instrument]", instrument);
  await page.fill("#trades tbody tr:first-child [name=size]", size);
  await page.fill("#trades tbody tr:first-child [name=price]", price);
}

// A what-if at a given price shows the premium paid and the figures before and after; a
// pre-trade check of a trade that would leave IM uncovered is refused with the reason.
async function checkWhatIf(page) {
  await tradeForm(page, "BTC-25DEC26-75000-P", "1", "0.012");
  await page.click("#run-what-if");
  await page.waitForSelector("#what-if-result .fills td.cash", wait);
  const cash = await page.$eval("#what-if-result .fills td.cash", (td) => td.textContent);
  assert.equal(cash, "-0.012 BTC (premium paid)");
  const compared = await page.$$eval("#what-if-result .before-after tr", (rows) => rows.length);
  assert.ok(compared > 4, "before and after per currency");
  await tradeForm(page, "BTC-25DEC26-75000-P", "-1000", "");
  await page.click("#run-pre-trade");
  await page.waitForSelector("#what-if-result .verdict", wait);
  const verdict = await page.$eval("#what-if-result .verdict", (p) => p.textContent);
  assert.match(verdict, /^refused: BTC: .+/, verdict);
  console.log(`dashboard: what-if premium ${cash}; pre-trade ${verdict.slice(0, 60)}…`);
}

// BTC down 10 %: an MM breach reads below 1 (floored), never "1.00"; the alert log shows it.
async function checkBreach(page, original) {
  await page.fill("#search", "");
  await page.waitForFunction(() => !document.querySelector("#page-info").textContent
    .includes("matching"), null, wait);
  const seq = await push(movedMarket(original, 0.9));
  await listOn(page, seq);
  const breached = await page.$$eval('#accounts tr.account[data-status="mm-breach"]', (rows) =>
    rows.map((r) => [r.dataset.account, r.querySelector("td.health").textContent]));
  // perp-trader's long perpetual loses about 200,000 of its 300,000 USDC (the API test pins it).
  assert.ok(breached.some(([id]) => id === "perp-trader"), JSON.stringify(breached));
  for (const [id, text] of breached) {
    assert.match(text, /^0\.\d{3}$|^< 1$/, `${id}: ${text}`);
    assert.ok(text === "< 1" || Number(text) < 1, `${id}: ${text}`);
  }
  await page.waitForFunction(() => [...document.querySelectorAll("#alerts tbody tr")]
    .some((r) => r.textContent.includes("→ mm-breach")), null, wait);
  const alerts = await page.$$eval("#alerts tbody tr", (rows) => rows.map((r) =>
    [...r.cells].map((c) => c.textContent).join(" ")));
  console.log(`dashboard: in MM breach ${JSON.stringify(breached)}; alert "${alerts[0]}"`);
  // The breach starts perp-trader's liquidation; the table shows the route's plan for it.
  await page.waitForFunction(() => [...document.querySelectorAll("#liquidations tbody tr")]
    .some((r) => r.dataset.account === "perp-trader" && /trades in \d+ rounds/.test(r.textContent)),
  null, wait);
  const plan = await page.$eval('#liquidations tbody tr[data-account="perp-trader"]',
    (r) => [...r.cells].map((c) => c.textContent).join(" "));
  console.log(`dashboard: liquidation "${plan}"`);
  return seq;
}

// A market without ETH: ETH holders are unpriced, with their reason, and their figures are
// marked as the last good ones from the previous market.
async function checkUnpriced(page, original, goodSeq) {
  // A push merges into the current market by default; replacing it without an underlying that
  // accounts hold must be forced, with a reason.
  const replace = "api/markets?mode=replace&force=true&reason=ETH%20feed%20down";
  const seq = await push(withoutEth(movedMarket(original, 0.9)), replace);
  await listOn(page, seq);
  const note = await page.$eval('#accounts tr.note[data-account="eth-puts"]', (r) => r.textContent);
  assert.ok(note.includes("positions.ETH-26MAR27-3000-P"), note);
  assert.ok(note.includes(`last good on market #${goodSeq}`), note);
  assert.equal(await page.$eval('tr.account[data-account="eth-puts"] td.health',
    (td) => td.textContent), "—");
  await selectAccount(page, "eth-puts");
  await page.waitForSelector("#account-stale:not([hidden])", wait);
  const banner = await page.$eval("#account-stale", (p) => p.textContent);
  assert.ok(banner.includes("positions.ETH-") && banner.includes(`market #${goodSeq}`) &&
    banner.includes("not current"), banner);
  await page.waitForSelector("#margin-cards .card.stale", wait);
  console.log(`dashboard: unpriced eth-puts: ${banner.slice(0, 70)}…`);
}

// A backtest run from the BTC history file: the panel lists every methodology of the run once,
// with the verdict the API gave and the least margin marked on the one it named.
async function runBacktest() {
  const csv = readFileSync(new URL("../../../../shared/history/btc-usd-daily.csv",
    import.meta.url), "utf8");
  return call("POST", "api/backtests",
    { histories: { BTC: csv }, from: "2019-06-01", to: "2020-06-30" });
}

async function checkBacktests(page, run) {
  await page.waitForFunction((n) => document.querySelectorAll("#backtests tr.backtest").length
    === n, run.backtests.length, wait);
  const rows = await page.$$eval("#backtests tr.backtest", (trs) =>
    trs.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.equal(new Set(rows.map((r) => r[0])).size, run.backtests.length, JSON.stringify(rows));
  const least = rows.filter((r) => r[1] === "yes, least margin").map((r) => r[0]);
  assert.deepEqual(least, run.least_margin ? [run.least_margin] : [], JSON.stringify(rows));
  for (const view of run.backtests) {
    const row = rows.find((r) => r[0] === `${view.methodology.name}@${view.methodology.version}`);
    assert.ok(row && row[1].startsWith(view.verdict.covers ? "yes" : "no"), JSON.stringify(row));
    assert.equal(row[2], `${(100 * view.verdict.margin_to_notional).toFixed(2)} %`);
    assert.ok(row[4].startsWith(`#${run.run}, 2019-06-01 to 2020-06-30`), row[4]);
  }
  console.log(`dashboard: backtests ${rows.length} methodologies, least margin ${least}`);
}

// The example cross-venue book, stored through the API: the panel shows every account, each
// venue's own and credited IM, the netted IM and the release, with the exact decimals of
// GET /api/netting (the document `ballast net --json` prints for the same book).
async function storeVenueBook() {
  const book = JSON.parse(readFileSync(new URL("../../../examples/netting/cross-venue-book.json",
    import.meta.url), "utf8"));
  await call("PUT", "api/netting/book", book);
}

async function checkNetting(page) {
  const served = await call("GET", "api/netting");
  await page.waitForFunction((n) => document.querySelectorAll("#netting tr.netted").length === n,
    served.accounts.length, wait);
  const rows = await page.$$eval("#netting tr.netted", (trs) => trs.map((r) => ({
    id: r.dataset.account,
    status: r.cells[1].textContent,
    netted: r.querySelector("td.netted-im").dataset.usd,
    released: r.querySelector("td.released").dataset.usd,
    legs: [...r.querySelectorAll("div.leg")].map((l) =>
      [l.dataset.venue, l.dataset.standalone, l.dataset.credited]),
  })));
  let released = 0;
  for (const [i, account] of served.accounts.entries()) {
    const row = rows[i];
    assert.equal(row.id, account.id);
    assert.ok(row.status.startsWith(account.status), JSON.stringify(row));
    assert.equal(row.netted, account.netted_im);
    assert.equal(row.released, account.released_im);
    assert.deepEqual(row.legs,
      account.legs.map((l) => [l.venue, l.standalone_im, l.credited_im]));
    released += Number(account.released_im);
  }
  assert.ok(rows.some((r) => r.status === "netted"), JSON.stringify(rows));
  console.log(`dashboard: netting ${rows.length} cross-venue accounts, ` +
    `${released.toFixed(0)} USD of IM released, as GET /api/netting`);
}

// A fresh tab (no live update received yet) draws the stored samples of an account and lists
// the logged alerts: the service keeps both (it samples every second in this test).
async function checkStoredHistory(page) {
  await page.reload();
  await page.waitForSelector("#accounts tbody tr.account", wait);
  await page.waitForFunction(() => [...document.querySelectorAll("#alerts tbody tr")]
    .some((r) => r.dataset.account === "perp-trader" && r.textContent.includes("→ mm-breach")),
  null, wait);
  await selectAccount(page, "perp-trader");
  await page.waitForFunction(() => Number(document.querySelector("#sparkline").dataset.stored) >= 2,
    null, wait);
  const caption = await page.$eval("#history-caption", (c) => c.textContent);
  assert.match(caption, /stored samples? over the last day/, caption);
  const stored = await call("GET", "api/accounts/perp-trader/history");
  console.log(`dashboard: perp-trader history ${stored.samples.length} stored samples drawn ` +
    `after a reload; "${caption}"`);
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  await createAccounts();
  await storeVenueBook();
  const backtest = await runBacktest();
  const original = await call("GET", "api/markets/latest");
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await signIn(page);
  await checkBacktests(page, backtest);
  await checkNetting(page);
  assert.equal(await page.$eval('tr.account[data-account="empty-book"] td.health',
    (td) => td.textContent), "no MM", "unbounded health is no MM, not ∞");
  await checkAccountPanel(page);
  await noOverflow(page, 1280);
  await screenshot(page, "dashboard-1280.png");
  await checkLiveUpdate(page, original);
  await checkSearchAndCoins(page);
  await checkWhatIf(page);
  await noOverflow(page, 375);
  await page.setViewportSize({ width: 1280, height: 900 });
  const goodSeq = await checkBreach(page, original);
  await checkUnpriced(page, original, goodSeq);
  await noOverflow(page, 1280);
  await screenshot(page, "dashboard-1280-unpriced.png");
  await checkStoredHistory(page);
  await selectAccount(page, "short-strangle");
  await page.waitForSelector('#heatmap table[data-underlying="BTC"] td.worst, #other-scenarios ' +
    "li.worst", wait);
  await noOverflow(page, 375);
  await screenshot(page, "dashboard-375.png");
  assert.deepEqual(errors, []);
} finally {
  await browser.close();
}
