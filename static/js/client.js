// Who this page is to the server: a random id that survives reloads, so a reloaded page still
// owns (and can stop) the race it started, and that no other open page shares.

const CHANNEL = "headstart-clients";
const ASK_MS = 150; // an open page answers within a few milliseconds; a new one waits this long once

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

function answerFor(id) {
  try {
    const channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = (e) => e.data?.asks === id && channel.postMessage({ holds: id });
  } catch {
    // No channel (storage blocked): nothing could ask either.
  }
}

// Kept in sessionStorage, which survives a reload but is shared by the frames of one tab and
// copied into a duplicated tab. So each frame keeps its id under its own place (two embeds on
// one course page are two clients, and the second's Train is not refused as the first's second
// race), and a stored id that another open page still answers to is replaced (a duplicated tab
// could otherwise stop its original's race, and be refused a race of its own while that one
// trains). An embed on another site's page may be refused storage (third-party storage blocked,
// as in private windows and several browsers by default): it then keeps an id for this page's life.
export async function clientId() {
  let id = newId();
  try {
    const key = ["headstart-client", framePath()].filter(Boolean).join("@");
    const stored = sessionStorage.getItem(key);
    if (stored && !(await heldElsewhere(stored))) id = stored;
    else sessionStorage.setItem(key, id);
  } catch {
    // Storage refused: this page's own id.
  }
  answerFor(id);
  return id;
}
