// SketchCAM explanations on the drawing page: stroke importance, the Replay timeline, "Why A not B".
//
// Hooks into app.js through its exported hooks (onStrokes, onResult), so app.js stays unchanged:
//   StrokeImportance - after each result, POST /explain_strokes and colour the user's strokes
//   TimelineView     - "Replay": POST /timeline, step through or play the prediction per stroke
//   CompareView      - "Why A not B": POST /compare for the top two (or chosen) classes
// Each uses its own LatestOnly client (a stale answer never overwrites a newer one) and a
// Coalescer (at most one request in flight; only the newest waiting one is sent next).

import { hooks, LatestOnly, LOGICAL_SIZE, loadClasses } from "./app.js";

const PLAY_INTERVAL_MS = 800;
const FORWARD_ONLY_METHODS = new Set(["scorecam", "eigencam"]); // no gradient to contrast
// Jet, as the server's maps use: blue (least) -> cyan -> yellow -> red (most).
const JET_STOPS = [[0, [0, 0, 143]], [0.125, [0, 0, 255]], [0.375, [0, 255, 255]],
  [0.625, [255, 255, 0]], [0.875, [255, 0, 0]], [1, [128, 0, 0]]];

/** The jet colour of a value in [0, 1] as a CSS colour. */
export function jetColour(value) {
  const clamped = Math.min(1, Math.max(0, value));
  for (let index = 1; index < JET_STOPS.length; index += 1) {
    const [end, high] = JET_STOPS[index];
    const [start, low] = JET_STOPS[index - 1];
    if (clamped <= end) {
      const fraction = (clamped - start) / (end - start);
      const channel = (channelIndex) => Math.round(low[channelIndex] + (high[channelIndex] - low[channelIndex]) * fraction);
      return `rgb(${channel(0)}, ${channel(1)}, ${channel(2)})`;
    }
  }
  return "rgb(128, 0, 0)";
}

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

/** POST through a LatestOnly client: the data, or null when stale; errors go to ``onError``. */
async function postLatest(client, path, body, onError) {
  try {
    const answer = await client.post(path, body);
    if (!answer) return null;
    if (!answer.ok || !answer.data.success) { onError(answer.data.error || "The server refused the request"); return null; }
    return answer.data;
  } catch (error) {
    onError(`Request failed: ${error}`);
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
    new ResizeObserver(() => { if (this.resize() && this.painted) this.paint(...this.painted); }).observe(canvas);
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
    this.caption = document.getElementById("importance-caption");
    this.values = null; // mean map value along each stroke, for the drawing last explained
    this.suspended = false; // true while the replay owns the layer
    this.toggle.addEventListener("change", () => {
      if (this.toggle.checked) this.request(this.lastRequest); else this.hide();
    });
  }

  /** After each page result: explain the same strokes and class, unless switched off. */
  onResult(data, request) {
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
    const peak = Math.max(...values.slice(0, count), 1e-9);
    const colours = values.map((value) => jetColour(value / peak));
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
    this.button.addEventListener("click", () => this.start());
    document.getElementById("timeline-previous").addEventListener("click", () => { this.pause(); this.show(this.current - 1); });
    document.getElementById("timeline-next").addEventListener("click", () => { this.pause(); this.show(this.current + 1); });
    document.getElementById("timeline-close").addEventListener("click", () => this.close());
    this.playButton.addEventListener("click", () => (this.timer ? this.pause() : this.play()));
    this.slider.addEventListener("input", () => { this.pause(); this.show(Number(this.slider.value) - 1); });
  }

  onResult(data, request) { this.method = request.method || this.method; }

  onStrokes() {
    this.button.disabled = this.sketch.strokes.length === 0 || Boolean(this.sketch.background);
    if (this.data) this.close("The drawing changed: press Replay again."); // a replay of an older drawing
  }

  async start() {
    this.pause();
    this.strokes = this.sketch.strokesForApi();
    if (!this.strokes.length) return;
    this.placeholder.textContent = "Replaying...";
    const data = await postLatest(this.client, "/timeline", { strokes: this.strokes, method: this.method, top_k: 3 },
      (error) => { this.placeholder.textContent = error; });
    if (!data) return;
    this.data = data;
    this.importance.suspended = true;
    this.placeholder.hidden = true;
    this.view.hidden = false;
    this.slider.max = String(data.steps.length);
    const settled = data.settled_after_strokes;
    this.summary.textContent = `It became ${data.final_class} at stroke ${settled} of ${data.steps.length}.`;
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
    this.slider.value = String(this.current + 1);
    const others = step.top.slice(1).map((entry) => `${entry.class_name} ${(entry.confidence * 100).toFixed(0)}%`).join(", ");
    this.caption.textContent = `After stroke ${step.strokes} of ${steps.length}: ${step.predicted} ${(step.confidence * 100).toFixed(1)}%`
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

  close(message = "Draw, then press Replay to see the prediction after each stroke.") {
    this.pause();
    this.client.invalidate();
    this.data = null;
    this.view.hidden = true;
    this.placeholder.hidden = false;
    this.placeholder.textContent = message;
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
    if (!data.top_predictions) return; // /analyze_class answers carry no ranking
    this.last = { sketch: sketchOf(request), method: request.method };
    const [top, runnerUp] = data.top_predictions;
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
    this.view.hidden = true;
    this.caption.textContent = "";
    for (const [select, label] of [[this.first, "Top 1"], [this.second, "Top 2"]]) {
      select.value = "";
      if (select.options.length) select.options[0].text = label;
    }
  }

  compare() {
    if (!this.last) { this.caption.textContent = "Draw something first."; return; }
    const body = { ...this.last.sketch };
    body.method = FORWARD_ONLY_METHODS.has(this.last.method) ? "gradcam" : this.last.method;
    if (this.first.value !== "") body.class_a = Number(this.first.value);
    if (this.second.value !== "") body.class_b = Number(this.second.value);
    this.queue.run(async () => {
      const data = await postLatest(this.client, "/compare", body, (error) => { this.caption.textContent = error; });
      if (!data) return;
      const a = data.class_a;
      const b = data.class_b;
      document.getElementById("compare-for").src = data.contrast_overlay;
      document.getElementById("compare-against").src = data.against_overlay;
      document.getElementById("compare-for-caption").textContent = `For ${a.class_name} (${(a.confidence * 100).toFixed(1)}%) over ${b.class_name}`;
      document.getElementById("compare-against-caption").textContent = `For ${b.class_name} (${(b.confidence * 100).toFixed(1)}%) over ${a.class_name}`;
      this.caption.textContent = `Why ${a.class_name} and not ${b.class_name}: logit margin ${data.logit_margin.toFixed(2)} (${data.method})`;
      this.view.hidden = false;
    });
  }
}

const sketch = window.SketchCAM.canvas;
const layer = new StrokeLayer(document.getElementById("importance-canvas"), sketch);
const importance = new StrokeImportance(layer, sketch);
const timeline = new TimelineView(layer, sketch, importance);
const comparison = new CompareView();
hooks.onResult.push((data, request) => { importance.onResult(data, request); timeline.onResult(data, request); comparison.onResult(data, request); });
hooks.onStrokes.push(() => { importance.onStrokes(); timeline.onStrokes(); comparison.onStrokes(sketch); });
window.SketchCAM.explain = { importance, timeline, comparison };
