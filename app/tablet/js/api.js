// Talking to the service: the public API only, with the worker's staff token (kept as the
// sync protocol says: access token + refresh token, never the password). While child mode
// is on, no call with the staff token is made at all.
import * as db from "./db.js";

const BASE = "/api/v1";
let childMode = false;

export class ApiProblem extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `The service answered ${status}.`);
    this.status = status;
    this.problem = problem || {};
  }
}

export class Offline extends Error {
  constructor() {
    super("No connection to the service.");
  }
}

export function setChildMode(on) {
  childMode = on;
}

export function inChildMode() {
  return childMode;
}

export async function signedIn() {
  return db.get("auth");
}

export async function signIn(email, password) {
  const form = new URLSearchParams({ username: email, password });
  const response = await send(`${BASE}/auth/token`, { method: "POST", body: form });
  const tokens = await answer(response);
  await db.set("auth", { ...tokens, email });
  const me = await call("/users/me");
  await db.set("auth", { ...tokens, email, user: me });
  return me;
}

export async function signOut() {
  try {
    await call("/auth/logout", { method: "POST" });
  } catch (error) {
    // Signing out on the tablet works offline too; the server's sign-in then just expires.
  }
  await db.remove("auth");
}

async function refresh(auth) {
  const response = await send(`${BASE}/auth/refresh`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: auth.refresh_token }),
  });
  if (!response.ok) {
    await db.remove("auth");
    throw new ApiProblem(response.status, await problemOf(response));
  }
  const tokens = await response.json();
  const renewed = { ...auth, ...tokens };
  await db.set("auth", renewed);
  return renewed;
}

async function send(url, options) {
  try {
    return await fetch(url, { ...options, credentials: "omit", cache: "no-store" });
  } catch (error) {
    throw new Offline();
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch (error) {
    return null;
  }
}

async function answer(response) {
  if (!response.ok) throw new ApiProblem(response.status, await problemOf(response));
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response;
}

// A staff call: `path` below /api/v1; `json` is sent as the body; a 401 refreshes the
// access token once and tries again.
export async function raw(path, { method = "GET", json, body, headers = {} } = {}) {
  if (childMode) throw new Error("Child mode makes no calls with the worker's sign-in.");
  let auth = await db.get("auth");
  if (!auth) throw new ApiProblem(401, { detail: "Sign in first." });
  const attempt = (token) => {
    const all = { ...headers, Authorization: `Bearer ${token}` };
    let payload = body;
    if (json !== undefined) {
      all["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    }
    return send(path.startsWith("/api/") ? path : `${BASE}${path}`,
      { method, headers: all, body: payload });
  };
  let response = await attempt(auth.access_token);
  if (response.status === 401 && auth.refresh_token) {
    auth = await refresh(auth);
    response = await attempt(auth.access_token);
  }
  return response;
}

export async function call(path, options) {
  return answer(await raw(path, options));
}

export async function device() {
  return db.get("device");
}

// Enroll this tablet once: its id and key are kept for every sync.
export async function ensureDevice() {
  const existing = await db.get("device");
  const auth = await db.get("auth");
  if (existing && existing.user_id === auth.user.id) return existing;
  const enrolled = await call("/devices", { method: "POST", json: { name: "childvoice tablet" } });
  const kept = { id: enrolled.id, device_key: enrolled.device_key, user_id: auth.user.id,
    offline_until: enrolled.offline_until };
  await db.set("device", kept);
  return kept;
}
