// One websocket that reconnects by itself, always as the same client (client.js), so a
// reconnecting page still owns (and can stop) the race it started.

export class Socket {
  constructor(client, { onMessage, onOpen, onClose }) {
    this.handlers = { onMessage, onOpen, onClose };
    this.delay = 500;
    this.ws = null;
    client.then((id) => {
      this.url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?client=${id}`;
      this.connect();
    });
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
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }
}
