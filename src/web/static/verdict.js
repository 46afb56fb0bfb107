// The guess as words and the one number that backs it.
//
// The server decides "recognised" with its open-set rule (GET /health's ``open_set``: a score of
// the logits, a temperature and a threshold) and sends the score it compared (``open_set_score``).
// The page shows that score beside the verdict, with the threshold it had to reach, so the two
// never tell different stories. Without a verdict from the server (an older API) the page falls
// back to "not sure below 50% confidence" and shows the confidence against that 50%.

// Without the server's open-set verdict (``recognised``), a top class below this is "not sure".
export const NOT_SURE_BELOW = 0.5;
const EXTRA_DIGITS = 4; // at most this many more decimals to tell a score from its threshold

let openSetRule = null; // {score, temperature, threshold, from_card} from GET /health

/** Remember the server's open-set rule (GET /health's ``open_set``). */
export function setOpenSetRule(rule) {
  openSetRule = rule && typeof rule.threshold === "number" ? rule : null;
}

/** Whether the server answered "nothing drawn" (no class, no map). */
export function isEmptyAnswer(data) {
  return data.empty === true;
}

/** Whether the model recognised the sketch: the server's verdict when given, else the threshold. */
export function isRecognised(data) {
  return typeof data.recognised === "boolean" ? data.recognised : data.confidence >= NOT_SURE_BELOW;
}

/** "a cat", "an airplane": the indefinite article a class name takes. */
export function withArticle(name) {
  return `${/^[aeiou]/i.test(name) ? "an" : "a"} ${name}`;
}

/** The guess as words: the class, or "Not sure - is it a <class>?". */
export function guessText(data) {
  return isRecognised(data) ? data.prediction : `Not sure - is it ${withArticle(data.prediction)}?`;
}

/** A score as text: a percentage for probabilities, else "score" and plain decimals. */
function formatter(isProbability, digits) {
  return isProbability
    ? (value) => `${(value * 100).toFixed(digits)}%`
    : (value) => value.toFixed(digits);
}

/** The number the verdict rests on, e.g. "42.0% (needs 50.0%)" or "score 1.200 (needs 1.500)". */
export function verdictNumber(data) {
  const serverVerdict = typeof data.recognised === "boolean" && typeof data.open_set_score === "number";
  if (!serverVerdict && typeof data.recognised === "boolean") return formatter(true, 1)(data.confidence);
  const score = serverVerdict ? data.open_set_score : data.confidence;
  const rule = serverVerdict ? openSetRule : { score: "max_softmax", threshold: NOT_SURE_BELOW };
  const isProbability = !rule || rule.score === "max_softmax";
  const prefix = isProbability ? "" : "score ";
  const baseDigits = isProbability ? 1 : 3;
  if (!rule) return `${prefix}${formatter(isProbability, baseDigits)(score)}`;
  // More decimals until the score and the threshold read differently (1.2367 vs 1.2355).
  let format = formatter(isProbability, baseDigits);
  for (let digits = baseDigits; digits <= baseDigits + EXTRA_DIGITS; digits += 1) {
    format = formatter(isProbability, digits);
    if (format(score) !== format(rule.threshold)) break;
  }
  return `${prefix}${format(score)} (needs ${format(rule.threshold)})`;
}
