// The in-text span editor (st.components.v2). Every key and click is handled here;
// only save / accept / skip / flag call setTriggerValue, which reruns the page.
//
// Words are text nodes only (textContent), never HTML. The DOM is built once per item:
// each word has a fixed element with its edge handles; a span's badge is a CSS
// pseudo-element over its last word. A key press only toggles classes and attributes on
// the few words whose state changed, and nothing it changes takes space in the flow, so
// the text never re-wraps under the pointer (and stays fast on long abstracts).
// The draft (spans, undo/redo, marks, action count) is kept in sessionStorage under the
// item key, so a rerun or a remount of the same item restores it.

const INSTANCES = new WeakMap();
const DRAFT_PREFIX = "span-editor:draft:";
const UNDO_LIMIT = 300;
const RESUBMIT_GUARD_MS = 1200; // a second S while the page reruns would act on the next item
const NO_SPACE_BEFORE = /^[.,;:!?%)\]}]+$/;
const NO_SPACE_AFTER = /^[(\[{]+$/;

export const KEYS = [
  ["← / →", "move the word cursor"],
  ["Shift + ← / →", "extend the selection"],
  ["↑ / ↓, Home / End", "previous / next sentence, first / last word"],
  ["D or Enter", "mark the selection (or the word at the cursor)"],
  ["Backspace / Delete", "remove the span at the cursor"],
  ["[ / ]", "move the span's START one word left / right"],
  ["{ / }", "move the span's END one word left / right"],
  ["Tab / Shift + Tab", "next / previous low-confidence span"],
  ["Y / N", "answer 'also mark every occurrence?'"],
  ["Ctrl + Z", "undo"],
  ["Ctrl + Shift + Z, Ctrl + Y", "redo"],
  ["S or Ctrl + Enter", "save and go to the next item"],
  ["A", "accept the model's labels (asks first if you edited)"],
  ["K", "skip this item"],
  ["F", "flag with a note (Enter flags, Esc cancels)"],
  ["?", "show / hide this list"],
  ["Esc", "clear the selection, close a prompt or this list"],
  ["Mouse", "drag across words or click + Shift-click to mark; click a span to remove it; drag its edge handles to move a boundary"],
];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function sameSpans(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].s !== b[i].s || a[i].e !== b[i].e || a[i].t !== b[i].t) return false;
  }
  return true;
}

function copySpans(spans) {
  return spans.map((span) => ({ s: span.s, e: span.e, t: span.t }));
}

function fingerprint(words) {
  // FNV-1a over the words: a draft is restored only onto the same text
  let hash = 0x811c9dc5;
  for (const word of words) {
    for (let i = 0; i < word.length; i++) {
      hash ^= word.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    hash = Math.imul(hash ^ 0x1f, 0x01000193) >>> 0;
  }
  return `${words.length}:${hash.toString(16)}`;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// ---- the item: words, sentences and the model's spans -------------------------------

function readItem(data) {
  const words = [];
  const scores = [];
  const sentenceOf = [];
  const sentences = []; // {start, end} in word indices, end exclusive
  const predicted = [];
  (data.sentences || []).forEach((sentence, index) => {
    const start = words.length;
    let open = null;
    sentence.words.forEach((word, offset) => {
      const at = start + offset;
      const label = String(sentence.labels[offset] || "O");
      words.push(String(word));
      scores.push(Number(sentence.scores[offset] ?? 1));
      sentenceOf.push(index);
      const [prefix, type] = label === "O" ? ["O", ""] : [label.slice(0, 1), label.slice(2)];
      // an I- that continues nothing starts a span (IOB1 input becomes IOB2 output)
      if (prefix === "I" && open && open.t === type) {
        open.e = at + 1;
      } else if (prefix === "B" || prefix === "I") {
        open = { s: at, e: at + 1, t: type || data.entity_label };
        predicted.push(open);
      } else {
        open = null;
      }
    });
    sentences.push({ start, end: words.length });
  });
  const predictedScore = new Map();
  for (const span of predicted) {
    let low = 1;
    for (let i = span.s; i < span.e; i++) low = Math.min(low, scores[i]);
    predictedScore.set(`${span.s}:${span.e}:${span.t}`, low);
  }
  return {
    key: String(data.item_key),
    words,
    scores,
    sentenceOf,
    sentences,
    predicted,
    predictedScore,
    fingerprint: fingerprint(words),
    low: Number(data.low_confidence ?? 0.6),
    label: String(data.entity_label || "Disease"),
    single: Boolean(data.single_sentence),
  };
}

// ---- draft storage -------------------------------------------------------------------

function storage() {
  try {
    return window.sessionStorage;
  } catch (error) {
    return null; // storage disabled: the editor still works, drafts do not survive a remount
  }
}

function loadDraft(item) {
  const store = storage();
  if (!store) return null;
  try {
    const draft = JSON.parse(store.getItem(DRAFT_PREFIX + item.key) || "null");
    if (!draft || draft.fingerprint !== item.fingerprint) return null;
    const fits = (spans) =>
      Array.isArray(spans) &&
      spans.every(
        (span) =>
          Number.isInteger(span.s) &&
          Number.isInteger(span.e) &&
          span.s >= 0 &&
          span.s < span.e &&
          span.e <= item.words.length &&
          item.sentenceOf[span.s] === item.sentenceOf[span.e - 1],
      );
    const snapshots = [...(draft.undo || []), ...(draft.redo || [])];
    if (!fits(draft.spans) || !snapshots.every((shot) => fits(shot.spans))) return null;
    return draft;
  } catch (error) {
    return null;
  }
}

function dropDrafts(store, exceptKey, doomed) {
  const names = [];
  for (let i = 0; i < store.length; i++) {
    const name = store.key(i);
    if (name && name.startsWith(DRAFT_PREFIX) && name !== DRAFT_PREFIX + exceptKey) names.push(name);
  }
  for (const name of names) {
    let draft = null;
    try {
      draft = JSON.parse(store.getItem(name) || "null");
    } catch (error) {
      // unreadable: dropped below
    }
    if (!draft || doomed(draft)) store.removeItem(name);
  }
}

function dropSubmittedDrafts(exceptKey) {
  // a saved / skipped item's draft goes once the page has moved on to another item
  const store = storage();
  if (store) dropDrafts(store, exceptKey, (draft) => draft.submitted);
}

// ---- the editor ----------------------------------------------------------------------

class SpanEditor {
  constructor(parent) {
    this.parent = parent;
    this.root = parent.querySelector(".span-editor-mount") || parent.appendChild(el("div"));
    this.root.className = "span-editor";
    this.root.tabIndex = 0;
    this.root.setAttribute("role", "application");
    this.root.setAttribute("aria-label", "Span editor: press ? for keys");
    this.text = this.root.appendChild(el("div", "se-text"));
    this.prompt = this.root.appendChild(el("div", "se-prompt"));
    this.prompt.setAttribute("role", "status");
    this.status = this.root.appendChild(el("div", "se-status"));
    this.help = this.root.appendChild(this.buildHelp());
    this.item = null;
    this.generation = 0;
    this.saveTimer = null;
    this.busyUntil = 0;
    this.gesture = null;
    this.onKey = (event) => this.handleKey(event);
    this.onDown = (event) => this.pointerDown(event);
    this.onMove = (event) => this.pointerMove(event);
    this.onUp = (event) => this.pointerUp(event);
    this.onHide = () => this.flushDraft();
    this.root.addEventListener("keydown", this.onKey);
    this.text.addEventListener("pointerdown", this.onDown);
    this.text.addEventListener("pointermove", this.onMove);
    this.text.addEventListener("pointerup", this.onUp);
    this.text.addEventListener("pointercancel", this.onUp);
    window.addEventListener("pagehide", this.onHide);
  }

  destroy() {
    this.flushDraft();
    this.root.removeEventListener("keydown", this.onKey);
    this.text.removeEventListener("pointerdown", this.onDown);
    this.text.removeEventListener("pointermove", this.onMove);
    this.text.removeEventListener("pointerup", this.onUp);
    this.text.removeEventListener("pointercancel", this.onUp);
    window.removeEventListener("pagehide", this.onHide);
    this.root.replaceChildren();
  }

  // -- showing an item --

  show(data, setTriggerValue) {
    this.setTriggerValue = setTriggerValue;
    const item = readItem(data);
    const sameItem = this.item && this.item.key === item.key && this.item.fingerprint === item.fingerprint;
    if (sameItem) {
      // same words, new settings (threshold, label): keep the draft, redraw the marks
      Object.assign(this.item, { low: item.low, label: item.label, single: item.single });
      this.render();
      return;
    }
    if (this.item) this.flushDraft();
    dropSubmittedDrafts(item.key);
    this.item = item;
    this.restore(loadDraft(item));
    this.build();
    this.render();
    this.root.focus({ preventScroll: true });
  }

  restore(draft) {
    const item = this.item;
    this.spans = draft ? copySpans(draft.spans) : copySpans(item.predicted);
    this.undo = draft ? draft.undo || [] : [];
    this.redo = draft ? draft.redo || [] : [];
    this.marks = draft ? draft.marks || [] : [];
    this.actions = draft ? draft.actions || 0 : 0;
    this.cursor = draft && draft.cursor < item.words.length ? draft.cursor : 0;
    this.anchor = null;
    this.submitted = false;
    this.ask = null; // the open prompt: {kind: "mark" | "accept" | "flag" | "sent", ...}
    this.help.hidden = true;
    this.busyUntil = 0;
  }

  snapshot() {
    return { spans: copySpans(this.spans), marks: this.marks.map((words) => [...words]) };
  }

  draft() {
    return {
      fingerprint: this.item.fingerprint,
      spans: this.spans,
      undo: this.undo,
      redo: this.redo,
      marks: this.marks,
      actions: this.actions,
      cursor: this.cursor,
      submitted: this.submitted,
    };
  }

  scheduleDraft() {
    // written after the paint: a key's visible effect does not wait for storage
    if (this.saveTimer !== null) return;
    this.saveTimer = setTimeout(() => this.flushDraft(), 30);
  }

  flushDraft() {
    if (this.saveTimer !== null) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const store = storage();
    if (!store || !this.item) return;
    const text = JSON.stringify(this.draft());
    try {
      store.setItem(DRAFT_PREFIX + this.item.key, text);
    } catch (error) {
      // storage full of other items' drafts: this item's draft matters more
      dropDrafts(store, this.item.key, () => true);
      try {
        store.setItem(DRAFT_PREFIX + this.item.key, text);
      } catch (again) {
        // still too big: editing goes on in memory
      }
    }
  }

  build() {
    const item = this.item;
    this.wordNodes = new Array(item.words.length);
    this.gapNodes = new Array(item.words.length).fill(null); // gap AFTER word i, same sentence
    this.wordState = new Array(item.words.length).fill("");
    this.gapState = new Array(item.words.length).fill("");
    const body = document.createDocumentFragment();
    const paragraph = el("p", item.single ? "se-abstract se-single" : "se-abstract");
    for (const sentence of item.sentences) {
      const line = el("span", "se-sentence");
      for (let i = sentence.start; i < sentence.end; i++) {
        const word = el("span", "w");
        word.dataset.i = String(i);
        word.appendChild(document.createTextNode(item.words[i]));
        const left = el("span", "h hl");
        const right = el("span", "h hr");
        left.dataset.edge = "start";
        right.dataset.edge = "end";
        word.append(left, right);
        if (item.scores[i] < item.low) word.dataset.doubt = "";
        this.wordNodes[i] = word;
        line.appendChild(word);
        if (i + 1 < sentence.end) {
          const tight = NO_SPACE_BEFORE.test(item.words[i + 1]) || NO_SPACE_AFTER.test(item.words[i]);
          const gap = el("span", "g", tight ? "" : " ");
          this.gapNodes[i] = gap;
          line.appendChild(gap);
        }
      }
      paragraph.append(line, document.createTextNode(" "));
    }
    body.appendChild(paragraph);
    this.text.replaceChildren(body);
  }

  // -- the model: spans, selection, labels --

  spanAt(index) {
    for (let k = 0; k < this.spans.length; k++) {
      const span = this.spans[k];
      if (span.s <= index && index < span.e) return k;
      if (span.s > index) break;
    }
    return -1;
  }

  sentenceBounds(index) {
    return this.item.sentences[this.item.sentenceOf[index]];
  }

  selection() {
    if (this.anchor === null) return null;
    return [Math.min(this.anchor, this.cursor), Math.max(this.anchor, this.cursor) + 1];
  }

  spanScore(span) {
    const score = this.item.predictedScore.get(`${span.s}:${span.e}:${span.t}`);
    return score === undefined ? null : score; // null: the curator's span, no model score
  }

  isLow(span) {
    const score = this.spanScore(span);
    return score !== null && score < this.item.low;
  }

  labels(spans) {
    const item = this.item;
    const rows = item.sentences.map((sentence) => new Array(sentence.end - sentence.start).fill("O"));
    for (const span of spans) {
      const sentence = item.sentences[item.sentenceOf[span.s]];
      const row = rows[item.sentenceOf[span.s]];
      for (let i = span.s; i < span.e; i++) {
        row[i - sentence.start] = `${i === span.s ? "B" : "I"}-${span.t}`;
      }
    }
    return rows;
  }

  change(mutate) {
    // one undoable step; a mutation that changes nothing leaves no step behind
    const before = this.snapshot();
    mutate();
    if (sameSpans(before.spans, this.spans) && before.marks.length === this.marks.length) return false;
    this.submitted = false; // edited after a save the page did not take: a live draft again
    this.undo.push(before);
    if (this.undo.length > UNDO_LIMIT) this.undo.shift();
    this.redo = [];
    return true;
  }

  insertSpan(start, end, type) {
    // the new span replaces whatever it overlaps
    this.spans = this.spans.filter((span) => span.e <= start || span.s >= end);
    this.spans.push({ s: start, e: end, t: type });
    this.spans.sort((a, b) => a.s - b.s);
  }

  // -- actions --

  markSelection() {
    const range = this.selection() || [this.cursor, this.cursor + 1];
    this.markRange(range[0], range[1]);
  }

  markRange(start, end) {
    const bounds = this.sentenceBounds(start);
    end = Math.min(end, bounds.end); // a span never crosses a sentence
    this.change(() => this.insertSpan(start, end, this.item.label));
    this.anchor = null;
    this.cursor = start;
    this.offerEverywhere(start, end);
  }

  occurrences(start, end) {
    // other places in the item with the same words, free of spans
    const words = this.item.words;
    const length = end - start;
    const found = [];
    for (const sentence of this.item.sentences) {
      for (let p = sentence.start; p + length <= sentence.end; p++) {
        if (p === start) continue;
        let same = true;
        for (let q = 0; q < length && same; q++) same = words[p + q] === words[start + q];
        if (!same) continue;
        const free = this.spans.every((span) => span.e <= p || span.s >= p + length);
        const apart = found.every((other) => other.e <= p);
        if (free && apart) found.push({ s: p, e: p + length });
      }
    }
    return found;
  }

  offerEverywhere(start, end) {
    const places = this.occurrences(start, end);
    if (places.length === 0) return;
    this.ask = { kind: "mark", places, words: this.item.words.slice(start, end) };
  }

  answerEverywhere(yes) {
    const ask = this.ask;
    this.ask = null;
    if (!yes) return;
    this.change(() => {
      for (const place of ask.places) this.insertSpan(place.s, place.e, this.item.label);
      const known = this.marks.some((words) => words.join("\u0001") === ask.words.join("\u0001"));
      if (!known) this.marks = [...this.marks, ask.words];
    });
  }

  removeAtCursor() {
    const range = this.selection() || [this.cursor, this.cursor + 1];
    this.change(() => {
      this.spans = this.spans.filter((span) => span.e <= range[0] || span.s >= range[1]);
    });
    this.anchor = null;
  }

  moveEdge(edge, step) {
    const k = this.spanAt(this.cursor);
    if (k < 0) return;
    const span = this.spans[k];
    const bounds = this.sentenceBounds(span.s);
    const floor = k > 0 ? Math.max(bounds.start, this.spans[k - 1].e) : bounds.start;
    const ceiling = k + 1 < this.spans.length ? Math.min(bounds.end, this.spans[k + 1].s) : bounds.end;
    const s = edge === "start" ? Math.min(Math.max(span.s + step, floor), span.e - 1) : span.s;
    const e = edge === "end" ? Math.max(Math.min(span.e + step, ceiling), span.s + 1) : span.e;
    this.change(() => {
      this.spans[k] = { s, e, t: span.t };
    });
    this.cursor = Math.min(Math.max(this.cursor, s), e - 1); // the cursor stays on the span
  }

  moveCursor(step, extend) {
    const next = Math.min(Math.max(this.cursor + step, 0), this.item.words.length - 1);
    if (extend) {
      if (this.anchor === null) this.anchor = this.cursor;
      const bounds = this.sentenceBounds(this.anchor);
      this.cursor = Math.min(Math.max(next, bounds.start), bounds.end - 1);
    } else {
      this.anchor = null;
      this.cursor = next;
    }
  }

  moveSentence(step) {
    const sentences = this.item.sentences;
    const index = Math.min(Math.max(this.item.sentenceOf[this.cursor] + step, 0), sentences.length - 1);
    this.anchor = null;
    this.cursor = sentences[index].start;
  }

  jumpLow(step) {
    const low = this.spans.filter((span) => this.isLow(span));
    if (low.length === 0) return false;
    let target;
    if (step > 0) target = low.find((span) => span.s > this.cursor) || low[0];
    else target = [...low].reverse().find((span) => span.e <= this.cursor) || low[low.length - 1];
    this.anchor = null;
    this.cursor = target.s;
    return true;
  }

  undoStep(from, to) {
    if (from.length === 0) return;
    to.push(this.snapshot());
    const shot = from.pop();
    this.spans = copySpans(shot.spans);
    this.marks = shot.marks;
    this.ask = null;
    this.anchor = null;
  }

  acceptPrediction(confirmed) {
    if (!confirmed && !sameSpans(this.spans, this.item.predicted)) {
      this.ask = { kind: "accept" };
      return;
    }
    this.change(() => {
      this.spans = copySpans(this.item.predicted);
    });
    this.send("accept", "");
  }

  send(action, note) {
    const now = performance.now();
    if (now < this.busyUntil) return;
    this.busyUntil = now + RESUBMIT_GUARD_MS;
    const event = {
      action,
      item_key: this.item.key,
      labels: this.labels(action === "accept" ? this.item.predicted : this.spans),
      note,
      mark_everywhere: this.marks,
      actions: this.actions,
    };
    this.submitted = true;
    this.ask = { kind: "sent", action };
    this.flushDraft();
    this.setTriggerValue("event", event);
  }

  // -- keyboard --

  handleKey(event) {
    if (!this.item || this.item.words.length === 0) return;
    const inNote = event.target && event.target.classList && event.target.classList.contains("se-note");
    if (inNote) {
      this.noteKey(event);
      return;
    }
    this.actions += 1; // counted first: the event S sends includes the S itself
    if (this.perform(event)) {
      event.preventDefault();
      event.stopPropagation(); // the app's own shortcuts must not see the editor's keys
      this.render();
      this.scheduleDraft();
    } else {
      this.actions -= 1;
    }
  }

  noteKey(event) {
    if (event.key === "Enter") {
      event.preventDefault();
      const note = event.target.value.trim();
      this.actions += 1;
      this.send("flag", note);
      this.render();
      this.root.focus({ preventScroll: true });
    } else if (event.key === "Escape") {
      event.preventDefault();
      this.ask = null;
      this.render();
      this.root.focus({ preventScroll: true });
    }
    event.stopPropagation(); // typing a note is not a command
  }

  perform(event) {
    const key = event.key;
    const lower = key.length === 1 ? key.toLowerCase() : key;
    const ctrl = event.ctrlKey || event.metaKey;
    if (event.altKey) return false;
    if (this.ask && this.ask.kind === "sent") this.ask = null; // the page kept this item
    if (this.ask && this.ask.kind === "mark") {
      if (!ctrl && (lower === "y" || lower === "n")) {
        this.answerEverywhere(lower === "y");
        return true;
      }
      this.ask = null; // any other key declines and does its own job
    }
    if (this.ask && this.ask.kind === "accept") {
      this.ask = null;
      if (!ctrl && lower === "a") {
        this.acceptPrediction(true);
        return true;
      }
      if (key === "Escape") return true;
    }
    if (ctrl) return this.ctrlKey(lower, event.shiftKey);
    switch (lower) {
      case "ArrowLeft":
      case "ArrowRight":
        this.moveCursor(lower === "ArrowLeft" ? -1 : 1, event.shiftKey);
        this.reveal = true;
        return true;
      case "ArrowUp":
      case "ArrowDown":
        this.moveSentence(lower === "ArrowUp" ? -1 : 1);
        this.reveal = true;
        return true;
      case "Home":
      case "End":
        this.anchor = null;
        this.cursor = lower === "Home" ? 0 : this.item.words.length - 1;
        this.reveal = true;
        return true;
      case "d":
      case "Enter":
        this.markSelection();
        return true;
      case "Backspace":
      case "Delete":
        this.removeAtCursor();
        return true;
      case "[":
      case "]":
        this.moveEdge("start", lower === "[" ? -1 : 1);
        return true;
      case "{":
      case "}":
        this.moveEdge("end", lower === "{" ? -1 : 1);
        return true;
      case "Tab":
        this.reveal = true;
        return this.jumpLow(event.shiftKey ? -1 : 1); // none left: Tab leaves the editor
      case "a":
        this.acceptPrediction(false);
        return true;
      case "s":
        this.send("save", "");
        return true;
      case "k":
        this.send("skip", "");
        return true;
      case "f":
        this.ask = { kind: "flag" };
        return true;
      case "?":
        this.help.hidden = !this.help.hidden;
        return true;
      case "Escape":
        if (!this.help.hidden) this.help.hidden = true;
        else if (this.ask) this.ask = null;
        else this.anchor = null;
        return true;
      default:
        return false;
    }
  }

  ctrlKey(lower, shift) {
    if (lower === "z") {
      if (shift) this.undoStep(this.redo, this.undo);
      else this.undoStep(this.undo, this.redo);
      return true;
    }
    if (lower === "y") {
      this.undoStep(this.redo, this.undo);
      return true;
    }
    if (lower === "Enter") {
      this.send("save", "");
      return true;
    }
    return false;
  }

  // -- mouse --

  wordAt(event) {
    const host = this.root.getRootNode();
    const finder = typeof host.elementFromPoint === "function" ? host : document;
    const node = finder.elementFromPoint(event.clientX, event.clientY);
    const word = node && node.closest ? node.closest(".w") : null;
    return word && this.text.contains(word) ? Number(word.dataset.i) : null;
  }

  pointerDown(event) {
    if (event.button !== 0 || !this.item) return;
    const target = event.target;
    const word = target.closest ? target.closest(".w") : null;
    if (!word) return;
    event.preventDefault(); // no native text selection; the editor draws its own
    this.root.focus({ preventScroll: true });
    this.text.setPointerCapture(event.pointerId);
    const index = Number(word.dataset.i);
    const edge = target.dataset ? target.dataset.edge : undefined;
    if (edge) {
      const k = this.spanAt(index);
      this.gesture = { kind: "edge", edge, k, before: this.snapshot(), original: { ...this.spans[k] } };
      return;
    }
    this.gesture = { kind: "words", from: index, to: index, shift: event.shiftKey };
  }

  pointerMove(event) {
    const gesture = this.gesture;
    if (!gesture) return;
    const index = this.wordAt(event);
    if (index === null) return;
    if (gesture.kind === "edge") {
      this.dragEdge(gesture, index);
    } else if (index !== gesture.to) {
      const bounds = this.sentenceBounds(gesture.from);
      gesture.to = Math.min(Math.max(index, bounds.start), bounds.end - 1);
      gesture.moved = true;
      this.anchor = gesture.from;
      this.cursor = gesture.to;
    }
    this.render();
  }

  dragEdge(gesture, index) {
    // live: the span follows the pointer; the whole drag is one undo step
    const k = gesture.k;
    const span = gesture.original;
    const bounds = this.sentenceBounds(span.s);
    const floor = k > 0 ? Math.max(bounds.start, this.spans[k - 1].e) : bounds.start;
    const ceiling = k + 1 < this.spans.length ? Math.min(bounds.end, this.spans[k + 1].s) : bounds.end;
    if (gesture.edge === "start") {
      const s = Math.min(Math.max(index, floor), span.e - 1);
      this.spans[k] = { s, e: span.e, t: span.t };
    } else {
      const e = Math.max(Math.min(index + 1, ceiling), span.s + 1);
      this.spans[k] = { s: span.s, e, t: span.t };
    }
    this.cursor = this.spans[k].s;
    this.anchor = null;
  }

  pointerUp(event) {
    const gesture = this.gesture;
    this.gesture = null;
    if (!gesture) return;
    if (this.text.hasPointerCapture(event.pointerId)) this.text.releasePointerCapture(event.pointerId);
    if (event.type === "pointercancel") {
      if (gesture.kind === "edge") this.spans = gesture.before.spans;
      this.render();
      return;
    }
    if (gesture.kind === "edge") {
      if (!sameSpans(gesture.before.spans, this.spans)) {
        this.undo.push(gesture.before);
        this.redo = [];
        this.submitted = false;
      }
    } else if (gesture.moved) {
      this.markRange(Math.min(gesture.from, gesture.to), Math.max(gesture.from, gesture.to) + 1);
    } else if (gesture.shift) {
      const from = this.anchor === null ? this.cursor : this.anchor;
      const bounds = this.sentenceBounds(from);
      const to = Math.min(Math.max(gesture.from, bounds.start), bounds.end - 1);
      this.markRange(Math.min(from, to), Math.max(from, to) + 1);
    } else if (this.spanAt(gesture.from) >= 0) {
      this.cursor = gesture.from;
      this.removeAtCursor();
    } else {
      this.ask = null;
      this.cursor = gesture.from;
      this.anchor = gesture.from; // the first word of a Shift-click range
    }
    this.actions += 1;
    this.render();
    this.scheduleDraft();
  }

  // -- drawing: only what changed --

  render() {
    const item = this.item;
    const count = item.words.length;
    const word = new Array(count).fill("w");
    const gap = new Array(count).fill("g");
    const title = new Array(count).fill("");
    const badge = new Array(count).fill("");
    let lowSpans = 0;
    for (const span of this.spans) {
      const score = this.spanScore(span);
      const low = score !== null && score < item.low;
      if (low) lowSpans += 1;
      const kind = `${low ? " low" : ""}${score === null ? " own" : ""}`;
      for (let i = span.s; i < span.e; i++) {
        word[i] += ` in${kind}${i === span.s ? " s0" : ""}${i === span.e - 1 ? " s1" : ""}`;
        if (i + 1 < span.e) gap[i] += ` in${kind}`;
      }
      badge[span.e - 1] = score === null ? span.t : `${span.t} ${score.toFixed(2)}`;
      const tip = score === null ? "marked by you" : `model confidence ${score.toFixed(2)}`;
      for (let i = span.s; i < span.e; i++) title[i] = `${span.t} · ${tip}`;
    }
    const range = this.selection();
    if (range) {
      for (let i = range[0]; i < range[1]; i++) {
        word[i] += " sel";
        if (i + 1 < range[1]) gap[i] += " sel";
      }
    }
    if (this.ask && this.ask.kind === "mark") {
      // the places Y would mark, shown while the prompt asks
      for (const place of this.ask.places) for (let i = place.s; i < place.e; i++) word[i] += " cand";
    }
    if (count > 0) word[this.cursor] += " cur";
    for (let i = 0; i < count; i++) {
      const state = `${word[i]}#${badge[i]}#${title[i]}`;
      if (state !== this.wordState[i]) this.drawWord(i, word[i], badge[i], title[i]);
      this.wordState[i] = state;
      if (this.gapNodes[i] && gap[i] !== this.gapState[i]) {
        this.gapNodes[i].className = gap[i];
        this.gapState[i] = gap[i];
      }
    }
    this.drawStatus(lowSpans);
    this.drawPrompt();
    if (this.reveal && count > 0) this.revealCursor();
    this.reveal = false;
  }

  drawWord(index, className, badge, title) {
    const node = this.wordNodes[index];
    node.className = className;
    if (badge) node.dataset.badge = badge;
    else delete node.dataset.badge;
    if (title) node.title = title;
    else node.removeAttribute("title");
  }

  drawStatus(lowSpans) {
    const parts = [plural(this.spans.length, "span"), `${lowSpans} low-confidence`];
    if (this.marks.length) parts.push(`${plural(this.marks.length, "sequence")} to mark everywhere`);
    if (this.undo.length) parts.push(`${plural(this.undo.length, "edit")} (Ctrl+Z undoes)`);
    parts.push("? for keys");
    const text = parts.join(" · ");
    if (this.status.textContent !== text) this.status.textContent = text;
  }

  drawPrompt() {
    const ask = this.ask;
    const state = ask ? `${ask.kind}:${ask.places ? ask.places.length : ""}:${ask.action || ""}` : "";
    if (state === this.promptState) return;
    this.promptState = state;
    this.prompt.replaceChildren();
    this.prompt.className = ask ? `se-prompt open ${ask.kind}` : "se-prompt";
    if (!ask) return;
    if (ask.kind === "mark") {
      const more = ask.places.length;
      this.prompt.textContent = `Also mark ${more} more here and in the collection's unreviewed items? (Y / N)`;
    } else if (ask.kind === "accept") {
      this.prompt.textContent =
        "Accept the model's labels and drop your changes? Press A again to accept, Esc to keep editing.";
    } else if (ask.kind === "sent") {
      const verbs = { save: "Saving…", accept: "Accepting…", skip: "Skipping…", flag: "Flagging…" };
      this.prompt.textContent = verbs[ask.action];
    } else if (ask.kind === "flag") {
      const label = el("label", "se-note-label", "Flag note: ");
      const input = el("input", "se-note");
      input.type = "text";
      input.placeholder = "what is wrong with this item?";
      input.setAttribute("aria-label", "Flag note");
      label.appendChild(input);
      this.prompt.append(label, el("span", "se-hint", "Enter flags · Esc cancels"));
      setTimeout(() => input.focus(), 0);
    }
  }

  revealCursor() {
    const node = this.wordNodes[this.cursor];
    const box = node.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) node.scrollIntoView({ block: "nearest" });
  }

  buildHelp() {
    const help = el("div", "se-help");
    help.hidden = true;
    help.setAttribute("role", "dialog");
    help.setAttribute("aria-label", "Keys");
    help.appendChild(el("div", "se-help-title", "Keys (? or Esc closes)"));
    const grid = el("div", "se-help-grid");
    for (const [keys, what] of KEYS) grid.append(el("span", "se-key", keys), el("span", "", what));
    help.appendChild(grid);
    return help;
  }
}

export default function mountSpanEditor(component) {
  const { parentElement, data, setTriggerValue } = component;
  let editor = INSTANCES.get(parentElement);
  if (!editor) {
    editor = new SpanEditor(parentElement);
    INSTANCES.set(parentElement, editor);
  }
  // Streamlit calls this again on the same element whenever data changes (a new item)
  editor.show(data || {}, setTriggerValue);
  const generation = ++editor.generation;
  return () => {
    if (editor.generation !== generation) return; // a later call owns the editor now
    editor.destroy();
    INSTANCES.delete(parentElement);
  };
}
