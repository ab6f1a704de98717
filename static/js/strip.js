// The architecture strip: per strategy, the five body units and the head, each drawn
// trainable or locked, with a pill counting trainable parameters and a compute counter.

import { compact, percent, seconds } from "./format.js";

// Which units each strategy trains, from the unit list and the lock slider alone:
// this is what lets the strip update instantly, before any training. Gradual starts as frozen
// (its epochs then say what it unlocked); LoRA's body stays locked, each unit with an update.
export function trainableUnits(strategy, units, locked) {
  const body = units.filter((u) => u.name !== "head");
  if (strategy === "scratch") return new Set(units.map((u) => u.name));
  if (strategy === "finetune") return new Set([...body.slice(locked).map((u) => u.name), "head"]);
  return new Set(["head"]);
}

// "all 308 k trainable", or "17 k of 325 k trainable · 5.3 %": short enough for one line.
function pillText(count, total) {
  return count === total ? `all ${compact(count)} trainable` : `${compact(count)} of ${compact(total)} trainable · ${percent(count / total)}`;
}

export class Strip {
  // ``strategies``: [{name, label}], in racing order, from /api/config; ``sources`` and
  // ``bodies``: the source and body fields' options, to say where the pretrained units came from.
  constructor(root, units, strategies, { sources = [], bodies = [] } = {}) {
    this.root = root;
    this.strategies = strategies;
    this.sources = sources;
    this.bodies = bodies;
    this.extra = new Set(strategies.filter((s) => s.extra).map((s) => s.name)); // shown when a race adds them
    this.rank = 0;
    this.setUnits(units);
  }

  // Redraw every row's units: another body has other units, another dataset another head.
  setUnits(units) {
    const root = this.root;
    this.units = units;
    this.total = units.reduce((sum, u) => sum + u.params, 0);
    this.rows = {};
    root.replaceChildren();
    for (const { name: strategy, label } of this.strategies) {
      const row = document.createElement("div");
      row.className = `strip-row s-${strategy}`;
      row.innerHTML = `
        <div class="strip-name"><span class="swatch" aria-hidden="true"></span>${label}<span class="origin"></span></div>
        <ol class="units" aria-label="${label}: units"></ol>
        <div class="strip-stats">
          <span class="pill"></span>
          <span class="clock" title="This strategy's own compute time">0.00 s</span>
          <span class="rate"></span>
          <span class="acc"></span>
          <span class="source" title="What its body still knows of the five source classes it was pretrained on"></span>
        </div>`;
      const list = row.querySelector(".units");
      for (const unit of units) {
        const li = document.createElement("li");
        li.className = "unit";
        li.dataset.unit = unit.name;
        const short = unit.label.replace(/^stage /, "S");
        li.innerHTML = `<span class="unit-label"><span class="long">${unit.label}</span><span class="short">${short}</span></span><span class="unit-params">${compact(unit.params)}</span>`;
        list.append(li);
      }
      root.append(row);
      this.rows[strategy] = row;
    }
  }

  // The strip as the state has it: the lanes raced, which units train, and which body the
  // pretrained ones start from.
  show(state) {
    this.rank = state.lora_rank;
    for (const [strategy, row] of Object.entries(this.rows)) row.hidden = this.extra.has(strategy) && !(state.extra ?? []).includes(strategy);
    this.setLocked(state.locked);
    // An ImageNet body was pretrained on ImageNet, whatever the source menu says.
    const body = this.bodies.find((b) => b.value === state.body);
    const imagenet = body && state.body !== this.bodies[0].value;
    const source = imagenet ? { label: "ImageNet", description: body.description.replace(/^.*pretrained on /, "") } : this.sources.find((s) => s.value === state.source);
    for (const [strategy, row] of Object.entries(this.rows)) {
      const origin = row.querySelector(".origin");
      origin.textContent = strategy === "scratch" || !source ? "" : imagenet ? "from ImageNet" : `pretrained: ${source.label.split(":")[0].toLowerCase()}`;
      origin.title = source ? `Its body was pretrained on ${source.description}` : "";
    }
  }

  setLocked(locked) {
    for (const [strategy, row] of Object.entries(this.rows)) {
      const trainable = trainableUnits(strategy, this.units, locked);
      const count = this.mark(row, trainable, strategy === "lora");
      if (strategy !== "lora") row.querySelector(".pill").textContent = pillText(count, this.total);
      else {
        // LoRA trains its updates, rank × each unit's share, beside the locked body's weights.
        const updates = this.rank * this.units.reduce((sum, u) => sum + (u.lora_per_rank ?? 0), 0);
        row.querySelector(".pill").textContent = pillText(count + updates, this.total + updates);
      }
    }
  }

  // Draw each unit trainable or locked (``adapted``: locked, with a low-rank update); the
  // parameters of those that train.
  mark(row, trainable, adapted = false) {
    let count = 0;
    for (const li of row.querySelectorAll(".unit")) {
      const on = trainable.has(li.dataset.unit);
      const updated = adapted && !on;
      li.classList.toggle("locked", !on);
      li.classList.toggle("adapted", updated);
      const said = `${li.querySelector(".long").textContent}, ${on ? "trainable" : updated ? `locked, with a rank-${this.rank} update` : "locked"}`;
      li.title = said;
      li.setAttribute("aria-label", said);
      if (on) count += this.units.find((u) => u.name === li.dataset.unit).params;
    }
    return count;
  }

  resetCounters() {
    for (const row of Object.values(this.rows)) {
      row.querySelector(".clock").textContent = "0.00 s";
      row.querySelector(".rate").textContent = "";
      row.querySelector(".acc").textContent = "";
      row.querySelector(".source").textContent = "";
    }
  }

  update(epoch) {
    const row = this.rows[epoch.strategy];
    if (epoch.trainable_units) {
      // A lane whose units change as it goes (gradual): what trained in this epoch.
      this.mark(row, new Set(epoch.trainable_units));
      row.querySelector(".pill").textContent = pillText(epoch.trainable_params, epoch.total_params);
    }
    row.querySelector(".clock").textContent = seconds(epoch.compute_s);
    row.querySelector(".rate").textContent = `${compact(Math.round(epoch.images_per_s))} img/s`;
    row.querySelector(".acc").textContent = `${percent(epoch.test_acc)} test`;
    // The pretrained body's own figure is frozen's, whose body never moves: where fine-tune started.
    if (epoch.strategy === "frozen") this.pretrainedSource = epoch.source_acc;
    const start = epoch.strategy === "finetune" && this.pretrainedSource != null ? `${percent(this.pretrainedSource)} → ` : "";
    // Scratch has no source head: nothing to measure, said as a dash.
    row.querySelector(".source").textContent = `source ${epoch.source_acc == null ? "–" : start + percent(epoch.source_acc)}`;
  }
}
