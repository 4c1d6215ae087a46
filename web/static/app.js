// slolab dashboard: polls the dashboard's JSON API, renders the CUJ table,
// charts (uPlot, vendored), the simulate panel, faults, the recorded
// experiments and GameDays, and the audit log.
"use strict";

const POLL_MS = 2000;
const $ = (sel) => document.querySelector(sel);

// The admin token: from the URL the lab prints (#token=...), kept for this
// tab only and removed from the address bar.
const TOKEN_KEY = "slolab-token";
(function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
})();
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function setStatus(text, bad) {
  const s = $("#status");
  s.textContent = text;
  s.className = "status" + (bad ? " bad" : "");
}

// headers are the request headers of every call to the dashboard's API:
// the token when one is set for this tab, JSON for a body.
function headers(body) {
  const h = {};
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (token()) h["Authorization"] = "Bearer " + token();
  return h;
}

// askForToken shows the token form: the dashboard's API answered 401.
function askForToken(message) {
  $("#token-form").hidden = false;
  $("#token").placeholder = "needed to read and change";
  setStatus(message, true);
}

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: headers(body), body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) {
    const err = new Error(data.error || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

const fmtPct = (v, digits) => (v === null || v === undefined) ? "—" : v.toFixed(digits === undefined ? 3 : digits).replace(/\.?0+$/, "") + "%";
const fmtBurn = (v) => (v === null || v === undefined) ? "—" : (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
function fmtSecs(s) {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}
const fmtTime = (t) => new Date(t).toLocaleTimeString();

let state = null;
let stateAt = 0; // performance.now() when state arrived
let selected = null; // the CUJ the charts show

// ---- CUJ table -------------------------------------------------------------

function sloCell(c) {
  const td = el("td");
  if (c.availability) td.append(el("div", {}, `${c.availability.objective} available`));
  if (c.latency) td.append(el("div", {}, `${c.latency.objective} < ${c.latency.threshold}`));
  if (!c.availability && !c.latency) td.append("—");
  else td.append(el("span", { className: "desc" }, `over ${(c.availability || c.latency).window}`));
  return td;
}

const SLOS = [["avail", "availability"], ["latency", "latency"]];
const fmtCount = (n) => n.toLocaleString("en-US");

function sliCell(c) {
  const td = el("td");
  let events = null;
  for (const [name, key] of SLOS) {
    const slo = c[key];
    if (!slo) continue;
    const cls = !slo.judged || slo.sli === null ? "muted" : slo.met ? "good" : "bad";
    const title = slo.judged ? `${name}: ${fmtCount(slo.events.bad)} bad of ${fmtCount(slo.events.total)} requests over ${slo.window}` : "not judged: no SLO source";
    td.append(el("div", { className: cls, title }, `${name} ${fmtPct(slo.sli)}`));
    if (slo.judged) events = slo;
  }
  if (events) td.append(el("span", { className: "desc" }, `${fmtCount(events.events.total)} req over ${events.window}`));
  return td;
}

function budgetCell(c) {
  const td = el("td");
  for (const [name, key] of SLOS) {
    const slo = c[key];
    if (!slo) continue;
    const v = slo.budgetRemaining;
    const cls = v === null ? "muted" : slo.exhausted || v < 25 ? "bad" : v < 50 ? "warn" : "good";
    const text = slo.exhausted ? "exhausted" : fmtPct(v, 1);
    let title = `${name} budget left over ${slo.window}`;
    if (slo.exhaustedIn) title += `: lasts ${slo.exhaustedIn} at the last hour's burn rate`;
    td.append(el("div", { className: cls, title }, `${name} ${text}`));
  }
  return td;
}

// burnClass colours a burn rate by the alerts of its SLO that use the
// window: red when a page alert's factor is reached, amber for a ticket's.
function burnClass(b, alerts) {
  if (b.rate === null) return "muted";
  if (b.tooFew) return "muted few";
  let cls = b.rate > 1 ? "warn" : "good";
  for (const a of alerts) {
    if (!a.pair.split("/").includes(b.window) || b.rate < parseFloat(a.burnRate)) continue;
    if (a.severity === "page") return "bad";
    cls = "warn";
  }
  return cls;
}

function burnCell(c) {
  const td = el("td", { className: "burn" });
  for (const [name, key] of SLOS) {
    const slo = c[key];
    if (!slo || !slo.judged) continue;
    const alerts = c.alerts.filter((a) => a.slo === key);
    const div = el("div", {}, `${name} `);
    slo.burn.forEach((b, i) => {
      if (i) div.append(" · ");
      let title = `${b.window}: ${fmtCount(b.bad)} bad of ${fmtCount(b.total)}`;
      if (b.tooFew) title += " (too few requests to judge)";
      if (b.covered) title += ` (the source holds only ${b.covered} of this window)`;
      const cls = burnClass(b, alerts) + (b.covered ? " short" : "");
      div.append(el("span", { className: cls, title, dataset: { window: b.window, covered: b.covered || "" } }, fmtBurn(b.rate) + (b.tooFew ? "?" : "")));
    });
    td.append(div);
  }
  if (!td.childNodes.length) td.append("—");
  return td;
}

function alertsCell(c) {
  const td = el("td", { className: "alerts" });
  for (const [name, key] of SLOS) {
    const firing = c.alerts.filter((a) => a.slo === key && a.state === "firing");
    const held = c.alerts.filter((a) => a.slo === key && a.state === "held");
    if (!firing.length && !held.length) continue;
    const div = el("div", {}, `${name} `);
    for (const a of firing) {
      const [long, short] = a.pair.split("/");
      div.append(el("span", {
        className: `pill firing ${a.severity}`, dataset: { slo: key, pair: a.pair },
        title: `${a.severity} alert of the ${key} SLO fires: burn rate ${fmtBurn(a.longBurnRate)} over ${long} and ${fmtBurn(a.shortBurnRate)} over ${short}, both ≥ ${a.burnRate}`,
      }, `${a.severity} ${a.pair}`));
    }
    for (const a of held) {
      div.append(el("span", {
        className: "pill held", dataset: { slo: key, pair: a.pair },
        title: `both windows burn at least ${a.burnRate}, but the ${a.pair.split("/")[0]} window holds ${a.longBad} bad requests, fewer than the ${a.minBad} an alert needs (too few requests)`,
      }, `held ${a.severity} ${a.pair}: ${a.longBad} bad < ${a.minBad}`));
    }
    td.append(div);
  }
  if (!td.childNodes.length) {
    const known = c.alerts.some((a) => a.state !== "unknown");
    td.append(el("span", { className: "pill ok", title: c.alerts.map((a) => `${a.severity} ${a.slo} ${a.pair} ≥ ${a.burnRate}`).join("\n") }, known ? "none firing" : "—"));
  }
  return td;
}

function renderCUJs() {
  const body = $("#cujs tbody");
  $("#few-note").hidden = !state.cujs.some((c) => [c.availability, c.latency].some((slo) => slo && slo.burn.some((b) => b.tooFew)));
  body.replaceChildren(...state.cujs.map((c) => {
    const tr = el("tr", { dataset: { cuj: c.name }, className: c.name === selected ? "selected" : "" },
      el("td", { className: "cuj", title: c.description || "" },
        el("button", { type: "button", textContent: c.name, title: `Show ${c.name}'s charts` }),
        el("span", { className: "desc" }, c.owner || "")),
      sloCell(c), sliCell(c), budgetCell(c), burnCell(c), alertsCell(c),
      el("td", {}, `${c.rate.toFixed(1)}/s`, el("span", { className: "desc" }, c.p99 ? `p50 ${c.p50}` : "no requests"),
        c.p99 ? el("span", { className: "desc" }, `p99 ${c.p99}`) : null),
      el("td", {}, ...(c.faults.length ? c.faults.map((f) => el("span", { className: "pill fault" }, f)) : ["—"])));
    tr.addEventListener("click", () => selectCUJ(c.name));
    return tr;
  }));
}

// ---- faults, simulations, audit --------------------------------------------

function renderFaults() {
  const body = $("#faults tbody");
  $("#no-faults").hidden = state.faults.length > 0;
  $("#faults").hidden = state.faults.length === 0;
  body.replaceChildren(...state.faults.map((f) => {
    const stop = el("button", { type: "button", className: "stop", textContent: "Stop", title: `Remove fault ${f.name}` });
    stop.addEventListener("click", () => act(stop, () => api("DELETE", `api/faults/${encodeURIComponent(f.name)}`), `Stopped ${f.name}.`));
    return el("tr", { dataset: { fault: f.name } },
      el("td", { title: f.description || "" }, f.name),
      el("td", {}, f.tcp ? `TCP ${f.tcp}` : f.cuj || "every CUJ"),
      el("td", {}, f.actions),
      el("td", {}, f.rate),
      el("td", {}, `${f.injected} / ${f.matched}`),
      el("td", { className: "lease", dataset: { expiresIn: f.expiresIn } }, fmtSecs(f.expiresIn)),
      el("td", {}, stop));
  }));
}

function renderSims() {
  const body = $("#sims tbody");
  if (!state.simulations.length) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 8, className: "muted" }, "None yet: start one above.")));
    return;
  }
  body.replaceChildren(...state.simulations.map((s) => {
    const cells = [
      el("td", {}, s.cuj),
      el("td", { title: s.explanation }, s.state + (s.value ? ` ${s.value}` : ""),
        s.startedBy === "dashboard" ? null : el("span", { className: "desc" }, s.explanation)),
      el("td", { className: "intended" }, fmtPct(s.intendedPercent, 4)),
      el("td", { className: "realised" }, fmtPct(s.realisedPercent, 4)),
      el("td", {}, `${s.injected} of ${s.matched}`),
      el("td", {}, fmtTime(s.started)),
      el("td", {}, s.active ? "running" : (s.stoppedBy || "stopped")),
    ];
    let stop = "";
    if (s.active && s.startedBy === "dashboard") {
      stop = el("button", { type: "button", className: "stop", textContent: "Stop", title: `Stop simulation ${s.id}` });
      stop.addEventListener("click", () => act(stop, () => api("DELETE", `api/simulations/${s.id}`), `Stopped the simulation on ${s.cuj}.`));
    }
    return el("tr", { dataset: { sim: s.id, active: s.active, matched: s.matched, injected: s.injected, startedBy: s.startedBy } }, ...cells, el("td", {}, stop));
  }));
}

function renderAudit() {
  const list = $("#audit");
  if (!state.audit.length) {
    list.replaceChildren(el("li", { className: "muted" }, "No change yet."));
    return;
  }
  // A run of lease renewals is one line: "renew sim-read ×12".
  list.replaceChildren(...state.audit.map((e) =>
    el("li", { dataset: { action: e.action } }, el("time", { dateTime: e.time }, fmtTime(e.time)),
      ` · ${e.action}${e.fault ? " " + e.fault : ""}${e.count > 1 ? ` ×${e.count} (the last shown)` : ""} · ${e.who}`)));
}

async function act(button, fn, done) {
  button.disabled = true;
  try {
    await fn();
    setStatus(done);
    await refresh();
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    button.disabled = false;
  }
}

// Lease countdowns tick between polls.
setInterval(() => {
  if (!state) return;
  const gone = (performance.now() - stateAt) / 1000;
  for (const td of document.querySelectorAll("#faults td.lease")) {
    td.textContent = fmtSecs(parseFloat(td.dataset.expiresIn) - gone);
  }
}, 1000);

// ---- simulate panel ---------------------------------------------------------

function fillSelect(select, names) {
  const cur = select.value;
  if ([...select.options].map((o) => o.value).join() === names.join()) return;
  select.replaceChildren(...names.map((n) => el("option", { value: n, textContent: n })));
  if (names.includes(cur)) select.value = cur;
}

function simRequest() {
  const state = $("#sim-state").value;
  const req = { cuj: $("#sim-cuj").value, state, duration: $("#sim-duration").value };
  if (state === "burn" || state === "availability") req.value = $("#sim-value").value.trim();
  return req;
}

function syncValueBox() {
  const s = $("#sim-state").value;
  const box = $("#sim-value-box");
  box.hidden = !(s === "burn" || s === "availability");
  const label = $("#sim-value-label");
  const input = $("#sim-value");
  if (s === "burn" && label.textContent !== "Burn rate") { label.textContent = "Burn rate"; input.value = "14.4"; }
  if (s === "availability" && label.textContent !== "Availability") { label.textContent = "Availability"; input.value = "99%"; }
}

let previewSeq = 0;
async function preview() {
  syncValueBox();
  const seq = ++previewSeq;
  const out = $("#sim-explanation");
  try {
    const plan = await api("POST", "api/plan", simRequest());
    if (seq !== previewSeq) return;
    out.className = "explanation";
    out.replaceChildren(plan.explanation, ...(plan.notes || []).map((n) => el("span", { className: "note" }, `Note: ${n}.`)));
  } catch (e) {
    if (seq !== previewSeq) return;
    out.className = "explanation bad";
    out.textContent = e.message;
  }
}

$("#simulate").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const button = $("#sim-start");
  await act(button, async () => {
    const sim = await api("POST", "api/simulations", simRequest());
    selectCUJ(sim.cuj);
  }, `Simulation started on ${$("#sim-cuj").value}: it ends by itself after ${$("#sim-duration").value}.`);
});
for (const id of ["#sim-cuj", "#sim-state", "#sim-duration"]) $(id).addEventListener("change", preview);
$("#sim-value").addEventListener("input", preview);

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  $("#token").value = "";
  setStatus(token() ? "Token set for this tab." : "Token cleared.");
  refresh();
});

// ---- charts -----------------------------------------------------------------

const charts = {};
const COLORS = { a: "#1f4fa3", b: "#d9480f", c: "#2b8a3e", d: "#862e9c", ref: "#868e96", ref2: "#c92a2a" };

function line(label, stroke, extra) {
  return Object.assign({ label, stroke, width: 2, spanGaps: false }, extra || {});
}
const ref = (label, stroke) => line(label, stroke || COLORS.ref, { width: 1, dash: [6, 4], points: { show: false } });

function chartSpecs(s) {
  const n = s.t.length;
  const flat = (v) => new Array(n).fill(v);
  const specs = {
    "chart-sli": {
      series: [line("availability", COLORS.a), line("latency good", COLORS.c)],
      data: [s.availability, s.latencyGood], unit: "%",
    },
    "chart-burn": {
      series: [line("1m", COLORS.d, { width: 1 }), line("5m", COLORS.a), line("1h", COLORS.b), line("latency 5m", COLORS.c)],
      data: [s.burn1m, s.burn5m, s.burn1h, s.latencyBurn5m], unit: "×",
    },
    "chart-latency": {
      series: [line("p50", COLORS.c), line("p90", COLORS.a), line("p99", COLORS.b)],
      data: [s.p50, s.p90, s.p99], unit: " ms",
    },
    "chart-sim": {
      series: [line("intended", COLORS.ref2, { dash: [8, 4] }), line("realised (last 1m)", COLORS.a)],
      data: [s.intended, s.realised], unit: "%",
    },
  };
  if (s.objective !== null) { specs["chart-sli"].series.push(ref(`objective ${s.objective}%`)); specs["chart-sli"].data.push(flat(s.objective)); }
  if (s.latencyObjective !== null) { specs["chart-sli"].series.push(ref(`latency objective ${s.latencyObjective}%`, COLORS.c)); specs["chart-sli"].data.push(flat(s.latencyObjective)); }
  for (const f of s.alertFactors.slice(0, 2)) { specs["chart-burn"].series.push(ref(`alert ${f}`, COLORS.ref2)); specs["chart-burn"].data.push(flat(f)); }
  specs["chart-burn"].series.push(ref("1 (at the SLO)")); specs["chart-burn"].data.push(flat(1));
  if (s.thresholdMs !== null) { specs["chart-latency"].series.push(ref(`threshold ${s.thresholdMs} ms`, COLORS.ref2)); specs["chart-latency"].data.push(flat(s.thresholdMs)); }
  return specs;
}

function drawCharts(s) {
  if (typeof uPlot === "undefined") return;
  const specs = chartSpecs(s);
  for (const [id, spec] of Object.entries(specs)) {
    const box = document.getElementById(id);
    const key = `${s.cuj}|${spec.series.map((x) => x.label).join()}`;
    const data = [s.t, ...spec.data];
    const width = Math.max(200, box.clientWidth);
    if (charts[id] && charts[id].key === key) {
      charts[id].u.setData(data);
      if (Math.abs(charts[id].u.width - width) > 2) charts[id].u.setSize({ width, height: 220 });
      continue;
    }
    if (charts[id]) charts[id].u.destroy();
    const u = new uPlot({
      width, height: 220,
      series: [{}, ...spec.series.map((x) => Object.assign({ value: (u, v) => v === null || v === undefined ? "—" : (Math.round(v * 1000) / 1000) + spec.unit }, x))],
      axes: [{}, { size: 56 }],
      scales: { x: { time: true } },
      legend: { live: true },
    }, data, box);
    charts[id] = { u, key };
  }
}

window.addEventListener("resize", () => {
  for (const [id, c] of Object.entries(charts)) {
    const w = Math.max(200, document.getElementById(id).clientWidth);
    c.u.setSize({ width: w, height: 220 });
  }
});

function selectCUJ(name) {
  selected = name;
  $("#chart-cuj").textContent = name;
  $("#chart-select").value = name;
  for (const tr of document.querySelectorAll("#cujs tbody tr")) tr.classList.toggle("selected", tr.dataset.cuj === name);
  refreshSeries();
}
$("#chart-select").addEventListener("change", (ev) => selectCUJ(ev.target.value));

async function refreshSeries() {
  if (!selected) return;
  try {
    drawCharts(await api("GET", `api/series?cuj=${encodeURIComponent(selected)}`));
  } catch (e) {
    setStatus(e.message, true);
  }
}

// ---- experiments and GameDays -------------------------------------------------

const fmtWhen = (t) => new Date(t).toLocaleString();
const openRuns = new Set(); // ids of the runs whose detail is open
let runsJSON = "";
let runs = null;

function table(caption, headers, rows) {
  return el("div", { className: "scroll" }, el("table", {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => c instanceof Node ? c : el("td", {}, c)))))));
}

function timeline(label, events) {
  if (!events.length) return el("p", { className: "muted" }, "No event recorded.");
  return el("ol", { className: "timeline", "aria-label": label }, ...events.map((e) =>
    el("li", {}, el("time", { dateTime: e.at }, fmtTime(e.at)), ` · ${e.kind}`, e.who ? ` · ${e.who}` : "",
      e.experiment ? ` · ${e.experiment}` : "", ` · ${e.text}`)));
}

function hypothesisResult(h) {
  if (h.error) return el("td", { className: "bad" }, `error: ${h.error}`);
  if (h.phase === "guardrail") return el("td", { className: h.holds ? "bad" : "good" }, h.holds ? "tripped" : "not tripped");
  return el("td", { className: h.holds ? "good" : "bad" }, h.holds ? "holds" : "fails");
}

function experimentDetail(r, x) {
  const box = [];
  if (x.description) box.push(el("p", {}, x.description));
  box.push(el("h3", {}, "Hypotheses"));
  box.push(x.hypotheses.length ? table(`The hypotheses of ${r.name} at their last evaluation, with the values measured`,
    ["Phase", "Expression", "Result", "Measured", "At"],
    x.hypotheses.map((h) => [h.phase, el("td", {}, el("code", {}, h.expr), h.description ? el("span", { className: "desc" }, h.description) : null),
      hypothesisResult(h),
      el("td", {}, ...(h.measures.length ? h.measures.map((m) => el("div", { title: m.detail || "" }, el("code", {}, m.call), ` = ${m.value}`)) : ["—"])),
      fmtTime(h.at)])) : el("p", { className: "muted" }, "No hypothesis was evaluated."));
  if (x.faults.length) {
    box.push(el("h3", {}, "Faults: intended and realised"));
    box.push(table(`The faults of ${r.name}: the rate intended against the share realised`,
      ["Fault", "Selects", "Does", "Intended", "Realised", "Injected / matched"],
      x.faults.map((f) => [f.fault, f.match, f.actions, f.intended, f.realised, `${fmtCount(f.injected)} / ${fmtCount(f.matched)}`])));
  }
  if (x.comparisons.length) {
    const group = (g) => `${fmtCount(g.bad)} bad of ${fmtCount(g.total)} · ${fmtPct(g.availability, 3)} available · p99 ${g.p99}`;
    // JSON has no infinity: a null odds ratio is infinite when only the control group never failed.
    const odds = (c) => c.oddsRatio !== null ? c.oddsRatio.toPrecision(3)
      : c.experiment.bad > 0 && c.control.total > c.control.bad ? "∞" : "undefined";
    const p = (v) => v < 0.001 ? v.toExponential(2) : v.toPrecision(3);
    box.push(el("h3", {}, "Experiment group against control"));
    box.push(table(`Per CUJ, the experiment group against the control group during the method: Fisher's exact test on failures, Mann-Whitney U on latency`,
      ["CUJ", "Experiment", "Control", "Errors: Fisher p", "Odds ratio", "Latency: Mann-Whitney p", "P(slower)", "Verdict"],
      x.comparisons.map((c) => [c.cuj + (c.targeted ? " (targeted)" : ""), group(c.experiment), group(c.control),
        p(c.errorsP), odds(c), p(c.latencyP),
        c.superiority === null ? "—" : c.superiority.toFixed(3),
        el("td", { className: c.degraded ? "bad" : "good", title: c.summary }, c.degraded ? "degraded" : "no difference")])));
    for (const c of x.comparisons) box.push(el("p", { className: "note" }, `${c.cuj}: ${c.summary}.`));
  }
  box.push(el("h3", {}, "Timeline"));
  box.push(timeline(`Timeline of ${r.name}`, x.timeline));
  return box;
}

function gameDayDetail(r, g) {
  const box = [];
  if (g.description) box.push(el("p", {}, g.description));
  const people = [g.facilitator ? `facilitated by ${g.facilitator}` : "", g.responders.length ? `responders ${g.responders.join(", ")}` : ""].filter(Boolean);
  if (people.length) box.push(el("p", { className: "note" }, people.join("; ")));
  const f = g.figures;
  const figure = (label, d, extra) => [el("dt", {}, label), el("dd", { dataset: { figure: label } }, d ? d + (extra || "") : "not reached")];
  box.push(el("h3", {}, "From the first fault"));
  box.push(el("dl", { className: "figures" },
    ...figure("Time to detect", f.timeToDetect, f.detectedBy ? ` (by ${f.detectedBy})` : ""),
    ...figure("Time to acknowledge", f.timeToAcknowledge),
    ...figure("Time to mitigate", f.timeToMitigate),
    ...figure("Time to recover", f.timeToRecover)));
  box.push(el("h3", {}, "Alerts"));
  box.push(g.alerts.length ? el("ul", {}, ...g.alerts.map((a) => el("li", {}, `${a.alert}: fired ${fmtTime(a.fired)}`, a.resolved ? `, resolved ${fmtTime(a.resolved)}` : ", not resolved")))
    : el("p", { className: "muted" }, "No alert fired."));
  if (g.experiments.length) {
    box.push(el("h3", {}, "Experiments"));
    box.push(el("ul", {}, ...g.experiments.map((x) => el("li", {}, `${x.name}: `, el("span", { className: `pill verdict-${x.verdict}` }, x.verdict), x.reason ? ` ${x.reason}` : ""))));
  }
  box.push(el("h3", {}, "Timeline"));
  box.push(timeline(`Timeline of GameDay ${r.name}`, g.timeline));
  return box;
}

function runDetail(r) {
  let parts;
  if (r.reportError) parts = [el("p", { className: "bad" }, r.reportError)];
  else if (r.experiment) parts = experimentDetail(r, r.experiment);
  else if (r.gameday) parts = gameDayDetail(r, r.gameday);
  else parts = [el("p", { className: "muted" }, r.due ? `Skipped at its due time ${fmtWhen(r.due)}: no report.` : "No report was recorded.")];
  return el("div", { className: "run-detail", id: `run-${r.id}` }, ...parts);
}

function renderRuns() {
  const note = $("#runs-note");
  const body = $("#runs tbody");
  $("#runs").hidden = !runs.runs.length;
  note.textContent = runs.empty || `The latest ${runs.runs.length} runs recorded in ${runs.store}, newest first. Open one for its report.`;
  const rows = [];
  for (const r of runs.runs) {
    const open = openRuns.has(r.id);
    const button = el("button", { type: "button", className: "open", textContent: r.name, title: `Show the report of ${r.name}` });
    button.setAttribute("aria-expanded", String(open));
    button.setAttribute("aria-controls", `run-${r.id}`);
    button.addEventListener("click", () => {
      if (openRuns.has(r.id)) openRuns.delete(r.id); else openRuns.add(r.id);
      renderRuns();
    });
    rows.push(el("tr", { dataset: { run: r.id, kind: r.kind, verdict: r.verdict } },
      el("td", {}, r.kind === "gameday" ? "GameDay" : "experiment"),
      el("td", {}, button),
      el("td", {}, el("span", { className: `pill verdict-${r.verdict}` }, r.verdict)),
      el("td", { className: "reason" }, r.reason || "—"),
      el("td", {}, el("time", { dateTime: r.started }, fmtWhen(r.started))),
      el("td", {}, r.duration)));
    if (open) rows.push(el("tr", { className: "detail", dataset: { detail: r.id } }, el("td", { colSpan: 6 }, runDetail(r))));
  }
  body.replaceChildren(...rows);
}

async function refreshRuns() {
  let text;
  try {
    const res = await fetch("api/experiments", { headers: headers() });
    text = await res.text();
    if (!res.ok) throw new Error(JSON.parse(text).error || res.statusText);
  } catch (e) {
    $("#runs-note").textContent = `The record of experiments cannot be read: ${e.message}`;
    return;
  }
  if (text === runsJSON) return; // keep the page (and what is open) as it is
  runsJSON = text;
  runs = JSON.parse(text);
  renderRuns();
}

// ---- new errors -------------------------------------------------------------

let errorsJSON = "";

function errorStatus(c) {
  if (c.kind === "status") return String(c.status);
  return c.status ? `${c.status} ${c.kind}` : c.kind;
}

function renderErrors(v) {
  $("#errors").hidden = !v.classes.length;
  const injected = v.injected.length ? ` Injected by fault rules, kept apart: ${v.injected.length} new ${v.injected.length === 1 ? "class" : "classes"}.` : "";
  $("#errors-note").textContent = (v.empty || `${v.classes.length} error ${v.classes.length === 1 ? "class" : "classes"} first seen in the last ${v.since} that the ${v.baselineSpan} before never saw, from ${v.source}. Hover a signature for its first example.`) + injected;
  $("#errors tbody").replaceChildren(...v.classes.map((c) => el("tr", { dataset: { class: c.id } },
    el("td", {}, c.cuj),
    el("td", {}, c.route || "—"),
    el("td", {}, errorStatus(c)),
    el("td", {}, String(c.count)),
    el("td", {}, el("time", { dateTime: c.firstSeen }, fmtWhen(c.firstSeen))),
    el("td", { className: "reason", title: `${c.example.method} ${c.example.path}\n${c.example.body || "(no body)"}` }, el("code", {}, c.signature || "(empty body)")))));
}

async function refreshErrors() {
  let text;
  try {
    const res = await fetch("api/errors", { headers: headers() });
    text = await res.text();
    if (!res.ok) throw new Error(JSON.parse(text).error || res.statusText);
  } catch (e) {
    $("#errors-note").textContent = `The error classes cannot be read: ${e.message}`;
    return;
  }
  if (text === errorsJSON) return;
  errorsJSON = text;
  renderErrors(JSON.parse(text));
}

// ---- polling ----------------------------------------------------------------

function renderHeader() {
  $("#service").textContent = state.service;
  document.title = `slolab · ${state.service} dashboard`;
  $("#source").textContent = state.judged
    ? `SLIs, budgets, burn rates and alerts: the SLO engine over ${state.source}, judged at ${fmtTime(state.judged)}. Traffic, charts and faults: the proxy, live. Click a CUJ for its charts.`
    : `SLO view: ${state.source}. Traffic, charts and faults: the proxy, live. Click a CUJ for its charts.`;
  $("#history").replaceChildren(...state.history.map((n) => el("span", {}, n)));
  $("#history").hidden = !state.history.length;
  $("#burn-h").textContent = state.windows.length ? `Burn rate ${state.windows.join(" · ")}` : "Burn rate";
  $("#links").replaceChildren(...state.links.map((l) => el("a", { href: l.url, textContent: l.name, target: "_blank", rel: "noopener" })));
  $("#token-form").hidden = !state.tokenRequired;
  $("#token").placeholder = token() ? "set for this tab" : "needed to read and change";
}

let firstState = true;
async function refresh() {
  try {
    state = await api("GET", "api/state");
    stateAt = performance.now();
  } catch (e) {
    if (e.status === 401) askForToken(`${e.message}.`);
    else setStatus(`The dashboard cannot be read: ${e.message}`, true);
    return;
  }
  renderHeader();
  const names = state.cujs.map((c) => c.name);
  fillSelect($("#sim-cuj"), names);
  fillSelect($("#chart-select"), names);
  if (!selected && names.length) selectCUJ(names[0]);
  renderCUJs();
  renderFaults();
  renderSims();
  renderAudit();
  if (state.error) setStatus(`The proxy did not answer the last poll: ${state.error}`, true);
  else if (state.engineError) setStatus(`The SLO engine could not judge (showing its last view): ${state.engineError}`, true);
  else if ($("#status").classList.contains("bad") && /poll|cannot be read|could not judge|token/.test($("#status").textContent)) setStatus("");
  else if (firstState) setStatus(`Live: ${names.length} CUJs, read every ${POLL_MS / 1000}s.`);
  if (firstState) { firstState = false; preview(); }
}

// The record of runs changes rarely: it is read every RUNS_EVERY polls.
const RUNS_EVERY = 5;
let ticks = 0;
async function tick() {
  await refresh();
  await refreshSeries();
  if (ticks++ % RUNS_EVERY === 0) {
    await refreshRuns();
    await refreshErrors();
  }
  setTimeout(tick, POLL_MS);
}
tick();
