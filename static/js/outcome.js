// What each strategy got right, once a race is done: per-class accuracy side by side, a
// confusion matrix per strategy on one scale (each cell a share of its true class), the most
// confused pairs in words, and the gallery. A cell with images in it filters the gallery.

import { percent } from "./format.js";
import { Gallery } from "./gallery.js";

const $ = (id) => document.getElementById(id);

export class Outcome {
  // ``strategies``: [{name, label}] in racing order, from /api/config; ``builtIn``: the default
  // dataset and body, the task the page's measured sentence (#outcome-lesson) is about.
  constructor(root, strategies, builtIn) {
    this.root = root;
    this.builtIn = builtIn;
    this.order = strategies.map((s) => s.name);
    this.labels = Object.fromEntries(strategies.map((s) => [s.name, s.label]));
    this.gallery = new Gallery($("gallery"), this.labels);
    this.clear();
  }

  clear() {
    this.root.hidden = true;
    this.classes = null;
    this.predicted = null;
  }

  plan(msg) {
    this.classes = msg.classes;
    const { dataset, body } = msg.config ?? {};
    // A race stored before these fields existed was raced at their defaults.
    $("outcome-lesson").hidden = (dataset ?? this.builtIn.dataset) !== this.builtIn.dataset || (body ?? this.builtIn.body) !== this.builtIn.body;
  }

  predictions(msg) {
    this.predicted = msg;
  }

  done(msg) {
    const raced = this.order.filter((name) => name in msg.summary);
    const summary = msg.summary;
    this.root.hidden = false;
    if (!this.classes || !raced.length || !summary[raced[0]].confusion) {
      $("outcome-said").textContent = "This race was recorded before per-class results were kept, so it replays without them; another seed trains afresh and shows them.";
      for (const id of ["per-class", "matrices", "gallery"]) $(id).replaceChildren();
      $("gallery-said").textContent = "";
      return;
    }
    $("outcome-said").textContent = mostConfused(summary, this.classes, this.labels, raced);
    $("per-class").replaceChildren(this.perClassTable(summary, raced));
    $("matrices").replaceChildren(...raced.map((name) => this.matrix(name, summary[name].confusion)));
    $("gallery-controls").hidden = !this.predicted;
    if (this.predicted) this.gallery.set(this.predicted, this.classes, raced);
    else $("gallery-said").textContent = "This race's images were not recorded.";
  }

  perClassTable(summary, raced) {
    const table = document.createElement("table");
    table.className = "per-class";
    const gain = raced.includes("finetune") && raced.includes("scratch");
    const head = ["Class", ...raced.map((n) => this.labels[n]), ...(gain ? [`${this.labels.finetune} − ${this.labels.scratch}`] : [])];
    table.append(caption("Test accuracy on each class"), headRow(head, raced));
    const body = document.createElement("tbody");
    this.classes.forEach((name, c) => {
      const row = document.createElement("tr");
      row.dataset.class = name;
      row.append(cell("th", name, { scope: "row" }));
      for (const s of raced) {
        const td = cell("td", percent(summary[s].per_class_acc[c], 0));
        td.className = `bar c-${s}`;
        td.style.setProperty("--share", summary[s].per_class_acc[c]);
        row.append(td);
      }
      if (gain) {
        const points = 100 * (summary.finetune.per_class_acc[c] - summary.scratch.per_class_acc[c]);
        row.append(cell("td", `${points >= 0 ? "+" : "−"}${Math.abs(points).toFixed(0)} points`));
      }
      body.append(row);
    });
    table.append(body);
    return table;
  }

  // One strategy's matrix: rows the true class, columns what it said, each cell shaded by its
  // share of the row, so every strategy's matrix is on the same scale.
  matrix(name, confusion) {
    const table = document.createElement("table");
    table.className = "confusion";
    table.style.setProperty("--tint", `var(--${name})`);
    table.append(caption(`${this.labels[name]}: rows the true class, columns what it said`, `c-${name}`));
    const shortNames = this.classes.map((c) => c.split(/[\s/]/)[0].slice(0, 8));
    const head = document.createElement("thead");
    const top = document.createElement("tr");
    top.append(cell("td", ""));
    shortNames.forEach((s, c) => top.append(cell("th", s, { scope: "col", title: this.classes[c] })));
    head.append(top);
    const body = document.createElement("tbody");
    confusion.forEach((row, t) => {
      const tr = document.createElement("tr");
      tr.append(cell("th", shortNames[t], { scope: "row", title: this.classes[t] }));
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((n, p) => {
        const td = document.createElement("td");
        td.style.setProperty("--share", n / total);
        td.classList.toggle("diagonal", t === p);
        if (n && t !== p && this.predicted) {
          const button = cell("button", String(n), { type: "button", "aria-label": `${this.labels[name]} called ${n} ${this.classes[t]} images ${this.classes[p]}: show them` });
          button.addEventListener("click", () => this.gallery.cell(name, t, p));
          td.append(button);
        } else td.textContent = String(n);
        tr.append(td);
      });
      body.append(tr);
    });
    table.append(head, body);
    const wrap = document.createElement("div");
    wrap.className = "matrix";
    wrap.append(table);
    return wrap;
  }
}

// The pairs scratch confuses most, each beside what fine-tune (or the best other lane) makes of them.
export function mostConfused(summary, classes, labels, raced) {
  const base = raced.includes("scratch") ? "scratch" : raced[0];
  const other = raced.includes("finetune") ? "finetune" : raced.find((s) => s !== base);
  const pairs = [];
  summary[base].confusion.forEach((row, t) => row.forEach((n, p) => t !== p && n > 0 && pairs.push({ t, p, n })));
  pairs.sort((a, b) => b.n - a.n);
  if (!pairs.length) return `${labels[base]} got every test image right.`;
  const said = pairs.slice(0, 2).map(({ t, p, n }) => {
    const theirs = summary[other].confusion[t][p];
    return `${labels[base]} calls ${n} “${classes[t]}” images “${classes[p]}”; ${labels[other]} ${theirs}`;
  });
  return `Most confused: ${said.join(". ")}. Click a number in a matrix to see those images.`;
}

function caption(text, className = "") {
  const el = document.createElement("caption");
  el.textContent = text;
  el.className = className;
  return el;
}

function headRow(names, raced) {
  const head = document.createElement("thead");
  const row = document.createElement("tr");
  names.forEach((name, i) => row.append(cell("th", name, { scope: "col", class: i >= 1 && i <= raced.length ? `c-${raced[i - 1]}` : "" })));
  head.append(row);
  return head;
}

function cell(tag, text, attributes = {}) {
  const el = document.createElement(tag);
  el.textContent = text;
  for (const [name, value] of Object.entries(attributes)) if (value !== "") el.setAttribute(name, value);
  return el;
}
