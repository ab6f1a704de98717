// The page's four panels over the shipped sweeps, each drawn into its own section. Clicking a
// point in any of them hands the race it names to ``onPick``; each panel loads its sweep once
// asked to (``show``), and its section stays hidden where none is shipped.

import { SweepPanel } from "./sweep.js";
import { KeepSweepPanel } from "./keep-sweep.js";
import { DepthSweepPanel } from "./depth-sweep.js";
import { LanesSweepPanel } from "./lanes-sweep.js";

const $ = (id) => document.getElementById(id);

// Each panel by the control that hides it (`hide=sweep`, `keep`, `source`, `extra`), with its section.
const SECTIONS = { sweep: "sweep", keep: "keep-sweep", source: "depth-sweep", extra: "lanes-sweep" };

export class Panels {
  // ``onPick(picked, said)``: a race a point names, and what to say of the race loaded.
  constructor({ ui, labels, onPick }) {
    this.ui = ui;
    const pick = (said) => (picked, name) => onPick(picked, (loaded) => said(loaded, name));
    // The big picture: every size of the shipped sweep; the shipped sweep reaches sizes a
    // smaller dataset on this server may not hold.
    this.sweep = new SweepPanel($("sweep-chart"), {
      readout: $("sweep-readout"),
      labels,
      currentN: () => ui.n,
      onPick: pick((loaded) => `Loaded ${loaded.n.toLocaleString("en")} images from the sweep.`),
    });
    // What keeping the source task costs: a point sets up that fine-tuning.
    this.keep = new KeepSweepPanel($("keep-sweep-chart"), {
      readout: $("keep-sweep-readout"),
      onPick: pick((_, name) => `Loaded ${name}, every unit unlocked; race it with y set to source-task accuracy.`),
    });
    // Layer by layer: a point sets up that source, size and depth.
    this.depth = new DepthSweepPanel($("depth-sweep-chart"), {
      readout: $("depth-sweep-readout"),
      onPick: pick((_, name) => `Loaded ${name}.`),
    });
    // What each way of adapting costs: a point sets up that race, every lane added.
    this.lanes = new LanesSweepPanel($("lanes-sweep-chart"), {
      readout: $("lanes-sweep-readout"),
      onPick: pick((_, name) => `Loaded ${name}, every lane added.`),
    });
  }

  // Load and draw every panel the page shows.
  showAll() {
    const byControl = { sweep: this.sweep, keep: this.keep, source: this.depth, extra: this.lanes };
    for (const [control, panel] of Object.entries(byControl)) this.show(control, panel);
  }

  // The head-start panel shows the chosen source's sweep, where one is shipped.
  sourceChanged() {
    this.show("sweep", this.sweep);
  }

  // The state changed: the head-start panel marks its n, the trade-off its fine-tuning.
  mark(ui) {
    this.sweep.refresh();
    this.keep.mark(ui);
  }

  show(control, panel) {
    // A lesson shows its one panel (a field it frees may share another panel's name: source).
    const { lessonPanel } = this.ui;
    if (this.ui.hide.has(control) || this.ui.lessonHide?.has(control) || (lessonPanel && control !== lessonPanel)) return;
    panel.load(this.ui.source).then(
      (found) => {
        $(SECTIONS[control]).hidden = !found;
        if (found) panel.show();
        this.keep.mark(this.ui);
      },
      () => {},
    );
  }
}
