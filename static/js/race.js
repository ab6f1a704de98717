// The race the page shows, with one explicit status and the transitions the protocol allows
// (docs/protocol.md). Its starter is the one page that may stop it (`mine`).
//
//   idle ──start──► queued ──plan──► training ──done/cancelled/error──► done | cancelled | failed
//     │               └──accepted (a replay)──► replay ──────────────────┘
//     └──watch──► watching (a race started elsewhere) ───────────────────┘
//
// Any status may begin another race (start, watch); `accepted` re-reads a race's history from
// its start, so it may arrive in any status.

export const RUNNING = ["queued", "training", "replay", "watching"];
export const FINISHED = ["done", "cancelled", "failed"];

const ALLOWED = {
  // `accepted` re-reads a race from idle: a replay starts there too. failed: a race a link named
  // that the server does not know.
  idle: ["queued", "watching", "replay", "failed"],
  queued: ["queued", "training", "replay", "watching", ...FINISHED],
  training: ["queued", "watching", ...FINISHED],
  replay: ["queued", "watching", ...FINISHED],
  watching: ["queued", "watching", "replay", ...FINISHED],
  done: ["queued", "watching"],
  cancelled: ["queued", "watching"],
  failed: ["queued", "watching"],
};

export class Race {
  // ``id``: a race a link named, to follow once the socket opens.
  constructor(id = null) {
    this.id = id; // null from a start until its `accepted` names it
    this.status = "idle";
    this.mine = false; // started by this page, which alone may stop it
    this.code = null; // a broadcast race's class code
    this.stopping = false; // this page asked to stop it
    this.reattaching = false; // following it again after the connection dropped mid-race
    this.plannedAt = null; // the worker's clock at its plan, to tell a viewer the time left
    this.replayOf = null; // the stored race it replays, if it is a replay
  }

  get running() {
    return RUNNING.includes(this.status);
  }

  get finished() {
    return FINISHED.includes(this.status);
  }

  // Whether it replays a stored race, while it streams and once it has ended.
  get replay() {
    return this.replayOf !== null;
  }

  // Move to ``status`` if the protocol allows it from here; a message the protocol does not
  // allow now (a late one from a race already left) changes nothing.
  to(status) {
    if (status === this.status && status !== "queued" && status !== "watching") return true;
    if (!ALLOWED[this.status].includes(status)) {
      console.warn(`race ${this.id}: ${this.status} → ${status} is not a transition the protocol allows`);
      return false;
    }
    this.status = status;
    return true;
  }

  // This page sends a start: its race is new, and this page's.
  start() {
    Object.assign(this, { id: null, code: null, stopping: false, plannedAt: null, replayOf: null });
    this.to("queued");
  }

  // This page follows a race by its id (a class code, a recent race, a reconnect).
  watch(id) {
    Object.assign(this, { id, stopping: false });
    this.to("watching");
  }

  // The server's `accepted`: the race's history begins again here.
  accepted(msg) {
    Object.assign(this, { id: msg.race_id, mine: Boolean(msg.yours), stopping: false, plannedAt: null, code: null });
    this.replayOf = msg.replay_of || null;
    this.status = "idle"; // history from the start: any earlier status is left behind
    this.to(this.replay ? "replay" : this.mine ? "queued" : "watching");
  }

  planned(msg) {
    this.plannedAt = msg.emitted_at;
    if (this.status === "queued") this.to("training");
  }

  end(status) {
    return this.to(status);
  }
}
