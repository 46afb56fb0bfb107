// matplotlib's "jet", the colours of the server's heat maps, so the page's stroke colours and
// legend read on the same 0-1 scale as the maps. Piecewise linear per channel: matplotlib's own
// segment table for jet (``matplotlib._cm._jet_data``).

const JET_SEGMENTS = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]], // red
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]], // green
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]], // blue
];
const LEGEND_STOPS = 32; // enough stops that the CSS gradient follows the bends of jet

function channelAt(points, value) {
  for (let index = 1; index < points.length; index += 1) {
    const [end, high] = points[index];
    const [start, low] = points[index - 1];
    if (value <= end) return low + ((high - low) * (value - start)) / (end - start);
  }
  return points[points.length - 1][1];
}

/** The jet colour of a map value in [0, 1] (clamped) as [red, green, blue] in 0..255. */
export function jetRgb(value) {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(value) ? value : 0));
  return JET_SEGMENTS.map((points) => Math.round(channelAt(points, clamped) * 255));
}

/** The jet colour of a map value in [0, 1] as a CSS colour. */
export function jetColour(value) {
  const [red, green, blue] = jetRgb(value);
  return `rgb(${red}, ${green}, ${blue})`;
}

/** A left-to-right CSS gradient of jet from 0 to 1, for the legend. */
export function jetGradient() {
  const stops = [];
  for (let step = 0; step <= LEGEND_STOPS; step += 1) {
    const value = step / LEGEND_STOPS;
    stops.push(`${jetColour(value)} ${(value * 100).toFixed(2)}%`);
  }
  return `linear-gradient(90deg, ${stops.join(", ")})`;
}
