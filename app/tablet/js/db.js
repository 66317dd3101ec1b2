// The tablet's own storage: IndexedDB, which survives a closed tab, a reload and a flat
// battery. Three stores:
//   kv      settings and what was fetched for offline use (tokens, device, children, boards)
//   queue   every action, keyed by its client_id, in the order it happened (seq)
//   uploads photos and recordings waiting to go by tus, with their bytes and upload URL
const DB_NAME = "childvoice-tablet";
const DB_VERSION = 1;

let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains("kv")) db.createObjectStore("kv");
        if (!db.objectStoreNames.contains("queue")) {
          db.createObjectStore("queue", { keyPath: "client_id" }).createIndex("seq", "seq");
        }
        if (!db.objectStoreNames.contains("uploads")) {
          db.createObjectStore("uploads", { keyPath: "client_id" }).createIndex("seq", "seq");
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function store(name, mode = "readonly") {
  const db = await open();
  return db.transaction(name, mode).objectStore(name);
}

export async function get(key) {
  return done((await store("kv")).get(key));
}

export async function set(key, value) {
  return done((await store("kv", "readwrite")).put(value, key));
}

export async function remove(key) {
  return done((await store("kv", "readwrite")).delete(key));
}

// A strictly increasing number for ordering actions, kept across reloads.
async function nextSeq() {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("kv", "readwrite");
    const kv = tx.objectStore("kv");
    const read = kv.get("seq");
    read.onsuccess = () => {
      const seq = (read.result || 0) + 1;
      kv.put(seq, "seq");
      tx.oncomplete = () => resolve(seq);
    };
    tx.onerror = () => reject(tx.error);
  });
}

export async function enqueue(item) {
  const seq = await nextSeq();
  await done((await store("queue", "readwrite")).put({ ...item, seq }));
  return item;
}

export async function queued() {
  const index = (await store("queue")).index("seq");
  return done(index.getAll());
}

export async function dequeue(clientIds) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("queue", "readwrite");
    for (const id of clientIds) tx.objectStore("queue").delete(id);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

export async function updateQueued(item) {
  return done((await store("queue", "readwrite")).put(item));
}

export async function addUpload(upload) {
  const seq = await nextSeq();
  await done((await store("uploads", "readwrite")).put({ ...upload, seq }));
}

export async function uploads() {
  return done((await store("uploads")).index("seq").getAll());
}

export async function updateUpload(upload) {
  return done((await store("uploads", "readwrite")).put(upload));
}

export async function removeUpload(clientId) {
  return done((await store("uploads", "readwrite")).delete(clientId));
}

export function uuid() {
  return crypto.randomUUID();
}
