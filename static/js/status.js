// The status line every person sees, and the hidden live region a screen reader hears. Only
// what is said here is read out, not every change of the page's text.

export const sentence = (text) => text.replace(/^./, (c) => c.toUpperCase());

export class StatusLine {
  constructor(line, announcer) {
    this.line = line;
    this.announcer = announcer;
  }

  get kind() {
    return this.line.dataset.kind;
  }

  announce(text) {
    this.announcer.textContent = text;
  }

  // Shown every time; read out unless ``quiet``: a race's progress changes several times a
  // second, and a queue of stale epochs read aloud would drown out its result.
  set(text, kind = "", { quiet = false } = {}) {
    this.line.textContent = text;
    this.line.dataset.kind = kind;
    if (!quiet) this.announce(text);
  }

  // Why nothing can train here: said as the page opens, when the server gives up on its
  // worker, and when a Train is refused, in the same words each time.
  cannotTrain(why) {
    this.set(`${sentence(why)} Races it finished before can still be watched.`, "error");
  }
}
