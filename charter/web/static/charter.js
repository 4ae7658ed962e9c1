// The inbox's only script (the CSP allows no other): WebAuthn ceremonies and decisions.
"use strict";

const csrf = () => document.body.dataset.csrf;

function toBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function toText(buffer) {
  let raw = "";
  for (const b of new Uint8Array(buffer)) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function say(text, refused) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = refused ? "message refusal" : "message";
  box.hidden = false;
}

async function post(url, body, type) {
  const headers = { "Accept": "application/json", "X-CSRF-Token": csrf() };
  if (type) headers["Content-Type"] = type;
  const response = await fetch(url, { method: "POST", headers, body, credentials: "same-origin" });
  const answer = await response.json().catch(() => ({ error: "the inbox did not answer" }));
  if (!response.ok) throw new Error(answer.error || "refused");
  return answer;
}

async function enrol(button) {
  const base = location.pathname;
  const options = await post(base + "/options");
  options.challenge = toBytes(options.challenge);
  options.user.id = toBytes(options.user.id);
  for (const c of options.excludeCredentials || []) c.id = toBytes(c.id);
  const credential = await navigator.credentials.create({ publicKey: options });
  const answer = await post(base, JSON.stringify({
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toText(credential.response.clientDataJSON),
      attestationObject: toText(credential.response.attestationObject),
      transports: credential.response.getTransports ? credential.response.getTransports() : [],
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  }), "application/json");
  say(answer.message + " Sign in next.");
  button.hidden = true;
  const next = document.createElement("a");
  next.href = answer.next;
  next.id = "next";
  next.textContent = "Sign in";
  button.after(next);
}

function assertionOf(credential) {
  return {
    authenticatorData: toText(credential.response.authenticatorData),
    clientDataJSON: toText(credential.response.clientDataJSON),
    signature: toText(credential.response.signature),
  };
}

async function signin(button) {
  const base = `/t/${button.dataset.tenant}/signin`;
  const options = await post(base + "/options");
  options.challenge = toBytes(options.challenge);
  for (const c of options.allowCredentials || []) c.id = toBytes(c.id);
  const credential = await navigator.credentials.get({ publicKey: options });
  const answer = await post(base, JSON.stringify({ id: credential.id, response: assertionOf(credential) }), "application/json");
  location.assign(answer.next);
}

function show(shown) {
  const list = document.getElementById("shown");
  list.replaceChildren();
  const rows = [
    ["Decision", shown.outcome === "approve" ? "Approve" : "Reject"],
    ["Action", shown.action], ["Amount", shown.amount], ["To", shown.counterparty],
    ["Reason", shown.reason], ["Amends the constitution", shown.amendment ? "yes" : "no"],
  ];
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
}

async function pollResult(base) {
  const result = document.getElementById("result");
  for (let i = 0; i < 120; i++) {
    const response = await fetch(base + "/status", { headers: { "Accept": "application/json" } });
    const state = await response.json();
    result.textContent = state.result;
    result.dataset.status = state.status;
    // Landed: the page again, with the decisions and the act's result as recorded.
    if (state.executed || ["rejected", "expired", "dismissed"].includes(state.status)) {
      sessionStorage.setItem("charter-said", document.getElementById("message").textContent);
      location.reload();
      return;
    }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

function decisionForm(form) {
  const base = `/t/${form.dataset.tenant}/exceptions/${form.dataset.exception}`;
  const confirm = document.getElementById("confirm");
  let pending = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    document.getElementById("message").hidden = true;
    const data = new FormData(form);
    data.set("outcome", event.submitter ? event.submitter.value : "approve");
    try {
      pending = await post(base + "/statement", data);
      show(pending.shown);
      confirm.hidden = false;
    } catch (error) { say(error.message, true); }
  });
  document.getElementById("cancel").addEventListener("click", () => { pending = null; confirm.hidden = true; });
  document.getElementById("sign").addEventListener("click", async () => {
    if (!pending) return;
    try {
      const credential = await navigator.credentials.get({ publicKey: {
        challenge: toBytes(pending.challenge), rpId: pending.rp_id, userVerification: "required",
        allowCredentials: [{ type: "public-key", id: toBytes(pending.credential) }], timeout: 120000,
      } });
      const answer = await post(base + "/decide", JSON.stringify({
        statement: pending.statement, response: assertionOf(credential),
      }), "application/json");
      pending = null;
      document.getElementById("decide").hidden = true;
      say(answer.message);
      await pollResult(base);
    } catch (error) { say(error.message, true); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const said = sessionStorage.getItem("charter-said");
  if (said) { sessionStorage.removeItem("charter-said"); say(said); }
  for (const button of document.querySelectorAll("[data-action]")) {
    const run = button.dataset.action === "enrol" ? enrol : signin;
    button.addEventListener("click", () => run(button).catch((error) => say(error.message, true)));
  }
  const form = document.getElementById("decision");
  if (form) decisionForm(form);
});
