// SketchCAM drawing page: plain ES module, no build step.
//
// Pieces (exported, and on window.SketchCAM, so explain.js hooks in without editing this file):
//   SketchCanvas  - strokes in a fixed logical space, pointer input, undo, upload, rendering
//   LatestOnly    - POSTs JSON with sequence numbers; a stale response never overwrites a newer one
//   ResultView    - the guess (or "not sure"), top-5 bars, heatmap/overlay stack, the 64x64 model
//                   input, the phone strip, and the live region (settled guesses only)
//   hooks         - arrays of callbacks: onStrokes(strokes), onResult(data, request)
//   loadClasses   - the model's class names from GET /classes (fetched once)
// Every result is also dispatched as a "sketchcam:result" DOM event on document.

export const LOGICAL_SIZE = 512; // strokes are stored in 0..512 so a resize keeps the drawing
const UPDATE_INTERVAL_MS = 150; // at most this often while the pen moves
const UPLOAD_SIZE = 256; // uploaded images are sent as a PNG this large (plenty for a 64x64 model)
// Without the server's open-set verdict (``recognised``), a top class below this is "not sure".
export const NOT_SURE_BELOW = 0.5;

export const hooks = { onStrokes: [], onResult: [] };

let classesRequest = null;

/** The model's class names, in output order (one GET /classes per page). */
export function loadClasses() {
  if (!classesRequest) {
    classesRequest = fetch("/classes").then((response) => response.json()).then((data) => data.classes);
  }
  return classesRequest;
}

/** Whether the model recognised the sketch: the server's verdict when given, else the threshold. */
export function isRecognised(data) {
  return typeof data.recognised === "boolean" ? data.recognised : data.confidence >= NOT_SURE_BELOW;
}

/** The guess as words: the class, or "Not sure - is it a <class>?". */
export function guessText(data) {
  return isRecognised(data) ? data.prediction : `Not sure - is it a ${data.prediction}?`;
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
    else this.background = null;
    this.redraw();
    this.changed(true);
  }

  clear() {
    this.strokes = [];
    this.background = null;
    this.redraw();
    this.changed(true);
  }

  setBackground(image) {
    this.strokes = [];
    this.background = image;
    this.redraw();
    this.changed(true);
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

  /** The canvas as a PNG data URL (used when an uploaded image is on it). */
  toPngDataUrl(size = UPLOAD_SIZE) {
    const offscreen = document.createElement("canvas");
    offscreen.width = size;
    offscreen.height = size;
    this.paint(offscreen.getContext("2d"), size);
    return offscreen.toDataURL("image/png");
  }

  /** The sketch for the API: strokes (rendered by the server's rasteriser) unless an image is on it. */
  sketchForApi() {
    return this.background ? { image: this.toPngDataUrl() } : { strokes: this.strokesForApi() };
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
    return { data, seq, milliseconds: performance.now() - started, ok: response.ok };
  }

  /** Make every response to requests issued so far stale (used on Clear). */
  invalidate() { this.applied = ++this.issued; }
}

export class ResultView {
  constructor(onClassClick) {
    this.onClassClick = onClassClick;
    this.name = document.getElementById("prediction-name");
    this.confidence = document.getElementById("prediction-confidence");
    this.inputLayer = document.getElementById("input-layer");
    this.heatmapLayer = document.getElementById("heatmap-layer");
    this.placeholder = document.getElementById("cam-placeholder");
    this.caption = document.getElementById("cam-caption");
    this.list = document.getElementById("top-list");
    this.status = document.getElementById("status");
    this.unsureHint = document.getElementById("unsure-hint");
    this.modelInput = document.getElementById("model-input");
    this.stripGuess = document.getElementById("strip-guess");
    this.stripMap = document.getElementById("strip-map");
    this.announcer = document.getElementById("announcer");
    this.classNames = [];
    this.opacity = document.getElementById("opacity");
    this.view = "overlay";
    this.opacity.addEventListener("input", () => this.applyView());
    for (const radio of document.querySelectorAll('input[name="view"]')) {
      radio.addEventListener("change", () => { this.view = radio.value; this.applyView(); });
    }
  }

  applyView() {
    const heatmapOnly = this.view === "heatmap";
    this.inputLayer.style.visibility = heatmapOnly ? "hidden" : "visible";
    this.heatmapLayer.style.opacity = heatmapOnly ? "1" : String(this.opacity.value / 100);
  }

  showPrediction(data, selectedIndex) {
    const recognised = isRecognised(data);
    const percent = `${(data.confidence * 100).toFixed(1)}%`;
    this.name.textContent = guessText(data);
    this.name.className = `prediction-name ${recognised ? "sure" : "unsure"}`;
    this.confidence.textContent = percent;
    this.unsureHint.hidden = recognised;
    this.unsureHint.textContent = recognised ? "" : this.knownClassesText();
    this.stripGuess.textContent = `${guessText(data)} ${percent}`;
    this.list.replaceChildren(...data.top_predictions.map((item) => this.classRow(item, selectedIndex)));
  }

  knownClassesText() {
    const names = this.classNames;
    return names.length ? `It knows only these ${names.length}: ${names.join(", ")}.` : "";
  }

  /** Tell screen readers the guess once the drawing has settled (not on every update). */
  announce(data) {
    const percent = `${Math.round(data.confidence * 100)} percent`;
    this.announcer.textContent = isRecognised(data) ? `Guess: ${data.prediction}, ${percent}` : `${guessText(data)} ${percent}`;
  }

  classRow(item, selectedIndex) {
    const row = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.classIndex = item.class_index;
    button.setAttribute("aria-pressed", String(item.class_index === selectedIndex));
    const percent = (item.probability * 100).toFixed(1);
    button.title = `Show the Grad-CAM map for ${item.class}`;
    button.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    button.querySelector(".name").textContent = item.class;
    button.querySelector(".fill").style.width = `${Math.max(0.5, item.probability * 100)}%`;
    button.querySelector(".value").textContent = `${percent}%`;
    button.addEventListener("click", () => this.onClassClick(item.class_index));
    row.append(button);
    return row;
  }

  markSelected(selectedIndex) {
    for (const button of this.list.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.classIndex) === selectedIndex));
    }
  }

  showMaps(data, caption) {
    this.inputLayer.src = data.input_image;
    this.heatmapLayer.src = data.gradcam_heatmap;
    this.inputLayer.hidden = false;
    this.heatmapLayer.hidden = false;
    // The server's own 64x64 rendering of the sketch: what the model was given.
    this.modelInput.src = data.input_image;
    this.modelInput.hidden = false;
    this.stripMap.src = data.gradcam_overlay;
    this.stripMap.hidden = false;
    this.placeholder.hidden = true;
    this.caption.textContent = caption;
    this.applyView();
  }

  reset() {
    this.name.textContent = "Nothing drawn yet";
    this.name.className = "prediction-name empty";
    this.confidence.textContent = "";
    this.unsureHint.hidden = true;
    this.list.replaceChildren();
    this.inputLayer.hidden = true;
    this.heatmapLayer.hidden = true;
    this.modelInput.hidden = true;
    this.stripMap.hidden = true;
    this.stripGuess.textContent = "Draw something: the guess shows here";
    this.placeholder.hidden = false;
    this.caption.textContent = "";
    this.setStatus("");
  }

  setStatus(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", isError);
    if (isError) this.announcer.textContent = text; // timings stay silent, errors are read out
  }
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
      this.method.replaceChildren(...health.methods.map((name) => new Option(name, name, false, name === health.default_method)));
    } catch (error) {
      this.view.setStatus(`Could not reach the server: ${error}`, true);
    }
  }

  upload(input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    const url = URL.createObjectURL(file);
    const image = new Image();
    image.onload = () => { URL.revokeObjectURL(url); this.canvas.setBackground(image); };
    image.onerror = () => { URL.revokeObjectURL(url); this.view.setStatus(`${file.name} is not an image the browser can read`, true); };
    image.src = url;
  }

  drawingChanged({ final }) {
    this.selectedClass = null;
    if (this.canvas.isEmpty()) {
      clearTimeout(this.timer);
      this.timer = null;
      this.api.invalidate();
      this.view.reset();
      return;
    }
    // Throttle while the pen moves; always send the finished stroke at once. Only the answer
    // for a finished change is "settled" and read out by screen readers.
    const wait = final ? 0 : Math.max(0, UPDATE_INTERVAL_MS - (performance.now() - this.lastSent));
    if (final) { clearTimeout(this.timer); this.timer = null; }
    if (this.timer === null) this.timer = setTimeout(() => { this.timer = null; this.refresh(final); }, wait);
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
    this.view.showPrediction(answer.data, null);
    if (settled) this.view.announce(answer.data);
    this.view.showMaps(answer.data, `Grad-CAM for the prediction, ${answer.data.prediction} (${answer.data.method}, layer ${answer.data.layer})`);
  }

  async selectClass(classIndex) {
    this.selectedClass = classIndex;
    this.view.markSelected(classIndex);
    const request = { ...this.canvas.sketchForApi(), method: this.method.value, class_index: classIndex };
    const answer = await this.send("/analyze_class", request);
    if (!answer) return;
    const data = answer.data;
    this.view.showMaps(data, `Grad-CAM for ${data.class_name} (${(data.confidence * 100).toFixed(1)}%, ${data.method})`);
  }

  /** POST through the latest-only client; shows errors and timing, returns null when stale. */
  async send(path, request) {
    let answer;
    try {
      answer = await this.api.post(path, request);
    } catch (error) {
      this.view.setStatus(`Request failed: ${error}`, true);
      return null;
    }
    if (!answer) return null;
    if (!answer.ok || !answer.data.success) {
      this.view.setStatus(answer.data.error || "The server refused the request", true);
      return null;
    }
    this.view.setStatus(`Updated in ${Math.round(answer.milliseconds)} ms`);
    emit("onResult", answer.data, request);
    document.dispatchEvent(new CustomEvent("sketchcam:result", { detail: { data: answer.data, request } }));
    return answer;
  }
}

const app = new App();
window.SketchCAM = { app, canvas: app.canvas, api: app.api, view: app.view, hooks };
