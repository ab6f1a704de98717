// Classroom helpers: joining a broadcast race by its code, and the list of recent races.

import { percent, seconds } from "./format.js";

const WAIT_MS = 3000;

// Returns the look-up, for a code that arrives another way (a /w/CODE link the server did not
// know, a class race lost to a restart), and `stop` for a wait the page no longer wants.
export function bindJoin(form, input, { onRace, onError, onWaiting }) {
  let attempt = 0; // a newer look-up, or a stop, makes an older answer moot
  let timer = null;
  const stop = () => {
    attempt += 1;
    clearTimeout(timer);
  };
  const join = async (typed, retrying = false) => {
    stop();
    const mine = attempt;
    const code = typed.trim().toUpperCase();
    if (!code) return onError("Type the 4-letter code shown on the teacher's screen, then press Watch.");
    // The code is right but its race was lost (the server restarted mid-race): it stays the
    // teacher's, so wait for their next race under it rather than send the class away.
    const wait = () => {
      if (!retrying) onWaiting(code); // said once: a live region repeating it would be read out again
      timer = setTimeout(() => join(code, true), WAIT_MS);
    };
    try {
      const response = await fetch(`api/codes/${encodeURIComponent(code)}`);
      const body = await response.json();
      if (mine !== attempt) return;
      if (response.ok) onRace(body.race_id);
      else if (body.code === "race_lost") wait();
      else onError(body.message || `No race found for code ${code}.`);
    } catch {
      if (mine !== attempt) return;
      if (retrying) wait(); // the server restarting again: keep waiting
      else onError("Could not reach the server to look up that code; try again in a moment.");
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    join(input.value);
  });
  return { join, stop };
}

function describe(race, labels) {
  const c = race.config;
  const results = Object.entries(race.summary || {})
    .map(([s, r]) => `${labels[s]} ${percent(r.final_test_acc, 0)}`)
    .join(", ");
  return `n ${c.n} · ${c.locked} locked · ${c.epochs} epochs · seed ${c.seed}: ${results} (${seconds(race.wall_s || 0)})`;
}

// Fill the list each time it is opened, so it shows what the class has run since.
export function bindRecent(details, list, onRace, labels) {
  details.addEventListener("toggle", async () => {
    if (!details.open) return;
    let races;
    try {
      const response = await fetch("api/races?limit=10");
      const body = await response.json();
      if (!response.ok) {
        list.textContent = `Could not list them: ${body.message}.`;
        return;
      }
      races = body.races;
    } catch {
      list.textContent = "Could not reach the server to list them; close and open this list to try again.";
      return;
    }
    list.replaceChildren(
      ...races.map((race) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = describe(race, labels);
        button.addEventListener("click", () => onRace(race.race_id));
        li.append(button);
        return li;
      }),
    );
    if (!races.length) list.textContent = "No finished races yet.";
  });
}
