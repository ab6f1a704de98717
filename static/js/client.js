// Who this page is to the server: a random id that survives reloads, so a reloaded page still
// owns (and can stop) the race it started, and that no other open page shares.

const CHANNEL = "headstart-clients";
const ASK_MS = 150; // an open page answers within a few milliseconds; a new one waits this long once
const CLAIM_MS = 1000; // a reload's old page lets go of its lock at once; a duplicate waits this long once

function newId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Where this page sits among a course page's frames ("" at the top, "1" for the second iframe),
// the same after a reload. Comparing window proxies is allowed across origins.
function framePath() {
  const path = [];
  for (let w = window; w !== w.parent; w = w.parent) {
    const siblings = w.parent.frames;
    let i = 0;
    while (i < siblings.length && siblings[i] !== w) i++;
    path.unshift(i);
  }
  return path.join(".");
}

// Whether another open page (a tab duplicated from this one) answers to ``id``.
function heldElsewhere(id) {
  return new Promise((resolve) => {
    let channel;
    try {
      channel = new BroadcastChannel(CHANNEL);
    } catch {
      return resolve(false);
    }
    const done = (held) => {
      clearTimeout(timer);
      channel.close();
      resolve(held);
    };
    const timer = setTimeout(() => done(false), ASK_MS);
    channel.onmessage = (e) => e.data?.holds === id && done(true);
    channel.postMessage({ asks: id });
  });
}

// Whether this page may be ``id``, held from now on while it is open. Where the Web Locks API
// exists (a secure context: https, localhost) each open page holds a lock named for its id, so a
// duplicated tab is told for certain however busy its original is; a reload waits for its old
// page to let go. Elsewhere (a LAN address over http) the open pages are asked.
async function claim(id) {
  if (!navigator.locks) return !(await heldElsewhere(id));
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), CLAIM_MS);
  return new Promise((resolve) => {
    navigator.locks
      .request(`${CHANNEL}:${id}`, { signal: controller.signal }, () => {
        clearTimeout(timer);
        resolve(true);
        return new Promise(() => {}); // held until this page is gone
      })
      .catch(() => resolve(false)); // not granted in time: another open page is this id
  });
}

function answerFor(id) {
  try {
    const channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = (e) => e.data?.asks === id && channel.postMessage({ holds: id });
  } catch {
    // No channel (storage blocked): nothing could ask either.
  }
}

// Kept in sessionStorage under this frame's place, so a reload keeps it and two embeds on one
// page are two clients; an id another open page still answers to (a duplicated tab) is replaced.
// Why each part: docs/reliability.md, "Who a page is".
export async function clientId() {
  let id = newId();
  try {
    const key = ["headstart-client", framePath()].filter(Boolean).join("@");
    const stored = sessionStorage.getItem(key);
    if (stored && (await claim(stored))) id = stored;
    else {
      sessionStorage.setItem(key, id);
      await claim(id); // new, so free at once
    }
  } catch {
    // Storage refused: this page's own id.
  }
  answerFor(id);
  return id;
}
