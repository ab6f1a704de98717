// The static site's stand-in for the server's websocket (socket.js: the same `send`, `open`
// and handlers). It answers a start with the race its bake recorded for those settings, and
// plays that race's messages back as the server sent them, each at its recorded moment, marked
// as a replay. Nothing here trains: every number is the recorded race's own.

import { api } from "./api.js";
import { seconds } from "./format.js";

// A race that trained longer than this is shown faster, and says how much; none is shown
// slower than it trained.
const LONGEST_MS = 10000;
const SHOWN = ["plan", "epoch", "predictions", "done"];

export class RecordedRaces {
  // ``recorded``: the bake's list of races (api/config.json's `recorded`).
  constructor(recorded, { onMessage, onOpen }) {
    this.recorded = recorded;
    this.onMessage = onMessage;
    this.playing = null; // {id, timers} of the race being played back
    this.about = null; // what the last race played was: where, when, how much faster it is shown
    setTimeout(onOpen, 0);
  }

  get open() {
    return true;
  }

  send(message) {
    this[message.type]?.(message);
    return true;
  }

  // The recorded race of exactly these settings: the page's controls offer no others.
  find(config) {
    const same = (a, b) => a === b || JSON.stringify(a) === JSON.stringify(b); // a set of lanes is a list
    return this.recorded.races.find((r) => Object.entries(r.config).every(([name, value]) => same(config[name], value)));
  }

  start({ config }) {
    const found = this.find(config);
    if (found) return this.play(found.id);
    this.emit({ type: "error", code: "not_recorded", message: "these settings were not recorded on this site: it replays only the races its bake recorded" });
  }

  watch({ race_id }) {
    this.play(race_id);
  }

  unwatch({ race_id }) {
    if (this.playing?.id === race_id) this.stop();
  }

  cancel({ race_id }) {
    if (this.playing?.id !== race_id) return;
    this.stop();
    this.emit({ type: "cancelled", race_id, reason: "stopped" });
  }

  stop() {
    for (const timer of this.playing?.timers ?? []) clearTimeout(timer);
    this.playing = null;
  }

  emit(message) {
    this.onMessage(message);
  }

  async play(id) {
    this.stop();
    const playing = (this.playing = { id, timers: [] });
    let race = null;
    try {
      const response = await fetch(api.race(id, ".json"));
      if (response.ok) race = await response.json();
    } catch {
      // Unreachable or unreadable: said below as a race this site does not hold.
    }
    if (this.playing !== playing) return; // another race was asked for meanwhile
    if (!race) {
      this.playing = null;
      return this.emit({ type: "error", code: "unknown_race", race_id: id, message: `this site holds no recorded race ${id}` });
    }
    const events = race.events.filter((e) => SHOWN.includes(e.type));
    const start = events[0].emitted_at;
    const span = 1000 * (events.at(-1).emitted_at - start);
    const scale = Math.min(1, LONGEST_MS / Math.max(span, 1));
    const day = new Date(race.created * 1000).toISOString().slice(0, 10);
    this.about = { device: race.device, day, speedup: 1 / scale, trained_s: span / 1000 };
    this.emit({ type: "accepted", race_id: id, config: race.config, replay_of: id, yours: true });
    for (const event of events) {
      const last = event === events.at(-1);
      const timer = setTimeout(() => {
        if (last) this.playing = null;
        this.emit({ ...event, race_id: id, replay: true });
      }, (event.emitted_at - start) * 1000 * scale);
      playing.timers.push(timer);
    }
  }

  // Where and when the race played back was recorded, and how fast it is shown.
  describe() {
    const { device, day, speedup, trained_s: trained } = this.about;
    const faster = speedup.toFixed(speedup < 10 ? 1 : 0);
    const pace = speedup > 1.05 ? `shown ${faster}× faster than the ${seconds(trained)} it trained` : "at the pace it trained";
    return { where: `recorded on ${device}, ${day}`, pace };
  }
}
