// Child mode: the child's boards and nothing of the record. No call to the service is made
// from here (api.js refuses while child mode is on): everything the child does goes into
// the tablet's queue, and worker mode sends it. Leaving needs the worker's PIN, and a
// reload stays in child mode.
import * as api from "./api.js";
import * as boards from "./boards.js";
import * as db from "./db.js";
import { h, show } from "./ui.js";
import { recordEntry, visitScreen } from "./worker.js";

const SCALE = [
  { value: "like", label: "I like", css: "like" },
  { value: "not sure", label: "Not sure", css: "unsure" },
  { value: "don't like", label: "I don't like", css: "dislike" },
];

async function digest(pin) {
  const bytes = new TextEncoder().encode(`childvoice-pin:${pin}`);
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function enter(visit, pin) {
  await db.set("childMode", { visit_client_id: visit.client_id, pin: await digest(pin) });
  api.setChildMode(true);
  document.body.classList.add("child");
  if (document.documentElement.requestFullscreen && !document.fullscreenElement) {
    document.documentElement.requestFullscreen().catch(() => {});
  }
  await render(visit);
}

export async function resume() {
  const mode = await db.get("childMode");
  const visit = await db.get("currentVisit");
  if (!mode || !visit || visit.client_id !== mode.visit_client_id) return false;
  api.setChildMode(true);
  document.body.classList.add("child");
  await render(visit);
  return true;
}

async function leave(visit) {
  await db.remove("childMode");
  api.setChildMode(false);
  document.body.classList.remove("child");
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  visitScreen(visit);
}

function sizeClass(prefs) {
  return `size-${(prefs && prefs.symbol_size) || "large"}${prefs && prefs.labels_shown === false ? " labels-hidden" : ""}`;
}

function image(board, button) {
  const item = (board.images || []).find((i) => i.id === button.image_id);
  const url = boards.assetUrl(item);
  return url ? h("img", { src: url, alt: "" }) : null;
}

function speak(board, button, prefs) {
  const sound = (board.sounds || []).find((s) => s.id === button.sound_id);
  const url = boards.assetUrl(sound);
  if (url) {
    new Audio(url).play().catch(() => {});
    return;
  }
  if (prefs.speech_on !== false && "speechSynthesis" in window) {
    speechSynthesis.cancel();
    speechSynthesis.speak(new SpeechSynthesisUtterance(button.vocalization || button.label || ""));
  }
}

function orderedButtons(board) {
  const byId = new Map(board.buttons.map((b) => [b.id, b]));
  const cells = [];
  for (const row of board.grid.order) {
    for (const id of row) cells.push(id !== null && byId.has(id) ? byId.get(id) : null);
  }
  return cells;
}

// What child mode shows is one state object; every tap changes it at once (so quick taps
// on a screen still being redrawn all count) and redraws run one after another.
let screen = {};
let drawing = Promise.resolve();

function update(visit, changes) {
  const next = typeof changes === "function" ? changes(screen) : changes;
  screen = { ...screen, said: null, ...next };
  drawing = drawing.then(() => draw(visit)).catch(() => {});
  return drawing;
}

async function render(visit, state = {}) {
  screen = { view: "board", strip: [], placed: {}, picked: null, said: null, ...state };
  drawing = drawing.then(() => draw(visit)).catch(() => {});
  return drawing;
}

async function draw(visit) {
  const state = screen;
  const prefs = visit.preferences || {};
  const ids = visit.reachable_ids && visit.reachable_ids.length ? visit.reachable_ids : visit.board_ids;
  const available = (await Promise.all(ids.map((id) => boards.byId(id)))).filter(Boolean);
  const offered = available.filter((b) => visit.board_ids.includes(b.id));
  const current = available.find((b) => b.id === state.boardId) || offered[0] || available[0];
  screen.boardId = current.id;
  const view = state.view || "board";
  const rerender = (changes) => update(visit, changes);

  const tabs = h("nav", { class: "board-tabs", "aria-label": "Boards" }, offered.map((board) =>
    h("button", { type: "button", class: "secondary", "aria-pressed": board.id === current.id ? "true" : "false",
      onclick: () => rerender({ boardId: board.id, strip: [], placed: {}, picked: null }) },
    board.buttons.length ? image(board, board.buttons[0]) : null, board.name)));
  const tools = h("div", { class: "child-tools" },
    h("button", { type: "button", "aria-pressed": view === "board" ? "true" : "false", onclick: () => rerender({ view: "board" }) }, "Symbols"),
    h("button", { type: "button", "aria-pressed": view === "mat" ? "true" : "false", onclick: () => rerender({ view: "mat", placed: {}, picked: null }) }, "Sort"),
    h("button", { type: "button", "aria-pressed": view === "photo" ? "true" : "false", onclick: () => rerender({ view: "photo" }) }, "Photo"),
    h("button", { type: "button", "aria-pressed": view === "sound" ? "true" : "false", onclick: () => rerender({ view: "sound" }) }, "Sound"),
    h("button", { type: "button", class: "secondary", onclick: async () => {
      const last = [...visit.entries].reverse().find((e) => e.by_child && !e.retracted);
      if (!last) return;
      await db.enqueue({ type: "retract", client_id: db.uuid(), entry_client_id: last.client_id,
        retracted_at: new Date().toISOString() });
      last.retracted = true;
      await db.set("currentVisit", visit);
      rerender({ said: "Taken back." });
    } }, "I didn't mean that"),
    h("button", { type: "button", class: "grown-ups", onclick: () => askPin(visit) }, "Grown-ups"));

  let body;
  if (view === "mat") body = matView(visit, current, prefs, state, rerender);
  else if (view === "photo") body = photoView(visit, rerender);
  else if (view === "sound") body = soundView(visit, rerender);
  else body = boardView(visit, current, prefs, state.strip, rerender);

  show(h("h1", { class: "visually-hidden" }, "Your turn"),
    h("div", { class: "child-top" }, tabs, tools),
    state.said ? h("p", { role: "status" }, state.said) : h("p", { role: "status" }),
    body);
}

function boardView(visit, board, prefs, shown, rerender) {
  let strip = shown;
  const grid = h("div", { class: `grid ${sizeClass(prefs)}` });
  grid.style.gridTemplateColumns = `repeat(${board.grid.columns}, minmax(0, 1fr))`;
  for (const button of orderedButtons(board)) {
    if (!button) {
      grid.append(h("span", { "aria-hidden": "true" }));
      continue;
    }
    const link = button.load_board && button.load_board.id;
    const el = h("button", { type: "button", class: `symbol${link ? " link" : ""}`,
      "aria-label": button.label || button.vocalization || button.id,
      onclick: () => {
        speak(board, button, prefs);
        if (link) {
          rerender({ boardId: link });
          return;
        }
        const picture = image(board, button);
        const choice = { board_id: board.id, board_version: board.version, button,
          src: picture ? picture.getAttribute("src") : null };
        rerender((now) => ({ strip: [...now.strip, choice] }));
      } }, image(board, button), h("span", { class: "label" }, button.label || ""));
    if (button.background_color) el.style.backgroundColor = button.background_color;
    if (button.border_color) el.style.borderColor = button.border_color;
    grid.append(el);
  }
  const chosen = strip.map((c) => h("span", { class: "chosen" },
    c.src ? h("img", { src: c.src, alt: "" }) : null, c.button.label || c.button.id));
  const stripEl = h("div", { class: "strip", "aria-label": "What you chose", role: "group" },
    chosen.length ? chosen : h("span", {}, "Tap the pictures"));
  const send = async () => {
    strip = screen.strip;
    if (!strip.length) return;
    screen.strip = []; // a second tap on Send sends nothing twice
    // One entry per board the choices came from (a link may have moved the child on).
    const groups = new Map();
    for (const c of strip) {
      const key = `${c.board_id}:${c.board_version}`;
      if (!groups.has(key)) groups.set(key, { board_id: c.board_id, board_version: c.board_version, button_ids: [], labels: [] });
      groups.get(key).button_ids.push(c.button.id);
      groups.get(key).labels.push(c.button.label || c.button.id);
    }
    for (const g of groups.values()) {
      await recordEntry(visit, { kind: "symbols", source: "child_direct", prompt: visit.purpose, board_id: g.board_id,
        board_version: g.board_version, button_ids: g.button_ids }, `You said: ${g.labels.join(" ")}`);
    }
    rerender({ strip: [], said: "Sent." });
  };
  return [grid, stripEl, h("div", { class: "actions" },
    h("button", { type: "button", class: "secondary", onclick: () => rerender({ strip: [] }) }, "Clear"),
    h("button", { type: "button", onclick: send, disabled: !strip.length }, "Send"))];
}

function matView(visit, board, prefs, state, rerender) {
  const placed = state.placed || {};
  const picked = state.picked || null;
  const options = board.buttons.filter((b) => !(b.load_board && b.load_board.id) && !placed[b.id]);
  const place = (buttonId, value) => rerender((now) => ({
    placed: { ...now.placed, [buttonId]: value }, picked: null }));
  const card = (button) => {
    const el = h("button", { type: "button", class: "symbol", draggable: "true",
      "aria-pressed": picked === button.id ? "true" : "false",
      "aria-label": button.label || button.id,
      onclick: () => {
        speak(board, button, prefs);
        rerender((now) => ({ picked: now.picked === button.id ? null : button.id }));
      },
      ondragstart: (event) => event.dataTransfer.setData("text/plain", button.id),
    }, image(board, button), h("span", { class: "label" }, button.label || ""));
    return el;
  };
  const columns = h("div", { class: `mat ${sizeClass(prefs)}` }, SCALE.map((s) => {
    const here = board.buttons.filter((b) => placed[b.id] === s.value);
    const column = h("button", { type: "button", class: `column ${s.css}`,
      "aria-label": `${s.label}${picked ? ": put it here" : ""}`,
      onclick: () => { if (screen.picked) place(screen.picked, s.value); },
      ondragover: (event) => event.preventDefault(),
      ondrop: (event) => {
        event.preventDefault();
        const id = event.dataTransfer.getData("text/plain");
        if (id) place(id, s.value);
      },
    }, h("img", { class: "face", src: `/tablet/img/${s.css}.svg`, alt: "" }), h("span", {}, s.label),
    here.map((b) => h("span", { class: "chosen" }, image(board, b), b.label || "")));
    return column;
  }));
  const send = async () => {
    const placements = Object.entries(screen.placed).map(([button_id, scale_value]) => ({ button_id, scale_value }));
    if (!placements.length) return;
    screen.placed = {};
    const words = placements.map((p) => `${(board.buttons.find((b) => b.id === p.button_id) || {}).label || p.button_id}: ${p.scale_value}`);
    await recordEntry(visit, { kind: "mat", source: "child_direct", prompt: visit.purpose, board_id: board.id,
      board_version: board.version, scale: SCALE.map((s) => s.value), placements },
    `You sorted: ${words.join(", ")}`);
    rerender({ view: "mat", placed: {}, picked: null, said: "Sent." });
  };
  return [h("p", {}, picked ? "Now tap where it goes." : "Tap a picture, then tap where it goes."),
    h("div", { class: `mat-options ${sizeClass(prefs)}` }, options.map(card)),
    columns,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => rerender({ view: "mat", placed: {}, picked: null }) }, "Start again"),
      h("button", { type: "button", onclick: send, disabled: !Object.keys(placed).length }, "Send"))];
}

let liveStream = null;

function stopStream() {
  if (liveStream) liveStream.getTracks().forEach((t) => t.stop());
  liveStream = null;
}

async function keepMedia(visit, kind, blob, filename) {
  const clientId = db.uuid();
  const capturedAt = new Date().toISOString();
  await db.addUpload({ client_id: clientId, blob, url: null, meta: {
    session_client_id: visit.client_id, client_id: clientId, kind, captured_at: capturedAt,
    source: "child_direct", filename, prompt: visit.purpose } });
  visit.entries.push({ client_id: clientId, kind, captured_at: capturedAt, by_child: true,
    summary: kind === "photo" ? "You took a photo" : "You recorded a sound" });
  await db.set("currentVisit", visit);
}

function reviewControls(visit, kind, blob, filename, rerender) {
  return h("div", { class: "actions" },
    h("button", { type: "button", onclick: async () => {
      await keepMedia(visit, kind, blob, filename);
      rerender({ view: kind === "photo" ? "photo" : "sound", said: "Kept." });
    } }, "Keep it"),
    h("button", { type: "button", class: "secondary", onclick: () => rerender({ view: kind === "photo" ? "photo" : "sound", said: "Thrown away." }) }, "Throw it away"));
}

function photoView(visit, rerender) {
  const area = h("div", { class: "capture" });
  const video = h("video", { autoplay: true, playsinline: true, muted: true, "aria-label": "The camera" });
  const start = h("button", { type: "button", onclick: async () => {
    try {
      liveStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      video.srcObject = liveStream;
      area.replaceChildren(video, take);
    } catch (error) {
      area.replaceChildren(h("p", { class: "problem" }, "The camera is not available."));
    }
  } }, "Open the camera");
  const take = h("button", { type: "button", onclick: async () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    stopStream();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    const url = URL.createObjectURL(blob);
    area.replaceChildren(h("img", { src: url, alt: "The photo you took" }),
      reviewControls(visit, "photo", blob, "photo.jpg", rerender));
  } }, "Take the photo");
  area.append(start);
  return area;
}

function soundView(visit, rerender) {
  const area = h("div", { class: "capture" });
  let recorder = null;
  let chunks = [];
  const stop = h("button", { type: "button", class: "danger", onclick: () => recorder && recorder.stop() }, "Stop");
  const start = h("button", { type: "button", onclick: async () => {
    try {
      liveStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (error) {
      area.replaceChildren(h("p", { class: "problem" }, "The microphone is not available."));
      return;
    }
    const type = ["audio/webm;codecs=opus", "audio/webm", "audio/mp4", "audio/ogg;codecs=opus"]
      .find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || "";
    recorder = new MediaRecorder(liveStream, type ? { mimeType: type } : {});
    chunks = [];
    recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
    recorder.onstop = () => {
      stopStream();
      const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      const ext = blob.type.includes("mp4") ? "m4a" : blob.type.includes("ogg") ? "ogg" : "webm";
      area.replaceChildren(h("audio", { controls: true, src: URL.createObjectURL(blob), "aria-label": "Your sound" }),
        reviewControls(visit, "audio", blob, `sound.${ext}`, rerender));
    };
    recorder.start(250);
    area.replaceChildren(h("p", { role: "status" }, "Recording… tap Stop when you have finished."), stop);
  } }, "Record a sound");
  area.append(start);
  return area;
}

function askPin(visit) {
  const input = h("input", { type: "password", inputmode: "numeric", autocomplete: "off",
    class: "pin", id: "leave-pin", maxlength: 8 });
  const problem = h("p", { class: "problem", role: "alert" });
  const dialog = h("dialog", { "aria-labelledby": "leave-title" },
    h("form", { method: "dialog", onsubmit: async (event) => {
      event.preventDefault();
      const mode = await db.get("childMode");
      if (mode && mode.pin === await digest(input.value)) {
        dialog.close();
        dialog.remove();
        stopStream();
        await leave(visit);
      } else {
        problem.textContent = "That is not the PIN.";
        input.value = "";
        input.focus();
      }
    } },
    h("h2", { id: "leave-title" }, "For grown-ups"),
    h("p", {}, h("label", { for: "leave-pin" }, "The worker's PIN"), input),
    problem,
    h("div", { class: "actions" },
      h("button", { type: "submit" }, "Leave child mode"),
      h("button", { type: "button", class: "secondary", onclick: () => { dialog.close(); dialog.remove(); } }, "Back to the child"))));
  document.body.append(dialog);
  dialog.showModal();
  input.focus();
}
