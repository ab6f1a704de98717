// One websocket that reconnects by itself. The client id survives reloads of the tab,
// so a reconnecting page still owns (and can stop) the race it started.

function newId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// An embed on another site's page may be refused storage (third-party storage blocked, as in
// private windows and several browsers by default): it then keeps its id for this page's life.
function clientId() {
  try {
    let id = sessionStorage.getItem("headstart-client");
    if (!id) {
      id = newId();
      sessionStorage.setItem("headstart-client", id);
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
