// Entry module: builds the parts (the state, the strip, the chart, the panels, the controls, the
// race and its socket) and wires them together; what each does is in its own module.

import { StateTable } from "./state.js";
import { Controls, hideControls } from "./controls.js";
import { Race } from "./race.js";
import { RaceView } from "./race-view.js";
import { Strip } from "./strip.js";
import { RaceChart } from "./chart.js";
import { Socket } from "./socket.js";
import { clientId } from "./client.js";
import { bindJoin, bindRecent } from "./classroom.js";
import { bindShare } from "./share.js";
import { Panels } from "./panels.js";
import { StatusLine, sentence } from "./status.js";
import { scheduleNote } from "./format.js";
import { workerWatch } from "./server-state.js";
import { api, recorded } from "./api.js";
import { RecordedRaces } from "./recorded.js";
import { DataRow } from "./data-row.js";
import { Outcome } from "./outcome.js";
import { YourImages, adopt, register, unknownUpload } from "./uploads.js";
import { LessonView, applyPreset, bindPicker, hiddenBy, lessonFor, link as lessonLink } from "./lesson.js";

const $ = (id) => document.getElementById(id);
const isLoopback = (hostname) => hostname === "localhost" || hostname.startsWith("127.") || hostname === "[::1]";

async function boot() {
  const client = clientId(); // settled while the config loads (a stored id is first checked with open pages)
  const config = await (await fetch(api.config)).json();
  // An uploaded dataset a link names is not in the menu the server lists: fetched by its id first.
  const lost = recorded ? null : await adopt(config, new URLSearchParams(window.location.search).get("dataset"));
  const table = new StateTable(config.fields);
  const ui = table.read();
  if (lost) ui.problems.unshift(`${lost.replace(/\.$/, "")}.`);
  // A guided lesson starts from its own race, and shows only what it asks about.
  const lesson = lessonFor(config);
  if (lesson) applyPreset(lesson, table, ui);
  else if (ui.lesson) {
    ui.problems.push(`There is no lesson "${ui.lesson}"; the lessons are ${config.lessons.map((l) => l.id).join(", ")}.`);
    ui.lesson = null;
  }
  const status = new StatusLine($("status"), $("announce"));
  const labels = Object.fromEntries(config.strategies.map((s) => [s.name, s.label]));
  const strip = new Strip($("strip"), config.units, config.strategies, { sources: table.field("source")?.options, bodies: table.field("body")?.options });
  // The chosen body's units, its head sized for the chosen dataset's classes, and those classes.
  const task = () => {
    const body = config.bodies?.[ui.body];
    const classes = config.datasets?.[ui.dataset]?.classes ?? config.classes;
    if (!body) return { units: config.units, classes };
    const head = body.feature_dim * classes.length + classes.length;
    return { units: body.units.map((u) => (u.name === "head" ? { ...u, params: head } : u)), classes };
  };
  const chart = new RaceChart($("chart"), config.strategies);
  const outcome = new Outcome($("outcome"), config.strategies, { dataset: table.field("dataset")?.default, body: table.field("body")?.default });
  const dataRow = new DataRow($("data-row"));
  const race = new Race(ui.race);
  // What links given to others start with. Opened at 127.0.0.1 on the laptop that serves it,
  // the page would hand out an address that names each reader's own machine: the server's
  // network address instead, where it has one.
  // A baked site may sit in any folder: its links name that folder.
  const local = isLoopback(window.location.hostname);
  const here = recorded ? new URL(".", window.location.href).href.replace(/\/$/, "") : window.location.origin;
  const links = { local, shared: local && config.class_address ? `${window.location.protocol}//${config.class_address}` : here };
  const when = config.recorded?.dates.join(" to ");
  const setDevice = (device) => ($("device").textContent = !device ? "" : recorded ? `Races recorded on ${device}, ${when}: replayed here, not trained` : `Training on ${device}`);
  setDevice(config.device);
  $("schedule-note").textContent = scheduleNote(config.schedule);

  // The button says how many lanes it races: three, or up to five with the extra ones.
  const nameTrain = () => ($("train").textContent = `Train all ${["three", "four", "five"][(ui.extra ?? []).length] ?? ""}`);
  // A point picked in a panel is loaded once no race runs (``loadPicked``, below).
  const panels = new Panels({
    ui,
    labels,
    onPick(picked, said) {
      if (race.running) return status.set("A race is running: pick from a panel when it ends.");
      loadPicked(picked, said);
    },
  });
  const roots = { task: $("fields-task"), basic: $("fields-basic"), keep: $("fields-keep"), extra: $("fields-extra"), advanced: $("fields-advanced") };
  const controls = new Controls(config, table, ui, roots, {
    onChange(name) {
      if (name === "body" || name === "dataset") {
        const { units, classes } = task();
        strip.setUnits(units);
        controls.setTask(units, classes);
      }
      // A dataset smaller than the race asked of it: the most it can give, said.
      const capacity = config.datasets?.[ui.dataset]?.capacity;
      if (name === "dataset" && capacity && ui.n > capacity) {
        controls.set("n", capacity);
        status.set(`This dataset holds ${capacity.toLocaleString("en")} training images a race can learn from: the data size is now ${capacity.toLocaleString("en")}.`);
      }
      if (["locked", "source", "extra", "lora_rank", "body", "dataset"].includes(name)) strip.show(ui);
      if (name === "extra") {
        chart.setLanes(ui.extra);
        nameTrain();
      }
      if (name === "source") panels.sourceChanged();
      if (["dataset", "body", "source"].includes(name)) dataRow.show(ui);
      panels.mark(ui);
      if (name === "epochs") chart.expectEpochs(ui.epochs);
      table.write(ui);
    },
    onProblem: (problem) => status.set(problem, "error"),
  });
  const lessonHidden = lesson ? hiddenBy(lesson, config) : [];
  ui.lessonHide = new Set(lessonHidden); // not written to links: the lesson's id says it
  ui.lessonPanel = lesson?.panel ?? null;
  hideControls(ui, recorded, lessonHidden);
  bindPicker(config, lesson);
  // A class race's prediction is counted for it (one per page, no names); `socket` is made below.
  const sendPrediction = (answer) => race.code && !race.mine && race.id && socket.send({ type: "predict", race_id: race.id, answer });
  const lessonView = lesson ? new LessonView(config, lesson, { labels, status, onPredict: sendPrediction }) : null;
  let raceLesson = null; // the lesson the race shown was started in
  if (!recorded) {
    new YourImages(config, {
      onUploaded(answer) {
        register(config, controls, answer);
        controls.set("dataset", answer.id);
        status.set(`Your images are the dataset now: press Train to race on them. A link copied from this page opens them too.`, "done");
      },
      onDeleted(id) {
        controls.removeOption("dataset", id);
        delete config.datasets[id];
      },
    });
  }
  {
    const { units, classes } = task();
    strip.setUnits(units);
    controls.setTask(units, classes);
  }
  strip.show(ui);
  dataRow.show(ui);
  chart.setLanes(ui.extra);
  nameTrain();
  chart.expectEpochs(ui.epochs);

  const worker = workerWatch({ config, table, ui, race, controls, status, setDevice });
  const actions = {};
  let view = null;
  const handlers = {
    onMessage(msg) {
      view.on(msg);
      if (msg.race_id && msg.race_id !== race.id) return;
      if (msg.type === "plan") lessonView?.plan(msg);
      if (msg.type === "done") lessonView?.done(msg);
      if (msg.type === "tally") lessonView?.tally(msg.counts);
      if (msg.type === "accepted") raceLesson = msg.lesson ?? null;
      // A class follows its teacher: a class race in another lesson takes this page there, still following the code.
      if (msg.type === "broadcast" && !race.mine) {
        if (raceLesson !== (lesson?.id ?? null)) window.location.assign(lessonLink(raceLesson, msg.code));
        else if (lessonView?.predicted) sendPrediction(lessonView.predicted);
      }
      // A watched race on an upload this page has not seen: its menu option, fetched by its id.
      const dataset = msg.config?.dataset;
      if (msg.type === "accepted" && unknownUpload(config, dataset)) {
        adopt(config, dataset).then((problem) => {
          if (problem) return status.set(`${problem.replace(/\.$/, "")}.`, "error");
          controls.addOption("dataset", config.fields.find((f) => f.name === "dataset").options.find((o) => o.value === dataset));
          controls.show();
          dataRow.show(ui);
        });
      }
    },
    onOpen() {
      if (queued) return start(queued);
      // Re-attach to the race we were showing: its history replays from the start, after an
      // `accepted` that clears the chart (so a race the server lost stays drawn as far as it got).
      // A finished class race too: its viewers are the ones told of the teacher's next race.
      if (race.id && (!race.finished || (race.code && !race.mine))) {
        race.reattaching = race.running;
        socket.send({ type: "watch", race_id: race.id });
      } else if (!race.running && status.kind === "lost") status.set("Reconnected.");
    },
    onClose() {
      $("code-viewers").textContent = ""; // a count from before the connection dropped is stale
      status.set("Connection lost; reconnecting…", "lost");
    },
  };
  // A baked page talks to its recorded races as the live page talks to the server.
  const socket = recorded ? new RecordedRaces(config.recorded, handlers) : new Socket(client, handlers);
  view = new RaceView({ config, table, ui, race, controls, strip, chart, outcome, status, links, setDevice, recorded: recorded ? socket : null }, actions);

  // The page shows one race: the one it leaves need not be sent to it any more.
  const leave = (next = null) => {
    joining.stop();
    if (race.id && race.id !== next) socket.send({ type: "unwatch", race_id: race.id });
  };
  // A race asked for while the socket (re)connects is sent the moment it opens, as it was asked for.
  let queued = null;
  const start = (message) => {
    queued = null;
    chart.startRace(message.config.epochs);
    $("ghost-note").hidden = !chart.hasPrevious();
    $("code").hidden = true;
    leave();
    socket.send(message);
    race.start(); // its id comes with `accepted`
  };
  $("train").addEventListener("click", () => {
    const message = { type: "start", config: table.config(ui), broadcast: $("broadcast").checked, ...(lesson ? { lesson: lesson.id } : {}) };
    if (socket.open) return start(message);
    queued = message;
    status.set("Connecting to the server: the race starts as soon as it answers.", "lost");
  });
  $("stop").addEventListener("click", () => {
    race.stopping = socket.send({ type: "cancel", race_id: race.id });
  });
  $("metric").addEventListener("change", (e) => {
    chart.setMetric(e.target.value);
    $("chart-title").textContent = sentence(e.target.selectedOptions[0].textContent);
  });
  $("xaxis").addEventListener("change", (e) => chart.setX(e.target.value));
  if (lesson) {
    // The lesson's question is judged on one measure: the chart shows that one.
    $("metric").value = lesson.metric;
    $("metric").dispatchEvent(new Event("change"));
  }
  bindShare({ table, ui, race, chart, status, links });

  // Follow another race (a class code, a recent race): its history replays into the chart.
  const watch = (raceId) => {
    if (race.running && race.mine) return status.set("Your race is still training: stop it, or let it finish, before watching another.");
    chart.startRace();
    $("ghost-note").hidden = !chart.hasPrevious();
    leave(raceId);
    race.watch(raceId);
    socket.send({ type: "watch", race_id: raceId });
  };
  const joining = bindJoin($("join"), $("join-code"), {
    onRace: watch,
    onError: (message) => status.set(sentence(message), "error"),
    onWaiting: (code) => status.set(`Waiting for the next race under code ${code}: the last one did not finish before the server restarted. It shows here as soon as it starts.`),
  });
  bindRecent($("recent"), $("recent-list"), watch, labels);
  Object.assign(actions, { watch, join: (code) => joining.join(code), awaitWorker: worker.awaitWorker });

  // Load a race a panel's point names. A field the panel's races left at its neutral value
  // (no regulariser) is set to it, so the race is the one the point shows. Each value is fitted
  // as if typed: what this server's data or a bake's races cannot give is said after what
  // ``said`` makes of the race loaded.
  function loadPicked(picked, said) {
    for (const f of table.fields) if (f.neutral !== null && !(f.name in picked)) picked[f.name] = f.neutral;
    const source = ui.source;
    const problems = [];
    for (const [name, value] of Object.entries(picked)) {
      const { value: fitted, problem } = table.fit(name, String(value));
      ui[name] = fitted;
      if (problem) problems.push(problem);
    }
    controls.show();
    strip.show(ui);
    chart.setLanes(ui.extra);
    nameTrain();
    table.write(ui);
    if (ui.source !== source) panels.sourceChanged(); // the head start of the body now chosen
    dataRow.show(ui);
    panels.mark(ui);
    status.set([said(ui), ...problems, "Press Train to race it."].join(" "), problems.length ? "error" : "");
  }
  panels.showAll();

  view.sync();
  if (ui.join !== null) {
    // Looked up as if typed, so the code stays in the box to correct and the status says what was wrong.
    $("join-code").value = ui.join.slice(0, 4);
    joining.join(ui.join);
    table.write(ui);
  } else if (ui.race) status.set("Joining the race…");
  else if (ui.problems.length) status.set(`Part of this link could not be used as given. ${ui.problems.join(" ")}`, "error");
  // Said at once, rather than "Ready." until the first press of Train is refused.
  if (config.worker_error) worker.sayCannotTrain();
  worker.awaitWorker();
  // Exposed for end-to-end tests and curious students: the live state, read-only by intent.
  window.headstart = { ui, race, chart, outcome, sweep: panels.sweep, keepSweep: panels.keep };
}

boot().catch((err) => {
  for (const id of ["status", "announce"]) document.getElementById(id).textContent = `Could not start: ${err.message}`;
});
