// The imaged playground (playground.md). Every control is built from this server's
// /openapi.json, so the page offers exactly the parameters, ranges, choices and defaults
// the server accepts; it calls only PUT /transform, PUT /metadata (GET with a url, when
// fetch is enabled) and GET /openapi.json. Nothing is stored outside the page's memory.

import { base64Bytes, blurHashToRGBA, thumbHashToRGBA, toDataURL } from "./placeholders.js";

const DEBOUNCE_MS = 300;
const TRANSFORM = "/transform";
const METADATA = "/metadata";
// Where each parameter is shown; a parameter the server adds later goes to "More".
const GROUPS = [
  ["Size", ["width", "height", "fit", "position", "kernel"]],
  ["Output", ["format", "quality", "effort", "lossless", "progressive", "preset"]],
  ["Effects", ["blur", "greyscale", "animated"]],
  ["Checks", ["strict"]],
];

const $ = (id) => document.getElementById(id);
const page = {
  file: null, // the chosen File, or null when the source is a URL (or nothing yet)
  fileUrl: null, // object URL of the original (file mode)
  resultUrl: null,
  inputBytes: null, // size of the source in bytes
  metadataRoutes: {}, // method → operation of /metadata in this configuration
  controls: [], // one {name, param, element, row, hint, read(), reset(), setDefault()} each
  flags: [], // the metadata flags, alike
  accept: null, // the Accept field, shown with a format list
  formatList: null,
  tokenScheme: false,
};

// --- small helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

function debounce(fn, ms) {
  let timer = 0;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(2)} MB`;
}

function numberText(n) {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

function shellQuote(text) {
  return /^[A-Za-z0-9_./:@=,+-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

function encodeValue(value) {
  // Commas stay readable: they separate a format list, and the server splits on them.
  return encodeURIComponent(value).replaceAll("%2C", ",");
}

function typesOf(schema) {
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

function rangeText(schema) {
  if (schema.minimum === undefined || schema.maximum === undefined) return "";
  return `${numberText(schema.minimum)}–${numberText(schema.maximum)}`;
}

// --- controls from the API description ----------------------------------------------------

function fieldRow(param, control, { inline = false, placed = control } = {}) {
  const id = control.id;
  const hintId = `${id}-hint`;
  control.setAttribute("aria-describedby", hintId);
  const label = el("label", { for: id, class: "name", text: param.name });
  const reset = el("button", {
    type: "button",
    class: "reset",
    "aria-label": `reset ${param.name}`,
    title: "back to the default",
    text: "↺",
  });
  const hint = el("p", { class: "hint", id: hintId });
  const row = el("div", { class: inline ? "param inline" : "param", "data-name": param.name });
  if (inline) row.append(placed, label, reset, hint);
  else row.append(label, placed, reset, hint);
  return { row, reset, hint };
}

function hintText(param, extra) {
  const schema = param.schema;
  const parts = [];
  const range = extra ?? rangeText(schema);
  if (range) parts.push(range);
  // Choices mark their default, checkboxes start at it; numbers say it.
  const shown = schema.enum || typesOf(schema).includes("boolean");
  if (schema.default !== undefined && !shown) parts.push(`default ${schema.default}`);
  parts.push(param.description);
  return parts.join(" · ");
}

function selectControl(id, choices, defaultValue) {
  const select = el("select", { id });
  for (const [value, text] of choices) select.append(el("option", { value, text }));
  select.value = defaultValue;
  return select;
}

/** One control for one query parameter, chosen by the type in its schema. */
function buildControl(param) {
  const schema = param.schema;
  const types = typesOf(schema);
  const id = `p-${param.name}`;
  let control;
  let read;
  let setDefault;
  let extra = null;
  let inline = false;

  if (schema.enum) {
    const fallback = schema.default ?? "";
    const choices = schema.enum.map((v) => [v, v === schema.default ? `${v} (default)` : v]);
    if (schema.default === undefined) choices.unshift(["", "(not set)"]);
    control = selectControl(id, choices, fallback);
    read = () => (control.value === fallback ? null : control.value);
    setDefault = () => (control.value = fallback);
  } else if (types.includes("boolean") && types.includes("number")) {
    // A flag or a number (blur: true for the box blur, or a sigma in range).
    const choice = selectControl(id, [["", "off"], ["true", "true"], ["number", "number"]], "");
    const number = el("input", {
      type: "number",
      id: `${id}-number`,
      "aria-label": `${param.name} value`,
      min: schema.minimum,
      max: schema.maximum,
      step: "any",
      placeholder: rangeText(schema),
      hidden: true,
    });
    const pair = el("span", { class: "pair" }, choice, number);
    choice.addEventListener("change", () => {
      number.hidden = choice.value !== "number";
      if (!number.hidden && !number.value) number.value = numberText(schema.minimum ?? 1);
    });
    read = () => {
      if (choice.value === "number") return number.value.trim() || null;
      return choice.value || null;
    };
    setDefault = () => {
      choice.value = "";
      number.value = "";
      number.hidden = true;
    };
    const row = fieldRow(param, choice, { placed: pair });
    row.hint.textContent = hintText(param, `true or ${rangeText(schema)}`);
    return finish(param, choice, row, read, setDefault);
  } else if (types.includes("boolean")) {
    if (schema.default !== undefined) {
      control = el("input", { type: "checkbox", id });
      control.checked = schema.default;
      read = () => (control.checked === schema.default ? null : String(control.checked));
      setDefault = () => (control.checked = schema.default);
      inline = true;
    } else {
      control = selectControl(id, [["", "(not set)"], ["true", "true"], ["false", "false"]], "");
      read = () => control.value || null;
      setDefault = () => (control.value = "");
    }
  } else if (types.includes("integer") || types.includes("number")) {
    control = el("input", {
      type: "number",
      id,
      inputmode: types.includes("integer") ? "numeric" : "decimal",
      min: schema.minimum,
      max: schema.maximum,
      step: types.includes("integer") ? 1 : "any",
      placeholder: schema.default !== undefined ? String(schema.default) : "auto",
    });
    read = () => control.value.trim() || null;
    setDefault = () => (control.value = "");
    if (schema["x-ranges"]) extra = "";
  } else {
    control = el("input", { type: "text", id, spellcheck: "false" });
    read = () => control.value || null;
    setDefault = () => (control.value = "");
  }
  const row = fieldRow(param, control, { inline });
  row.hint.textContent = hintText(param, extra);
  return finish(param, control, row, read, setDefault);
}

function finish(param, control, row, read, setDefault) {
  const entry = { name: param.name, param, element: control, row: row.row, hint: row.hint, read };
  entry.reset = () => {
    setDefault();
    changed();
  };
  row.reset.addEventListener("click", () => entry.reset());
  entry.setDefault = setDefault;
  return entry;
}

/** effort: its range depends on the output format (`x-ranges`). */
function updateEffort() {
  const effort = page.controls.find((c) => c.param.schema["x-ranges"]);
  if (!effort) return;
  const ranges = effort.param.schema["x-ranges"];
  const format = currentFormat();
  const range = format && ranges[format];
  if (range) {
    effort.element.min = range[0];
    effort.element.max = range[1];
    effort.element.placeholder = "auto";
    effort.hint.textContent = hintText(effort.param, `${format}: ${range[0]}–${range[1]}`);
  } else {
    effort.element.removeAttribute("min");
    effort.element.removeAttribute("max");
    effort.element.placeholder = format ? `not used by ${format}` : "auto";
    const known = Object.entries(ranges)
      .map(([f, [lo, hi]]) => `${f} ${lo}–${hi}`)
      .join(", ");
    effort.hint.textContent = hintText(effort.param, known);
  }
}

function currentFormat() {
  const format = page.controls.find((c) => c.name === "format");
  if (!format) return null;
  if (page.formatList && page.formatList.value.trim()) return null; // negotiated
  return format.element.value;
}

/** The format list and the Accept header it is negotiated against (http-api.md). */
function buildNegotiation(formatEntry, acceptParam) {
  const list = el("input", {
    type: "text",
    id: "format-list",
    spellcheck: "false",
    autocomplete: "off",
    placeholder: `e.g. ${formatEntry.param.schema.enum.filter((f) => ["avif", "webp", "jpeg"].includes(f)).join(",") || "webp,jpeg"}`,
    "aria-describedby": "format-list-hint",
  });
  const accept = el("input", {
    type: "text",
    id: "accept",
    spellcheck: "false",
    autocomplete: "off",
    value: "image/avif,image/webp,*/*",
    "aria-describedby": "accept-hint",
  });
  const listRow = el(
    "div",
    { class: "param", "data-name": "format list" },
    el("label", { for: "format-list", class: "name", text: "format list" }),
    list,
    el("p", { class: "hint", id: "format-list-hint", text: "several formats, comma separated: the server picks one by the Accept below (overrides format)" }),
  );
  const acceptRow = el(
    "div",
    { class: "param", "data-name": "Accept", hidden: true },
    el("label", { for: "accept", class: "name", text: "Accept" }),
    accept,
    el("p", { class: "hint", id: "accept-hint", text: acceptParam ? acceptParam.description : "" }),
  );
  list.addEventListener("input", () => {
    const negotiated = list.value.trim() !== "";
    acceptRow.hidden = !negotiated;
    formatEntry.element.disabled = negotiated;
  });
  page.formatList = list;
  page.accept = accept;
  formatEntry.resetExtra = () => {
    list.value = "";
    acceptRow.hidden = true;
    formatEntry.element.disabled = false;
  };
  const reset = formatEntry.reset;
  formatEntry.reset = () => {
    formatEntry.resetExtra();
    reset();
  };
  return [listRow, acceptRow];
}

function queryParameters(operation) {
  return (operation?.parameters ?? []).filter((p) => p.in === "query");
}

/** Free-text parameters (`sig`, `expires` of signed GET URLs) are not image options. */
function isOption(param) {
  return !(param.schema.type === "string" && !param.schema.enum) && !param.required;
}

function buildForm(api) {
  const form = $("params");
  $("params-loading").remove();
  const transform = api.paths[TRANSFORM] ?? {};
  const metadata = api.paths[METADATA] ?? {};
  page.metadataRoutes = metadata;
  const params = queryParameters(transform.put).filter(isOption);
  const acceptParam = (transform.put?.parameters ?? []).find((p) => p.in === "header" && p.name === "Accept");
  page.controls = params.map(buildControl);

  const placed = new Set();
  const groups = GROUPS.map(([title, names]) => [title, page.controls.filter((c) => names.includes(c.name))]);
  for (const [, entries] of groups) entries.forEach((c) => placed.add(c));
  groups.push(["More", page.controls.filter((c) => !placed.has(c))]);
  for (const [title, entries] of groups) {
    if (!entries.length) continue;
    const fieldset = el("fieldset", { class: "group" }, el("legend", { text: title }));
    for (const entry of entries) {
      fieldset.append(entry.row);
      if (entry.name === "format") fieldset.append(...buildNegotiation(entry, acceptParam));
    }
    form.append(fieldset);
  }

  // Metadata flags: the /metadata options that are not also transform parameters.
  const shared = new Set(params.map((p) => p.name));
  const flagBox = $("flags");
  page.flags = queryParameters(metadata.put)
    .filter(isOption)
    .filter((p) => !shared.has(p.name))
    .map((param) => {
      const entry = buildControl(param);
      flagBox.append(entry.row);
      return entry;
    });

  // A URL source when fetch is enabled (GET routes exist), a token when tokens are on.
  if (transform.get) $("url-field").hidden = false;
  page.tokenScheme = Boolean(api.components?.securitySchemes?.apiToken);
  if (page.tokenScheme) $("token-field").hidden = false;

  form.addEventListener("submit", (event) => event.preventDefault()); // Enter: nothing to send
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    for (const c of page.controls) {
      c.setDefault();
      c.resetExtra?.();
    }
    changed();
  });
  flagBox.addEventListener("change", metadataChanged);
  updateEffort();
  markChanged();
}

// --- requests ----------------------------------------------------------------------------

function sourceUrl() {
  return $("url").value.trim();
}

function hasSource() {
  return page.file !== null || (!$("url-field").hidden && sourceUrl() !== "");
}

/** The query string of the current settings (only what differs from the defaults). */
function transformQuery() {
  const items = [];
  if (!page.file && sourceUrl()) items.push(["url", sourceUrl()]);
  for (const control of page.controls) {
    let value = control.read();
    if (control.name === "format" && page.formatList.value.trim()) {
      value = page.formatList.value.replace(/\s+/g, "");
    }
    if (value !== null) items.push([control.name, value]);
  }
  return items;
}

function metadataQuery() {
  const items = [];
  if (!page.file && sourceUrl()) items.push(["url", sourceUrl()]);
  for (const flag of [...page.flags, ...sharedControls()]) {
    const value = flag.read();
    if (value !== null) items.push([flag.name, value]);
  }
  return items;
}

/** The transform controls that /metadata takes too (`strict`): the metadata follows them. */
function sharedControls() {
  const operation = page.file ? page.metadataRoutes.put : page.metadataRoutes.get;
  const names = new Set(queryParameters(operation).map((p) => p.name));
  return page.controls.filter((c) => names.has(c.name));
}

function queryText(items) {
  return items.map(([k, v]) => `${encodeValue(k)}=${encodeValue(v)}`).join("&");
}

function requestHeaders(negotiate) {
  const headers = {};
  if (negotiate && page.accept.value.trim()) headers.Accept = page.accept.value.trim();
  const token = $("token").value.trim();
  if (page.tokenScheme && token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

function request(path, items, negotiate) {
  const query = queryText(items);
  const target = query ? `${path}?${query}` : path;
  const init = { headers: requestHeaders(negotiate) };
  if (page.file) {
    init.method = "PUT";
    init.body = page.file;
  } else {
    init.method = "GET";
  }
  return { target, init };
}

function negotiating() {
  return page.formatList !== null && page.formatList.value.trim() !== "";
}

/** Requests of which only the newest counts: each call aborts the one before it, and an
 * answer that arrives after a newer call started is dropped. Resolves to "still newest". */
function newestOnly() {
  let current = 0;
  let abort = null;
  return async ({ target, init }, read, show, errorBox) => {
    const seq = ++current;
    abort?.abort();
    abort = new AbortController();
    const started = performance.now();
    try {
      const response = await fetch(target, { ...init, signal: abort.signal });
      const body = await read(response);
      if (seq === current) show(response, body, performance.now() - started);
    } catch (error) {
      if (error.name !== "AbortError" && seq === current) {
        showError(errorBox, "request failed", String(error.message ?? error));
      }
    }
    return seq === current;
  };
}

const transformCalls = newestOnly();
const metadataCalls = newestOnly();

async function runTransform() {
  if (!hasSource()) return;
  const frame = $("result-frame");
  frame.setAttribute("aria-busy", "true");
  const call = request(TRANSFORM, transformQuery(), negotiating());
  const read = (r) => (r.ok ? r.blob() : r.text()); // an error's body is the server's text
  if (await transformCalls(call, read, showTransform, $("error"))) {
    frame.setAttribute("aria-busy", "false");
  }
}

async function runMetadata() {
  if (!hasSource()) return;
  const call = request(METADATA, metadataQuery(), false);
  await metadataCalls(call, (r) => r.text(), showMetadata, $("metadata-error"));
}

const scheduleTransform = debounce(runTransform, DEBOUNCE_MS);
const scheduleMetadata = debounce(runMetadata, DEBOUNCE_MS);

function markChanged() {
  for (const c of [...page.controls, ...page.flags]) {
    const custom = c.read() !== null || (c.name === "format" && negotiating());
    c.row.classList.toggle("changed", custom);
  }
}

function changed(event) {
  updateEffort();
  markChanged();
  updateCurl();
  scheduleTransform();
  if (sharedControls().some((c) => !event || c.row.contains(event.target))) scheduleMetadata();
}

function metadataChanged() {
  markChanged();
  scheduleMetadata();
}

// --- showing results ---------------------------------------------------------------------

function showError(box, status, text) {
  box.replaceChildren(el("strong", { text: status }), el("pre", { text }));
}

function clearError(box) {
  box.replaceChildren();
}

function showHeaders(response) {
  const rows = [];
  for (const [name, value] of response.headers) {
    rows.push(el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: value })));
  }
  $("headers").tBodies[0].replaceChildren(...rows);
}

function warningsOf(header) {
  // `<param>: <reason>` items joined by `; ` (a reason may itself contain `;`).
  return header ? header.split(/; (?=[^\s;:]+: )/) : [];
}

function setFact(id, value, detail = "") {
  $(id).replaceChildren(value, ...(detail ? [el("small", { text: detail })] : []));
}

function showTransform(response, body, roundTrip) {
  showHeaders(response);
  const warnings = warningsOf(response.headers.get("X-Imaged-Warnings"));
  $("warnings").replaceChildren(...warnings.map((w) => el("li", { text: w })));
  const time = response.headers.get("X-Response-Time-Ms");
  setFact("fact-time", time !== null ? `${time} ms` : "–", `round trip ${Math.round(roundTrip)} ms`);
  const image = $("result");
  if (page.resultUrl) URL.revokeObjectURL(page.resultUrl);
  page.resultUrl = null;
  if (!response.ok) {
    showError($("error"), `${response.status} ${response.statusText}`, body);
    image.hidden = true;
    image.removeAttribute("src");
    $("result-empty").textContent = "No result: see the error below";
    $("result-empty").hidden = false;
    $("download").hidden = true;
    for (const id of ["fact-format", "fact-size", "fact-bytes", "fact-ratio"]) setFact(id, "–");
    $("result-caption").textContent = "";
    return;
  }
  clearError($("error"));
  const type = (response.headers.get("Content-Type") ?? "").split(";")[0];
  const format = type.replace(/^image\//, "").replace("svg+xml", "svg").replace("application/", "");
  const width = response.headers.get("X-Image-Width");
  const height = response.headers.get("X-Image-Height");
  page.resultUrl = URL.createObjectURL(body);
  $("fact-format").textContent = format || "–";
  $("fact-size").textContent = width && height ? `${width} × ${height}` : "–";
  $("fact-bytes").textContent = formatBytes(body.size);
  if (page.inputBytes) {
    setFact("fact-ratio", `${((100 * body.size) / page.inputBytes).toFixed(1)} %`, `of ${formatBytes(page.inputBytes)}`);
  } else {
    setFact("fact-ratio", "–");
  }
  $("result-caption").textContent = width && height ? `${width} × ${height}` : "";
  const download = $("download");
  download.href = page.resultUrl;
  download.download = `result.${format || "bin"}`;
  download.textContent = `download result.${format || "bin"}`;
  download.hidden = false;
  $("result-empty").hidden = true;
  image.onerror = () => {
    image.hidden = true;
    $("result-empty").textContent = `This browser cannot display ${format}: use the download link`;
    $("result-empty").hidden = false;
  };
  image.onload = () => {
    image.hidden = false;
    applyZoom();
  };
  image.src = page.resultUrl;
  updateCurl(format);
}

function showMetadata(response, text) {
  const box = $("metadata");
  if (!response.ok) {
    showError($("metadata-error"), `${response.status} ${response.statusText}`, text);
    box.textContent = "No metadata: see the error above.";
    $("hashes").hidden = true;
    return;
  }
  clearError($("metadata-error"));
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    box.textContent = text;
    return;
  }
  box.textContent = JSON.stringify(data, null, 2);
  if (!page.file && typeof data.size === "number") page.inputBytes = data.size;
  showPlaceholders(data);
}

function showPlaceholders(data) {
  let any = false;
  const thumb = $("thumbhash-figure");
  thumb.hidden = typeof data.thumbhash !== "string";
  if (!thumb.hidden) {
    $("thumbhash-image").src = toDataURL(thumbHashToRGBA(base64Bytes(data.thumbhash)));
    $("thumbhash-text").textContent = data.thumbhash;
    any = true;
  }
  const blur = $("blurhash-figure");
  blur.hidden = typeof data.blurhash !== "string";
  if (!blur.hidden) {
    const ratio = data.width && data.height ? data.height / data.width : 0.75;
    const w = 32;
    const h = Math.max(1, Math.round(32 * ratio));
    $("blurhash-image").src = toDataURL(blurHashToRGBA(data.blurhash, w, h));
    $("blurhash-text").textContent = data.blurhash;
    any = true;
  }
  $("hashes").hidden = !any;
}

/** Both images at the same display scale (the CSS computes the widths): `fit` shrinks the
 * original to its frame and the result by the same factor, a percentage scales both. */
function applyZoom() {
  const original = $("original");
  const result = $("result");
  const compare = $("compare");
  const reference = original.naturalWidth ? original : result;
  for (const image of [original, result]) {
    if (image.naturalWidth) image.style.setProperty("--w", String(image.naturalWidth));
  }
  if (reference.naturalWidth) compare.style.setProperty("--ref", String(reference.naturalWidth));
  const zoom = $("zoom").value;
  if (zoom === "fit") delete compare.dataset.zoom;
  else compare.dataset.zoom = zoom;
  compare.style.setProperty("--zoom", zoom === "fit" ? "1" : zoom);
}

// --- the curl command --------------------------------------------------------------------

function updateCurl(resultFormat) {
  const negotiate = negotiating();
  const { target, init } = request(TRANSFORM, transformQuery(), negotiate);
  const url = `${location.origin}${target}`;
  const lines = ["curl -sS"];
  if (init.method === "PUT") lines[0] += ` -X PUT --data-binary @${shellQuote(page.file.name || "image")}`;
  for (const [name, value] of Object.entries(init.headers)) {
    const shown = name === "Authorization" ? "Bearer $IMAGED_TOKEN" : value;
    lines.push(`-H ${name === "Authorization" ? `"${name}: ${shown}"` : shellQuote(`${name}: ${shown}`)}`);
  }
  lines.push(shellQuote(url));
  const format = negotiate ? resultFormat : currentFormat();
  lines.push(`-o ${shellQuote(format ? `result.${format}` : "result")}`);
  $("curl").textContent = hasSource() ? lines.join(" \\\n  ") : "Choose an image to see the request.";
}

let copyTimer = 0;

async function copyCurl() {
  const text = $("curl").textContent;
  const status = $("copy-status");
  clearTimeout(copyTimer);
  copyTimer = setTimeout(() => (status.textContent = ""), 4000);
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied";
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("curl"));
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = document.execCommand("copy") ? "Copied" : "Selected: press Ctrl+C";
  }
}

// --- the source --------------------------------------------------------------------------

function useFile(file) {
  if (!file) return;
  page.file = file;
  page.inputBytes = file.size;
  if (page.fileUrl) URL.revokeObjectURL(page.fileUrl);
  page.fileUrl = URL.createObjectURL(file);
  $("file-name").textContent = `${file.name || "pasted image"} · ${formatBytes(file.size)}`;
  $("drop").classList.add("has-file");
  showOriginal(page.fileUrl, file.type || "this format");
  $("url").value = "";
  sourceChanged();
}

function showOriginal(src, what) {
  const original = $("original");
  const empty = $("original-frame").querySelector(".empty");
  empty.hidden = true;
  original.onload = () => {
    original.hidden = false;
    $("original-caption").textContent = `${original.naturalWidth} × ${original.naturalHeight}`;
    applyZoom();
  };
  original.onerror = () => {
    original.hidden = true;
    empty.textContent = `This browser cannot display ${what}; the server can read it`;
    empty.hidden = false;
    $("original-caption").textContent = "";
  };
  original.src = src;
}

function useUrl() {
  if (!sourceUrl()) return;
  page.file = null;
  page.inputBytes = null;
  $("file-name").textContent = "No image yet";
  $("drop").classList.remove("has-file");
  $("image").value = "";
  // The page may load images only from this server (CSP): the original is the server's
  // rendition of the fetched source with the default settings.
  showOriginal(`${TRANSFORM}?url=${encodeValue(sourceUrl())}`, "the source");
  sourceChanged();
}

function sourceChanged() {
  updateCurl();
  clearError($("error"));
  runTransform();
  runMetadata();
}

function wireSource() {
  const input = $("image");
  input.addEventListener("change", () => useFile(input.files[0]));
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("dragging"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    useFile(event.dataTransfer.files[0]);
  });
  // A drop that misses the zone must not navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  document.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData?.files ?? [])][0];
    if (file) useFile(file);
  });
  $("url").addEventListener("change", useUrl);
  $("token").addEventListener("change", () => {
    updateCurl();
    if (hasSource()) {
      runTransform();
      runMetadata();
    }
  });
  $("zoom").addEventListener("change", applyZoom);
  $("copy").addEventListener("click", copyCurl);
}

async function start() {
  wireSource();
  updateCurl();
  try {
    const response = await fetch("/openapi.json");
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    buildForm(await response.json());
  } catch (error) {
    $("params-loading").textContent = `Could not read /openapi.json: ${error.message}`;
    return;
  }
  document.body.dataset.ready = "true";
}

start();
