// The tablet's service worker: the app shell, and the boards' pictures and sounds, from the
// cache when there is no signal. API answers with children's data are never cached here
// (the app keeps what it needs in IndexedDB); board assets are immutable (a board version
// never changes), so a cached copy is always right.
const SHELL_CACHE = "childvoice-shell-v1";
const ASSET_CACHE = "childvoice-board-assets-v1";
const SHELL = [
  "/tablet/", "/tablet/index.html", "/tablet/tablet.css", "/tablet/manifest.webmanifest",
  "/tablet/icon-192.png", "/tablet/icon-512.png",
  "/tablet/js/main.js", "/tablet/js/api.js", "/tablet/js/db.js", "/tablet/js/sync.js",
  "/tablet/js/ui.js", "/tablet/js/worker.js", "/tablet/js/child.js", "/tablet/js/boards.js",
  "/tablet/img/like.svg", "/tablet/img/unsure.svg", "/tablet/img/dislike.svg",
];
const ASSET = /^\/api\/v1\/boards\/[^/]+\/versions\/\d+\/(images|sounds)\/[^/]+$/;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys
    .filter((key) => key !== SHELL_CACHE && key !== ASSET_CACHE)
    .map((key) => caches.delete(key)))).then(() => self.clients.claim()));
});

async function shell(request) {
  // Network first so a new version reaches the tablet; the cache when offline.
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    return (await cache.match("/tablet/")) || Response.error();
  }
}

async function asset(request) {
  const cache = await caches.open(ASSET_CACHE);
  const cached = await cache.match(request.url);
  if (cached) return cached;
  return fetch(request);
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/tablet/")) {
    event.respondWith(shell(event.request));
  } else if (ASSET.test(url.pathname)) {
    event.respondWith(asset(event.request));
  }
});
