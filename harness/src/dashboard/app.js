// The ppvnet dashboard page: puts each view the server pushes in place, and sends the control
// buttons' requests (after a confirmation) with the session's CSRF token. Every fragment is
// rendered and escaped on the server; this script only moves them into the page.
"use strict";

const parts = ["picture", "controls", "matrix", "flows", "status"];
const csrf = document.querySelector('meta[name="csrf-token"]').content;

function say(id, text) {
  document.getElementById(id).textContent = text;
}

function apply(view) {
  for (const part of parts) {
    document.getElementById(part).innerHTML = view[part];
  }
}

const events = new EventSource("/dashboard/events");
events.addEventListener("view", (e) => apply(JSON.parse(e.data)));
events.addEventListener("open", () => {
  say("connection", "live");
  document.body.dataset.live = "true";
});
events.addEventListener("error", () => {
  say("connection", "disconnected; retrying");
  document.body.dataset.live = "false";
});

document.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-path]");
  if (!button || !window.confirm(button.dataset.confirm)) {
    return;
  }
  say("message", "sending…");
  try {
    const answer = await fetch(button.dataset.path, {
      method: button.dataset.method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: button.dataset.body,
      credentials: "same-origin",
    });
    if (answer.ok) {
      say("message", "done: " + button.textContent);
    } else {
      const body = await answer.json().catch(() => ({}));
      const why = body.error ? body.error.message : answer.statusText;
      say("message", "refused (" + answer.status + "): " + why);
    }
  } catch (err) {
    say("message", "failed: " + err);
  }
});
