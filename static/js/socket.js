// One websocket that reconnects by itself. The client id survives reloads of the tab,
// so a reconnecting page still owns (and can stop) the race it started.

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

// The frames of one tab share sessionStorage, so each keeps its id under its own place: two
// embeds on one course page are two clients, and the second's Train is not refused as the
// first's second race. An embed on another site's page may be refused storage (third-party
// storage blocked, as in private windows and several browsers by default): it then keeps its
// id for this page's life.
function clientId() {
  try {
    const key = ["headstart-client", framePath()].filter(Boolean).join("@");
    let id = sessionStorage.getItem(key);
    if (!id) {
      id = newId();
      sessionStorage.setItem(key, id);
    }
    return id;
  } catch {
    return newId();
  }
}

export class Socket {
  constructor({ onMessage, onOpen, onClose }) {
    this.handlers = { onMessage, onOpen, onClose };
    this.delay = 500;
    this.url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?client=${clientId()}`;
    this.connect();
  }

  connect() {
    this.ws = new WebSocket(this.url);
    this.ws.addEventListener("open", () => {
      this.delay = 500;
      this.handlers.onOpen();
    });
    this.ws.addEventListener("message", (e) => this.handlers.onMessage(JSON.parse(e.data)));
    this.ws.addEventListener("close", () => {
      this.handlers.onClose();
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
    });
  }

  get open() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }
}
