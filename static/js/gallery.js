// Test images one strategy classifies right and another wrong (fine-tune against scratch unless
// another pair is chosen), or the images of one confusion cell, each with its true class and
// what each of the two strategies said. Drawn from the race's `predictions` message.

import { api } from "./api.js";
import { thumbnail } from "./data-row.js";

const SHOWN = 24; // images drawn at once: enough to see a pattern, few enough to load in a moment
const $ = (id) => document.getElementById(id);

export class Gallery {
  // ``labels``: strategy name → label.
  constructor(root, labels) {
    this.root = root;
    this.labels = labels;
    this.said = $("gallery-said");
    this.right = $("gallery-right");
    this.wrong = $("gallery-wrong");
    this.all = $("gallery-all");
    for (const select of [this.right, this.wrong]) select.addEventListener("change", () => this.pair());
    this.all.addEventListener("click", () => this.pair());
  }

  // A race's predictions and its classes; ``strategies``: the names it raced, in order.
  set(predictions, classes, strategies) {
    this.predictions = predictions;
    this.classes = classes;
    for (const [select, chosen] of [[this.right, strategies.includes("finetune") ? "finetune" : strategies.at(-1)], [this.wrong, "scratch"]]) {
      select.replaceChildren(...strategies.map((name) => new Option(this.labels[name], name, false, name === chosen)));
    }
    this.pair();
  }

  // Images the first strategy gets right and the second gets wrong.
  pair() {
    const [a, b] = [this.right.value, this.wrong.value];
    const { truth, predicted } = this.predictions;
    const chosen = truth.map((t, i) => i).filter((i) => predicted[a][i] === truth[i] && predicted[b][i] !== truth[i]);
    const what = a === b ? "Choose two different strategies." : `${this.labels[a]} right, ${this.labels[b]} wrong`;
    this.draw(chosen, [a, b], a === b ? what : `${what}: ${count(chosen.length)}`);
    this.all.hidden = true;
  }

  // The images of one confusion cell: ``strategy`` called class ``t`` class ``p``.
  cell(strategy, t, p) {
    const { truth, predicted } = this.predictions;
    const chosen = truth.map((_, i) => i).filter((i) => truth[i] === t && predicted[strategy][i] === p);
    const other = strategy === this.wrong.value ? this.right.value : this.wrong.value;
    const [name, said] = [this.classes[t], this.classes[p]];
    this.draw(chosen, [strategy, other], `${this.labels[strategy]} called ${count(chosen.length)} of ${name} “${said}”`);
    this.all.hidden = false;
    this.root.scrollIntoView({ block: "nearest" });
  }

  draw(chosen, [a, b], heading) {
    const { truth, predicted, dataset, images_version: version, index } = this.predictions;
    const shown = chosen.slice(0, SHOWN);
    this.said.textContent = `${heading}${chosen.length > shown.length ? ` (the first ${shown.length} shown)` : ""}.`;
    this.root.replaceChildren(
      ...shown.map((i) => {
        const item = document.createElement("li");
        const name = this.classes[truth[i]];
        const verdicts = [a, b].filter((s, k) => k === 0 || s !== a).map((s) => ({ s, said: this.classes[predicted[s][i]], right: predicted[s][i] === truth[i] }));
        const alt = `${name}; ${verdicts.map((v) => `${this.labels[v.s]} said ${v.said}`).join(", ")}`;
        const caption = document.createElement("span");
        caption.className = "verdicts";
        const truthLine = document.createElement("strong");
        truthLine.textContent = name;
        caption.append(truthLine);
        for (const v of verdicts) {
          const line = document.createElement("span");
          line.className = `verdict c-${v.s} ${v.right ? "right" : "wrong"}`;
          line.textContent = `${v.right ? "✓" : "✗"} ${this.labels[v.s]}: ${v.said}`;
          caption.append(line);
        }
        item.append(thumbnail(api.image(dataset, version, "test", index[i]), alt), caption);
        return item;
      }),
    );
  }
}

function count(n) {
  return `${n.toLocaleString("en")} image${n === 1 ? "" : "s"}`;
}
