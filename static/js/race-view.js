// What the page does with each message the server sends about the race it shows: it moves the
// race's status (race.js) and redraws the controls, the strip, the chart and the status line.

import { percent, seconds, timeLeft, waitFor } from "./format.js";
import { sentence } from "./status.js";
import { api } from "./api.js";

const $ = (id) => document.getElementById(id);

export class RaceView {
  // ``parts``: the page's modules (``recorded``: a baked page's recorded races, else null);
  // ``actions``: what a message may make the page do next (follow another race, look up a
  // class code, wait for a fresh worker).
  constructor(parts, actions) {
    Object.assign(this, parts);
    this.actions = actions;
    this.labels = Object.fromEntries(this.config.strategies.map((s) => [s.name, s.label]));
  }

  // The buttons and export links, as the race's status allows.
  sync() {
    const { race } = this;
    $("train").disabled = race.running;
    $("stop").disabled = !race.running || !race.mine; // only the page that started a race may stop it
    this.controls.setDisabled(race.running);
    $("copy-watch").disabled = !race.id;
    // Per-image predictions exist once a race is done.
    for (const [id, ext, ready] of [["export-csv", ".csv", race.id], ["export-json", "", race.id], ["export-predictions", "/predictions.csv", race.id && race.status === "done"]]) {
      const link = $(id);
      link.href = ready ? api.race(race.id, ext) : "";
      link.classList.toggle("disabled", !ready);
      link.setAttribute("aria-disabled", String(!ready));
    }
  }

  // The page shows one race; a null id awaits the `accepted` of its own start. It unwatches a
  // race it leaves, but that race's messages already on their way still arrive.
  on(msg) {
    if (msg.race_id && this.race.id !== null && msg.race_id !== this.race.id) return;
    this[msg.type]?.(msg);
  }

  accepted(msg) {
    const { race, ui } = this;
    race.accepted(msg);
    ui.race = msg.race_id;
    Object.assign(ui, msg.config);
    this.controls.show();
    this.strip.show(ui);
    this.table.write(ui);
    this.chart.setLanes(msg.config.extra);
    this.chart.beginRace(msg.config.epochs);
    this.strip.resetCounters();
    this.outcome.clear();
    this.sync();
    const whose = race.mine ? "" : " (started elsewhere: only the page that started it can stop it)";
    // A student following a class race on a phone would see only disabled controls: the race
    // itself is what they came for. Only from the top, so a reader who scrolled stays put.
    const panel = document.querySelector(".race");
    if (!race.mine && window.scrollY === 0 && panel.getBoundingClientRect().top > window.innerHeight * 0.6) {
      panel.scrollIntoView({ block: "start" });
    }
    if (this.recorded) {
      const { where, pace } = this.recorded.describe();
      return this.status.set(`Replaying the race ${where}, ${pace}: this page replays recorded races, it does not train.`);
    }
    this.status.set((race.replay ? "These exact settings were trained before: replaying that race." : "Accepted; starting…") + whose);
  }

  broadcast(msg) {
    const { race, links } = this;
    const link = `${links.shared.replace(/^\w+:\/\//, "")}/w/${msg.code}`;
    // Said to the teacher when the code is new to the board, letter by letter so it is spelt,
    // not read as a word. The count of students beside it is shown, not read out at each arrival.
    if (race.mine && $("code-text").textContent !== msg.code) this.status.announce(`Class code ${[...msg.code].join(" ")}: the class opens ${link}.`);
    race.code = msg.code;
    $("code").hidden = false;
    $("code-viewers").textContent = "";
    $("code-text").textContent = msg.code;
    $("code-link").href = `${links.shared}/w/${msg.code}`;
    $("code-link").textContent = link;
    // For the teacher, whose laptop serves it (a proxy may reach it even so); a page following
    // the class is one the class already reached.
    $("code-unreachable").hidden = !race.mine || !links.local || this.config.reachable_by_others;
  }

  viewers(msg) {
    // For the teacher: whether the class has arrived. Its own page is one of the count.
    const others = msg.count - 1;
    $("code-viewers").textContent = !this.race.mine ? "" : others ? `${others} watching` : "No one else is watching yet";
  }

  next(msg) {
    // The class race's starter broadcast another under the same code: the class follows it.
    if (this.race.mine) return;
    this.actions.watch(msg.next_race_id);
    this.status.set(`The race with code ${msg.code} moved on to its next race: following it.`);
  }

  queued(msg) {
    // A wait is said once the server has timed a race; a paused race says why it stopped.
    const wait = waitFor(msg.wait_s);
    const where = `position ${msg.position}${wait ? `, ${wait}` : ""}`;
    this.status.set(
      msg.paused
        ? `Paused to let a smaller race from another address train; it resumes where it stopped (${where}).`
        : `Waiting in the queue: ${where}.`,
    );
  }

  plan(msg) {
    this.race.planned(msg);
    this.outcome.plan(msg);
    this.setDevice(msg.device);
    if (this.recorded) {
      const { where, pace } = this.recorded.describe();
      return this.status.set(`Replaying ${msg.train_size} images ${where}, ${pace}…`);
    }
    this.status.set(`${this.race.replay ? "Replaying" : "Training"} ${msg.train_size} images on ${msg.device}…`);
  }

  epoch(msg) {
    const { race, ui } = this;
    this.chart.add(msg);
    this.strip.update(msg);
    // Timed by the worker's own clock (emitted_at), so a viewer who joins late gets it right.
    const perEpoch = msg.replay || !race.plannedAt ? 0 : (msg.emitted_at - race.plannedAt) / msg.epoch;
    const left = timeLeft(perEpoch * (ui.epochs - msg.epoch));
    this.status.set(`Epoch ${msg.epoch} of ${ui.epochs}: ${this.labels[msg.strategy]} ${percent(msg.test_acc)}.${left ? ` ${left}.` : ""}`, "", { quiet: true });
  }

  predictions(msg) {
    this.outcome.predictions(msg);
  }

  done(msg) {
    this.race.end("done");
    this.sync();
    this.outcome.done(msg);
    const best = Object.entries(msg.summary).sort((a, b) => b[1].final_test_acc - a[1].final_test_acc)[0];
    const recorded = this.recorded ? ` the race ${this.recorded.describe().where}` : "";
    const when = this.race.replay ? `Replayed${recorded} (trained in ${seconds(msg.wall_s)})` : `Done in ${seconds(msg.wall_s)}`;
    this.status.set(`${when}. ${this.labels[best[0]]} leads with ${percent(best[1].final_test_acc)}.`, "done");
  }

  cancelled(msg) {
    this.race.end("cancelled");
    this.sync();
    const reached = Math.max(0, ...this.chart.current.map((e) => e.epoch));
    const where = reached ? ` after epoch ${reached} of ${this.ui.epochs}` : " before its first epoch";
    // The page that pressed Stop needs no reason; its viewers and an orphaned race do.
    this.status.set(this.race.stopping ? `Stopped${where}.` : `Stopped${where}: ${msg.reason}.`);
  }

  error(msg) {
    const { race, ui, config } = this;
    // Without a race id, an error refuses what this page just asked for (its start, still
    // unnamed), or is the server giving up on its worker, which concerns no race of this page's:
    // a race still streaming (a replay) is left to show its end.
    const refusedStart = race.id === null && race.running && !msg.race_id;
    const serverWide = msg.code === "worker_unavailable" && !msg.race_id && !refusedStart;
    if (msg.race_id === race.id || (!msg.race_id && race.running && !serverWide)) {
      if (msg.race_id || refusedStart) race.end("failed");
      this.sync();
    }
    if (msg.code === "worker_unavailable") {
      // Every page hears it, idle ones too, not only at their next Train. The worker_error kept
      // is its whole sentence here: it only has to stop the asking. The device went with the worker.
      Object.assign(config, { worker_error: config.worker_error || msg.message, device: null });
      if (race.running) return;
      this.setDevice(null);
      this.status.cannotTrain(msg.message);
      return;
    }
    if (msg.code === "unknown_race" && msg.race_id === race.id) {
      // Unfinished races live in the server's memory only: a restart loses them.
      ui.race = null;
      this.table.write(ui);
      if (this.recorded) return this.status.set(`${sentence(msg.message)}: choose settings and press Train all three to replay one it holds.`, "error");
      if (race.code && !race.mine) return this.actions.join(race.code); // its class code outlives the restart
      const gone = race.reattaching ? "The server restarted before this race finished, so it is gone" : "That race is not on this server (it may have restarted before the race finished)";
      const again = race.code ? ` Broadcast again: it keeps the code ${race.code}, and the class's pages follow.` : "";
      return this.status.set(`${gone}: press Train all three to run it again.${again}`, "error");
    }
    this.status.set(`Error: ${msg.message}`, "error");
    if (msg.code === "worker_died" && msg.race_id === race.id) {
      // What stopped it may stop its replacement too: the page learns which, as when it opened,
      // rather than at the next press of Train.
      config.device = null;
      this.actions.awaitWorker(() => {
        // Said to its starter: a class following it waits for its teacher's next race.
        if (race.id === msg.race_id && race.mine && !race.running) this.status.set("A fresh training worker is ready: press Train all three to run the race again.");
      });
    }
  }
}
