// The Ballast dashboard, for risk managers: accounts by health (searchable and paged), one
// account's margin in its own currencies, its positions, risk array, liquidation distance and
// session history, a what-if and pre-trade check, and the alert log, kept live by the /ws feed.
"use strict";

// Every list the page keeps grows only to these bounds, so a long session stays light.
const ALERTS_SHOWN_MAX = 200;
const HISTORY_POINTS_MAX = 500;
// The stored history drawn: the last day, at most this many samples asked for.
const HISTORY_WINDOW_SECS = 86_400;
const HISTORY_ROWS_ASKED = 2_000;
const SEARCH_DELAY_MS = 250;

const state = {
  selected: null,
  socket: null,
  marketSeq: null,
  valuationTime: null,
  page: { offset: 0, limit: 50, q: "" },
  // The selected account's last health-list row (from the list or the feed), kept for when a
  // search for its id cannot find it among the first matches.
  selectedRow: null,
  // Health per account selected this session, one point per live margin message (see
  // recordHistory); only followed accounts get messages, so there are few series.
  history: new Map(),
};

// Formatting. Stablecoins are dollars, shown to the cent; every other currency is a coin,
// shown to 8 decimals (a satoshi) as needed, because 0.15 BTC of margin is not "0".

const DOLLARS = new Set(["USD", "USDC", "USDT"]);
const missing = (x) => x === null || x === undefined || Number.isNaN(x);

// Negative zero (a flat short's P&L) reads "0.00", not "-0.00".
function amount(x, currency) {
  if (missing(x)) return "—";
  const places = DOLLARS.has(currency) ? 2 : 8;
  return (Number(x) + 0).toLocaleString("en-US",
    { minimumFractionDigits: 2, maximumFractionDigits: places });
}
const money = (x, currency) => (missing(x) ? "—" : `${amount(x, currency)} ${currency}`);

// Heatmap cells are read at a glance: three significant digits, the exact amount on hover.
const compact = (x) => (missing(x) ? "—" : Number(x).toLocaleString("en-US",
  { notation: "compact", maximumSignificantDigits: 3 }));

// Sizes and index levels: as many decimals as they have, up to 8.
const quantity = (x) => (missing(x) ? "—" : Number(x).toLocaleString("en-US",
  { maximumFractionDigits: 8 }));
const level = (x) => (missing(x) ? "—" : Number(x).toLocaleString("en-US",
  { maximumFractionDigits: Math.abs(x) >= 1000 ? 0 : 2 }));

// A signed percentage with a true minus sign: "−16 %", "+50 %", "±0 %".
function signedPercent(fraction) {
  const value = Number((100 * Math.abs(fraction)).toFixed(2));
  const sign = fraction > 0 ? "+" : fraction < 0 ? "−" : "±";
  return `${sign}${value}\u00a0%`;
}

// Equity / MM is floored, never rounded, so that 0.9996 (an MM breach) cannot read "1.00";
// the 1e-12 nudge only keeps a float's 199.99999999999997 from reading 199.999.
// Null means no MM at all (nothing can breach), which is not the same as unpriced.
function healthText(health, status) {
  if (status === "unpriced") return "—";
  if (missing(health)) return "no MM";
  const floored = Math.floor(health * 1000 * (1 + 1e-12)) / 1000;
  if (status === "mm-breach" && floored >= 1) return "< 1";
  return floored.toFixed(3);
}

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge status-" + status;
  span.textContent = status;
  return span;
}

// DOM helpers: text is always set as text, never parsed as HTML.

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function cell(row, content, className) {
  const td = element("td", typeof content === "string" ? content : null, className);
  if (content instanceof Node) td.appendChild(content);
  row.appendChild(td);
  return td;
}

function headerRow(table, labels) {
  const row = element("tr");
  for (const label of labels) row.appendChild(element("th", label));
  table.appendChild(row);
}

// One line per currency inside one cell: a segregated account has figures in BTC and ETH.
function lines(texts) {
  const wrapper = document.createDocumentFragment();
  for (const text of texts) wrapper.appendChild(element("div", text));
  return wrapper;
}

function fillTable(id, rows) {
  const table = document.getElementById(id);
  table.replaceChildren();
  for (const [label, value, className] of rows) {
    const row = element("tr", null, className);
    cell(row, label);
    cell(row, value);
    table.appendChild(row);
  }
}

// Runs `task` at most once at a time; calls during a run ask for one more run after it, so a
// burst of live messages costs two fetches, not one per message.
function coalesced(task) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) { again = true; return; }
    running = true;
    try {
      await task();
    } catch (error) {
      console.warn(error);
    } finally {
      running = false;
      if (again) { again = false; run(); }
    }
  };
}

// The API key: taken once from the address's fragment (`#key=...`, never sent to the server),
// then kept for this tab only; the sign-in form sets it too.
const KEY_STORE = "ballast.key";
function takeKeyFromFragment() {
  const match = /(?:^|&)key=([^&]+)/.exec(location.hash.slice(1));
  if (match) {
    sessionStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}
const apiKey = () => sessionStorage.getItem(KEY_STORE);

function showSignIn(reason) {
  const form = document.getElementById("sign-in");
  form.hidden = false;
  document.getElementById("sign-in-reason").textContent = reason;
  form.onsubmit = (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, document.getElementById("sign-in-key").value.trim());
    form.hidden = true;
    start();
  };
}

// A refused request, with the service's own reason (`{"error": {"field", "reason"}}`).
class ApiError extends Error {
  constructor(status, field, reason) {
    super(field ? `${field}: ${reason}` : reason);
    this.status = status;
  }
}

async function api(path, body) {
  const key = apiKey();
  const headers = key ? { authorization: `Bearer ${key}` } : {};
  const init = body === undefined ? { headers } : { method: "POST",
    headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  if (response.status === 401 || response.status === 403) {
    showSignIn(response.status === 401 ? "Sign in with an API key." :
      "This key may not see that; sign in with another.");
  }
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a plain-text refusal */ }
  if (!response.ok) {
    const error = json && json.error;
    throw new ApiError(response.status, error && error.field,
      error ? error.reason : `${path}: ${response.status} ${text}`);
  }
  return json;
}

// The accounts list: one page of the health list, filtered by the search box.

// The list names each row's currencies once, in their own column, so that its amounts stay
// narrow; the account panel writes the currency beside every amount.
function rowFigures(row, pick) {
  return lines(row.figures.map((f) => amount(pick(f), f.currency)));
}

// An unpriced account gets a second row, under its figures, saying why, and whether the
// figures beside it are the last good ones (and from which market) or none at all.
function noteRow(account) {
  const note = element("tr", null, "note");
  note.dataset.account = account.id;
  const td = cell(note, "");
  td.colSpan = 7;
  td.appendChild(element("span", account.error || "cannot be valued", "reason"));
  td.appendChild(document.createTextNode(" "));
  td.appendChild(element("span", staleText(account.stale), "stale-label"));
  return note;
}

function staleText(stale) {
  if (!stale) return "no figures: never valued";
  const then = `${stale.status}, equity / MM ${healthText(stale.health, stale.status)}`;
  return `figures: last good on market #${stale.market_seq ?? "?"} (${then})`;
}

function accountRows(account) {
  const row = element("tr", null, "account");
  row.dataset.account = account.id;
  row.dataset.status = account.status;
  cell(row, account.id);
  cell(row, badge(account.status));
  cell(row, healthText(account.health, account.status), "health");
  cell(row, lines(account.figures.map((f) => f.currency)), "currency");
  const stale = account.status === "unpriced" ? " stale" : "";
  cell(row, rowFigures(account, (f) => f.equity), "equity" + stale);
  cell(row, rowFigures(account, (f) => f.initial_margin), "im" + stale);
  cell(row, rowFigures(account, (f) => f.maintenance_margin), "mm" + stale);
  const rows = [row];
  if (account.status === "unpriced") rows.push(noteRow(account));
  for (const r of rows) {
    if (account.id === state.selected) r.classList.add("selected");
    r.addEventListener("click", () => select(account.id));
  }
  return rows;
}

function showPageInfo(list) {
  const { offset, limit, q } = state.page;
  const shown = list.accounts.length;
  const range = shown === 0 ? "none" : `${quantity(offset + 1)}–${quantity(offset + shown)}`;
  const matching = q ? ` matching “${q}”` : "";
  document.getElementById("page-info").textContent =
    `${range} of ${quantity(list.total)}${matching}`;
  document.getElementById("page-prev").disabled = offset === 0;
  document.getElementById("page-next").disabled = offset + limit >= list.total;
  document.getElementById("breaches").textContent = `${quantity(list.total)} accounts` +
    `${matching}: ${quantity(list.im_breaches)} below IM, ${quantity(list.mm_breaches)} ` +
    `below MM (market #${list.market_seq ?? "—"})`;
}

async function loadAccounts() {
  const { offset, limit, q } = state.page;
  const query = new URLSearchParams({ offset, limit });
  if (q) query.set("q", q);
  const list = await api(`/api/accounts?${query}`);
  const body = document.querySelector("#accounts tbody");
  body.replaceChildren();
  for (const account of list.accounts) {
    if (account.id === state.selected) state.selectedRow = account;
    body.append(...accountRows(account));
  }
  showPageInfo(list);
  if (state.selected === null && list.accounts.length > 0) select(list.accounts[0].id);
}
const reloadAccounts = coalesced(loadAccounts);

function setUpPaging() {
  const search = document.getElementById("search");
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.page.q = search.value;
      state.page.offset = 0;
      reloadAccounts();
    }, SEARCH_DELAY_MS);
  });
  document.getElementById("account-search").addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("page-size").addEventListener("change", (event) => {
    state.page.limit = Number(event.target.value);
    state.page.offset = 0;
    reloadAccounts();
  });
  const step = (direction) => () => {
    const { offset, limit } = state.page;
    state.page.offset = Math.max(0, offset + direction * limit);
    reloadAccounts();
  };
  document.getElementById("page-prev").addEventListener("click", step(-1));
  document.getElementById("page-next").addEventListener("click", step(+1));
}

// Scenarios in words. The risk array carries the size of the vol shock; the scenario itself
// says which way it goes.

function volWords(vol, unit) {
  if (vol === "none") return "vol unchanged";
  if (!unit || missing(unit.vol_shock_up)) return `vol ${vol}`;
  const size = vol === "up" ? unit.vol_shock_up : -unit.vol_shock_down;
  // A methodology may size a shock at zero (Ballast PM's calibrated BTC and ETH shocks are).
  if (size === 0) return `vol unchanged (a zero ${vol} shock)`;
  if (unit.vol_shock_kind === "absolute") {
    const points = Number((100 * Math.abs(size)).toFixed(2));
    return `vol ${size < 0 ? "−" : "+"}${points} pts`;
  }
  return `vol ${signedPercent(size)}`;
}

function describeScenario(underlying, scenario, unit) {
  if (scenario.kind.startsWith("skew")) {
    return `${underlying} unchanged, ${scenario.kind.replace("skew-", "")} skew shock`;
  }
  if (scenario.kind === "auxiliary") return `${underlying} auxiliary scenario`;
  const words = `${underlying} ${signedPercent(scenario.spot_move)}, ` +
    volWords(scenario.vol, unit);
  if (scenario.kind === "extreme") {
    return `${words} (extreme move, P&L counted at ${Number((100 * scenario.weight)
      .toFixed(1))} %)`;
  }
  return words;
}

// The worst scenario of one currency's figures, in words, from the risk unit of the same
// underlying and currency (its scenarios and the size of its vol shocks).
function worstWords(figures, units) {
  if (figures.worst_is_contingency) return "a competing contingency, not a scenario";
  if (!figures.worst_underlying || missing(figures.worst_scenario)) return "none (no loss)";
  const unit = units.find((u) => u.underlying === figures.worst_underlying &&
    u.currency === figures.currency);
  const scenario = unit && unit.scenarios[figures.worst_scenario];
  if (!scenario) {
    return `${figures.worst_underlying} scenario ${figures.worst_scenario} (not described: ` +
      "its scenario set has not been seen this session)";
  }
  return describeScenario(figures.worst_underlying, scenario, unit);
}

// Scenario sets belong to the methodology, not to the market, so the last risk array seen for
// a methodology still describes the worst scenario of figures kept from an earlier market.
// There are as many keys as methodologies × risk units: few.
const scenarioSets = new Map();
const setKey = (methodology, u) => `${methodology}|${u.underlying}|${u.currency}`;

function unitsFor(methodology, risk) {
  const units = risk ? risk.units : [];
  for (const unit of units) scenarioSets.set(setKey(methodology, unit), unit);
  const known = [...scenarioSets.entries()]
    .filter(([key]) => key.startsWith(methodology + "|")).map(([, unit]) => unit);
  return units.length > 0 ? units : known;
}

// The selected account's margin, one card per currency.

function marginCard(figures, units, stale) {
  const card = element("div", null, "card margin" + (stale ? " stale" : ""));
  card.dataset.currency = figures.currency;
  const title = stale ? `Margin in ${figures.currency}: last good on market ` +
    `#${stale.market_seq ?? "?"}, not current` : `Margin in ${figures.currency}`;
  card.appendChild(element("h3", title));
  const c = figures.currency;
  const rows = [
    ["equity", money(figures.equity, c)],
    ["initial margin (IM)", money(figures.initial_margin, c), "im"],
    ["maintenance margin (MM)", money(figures.maintenance_margin, c), "mm"],
    ["excess over IM", money(figures.equity - figures.initial_margin, c)],
    ["scan loss", money(figures.scan_loss, c)],
    ["add-ons (IM)", money(figures.add_ons_im, c)],
  ];
  if (figures.haircut_im) rows.push(["collateral haircut (IM)", money(figures.haircut_im, c)]);
  rows.push(["worst scenario", worstWords(figures, units), "worst"]);
  const table = element("table");
  for (const [label, value, className] of rows) {
    const row = element("tr", null, className);
    cell(row, label);
    cell(row, value);
    table.appendChild(row);
  }
  card.appendChild(table);
  return card;
}

function showMarginCards(figures, stale, report, units) {
  const group = document.getElementById("margin-cards");
  group.replaceChildren(...figures.map((f) => marginCard(f, units, stale)));
  const addOns = (report ? report.add_ons : []).filter((a) => a.value !== 0);
  if (addOns.length > 0) {
    const card = element("div", null, "card");
    card.appendChild(element("h3", "Add-ons"));
    const table = element("table");
    for (const a of addOns) {
      const row = element("tr");
      cell(row, `${a.name} (${a.underlying})`);
      cell(row, money(a.value, a.currency));
      table.appendChild(row);
    }
    card.appendChild(table);
    group.appendChild(card);
  }
}

function showBaseline(report) {
  const b = report && report.baseline;
  fillTable("baseline", b ? [
    ["portfolio IM", money(b.portfolio_initial_margin, "USD")],
    [`standard IM (${b.methodology})`, money(b.initial_margin, "USD")],
    ["standard MM", money(b.maintenance_margin, "USD")],
    ["capital released", money(b.released, "USD")],
  ] : [["standard margin", "—"]]);
}

function showLiquidation(report) {
  const moves = report ? report.liquidation : [];
  // A negative cushion is a breach already: no move is needed to reach it.
  const side = (l, price, move) => (l.cushion < 0 ? "below MM now" : missing(price) ?
    "no breach in range" : `${level(price)} (${signedPercent(move)})`);
  fillTable("liquidation", moves.length === 0 ? [["liquidation", "—"]] : moves.flatMap((l) => [
    [`${l.underlying} cushion (equity − MM)`, money(l.cushion, l.currency)],
    [`${l.underlying} down to`, side(l, l.price_down, l.move_down)],
    [`${l.underlying} up to`, side(l, l.price_up, l.move_up)],
  ]));
}

// Positions: the stored holding (size, entry) joined with the report's marks, P&L and marginal
// and standard margins. Without a report (unpriced) only the holding is known.

// The unit a price is quoted in: options in their settlement currency, futures in USD (or the
// quote of a linear contract, e.g. BTC_USDC-PERPETUAL).
function priceCurrency(instrument, settlement) {
  const parts = instrument.split("-");
  if (parts.length >= 4) return settlement || parts[0];
  const quote = parts[0].split("_")[1];
  return quote || "USD";
}

function positionRow(held, priced) {
  const row = element("tr");
  row.dataset.instrument = held.instrument;
  const settlement = priced ? priced.pnl_currency : null;
  const unit = priceCurrency(held.instrument, settlement);
  cell(row, held.instrument);
  cell(row, quantity(held.size));
  cell(row, priced ? money(priced.mark, unit) : "—", "mark");
  cell(row, money(held.entry ?? (priced && priced.entry), unit));
  cell(row, priced ? money(priced.unrealised_pnl, priced.pnl_currency) : "—");
  cell(row, priced ? money(priced.value, priced.currency) : "—");
  cell(row, priced ? money(priced.marginal_im, priced.currency) : "—", "marginal-im");
  cell(row, priced ? money(priced.standard_im, "USD") : "—");
  return row;
}

function showPositions(account, report, why) {
  const table = document.getElementById("positions");
  table.replaceChildren();
  headerRow(table, ["instrument", "size", "mark", "entry", "unrealised P&L", "value",
    "marginal IM (∂IM/∂size)", "standard IM"]);
  const priced = new Map((report ? report.positions : []).map((p) => [p.instrument, p]));
  for (const held of account.positions) {
    table.appendChild(positionRow(held, priced.get(held.instrument)));
  }
  const balances = Object.entries(account.balances)
    .map(([currency, text]) => money(Number(text), currency));
  document.getElementById("balances").textContent = "Balances: " +
    (balances.length ? balances.join(" · ") : "none");
  document.getElementById("positions-note").textContent = account.positions.length === 0 ?
    "No positions." : report ? "Size: contracts for options, USD for inverse futures. " +
      "Marginal IM is the change in IM per unit of size." :
      `Marks, P&L and margins unavailable: ${why}`;
  showGreeks(report);
}

// Greeks per underlying, from the report's `greeks`: {underlying: {delta_coins, delta_usd,
// vega_usd_per_vol_point}} (delta at each option's own implied vol; vega per vol point).
function showGreeks(report) {
  const container = document.getElementById("greeks");
  container.replaceChildren();
  const greeks = report && report.greeks;
  if (!greeks || typeof greeks !== "object" || Object.keys(greeks).length === 0) return;
  const table = element("table");
  headerRow(table, ["underlying", "delta (coins)", "delta (USD)", "vega (USD / vol pt)"]);
  for (const [underlying, g] of Object.entries(greeks)) {
    const row = element("tr");
    cell(row, underlying);
    cell(row, quantity(g.delta_coins));
    cell(row, quantity(g.delta_usd));
    cell(row, quantity(g.vega_usd_per_vol_point));
    table.appendChild(row);
  }
  container.append(element("h3", "Greeks"), table);
}

// The risk-array heatmap: one grid per risk unit, regular scenarios as price × vol, the rest
// listed under it. Colour runs from red (loss) through white to green (gain), on a scale
// symmetric about zero, so equal colours mean equal amounts within a unit.

function colour(pnl, scale) {
  const t = Math.max(-1, Math.min(1, pnl / scale));
  const light = 97 - 47 * Math.abs(t);
  return t < 0 ? `hsl(0, 75%, ${light}%)` : `hsl(130, 55%, ${light}%)`;
}

function legend(unit, scale, worstWordsText, worstOnGrid) {
  const box = element("div", null, "legend");
  box.dataset.underlying = unit.underlying;
  box.appendChild(element("span", `loss −${compact(scale)} ${unit.currency}`));
  const bar = element("span", null, "legend-bar");
  bar.style.background = `linear-gradient(to right, ${colour(-scale, scale)}, ` +
    `${colour(0, scale)}, ${colour(scale, scale)})`;
  box.appendChild(bar);
  box.appendChild(element("span", `gain +${compact(scale)} ${unit.currency}`));
  const where = worstOnGrid ? "outlined" : "below the grid";
  box.appendChild(element("span", `P&L per scenario in ${unit.currency} (3 significant digits; ` +
    `hover for the exact amount). Worst, ${where}: ${worstWordsText}.`, "legend-text"));
  return box;
}

function heatmapCell(row, scenario, unit, scale) {
  const td = cell(row, scenario ? compact(scenario.pnl) : "");
  if (!scenario) return;
  td.className = "cell" + (scenario.index === unit.worst ? " worst" : "");
  td.dataset.pnl = String(scenario.pnl);
  td.style.background = colour(scenario.pnl, scale);
  td.title = `${describeScenario(unit.underlying, scenario, unit)}: P&L ` +
    money(scenario.pnl, unit.currency);
}

function heatmapTable(unit, regular, scale) {
  const moves = [...new Set(regular.map((s) => s.spot_move))].sort((a, b) => a - b);
  const vols = ["up", "none", "down"].filter((v) => regular.some((s) => s.vol === v));
  const table = element("table", null, "heatmap");
  table.dataset.underlying = unit.underlying;
  table.appendChild(element("caption", `${unit.underlying} (index ${level(unit.index)}; vol ` +
    `shock ${unit.vol_shock_kind}: ${volWords("up", unit)} / ${volWords("down", unit)} at ` +
    `${unit.vol_shock_reference_days} d; P&L in ${unit.currency})`));
  const head = element("tr");
  head.appendChild(element("th", "vol \\ price"));
  for (const m of moves) {
    const s = regular.find((r) => r.spot_move === m);
    head.appendChild(element("th", `${level(s.price)} (${signedPercent(m)})`));
  }
  table.appendChild(head);
  for (const v of vols) {
    const row = element("tr");
    row.appendChild(element("th", volWords(v, unit)));
    for (const m of moves) {
      heatmapCell(row, regular.find((r) => r.spot_move === m && r.vol === v), unit, scale);
    }
    table.appendChild(row);
  }
  return table;
}

function showRiskArray(risk) {
  const container = document.getElementById("heatmap");
  container.replaceChildren();
  const others = [];
  for (const unit of risk.units) {
    const indexed = unit.scenarios.map((s, index) => ({ ...s, index }));
    const regular = indexed.filter((s) => s.kind === "regular");
    others.push(...indexed.filter((s) => s.kind !== "regular" && s.kind !== "auxiliary")
      .map((s) => ({ ...s, unit })));
    const scale = Math.max(Number.MIN_VALUE, ...indexed.map((s) => Math.abs(s.pnl)));
    const worst = indexed[unit.worst];
    const words = worst ? `${describeScenario(unit.underlying, worst, unit)}, P&L ` +
      money(worst.pnl, unit.currency) : "none";
    const block = element("div", null, "scroll");
    block.appendChild(heatmapTable(unit, regular, scale));
    container.append(block, legend(unit, scale, words, worst && worst.kind === "regular"));
  }
  if (risk.units.length === 0) container.appendChild(element("p", "No risk units.", "muted"));
  container.dataset.marketSeq = String(risk.market_seq);
  showOtherScenarios(others);
}

function showOtherScenarios(others) {
  const list = document.getElementById("other-scenarios");
  list.replaceChildren();
  if (others.length === 0) return;
  list.appendChild(element("h4", "Scenarios outside the grid"));
  const items = element("ul");
  for (const s of others) {
    const text = `${describeScenario(s.unit.underlying, s, s.unit)}: ` +
      money(s.pnl, s.unit.currency);
    const item = element("li", text, s.index === s.unit.worst ? "worst" : null);
    item.dataset.underlying = s.unit.underlying;
    items.appendChild(item);
  }
  list.appendChild(items);
}

// Health history: the samples the service stores (GET /api/accounts/{id}/history, one per step
// in which the account's figures changed) followed by the live margin messages received since.

function recordHistory(row, marketSeq) {
  const series = state.history.get(row.id) || [];
  const health = row.status === "unpriced" ? null : row.health;
  const last = series[series.length - 1];
  if (last && last.marketSeq === marketSeq && last.health === health) return;
  series.push({ marketSeq, health, status: row.status, at: new Date(), live: true });
  if (series.length > HISTORY_POINTS_MAX) series.shift();
  state.history.set(row.id, series);
}

async function loadHistory(id) {
  const from = Math.floor(Date.now() / 1000) - HISTORY_WINDOW_SECS;
  const path = `/api/accounts/${encodeURIComponent(id)}/history?` +
    new URLSearchParams({ from, limit: HISTORY_ROWS_ASKED });
  const history = await api(path);
  const stored = history.samples.slice(-HISTORY_POINTS_MAX).map((s) => ({ marketSeq: s.market_seq,
    health: s.status === "unpriced" ? null : s.health, status: s.status, at: new Date(s.at * 1000),
    live: false }));
  const last = stored.length > 0 ? stored[stored.length - 1].at : new Date(0);
  const live = (state.history.get(id) || []).filter((p) => p.live && p.at > last);
  state.history.set(id, [...stored, ...live].slice(-HISTORY_POINTS_MAX));
}

async function downloadCsv(path, file) {
  const response = await fetch(path, { headers: { authorization: `Bearer ${apiKey()}` } });
  if (!response.ok) throw new ApiError(response.status, null, await response.text());
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = file;
  link.click();
  URL.revokeObjectURL(link.href);
}

// A polyline per run of priced points (an unpriced update breaks the line), with a dashed
// line where equity equals MM when it is in view.
function sparklinePaths(points, width, height) {
  const values = points.filter((p) => !missing(p.health)).map((p) => p.health);
  const low = Math.min(...values, 1);
  const high = Math.max(...values, 1);
  const span = high - low || 1;
  const x = (i) => (points.length === 1 ? width / 2 : (i * width) / (points.length - 1));
  const y = (v) => height - 4 - ((v - low) / span) * (height - 8);
  const runs = [[]];
  points.forEach((p, i) => {
    if (missing(p.health)) runs.push([]);
    else runs[runs.length - 1].push(`${x(i).toFixed(1)},${y(p.health).toFixed(1)}`);
  });
  return { runs: runs.filter((r) => r.length > 0), mm: y(1) };
}

function drawHistory(id) {
  const svg = document.getElementById("sparkline");
  const points = state.history.get(id) || [];
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const { runs, mm } = sparklinePaths(points, 240, 60);
  const line = document.createElementNS(ns, "line");
  for (const [k, v] of [["x1", 0], ["x2", 240], ["y1", mm], ["y2", mm]]) line.setAttribute(k, v);
  line.setAttribute("class", "mm-line");
  svg.appendChild(line);
  for (const run of runs) {
    const polyline = document.createElementNS(ns, run.length === 1 ? "circle" : "polyline");
    if (run.length === 1) {
      const [cx, cy] = run[0].split(",");
      for (const [k, v] of [["cx", cx], ["cy", cy], ["r", 2]]) polyline.setAttribute(k, v);
    } else {
      polyline.setAttribute("points", run.join(" "));
    }
    svg.appendChild(polyline);
  }
  svg.dataset.points = String(points.length);
  const stored = points.filter((p) => !p.live).length;
  svg.dataset.stored = String(stored);
  const last = points[points.length - 1];
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  document.getElementById("history-caption").textContent = points.length === 0 ?
    "No stored sample in the last day yet, and no live update." :
    `${plural(stored, "stored sample")} over the last day and ` +
    `${plural(points.length - stored, "live update")}; last ${last.status === "unpriced" ?
      "unpriced" : healthText(last.health, last.status)} ` +
    `on market #${last.marketSeq ?? "—"}, ${last.at.toLocaleString("en-GB")}. ` +
    "Dashed: equity = MM.";
}

// The selected account: its header, the stale warning, and every panel, from one set of
// fetches. A failed part (an unpriced account has no margin report) leaves the others.

async function healthRowOf(id) {
  const list = await api(`/api/accounts?${new URLSearchParams({ q: id, limit: 1000 })}`);
  const row = list.accounts.find((a) => a.id === id);
  const known = state.selectedRow && state.selectedRow.id === id ? state.selectedRow : null;
  return row || known;
}

function showAccountHeader(id, row, account) {
  document.getElementById("account-title").textContent = "Account " + id;
  const status = document.getElementById("account-status");
  status.replaceChildren();
  if (row) status.appendChild(badge(row.status));
  if (row && row.status !== "unpriced") {
    status.appendChild(element("span", ` equity / MM ${healthText(row.health, row.status)}`,
      "health"));
  }
  document.getElementById("account-methodology").textContent =
    account ? account.methodology_label : "";
  const note = document.getElementById("account-stale");
  note.hidden = !row || row.status !== "unpriced";
  if (!note.hidden) {
    note.textContent = `Unpriced on market #${state.marketSeq ?? "—"}: ` +
      `${row.error || "cannot be valued"}. ` + (row.stale ? `The figures shown are the last ` +
      `good ones, from market #${row.stale.market_seq ?? "?"} (then ${row.stale.status}, ` +
      `equity / MM ${healthText(row.stale.health, row.stale.status)}); they are not current.` :
      "It has never been valued: there are no figures.");
  }
}

// The report's figures when there is one; else, for an unpriced account, its last good
// figures marked stale (none if it was never valued); else the health list's current ones.
function figuresToShow(report, row) {
  if (report) return [report.currencies, null];
  if (!row) return [[], null];
  if (row.status !== "unpriced") return [row.figures, null];
  return row.stale ? [row.figures, row.stale] : [[], null];
}

const settle = (promise) => promise.then((value) => ({ value }), (error) => ({ error }));

async function refreshSelectedNow() {
  const id = state.selected;
  if (id === null) return;
  const path = `/api/accounts/${encodeURIComponent(id)}`;
  const [account, margin, risk, row] = await Promise.all([settle(api(path)),
    settle(api(`${path}/margin`)), settle(api(`${path}/risk-array`)), settle(healthRowOf(id))]);
  if (state.selected !== id) return;
  if (account.error) {
    document.getElementById("account-title").textContent = `${id}: ${account.error.message}`;
    return;
  }
  const report = margin.value ? margin.value.report : null;
  const current = row.value || null;
  showAccountHeader(id, current, account.value);
  const [figures, stale] = figuresToShow(report, current);
  const units = unitsFor(account.value.methodology, risk.value);
  showMarginCards(figures, stale, report, units);
  showBaseline(report);
  showLiquidation(report);
  showPositions(account.value, report, margin.error ? margin.error.message : "");
  if (risk.value) {
    showRiskArray(risk.value);
    state.valuationTime = risk.value.valuation_time;
    showMarket();
  }
  drawHistory(id);
  // Says which account the panel now shows (the browser test waits on it).
  document.getElementById("account-panel").dataset.account = id;
}
const refreshSelected = coalesced(refreshSelectedNow);

function select(id) {
  state.selected = id;
  delete document.getElementById("account-panel").dataset.account;
  document.getElementById("account-title").textContent = "Account " + id;
  document.getElementById("what-if-result").replaceChildren();
  for (const row of document.querySelectorAll("#accounts tbody tr")) {
    row.classList.toggle("selected", row.dataset.account === id);
  }
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify({ subscribe: [id] }));
  }
  drawHistory(id);
  refreshSelected();
  loadHistory(id).then(() => { if (state.selected === id) drawHistory(id); },
    (error) => { document.getElementById("history-caption").textContent = error.message; });
}

// What-if and pre-trade check: the same trades, priced (or at the mark) on the current risk
// arrays; nothing is stored.

function tradeRow(trade = {}) {
  const row = element("tr");
  const input = (name, type, placeholder, value) => {
    const field = element("input");
    Object.assign(field, { name, type, placeholder, value: value ?? "" });
    if (type === "number") field.step = "any";
    field.setAttribute("aria-label", name);
    cell(row, field);
    return field;
  };
  input("instrument", "text", "BTC-PERPETUAL", trade.instrument).setAttribute("list",
    "instruments");
  input("size", "number", "1", trade.size).required = true;
  input("price", "number", "mark", trade.price);
  const remove = element("button", "×");
  remove.type = "button";
  remove.title = "remove this trade";
  remove.addEventListener("click", () => row.remove());
  cell(row, remove);
  document.querySelector("#trades tbody").appendChild(row);
}

function readTrades() {
  return [...document.querySelectorAll("#trades tbody tr")].map((row) => {
    const value = (name) => row.querySelector(`[name=${name}]`).value.trim();
    const trade = { instrument: value("instrument"), size: Number(value("size")) };
    if (value("price") !== "") trade.price = Number(value("price"));
    return trade;
  }).filter((t) => t.instrument !== "");
}

// An option's cash is its premium (negative: paid); a future's is the P&L it realises.
function cashWords(fill) {
  const cash = Number(fill.cash);
  const option = fill.instrument.split("-").length >= 4;
  const what = cash === 0 ? "no cash" : option ? (cash < 0 ? "premium paid" :
    "premium received") : "P&L realised";
  return `${money(cash, fill.currency)} (${what})`;
}

function fillsTable(fills) {
  const table = element("table", null, "fills");
  headerRow(table, ["instrument", "size", "price", "cash moved"]);
  for (const fill of fills) {
    const row = element("tr");
    cell(row, fill.instrument);
    cell(row, quantity(fill.size));
    cell(row, money(fill.price, priceCurrency(fill.instrument, fill.currency)));
    cell(row, cashWords(fill), "cash").title = `exact: ${fill.cash} ${fill.currency}`;
    table.appendChild(row);
  }
  return table;
}

function comparisonTable(before, after) {
  const table = element("table", null, "before-after");
  headerRow(table, ["currency", "figure", "before", "after", "change"]);
  const measures = [["equity", (f) => f.equity], ["IM", (f) => f.initial_margin],
    ["MM", (f) => f.maintenance_margin],
    ["excess over IM", (f) => f.equity - f.initial_margin]];
  for (const b of before) {
    const a = after.find((f) => f.currency === b.currency) || {};
    for (const [name, pick] of measures) {
      const row = element("tr");
      cell(row, b.currency);
      cell(row, name);
      cell(row, money(pick(b), b.currency));
      cell(row, money(pick(a), b.currency));
      cell(row, money(pick(a) - pick(b), b.currency));
      table.appendChild(row);
    }
  }
  return table;
}

function showWhatIf(whatIf, verdict) {
  const result = document.getElementById("what-if-result");
  result.replaceChildren();
  if (verdict) {
    const text = verdict.accepted ? "accepted" : `refused: ${verdict.reason}`;
    result.appendChild(element("p", text, "verdict " +
      (verdict.accepted ? "accepted" : "refused")));
  }
  result.appendChild(element("p", `On market #${whatIf.market_seq ?? "—"}; nothing is ` +
    "stored.", "muted"));
  for (const table of [fillsTable(whatIf.fills), comparisonTable(whatIf.before, whatIf.after)]) {
    const box = element("div", null, "scroll");
    box.appendChild(table);
    result.appendChild(box);
  }
}

function setUpWhatIf() {
  tradeRow();
  document.getElementById("add-trade").addEventListener("click", () => tradeRow());
  document.getElementById("what-if").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = document.getElementById("what-if-result");
    if (state.selected === null) return;
    const check = event.submitter && event.submitter.value === "pre-trade";
    const path = `/api/accounts/${encodeURIComponent(state.selected)}/` +
      (check ? "pre-trade" : "what-if");
    result.replaceChildren(element("p", "computing…", "muted"));
    try {
      const answer = await api(path, { trades: readTrades() });
      showWhatIf(check ? answer.what_if : answer, check ? answer : null);
    } catch (error) {
      result.replaceChildren(element("p", `refused by the service: ${error.message}`,
        "verdict error"));
    }
  });
}

// The market's sequence number comes from the feed, its valuation time from the last market or
// risk array fetched (the feed's messages do not carry it).
function showMarket() {
  const seq = state.marketSeq === null ? "" : ` #${state.marketSeq}`;
  const time = state.valuationTime ? `, valued ${state.valuationTime}` : "";
  document.getElementById("market").textContent = `market${seq}${time}`;
}

async function loadInstruments() {
  try {
    const market = await api("/api/markets/latest");
    state.valuationTime = market.valuation_time;
    showMarket();
    const list = document.getElementById("instruments");
    list.replaceChildren(...Object.keys(market.instruments || {}).sort()
      .map((name) => { const o = element("option"); o.value = name; return o; }));
  } catch {
    document.getElementById("market").textContent = "market: none";
  }
}

// The alert log: every status change the feed reports, newest first, bounded.

function showAlert(message, at = new Date()) {
  const body = document.querySelector("#alerts tbody");
  const row = element("tr", null, "alert status-" + message.to);
  row.dataset.account = message.account;
  cell(row, at.toLocaleString("en-GB"));
  cell(row, message.account, "account-link");
  const change = element("span");
  change.append(badge(message.from), " → ", badge(message.to));
  cell(row, change);
  cell(row, healthText(message.health, message.to));
  row.addEventListener("click", () => select(message.account));
  body.prepend(row);
  while (body.rows.length > ALERTS_SHOWN_MAX) body.deleteRow(-1);
}

// The log's latest alerts first (oldest of them at the bottom), then the live ones on top.
async function loadAlerts() {
  const log = await api(`/api/alerts?${new URLSearchParams({ limit: ALERTS_SHOWN_MAX })}`);
  document.querySelector("#alerts tbody").replaceChildren();
  for (const alert of log.alerts.slice().reverse()) showAlert(alert, new Date(alert.at * 1000));
}

// Breach → liquidation events from the feed, newest first, each with the plan the route serves
// (trades, rounds, expected cost, whether the target is reached).
async function showLiquidationEvent(message) {
  const body = document.querySelector("#liquidations tbody");
  const row = element("tr", null, "liquidation stage-" + message.stage);
  row.dataset.account = message.account;
  cell(row, new Date().toLocaleString("en-GB"));
  cell(row, message.account, "account-link");
  cell(row, message.stage);
  const summary = cell(row, message.stage === "started" ? "planning…" : "back above MM");
  row.addEventListener("click", () => select(message.account));
  body.prepend(row);
  while (body.rows.length > ALERTS_SHOWN_MAX) body.deleteRow(-1);
  if (message.stage !== "started") return;
  try {
    const plan = await api(message.plan);
    summary.textContent = `${plan.trades.length} trades in ${plan.rounds} rounds, ` +
      `cost ${plan.expected_cost_usd.toFixed(2)} USD + fees ${plan.fees_usd.toFixed(2)} USD, ` +
      (plan.reached ? `back to ${plan.buffer_scale} × MM` : "target not reached");
  } catch (error) {
    summary.textContent = `plan: ${error.message}`;
  }
}

function alertNote(text) {
  document.getElementById("alerts-note").textContent = text;
}

// The live feed.

function onMessage(message) {
  if (message.type === "hello" || message.type === "recompute") {
    state.marketSeq = message.market_seq;
    showMarket();
  }
  if (message.type === "recompute") {
    showMarket();
    document.getElementById("recompute").textContent =
      `recomputed ${quantity(message.accounts)} accounts in ` +
      `${(1000 * message.seconds).toFixed(1)} ms`;
    reloadAccounts();
    refreshSelected();
    reloadNetting();
  } else if (message.type === "margin") {
    if (message.account.id === state.selected) state.selectedRow = message.account;
    recordHistory(message.account, message.market_seq);
    reloadAccounts();
    if (message.account.id === state.selected) refreshSelected();
  } else if (message.type === "alert") {
    showAlert(message);
  } else if (message.type === "liquidation") {
    showLiquidationEvent(message);
  } else if (message.type === "alerts-truncated") {
    alertNote(`${quantity(message.count)} more alerts in one update were not sent.`);
  } else if (message.type === "lagged") {
    alertNote(`The feed fell behind and skipped ${quantity(message.missed)} updates.`);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`,
    ["ballast", `bearer.${apiKey()}`]);
  state.socket = socket;
  const status = document.getElementById("connection");
  socket.onopen = () => {
    status.textContent = "live";
    status.className = "online";
    if (state.selected !== null) socket.send(JSON.stringify({ subscribe: [state.selected] }));
  };
  socket.onclose = () => {
    status.textContent = "live: reconnecting";
    status.className = "offline";
    setTimeout(connect, 1000);
  };
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
}

// Cross-venue netting: the stored book (PUT /api/netting/book) netted on the current market,
// the document GET /api/netting serves, re-read after each recompute. Each venue's own IM for
// its leg and the part of the netted IM credited to it (the parts sum to the netted IM
// exactly); every amount keeps the document's exact decimal in `data-usd`.
const NETTING_ROWS_MAX = 200;

function usdCell(row, text, className) {
  const td = cell(row, missing(text) ? "—" : amount(text, "USD"), className);
  if (!missing(text)) td.dataset.usd = text;
  return td;
}

function nettingRow(account) {
  const row = element("tr", null, "netted");
  row.dataset.account = account.id;
  cell(row, account.id);
  if (account.error) {
    cell(row, "refused", "refused");
    const td = cell(row, account.error, "refused");
    td.colSpan = 3;
    return row;
  }
  const why = account.reason ? ` (${account.reason})` : "";
  cell(row, `${account.status}${why}`, account.status === "netted" ? "covers" : "");
  usdCell(row, account.netted_im, "netted-im");
  usdCell(row, account.released_im, "released");
  const legs = element("td");
  for (const leg of account.legs) {
    const line = element("div", null, "leg");
    line.dataset.venue = leg.venue;
    line.dataset.standalone = leg.standalone_im;
    line.dataset.credited = leg.credited_im;
    line.textContent = `${leg.venue}${leg.controller ? " (controls)" : ""}: ` +
      `${amount(leg.standalone_im, "USD")} → ${amount(leg.credited_im, "USD")}`;
    legs.appendChild(line);
  }
  row.appendChild(legs);
  return row;
}

async function loadNetting() {
  const note = document.getElementById("netting-note");
  const body = document.querySelector("#netting tbody");
  // Not through api(): a key that may not see the book keeps the rest of the dashboard.
  const response = await fetch("api/netting", { headers: { authorization: `Bearer ${apiKey()}` } });
  if (response.status === 404 || response.status === 403) {
    body.replaceChildren();
    note.textContent = response.status === 404 ?
      "No cross-venue book stored: an operator key stores one with PUT /api/netting/book." :
      "Cross-venue netting is an operator's view.";
    return;
  }
  const netting = await response.json();
  if (!response.ok) throw new ApiError(response.status, null, JSON.stringify(netting));
  const shown = netting.accounts.slice(0, NETTING_ROWS_MAX);
  body.replaceChildren(...shown.map(nettingRow));
  const more = netting.accounts.length - shown.length;
  note.textContent = `${netting.standard} at ${netting.at}` +
    (more > 0 ? `; ${quantity(more)} more accounts in GET /api/netting.` : ".");
}
const reloadNetting = coalesced(loadNetting);

// Backtests: the latest of each methodology (POST /api/backtests runs one from price history).
// A methodology covers when every account and the book exceeded their 1-day IM on at most 1 %
// of their days; the least margin is the cheapest that covers within its run.

function backtestRow(view) {
  const row = element("tr", null, "backtest");
  row.dataset.methodology = view.methodology.name;
  cell(row, `${view.methodology.name}@${view.methodology.version}`);
  const verdict = view.verdict;
  if (!verdict) {
    cell(row, "cannot value", "refused");
    cell(row, "—");
    cell(row, view.error || "");
  } else {
    const covers = verdict.covers ? (verdict.least_margin ? "yes, least margin" : "yes") : "no";
    cell(row, covers, verdict.covers ? "covers" : "refused");
    cell(row, missing(verdict.margin_to_notional) ? "—" :
      `${(100 * verdict.margin_to_notional).toFixed(2)} %`);
    // The failing series, or else the one with the highest exceedance rate.
    const worst = view.series.find((s) => s.name === verdict.failing_series) ||
      view.series.reduce((w, s) => (!w || s.exceedances * w.observations >
        w.exceedances * s.observations ? s : w), null);
    const td = cell(row, worst ? `${worst.name} ${worst.exceedances}/${worst.observations}` : "—");
    if (verdict.failing_reason) td.title = verdict.failing_reason;
  }
  cell(row, `#${view.run}, ${view.inputs.first_day} to ${view.inputs.last_day} ` +
    `(${view.inputs.histories.map((h) => h.underlying).join(", ")})`);
  return row;
}

async function loadBacktests() {
  const views = await api("api/backtests");
  const body = document.querySelector("#backtests tbody");
  body.replaceChildren(...views.map(backtestRow));
  document.getElementById("backtests-note").textContent = views.length === 0 ?
    "No backtest yet: a risk-admin key runs one with POST /api/backtests." :
    "Covers: every account and the book exceeded their 1-day IM on at most 1 % of days.";
}

async function start() {
  if (!apiKey()) {
    showSignIn("Sign in with an API key.");
    return;
  }
  await loadInstruments();
  await reloadAccounts();
  await loadBacktests();
  await reloadNetting();
  await loadAlerts();
  if (!state.socket) connect();
}

// CSV exports of the selected account's history and of the alert log (fetched with the key,
// which a plain link could not send).
function setUpExports() {
  const report = (error) => alertNote(`export: ${error.message}`);
  document.getElementById("history-csv").addEventListener("click", () => {
    if (state.selected === null) return;
    const id = state.selected;
    downloadCsv(`/api/accounts/${encodeURIComponent(id)}/history?format=csv&limit=10000`,
      `${id}-history.csv`).catch(report);
  });
  document.getElementById("alerts-csv").addEventListener("click", () => {
    downloadCsv("/api/alerts?format=csv&limit=10000", "alerts.csv").catch(report);
  });
}

setUpPaging();
setUpWhatIf();
setUpExports();
takeKeyFromFragment();
start();
// A key given later in the fragment (a link followed in an open tab) signs in too.
window.addEventListener("hashchange", () => {
  const before = apiKey();
  takeKeyFromFragment();
  if (apiKey() && apiKey() !== before) {
    document.getElementById("sign-in").hidden = true;
    start();
  }
});
