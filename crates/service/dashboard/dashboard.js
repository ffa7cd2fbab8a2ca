// The Ballast dashboard: accounts by health, one account's margin breakdown, PM against
// standard margin, liquidation distance and risk-array heatmap, kept live by the /ws feed.
"use strict";

const state = { selected: null, socket: null, refreshing: false, again: false };

const fmt = (x, digits = 0) =>
  x === null || x === undefined || Number.isNaN(x)
    ? "—"
    : Number(x).toLocaleString("en-US", { maximumFractionDigits: digits,
        minimumFractionDigits: digits });
const pct = (x) => (x === null || x === undefined ? "—" : (100 * x).toFixed(1) + " %");

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

async function getJson(path) {
  const key = apiKey();
  const response = await fetch(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  if (response.status === 401 || response.status === 403) {
    showSignIn(response.status === 401 ? "Sign in with an API key." :
      "This key may not see that; sign in with another.");
  }
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

async function loadAccounts() {
  const list = await getJson("/api/accounts?limit=100");
  document.getElementById("breaches").textContent =
    `${list.total} accounts, ${list.im_breaches} below IM, ${list.mm_breaches} below MM`;
  const body = document.querySelector("#accounts tbody");
  body.replaceChildren();
  for (const account of list.accounts) {
    const row = document.createElement("tr");
    row.dataset.account = account.id;
    if (account.id === state.selected) row.className = "selected";
    const f = account.figures[0] || {};
    cell(row, account.id);
    cell(row, account.status, "status-" + account.status);
    cell(row, account.health === null ? "∞" : fmt(account.health, 2));
    cell(row, fmt(f.equity));
    cell(row, fmt(f.initial_margin));
    cell(row, fmt(f.maintenance_margin));
    row.addEventListener("click", () => select(account.id));
    body.appendChild(row);
  }
  if (state.selected === null && list.accounts.length > 0) select(list.accounts[0].id);
}

function fillTable(id, rows) {
  const table = document.getElementById(id);
  table.replaceChildren();
  for (const [label, value] of rows) {
    const row = document.createElement("tr");
    cell(row, label);
    cell(row, value);
    table.appendChild(row);
  }
}

function showMargin(margin) {
  const report = margin.report;
  const rows = [["status", margin.status], ["equity / MM", fmt(margin.health, 2)]];
  for (const c of report.currencies) {
    rows.push([`equity (${c.currency})`, fmt(c.equity)]);
    rows.push(["initial margin", fmt(c.initial_margin)]);
    rows.push(["maintenance margin", fmt(c.maintenance_margin)]);
    rows.push(["scan loss", fmt(c.scan_loss)]);
    rows.push(["add-ons (IM)", fmt(c.add_ons_im)]);
    rows.push(["worst scenario", `${c.worst_underlying || "—"} #${c.worst_scenario ?? "—"}`]);
  }
  for (const a of report.add_ons) rows.push([`${a.name} (${a.underlying})`, fmt(a.value)]);
  fillTable("breakdown", rows);
  const b = report.baseline;
  fillTable("baseline", b ? [
    ["portfolio IM (USD)", fmt(b.portfolio_initial_margin)],
    [`standard IM (${b.methodology})`, fmt(b.initial_margin)],
    ["standard MM", fmt(b.maintenance_margin)],
    ["capital released", fmt(b.released)],
  ] : [["baseline", "—"]]);
  fillTable("liquidation", (report.liquidation || []).flatMap((l) => [
    [`${l.underlying} cushion`, fmt(l.cushion)],
    [`${l.underlying} down to`, `${fmt(l.price_down)} (${pct(l.move_down)})`],
    [`${l.underlying} up to`, `${fmt(l.price_up)} (${pct(l.move_up)})`],
  ]));
}

function colour(pnl, scale) {
  const t = Math.max(-1, Math.min(1, pnl / scale));
  const light = 95 - 45 * Math.abs(t);
  return t < 0 ? `hsl(0, 75%, ${light}%)` : `hsl(130, 55%, ${light}%)`;
}

function showRiskArray(risk) {
  const container = document.getElementById("heatmap");
  container.replaceChildren();
  const others = [];
  for (const unit of risk.units) {
    const regular = unit.scenarios.map((s, i) => ({ ...s, index: i }))
      .filter((s) => s.kind === "regular");
    others.push(...unit.scenarios.map((s, i) => ({ ...s, index: i, unit }))
      .filter((s) => s.kind !== "regular" && s.kind !== "auxiliary"));
    const moves = [...new Set(regular.map((s) => s.spot_move))].sort((a, b) => a - b);
    const vols = ["up", "none", "down"].filter((v) => regular.some((s) => s.vol === v));
    const scale = Math.max(1, ...regular.map((s) => Math.abs(s.pnl)));
    const table = document.createElement("table");
    table.className = "heatmap";
    table.dataset.underlying = unit.underlying;
    const caption = document.createElement("caption");
    caption.textContent = `${unit.underlying} (index ${fmt(unit.index)}; vol shock ` +
      `${unit.vol_shock_kind} +${unit.vol_shock_up} / −${unit.vol_shock_down} at ` +
      `${unit.vol_shock_reference_days} d; P&L in ${unit.currency})`;
    table.appendChild(caption);
    const head = document.createElement("tr");
    cell(head, "vol \\ price");
    for (const m of moves) {
      const s = regular.find((r) => r.spot_move === m);
      cell(head, `${fmt(s.price)} (${(100 * m).toFixed(0)}%)`);
    }
    table.appendChild(head);
    for (const v of vols) {
      const row = document.createElement("tr");
      cell(row, "vol " + v);
      for (const m of moves) {
        const s = regular.find((r) => r.spot_move === m && r.vol === v);
        const td = cell(row, s ? fmt(s.pnl) : "");
        if (s) {
          td.className = "cell" + (s.index === unit.worst ? " worst" : "");
          td.dataset.pnl = String(s.pnl);
          td.style.background = colour(s.pnl, scale);
          td.title = `scenario #${s.index}: price ${fmt(s.price)}, vol ${v}, P&L ${fmt(s.pnl)}`;
        }
      }
      table.appendChild(row);
    }
    container.appendChild(table);
  }
  container.dataset.marketSeq = String(risk.market_seq);
  const list = document.getElementById("other-scenarios");
  list.textContent = others.length === 0 ? "" : "Other scenarios: " + others.map((s) =>
    `${s.unit.underlying} ${s.kind} ${(100 * s.spot_move).toFixed(0)}% vol ${s.vol}: ` +
    fmt(s.pnl)).join("; ");
}

async function refreshSelected() {
  if (state.selected === null) return;
  if (state.refreshing) { state.again = true; return; }
  state.refreshing = true;
  try {
    const id = encodeURIComponent(state.selected);
    const [risk, margin] = await Promise.all([
      getJson(`/api/accounts/${id}/risk-array`), getJson(`/api/accounts/${id}/margin`)]);
    showRiskArray(risk);
    showMargin(margin);
  } catch (error) {
    document.getElementById("account-title").textContent = `${state.selected}: ${error}`;
  } finally {
    state.refreshing = false;
    if (state.again) { state.again = false; refreshSelected(); }
  }
}

function select(id) {
  state.selected = id;
  document.getElementById("account-title").textContent = "Account " + id;
  for (const row of document.querySelectorAll("#accounts tbody tr")) {
    row.className = row.dataset.account === id ? "selected" : "";
  }
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify({ subscribe: [id] }));
  }
  refreshSelected();
}

function alert(message) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${message.account}: ${message.from} → ` +
    `${message.to}` + (message.health === null ? "" : ` (equity / MM ${fmt(message.health, 2)})`);
  item.className = "status-" + message.to;
  document.getElementById("alerts").prepend(item);
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
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "recompute") {
      document.getElementById("market").textContent = `market #${message.market_seq}`;
      document.getElementById("recompute").textContent =
        `recomputed ${message.accounts} accounts in ${(1000 * message.seconds).toFixed(1)} ms`;
      loadAccounts();
      refreshSelected();
    } else if (message.type === "margin") {
      loadAccounts();
      if (message.account.id === state.selected) refreshSelected();
    } else if (message.type === "alert") {
      alert(message);
    }
  };
}

async function start() {
  if (!apiKey()) {
    showSignIn("Sign in with an API key.");
    return;
  }
  try {
    const market = await getJson("/api/markets/latest");
    document.getElementById("market").textContent = `market: ${market.valuation_time}`;
  } catch (error) {
    document.getElementById("market").textContent = "market: none";
  }
  await loadAccounts();
  connect();
}

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
