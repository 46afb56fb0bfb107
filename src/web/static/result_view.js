// The answer card: the guess and the score it rests on, errors, the stale mark, the top-5 bars,
// the heatmap/overlay stack, the model's 64x64 input, the phone strip, and the live region.

import { describeFailure } from "./messages.js";
import { guessText, isRecognised, verdictNumber } from "./verdict.js";

const STRIP_PROMPT = "Draw something: the guess shows here";

const byId = (id) => document.getElementById(id);

export class ResultView {
  constructor(onClassClick) {
    this.onClassClick = onClassClick;
    this.card = byId("answer-card");
    this.name = byId("prediction-name");
    this.confidence = byId("prediction-confidence");
    this.staleNote = byId("stale-note");
    this.error = byId("result-error");
    this.inputLayer = byId("input-layer");
    this.heatmapLayer = byId("heatmap-layer");
    this.placeholder = byId("cam-placeholder");
    this.caption = byId("cam-caption");
    this.list = byId("top-list");
    this.status = byId("status");
    this.unsureHint = byId("unsure-hint");
    this.modelInput = byId("model-input");
    this.modelInputCaption = byId("model-input-caption");
    this.strip = byId("guess-strip");
    this.stripGuess = byId("strip-guess");
    this.stripMap = byId("strip-map");
    this.announcer = byId("announcer");
    this.classNames = [];
    this.hasAnswer = false; // whether an answer (guess and maps) is on screen
    this.stripText = STRIP_PROMPT; // the strip's words for the answer on screen
    this.opacity = byId("opacity");
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
    const number = verdictNumber(data);
    this.hasAnswer = true;
    this.name.textContent = guessText(data);
    this.name.className = `prediction-name ${recognised ? "sure" : "unsure"}`;
    this.confidence.textContent = number;
    this.unsureHint.hidden = recognised;
    this.unsureHint.textContent = recognised ? "" : this.knownClassesText();
    this.stripText = `${guessText(data)} ${number}`;
    this.stripGuess.textContent = this.stripText;
    this.list.replaceChildren(...data.top_predictions.map((item) => this.classRow(item, selectedIndex)));
  }

  knownClassesText() {
    const names = this.classNames;
    return names.length ? `It knows only these ${names.length}: ${names.join(", ")}.` : "";
  }

  /** Tell screen readers the guess once the drawing has settled (not on every update). */
  announce(data) {
    const number = verdictNumber(data);
    this.announcer.textContent = isRecognised(data) ? `Guess: ${data.prediction}, ${number}` : `${guessText(data)} ${number}`;
  }

  classRow(item, selectedIndex) {
    const row = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.classIndex = item.class_index;
    button.setAttribute("aria-pressed", String(item.class_index === selectedIndex));
    const percent = (item.probability * 100).toFixed(1);
    button.title = `Show the map for ${item.class}`;
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

  /** Show the maps of ``data`` for ``className``, with ``caption`` naming the method. */
  showMaps(data, className, caption) {
    this.inputLayer.src = data.input_image;
    this.inputLayer.alt = `The sketch as the model sees it, guessed as ${data.predicted_class || data.prediction}`;
    this.heatmapLayer.src = data.gradcam_heatmap;
    this.heatmapLayer.alt = `${caption}: red where the model looked most, blue where least`;
    this.inputLayer.hidden = false;
    this.heatmapLayer.hidden = false;
    // The server's own 64x64 rendering of the sketch: what the model was given.
    this.modelInput.src = data.input_image;
    this.modelInput.hidden = false;
    this.modelInputCaption.hidden = false;
    this.stripMap.src = data.gradcam_overlay;
    this.stripMap.alt = `Map for ${className}`;
    this.stripMap.classList.remove("empty");
    this.placeholder.hidden = true;
    this.caption.textContent = caption;
    this.applyView();
  }

  /** Back to "Nothing drawn yet": no guess, no maps, no error. */
  reset() {
    this.hasAnswer = false;
    this.name.textContent = "Nothing drawn yet";
    this.name.className = "prediction-name empty";
    this.confidence.textContent = "";
    this.unsureHint.hidden = true;
    this.list.replaceChildren();
    this.inputLayer.hidden = true;
    this.heatmapLayer.hidden = true;
    this.heatmapLayer.alt = "The heat map";
    this.modelInput.hidden = true;
    this.modelInputCaption.hidden = true;
    // The strip keeps the map's room (an empty square) so nothing under it moves when a map comes.
    this.stripMap.removeAttribute("src");
    this.stripMap.alt = "";
    this.stripMap.classList.add("empty");
    this.stripText = STRIP_PROMPT;
    this.stripGuess.textContent = STRIP_PROMPT;
    this.placeholder.hidden = false;
    this.caption.textContent = "";
    this.setStatus("");
    this.clearError();
    this.setStale(false);
  }

  /** Mark the answer on screen as not matching the canvas (or as matching it again). */
  setStale(stale) {
    const shown = stale && this.hasAnswer;
    this.card.classList.toggle("stale", shown);
    this.strip.classList.toggle("stale", shown);
    this.staleNote.hidden = !shown;
  }

  /** Show why a request failed, in the answer card (and the phone strip); the answer goes stale. */
  showError(failure) {
    const text = typeof failure === "string" ? failure : describeFailure(failure);
    this.error.textContent = text;
    this.error.hidden = false;
    this.stripGuess.textContent = text;
    this.strip.classList.add("failed");
    this.announcer.textContent = text;
    this.setStale(true);
  }

  clearError() {
    this.error.textContent = "";
    this.error.hidden = true;
    if (this.strip.classList.contains("failed")) this.stripGuess.textContent = this.stripText;
    this.strip.classList.remove("failed");
  }

  setStatus(text) {
    this.status.textContent = text;
  }
}
