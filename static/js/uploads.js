// "Your images": name the classes, drop each one's images (or a zip, or a folder of class
// folders, on the whole set), see what will be sent and what cannot be, upload it with a
// progress bar, and race on it. The server checks everything again (POST /api/datasets) and
// says what it skipped; its answer becomes an option of the dataset menu, and the upload's id
// travels in the page's links, so a share or watch link finds the same images.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
const MB = 1 << 20;
const SHOWN = 6; // thumbnails a class row previews
const plural = (n, word, many = `${word}s`) => `${n.toLocaleString("en")} ${n === 1 ? word : many}`;

function element(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

// An upload's answer as the dataset menu lists it, and as the page sizes a race for it.
function describe(config, upload) {
  config.datasets[upload.id] = { classes: upload.class_order, capacity: upload.capacity };
  const option = { value: upload.id, label: `${upload.label} (uploaded)`, description: upload.description };
  const field = config.fields.find((f) => f.name === "dataset");
  if (!field.options.some((o) => o.value === upload.id)) field.options.push(option);
  return option;
}

// An upload the page took, made an option of the dataset menu already built.
export function register(config, controls, upload) {
  controls.addOption("dataset", describe(config, upload));
}

// Whether ``id`` looks like an upload's the page does not know yet.
export const unknownUpload = (config, id) => Boolean(id) && !config.datasets[id] && new RegExp(`^${config.uploads.id_pattern}$`).test(id);

// The upload a link names, fetched before the link is read so its menu option exists; what
// was wrong (deleted, expired) is returned to say, and the page falls back to the default.
export async function adopt(config, id) {
  if (!unknownUpload(config, id)) return null;
  try {
    const response = await fetch(api.dataset(id));
    const answer = await response.json();
    if (!response.ok) return answer.message;
    describe(config, answer);
    return null;
  } catch (err) {
    return `the uploaded dataset could not be fetched (${err.message})`;
  }
}

// The files of a drop, each with its path inside what was dropped ("leaves/oak/1.jpg").
async function dropped(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: `${prefix}${entry.name}` });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out;
}

// Each file's class: the folder it is in, one level inside a single folder that holds them all
// (a folder of class folders), else the top folder (class folders dropped side by side). The
// server reads a zip by the same rule.
function byClass(files) {
  const parts = files.map(({ path }) => path.split("/").filter(Boolean));
  const tops = new Set(parts.map((p) => p[0]));
  const depth = tops.size === 1 && parts.every((p) => p.length >= 3) ? 1 : 0;
  const classes = new Map();
  const loose = [];
  files.forEach((f, i) => {
    const p = parts[i].slice(depth);
    if (p.length < 2) return loose.push(f);
    if (!classes.has(p[0])) classes.set(p[0], []);
    classes.get(p[0]).push(f.file);
  });
  return { classes, loose };
}

const hidden = (path) => path.split("/").some((part) => part.startsWith(".") || part === "__MACOSX");

export class YourImages {
  // ``onUploaded(answer)``: an upload the server took; ``onDeleted(id)``: one it deleted.
  constructor(config, { onUploaded, onDeleted }) {
    this.limits = config.uploads;
    this.onUploaded = onUploaded;
    this.onDeleted = onDeleted;
    this.zip = null;
    this.rows = [];
    this.uploaded = null;
    this.request = null;
    $("upload-days").textContent = plural(this.limits.days, "day");
    $("upload-limits").textContent = `JPEG, PNG or WebP; ${this.limits.min_images_per_class}–${this.limits.max_images_per_class.toLocaleString("en")} images a class, up to ${this.limits.max_upload_mb.toLocaleString("en")} MB in all.`;
    $("upload-add-class").addEventListener("click", () => this.addClass());
    $("upload-send").addEventListener("click", () => this.send());
    $("upload-cancel").addEventListener("click", () => this.request?.abort());
    $("upload-delete").addEventListener("click", () => this.remove());
    $("upload-keep").addEventListener("change", (e) => this.keep(e.target.checked));
    $("upload-keep-days").textContent = plural(this.limits.days, "day");
    $("upload-clear-zip").addEventListener("click", () => this.setZip(null));
    const set = $("upload-set");
    this.dropZone(set, (files) => this.dropSet(files));
    $("upload-choose-zip").addEventListener("click", () => $("upload-zip").click());
    $("upload-choose-folder").addEventListener("click", () => $("upload-folder").click());
    $("upload-zip").addEventListener("change", (e) => e.target.files[0] && this.setZip(e.target.files[0]));
    $("upload-folder").addEventListener("change", (e) => this.dropSet([...e.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }))));
    this.addClass();
    this.addClass();
  }

  dropZone(zone, take) {
    zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      e.stopPropagation();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", async (e) => {
      e.preventDefault();
      e.stopPropagation();
      zone.classList.remove("over");
      take(await dropped(e.dataTransfer));
    });
  }

  // A zip, or a folder of class folders, dropped on the whole set.
  dropSet(files) {
    files = files.filter((f) => !hidden(f.path));
    const zips = files.filter((f) => f.file.name.toLowerCase().endsWith(".zip"));
    if (zips.length === 1 && files.length === 1) return this.setZip(zips[0].file);
    const { classes, loose } = byClass(files);
    if (!classes.size) return this.say("Drop a zip or a folder with one folder per class here, or drop each class's images on its row.", "error");
    this.setZip(null);
    for (const row of [...this.rows]) if (!row.files.length && !row.refused.length) this.removeClass(row);
    for (const [name, list] of classes) {
      const row = this.rows.find((r) => r.name.value === name) ?? this.addClass(name);
      this.take(row, list);
    }
    this.say(loose.length ? `${plural(loose.length, "file")} not in a class folder left out (${loose.slice(0, 3).map((f) => f.path).join(", ")}).` : "");
  }

  setZip(file) {
    this.zip = file;
    $("upload-zip-said").textContent = file ? `${file.name}, ${(file.size / MB).toFixed(1)} MB: its folders are its classes.` : "";
    $("upload-zip-row").hidden = !file;
    $("upload-classes").hidden = $("upload-add-class").hidden = Boolean(file);
    if (file && !$("upload-title").value) $("upload-title").value = file.name.replace(/\.zip$/i, "").slice(0, 80);
    this.refresh();
  }

  addClass(name = "") {
    if (this.rows.length >= this.limits.max_classes) {
      this.say(`At most ${this.limits.max_classes} classes.`, "error");
      return this.rows.at(-1);
    }
    const number = this.rows.length + 1;
    const input = element("input", { type: "text", class: "upload-name", maxlength: "40", "aria-label": `Class ${number}'s name`, placeholder: `Class ${number}` });
    input.value = name;
    input.addEventListener("input", () => this.refresh());
    const chooser = element("input", { type: "file", multiple: "", accept: this.limits.formats.join(","), hidden: "", "aria-label": `Images of class ${number}` });
    const choose = element("button", { type: "button", class: "link-button" }, "choose images");
    const count = element("span", { class: "upload-count" });
    const thumbs = element("span", { class: "upload-thumbs", "aria-hidden": "true" });
    const refusedNote = element("span", { class: "upload-refused" });
    const remove = element("button", { type: "button", class: "upload-remove", "aria-label": `Remove class ${number}`, title: "Remove this class" }, "×");
    const zone = element("div", { class: "drop upload-drop" }, "Drop images or a folder here, or ", choose, chooser, " ", count, thumbs, refusedNote);
    const li = element("li", { class: "upload-class" }, element("div", { class: "upload-head" }, input, remove), zone);
    const row = { li, name: input, files: [], refused: [], count, thumbs, refusedNote, chooser };
    choose.addEventListener("click", () => chooser.click());
    chooser.addEventListener("change", () => this.take(row, [...chooser.files]));
    remove.addEventListener("click", () => this.removeClass(row));
    this.dropZone(zone, (files) => {
      // A zip holds every class, one folder each: dropped on a row, it is still the whole set.
      if (files.length === 1 && files[0].file.name.toLowerCase().endsWith(".zip")) return this.dropSet(files);
      this.take(row, files.filter((f) => !hidden(f.path)).map((f) => f.file));
    });
    this.rows.push(row);
    $("upload-classes").append(li);
    this.refresh();
    return row;
  }

  removeClass(row) {
    row.li.remove();
    this.rows = this.rows.filter((r) => r !== row);
    this.refresh();
  }

  // A class's files: the images kept, the rest said at once (the server says again what it skips).
  take(row, files) {
    for (const file of files) {
      if (this.limits.formats.includes(file.type)) row.files.push(file);
      else row.refused.push(`${file.name}: ${file.type || "not an image"}`);
    }
    const over = row.files.length - this.limits.max_images_per_class;
    if (over > 0) {
      row.refused.push(`${plural(over, "image")} past the ${this.limits.max_images_per_class.toLocaleString("en")} a class may hold`);
      row.files.length = this.limits.max_images_per_class;
    }
    row.count.textContent = plural(row.files.length, "image");
    row.thumbs.replaceChildren(
      ...row.files.slice(0, SHOWN).map((file) => {
        const img = element("img", { alt: "", width: "32", height: "32" });
        img.src = URL.createObjectURL(file);
        img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
        return img;
      }),
    );
    row.refusedNote.textContent = row.refused.length ? ` · ${plural(row.refused.length, "file")} left out: not JPEG, PNG or WebP (${row.refused.slice(0, 2).join("; ")}${row.refused.length > 2 ? "…" : ""})` : "";
    this.refresh();
  }

  // What is wrong with the set as it stands, or null when it can be sent.
  problem() {
    const { limits } = this;
    if (this.zip) return this.zip.size > limits.max_upload_mb * MB ? `The zip is ${(this.zip.size / MB).toFixed(0)} MB; at most ${limits.max_upload_mb} MB.` : null;
    const rows = this.rows.filter((r) => r.files.length);
    if (rows.length < 2) return "Give at least two classes their images.";
    const names = rows.map((r) => r.name.value.trim());
    if (names.some((n) => !n)) return "Name every class that has images.";
    if (new Set(names).size !== names.length) return "Give each class its own name.";
    if (names.some((n) => /[/\\:*?"<>|]/.test(n) || n.startsWith("."))) return 'A class name cannot hold / \\ : * ? " < > | or start with ".".';
    const small = rows.find((r) => r.files.length < limits.min_images_per_class);
    if (small) return `${small.name.value} has ${plural(small.files.length, "image")}; a class needs at least ${limits.min_images_per_class} (two to test on, four to train on).`;
    const count = rows.reduce((sum, r) => sum + r.files.length, 0);
    if (count > limits.max_images) return `${count.toLocaleString("en")} images; at most ${limits.max_images.toLocaleString("en")} in all.`;
    const bytes = rows.reduce((sum, r) => sum + r.files.reduce((s, f) => s + f.size, 0), 0);
    if (bytes > limits.max_upload_mb * MB) return `${(bytes / MB).toFixed(0)} MB of images; at most ${limits.max_upload_mb} MB in all.`;
    return null;
  }

  refresh() {
    const problem = this.problem();
    $("upload-send").disabled = Boolean(problem) || Boolean(this.request);
    const files = this.rows.reduce((sum, r) => sum + r.files.length, 0);
    const ready = this.zip ? "Ready to upload the zip." : `Ready to upload ${plural(files, "image")} in ${plural(this.rows.filter((r) => r.files.length).length, "class", "classes")}.`;
    $("upload-ready").textContent = !this.zip && !files ? "" : (problem ?? ready);
  }

  say(text, kind = "") {
    const said = $("upload-said");
    said.textContent = text;
    said.dataset.kind = kind;
  }

  send() {
    if (this.problem() || this.request) return;
    const form = new FormData();
    if (this.zip) form.append("file", this.zip, this.zip.name);
    else for (const row of this.rows) for (const file of row.files) form.append(row.name.value.trim(), file, file.name);
    const title = $("upload-title").value.trim();
    const xhr = new XMLHttpRequest();
    this.request = xhr;
    const bar = $("upload-progress");
    bar.hidden = $("upload-cancel").hidden = false;
    bar.value = 0;
    this.refresh();
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      bar.value = e.loaded / e.total;
      this.say(`Uploading: ${(e.loaded / MB).toFixed(1)} of ${(e.total / MB).toFixed(1)} MB.`);
    });
    xhr.upload.addEventListener("load", () => {
      bar.removeAttribute("value"); // the server checks every image: no measure of that from here
      this.say("Checking the images…");
    });
    const done = () => {
      this.request = null;
      bar.hidden = $("upload-cancel").hidden = true;
      this.refresh();
    };
    xhr.addEventListener("load", () => {
      done();
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        return this.say(`The upload failed (HTTP ${xhr.status}).`, "error");
      }
      if (xhr.status !== 201) return this.say(`Not uploaded: ${answer.message}.`, "error");
      this.show(answer);
      this.clear();
      this.onUploaded(answer);
    });
    xhr.addEventListener("error", () => {
      done();
      this.say("The upload was cut off: the server refused it or the connection dropped.", "error");
    });
    xhr.addEventListener("abort", () => {
      done();
      this.say("Upload cancelled.");
    });
    xhr.open("POST", api.datasets(title));
    xhr.send(form);
  }

  // Nothing staged: the set just sent is on the server now.
  clear() {
    this.setZip(null);
    for (const row of [...this.rows]) this.removeClass(row);
    this.addClass();
    this.addClass();
    $("upload-title").value = "";
  }

  // What the server made of the upload: its classes and counts, and what it skipped, and why.
  show(answer) {
    this.uploaded = answer;
    const classes = answer.classes.map((c) => `${c.name} (${c.images.toLocaleString("en")})`).join(", ");
    this.say(`Uploaded "${answer.title}": ${plural(answer.images, "image")} in ${answer.classes.length} classes: ${classes}. A race can learn from up to ${answer.capacity.toLocaleString("en")} of them; ${answer.test_size.toLocaleString("en")} are held out to test.`, "done");
    const skipped = $("upload-skipped");
    skipped.hidden = !answer.skipped_count;
    skipped.querySelector("summary").textContent = `${plural(answer.skipped_count, "file")} skipped`;
    const more = answer.skipped_count - answer.skipped.length;
    skipped.querySelector("ul").replaceChildren(
      ...answer.skipped.map((s) => element("li", {}, element("code", {}, s.file), `: ${s.reason}`)),
      ...(more > 0 ? [element("li", {}, `and ${plural(more, "more")}`)] : []),
    );
    $("upload-delete").hidden = $("upload-keep-row").hidden = false;
    $("upload-keep").checked = answer.kept;
  }

  // Kept past its expiry, and out of reach of the disk cap, for a term's lessons.
  async keep(kept) {
    const upload = this.uploaded;
    if (!upload) return;
    const response = await fetch(api.dataset(upload.id), { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ kept }) });
    const answer = await response.json();
    if (!response.ok) {
      $("upload-keep").checked = !kept;
      return this.say(`${kept ? "Not kept" : "Still kept"}: ${answer.message}.`, "error");
    }
    this.uploaded = answer;
    this.say(kept ? `"${answer.title}" is kept until it is deleted.` : `"${answer.title}" will be deleted after ${plural(this.limits.days, "day")} unused.`, "done");
  }

  async remove() {
    const upload = this.uploaded;
    if (!upload) return;
    const response = await fetch(api.dataset(upload.id), { method: "DELETE" });
    if (!response.ok && response.status !== 404) return this.say(`Not deleted: ${(await response.json()).message}.`, "error");
    this.uploaded = null;
    $("upload-delete").hidden = $("upload-keep-row").hidden = $("upload-skipped").hidden = true;
    this.say(`Deleted "${upload.title}" from the server; its races' curves stay, its images are gone.`);
    this.onDeleted(upload.id);
  }
}
