// The tablet app's start: the service worker (offline), then child mode if the tablet was
// left in it (a reload never opens the record), worker mode otherwise.
import * as api from "./api.js";
import * as child from "./child.js";
import * as worker from "./worker.js";
import { status } from "./ui.js";

worker.connectChildMode(child.enter);

async function start() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/tablet/sw.js", { scope: "/tablet/" }).catch(() => {
      status("This browser cannot keep the app for use without signal.");
    });
  }
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
  if (await child.resume()) return;
  if (await api.signedIn()) {
    await worker.home();
    worker.sendSoon();
  } else {
    worker.signInScreen();
  }
}

window.addEventListener("online", () => worker.sendSoon());
window.addEventListener("offline", () => status("Offline: everything is kept on this tablet."));
start();
