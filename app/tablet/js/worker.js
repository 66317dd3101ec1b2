// Worker mode: sign in, the children the worker holds, consents, starting and running a
// visit, and what the tablet still owes the server.
import * as api from "./api.js";
import * as boards from "./boards.js";
import * as db from "./db.js";
import * as sync from "./sync.js";
import { field, formValues, h, problemText, show, status } from "./ui.js";

let enterChildMode = null; // set by main.js (child.js), to keep the modules apart

export function connectChildMode(fn) {
  enterChildMode = fn;
}

const SETTINGS = [["home", "Home"], ["school", "School"], ["placement", "Placement"],
  ["other", "Somewhere else"]];
const SCOPES = [["symbols", "Symbols"], ["photo", "Photos"], ["audio", "Recordings"],
  ["plan", "Use in My plan"], ["share_family", "Share with family"],
  ["share_professionals", "Share with professionals"]];

// --- sending ------------------------------------------------------------------------------

export async function sendSoon() {
  if (!navigator.onLine || api.inChildMode()) return;
  try {
    const left = await sync.syncNow(progressStatus);
    if (left && !left.skipped) status(owedText(left));
  } catch (error) {
    status(error instanceof api.Offline ? "Offline: everything is kept on this tablet."
      : `Not sent yet: ${problemText(error)}`);
  }
}

function progressStatus(step) {
  if (step.phase === "upload") status(`Sending a photo or recording… ${Math.round(100 * step.offset / step.size)}%`);
  else if (step.phase === "pictures") status(`Getting pictures ready… ${step.done} of ${step.total}`);
  else if (step.phase === "items") status("Sending…");
}

function owedText(left) {
  if (!left.items && !left.uploads) return "Everything is sent.";
  return `Still to send: ${left.items} item${left.items === 1 ? "" : "s"}, ` +
    `${left.uploads} photo${left.uploads === 1 ? "" : "s"} or recording${left.uploads === 1 ? "" : "s"}.`;
}

// --- sign in ------------------------------------------------------------------------------

export function signInScreen(message) {
  const problem = h("p", { class: "problem", role: "alert", id: "signin-problem" }, message || "");
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      problem.textContent = "";
      try {
        await api.signIn(email.value, password.value);
        await api.ensureDevice();
        status("Getting the boards ready for visits…");
        await boards.refresh(progressStatus);
        status("Ready.");
        await home();
      } catch (error) {
        problem.textContent = error instanceof api.Offline
          ? "There is no connection. Sign in once with a connection; visits then work without one."
          : problemText(error);
      }
    },
  }, field("Email", email), field("Password", password),
  h("p", {}, h("button", { type: "submit" }, "Sign in")));
  show(h("h1", {}, "Sign in"), h("p", {}, "Sign in with your work account to get this tablet ready."),
    problem, form);
}

// --- home: my children ---------------------------------------------------------------------

export async function home() {
  const auth = await api.signedIn();
  if (!auth) return signInScreen();
  const current = await db.get("currentVisit");
  if (current && !current.ended_at) return visitScreen(current);
  const children = await boards.children();
  const left = await sync.owed();
  const list = h("ul", { class: "cards" }, children.map((child) => h("li", { class: "card" },
    h("h2", {}, child.preferred_name),
    communicationFacts(child),
    h("p", {}, h("button", { type: "button", onclick: () => childScreen(child) },
      `Open ${child.preferred_name}`)))));
  show(
    h("h1", {}, "My children"),
    h("p", {}, `Signed in as ${auth.user.full_name || auth.email}.`),
    h("p", { id: "owed-summary" }, owedText(left)),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: owedScreen }, "What this tablet still owes"),
      h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          await boards.refresh(progressStatus);
          status("Boards and pictures are ready for visits without signal.");
          await home();
        } catch (error) {
          status(problemText(error));
        }
      } }, "Get ready for visits"),
      h("button", { type: "button", class: "secondary", onclick: async () => {
        await api.signOut();
        signInScreen();
      } }, "Sign out")),
    children.length ? list : h("p", {}, "No children are allocated to you yet."),
  );
}

function communicationFacts(child) {
  const c = child.communication || {};
  const prefs = child.board_preferences || {};
  const facts = [
    ["Communicates with", (c.methods || []).join(", ") || "not recorded"],
    ["How I say yes", c.yes_signal || "not recorded"],
    ["How I say no", c.no_signal || "not recorded"],
    ["When I'm happy", c.happy_signs || "not recorded"],
    ["When I'm upset", c.upset_signs || "not recorded"],
    ["Symbols", `${(prefs.symbol_size || "large").replace("_", " ")}, labels ${prefs.labels_shown === false ? "hidden" : "shown"}, speech ${prefs.speech_on === false ? "off" : "on"}`],
  ];
  return h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// --- one child: consents, starting a visit -------------------------------------------------

async function childScreen(child) {
  const consents = h("div", {}, h("p", {}, "Looking for consents…"));
  show(
    h("h1", {}, child.preferred_name),
    communicationFacts(child),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: () => visitForm(child) }, "Start a visit"),
      h("button", { type: "button", class: "secondary", onclick: () => consentForm(child) }, "Record a consent"),
      h("button", { type: "button", class: "secondary", onclick: home }, "Back to my children")),
    h("h2", {}, "Consents"),
    consents,
  );
  let list = (await db.get(`consents:${child.id}`)) || [];
  if (navigator.onLine) {
    try {
      list = (await api.call(`/children/${child.id}/consents?limit=200`)).items;
      await db.set(`consents:${child.id}`, list);
    } catch (error) {
      // Offline or refused: show what was kept.
    }
  }
  const waiting = (await db.queued()).filter((item) => item.type === "consent" && item.child_id === child.id);
  consents.replaceChildren(
    list.length || waiting.length ? h("ul", {},
      list.map((c) => h("li", {}, `${c.given_by.replaceAll("_", " ")}${c.relationship ? ` (${c.relationship})` : ""}: ` +
        `${c.scopes.join(", ")}${c.withdrawn_at ? " — withdrawn" : ""}`)),
      waiting.map((c) => h("li", {}, `${c.given_by.replaceAll("_", " ")}: ${c.scopes.join(", ")} — recorded on this tablet, not sent yet`)))
      : h("p", {}, "No consent is recorded. Record one before the visit."));
}

function consentForm(child) {
  const problem = h("p", { class: "problem", role: "alert" });
  const givenBy = h("select", { name: "given_by" },
    h("option", { value: "parent_or_carer" }, "A parent or carer"),
    h("option", { value: "child" }, "The child"),
    h("option", { value: "best_interests" }, "A best-interests decision (16 or over)"));
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const v = formValues(form);
      const scopes = [].concat(v.scopes || []);
      if (!scopes.length) {
        problem.textContent = "Choose at least one thing the consent covers.";
        return;
      }
      const now = new Date().toISOString();
      // valid_from defaults to given_at, on the server's clock (corrected for this
      // tablet's measured offset), so a wrong tablet clock cannot backdate it.
      const item = { type: "consent", client_id: db.uuid(), child_id: child.id,
        given_by: v.given_by, scopes, method: v.method, child_assent: v.child_assent,
        given_at: now };
      for (const key of ["giver_name", "relationship", "decision_maker", "decision_reason", "assent_signs"]) {
        if (v[key]) item[key] = v[key];
      }
      await db.enqueue(item);
      status("Consent recorded on this tablet.");
      await sendSoon();
      childScreen(child);
    },
  },
  field("Who gave it", givenBy),
  field("Their name", h("input", { type: "text", name: "giver_name", maxlength: 200 })),
  field("Relationship to the child", h("input", { type: "text", name: "relationship", maxlength: 100 })),
  field("Who decided (best interests)", h("input", { type: "text", name: "decision_maker", maxlength: 200 })),
  field("Why (best interests)", h("input", { type: "text", name: "decision_reason", maxlength: 2000 })),
  h("fieldset", {}, h("legend", {}, "What it covers"),
    SCOPES.map(([value, label]) => h("label", {}, h("input", { type: "checkbox", name: "scopes", value,
      checked: ["symbols", "photo", "audio", "plan"].includes(value) }), label))),
  field("How it was given", h("select", { name: "method" },
    ["spoken", "signed", "symbols", "written"].map((m) => h("option", { value: m }, m)))),
  field("The child's own agreement", h("select", { name: "child_assent" },
    h("option", { value: "agreed" }, "Agreed"),
    h("option", { value: "not_able_to_express" }, "Not able to express"),
    h("option", { value: "dissented" }, "Said no (nothing may be captured)"))),
  field("How the child showed it", h("input", { type: "text", name: "assent_signs", maxlength: 1000 })),
  problem,
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Record the consent"),
    h("button", { type: "button", class: "secondary", onclick: () => childScreen(child) }, "Cancel")));
  show(h("h1", {}, `Consent for ${child.preferred_name}`), form);
}

async function visitForm(child) {
  const offered = await boards.forChild(child.id);
  const problem = h("p", { class: "problem", role: "alert" });
  const boardBox = (board, checked) => h("label", {},
    h("input", { type: "checkbox", name: "board_ids", value: board.id, checked }), board.name);
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const v = formValues(form);
      const boardIds = [].concat(v.board_ids || []);
      if (!boardIds.length) {
        problem.textContent = "Choose at least one board to offer.";
        return;
      }
      const visit = { client_id: db.uuid(), child_id: child.id, child_name: child.preferred_name,
        setting: v.setting, purpose: v.purpose.trim(), board_ids: boardIds,
        reachable_ids: await boards.linked(boardIds), preferences: offered.preferences,
        started_at: new Date().toISOString(), entries: [] };
      await db.enqueue({ type: "session", client_id: visit.client_id, child_id: child.id,
        setting: visit.setting, purpose: visit.purpose, board_ids: boardIds,
        started_at: visit.started_at });
      await db.set("currentVisit", visit);
      await sendSoon();
      visitScreen(visit);
    },
  },
  field("Where", h("select", { name: "setting" }, SETTINGS.map(([v, l]) => h("option", { value: v }, l)))),
  field("What you will ask (the purpose)", h("input", { type: "text", name: "purpose", required: true, maxlength: 500 })),
  h("fieldset", {}, h("legend", {}, `${child.preferred_name}'s own boards`),
    offered.personal.length ? offered.personal.map((b) => boardBox(b, true)) : h("p", {}, "None yet.")),
  h("fieldset", {}, h("legend", {}, "The board library"),
    offered.library.map((b, i) => boardBox(b, !offered.personal.length && i === 0))),
  problem,
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Start the visit"),
    h("button", { type: "button", class: "secondary", onclick: () => childScreen(child) }, "Cancel")));
  show(h("h1", {}, `Visit with ${child.preferred_name}`), form);
}

// --- a visit -------------------------------------------------------------------------------

export async function recordEntry(visit, item, summary) {
  const entry = { type: "entry", client_id: db.uuid(), session_client_id: visit.client_id,
    captured_at: new Date().toISOString(), ...item };
  await db.enqueue(entry);
  visit.entries.push({ client_id: entry.client_id, summary, kind: item.kind,
    captured_at: entry.captured_at, by_child: item.source !== "adult_interpretation" });
  await db.set("currentVisit", visit);
  return entry;
}

export async function visitScreen(visit) {
  const problem = h("p", { class: "problem", role: "alert" });
  const text = h("textarea", { name: "text", rows: 3, required: true, maxlength: 4000 });
  const observation = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      if (!text.value.trim()) return;
      await recordEntry(visit, { kind: "observation", source: "adult_interpretation",
        text: text.value.trim() }, `We noticed: ${text.value.trim()}`);
      status("Observation kept.");
      await sendSoon();
      visitScreen(visit);
    },
  }, field("What you noticed (a sign, a look, a sound)", text),
  h("p", {}, h("button", { type: "submit" }, "Add the observation")));
  const pin = h("input", { type: "password", inputmode: "numeric", pattern: "[0-9]{4,8}",
    autocomplete: "off", class: "pin", required: true, maxlength: 8 });
  const hand = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      if (!/^[0-9]{4,8}$/.test(pin.value)) {
        problem.textContent = "Choose a PIN of 4 to 8 digits.";
        return;
      }
      await enterChildMode(visit, pin.value);
    },
  }, field("A PIN to leave child mode (4 to 8 digits)", pin),
  h("p", {}, h("button", { type: "submit" }, "Hand the tablet to the child")));
  show(
    h("h1", {}, `Visit with ${visit.child_name}`),
    h("p", {}, `Purpose: ${visit.purpose}`),
    problem,
    hand,
    h("h2", {}, "Add an observation"),
    observation,
    h("h2", {}, "What the child has said so far"),
    visit.entries.length ? h("ol", { id: "said-so-far" }, visit.entries.map((e) =>
      h("li", {}, `${new Date(e.captured_at).toLocaleTimeString()}: ${e.summary}${e.retracted ? " (taken back)" : ""}`)))
      : h("p", { id: "said-so-far" }, "Nothing yet."),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", onclick: async () => {
        visit.ended_at = new Date().toISOString();
        await db.enqueue({ type: "session_end", client_id: db.uuid(),
          session_client_id: visit.client_id, ended_at: visit.ended_at });
        await db.remove("currentVisit");
        status("The visit has ended.");
        await sendSoon();
        home();
      } }, "End the visit")),
  );
}

// --- what the tablet owes ------------------------------------------------------------------

export async function owedScreen() {
  const left = await sync.owed();
  const dropped = await sync.dropped();
  const bar = h("progress", { max: 100, value: 0, "aria-label": "Sending" });
  const said = h("p", { role: "status", "aria-live": "polite" }, owedText(left));
  show(
    h("h1", {}, "What this tablet still owes"),
    said,
    left.items ? h("ul", {}, left.queue.map((item) => h("li", {},
      `${item.type === "entry" ? item.kind : item.type.replace("_", " ")}, ${new Date(item.captured_at || item.started_at || item.ended_at || item.retracted_at || item.given_at).toLocaleString()}`))) : null,
    left.uploads ? h("ul", {}, left.uploadList.map((u) => h("li", {}, `a ${u.meta.kind === "photo" ? "photo" : "recording"}, ${Math.round(u.blob.size / 1024)} KB`))) : null,
    bar,
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: async () => {
        const total = left.items + left.uploads || 1;
        let done = 0;
        try {
          const after = await sync.syncNow((step) => {
            if (step.phase === "items") done += step.sent;
            if (step.phase === "upload" && step.offset === step.size) done += 1;
            if (step.phase === "upload") bar.value = Math.min(99, Math.round(100 * (done + step.offset / step.size) / total));
            else bar.value = Math.min(99, Math.round(100 * done / total));
          });
          bar.value = 100;
          said.textContent = owedText(after);
        } catch (error) {
          said.textContent = error instanceof api.Offline ? "Still offline: nothing is lost, try again later." : problemText(error);
        }
      } }, "Send now"),
      h("button", { type: "button", class: "secondary", onclick: home }, "Back")),
    dropped.length ? [h("h2", {}, "Refused by the service"),
      h("ul", {}, dropped.map((d) => h("li", {}, `${d.what}: ${d.detail}`)))] : null,
  );
}
