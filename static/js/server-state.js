import { api } from "./api.js";

// What the page knows of the server's training worker. Opened while the worker still loads (or
// while the server replaces one that died), the page has no device: it asks /api/config again
// until the worker is up, then calls ``whenUp``, or hears that it cannot start. So the data
// slider stops at what this server's dataset holds, and a failure is said before Train is pressed.

export function workerWatch({ config, table, ui, race, controls, status, setDevice }) {
  const sayCannotTrain = () => status.cannotTrain(`this server cannot train: ${config.worker_error}`);
  const awaitWorker = async (whenUp = () => {}) => {
    for (let tries = 0; tries < 180 && !config.device && !config.worker_error; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const fresh = await fetch(api.config).then((r) => r.json(), () => null);
      if (!fresh?.device && !fresh?.worker_error) continue;
      Object.assign(config, { device: fresh.device, worker_error: fresh.worker_error });
      if (!race.id) setDevice(config.device);
      if (config.worker_error) return sayCannotTrain();
      whenUp();
      const n = table.field("n");
      const freshN = fresh.fields.find((f) => f.name === "n");
      if (freshN.max === n.max) return;
      Object.assign(n, freshN); // in place: the table and the controls hold this object
      Object.assign(config.limits.n, fresh.limits.n);
      const { value, problem } = table.fit("n", String(ui.n));
      controls.set("n", value);
      if (problem) status.set(`This server's dataset holds fewer images than the settings allow. ${problem}`, "error");
      return;
    }
  };
  return { awaitWorker, sayCannotTrain };
}
