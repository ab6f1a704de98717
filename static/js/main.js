// Entry module: wires the state, the controls, the strip, the chart and the socket.

import * as state from "./state.js";
import { Controls } from "./controls.js";
import { Strip } from "./strip.js";
import { RaceChart } from "./chart.js";
import { Socket } from "./socket.js";
import { clientId } from "./client.js";
import { bindJoin, bindRecent } from "./classroom.js";
import { SweepPanel } from "./sweep.js";
import { seconds, STRATEGY_LABELS, percent, timeLeft } from "./format.js";

const $ = (id) => document.getElementById(id);
const isLoopback = (hostname) => hostname === "localhost" || hostname.startsWith("127.") || hostname === "[::1]";
const sentence = (text) => text.replace(/^./, (c) => c.toUpperCase());

// Why fine-tune starts slower than frozen: it warms up, by design, to spare the pretrained units.
function scheduleNote({ warmup_epochs: warm, cosine_decay: cosine }) {
  const parts = [];
  if (warm > 0) parts.push(`Fine-tune ramps its rates up over its first ${warm} epoch${warm === 1 ? "" : "s"}, so the new head's random first steps do not disturb the pretrained units.`);
  if (cosine) parts.push("Every rate then decays along a cosine to zero by the last epoch.");
  return parts.join(" ");
}

async function boot() {
  const client = clientId(); // settled while the config loads (a stored id is first checked with open pages)
  const config = await (await fetch("/api/config")).json();
  const ui = state.fromUrl(config.limits);
  for (const name of ui.hide) document.querySelectorAll(`[data-control="${name}"]`).forEach((el) => (el.hidden = true));
  // An author testing an embed sees a misspelt name at once, rather than a control that stays.
  const hideable = [...new Set([...document.querySelectorAll("[data-control]")].map((el) => el.dataset.control))].sort();
  const unknown = [...ui.hide].filter((name) => !hideable.includes(name));
  if (unknown.length) ui.problems.push(`hide= names nothing called ${unknown.map((n) => `"${n}"`).join(", ")}; it can hide ${hideable.join(", ")}.`);

  const strip = new Strip($("strip"), config.units, config.strategies);
  const chart = new RaceChart($("chart"), config.strategies);
  const race = { id: ui.race, code: null, running: false, finished: false, replay: false, mine: false, stopping: false, plannedAt: null };
  // What a screen reader reads out: one hidden live region, so that only what is said here is
  // heard, not every change of the page's text.
  const announce = (text) => ($("announce").textContent = text);
  // Shown every time; read out unless ``quiet``: a race's progress changes several times a
  // second, and a queue of stale epochs read aloud would drown out its result.
  const setStatus = (text, kind = "", { quiet = false } = {}) => {
    $("status").textContent = text;
    $("status").dataset.kind = kind;
    if (!quiet) announce(text);
  };
  // What links given to others start with. Opened at 127.0.0.1 on the laptop that serves it,
  // the page would hand out an address that names each reader's own machine: the server's
  // network address instead, where it has one.
  const local = isLoopback(window.location.hostname);
  const shared = local && config.class_address ? `${window.location.protocol}//${config.class_address}` : window.location.origin;
  const setDevice = (device) => ($("device").textContent = device ? `Training on ${device}` : "");
  // Why nothing can train here: said as the page opens, when the server gives up on its worker,
  // and when a Train is refused, in the same words each time.
  const cannotTrain = (why) => setStatus(`${sentence(why)} Races it finished before can still be watched.`, "error");
  const sayCannotTrain = () => cannotTrain(`this server cannot train: ${config.worker_error}`);
  setDevice(config.device);
  $("schedule-note").textContent = scheduleNote(config.schedule);

  let sweep = null;
  const controls = new Controls(config, ui, (name) => {
    if (name === "frozen") strip.setFrozen(ui.frozen);
    if (name === "n") sweep?.refresh();
    if (name === "epochs") chart.expectEpochs(ui.epochs);
    state.toUrl(ui);
  }, (problem) => setStatus(problem, "error"));
  strip.setFrozen(ui.frozen);
  chart.expectEpochs(ui.epochs);

  const setRunning = (running) => {
    race.running = running;
    $("train").disabled = running;
    $("stop").disabled = !running || !race.mine; // only the page that started a race may stop it
    controls.setDisabled(running);
    $("copy-watch").disabled = !race.id;
    for (const [id, ext] of [["export-csv", ".csv"], ["export-json", ""]]) {
      const link = $(id);
      link.href = race.id ? `/api/races/${race.id}${ext}` : "";
      link.classList.toggle("disabled", !race.id);
      link.setAttribute("aria-disabled", String(!race.id));
    }
  };

  const handlers = {
    accepted(msg) {
      race.id = msg.race_id;
      race.finished = race.stopping = false;
      race.plannedAt = race.code = null; // a broadcast race's code follows in its own message
      ui.race = msg.race_id;
      Object.assign(ui, msg.config);
      controls.show();
      strip.setFrozen(ui.frozen);
      state.toUrl(ui);
      chart.beginRace(msg.config.epochs);
      strip.resetCounters();
      race.mine = Boolean(msg.yours);
      setRunning(true);
      race.replay = Boolean(msg.replay_of);
      const whose = race.mine ? "" : " (started elsewhere: only the page that started it can stop it)";
      // A student following a class race on a phone would see only disabled controls: the race
      // itself is what they came for. Only from the top, so a reader who scrolled stays put.
      const panel = document.querySelector(".race");
      if (!race.mine && window.scrollY === 0 && panel.getBoundingClientRect().top > window.innerHeight * 0.6) {
        panel.scrollIntoView({ block: "start" });
      }
      setStatus((race.replay ? "These exact settings were trained before: replaying that race." : "Accepted; starting…") + whose);
    },
    broadcast(msg) {
      const link = `${shared.replace(/^\w+:\/\//, "")}/w/${msg.code}`;
      // Said to the teacher when the code is new to the board, letter by letter so it is spelt,
      // not read as a word. The count of students beside it is shown, not read out at each arrival.
      if (race.mine && $("code-text").textContent !== msg.code) announce(`Class code ${[...msg.code].join(" ")}: the class opens ${link}.`);
      race.code = msg.code;
      $("code").hidden = false;
      $("code-viewers").textContent = "";
      $("code-text").textContent = msg.code;
      $("code-link").href = `${shared}/w/${msg.code}`;
      $("code-link").textContent = link;
      // For the teacher, whose laptop serves it (a proxy may reach it even so); a page following
      // the class is one the class already reached.
      $("code-unreachable").hidden = !race.mine || !local || config.reachable_by_others;
    },
    viewers(msg) {
      // For the teacher: whether the class has arrived. Its own page is one of the count.
      const others = msg.count - 1;
      $("code-viewers").textContent = !race.mine ? "" : others ? `${others} watching` : "No one else is watching yet";
    },
    next(msg) {
      // The class race's starter broadcast another under the same code: the class follows it.
      if (race.mine) return;
      watch(msg.next_race_id);
      setStatus(`The race with code ${msg.code} moved on to its next race: following it.`);
    },
    queued(msg) {
      setStatus(`Waiting in the queue: position ${msg.position}.`);
    },
    plan(msg) {
      race.plannedAt = msg.emitted_at;
      setDevice(msg.device);
      setStatus(`${race.replay ? "Replaying" : "Training"} ${msg.train_size} images on ${msg.device}…`);
    },
    epoch(msg) {
      chart.add(msg);
      strip.update(msg);
      // Timed by the worker's own clock (emitted_at), so a viewer who joins late gets it right.
      const perEpoch = msg.replay || !race.plannedAt ? 0 : (msg.emitted_at - race.plannedAt) / msg.epoch;
      const left = timeLeft(perEpoch * (ui.epochs - msg.epoch));
      setStatus(`Epoch ${msg.epoch} of ${ui.epochs}: ${STRATEGY_LABELS[msg.strategy]} ${percent(msg.test_acc)}.${left ? ` ${left}.` : ""}`, "", { quiet: true });
    },
    done(msg) {
      race.finished = true;
      setRunning(false);
      const best = Object.entries(msg.summary).sort((a, b) => b[1].final_test_acc - a[1].final_test_acc)[0];
      const when = race.replay ? `Replayed (trained in ${seconds(msg.wall_s)})` : `Done in ${seconds(msg.wall_s)}`;
      setStatus(`${when}. ${STRATEGY_LABELS[best[0]]} leads with ${percent(best[1].final_test_acc)}.`, "done");
    },
    cancelled(msg) {
      race.finished = true;
      setRunning(false);
      const reached = Math.max(0, ...chart.current.map((e) => e.epoch));
      const where = reached ? ` after epoch ${reached} of ${ui.epochs}` : " before its first epoch";
      // The page that pressed Stop needs no reason; its viewers and an orphaned race do.
      setStatus(race.stopping ? `Stopped${where}.` : `Stopped${where}: ${msg.reason}.`);
    },
    error(msg) {
      // Without a race id, the server giving up on its worker concerns no race of this page's:
      // a race still streaming (a replay) is left to show its end.
      const serverWide = msg.code === "worker_unavailable" && !msg.race_id;
      if (msg.race_id === race.id || (!msg.race_id && race.running && !serverWide)) {
        if (msg.race_id) race.finished = true;
        setRunning(false);
      }
      if (msg.code === "worker_unavailable") {
        // Every page hears it, idle ones too, not only at their next Train. The worker_error kept
        // is its whole sentence here: it only has to stop the asking. The device went with the worker.
        Object.assign(config, { worker_error: config.worker_error || msg.message, device: null });
        if (race.running) return;
        setDevice(null);
        cannotTrain(msg.message);
        return;
      }
      if (msg.code === "unknown_race" && msg.race_id === race.id) {
        // Unfinished races live in the server's memory only: a restart loses them.
        ui.race = null;
        state.toUrl(ui);
        if (race.code && !race.mine) return joining.join(race.code); // its class code outlives the restart
        const gone = race.reattaching ? "The server restarted before this race finished, so it is gone" : "That race is not on this server (it may have restarted before the race finished)";
        const again = race.code ? ` Broadcast again: it keeps the code ${race.code}, and the class's pages follow.` : "";
        return setStatus(`${gone}: press Train all three to run it again.${again}`, "error");
      }
      setStatus(`Error: ${msg.message}`, "error");
      if (msg.code === "worker_died" && msg.race_id === race.id) {
        // What stopped it may stop its replacement too: the page learns which, as when it opened,
        // rather than at the next press of Train.
        config.device = null;
        awaitWorker(() => {
          // Said to its starter: a class following it waits for its teacher's next race.
          if (race.id === msg.race_id && race.mine && !race.running) setStatus("A fresh training worker is ready: press Train all three to run the race again.");
        });
      }
    },
  };

  const socket = new Socket(client, {
    onMessage(msg) {
      // The page shows one race; a null id awaits the `accepted` of its own start. It unwatches a
      // race it leaves, but that race's messages already on their way still arrive.
      if (msg.race_id && race.id !== null && msg.race_id !== race.id) return;
      handlers[msg.type]?.(msg);
    },
    onOpen() {
      // Re-attach to the race we were showing: its history replays from the start, after an
      // `accepted` that clears the chart (so a race the server lost stays drawn as far as it got).
      // A finished class race too: its viewers are the ones told of the teacher's next race.
      if (race.id && (!race.finished || (race.code && !race.mine))) {
        race.reattaching = race.running;
        socket.send({ type: "watch", race_id: race.id });
      } else if (!race.running && $("status").dataset.kind === "lost") setStatus("Reconnected.");
    },
    onClose() {
      $("code-viewers").textContent = ""; // a count from before the connection dropped is stale
      setStatus("Connection lost; reconnecting…", "lost");
    },
  });

  // The page shows one race: the one it leaves need not be sent to it any more.
  const leave = (next = null) => {
    joining.stop();
    if (race.id && race.id !== next) socket.send({ type: "unwatch", race_id: race.id });
  };
  $("train").addEventListener("click", () => {
    if (!socket.open) return setStatus("Not connected yet; try again in a moment.", "error");
    chart.startRace(ui.epochs);
    $("ghost-note").hidden = !chart.hasPrevious();
    $("code").hidden = true;
    leave();
    socket.send({ type: "start", config: state.config(ui), broadcast: $("broadcast").checked });
    race.id = null; // its id comes with `accepted`
  });
  $("stop").addEventListener("click", () => {
    race.stopping = socket.send({ type: "cancel", race_id: race.id });
  });
  $("metric").addEventListener("change", (e) => {
    chart.setMetric(e.target.value);
    $("chart-title").textContent = sentence(e.target.selectedOptions[0].textContent);
  });
  $("xaxis").addEventListener("change", (e) => chart.setX(e.target.value));

  const copy = async (text, what) => {
    try {
      await navigator.clipboard.writeText(text);
      setStatus(`${what} copied.`);
    } catch {
      window.prompt(`Copy the ${what.toLowerCase()}:`, text);
    }
  };
  $("copy-link").addEventListener("click", () => copy(`${shared}/?${state.query(ui)}`, "Link"));
  $("copy-watch").addEventListener("click", () => copy(`${shared}/?${state.query(ui, { withRace: true })}`, "Watch link"));
  $("copy-embed").addEventListener("click", () =>
    copy(`<iframe src="${shared}/embed?${state.query(ui)}" width="640" height="480" style="border:0" title="Headstart"></iframe>`, "Embed code"),
  );
  $("export-png").addEventListener("click", () => {
    const a = document.createElement("a");
    const locks = `fine-tune locks ${ui.frozen} unit${ui.frozen === 1 ? "" : "s"}`;
    a.href = chart.png(`${ui.n.toLocaleString("en")} target images, ${locks}, ${ui.epochs} epochs, seed ${ui.seed}`);
    a.download = `headstart-${race.id || "chart"}.png`;
    a.click();
  });

  // Follow another race (a class code, a recent race): its history replays into the chart.
  const watch = (raceId) => {
    if (race.running && race.mine) return setStatus("Your race is still training: stop it, or let it finish, before watching another.");
    chart.startRace();
    $("ghost-note").hidden = !chart.hasPrevious();
    leave(raceId);
    Object.assign(race, { id: raceId, finished: false });
    socket.send({ type: "watch", race_id: raceId });
  };
  const joining = bindJoin($("join"), $("join-code"), {
    onRace: watch,
    onError: (message) => setStatus(sentence(message), "error"),
    onWaiting: (code) => setStatus(`Waiting for the next race under code ${code}: the last one did not finish before the server restarted. It shows here as soon as it starts.`),
  });
  bindRecent($("recent"), $("recent-list"), watch);

  // The big picture: every size of the shipped sweep; clicking one sets up that race.
  sweep = new SweepPanel($("sweep-chart"), {
    readout: $("sweep-readout"),
    currentN: () => ui.n,
    onPick(picked) {
      if (race.running) return setStatus("A race is running: pick a size from the sweep when it ends.");
      // The shipped sweep reaches sizes a smaller dataset on this server may not hold.
      const n = state.fit("n", String(picked.n), config.limits.n).value;
      Object.assign(ui, picked, { n });
      controls.show();
      strip.setFrozen(ui.frozen);
      state.toUrl(ui);
      sweep.refresh();
      const shown = (v) => v.toLocaleString("en");
      setStatus(n === picked.n
        ? `Loaded ${shown(n)} images from the sweep. Press Train to race it.`
        : `This server's data holds at most ${shown(n)} target images, not the sweep's ${shown(picked.n)}: loaded ${shown(n)}. Press Train to race it.`);
    },
  });
  if (!ui.hide.has("sweep")) {
    sweep.load().then(
      (found) => {
        $("sweep").hidden = !found;
        if (found) sweep.show();
      },
      () => {},
    );
  }

  setRunning(false);
  if (ui.join !== null) {
    // Looked up as if typed, so the code stays in the box to correct and the status says what was wrong.
    $("join-code").value = ui.join.slice(0, 4);
    joining.join(ui.join);
    state.toUrl(ui);
  } else if (ui.race) setStatus("Joining the race…");
  else if (ui.problems.length) setStatus(`Part of this link could not be used as given. ${ui.problems.join(" ")}`, "error");
  // Said at once, rather than "Ready." until the first press of Train is refused.
  if (config.worker_error) sayCannotTrain();
  // Opened while the server's worker still loads (or while it replaces one that died), the page
  // has no device: it asks again until the worker is up, then calls ``whenUp``, or cannot start.
  // So the data slider stops at what this server's dataset holds, and a failure is said before
  // Train is pressed.
  const awaitWorker = async (whenUp = () => {}) => {
    for (let tries = 0; tries < 180 && !config.device && !config.worker_error; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const fresh = await fetch("/api/config").then((r) => r.json(), () => null);
      if (!fresh?.device && !fresh?.worker_error) continue;
      Object.assign(config, { device: fresh.device, worker_error: fresh.worker_error });
      if (!race.id) setDevice(config.device);
      if (config.worker_error) return sayCannotTrain();
      whenUp();
      if (fresh.limits.n.max === config.limits.n.max) return;
      Object.assign(config.limits.n, fresh.limits.n); // in place: the controls hold this object
      const { value, problem } = state.fit("n", String(ui.n), config.limits.n);
      controls.set("n", value);
      if (problem) setStatus(`This server's dataset holds fewer images than the settings allow. ${problem}`, "error");
      return;
    }
  };
  awaitWorker();
  // Exposed for end-to-end tests and curious students: the live state, read-only by intent.
  window.headstart = { ui, race, chart, sweep };
}

boot().catch((err) => {
  for (const id of ["status", "announce"]) document.getElementById(id).textContent = `Could not start: ${err.message}`;
});
