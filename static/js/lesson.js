// A guided lesson (?lesson=ID): one question, the race it starts from, the few controls it
// leaves free and the one panel that answers it. The student predicts which lane ends ahead
// (on the lesson's measure, or on one class when it has a `focus`), races, and sees what
// happened beside what they predicted, then the explanation with the shipped sweep's numbers.
// The lessons are /api/config's `lessons`, defined once on the server.

const $ = (id) => document.getElementById(id);
const pct = (v) => `${(100 * v).toFixed(1)} %`;

// The lesson a link names, or null (the full tool).
export function lessonFor(config, search = window.location.search) {
  const id = new URLSearchParams(search).get("lesson");
  return config.lessons?.find((l) => l.id === id) ?? null;
}

// The lesson's race: its preset, but for the free fields a link gives (a shared lesson keeps
// what the student chose).
export function applyPreset(lesson, table, ui, search = window.location.search) {
  const params = new URLSearchParams(search);
  for (const [name, value] of Object.entries(lesson.preset)) {
    if (lesson.free.includes(name) && params.has(name)) continue;
    ui[name] = table.fit(name, Array.isArray(value) ? value.join(",") : String(value)).value;
  }
}

// Every control and panel the lesson does not use, by the names that hide them.
export function hiddenBy(lesson, config) {
  const groups = new Set(["task", "keep", "extra", "advanced"]); // the fieldsets that hold a group's fields
  const visible = new Set([...lesson.free, lesson.panel, "lessons", "broadcast", "join", "share"]);
  for (const field of config.fields) if (lesson.free.includes(field.name) && groups.has(field.group)) visible.add(field.group);
  const names = new Set([...document.querySelectorAll("[data-control]")].map((el) => el.dataset.control));
  return [...names].filter((name) => !visible.has(name));
}

// The lesson picker: the full tool or a lesson, each a link of its own.
export function bindPicker(config, current) {
  const pick = $("lesson-pick");
  pick.append(new Option("The full tool", ""));
  config.lessons.forEach((l, i) => pick.append(new Option(`${i + 1}. ${l.title}`, l.id)));
  pick.value = current?.id ?? "";
  pick.addEventListener("change", () => (window.location.href = link(pick.value)));
}

// A lesson's link (the full tool's, for none); ``join``: the class code to follow there.
export function link(id, join = null) {
  const params = new URLSearchParams(window.location.search);
  for (const name of [...params.keys()]) if (name !== "hide") params.delete(name); // a lesson sets its own race
  if (id) params.set("lesson", id);
  if (join) params.set("join", join);
  const query = params.toString();
  return `${window.location.pathname}${query ? `?${query}` : ""}`;
}

export class LessonView {
  // ``onPredict(lane)``: a prediction made, for a class race to count.
  constructor(config, lesson, { labels, status, onPredict }) {
    this.lesson = lesson;
    this.onPredict = onPredict;
    this.labels = labels;
    this.status = status;
    this.predicted = null;
    const index = config.lessons.indexOf(lesson);
    const [prev, next] = [config.lessons[index - 1], config.lessons[index + 1]];
    $("lesson").hidden = false;
    document.body.classList.add("in-lesson");
    Object.assign(document.body.dataset, { lessonMetric: lesson.metric, lessonPanel: lesson.panel });
    $("lesson-count").textContent = `Lesson ${index + 1} of ${config.lessons.length}`;
    $("lesson-title").textContent = lesson.title;
    $("lesson-question").textContent = lesson.question;
    for (const [el, other] of [[$("lesson-prev"), prev], [$("lesson-next"), next]]) {
      el.hidden = !other;
      if (other) el.href = link(other.id);
    }
    $("lesson-full").href = link("");
    $("lesson-explanation").textContent = lesson.explanation;
    // What "ahead" is judged on: said in the question (with its name) and in the verdict.
    const [measure, named] = lesson.focus
      ? [`on the test's ${lesson.focus.toLowerCase()} images`, " (that class's accuracy)"]
      : lesson.metric === "source_acc"
        ? ["on the old clothes", " (source-task accuracy)"]
        : ["on the new task's test images", ""];
    this.measure = measure;
    $("lesson-metric").textContent = measure + named;
    this.classes = null;
    const lanes = ["scratch", "frozen", "finetune", ...(lesson.preset.extra ?? [])];
    $("lesson-options").replaceChildren(
      ...lanes.map((lane) => {
        const label = document.createElement("label");
        label.className = `lesson-option s-${lane}`;
        const radio = Object.assign(document.createElement("input"), { type: "radio", name: "lesson-predict", value: lane });
        radio.addEventListener("change", () => this.predict(lane));
        label.append(radio, ` ${labels[lane] ?? lane}`);
        return label;
      }),
    );
    // Predict, then observe: Train waits for a prediction.
    $("train").addEventListener(
      "click",
      (e) => {
        if (this.predicted) return this.reopen();
        e.stopImmediatePropagation();
        status.set("First predict: which will end ahead?", "error");
        $("lesson-options").querySelector("input")?.focus();
      },
      { capture: true },
    );
  }

  predict(lane) {
    this.predicted = lane;
    this.onPredict(lane);
    $("lesson-result").textContent = `You predicted ${this.labels[lane] ?? lane}. Press Train to see.`;
    $("lesson-explanation").hidden = true;
  }

  // How the class predicted, without names: counts per lane, most first.
  tally(counts) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const said = Object.entries(counts)
      .sort(([, a], [, b]) => b - a)
      .map(([lane, n]) => `${this.labels[lane] ?? lane} ${n}`)
      .join(" · ");
    $("lesson-tally").textContent = total ? `The class predicted (${total} page${total === 1 ? "" : "s"}): ${said}.` : "";
  }

  // A new race: its classes, for a lesson judged on one of them, and the question open again.
  plan(msg) {
    this.classes = msg.classes;
    this.reopen();
  }

  // Answered, the prediction's choices fold away (the result says what was predicted), so the
  // chart and the panel stay on a projector's screen beside the explanation.
  reopen() {
    delete $("lesson").dataset.answered;
  }

  // What a lane's summary scores on the lesson's measure, or undefined where the race did not measure it.
  score(summary) {
    if (!this.lesson.focus) return summary[this.lesson.metric === "source_acc" ? "final_source_acc" : "final_test_acc"];
    return summary.per_class_acc?.[this.classes?.indexOf(this.lesson.focus) ?? -1];
  }

  // The race's end: which lane ended ahead, beside the prediction, then why.
  done(msg) {
    for (const row of document.querySelectorAll("#per-class tr[data-class]")) row.classList.toggle("focus", row.dataset.class === this.lesson.focus);
    if (!this.predicted) return; // a race watched before predicting: nothing to set it beside
    const ranked = Object.entries(msg.summary ?? {})
      .map(([lane, s]) => [lane, this.score(s)])
      .filter(([, v]) => v !== null && v !== undefined)
      .sort(([, a], [, b]) => b - a);
    if (!ranked.length) return;
    // Lanes level to the tenth of a point the page shows share the lead.
    const leaders = ranked.filter(([, v]) => pct(v) === pct(ranked[0][1])).map(([lane]) => lane);
    const name = (lane) => this.labels[lane] ?? lane;
    const right = leaders.includes(this.predicted);
    const scores = ranked.map(([lane, v]) => `${name(lane)} ${pct(v)}`).join(", ");
    const verdict = right ? "Your prediction was right." : `You predicted ${name(this.predicted)}.`;
    const ahead = leaders.length > 1 ? `${leaders.map(name).join(" and ")} ended level ahead` : `${name(leaders[0])} ended ahead`;
    const result = $("lesson-result");
    result.textContent = `${ahead} ${this.measure}: ${scores}. ${verdict}`;
    result.dataset.kind = right ? "right" : "wrong";
    $("lesson-explanation").hidden = false;
    $("lesson").dataset.answered = "";
  }
}
