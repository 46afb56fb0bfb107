// SketchCAM drawing page: plain ES module, no build step.
//
// Pieces (exported, and on window.SketchCAM, so explain.js hooks in without editing this file):
//   SketchCanvas  - strokes in a fixed logical space, pointer input, undo, upload, rendering
//   LatestOnly    - POSTs JSON with sequence numbers; a stale response never overwrites a newer one
//   ResultView    - (result_view.js) the answer card: the guess (or "not sure") and the score it rests on, errors,
//                   the stale mark, top-5 bars, heatmap/overlay stack, the 64x64 model input,
//                   the phone strip, and the live region (settled guesses only)
//   hooks         - arrays of callbacks: onStrokes(strokes), onResult(data, request)
//   loadClasses   - the model's class names from GET /classes (fetched once)
// Every result is also dispatched as a "sketchcam:result" DOM event on document.

import { mapCaption, methodName } from "./messages.js";
import { ResultView } from "./result_view.js";
import { isEmptyAnswer, setOpenSetRule } from "./verdict.js";

export { guessText, isRecognised, NOT_SURE_BELOW } from "./verdict.js";

export const LOGICAL_SIZE = 512; // strokes are stored in 0..512 so a resize keeps the drawing
const UPDATE_INTERVAL_MS = 150; // at most this often while the pen moves
// A drawing with strokes over an uploaded image is sent as a PNG this large.
const COMPOSITE_SIZE = 256;
// An answer this long behind the canvas (no newer one coming) is marked stale.
const STALE_AFTER_MS = 600;

export const hooks = { onStrokes: [], onResult: [] };

let classesRequest = null;

/** The model's class names, in output order (one GET /classes per page). */
export function loadClasses() {
  if (!classesRequest) {
    classesRequest = fetch("/classes").then((response) => response.json()).then((data) => data.classes);
  }
  return classesRequest;
}

function emit(name, ...args) {
  for (const callback of hooks[name]) {
    try { callback(...args); } catch (error) { console.error(`SketchCAM hook ${name}:`, error); }
  }
}

export class SketchCanvas {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onChange = onChange; // called with {final: bool} when the drawing changes
    this.strokes = []; // [[xs], [ys]] in logical units, the Quick, Draw! layout
    this.brushSize = 8;
    this.background = null; // an uploaded image, drawn under the strokes
    this.backgroundDataUrl = null; // the uploaded file itself, sent as it is
    this.activePointer = null;
    this.bindPointer();
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  isEmpty() { return this.strokes.length === 0 && !this.background; }

  /** Strokes with integer coordinates, ready for the API's "strokes" field. */
  strokesForApi() {
    return this.strokes.map(([xs, ys]) => [xs.map(Math.round), ys.map(Math.round)]);
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    if (this.canvas.width !== width) {
      this.canvas.width = width;
      this.canvas.height = width;
      this.redraw();
    }
  }

  toLogical(event) {
    const box = this.canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) / box.width) * LOGICAL_SIZE,
      ((event.clientY - box.top) / box.height) * LOGICAL_SIZE,
    ];
  }

  bindPointer() {
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => {
      if (this.activePointer !== null || event.button > 0) return;
      this.activePointer = event.pointerId;
      canvas.setPointerCapture(event.pointerId);
      const [x, y] = this.toLogical(event);
      this.strokes.push([[x], [y]]);
      this.redraw();
      this.changed(false);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (event.pointerId !== this.activePointer) return;
      const stroke = this.strokes[this.strokes.length - 1];
      // Coalesced events keep fast pen strokes smooth on devices that batch them.
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      for (const each of events.length ? events : [event]) {
        const [x, y] = this.toLogical(each);
        stroke[0].push(x);
        stroke[1].push(y);
      }
      this.redraw();
      this.changed(false);
    });
    const finish = (event) => {
      if (event.pointerId !== this.activePointer) return;
      this.activePointer = null;
      this.changed(true);
    };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);
  }

  changed(final) {
    emit("onStrokes", this.strokes);
    this.onChange({ final });
  }

  undo() {
    if (this.strokes.length) this.strokes.pop();
    else this.setBackgroundOnly(null, null);
    this.redraw();
    this.changed(true);
  }

  clear() {
    this.strokes = [];
    this.setBackgroundOnly(null, null);
    this.redraw();
    this.changed(true);
  }

  /** Show an uploaded image (decoded ``image``) whose file is ``dataUrl``; clears the strokes. */
  setBackground(image, dataUrl) {
    this.strokes = [];
    this.setBackgroundOnly(image, dataUrl);
    this.redraw();
    this.changed(true);
  }

  setBackgroundOnly(image, dataUrl) {
    this.background = image;
    this.backgroundDataUrl = dataUrl;
  }

  /** Paint paper, the uploaded image (fitted) and the strokes onto a square context. */
  paint(context, size, strokeStyle = "#111") {
    const scale = size / LOGICAL_SIZE;
    context.save();
    context.fillStyle = "#fff";
    context.fillRect(0, 0, size, size);
    if (this.background) {
      const image = this.background;
      const fit = Math.min(size / image.width, size / image.height);
      const width = image.width * fit;
      const height = image.height * fit;
      context.drawImage(image, (size - width) / 2, (size - height) / 2, width, height);
    }
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = strokeStyle;
    context.fillStyle = strokeStyle;
    context.lineWidth = this.brushSize * scale;
    for (const [xs, ys] of this.strokes) {
      if (xs.length === 1) {
        context.beginPath();
        context.arc(xs[0] * scale, ys[0] * scale, context.lineWidth / 2, 0, 2 * Math.PI);
        context.fill();
        continue;
      }
      context.beginPath();
      context.moveTo(xs[0] * scale, ys[0] * scale);
      for (let index = 1; index < xs.length; index += 1) context.lineTo(xs[index] * scale, ys[index] * scale);
      context.stroke();
    }
    context.restore();
  }

  redraw() {
    this.paint(this.context, this.canvas.width);
    document.getElementById("canvas-hint").hidden = !this.isEmpty();
  }

  /** The canvas as a PNG data URL (strokes drawn over an uploaded image). */
  toPngDataUrl(size = COMPOSITE_SIZE) {
    const offscreen = document.createElement("canvas");
    offscreen.width = size;
    offscreen.height = size;
    this.paint(offscreen.getContext("2d"), size);
    return offscreen.toDataURL("image/png");
  }

  /**
   * The sketch for the API: strokes (rendered by the server's rasteriser); an uploaded file as it
   * is, so the server's one preprocessing sees what the API would; strokes over an upload as the
   * picture on screen.
   */
  sketchForApi() {
    if (!this.background) return { strokes: this.strokesForApi() };
    if (!this.strokes.length) return { image: this.backgroundDataUrl };
    return { image: this.toPngDataUrl() };
  }
}

export class LatestOnly {
  constructor() { this.issued = 0; this.applied = 0; }

  /** POST JSON; resolves to {data, seq} or null when a newer request has already been applied. */
  async post(path, body) {
    const seq = ++this.issued;
    const started = performance.now();
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (seq < this.applied) return null; // a newer answer is on screen already
    this.applied = seq;
    return { data, seq, milliseconds: performance.now() - started, ok: response.ok, status: response.status };
  }

  /** Make every response to requests issued so far stale (used on Clear). */
  invalidate() { this.applied = ++this.issued; }
}

export class App {
  constructor() {
    this.api = new LatestOnly();
    this.view = new ResultView((classIndex) => this.selectClass(classIndex));
    this.canvas = new SketchCanvas(document.getElementById("sketch-canvas"), (change) => this.drawingChanged(change));
    this.method = document.getElementById("method-select");
    this.selectedClass = null; // a clicked class pins its class-specific map until the drawing changes
    this.lastSent = 0;
    this.timer = null;
    this.version = 0; // counts drawing changes
    this.shownVersion = 0; // the drawing the answer on screen is for
    this.staleTimer = null;
    this.errorAfter = 0; // answers to requests up to this sequence number keep a local error up
    this.bindControls();
    this.loadMethods();
    this.showClasses();
  }

  async showClasses() {
    const target = document.getElementById("class-names");
    try {
      const names = await loadClasses();
      this.view.classNames = names;
      target.textContent = `${names.join(", ")}.`;
    } catch (error) {
      target.textContent = "(the class list could not be loaded)";
    }
  }

  bindControls() {
    document.getElementById("undo-button").addEventListener("click", () => this.canvas.undo());
    document.getElementById("clear-button").addEventListener("click", () => this.canvas.clear());
    const brush = document.getElementById("brush-size");
    brush.addEventListener("input", () => { this.canvas.brushSize = Number(brush.value); this.canvas.redraw(); });
    this.canvas.brushSize = Number(brush.value);
    document.getElementById("upload-input").addEventListener("change", (event) => this.upload(event.target));
    this.method.addEventListener("change", () => this.refresh(true));
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); this.canvas.undo(); }
    });
  }

  async loadMethods() {
    try {
      const health = await (await fetch("/health")).json();
      setOpenSetRule(health.open_set);
      this.method.replaceChildren(...health.methods.map((name) => new Option(methodName(name), name, false, name === health.default_method)));
    } catch (error) {
      this.view.showError(error);
    }
  }

  /** Read the chosen file and put it on the canvas; it is sent to the server byte for byte. */
  upload(input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    const unreadable = `${file.name} isn't an image this page can open: try a PNG or JPEG.`;
    const reader = new FileReader();
    reader.onerror = () => this.showLocalError(unreadable);
    reader.onload = () => {
      const image = new Image();
      image.onload = () => this.canvas.setBackground(image, reader.result);
      image.onerror = () => this.showLocalError(unreadable);
      image.src = reader.result;
    };
    reader.readAsDataURL(file);
  }

  /**
   * An error found here, not by the server (a file the page cannot open). It stays up until a
   * request sent after it is answered: an answer to an older request, landing later, is about
   * the canvas before the attempt and must not wipe the message away.
   */
  showLocalError(message) {
    this.errorAfter = this.api.issued;
    this.view.showError(message);
  }

  drawingChanged({ final }) {
    this.selectedClass = null;
    this.version += 1;
    if (this.canvas.isEmpty()) {
      clearTimeout(this.timer);
      this.timer = null;
      this.api.invalidate();
      this.view.reset();
      return;
    }
    this.watchForStale();
    // Throttle while the pen moves; always send the finished stroke at once. Only the answer
    // for a finished change is "settled" and read out by screen readers.
    const wait = final ? 0 : Math.max(0, UPDATE_INTERVAL_MS - (performance.now() - this.lastSent));
    if (final) { clearTimeout(this.timer); this.timer = null; }
    if (this.timer === null) this.timer = setTimeout(() => { this.timer = null; this.refresh(final); }, wait);
  }

  /** Mark the answer stale once the canvas has gone unanswered for a while after its last change. */
  watchForStale() {
    clearTimeout(this.staleTimer);
    this.staleTimer = setTimeout(() => {
      if (this.shownVersion !== this.version) this.view.setStale(true);
    }, STALE_AFTER_MS);
  }

  refresh(settled = true) {
    if (this.canvas.isEmpty()) return;
    if (this.selectedClass === null) this.predict(settled);
    else this.selectClass(this.selectedClass);
  }

  async predict(settled = true) {
    this.lastSent = performance.now();
    const request = { ...this.canvas.sketchForApi(), method: this.method.value, top_k: 5 };
    const answer = await this.send("/predict_with_gradcam", request);
    if (!answer) return;
    const data = answer.data;
    if (isEmptyAnswer(data)) { this.view.reset(); return; } // the server saw no ink
    this.view.showPrediction(data, null);
    if (settled) this.view.announce(data);
    const caption = mapCaption(data.method, data.prediction, data.layer, " (the prediction)");
    this.view.showMaps(data, data.prediction, caption);
  }

  async selectClass(classIndex) {
    this.selectedClass = classIndex;
    this.view.markSelected(classIndex);
    const request = { ...this.canvas.sketchForApi(), method: this.method.value, class_index: classIndex };
    const answer = await this.send("/analyze_class", request);
    if (!answer) return;
    const data = answer.data;
    const detail = ` (${(data.confidence * 100).toFixed(1)}%)`;
    this.view.showMaps(data, data.class_name, mapCaption(data.method, data.class_name, data.layer, detail));
  }

  /** POST through the latest-only client; shows errors and timing, returns null when stale. */
  async send(path, request) {
    const version = this.version;
    let answer;
    try {
      answer = await this.api.post(path, request);
    } catch (error) {
      this.view.showError(error);
      return null;
    }
    if (!answer) return null;
    if (!answer.ok || !answer.data.success) {
      this.view.showError({ status: answer.status, error: answer.data.error });
      return null;
    }
    this.shownVersion = version;
    if (answer.seq > this.errorAfter) this.view.clearError();
    if (version === this.version) this.view.setStale(false); // else watchForStale decides
    this.view.setStatus(`Updated in ${Math.round(answer.milliseconds)} ms`);
    emit("onResult", answer.data, request);
    document.dispatchEvent(new CustomEvent("sketchcam:result", { detail: { data: answer.data, request } }));
    return answer;
  }
}

/**
 * On phones the guess strip sticks to the top of the screen. When a scroll ends with the canvas's
 * top hidden under it (but most of the canvas in view), scroll back just enough to show that top.
 */
export function keepCanvasClearOfStrip(sketch, strip) {
  const GAP = 6; // px between the strip and the canvas
  window.addEventListener("scrollend", () => {
    if (getComputedStyle(strip).display === "none") return; // wide screens: no strip
    if (sketch.activePointer !== null) return; // nothing moves under a finger that is drawing
    const stripBottom = strip.getBoundingClientRect().bottom;
    const box = sketch.canvas.getBoundingClientRect();
    const hidden = stripBottom + GAP - box.top;
    if (hidden > 0 && hidden < box.height / 2) window.scrollBy({ top: -hidden });
  });
}

const app = new App();
keepCanvasClearOfStrip(app.canvas, document.getElementById("guess-strip"));
window.SketchCAM = { app, canvas: app.canvas, api: app.api, view: app.view, hooks };
