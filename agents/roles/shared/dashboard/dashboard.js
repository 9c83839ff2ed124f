// The dashboard page: polls /api/dashboard.json (agents/roles/shared/dashboard.ts) and renders
// nodes, Magus, search tasks and three uPlot charts. Plain ES module, no build step.
import uPlot from "/vendor/uplot/uPlot.esm.js";

const POLL_MS = 2000;
const E18 = 10n ** 18n;
const plots = {};

/** Token wei (a decimal string) as MURI with up to 2 decimals. */
function muri(wei) {
  const v = BigInt(wei);
  const whole = v / E18;
  const cents = (v % E18) / 10n ** 16n;
  return `${whole}${cents ? "." + String(cents).padStart(2, "0").replace(/0$/, "") : ""}`;
}

function bytes(n) {
  let v = Number(n);
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (v < 1024 || unit === "TiB") return `${Math.round(v * 10) / 10} ${unit}`;
    v /= 1024;
  }
  return `${v}`;
}

const short = (a) => `${a.slice(0, 6)}…${a.slice(-4)}`;

/** A table cell: text, optional class. */
function td(text, cls) {
  const cell = document.createElement("td");
  if (cls) cell.className = cls;
  if (text instanceof Node) cell.append(text);
  else cell.textContent = String(text);
  return cell;
}

function badge(health, title) {
  const span = document.createElement("span");
  span.className = `health ${health}`;
  span.textContent = health;
  if (title) span.title = title;
  return span;
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const cell = td("none");
    cell.colSpan = document.querySelectorAll(`#${tableId} th`).length;
    tr.append(cell);
    body.append(tr);
  }
}

function renderNodes(s) {
  fill(
    "nodes",
    s.nodes.map((n) => {
      const tr = document.createElement("tr");
      tr.dataset.node = n.address.toLowerCase();
      tr.dataset.health = n.health;
      const name = document.createElement("span");
      name.innerHTML = `${n.name ? `<b>${n.name}</b> ` : ""}<code title="${n.address}">${short(n.address)}</code>`;
      const periods = document.createElement("span");
      periods.className = "periods";
      for (const p of n.proofs.slice(-6)) {
        const x = document.createElement("span");
        x.innerHTML = `p${p.period}: ${p.passed}/<span class="${p.missed ? "missed" : ""}">${p.missed}</span>`;
        periods.append(x);
      }
      tr.append(
        td(name),
        td(badge(n.health, n.healthReason)),
        td(n.roles.join(", ")),
        td(muri(n.stake), "num"),
        td(`${bytes(n.capacity)} (${bytes(n.usedCapacity)})`, "num"),
        td(n.reputation, "num"),
        td(n.magus, "num"),
        td(n.proofs.length ? periods : "–"),
        td(muri(n.rewarded), "num"),
        td(muri(n.claimable), "num"),
      );
      return tr;
    }),
  );
}

function renderMagus(s) {
  fill(
    "magus",
    s.magus.map((m) => {
      const tr = document.createElement("tr");
      tr.dataset.magu = m.id;
      const members = document.createElement("span");
      for (const x of m.members) {
        const b = badge(x.health, `${x.address}: ${x.active ? "active" : "left"}`);
        b.textContent = `${short(x.address)} ${x.provedPeriods}/${x.misses}`;
        b.dataset.member = x.address.toLowerCase();
        members.append(b, " ");
      }
      const stripes = document.createElement("span");
      for (const st of m.stripes) {
        const box = document.createElement("span");
        box.className = `stripe ${st.health}`;
        box.title = `stripe ${st.index}: ${st.up} of ${st.holders} holders up (${m.needed} needed)`;
        stripes.append(box);
      }
      tr.append(
        td(m.id),
        td(m.kind),
        td(m.status),
        td(`${m.fragments}/${m.maxFragments}`, "num"),
        td(`${m.startPeriod}..${m.endPeriod}`),
        td(members),
        td(m.stripes.length ? stripes : "no data yet"),
      );
      return tr;
    }),
  );
}

function renderTasks(s) {
  fill(
    "tasks",
    s.tasks.map((t) => {
      const tr = document.createElement("tr");
      tr.dataset.task = t.id;
      tr.append(
        td(t.id),
        td(t.magu),
        td(t.state),
        td(muri(t.fee), "num"),
        td(t.k, "num"),
        td(t.committers, "num"),
        td(t.answer ? `${t.answer.length} ids: ${t.answer.slice(0, 3).map(short).join(", ")}${t.answer.length > 3 ? "…" : ""}` : "–"),
      );
      return tr;
    }),
  );
}

function plot(id, series, data, xLabel) {
  if (plots[id]) {
    plots[id].setData(data);
    return;
  }
  const el = document.getElementById(id);
  const x = xLabel ? { label: xLabel } : {};
  plots[id] = new uPlot(
    { width: 380, height: 200, scales: { x: { time: !xLabel } }, series: [x, ...series], axes: [xLabel ? { label: xLabel, size: 40 } : {}, { size: 60 }] },
    data,
    el,
  );
}

function renderPlots(s) {
  const h = s.history;
  const t = h.map((x) => x.time / 1000);
  const p = s.proofsByPeriod;
  plot(
    "plot-proofs",
    [
      { label: "passed", stroke: "#2e7d32", fill: "rgba(46,125,50,0.15)", width: 2 },
      { label: "missed", stroke: "#c62828", fill: "rgba(198,40,40,0.15)", width: 2 },
    ],
    [p.map((x) => x.period), p.map((x) => x.passed), p.map((x) => x.missed)],
    "period",
  );
  plot("plot-rewards", [{ label: "MURI", stroke: "#1565c0", width: 2 }], [t, h.map((x) => Number(BigInt(x.rewarded) / 10n ** 15n) / 1000)]);
  const rate = h.map((x, i) => (i === 0 ? 0 : Math.max(0, x.served - h[i - 1].served) / Math.max(0.001, (x.time - h[i - 1].time) / 1000)));
  plot("plot-throughput", [{ label: "per s", stroke: "#6a1b9a", width: 2 }], [t, rate]);
}

async function poll() {
  const error = document.getElementById("error");
  try {
    const res = await fetch("/api/dashboard.json", { cache: "no-store" });
    const s = await res.json();
    if (!res.ok) throw new Error(s.error ?? `HTTP ${res.status}`);
    const down = s.nodes.filter((n) => n.health === "down").length;
    document.getElementById("summary").textContent =
      `chain ${s.chainId} · block ${s.block} · period ${s.period} (${s.periodBlocks} blocks) · epoch ${s.epoch} · ` +
      `${s.nodes.length} nodes (${down} down) · ${s.magus.length} Magus · ${s.tasks.length} tasks · updated ${new Date(s.time).toLocaleTimeString()}`;
    renderNodes(s);
    renderMagus(s);
    renderTasks(s);
    renderPlots(s);
    error.hidden = true;
    document.body.dataset.updated = String(s.time);
  } catch (err) {
    error.textContent = `dashboard data unavailable: ${err.message}`;
    error.hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

void poll();
