// The images before any race: a row of examples per class of the target task, and of what the
// chosen body was pretrained on (other clothes, the same scrambled, clothes under random labels,
// or ImageNet, which is not on the server and is said so).

import { api } from "./api.js";

export class DataRow {
  constructor(root) {
    this.root = root;
    this.shown = null; // the dataset, body and source drawn
    this.found = new Map(); // examples already fetched, by that key
  }

  async show({ dataset, body, source }) {
    const key = [dataset, body, source].join("/");
    if (key === this.shown) return;
    this.shown = key;
    let rows = this.found.get(key);
    if (!rows) {
      try {
        const response = await fetch(api.examples(dataset, body, source));
        if (!response.ok) throw new Error((await response.json()).message);
        rows = await response.json();
      } catch (err) {
        if (this.shown === key) this.root.replaceChildren(note(`The images cannot be shown: ${err.message}.`));
        return;
      }
      this.found.set(key, rows);
    }
    if (this.shown !== key) return; // another choice was made meanwhile
    this.root.replaceChildren(section(rows.target), section(rows.source));
  }
}

function note(text) {
  const p = document.createElement("p");
  p.className = "hint";
  p.textContent = text;
  return p;
}

// One task's examples: a heading, then a labelled row of images per class.
function section({ title, note: why, dataset, images_version: version, classes }) {
  const part = document.createElement("figure");
  part.className = "examples";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  part.append(caption);
  if (why) part.append(note(why));
  const grid = document.createElement("div");
  grid.className = "example-classes";
  part.append(grid);
  for (const { name, images } of classes) {
    const row = document.createElement("div");
    row.className = "example-row";
    const label = document.createElement("span");
    label.className = "example-class";
    label.textContent = name;
    row.append(label);
    for (const image of images) row.append(thumbnail(api.image(dataset, version, image.part, image.index), `An example of ${name}`));
    grid.append(row);
  }
  return part;
}

export function thumbnail(src, alt) {
  const img = document.createElement("img");
  Object.assign(img, { src, alt, loading: "lazy", decoding: "async", width: 56, height: 56 });
  img.className = "thumb";
  // A race replayed after its upload was deleted: say so in the image's place, not a broken icon.
  img.addEventListener("error", () => {
    const gone = Object.assign(document.createElement("span"), { className: "thumb gone", textContent: "gone" });
    gone.setAttribute("role", "img");
    gone.setAttribute("aria-label", `${alt} (no longer on this server)`);
    gone.title = "This image is no longer on this server: the images it was raced on were deleted.";
    img.replaceWith(gone);
  });
  return img;
}
