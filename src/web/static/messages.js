// Words for people: why a request failed, and what each map method is.

const METHOD_NAMES = {
  gradcam: "Grad-CAM",
  "gradcam++": "Grad-CAM++",
  hirescam: "HiResCAM",
  layercam: "LayerCAM",
  xgradcam: "XGrad-CAM",
  scorecam: "Score-CAM",
  eigencam: "Eigen-CAM",
};
// Methods whose map does not depend on the class asked for.
const CLASS_AGNOSTIC = new Set(["eigencam"]);

export const CANT_REACH = "Can't reach the server - is it running?";

/** The method's usual written name ("Grad-CAM++"), or its API name when unknown. */
export function methodName(method) {
  return METHOD_NAMES[method] || method;
}

/** Whether ``method`` draws the same map whatever the class. */
export function isClassAgnostic(method) {
  return CLASS_AGNOSTIC.has(method);
}

/** A caption for a map of ``className`` by ``method`` at ``layer`` that says what the map shows. */
export function mapCaption(method, className, layer, detail = "") {
  const where = layer ? `, layer ${layer}` : "";
  if (isClassAgnostic(method)) {
    return `${methodName(method)} map (class-agnostic: the same map whatever the class${where})`;
  }
  return `${methodName(method)} map for ${className}${detail}${where}`;
}

/** What went wrong, in words a person understands: a thrown fetch error or a refused request. */
export function describeFailure(failure) {
  if (failure instanceof Error) {
    // fetch() rejects with a TypeError when nothing answers (server stopped, network down).
    if (failure.name === "TypeError") return CANT_REACH;
    if (failure.name === "SyntaxError") return "The server sent an answer the page can't read.";
    return `Something went wrong: ${failure.message}`;
  }
  const { status, error } = failure;
  if (status >= 500) return `The server hit a problem (${status})${error ? `: ${error}` : "."}`;
  return error ? `The server could not use this: ${error}` : `The server refused the request (${status}).`;
}
