// Pencil console: texters send one message per click; admins create campaigns, upload contacts,
// assign batches. Plain JS, no build step; talks only to /v1/plugins/sms/ with the bearer token.
"use strict";

const API = "/v1/plugins/sms";
const CHUNK_BYTES = 55 * 1024; // the API takes at most 60 KiB of CSV per request
const $ = (sel) => document.querySelector(sel);
const state = {
  token: sessionStorage.getItem("kp_token") || localStorage.getItem("kp_token") || "",
  campaigns: [], contact: null, thread: null,
};

async function api(method, path, body, raw) {
  const headers = { Authorization: `Bearer ${state.token}` };
  const init = { method, headers };
  if (raw !== undefined) { init.body = raw; headers["Content-Type"] = "text/csv"; }
  else if (body !== undefined) { init.body = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  const resp = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  const type = resp.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    if (resp.status === 401) { $("#signin").hidden = false; $("#main").hidden = true; }
    throw new Error(data && data.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${resp.status}`);
  }
  return data;
}

function say(text) { $("#status").textContent = text; $("#error").textContent = ""; }
function fail(err) { $("#error").textContent = err.message || String(err); }
const cid = () => $("#campaign").value;
const campaign = () => state.campaigns.find((c) => String(c.id) === cid());

function li(text, onclick) {
  const el = document.createElement("li");
  el.textContent = text;
  if (onclick) { el.classList.add("clickable"); el.addEventListener("click", onclick); }
  return el;
}

async function loadCampaigns() {
  const { campaigns } = await api("GET", "campaigns");
  state.campaigns = campaigns;
  const sel = $("#campaign");
  const keep = sel.value;
  sel.replaceChildren(...campaigns.map((c) => new Option(`${c.title}${c.active ? "" : " (not started)"}`, c.id)));
  if (keep) sel.value = keep;
  await refresh();
}

async function refresh() {
  if (!cid()) { say("No campaign yet: create one below, or ask an admin to add you."); return; }
  await Promise.all([loadNext(), loadConversations(), loadReview().catch(() => {})]);
  const c = campaign();
  $("#question").replaceChildren(...(c.questions || []).map((q) => new Option(q.text, q.id)));
  $("#canned").replaceChildren(new Option("canned response…", ""), ...(c.canned || []).map((r) => new Option(r.title, r.text)));
  fillAnswers();
}

function fillAnswers() {
  const q = (campaign()?.questions || []).find((x) => x.id === $("#question").value);
  $("#answer").replaceChildren(...(q ? q.answers : []).map((a) => new Option(a.value, a.value)));
}

async function loadNext() {
  const next = await api("GET", `campaigns/${cid()}/next`);
  state.contact = next.contact;
  $("#send").disabled = !next.contact;
  $("#contact").textContent = next.contact
    ? `${next.contact.first_name} ${next.contact.last_name} · ${next.contact.cell} · ${next.contact.zone || "zone unknown"} · ${next.unsent} left`
    : "Nobody left to text: get more contacts.";
  $("#message").textContent = next.message || "";
}

async function loadConversations() {
  const { conversations } = await api("GET", `campaigns/${cid()}/conversations`);
  $("#conversations").replaceChildren(...conversations.map((c) =>
    li(`${c.first_name} ${c.last_name} (${c.status})`, () => openThread(c.id))));
}

async function openThread(contactId) {
  const conv = await api("GET", `conversations/${contactId}`);
  state.thread = contactId;
  $("#thread").hidden = false;
  $("#thread-title").textContent = `${conv.contact.first_name} ${conv.contact.last_name} · ${conv.contact.cell}`;
  $("#thread-messages").replaceChildren(...conv.messages.map((m) =>
    li(`${m.direction === "in" ? "←" : "→"} ${m.body} [${m.status}]`)));
}

async function loadReview() {
  const { messages } = await api("GET", `campaigns/${cid()}/review`);
  $("#review").replaceChildren(...messages.map((m) =>
    li(`${m.direction === "in" ? "←" : "→"} contact ${m.contact_id} · ${m.texter_id || ""}: ${m.body} [${m.status}]`)));
}

async function sendOne() {
  if (!state.contact) return;
  $("#send").disabled = true; // one click, one message
  try {
    const sent = await api("POST", "send", { contact_id: state.contact.id });
    say(`Sent to ${state.contact.first_name} (${sent.status}).`);
  } catch (e) { fail(e); }
  await refresh().catch(fail);
}

async function uploadCsv() {
  const file = $("#csv").files[0];
  if (!file || !cid()) return;
  const lines = (await file.text()).split(/\r?\n/);
  const header = lines.shift();
  const totals = { added: 0, invalid: [], duplicates: [], opted_out: [] };
  let part = [];
  let size = 0;
  const flush = async () => {
    if (!part.length) return;
    const r = await api("POST", `campaigns/${cid()}/contacts`, undefined, [header, ...part].join("\n") + "\n");
    totals.added += r.added;
    for (const k of ["invalid", "duplicates", "opted_out"]) totals[k].push(...r[k]);
    part = []; size = 0;
  };
  for (const line of lines) {
    if (!line.trim()) continue;
    if (size + line.length + header.length > CHUNK_BYTES) await flush();
    part.push(line); size += line.length + 1;
  }
  await flush();
  $("#upload-report").textContent =
    `added ${totals.added}; invalid ${totals.invalid.length}; duplicates ${totals.duplicates.length}; opted out ${totals.opted_out.length}\n` +
    totals.invalid.slice(0, 20).map((r) => `line ${r.line}: ${r.reason}`).join("\n");
}

function wire() {
  $("#signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("#token-input").value.trim();
    sessionStorage.setItem("kp_token", state.token);
    start();
  });
  $("#campaign").addEventListener("change", () => refresh().catch(fail));
  $("#question").addEventListener("change", fillAnswers);
  $("#canned").addEventListener("change", () => { $("#reply").value = $("#canned").value; });
  $("#send").addEventListener("click", sendOne);
  $("#join").addEventListener("click", () => api("POST", `campaigns/${cid()}/join`).then((r) => say(`Joined as ${r.role}.`)).catch(fail));
  $("#more").addEventListener("click", () => api("POST", `campaigns/${cid()}/assignments`, { count: 50 })
    .then((r) => { say(`${r.assigned} more contacts.`); return refresh(); }).catch(fail));
  $("#reply-form").addEventListener("submit", (e) => {
    e.preventDefault();
    api("POST", `conversations/${state.thread}/messages`, { body: $("#reply").value })
      .then(() => { $("#reply").value = ""; return openThread(state.thread); }).catch(fail);
  });
  $("#answer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    api("POST", `conversations/${state.thread}/answers`, { question: $("#question").value, answer: $("#answer").value })
      .then((r) => { say("Answer saved."); if (r.suggested_reply) $("#reply").value = r.suggested_reply; }).catch(fail);
  });
  $("#campaign-form").addEventListener("submit", (e) => {
    e.preventDefault();
    let questions = [];
    try { questions = $("#c-questions").value.trim() ? JSON.parse($("#c-questions").value) : []; }
    catch (err) { fail(new Error("questions: not JSON")); return; }
    api("POST", "campaigns", { title: $("#c-title").value, script: $("#c-script").value, questions,
      start_hour: Number($("#c-start").value), end_hour: Number($("#c-end").value) })
      .then((c) => { say(`Campaign ${c.id} created.`); return loadCampaigns().then(() => { $("#campaign").value = c.id; return refresh(); }); })
      .catch(fail);
  });
  $("#upload").addEventListener("click", () => uploadCsv().then(refresh).catch(fail));
  $("#texter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#t-id").value.trim();
    api("POST", `campaigns/${cid()}/texters`, { texter_id: id, name: $("#t-name").value, role: $("#t-role").value })
      .then(() => Number($("#t-count").value) > 0
        ? api("POST", `campaigns/${cid()}/assignments`, { texter_id: id, count: Number($("#t-count").value) }) : { assigned: 0 })
      .then((r) => say(`${id}: ${r.assigned} contacts assigned.`)).catch(fail);
  });
  $("#activate").addEventListener("click", () => api("PATCH", `campaigns/${cid()}`, { active: true })
    .then(() => { say("Campaign started."); return loadCampaigns(); }).catch(fail));
  $("#export").addEventListener("click", async () => {
    try {
      const text = await api("GET", `campaigns/${cid()}/export`);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      a.download = `campaign-${cid()}-answers.csv`;
      a.click();
    } catch (e) { fail(e); }
  });
}

async function start() {
  if (!state.token) { $("#signin").hidden = false; return; }
  try {
    const me = await api("GET", "/v1/whoami");
    $("#who").textContent = `${me.name || me.token_id} · texter id ${me.token_id}`;
    $("#signin").hidden = true;
    $("#main").hidden = false;
    await loadCampaigns();
  } catch (e) { $("#signin").hidden = false; fail(e); }
}

wire();
start();
