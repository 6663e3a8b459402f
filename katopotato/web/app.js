// KatoPotato console ("Conductor"): one page, no build step. Talks only to the public API, with a
// bearer token pasted in, or with the HttpOnly cookie of an OIDC sign-in (then every POST/DELETE
// carries the X-CSRF-Token that /v1/me hands out). It shows only what the principal's scopes allow.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  token: sessionStorage.getItem("kp_token") || localStorage.getItem("kp_token") || "",
  signedIn: false,     // a token was accepted, or the sign-in cookie was
  csrf: null,          // the CSRF token of a cookie sign-in
  me: null,            // GET /v1/me
  scopes: new Set(),
  sessionId: null,
  session: null,
  stream: null,        // AbortController of the live stream
  poll: null,          // interval of the session poll
  target: null,        // media time to jump to once its line is there
  committedSeq: -1,    // the last seq committed on the live stream (older partials are stale)
  partials: new Map(), // seq → its latest partial, for the seqs not committed yet
  searchQ: "",
  searchCursor: null,
};
const jobs = {
  plugins: null,       // GET /v1/plugins, once
  jobId: null,
  stream: null,        // AbortController of the job's event stream
  lastEvent: null,     // its Last-Event-ID
  cursor: null,        // next page of the list
};
const TERMINAL_JOB = ["succeeded", "failed", "cancelled"];

// --- API ---------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// The credentials of a request: the pasted token, or (with the cookie the browser sends by itself)
// the CSRF token on anything that changes state.
function authHeaders(method = "GET", extra = {}) {
  const headers = { ...extra };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  else if (state.csrf && !["GET", "HEAD"].includes(method)) headers["X-CSRF-Token"] = state.csrf;
  return headers;
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = authHeaders(method);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!resp.ok) {
    let code = "http_" + resp.status, message = resp.statusText;
    try { const e = (await resp.json()).error; code = e.code; message = e.message; } catch (_) { /* not JSON */ }
    if (resp.status === 401 && path !== "/v1/me" && state.signedIn) {
      signOut(state.token ? "Your token is no longer accepted." : "Your sign-in has ended; sign in again.");
    }
    throw new ApiError(resp.status, code, message);
  }
  if (raw) return resp;
  return resp.status === 204 ? null : resp.json();
}

const can = (scope) => state.scopes.has("admin") || state.scopes.has(scope);

// --- formatting --------------------------------------------------------------------------------

function clock(s) {
  s = Math.max(0, s || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// --- sign in -----------------------------------------------------------------------------------

// token: a pasted API token, or "" to use the sign-in cookie (an OIDC sign-in)
async function signIn(token, remember) {
  state.token = token;
  const me = await api("/v1/me");
  state.me = me;
  state.csrf = me.csrf_token || null;
  state.scopes = new Set(me.scopes);
  state.signedIn = true;
  if (token) (remember ? localStorage : sessionStorage).setItem("kp_token", token);
  const who = me.kind === "api" ? (me.name || me.token_id) : (me.email || me.name || me.subject);
  $("#who").textContent = `${who} · ${me.scopes.join(", ")}`;
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
  const sessions = can("sessions:read") || can("sessions:write") || can("search");
  $("#nav-sessions").hidden = !sessions;
  $("#sessions-list-card").hidden = !can("sessions:read");
  $("#new-session").hidden = !can("sessions:write");
  $("#search-form").hidden = !can("search");
  $("#nav").hidden = false;
  $("#nav-jobs").hidden = !can("jobs:read");
  $("#new-job").hidden = !can("jobs:write");
  $("#nav-admin").hidden = !can("admin");
  $("#nav-plugins").hidden = !pluginsTab();
  $("#nav-sms").hidden = !can("sms:text");
  await refreshSessions();
  route();
}

// the Plugins tab: for those who hold a plugin's scope, and for admins (who hold them all)
const pluginsTab = () => pluginScopes().length > 0 || can("admin");

// the plugins' own scopes this principal holds (e.g. texting:send): their pages are theirs to show
function pluginScopes() {
  return [...state.scopes].filter((s) => s.includes(":") && !["sessions", "jobs"].includes(s.split(":")[0]));
}

async function signOut(message = "") {
  if (state.signedIn && !state.token) {
    try { await api("/v1/auth/logout", { method: "POST" }); } catch (_) { /* it has ended already */ }
  }
  sessionStorage.removeItem("kp_token");
  localStorage.removeItem("kp_token");
  state.token = "";
  state.signedIn = false;
  state.csrf = null;
  state.me = null;
  state.scopes = new Set();
  closeSession();
  closeJob();
  jobs.plugins = null;
  $("#nav").hidden = true;
  $("#app").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").textContent = "";
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
}

// --- sessions list -----------------------------------------------------------------------------

async function refreshSessions() {
  if (!state.signedIn || !can("sessions:read")) return;
  let page;
  try { page = await api("/v1/sessions?limit=50"); } catch (_) { return; }
  const list = $("#sessions");
  list.replaceChildren(...page.sessions.map((s) => el("li",
    { class: s.id === state.sessionId ? "selected" : "", dataset: { id: s.id },
      onclick: () => { location.hash = `#/sessions/${s.id}`; } },
    el("span", { class: "title" }, s.title || s.id),
    el("span", { class: `badge ${s.status}` }, s.status), " ",
    el("span", { class: "small muted" }, new Date(s.created_at * 1000).toLocaleString()))));
}

// --- one session -------------------------------------------------------------------------------

function closeSession() {
  if (state.stream) state.stream.abort();
  if (state.poll) clearInterval(state.poll);
  state.stream = state.poll = state.session = state.sessionId = null;
}

function showOnly(view) {
  for (const id of ["#empty", "#results-view", "#session-view", "#jobs-empty", "#job-view", "#nothing"]) {
    $(id).hidden = id !== view;
  }
}

function setMode(mode) {
  $("#sessions-sidebar").hidden = mode !== "sessions";
  $("#jobs-sidebar").hidden = mode !== "jobs";
  $("#admin-view").hidden = mode !== "admin";
  $("#plugins-view").hidden = mode !== "plugins";
  $("#app").classList.toggle("wide", mode === "admin" || mode === "plugins");  // no sidebar: the full width
  for (const m of ["sessions", "jobs", "admin", "plugins"]) $(`#nav-${m}`).classList.toggle("active", mode === m);
  if (mode === "admin" || mode === "plugins" || mode === "none") showOnly(null);
  if (mode === "jobs") {
    closeSession();
    loadPlugins().catch((e) => { $("#job-error").textContent = e.message; });
    refreshJobs();
  } else {
    closeJob();
  }
}

async function openSession(id, at) {
  state.target = at;
  if (state.sessionId === id) { jumpToTarget(); return; }
  closeSession();
  state.sessionId = id;
  state.committedSeq = -1;
  state.partials = new Map();
  showOnly("#session-view");
  $("#transcript").replaceChildren();
  $("#player").hidden = true;
  $("#s-error").textContent = "";
  for (const li of document.querySelectorAll("#sessions li")) li.classList.toggle("selected", li.dataset.id === id);
  try {
    renderSession(await api(`/v1/sessions/${id}`));
  } catch (e) {
    $("#s-title").textContent = "Session not found";
    $("#s-error").textContent = e.message;
    return;
  }
  state.stream = new AbortController();
  follow(id, state.stream.signal);
  state.poll = setInterval(async () => {
    if (state.sessionId !== id) return;
    try { renderSession(await api(`/v1/sessions/${id}`)); } catch (_) { /* next time */ }
  }, 3000);
}

function renderSession(s) {
  state.session = s;
  $("#s-title").textContent = s.title || s.id;
  $("#s-source").textContent = `${s.source.url} · ${s.source.kind}${s.source.reason ? " (" + s.source.reason + ")" : ""}`;
  setStatus(s.status, s.health);
  $("#s-duration").textContent = `${clock(s.duration_s)} captured`;
  $("#s-segments").textContent = `${s.segments} segments${s.gaps ? `, ${s.gaps} gaps` : ""}`;
  if (s.error) $("#s-error").textContent = ` · ${s.error}`;
  $("#s-stop").hidden = !(can("sessions:write") && ["starting", "running"].includes(s.status));
  $("#s-swap").hidden = !(can("sessions:write") && s.status === "running");
  $("#s-outputs").replaceChildren(...(s.outputs || []).map((o) => el("li",
    { class: `output ${o.status}`, title: o.last_error || "" },
    `${o.type} → ${o.target}: ${o.status}${o.delivered ? ` (${o.delivered})` : ""}`)));
  if (!["starting", "running", "stopping"].includes(s.status) && state.poll) { clearInterval(state.poll); state.poll = null; }
}

function setStatus(status, health) {
  if (status) { const b = $("#s-status"); b.textContent = status; b.className = `badge ${status}`; }
  if (health) { $("#s-health").className = `dot ${health}`; $("#s-health-text").textContent = health; }
}

// Server-Sent Events over fetch (EventSource cannot send the Authorization header), resuming
// with Last-Event-ID after a dropped connection.
async function follow(id, signal) {
  let last = 0;
  while (!signal.aborted) {
    const headers = authHeaders("GET", { Accept: "text/event-stream" });
    if (last) headers["Last-Event-ID"] = String(last);
    let resp;
    try {
      // partials=1: interim text of the segment being heard, shown in grey until its segment commits
      resp = await fetch(`/v1/sessions/${id}/events?partials=1`, { headers, signal });
    } catch (_) {
      if (signal.aborted) return;
      await sleep(2000);
      continue;
    }
    if (resp.status === 204) return;
    if (!resp.ok) { $("#s-error").textContent = ` · live stream: HTTP ${resp.status}`; return; }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", ended = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let eventId = null;
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) eventId = Number(line.slice(3).trim());
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (!data.length || state.sessionId !== id) continue;
          if (eventId) last = eventId;
          const ev = JSON.parse(data.join("\n"));
          onEvent(ev);
          if (ev.type === "end") ended = true;
        }
      }
    } catch (_) {
      if (signal.aborted) return;
    }
    if (ended) return;
    await sleep(1000);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The provisional line: the newest partial of a seq not yet committed, always the last line.
// One grey line for what is still provisional: the latest partial of every seq not committed yet,
// in seq order (a draft after a cut shows the end of the segment still being decoded as well as
// the one being heard).
function showPartial(ev) {
  if (ev.seq <= state.committedSeq) return;
  state.partials.set(ev.seq, ev);
  renderPartials();
}

function dropPartial(upToSeq) {
  for (const seq of [...state.partials.keys()]) if (seq <= upToSeq) state.partials.delete(seq);
  renderPartials();
}

function renderPartials() {
  const box = $("#transcript");
  let line = $("#partial-line");
  const pending = [...state.partials.values()].sort((a, b) => a.seq - b.seq);
  if (!pending.length) {
    if (line) line.remove();
    return;
  }
  if (!line) {
    line = el("div", { class: "line partial", id: "partial-line", title: "provisional: being heard now" },
      el("span", { class: "ts" }, ""), el("span", { class: "text" }, ""));
  }
  line.dataset.seq = pending[pending.length - 1].seq;
  line.querySelector(".ts").textContent = clock(pending[0].start);
  line.querySelector(".text").textContent = pending.map((p) => p.text.trim()).join(" ");
  if (line !== box.lastElementChild) box.append(line);  // (re)placed last
  if ($("#follow").checked) box.scrollTop = box.scrollHeight;
}

function onEvent(ev) {
  const box = $("#transcript");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  let line = null;
  if (ev.type === "partial") { showPartial(ev); return; }
  if (ev.type === "segment" || ev.type === "gap") {
    state.committedSeq = Math.max(state.committedSeq, ev.seq);
    dropPartial(ev.seq);
  }
  if (ev.type === "end") dropPartial(Infinity);
  if (ev.type === "segment") {
    if (!ev.text) return;
    const ts = el("button", { class: "ts", title: "play from here" }, clock(ev.start));
    if (state.session && state.session.keep_audio) {
      ts.classList.add("playable");
      ts.addEventListener("click", () => play(ev.start, ev.end));
    }
    line = el("div", { class: "line segment", dataset: { start: ev.start, end: ev.end, seq: ev.seq } },
      ts, el("span", { class: "text" }, ev.text));
  } else if (ev.type === "gap") {
    line = el("div", { class: "line gap", dataset: { start: ev.start, end: ev.end, seq: ev.seq } },
      el("span", { class: "ts" }, clock(ev.start)),
      el("span", {}, `[gap ${clock(ev.start)}–${clock(ev.end)}: nothing could be transcribed (${ev.reason})]`));
  } else if (ev.type === "status") {
    setStatus(ev.status, ev.health);
    if (["stopping", "failed", "stopped", "interrupted", "completed"].includes(ev.status)) {
      line = el("div", { class: "line status" }, `— ${ev.status}${ev.error ? ": " + ev.error : ""}`);
    }
  } else if (ev.type === "swap_started") {
    line = el("div", { class: "line status" }, `— swapping the capture (${ev.trigger}, ${ev.mode}): ${ev.reason}`);
  } else if (ev.type === "swap_completed") {
    const lost = ev.lost_s ? `, ${ev.lost_s.toFixed(2)} s lost` : "";
    line = el("div", { class: "line info" }, `— capture swapped: instance ${ev.epoch} took over${lost}`);
  } else if (ev.type === "swap_failed") {
    line = el("div", { class: "line status" }, `— capture swap failed, the running instance goes on: ${ev.error || ev.reason}`);
  } else if (ev.type === "session") {
    line = el("div", { class: "line info" },
      `— capturing ${ev.source_kind || "source"} since ${new Date(ev.media_epoch * 1000).toLocaleTimeString()}`);
  } else if (ev.type === "end") {
    line = el("div", { class: "line info" }, `— end (${ev.reason}, ${ev.segments} segments)`);
    refreshSessions();
    api(`/v1/sessions/${state.sessionId}`).then(renderSession).catch(() => {});
  }
  if (!line) return;
  const partial = $("#partial-line");
  if (partial) box.insertBefore(line, partial); else box.append(line);
  if (state.target !== null && state.target !== undefined) jumpToTarget();
  else if ($("#follow").checked && atBottom) box.scrollTop = box.scrollHeight;
  else if (!atBottom) $("#jump-live").hidden = false;
}

function jumpToTarget() {
  const t = state.target;
  if (t === null || t === undefined) return;
  const lines = [...document.querySelectorAll("#transcript .line.segment, #transcript .line.gap")];
  const hit = lines.find((l) => Number(l.dataset.start) <= t + 0.01 && t < Number(l.dataset.end) + 0.01);
  if (!hit) return;
  for (const l of document.querySelectorAll("#transcript .target")) l.classList.remove("target");
  hit.classList.add("target");
  hit.scrollIntoView({ block: "center" });
  $("#follow").checked = false;
  state.target = null;
}

async function play(start, end) {
  const player = $("#player");
  try {
    const resp = await api(`/v1/sessions/${state.sessionId}/audio?start=${start}&end=${Math.max(end, start + 1) + 0.3}`, { raw: true });
    const blob = await resp.blob();
    if (player.src) URL.revokeObjectURL(player.src);
    player.src = URL.createObjectURL(blob);
    player.hidden = false;
    await player.play();
  } catch (e) {
    $("#s-error").textContent = ` · audio: ${e.message}`;
  }
}

async function download(format) {
  const id = state.sessionId;
  try {
    const resp = await api(`/v1/sessions/${id}/transcript?format=${format}`, { raw: true });
    const blob = await resp.blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `${id}.${format}` });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (e) {
    $("#s-error").textContent = ` · download: ${e.message}`;
  }
}

// --- search ------------------------------------------------------------------------------------

async function search(q, cursor = null) {
  closeSession();
  showOnly("#results-view");
  $("#results-q").textContent = q;
  $("#search-q").value = q;
  if (!cursor) $("#results").replaceChildren();
  const params = new URLSearchParams({ q, limit: "20" });
  if (cursor) params.set("cursor", cursor);
  let page;
  try {
    page = await api(`/v1/search?${params}`);
  } catch (e) {
    $("#results").append(el("li", { class: "error" }, e.message));
    $("#results-more").hidden = true;
    return;
  }
  if (!page.hits.length && !cursor) $("#results").append(el("li", { class: "muted" }, "No matches."));
  for (const h of page.hits) {
    const snippet = el("div", { class: "snippet" });
    snippet.innerHTML = h.snippet; // HTML-safe by contract: escaped text with <mark> around matches
    const hash = h.link.slice(h.link.indexOf("#"));
    $("#results").append(el("li", { class: "hit", dataset: { session: h.session, start: h.start },
      onclick: () => { location.hash = hash; } },
      el("span", { class: "title" }, `${h.title || h.session} · ${clock(h.start)}`), snippet));
  }
  state.searchQ = q;
  state.searchCursor = page.next_cursor;
  $("#results-more").hidden = !page.next_cursor;
}

// --- jobs --------------------------------------------------------------------------------------

async function loadPlugins() {
  if (jobs.plugins) return jobs.plugins;
  const out = await api("/v1/plugins");
  jobs.plugins = out.plugins;
  const kinds = $("#job-kind"), filter = $("#jobs-kind");
  kinds.replaceChildren();
  filter.replaceChildren(el("option", { value: "" }, "every kind"));
  for (const p of out.plugins) {
    for (const j of p.jobs) {
      filter.append(el("option", { value: j.kind }, j.kind));
      if (p.name !== "transcription") kinds.append(el("option", { value: j.kind }, j.kind)); // sessions start those
    }
  }
  renderParamsForm();
  return jobs.plugins;
}

function jobSpec(kind) {
  for (const p of jobs.plugins || []) for (const j of p.jobs) if (j.kind === kind) return j;
  return null;
}

function fieldKind(schema) {
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "string") return "string";
  if (schema.type === "array" && schema.items && schema.items.type === "string") return "list";
  return "json";
}

// A form from the job's parameter schema: simple fields for simple types, JSON for the rest.
function renderParamsForm() {
  const spec = jobSpec($("#job-kind").value);
  const box = $("#job-params");
  box.replaceChildren();
  $("#job-description").textContent = spec ? spec.description : "";
  if (!spec) return;
  const schema = spec.params_schema || {};
  const required = new Set(schema.required || []);
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const kind = fieldKind(prop);
    const id = `param-${name}`;
    box.append(el("label", { for: id }, `${prop.title || name}${required.has(name) ? " *" : ""}`));
    let input;
    if (kind === "boolean") {
      input = el("input", { id, type: "checkbox" });
      input.checked = prop.default === true;
    } else if (kind === "json") {
      input = el("textarea", { id, placeholder: "JSON (or plain text)" });
    } else {
      const hint = kind === "list" ? "comma-separated" : (prop.default ?? "") === "" ? "" : `default ${prop.default}`;
      input = el("input", { id, type: kind === "number" ? "number" : "text", placeholder: hint });
      if (kind === "number") input.step = prop.type === "integer" ? "1" : "any";
    }
    input.dataset.param = name;
    input.dataset.kind = kind;
    if (prop.description) input.title = prop.description;
    box.append(input);
  }
}

function readParams() {
  const params = {};
  for (const input of document.querySelectorAll("#job-params [data-param]")) {
    const name = input.dataset.param, kind = input.dataset.kind;
    if (kind === "boolean") { params[name] = input.checked; continue; }
    const raw = input.value.trim();
    if (!raw) continue; // the job's default
    if (kind === "number") params[name] = Number(raw);
    else if (kind === "list") params[name] = raw.split(",").map((v) => v.trim()).filter(Boolean);
    else if (kind === "json") { try { params[name] = JSON.parse(raw); } catch (_) { params[name] = raw; } }
    else params[name] = raw;
  }
  return params;
}

const jobBadge = (j) => (j.dead ? "dead" : j.status);

function progressText(p) {
  if (!p) return "";
  const count = p.total ? `${p.done}/${p.total}` : p.done ? String(p.done) : "";
  return [p.message, count].filter(Boolean).join(" · ");
}

async function refreshJobs(more = false) {
  if (!state.signedIn || !can("jobs:read") || $("#jobs-sidebar").hidden) return;
  const kind = $("#jobs-kind").value, status = $("#jobs-status").value;
  const params = new URLSearchParams({ limit: "30" });
  if (kind) params.set("kind", kind);
  if (status === "dead") params.set("dead", "true");
  else if (status) params.set("status", status);
  if (more && jobs.cursor) params.set("cursor", jobs.cursor);
  let page;
  try { page = await api(`/v1/jobs?${params}`); } catch (_) { return; }
  const items = page.jobs.map((j) => el("li",
    { class: j.id === jobs.jobId ? "selected" : "", dataset: { id: j.id },
      onclick: () => { location.hash = `#/jobs/${j.id}`; } },
    el("span", { class: "title" }, j.kind),
    el("span", { class: `badge ${jobBadge(j)}` }, jobBadge(j)), " ",
    el("span", { class: "small muted" }, progressText(j.progress) || new Date(j.created_at * 1000).toLocaleTimeString())));
  if (more) $("#jobs").append(...items); else $("#jobs").replaceChildren(...items);
  jobs.cursor = page.next_cursor;
  $("#jobs-more").hidden = !page.next_cursor;
}

function closeJob() {
  if (jobs.stream) jobs.stream.abort();
  jobs.stream = jobs.jobId = jobs.lastEvent = null;
}

async function openJob(id) {
  if (jobs.jobId === id) return;
  closeJob();
  jobs.jobId = id;
  showOnly("#job-view");
  $("#j-result").textContent = "—";
  $("#j-error").textContent = "";
  for (const li of document.querySelectorAll("#jobs li")) li.classList.toggle("selected", li.dataset.id === id);
  let job;
  try {
    job = await api(`/v1/jobs/${id}`);
  } catch (e) {
    $("#j-kind").textContent = "Job not found";
    $("#j-error").textContent = e.message;
    return;
  }
  renderJob(job);
  watchJob(id);
}

function renderJob(j) {
  if (jobs.jobId !== j.id) return;
  $("#j-kind").textContent = j.kind;
  $("#j-id").textContent = j.id;
  const badge = jobBadge(j);
  $("#j-status").textContent = badge;
  $("#j-status").className = `badge ${badge}`;
  setJobProgress(j.progress, j.status);
  $("#j-tries").textContent = `try ${j.tries} of ${j.max_tries}${j.worker ? ` on ${j.worker}` : ""}`;
  const times = [`created ${new Date(j.created_at * 1000).toLocaleTimeString()}`];
  if (j.finished_at) times.push(`finished ${new Date(j.finished_at * 1000).toLocaleTimeString()}`);
  $("#j-times").textContent = times.join(", ");
  $("#j-error").textContent = j.error || "";
  $("#j-params").textContent = JSON.stringify(j.params, null, 2);
  $("#j-cancel").hidden = !(can("jobs:write") && ["queued", "running"].includes(j.status) && !j.cancel_requested);
  $("#j-requeue").hidden = !(can("jobs:write") && ["failed", "cancelled"].includes(j.status));
  $("#j-result").classList.toggle("muted", !j.has_result);
  if (j.has_result) {
    api(`/v1/jobs/${j.id}/result`).then((r) => {
      if (jobs.jobId === j.id) $("#j-result").textContent = JSON.stringify(r.result, null, 2);
    }).catch((e) => { $("#j-result").textContent = e.message; });
  } else {
    $("#j-result").textContent = "—";
  }
}

function setJobProgress(p, status) {
  const bar = $("#j-progress");
  if (p && p.total) { bar.max = p.total; bar.value = Math.min(p.done, p.total); }
  else if (status === "succeeded") { bar.max = 1; bar.value = 1; }
  else if (status === "running") bar.removeAttribute("value"); // indeterminate
  else { bar.max = 1; bar.value = 0; }
  $("#j-progress-text").textContent = progressText(p);
}

function watchJob(id) {
  if (jobs.stream) jobs.stream.abort();
  jobs.stream = new AbortController();
  followJob(id, jobs.stream.signal);
}

// The job's progress and status over Server-Sent Events (fetch, for the Authorization header),
// resumed with Last-Event-ID after a dropped connection, and after a requeue.
async function followJob(id, signal) {
  while (!signal.aborted) {
    const headers = authHeaders("GET", { Accept: "text/event-stream" });
    if (jobs.lastEvent) headers["Last-Event-ID"] = jobs.lastEvent;
    let resp;
    try {
      resp = await fetch(`/v1/jobs/${id}/events`, { headers, signal });
    } catch (_) {
      if (signal.aborted) return;
      await sleep(2000);
      continue;
    }
    if (resp.status === 204) return;
    if (!resp.ok) { $("#j-error").textContent = `live progress: HTTP ${resp.status}`; return; }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", ended = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let eventId = null;
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) eventId = line.slice(3).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (!data.length || jobs.jobId !== id) continue;
          if (eventId) jobs.lastEvent = eventId;
          const ev = JSON.parse(data.join("\n"));
          onJobEvent(id, ev);
          if (ev.type === "status" && TERMINAL_JOB.includes(ev.status)) ended = true;
        }
      }
    } catch (_) {
      if (signal.aborted) return;
    }
    if (ended) return;
    await sleep(1000);
  }
}

function onJobEvent(id, ev) {
  const badge = $("#j-status");
  if (ev.type === "progress") {
    setJobProgress(ev.progress, "running");
  } else if (ev.type === "status" || ev.type === "cancel_requested") {
    badge.textContent = ev.status;
    badge.className = `badge ${ev.status}`;
    $("#j-tries").textContent = $("#j-tries").textContent.replace(/^try \d+/, `try ${ev.tries}`);
    if (ev.error) $("#j-error").textContent = ev.error;
    if (ev.type === "cancel_requested") $("#j-cancel").hidden = true;
    // the record has what the event does not (result, dead letter, worker): read it again
    api(`/v1/jobs/${id}`).then(renderJob).catch(() => {});
  }
}

// --- routing -----------------------------------------------------------------------------------

function route() {
  if (!state.signedIn) return;
  const hash = location.hash.slice(1);
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  if (path === "/admin" && can("admin")) { setMode("admin"); loadAdmin(); return; }
  if (path === "/plugins" && pluginsTab()) { setMode("plugins"); loadPluginPages(); return; }
  const jm = path.match(/^\/jobs(?:\/([^/]+))?$/);
  if (jm && can("jobs:read")) {
    setMode("jobs");
    if (jm[1]) openJob(decodeURIComponent(jm[1]));
    else { closeJob(); showOnly("#jobs-empty"); }
    return;
  }
  if (!$("#nav-sessions").hidden) setMode("sessions");
  else if (can("jobs:read")) { location.hash = "#/jobs"; return; }
  else if (pluginsTab()) { location.hash = "#/plugins"; return; }
  else { setMode("none"); showOnly("#nothing"); return; }
  const m = path.match(/^\/sessions\/([^/]+)$/);
  if (m) {
    const t = params.has("t") ? Number(params.get("t")) : null;
    openSession(decodeURIComponent(m[1]), t);
  } else if (path === "/search" && params.get("q")) {
    search(params.get("q"));
  } else {
    closeSession();
    showOnly("#empty");
  }
}

// --- admin: users and tokens -------------------------------------------------------------------

function when(t) { return t ? new Date(t * 1000).toLocaleString() : "—"; }

async function loadAdmin() {
  $("#admin-error").textContent = "";
  try {
    const [users, tokens] = await Promise.all([api("/v1/users"), api("/v1/tokens")]);
    $("#users").replaceChildren(...users.users.map((u) => {
      const groups = el("input", { type: "text", value: u.assigned_groups.join(", "), "aria-label": "assigned groups" });
      const save = el("button", { class: "link", onclick: async () => {
        const assigned = groups.value.split(",").map((v) => v.trim()).filter(Boolean);
        try { await api(`/v1/users/${u.id}`, { method: "PUT", body: { assigned_groups: assigned } }); loadAdmin(); }
        catch (e) { $("#admin-error").textContent = e.message; }
      } }, "Save");
      return el("tr", { dataset: { id: u.id } },
        el("td", {}, u.name || u.subject), el("td", {}, u.email), el("td", {}, u.groups.join(", ")),
        el("td", {}, groups, " ", save), el("td", {}, when(u.last_login_at)));
    }));
    $("#users-empty").hidden = users.users.length > 0;
    const now = Date.now() / 1000;
    $("#tokens").replaceChildren(...tokens.tokens.map((t) => {
      const active = !t.revoked_at && !(t.expires_at && t.expires_at < now);
      const revoke = el("button", { class: "link", onclick: async () => {
        try { await api(`/v1/tokens/${t.id}`, { method: "DELETE" }); loadAdmin(); }
        catch (e) { $("#admin-error").textContent = e.message; }
      } }, "Revoke");
      return el("tr", { class: active ? "" : "muted", dataset: { id: t.id } },
        el("td", {}, el("code", {}, t.id)), el("td", {}, t.name), el("td", {}, t.kind),
        el("td", {}, t.scopes.join(", ")), el("td", {}, when(t.expires_at)),
        el("td", {}, active ? revoke : (t.revoked_at ? "revoked" : "expired")));
    }));
  } catch (e) {
    $("#admin-error").textContent = e.message;
  }
}

// --- plugins' pages ------------------------------------------------------------------------------

async function loadPluginPages() {
  const mine = new Set(pluginScopes());
  let plugins = [];
  try { plugins = (await api("/v1/plugins")).plugins; } catch (_) { /* needs jobs:read: list the scopes alone */ }
  const byPrefix = Object.fromEntries(plugins.map((p) => [p.name, p]));
  // a plugin's page: for those who hold its scope (an admin: when the plugin is installed)
  const page = (scope) => state.scopes.has(scope) || (can(scope) && !!byPrefix[scope.split(":")[0]]);
  $("#vetting-page").hidden = !page("vetting:review");
  $("#audit-page").hidden = !page("auditing:read");
  if (!$("#vetting-page").hidden) loadVetting();
  if (!$("#audit-page").hidden) loadAudit();
  $("#plugin-pages").replaceChildren(...[...mine].sort().map((scope) => {
    const p = byPrefix[scope.split(":")[0]];
    const what = p && p.scopes ? p.scopes[scope] || "" : "";
    return el("li", { dataset: { scope } }, el("strong", {}, scope), " ", el("span", { class: "small muted" }, what),
      p && p.routes ? el("span", { class: "small" }, ` · ${p.routes}`) : "");
  }));
}

// vetting: the latest run's flags, one row per (donor, subject) pair; a decision needs a note
async function loadVetting() {
  $("#vetting-error").textContent = "";
  let q;
  try {
    q = await api(`/v1/plugins/vetting/queue?${new URLSearchParams({ status: $("#vetting-status").value })}`);
  } catch (e) { $("#vetting-error").textContent = e.message; return; }
  const c = q.counts;
  $("#vetting-run").textContent = q.run
    ? `run ${q.run} · ${when(q.finished_at)} · ${c.pending} to review, ${c.cleared} cleared, ${c.confirmed} confirmed`
    : "no vetting run has finished yet";
  $("#vetting-queue").replaceChildren(...q.items.map(vettingRow));
  $("#vetting-empty").hidden = q.items.length > 0;
}

function vettingRow(item) {
  const contributions = item.contributions.map((x) => `#${x.contribution_id} $${x.amount_usd.toFixed(2)}`).join(", ");
  const why = el("td", {}, el("strong", {}, item.rule), item.list ? ` · ${item.list}: ${item.matched_name}` : "",
    el("div", {}, item.reason), el("div", { class: "muted" }, contributions));
  let decision;
  if (item.decision) {
    const d = item.decision;
    decision = el("td", {}, el("span", { class: `badge ${d.status}` }, d.status),
      el("div", { class: "muted" }, `${d.reviewer} · ${when(d.decided_at)}`), el("div", {}, d.reason));
  } else {
    const note = el("input", { type: "text", placeholder: "note (why)", "aria-label": "decision note", maxlength: "2000" });
    const decide = (status) => async () => {
      if (!note.value.trim()) { $("#vetting-error").textContent = "Write a note first: it says why."; note.focus(); return; }
      const body = { donor_key: item.donor_key, subject_key: item.subject_key, status, reason: note.value.trim() };
      try { await api("/v1/plugins/vetting/decisions", { method: "POST", body }); loadVetting(); }
      catch (e) { $("#vetting-error").textContent = e.message; }
    };
    decision = el("td", {}, note,
      el("button", { class: "approve", title: "not the listed person / allowed: clear the flag", onclick: decide("cleared") }, "Approve"),
      el("button", { class: "reject", title: "a true match: confirm the flag", onclick: decide("confirmed") }, "Reject"));
  }
  return el("tr", { dataset: { donor: item.donor_key, subject: item.subject_key } },
    el("td", {}, item.donor_name, el("div", { class: "muted" }, item.donor_key)), why,
    el("td", {}, item.score.toFixed(2)), el("td", {}, `$${item.amount_usd.toFixed(2)}`), decision);
}

// auditing: the current findings of every audited account; mutes apply from the next run on
async function loadAudit() {
  $("#audit-error").textContent = "";
  const params = new URLSearchParams();
  for (const name of ["provider", "severity", "status"]) {
    const v = $(`#audit-${name}`).value;
    if (v) params.set(name, v);
  }
  let r;
  try { r = await api(`/v1/plugins/auditing/findings?${params}`); } catch (e) { $("#audit-error").textContent = e.message; return; }
  $("#audit-counts").textContent = Object.entries(r.counts).map(([k, n]) => `${n} ${k.toLowerCase()}`).join(" · ")
    + (r.more ? ` · ${r.more} more not shown` : "");
  $("#audit-findings").replaceChildren(...r.findings.map(auditRow));
  $("#audit-empty").hidden = r.findings.length > 0;
}

function auditRow(f) {
  let action = "";
  if (can("auditing:mute") && f.mute) {
    action = el("button", { class: "link", title: `muted by ${f.mute.who}: ${f.mute.reason}`, onclick: async () => {
      try { await api(`/v1/plugins/auditing/mutes/${f.mute.id}`, { method: "DELETE" }); loadAudit(); }
      catch (e) { $("#audit-error").textContent = e.message; }
    } }, "Unmute");
  } else if (can("auditing:mute") && f.status === "FAIL") {
    action = el("button", { class: "link", onclick: async () => {
      const reason = (prompt(`Mute ${f.check_id} on ${f.resource_id}: why?`) || "").trim();
      if (!reason) return;
      const body = { provider: f.provider, account: f.account, check: f.check_id, region: f.region,
        resource: f.resource_id, reason };
      try { await api("/v1/plugins/auditing/mutes", { method: "POST", body }); loadAudit(); }
      catch (e) { $("#audit-error").textContent = e.message; }
    } }, "Mute");
  }
  const pending = f.mute && f.status !== "MUTED" ? el("div", { class: "muted" }, "muted from the next run") : "";
  return el("tr", { dataset: { key: f.key } },
    el("td", { class: `sev-${f.severity}` }, f.severity), el("td", {}, f.status, pending),
    el("td", { title: f.remediation || "" }, f.title || f.check_id, el("div", { class: "muted" }, f.check_id)),
    el("td", {}, f.resource_id), el("td", {}, `${f.account} · ${f.region}`),
    el("td", {}, new Date(f.first_seen).toLocaleString()), el("td", {}, new Date(f.last_seen).toLocaleString()),
    el("td", {}, action));
}

async function serviceHealth() {
  try {
    const resp = await fetch("/healthz");
    $("#service-health").className = `dot ${resp.ok ? "ok" : "down"}`;
  } catch (_) {
    $("#service-health").className = "dot down";
  }
}

// --- wiring ------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#signin-error").textContent = "";
    try {
      await signIn($("#token-input").value.trim(), $("#remember").checked);
      $("#token-input").value = "";
    } catch (err) {
      state.token = "";
      $("#signin-error").textContent = err.status === 401 ? "This token is not accepted." : err.message;
    }
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#vetting-status").addEventListener("change", () => loadVetting());
  for (const name of ["provider", "severity", "status"]) $(`#audit-${name}`).addEventListener("change", () => loadAudit());
  $("#admin-new-token").addEventListener("submit", async (e) => {
    e.preventDefault();
    const scopes = $("#admin-token-scopes").value.split(",").map((v) => v.trim()).filter(Boolean);
    const body = { scopes, name: $("#admin-token-name").value.trim() };
    const days = Number($("#admin-token-days").value);
    if (days > 0) body.expires_in_s = days * 86400;
    try {
      const made = await api("/v1/tokens", { method: "POST", body });
      $("#admin-token-secret").textContent = made.token;
      $("#admin-token-secret").hidden = false;
      loadAdmin();
    } catch (err) { $("#admin-error").textContent = err.message; }
  });
  $("#new-session").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#new-error").textContent = "";
    $("#start").disabled = true;
    const body = {
      url: $("#new-url").value.trim(),
      mode: $("#new-mode").value,
      latency: $("#new-latency").value,
      realtime: $("#new-realtime").checked,
      keep_audio: $("#new-keep-audio").checked,
      vocabulary: $("#new-vocabulary").value.split(",").map((v) => v.trim()).filter(Boolean),
    };
    const title = $("#new-title").value.trim();
    if (title) body.title = title;
    try {
      const s = await api("/v1/sessions", { method: "POST", body });
      $("#new-url").value = $("#new-title").value = "";
      await refreshSessions();
      location.hash = `#/sessions/${s.id}`;
    } catch (err) {
      $("#new-error").textContent = err.message;
    } finally {
      $("#start").disabled = false;
    }
  });
  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("#search-q").value.trim();
    if (!q) return;
    const hash = `#/search?${new URLSearchParams({ q })}`;
    if (location.hash === hash) search(q); else location.hash = hash;
  });
  $("#results-more").addEventListener("click", () => search(state.searchQ, state.searchCursor));
  $("#s-stop").addEventListener("click", async () => {
    try { renderSession(await api(`/v1/sessions/${state.sessionId}`, { method: "DELETE" })); }
    catch (e) { $("#s-error").textContent = ` · stop: ${e.message}`; }
  });
  $("#s-swap").addEventListener("click", async () => {
    try {
      await api(`/v1/sessions/${state.sessionId}/swap`, { method: "POST", body: { reason: "requested in the console" } });
    } catch (e) { $("#s-error").textContent = ` · swap: ${e.message}`; }
  });
  for (const b of document.querySelectorAll("button.export")) b.addEventListener("click", () => download(b.dataset.format));
  $("#transcript").addEventListener("scroll", () => {
    const box = $("#transcript");
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 48) $("#jump-live").hidden = true;
  });
  $("#jump-live").addEventListener("click", () => {
    const box = $("#transcript");
    box.scrollTop = box.scrollHeight;
    $("#follow").checked = true;
    $("#jump-live").hidden = true;
  });
  $("#job-kind").addEventListener("change", renderParamsForm);
  $("#jobs-kind").addEventListener("change", () => refreshJobs());
  $("#jobs-status").addEventListener("change", () => refreshJobs());
  $("#jobs-more").addEventListener("click", () => refreshJobs(true));
  $("#new-job").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#job-error").textContent = "";
    $("#job-start").disabled = true;
    try {
      const job = await api("/v1/jobs", { method: "POST", body: { kind: $("#job-kind").value, params: readParams() } });
      await refreshJobs();
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      $("#job-error").textContent = err.message;
    } finally {
      $("#job-start").disabled = false;
    }
  });
  $("#j-cancel").addEventListener("click", async () => {
    try { renderJob(await api(`/v1/jobs/${jobs.jobId}`, { method: "DELETE" })); }
    catch (e) { $("#j-error").textContent = `cancel: ${e.message}`; }
  });
  $("#j-requeue").addEventListener("click", async () => {
    const id = jobs.jobId;
    try {
      renderJob(await api(`/v1/jobs/${id}/requeue`, { method: "POST" }));
      watchJob(id); // its stream goes on after the end it had reached
      refreshJobs();
    } catch (e) { $("#j-error").textContent = `requeue: ${e.message}`; }
  });
  window.addEventListener("hashchange", route);
  setInterval(() => refreshJobs(), 3000);
  serviceHealth();
  setInterval(serviceHealth, 10000);
  setInterval(refreshSessions, 5000);
  // an OIDC sign-in that went wrong comes back as #/signin?error=…&message=…
  const back = location.hash.match(/^#\/signin\?(.*)$/);
  const signinMessage = back ? (new URLSearchParams(back[1]).get("message") || "Sign-in failed.") : "";
  if (back) history.replaceState(null, "", "/");
  fetch("/v1/auth/config").then((r) => r.json()).then((c) => {
    if (!c.oidc) return;
    $("#sso").hidden = false;
    $("#sso-link").href = `${c.login_url}?next=${encodeURIComponent("/" + location.hash)}`;
  }).catch(() => {});
  if (state.token) signIn(state.token, !!localStorage.getItem("kp_token")).catch(() => signOut());
  else {
    signIn("", false).catch(() => {  // the sign-in cookie, if there is one
      state.signedIn = false;
      $("#signin").hidden = false;
      $("#signin-error").textContent = signinMessage;
    });
  }
});
