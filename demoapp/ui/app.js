// The demo app's UI: plain DOM, relative URLs (so it works through the
// slolab proxy and under any path prefix), and every request timed, so a
// person clicking through feels what a simulation does.
"use strict";

const $ = (sel) => document.querySelector(sel);

function status(text, ok) {
  const el = $("#status");
  el.textContent = text;
  el.className = ok ? "ok" : "bad";
}

// call sends a request and reports its time and outcome in the status line.
async function call(what, method, path, body, headers) {
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(path, { method, body, headers, credentials: "same-origin" });
  } catch (e) {
    status(`${what}: no response (${e.message})`, false);
    throw e;
  }
  const ms = Math.round(performance.now() - t0);
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  const fault = res.headers.get("X-Slolab-Fault");
  if (!res.ok) {
    const msg = (data && data.error) || (typeof data === "string" ? data.trim() : res.statusText);
    status(`${what}: ${res.status} ${msg} in ${ms} ms${fault ? " (fault " + fault + ")" : ""}`, false);
    throw new Error(msg);
  }
  status(`${what}: ${res.status} in ${ms} ms${fault ? " (fault " + fault + ")" : ""}`, true);
  return data;
}

const json = (v) => ({ body: JSON.stringify(v), headers: { "Content-Type": "application/json" } });

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

async function loadMessages() {
  const room = $("#room").value;
  const data = await call("read", "GET", `messages?room=${encodeURIComponent(room)}&limit=30`);
  const list = $("#messages");
  list.replaceChildren(...data.messages.map(messageItem));
  list.scrollTop = list.scrollHeight;
}

function messageItem(m) {
  const text = el("span", { className: "text", textContent: m.text });
  const edit = el("button", { type: "button", textContent: "Edit", title: `Edit message ${m.id}` });
  edit.addEventListener("click", async () => {
    const next = prompt("Edit the message", m.text);
    if (next === null || next.trim() === "") return;
    const { body, headers } = json({ text: next });
    const updated = await call("update", "PUT", `messages/${m.id}`, body, headers);
    text.textContent = updated.text;
  });
  const task = el("button", { type: "button", textContent: "To task", title: `Make message ${m.id} a task` });
  task.addEventListener("click", async () => {
    const { body, headers } = json({ title: m.text.slice(0, 200), message: m.id });
    await call("task", "POST", "tasks", body, headers);
    loadTasks();
  });
  return el("li", {}, el("span", { className: "author", textContent: m.author }), text,
    m.edited ? el("span", { className: "edited", textContent: "(edited)" }) : "", edit, task);
}

async function loadTasks() {
  const data = await call("task", "GET", "tasks");
  $("#tasks").replaceChildren(...data.tasks.slice(0, 10).map((t) =>
    el("li", { textContent: `${t.title} — ${t.author}` })));
}

function bind(form, fn) {
  $(form).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await fn(new FormData(ev.target), ev.target); } catch (e) { /* shown in the status line */ }
  });
}

bind("#login", async (fd) => {
  const { body, headers } = json({ user: fd.get("user"), password: fd.get("password") });
  const data = await call("login", "POST", "login", body, headers);
  $("#who").textContent = `Logged in as ${data.user}.`;
});
$("#logout").addEventListener("click", async () => {
  try {
    await call("logout", "POST", "logout");
    $("#who").textContent = "Not logged in.";
  } catch (e) { /* shown */ }
});
bind("#send", async (fd, form) => {
  const { body, headers } = json({ room: $("#room").value, text: fd.get("text") });
  await call("send", "POST", "messages", body, headers);
  form.reset();
  loadMessages().catch(() => {});
});
bind("#upload", async (fd, form) => {
  const file = fd.get("file");
  const f = await call("upload", "POST", `files?name=${encodeURIComponent(file.name)}`, file,
    { "Content-Type": file.type || "application/octet-stream" });
  form.reset();
  $("#files").prepend(el("li", {}, el("a", { href: f.url, textContent: `${f.name} (${f.size} bytes)`, target: "_blank", rel: "noopener" })));
});
bind("#task", async (fd, form) => {
  const { body, headers } = json({ title: fd.get("title") });
  await call("task", "POST", "tasks", body, headers);
  form.reset();
  loadTasks().catch(() => {});
});
$("#room").addEventListener("change", () => loadMessages().catch(() => {}));
$("#refresh").addEventListener("click", () => loadMessages().catch(() => {}));
loadMessages().then(loadTasks).catch(() => {});
