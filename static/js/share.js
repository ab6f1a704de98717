// Sharing a race: links to its settings or to the race itself, an embed snippet, and the
// chart as a picture. ``links.shared`` is the address others can open (see main.js).

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);

export function bindShare({ table, ui, race, chart, status, links }) {
  const copy = async (text, what) => {
    try {
      await navigator.clipboard.writeText(text);
      status.set(`${what} copied.`);
    } catch {
      window.prompt(`Copy the ${what.toLowerCase()}:`, text);
    }
  };
  $("copy-link").addEventListener("click", () => copy(`${links.shared}/${api.pages.index}?${table.query(ui)}`, "Link"));
  $("copy-watch").addEventListener("click", () => copy(`${links.shared}/${api.pages.index}?${table.query(ui, { withRace: true })}`, "Watch link"));
  $("copy-embed").addEventListener("click", () =>
    copy(`<iframe src="${links.shared}/${api.pages.embed}?${table.query(ui)}" width="640" height="480" style="border:0" title="Headstart"></iframe>`, "Embed code"),
  );
  $("export-png").addEventListener("click", () => {
    const a = document.createElement("a");
    const locks = `fine-tune locks ${ui.locked} unit${ui.locked === 1 ? "" : "s"}`;
    a.href = chart.png(`${ui.n.toLocaleString("en")} target images, ${locks}, ${ui.epochs} epochs, seed ${ui.seed}`);
    a.download = `headstart-${race.id || "chart"}.png`;
    a.click();
  });
}
