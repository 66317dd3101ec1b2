// What the tablet takes along for a visit with no signal: the children the worker holds,
// their personal boards and the library (GET /devices/{id}/boards), and every picture and
// sound on them, in the service worker's cache (board versions never change).
import * as api from "./api.js";
import * as db from "./db.js";

const ASSET_CACHE = "childvoice-board-assets-v1";

export function assetUrl(item) {
  return item ? item.ext_childvoice_url || item.url || null : null;
}

export async function refresh(report = () => {}) {
  const device = await api.ensureDevice();
  const held = await db.get("deviceBoards");
  const response = await api.raw(`/devices/${device.id}/boards`, {
    headers: { "X-Device-Key": device.device_key,
      ...(held && held.etag ? { "If-None-Match": held.etag } : {}) },
  });
  let boards = held;
  if (response.status === 200) {
    boards = { etag: response.headers.get("ETag"), body: await response.json() };
    await db.set("deviceBoards", boards);
  } else if (response.status !== 304) {
    throw new api.ApiProblem(response.status, await response.json().catch(() => null));
  }
  const children = await api.call("/children?limit=200");
  await db.set("children", children.items);
  await cacheAssets(boards.body, report);
  await db.set("refreshedAt", new Date().toISOString());
  return boards.body;
}

async function cacheAssets(body, report) {
  const cache = await caches.open(ASSET_CACHE);
  const urls = new Set();
  for (const board of allBoards(body)) {
    for (const item of [...(board.images || []), ...(board.sounds || [])]) {
      const url = assetUrl(item);
      if (url && url.startsWith("/api/")) urls.add(url);
    }
  }
  let done = 0;
  for (const url of urls) {
    if (!(await cache.match(url))) {
      const response = await api.raw(url);
      if (response.ok) await cache.put(url, response);
    }
    done += 1;
    report({ phase: "pictures", done, total: urls.size });
  }
}

function allBoards(body) {
  if (!body) return [];
  return [...body.children.flatMap((child) => child.boards), ...body.library];
}

export async function offline() {
  const held = await db.get("deviceBoards");
  return held ? held.body : null;
}

export async function children() {
  return (await db.get("children")) || [];
}

// The boards a worker may offer this child: their personal boards first, then the library.
export async function forChild(childId) {
  const body = await offline();
  if (!body) return { personal: [], library: [], preferences: {} };
  const mine = body.children.find((child) => child.child_id === childId);
  return { personal: mine ? mine.boards : [], library: body.library,
    preferences: mine ? mine.board_preferences : {} };
}

export async function byId(boardId) {
  return allBoards(await offline()).find((board) => board.id === boardId) || null;
}

// A board's buttons may open another board (OBF load_board): the child may go there too.
export async function linked(boardIds) {
  const body = await offline();
  const boards = allBoards(body);
  const seen = new Set(boardIds);
  const todo = [...boardIds];
  while (todo.length) {
    const board = boards.find((b) => b.id === todo.pop());
    if (!board) continue;
    for (const button of board.buttons) {
      const target = button.load_board && button.load_board.id;
      if (target && !seen.has(target) && boards.some((b) => b.id === target)) {
        seen.add(target);
        todo.push(target);
      }
    }
  }
  return [...seen];
}
