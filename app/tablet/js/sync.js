// Sending what the tablet owes, exactly as the README's sync protocol says: POST /sync in
// batches (keep `rejected` with `retry`, drop the rest and tell the worker), then each
// photo or recording by tus (resume from HEAD). Every item keeps its client_id from the
// moment it happened, so a resend (after a reload, a crash, or from a second tablet)
// stores nothing twice.
import * as api from "./api.js";
import * as db from "./db.js";

const BATCH = 200;
const CHUNK = 512 * 1024;
const TUS = { "Tus-Resumable": "1.0.0" };

export async function owed() {
  const [items, uploads] = await Promise.all([db.queued(), db.uploads()]);
  return { items: items.length, uploads: uploads.length, queue: items, uploadList: uploads };
}

export async function dropped() {
  return (await db.get("dropped")) || [];
}

async function tellWorker(what, problem) {
  const list = await dropped();
  list.push({ what, detail: (problem && problem.detail) || "The service refused it.",
    at: new Date().toISOString() });
  await db.set("dropped", list.slice(-50));
}

function wire(item) {
  // What the server is sent: the item without the tablet's own bookkeeping.
  const { seq, local, ...rest } = item;
  return rest;
}

function describe(item) {
  if (item.type === "entry") return `a ${item.kind} entry`;
  if (item.type === "consent") return "a consent";
  return `a ${item.type.replace("_", " ")}`;
}

async function sendItems(device, report) {
  let passes = 0;
  for (;;) {
    const queue = await db.queued();
    if (!queue.length) return;
    let progress = false;
    for (let start = 0; start < queue.length; start += BATCH) {
      const batch = queue.slice(start, start + BATCH);
      const answer = await api.call("/sync", {
        method: "POST",
        headers: { "X-Device-Key": device.device_key },
        json: { device_id: device.id, sent_at: new Date().toISOString(), items: batch.map(wire) },
      });
      const done = [];
      answer.results.forEach((result, index) => {
        const item = batch[index];
        if (result.status === "created" || result.status === "duplicate") {
          done.push(item.client_id);
        } else if (!(result.problem && result.problem.retry)) {
          done.push(item.client_id);
          tellWorker(describe(item), result.problem);
        }
      });
      if (done.length) {
        await db.dequeue(done);
        progress = true;
      }
      report({ phase: "items", sent: done.length });
    }
    passes += 1;
    // What waits on something still on its way (retry) goes again; give up for now when a
    // whole pass moved nothing.
    if (!progress || passes > 5) return;
  }
}

function metadata(fields) {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => `${key} ${btoa(unescape(encodeURIComponent(String(value))))}`)
    .join(",");
}

async function sha256(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

async function sendUpload(device, upload, report) {
  const headers = { ...TUS, "X-Device-Key": device.device_key };
  const blob = upload.blob;
  if (!upload.url) {
    const created = await api.raw("/uploads/", {
      method: "POST",
      headers: { ...headers, "Upload-Length": String(blob.size),
        "Upload-Metadata": metadata(upload.meta) },
    });
    if (created.status === 409 && created.headers.get("Retry-After")) return false;
    if (!created.ok) {
      const problem = await created.json().catch(() => null);
      if (created.status >= 500 || (problem && problem.retry)) return false;
      await db.removeUpload(upload.client_id);
      await tellWorker(`a ${upload.meta.kind}`, problem);
      return true;
    }
    upload.url = new URL(created.headers.get("Location"), location.href).pathname;
    await db.updateUpload(upload);
  }
  const head = await api.raw(upload.url, { method: "HEAD", headers });
  if (head.status === 404 || head.status === 410) {
    // Expired on the server before it was finished: start it again.
    upload.url = null;
    await db.updateUpload(upload);
    return sendUpload(device, upload, report);
  }
  if (!head.ok) return false;
  let offset = Number(head.headers.get("Upload-Offset") || 0);
  while (offset < blob.size) {
    const chunk = await blob.slice(offset, offset + CHUNK).arrayBuffer();
    const patched = await api.raw(upload.url, {
      method: "PATCH",
      headers: { ...headers, "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": String(offset), "Upload-Checksum": `sha256 ${await sha256(chunk)}` },
      body: chunk,
    });
    if (patched.status === 460 || patched.status === 409) {
      const again = await api.raw(upload.url, { method: "HEAD", headers });
      offset = Number(again.headers.get("Upload-Offset") || offset);
      continue;
    }
    if (!patched.ok) {
      const problem = await patched.json().catch(() => null);
      if (patched.status >= 500) return false;
      await db.removeUpload(upload.client_id);
      await tellWorker(`a ${upload.meta.kind}`, problem);
      return true;
    }
    offset = Number(patched.headers.get("Upload-Offset"));
    report({ phase: "upload", client_id: upload.client_id, offset, size: blob.size });
  }
  await db.removeUpload(upload.client_id);
  return true;
}

async function sendUploads(device, report) {
  for (const upload of await db.uploads()) {
    await sendUpload(device, upload, report);
  }
}

// One sender at a time, across every tab of this tablet.
export async function syncNow(report = () => {}) {
  if (api.inChildMode()) return { skipped: "child mode" };
  const run = async () => {
    const device = await api.ensureDevice();
    await sendItems(device, report);
    await sendUploads(device, report);
    await refreshState(device);
    const left = await owed();
    report({ phase: "done", items: left.items, uploads: left.uploads });
    return left;
  };
  if (navigator.locks) return navigator.locks.request("childvoice-sync", run);
  return run();
}

// After a crash or a restore: drop what the server already holds.
async function refreshState(device) {
  const queue = await db.queued();
  if (!queue.length) return;
  const held = new Set();
  let cursor = "";
  for (let page = 0; page < 50; page += 1) {
    const state = await api.call(`/sync/state?device_id=${device.id}${cursor}`,
      { headers: { "X-Device-Key": device.device_key } });
    state.held.forEach((id) => held.add(id));
    if (!state.more || !state.cursor) break;
    cursor = `&cursor=${encodeURIComponent(state.cursor)}`;
  }
  const drop = queue.filter((item) => held.has(item.client_id)).map((item) => item.client_id);
  if (drop.length) await db.dequeue(drop);
}
