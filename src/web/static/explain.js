// SketchCAM explanations on the drawing page: stroke importance, the Replay timeline, "Why A not B".
//
// Hooks into app.js through its exported hooks (onStrokes, onResult), so app.js stays unchanged:
//   StrokeImportance - after each result, POST /explain_strokes and colour the user's strokes
//   TimelineView     - "Replay": POST /timeline, step through or play the prediction per stroke
//   CompareView      - "Why A not B": POST /compare for the top two (or chosen) classes
// Each uses its own LatestOnly client (a stale answer never overwrites a newer one) and a
// Coalescer (at most one request in flight; only the newest waiting one is sent next).

import { hooks, LatestOnly, LOGICAL_SIZE, loadClasses } from "./app.js";
import { jetColour, jetGradient } from "./colormap.js";
import { describeFailure, methodName } from "./messages.js";
import { isEmptyAnswer, isRecognised } from "./verdict.js";

export { jetColour } from "./colormap.js";

const PLAY_INTERVAL_MS = 800;
const FORWARD_ONLY_METHODS = new Set(["scorecam", "eigencam"]); // no gradient to contrast
const REPLAY_PROMPT = "Draw, then press Replay to see the prediction after each stroke.";

/** Runs async tasks one at a time; while one runs, only the newest waiting task is kept. */
export class Coalescer {
  constructor() { this.running = false; this.pending = null; }

  run(task) {
    if (this.running) { this.pending = task; return; }
    this.running = true;
    Promise.resolve().then(task).catch((error) => console.error("SketchCAM:", error)).finally(() => {
      this.running = false;
      const next = this.pending;
      this.pending = null;
      if (next) this.run(next);
    });
  }
}

/** POST through a LatestOnly client: the data, or null when stale; errors go to ``onError`` as words. */
async function postLatest(client, path, body, onError) {
  try {
    const answer = await client.post(path, body);
    if (!answer) return null;
    if (!answer.ok || !answer.data.success) {
      onError(describeFailure({ status: answer.status, error: answer.data.error }), answer.data.error || "");
      return null;
    }
    return answer.data;
  } catch (error) {
    onError(describeFailure(error), "");
    return null;
  }
}

/** The sketch part of a request the page sent: its strokes, or its image. */
function sketchOf(request) {
  return request.strokes ? { strokes: request.strokes } : { image: request.image };
}

/** A transparent canvas over the drawing: strokes coloured by importance, or the replay frame. */
class StrokeLayer {
  constructor(canvas, sketch) {
    this.canvas = canvas;
    this.sketch = sketch;
    this.context = canvas.getContext("2d");
    this.painted = null; // the last paint's arguments, repainted when a resize wipes the canvas
    new ResizeObserver(() => { if (this.resize()) this.repaint(); }).observe(canvas);
  }

  /** Paint the last picture again (after a resize, or at a new brush width). */
  repaint() {
    if (this.painted) this.paint(...this.painted);
  }

  /** Match the canvas to its box; true when that changed its size (which wipes it). */
  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    if (this.canvas.width === width) return false;
    this.canvas.width = width;
    this.canvas.height = width;
    return true;
  }

  clear() {
    this.resize();
    this.painted = null;
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.canvas.dataset.painted = "0";
  }

  /** Draw strokes (in logical units) with per-stroke colours, in the given order, optionally on paper. */
  paint(strokes, colours, order, paper = false) {
    this.clear();
    const context = this.context;
    const scale = this.canvas.width / LOGICAL_SIZE;
    if (paper) { context.fillStyle = "#fff"; context.fillRect(0, 0, this.canvas.width, this.canvas.height); }
    context.lineCap = "round";
    context.lineJoin = "round";
    // A touch wider than the pen so the black stroke underneath does not fringe the colour.
    context.lineWidth = this.sketch.brushSize * scale + 1;
    for (const index of order) {
      const [xs, ys] = strokes[index];
      context.strokeStyle = colours[index];
      context.fillStyle = colours[index];
      context.beginPath();
      if (xs.length === 1) {
        context.arc(xs[0] * scale, ys[0] * scale, context.lineWidth / 2, 0, 2 * Math.PI);
        context.fill();
        continue;
      }
      context.moveTo(xs[0] * scale, ys[0] * scale);
      for (let point = 1; point < xs.length; point += 1) context.lineTo(xs[point] * scale, ys[point] * scale);
      context.stroke();
    }
    this.painted = [strokes, colours, order, paper];
    this.canvas.dataset.painted = String(order.length);
  }
}

export class StrokeImportance {
  constructor(layer, sketch) {
    this.layer = layer;
    this.sketch = sketch;
    this.client = new LatestOnly();
    this.queue = new Coalescer();
    this.toggle = document.getElementById("importance-toggle");
    this.legend = document.getElementById("importance-legend");
    // The legend is drawn from the same colormap as the strokes: one scale, 0 to 1.
    document.getElementById("legend-bar").style.background = jetGradient();
    this.caption = document.getElementById("importance-caption");
    this.values = null; // mean map value along each stroke, for the drawing last explained
    this.suspended = false; // true while the replay owns the layer
    this.toggle.addEventListener("change", () => {
      if (this.toggle.checked) this.request(this.lastRequest); else this.hide();
    });
  }

  /** After each page result: explain the same strokes and class, unless switched off. */
  onResult(data, request) {
    if (isEmptyAnswer(data)) { this.lastRequest = null; this.hide(); return; }
    this.lastRequest = { request, classIndex: data.class_index };
    if (this.toggle.checked) this.request(this.lastRequest);
  }

  request(last) {
    if (!last) return;
    const { request, classIndex } = last;
    if (!request.strokes) { this.hide("Stroke importance needs a drawing, not an uploaded image."); return; }
    const body = { strokes: request.strokes, method: request.method, class_index: classIndex };
    this.queue.run(async () => {
      const data = await postLatest(this.client, "/explain_strokes", body, (error) => { this.caption.textContent = error; });
      if (!data || !this.toggle.checked || this.sketch.isEmpty()) return;
      // Colour by the mean map value along each stroke: a stroke's share of the map grows with
      // its length, so a long stroke would outrank a short one lying under the hot spot.
      this.values = data.strokes.map((stroke) => stroke.mean_heat);
      this.draw();
      const hottest = data.strokes.reduce((best, stroke) => (stroke.mean_heat > best.mean_heat ? stroke : best));
      const along = `mean map value ${hottest.mean_heat.toFixed(2)} along it`;
      this.caption.textContent = data.strokes.length > 1
        ? `Stroke ${hottest.stroke_index + 1} of ${data.strokes.length} is the hottest for ${data.class_name}: ${along} (${(hottest.share * 100).toFixed(0)}% of the map)`
        : `One stroke, ${along} for ${data.class_name}`;
      this.legend.hidden = false;
    });
  }

  /** Paint the known importance over the user's current strokes (least important first). */
  draw() {
    if (this.suspended) return;
    const strokes = this.sketch.strokes;
    const values = this.values || [];
    const count = Math.min(strokes.length, values.length);
    if (!this.toggle.checked || !count || this.sketch.background) { this.layer.clear(); return; }
    // The map's own values, on the heat map's scale: a stroke where the map is cool stays blue
    // even when it is the hottest stroke there is.
    const colours = values.map((value) => jetColour(value));
    const order = [...Array(count).keys()].sort((first, second) => values[first] - values[second]);
    this.layer.paint(strokes, colours, order);
  }

  onStrokes() {
    if (this.sketch.isEmpty()) { this.values = null; this.hide(); this.client.invalidate(); return; }
    this.draw(); // keep colouring the strokes already explained until the new answer arrives
  }

  hide(message = "") {
    this.values = null;
    this.legend.hidden = true;
    this.caption.textContent = message;
    if (!this.suspended) this.layer.clear();
  }
}

export class TimelineView {
  constructor(layer, sketch, importance) {
    this.layer = layer;
    this.sketch = sketch;
    this.importance = importance;
    this.client = new LatestOnly();
    this.button = document.getElementById("replay-button");
    this.placeholder = document.getElementById("timeline-placeholder");
    this.view = document.getElementById("timeline-view");
    this.image = document.getElementById("timeline-image");
    this.caption = document.getElementById("timeline-caption");
    this.summary = document.getElementById("timeline-summary");
    this.slider = document.getElementById("timeline-slider");
    this.playButton = document.getElementById("timeline-play");
    this.steps = document.getElementById("timeline-steps");
    this.data = null;
    this.strokes = null;
    this.timer = null;
    this.method = "gradcam";
    this.verdict = null; // the main answer's verdict and the strokes it was for
    this.failed = false; // whether the placeholder shows an error
    this.button.addEventListener("click", () => this.start());
    document.getElementById("timeline-previous").addEventListener("click", () => { this.pause(); this.show(this.current - 1); });
    document.getElementById("timeline-next").addEventListener("click", () => { this.pause(); this.show(this.current + 1); });
    document.getElementById("timeline-close").addEventListener("click", () => this.close());
    this.playButton.addEventListener("click", () => (this.timer ? this.pause() : this.play()));
    this.slider.addEventListener("input", () => { this.pause(); this.show(Number(this.slider.value) - 1); });
  }

  onResult(data, request) {
    this.method = request.method || this.method;
    if (data.top_predictions && !isEmptyAnswer(data) && request.strokes) {
      this.verdict = { strokes: JSON.stringify(request.strokes), recognised: isRecognised(data) };
    }
    if (this.failed) this.setPlaceholder(REPLAY_PROMPT); // the server answers again
  }

  setPlaceholder(text, failed = false) {
    this.placeholder.textContent = text;
    this.failed = failed;
  }

  /** The main answer's verdict for ``strokes``: true, false, or null when it is not known. */
  verdictFor(strokes) {
    const known = this.verdict && this.verdict.strokes === JSON.stringify(strokes);
    return known ? this.verdict.recognised : null;
  }

  /** One line on how the guess formed, with the main answer's verdict (never naming an unsure class). */
  summaryText(data) {
    const count = data.steps.length;
    const recognised = this.verdictFor(this.strokes);
    if (recognised === false) return `Still not sure what it is after ${count} stroke${count === 1 ? "" : "s"}.`;
    const settled = `${data.final_class} at stroke ${data.settled_after_strokes} of ${count}.`;
    return recognised ? `It became ${settled}` : `Its best guess became ${settled}`;
  }

  onStrokes() {
    this.button.disabled = this.sketch.strokes.length === 0 || Boolean(this.sketch.background);
    if (this.data) this.close("The drawing changed: press Replay again."); // a replay of an older drawing
  }

  async start() {
    this.pause();
    this.strokes = this.sketch.strokesForApi();
    if (!this.strokes.length) return;
    this.setPlaceholder("Replaying...");
    const data = await postLatest(this.client, "/timeline", { strokes: this.strokes, method: this.method, top_k: 3 },
      (error) => this.setPlaceholder(error, true));
    if (!data) return;
    this.data = data;
    this.importance.suspended = true;
    this.placeholder.hidden = true;
    this.view.hidden = false;
    this.slider.max = String(data.steps.length);
    this.summary.textContent = this.summaryText(data);
    this.steps.replaceChildren(...data.steps.map((step, index) => this.stepChip(step, index)));
    this.show(0);
    if (data.steps.length > 1) this.play();
  }

  stepChip(step, index) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${step.strokes}: ${step.predicted} ${(step.confidence * 100).toFixed(0)}%`;
    button.title = `After stroke ${step.strokes}: ${step.top.map((entry) => `${entry.class_name} ${(entry.confidence * 100).toFixed(1)}%`).join(", ")}`;
    button.addEventListener("click", () => { this.pause(); this.show(index); });
    item.append(button);
    return item;
  }

  /** Show step ``index``: its map, its caption, and the first strokes on the drawing. */
  show(index) {
    if (!this.data) return;
    const steps = this.data.steps;
    this.current = Math.max(0, Math.min(steps.length - 1, index));
    const step = steps[this.current];
    this.image.src = step.gradcam_overlay;
    this.image.alt = `The map after stroke ${step.strokes} of ${steps.length}, for its best guess, ${step.predicted}`;
    this.slider.value = String(this.current + 1);
    const others = step.top.slice(1).map((entry) => `${entry.class_name} ${(entry.confidence * 100).toFixed(0)}%`).join(", ");
    this.caption.textContent = `After stroke ${step.strokes} of ${steps.length}: best guess ${step.predicted} ${(step.confidence * 100).toFixed(1)}%`
      + (others ? ` (then ${others})` : "");
    this.steps.querySelectorAll("button").forEach((button, position) => button.setAttribute("aria-current", String(position === this.current)));
    const shown = [...Array(step.strokes).keys()];
    const colours = this.strokes.map((_, stroke) => (stroke === this.current ? "#e8590c" : "#111"));
    this.layer.paint(this.strokes, colours, shown, true);
  }

  play() {
    if (!this.data) return;
    if (this.current >= this.data.steps.length - 1) this.show(0);
    this.playButton.textContent = "Pause";
    this.timer = setInterval(() => {
      if (this.current >= this.data.steps.length - 1) { this.pause(); return; }
      this.show(this.current + 1);
    }, PLAY_INTERVAL_MS);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    this.playButton.textContent = "Play";
  }

  close(message = REPLAY_PROMPT) {
    this.pause();
    this.client.invalidate();
    this.data = null;
    this.view.hidden = true;
    this.placeholder.hidden = false;
    this.setPlaceholder(message);
    this.importance.suspended = false;
    this.importance.draw();
  }
}

export class CompareView {
  constructor() {
    this.client = new LatestOnly();
    this.queue = new Coalescer();
    this.first = document.getElementById("compare-a");
    this.second = document.getElementById("compare-b");
    this.view = document.getElementById("compare-view");
    this.caption = document.getElementById("compare-caption");
    this.active = false; // after the first Compare, every new result refreshes the comparison
    this.last = null;
    this.topIndices = []; // the class indices of the last answer's top two
    document.getElementById("compare-button").addEventListener("click", () => { this.active = true; this.compare(); });
    for (const select of [this.first, this.second]) select.addEventListener("change", () => { if (this.active) this.compare(); });
    this.loadClasses();
  }

  async loadClasses() {
    try {
      const classes = await loadClasses();
      const options = (label) => [new Option(label, ""), ...classes.map((name, index) => new Option(name, String(index)))];
      this.first.replaceChildren(...options("Top 1"));
      this.second.replaceChildren(...options("Top 2"));
    } catch (error) {
      this.caption.textContent = `Could not load the classes: ${error}`;
    }
  }

  onResult(data, request) {
    if (isEmptyAnswer(data)) { this.reset(); return; }
    if (!data.top_predictions || !data.top_predictions.length) return; // /analyze_class carries no ranking
    this.last = { sketch: sketchOf(request), method: request.method };
    const [top, runnerUp] = data.top_predictions;
    this.topIndices = data.top_predictions.slice(0, 2).map((item) => item.class_index);
    if (this.first.options.length) this.first.options[0].text = `Top 1: ${top.class}`;
    if (this.second.options.length && runnerUp) this.second.options[0].text = `Top 2: ${runnerUp.class}`;
    if (this.active) this.compare();
  }

  onStrokes(sketch) {
    if (sketch.isEmpty()) this.reset();
  }

  /** Back to the defaults (top two, no comparison shown), as on a fresh page. */
  reset() {
    this.client.invalidate();
    this.active = false;
    this.last = null;
    this.topIndices = [];
    this.view.hidden = true;
    this.caption.textContent = "";
    for (const [select, label] of [[this.first, "Top 1"], [this.second, "Top 2"]]) {
      select.value = "";
      if (select.options.length) select.options[0].text = label;
    }
  }

  /** Show ``message`` instead of a comparison, with the previous maps cleared. */
  showProblem(message) {
    // Comparisons already asked for would bring the old maps back: drop them.
    this.queue.pending = null;
    this.client.invalidate();
    this.view.hidden = true;
    for (const id of ["compare-for", "compare-against"]) document.getElementById(id).removeAttribute("src");
    this.caption.textContent = message;
  }

  /** The class index chosen in ``select``, or the top class at ``rank`` when left on "Top N". */
  chosen(select, rank) {
    return select.value !== "" ? Number(select.value) : this.topIndices[rank];
  }

  compare() {
    if (!this.last) { this.caption.textContent = "Draw something first."; return; }
    const sameClass = "Pick two different classes: A and B are the same class.";
    if (this.chosen(this.first, 0) === this.chosen(this.second, 1)) { this.showProblem(sameClass); return; }
    const body = { ...this.last.sketch };
    body.method = FORWARD_ONLY_METHODS.has(this.last.method) ? "gradcam" : this.last.method;
    if (this.first.value !== "") body.class_a = Number(this.first.value);
    if (this.second.value !== "") body.class_b = Number(this.second.value);
    this.queue.run(async () => {
      const data = await postLatest(this.client, "/compare", body, (error, raw) => {
        this.showProblem(raw.includes("two different classes") ? sameClass : error);
      });
      if (!data) return;
      const a = data.class_a;
      const b = data.class_b;
      const forImage = document.getElementById("compare-for");
      const againstImage = document.getElementById("compare-against");
      forImage.src = data.contrast_overlay;
      forImage.alt = `Where the sketch argues for ${a.class_name} over ${b.class_name}`;
      againstImage.src = data.against_overlay;
      againstImage.alt = `Where the sketch argues for ${b.class_name} over ${a.class_name}`;
      document.getElementById("compare-for-caption").textContent = `For ${a.class_name} (${(a.confidence * 100).toFixed(1)}%) over ${b.class_name}`;
      document.getElementById("compare-against-caption").textContent = `For ${b.class_name} (${(b.confidence * 100).toFixed(1)}%) over ${a.class_name}`;
      this.caption.textContent = `Why ${a.class_name} and not ${b.class_name}: logit margin ${data.logit_margin.toFixed(2)} (${methodName(data.method)})`;
      this.view.hidden = false;
    });
  }
}

const sketch = window.SketchCAM.canvas;
const layer = new StrokeLayer(document.getElementById("importance-canvas"), sketch);
const importance = new StrokeImportance(layer, sketch);
const timeline = new TimelineView(layer, sketch, importance);
const comparison = new CompareView();
// The brush slider widens the coloured strokes too, not only the black ink under them.
document.getElementById("brush-size").addEventListener("input", () => layer.repaint());
hooks.onResult.push((data, request) => { importance.onResult(data, request); timeline.onResult(data, request); comparison.onResult(data, request); });
hooks.onStrokes.push(() => { importance.onStrokes(); timeline.onStrokes(); comparison.onStrokes(sketch); });
window.SketchCAM.explain = { importance, timeline, comparison };
