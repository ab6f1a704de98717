// Where the page reads what it shows, decided once as it loads: a live server's API, or the
// files of a bake beside a static page (templates/_head.html marks such a page), whose races
// were recorded once and are replayed, never trained. Every path is relative to the page, so
// a site works from any folder of any host.

export const recorded = document.querySelector('meta[name="headstart-recorded"]') !== null;

export const api = recorded
  ? {
      config: "api/config.json",
      sweep: (source) => `api/sweep-${source}.json`,
      keepSweep: "api/sweep-keep.json",
      depthSweep: "api/sweep-depth.json",
      lanesSweep: "api/sweep-lanes.json",
      race: (id, ext) => `races/${id}${ext || ".json"}`,
      examples: (dataset, body, source) => `api/examples-${dataset}-${body}-${source}.json`,
      image: (dataset, version, part, index) => `images/${dataset}/${version}/${part}/${index}.png`,
      pages: { index: "index.html", embed: "embed.html" },
    }
  : {
      config: "api/config",
      sweep: (source) => `api/sweep?source=${encodeURIComponent(source)}`,
      keepSweep: "api/sweep/keep",
      depthSweep: "api/sweep/depth",
      lanesSweep: "api/sweep/lanes",
      race: (id, ext) => `api/races/${id}${ext}`,
      examples: (dataset, body, source) => `api/examples?${new URLSearchParams({ dataset, body, source })}`,
      image: (dataset, version, part, index) => `api/images/${encodeURIComponent(dataset)}/${version}/${part}/${index}.png`,
      dataset: (id) => `api/datasets/${encodeURIComponent(id)}`,
      datasets: (title) => `api/datasets${title ? `?${new URLSearchParams({ title })}` : ""}`,
      pages: { index: "", embed: "embed" },
    };
