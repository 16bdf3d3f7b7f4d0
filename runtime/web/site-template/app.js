// pocketgan browser demo: runs the exported generator with onnxruntime-web (written by `pocketgan web`).
//
// site.json (written at build time) says which model file to run, its input shape and I/O spec, the model
// card, and where onnxruntime-web is (./ort/, copied from the pinned npm package, or a CDN with --cdn).
// Pre- and post-processing follow pocketgan.imaging exactly: x / (1 / scale) + offset in float32 in the
// spec's channel order, and back with (y - offset) * (1 / scale), clipped and rounded half to even.
//
// Test hook (used by tests/test_web.py, handy in a console): window.pocketgan =
//   ready                 a Promise resolving when the session is created (rejects on failure)
//   stats()               {frames, fps, backend, threads, isolated, inference: {p50, p90}, frame: {p50, p90}, error}
//   runImage(url)         translates one image; resolves to {width, height, pixels: [r, g, b, ...]} (the
//                         model's output, uint8 RGB, H×W×3); the image is drawn at the model's size
//   startCamera(facing)   "user" (front) or "environment" (back); stop() stops the camera or video
//   benchmark(n)          n back-to-back inferences on the current input; resolves to {backend, ms: [...]}

const $ = (id) => document.getElementById(id);
let resolveReady, rejectReady;
const hook = { ready: new Promise((ok, fail) => { resolveReady = ok; rejectReady = fail; }) };
window.pocketgan = hook;
// The methods exist from the start (declarations are hoisted); those that run the model wait for the session.
Object.assign(hook, { stats, runImage, startCamera, stop, benchmark });

const WINDOW = 300; // latency samples kept for the percentiles
const state = { session: null, backend: "–", threads: 1, facing: "user", source: null, stream: null,
  frames: 0, stamps: [], inferMs: [], frameMs: [], error: null, input: null };

async function loadPage() {
  try {
    const site = await (await fetch("site.json")).json();
    return [site, await import(new URL(site.ort_web.base + site.ort_web.module, location.href).href)];
  } catch (err) {
    setStatus(`could not load site.json or onnxruntime-web: ${err.message || err}`, true);
    rejectReady(err);
    throw err;
  }
}

const [config, ort] = await loadPage();
const model = config.model;
const [, CHANNELS, HEIGHT, WIDTH] = model.shape;
const io = model.io;
const INV_SCALE = Math.fround(1 / io.scale);
const OFFSET = Math.fround(io.offset);
const BGR = io.channel_order === "BGR";
const inputCtx = setupCanvas($("input-canvas"), WIDTH, HEIGHT);
const outputCtx = setupCanvas($("output-canvas"), WIDTH, HEIGHT);

function setupCanvas(canvas, width, height) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  return ctx;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
  if (isError) state.error = text;
}

// ------------------------------------------------------------------------------------- session

async function createSession(choice) {
  const bytes = new Uint8Array(await (await fetch(model.file)).arrayBuffer());
  state.threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = state.threads;
  ort.env.wasm.wasmPaths = new URL(config.ort_web.base, location.href).href;
  let note = "";
  if (choice !== "wasm") {
    try {
      const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
      if (adapter) return [await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"] }), "webgpu"];
      note = navigator.gpu ? "no WebGPU adapter" : "no navigator.gpu";
    } catch (err) {
      note = `WebGPU failed: ${err.message || err}`;
    }
  }
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const session = await ort.InferenceSession.create(bytes, options);
  if (choice === "webgpu") setStatus(`${note}; running on wasm`);
  return [session, "wasm"];
}

function backendLabel() {
  if (state.backend !== "wasm") return state.backend;
  const threads = `${state.threads} thread${state.threads > 1 ? "s" : ""}`;
  return `wasm (SIMD, ${threads}${self.crossOriginIsolated ? "" : ", not cross-origin isolated"})`;
}

async function start(choice) {
  try {
    [state.session, state.backend] = await createSession(choice);
    $("backend-ran").textContent = backendLabel();
    for (const id of ["camera", "flip", "upload", "stop"]) $(id).disabled = false;
    if (!state.error) setStatus(`ready: ${WIDTH}×${HEIGHT} input, onnxruntime-web ${config.ort_web.version}`);
    resolveReady(state.backend);
  } catch (err) {
    setStatus(`could not load the model: ${err.message || err}`, true);
    rejectReady(err);
  }
}

// ------------------------------------------------------------------------------------- pixels

function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r; // numpy.rint: ties go to the even neighbour
}

// uint8 value -> model input, in float32 exactly as numpy computes x / float32(1 / scale) + float32(offset)
const NORMALIZED = Float32Array.from({ length: 256 }, (_, x) => Math.fround(Math.fround(x / INV_SCALE) + OFFSET));

function toTensor(rgba) {
  const plane = HEIGHT * WIDTH;
  const data = new Float32Array(CHANNELS * plane);
  if (CHANNELS === 1) { // OpenCV's RGB2GRAY fixed-point luma
    for (let i = 0, j = 0; i < plane; i++, j += 4) {
      data[i] = NORMALIZED[(rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14];
    }
  } else {
    const order = BGR ? [2, 1, 0] : [0, 1, 2];
    for (let c = 0; c < 3; c++) {
      const offset = c * plane, source = order[c];
      for (let i = 0, j = source; i < plane; i++, j += 4) data[offset + i] = NORMALIZED[rgba[j]];
    }
  }
  return new ort.Tensor("float32", data, [1, CHANNELS, HEIGHT, WIDTH]);
}

function toPixel(value) {
  const v = Math.fround(Math.fround(value - OFFSET) * INV_SCALE);
  return roundHalfEven(Math.min(255, Math.max(0, v)));
}

function toImageData(tensor) {
  const [, channels, height, width] = tensor.dims;
  const plane = height * width;
  const out = new ImageData(width, height);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const source = channels === 1 ? 0 : BGR ? 2 - c : c;
      out.data[4 * i + c] = toPixel(tensor.data[source * plane + i]);
    }
    out.data[4 * i + 3] = 255;
  }
  return out;
}

// ------------------------------------------------------------------------------------- frames

let running = Promise.resolve(); // one session.run at a time (the camera loop and runImage may overlap)

function infer(tensor) {
  const run = running.then(async () => {
    const t0 = performance.now();
    const result = await state.session.run({ [model.input]: tensor });
    return [result[model.output], performance.now() - t0];
  });
  running = run.catch(() => {});
  return run;
}

async function processFrame(source) {
  const t0 = performance.now();
  inputCtx.drawImage(source, 0, 0, WIDTH, HEIGHT);
  state.input = toTensor(inputCtx.getImageData(0, 0, WIDTH, HEIGHT).data);
  const [output, inferMs] = await infer(state.input);
  const image = toImageData(output);
  if (outputCtx.canvas.width !== image.width || outputCtx.canvas.height !== image.height) {
    setupCanvas(outputCtx.canvas, image.width, image.height); // a generator whose output size differs
  }
  outputCtx.putImageData(image, 0, 0);
  record(inferMs, performance.now() - t0);
  return image;
}

function record(inferMs, frameMs) {
  const now = performance.now();
  state.frames += 1;
  state.stamps.push(now);
  while (state.stamps.length && now - state.stamps[0] > 1000) state.stamps.shift();
  for (const [list, value] of [[state.inferMs, inferMs], [state.frameMs, frameMs]]) {
    list.push(value);
    if (list.length > WINDOW) list.shift();
  }
}

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function fps() {
  const s = state.stamps;
  return s.length > 1 ? ((s.length - 1) * 1000) / (s[s.length - 1] - s[0]) : null;
}

function stats() {
  const pair = (list) => ({ p50: percentile(list, 0.5), p90: percentile(list, 0.9) });
  return { frames: state.frames, fps: fps(), backend: state.backend, threads: state.threads,
    isolated: self.crossOriginIsolated, inference: pair(state.inferMs), frame: pair(state.frameMs),
    error: state.error };
}

function showStats() {
  const s = stats(), ms = (v) => (v == null ? "–" : `${v.toFixed(1)} ms`);
  $("fps").textContent = s.fps == null ? "–" : s.fps.toFixed(1);
  $("infer").textContent = `${ms(s.inference.p50)} / ${ms(s.inference.p90)}`;
  $("frame").textContent = `${ms(s.frame.p50)} / ${ms(s.frame.p90)}`;
  $("frames").textContent = String(s.frames);
}
setInterval(showStats, 250);

// ------------------------------------------------------------------------------------- sources

function nextVideoFrame(video) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 200); // a paused or throttled video must not stall the loop
    const done = () => { clearTimeout(timer); resolve(); };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(done);
    else requestAnimationFrame(done);
  });
}

async function runVideo(video) {
  const token = {};
  state.source = token;
  await video.play();
  while (state.source === token) {
    await nextVideoFrame(video);
    if (state.source !== token) break;
    if (video.readyState < 2) continue;
    await processFrame(video).catch((err) => setStatus(`inference failed: ${err.message || err}`, true));
  }
}

function stop() {
  state.source = null;
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  $("video").pause();
}

async function startCamera(facing = state.facing) {
  await hook.ready;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("the camera needs a secure context: open this page over HTTPS or on http://localhost", true);
    return;
  }
  stop();
  state.facing = facing;
  const constraints = { audio: false, video: { facingMode: facing, width: { ideal: 640 }, height: { ideal: 480 } } };
  try {
    state.stream = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    setStatus(`no camera: ${err.message || err.name}`, true);
    return;
  }
  const video = $("video");
  video.srcObject = state.stream;
  setStatus(`camera (${facing === "user" ? "front" : "back"})`);
  runVideo(video);
}

async function openUpload(file) {
  stop();
  if (file.type.startsWith("video/")) {
    const video = $("video");
    video.srcObject = null;
    video.src = URL.createObjectURL(file);
    video.loop = true;
    setStatus(`video ${file.name}`);
    runVideo(video);
    return;
  }
  const bitmap = await createImageBitmap(file);
  await processFrame(bitmap);
  setStatus(`image ${file.name}`);
}

// ------------------------------------------------------------------------------------- test hook

async function runImage(url) {
  await hook.ready;
  stop();
  const blob = await (await fetch(url)).blob();
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const image = await processFrame(bitmap);
  const pixels = [];
  for (let i = 0; i < image.data.length; i += 4) pixels.push(image.data[i], image.data[i + 1], image.data[i + 2]);
  return { width: image.width, height: image.height, pixels };
}

async function benchmark(n = 50) {
  await hook.ready;
  const tensor = state.input || toTensor(new Uint8ClampedArray(WIDTH * HEIGHT * 4));
  const ms = [];
  for (let i = 0; i < n; i++) ms.push((await infer(tensor))[1]);
  return { backend: state.backend, threads: state.threads, ms };
}

// ------------------------------------------------------------------------------------- page

function formatCount(n, unit) {
  if (n == null) return "–";
  const [value, prefix] = n >= 1e9 ? [n / 1e9, "G"] : n >= 1e6 ? [n / 1e6, "M"] : n >= 1e3 ? [n / 1e3, "k"] : [n, ""];
  return `${value.toFixed(value >= 100 || !prefix ? 0 : 2)} ${prefix}${unit}`;
}

function cardRows(card) {
  const p = card.parity;
  const parity = p ? `${p.passed ? "pass" : "FAIL"}: max |Δ| ${p.max_abs.toExponential(2)}, `
    + `PSNR ${p.psnr_db.toFixed(1)} dB on ${p.samples} inputs` : "not recorded";
  const sha = card.sha256 ? `, sha256 ${card.sha256.slice(0, 12)}` : "";
  const where = config.ort_web.base.startsWith("http") ? "CDN" : "bundled";
  return [
    ["source", card.source], ["architecture", card.arch || "–"],
    ["MACs", `${formatCount(card.macs, "")}${card.profiled_at ? ` at ${card.profiled_at.join("×")}` : ""}`],
    ["params", formatCount(card.params, "")], ["precision", card.precision], ["parity vs PyTorch", parity],
    ["input", `${model.shape.join("×")} (${model.input}); ${io.normalization}`],
    ["file", `${model.file} (${(card.size_bytes / 1e6).toFixed(2)} MB${sha})`],
    ["exporter", card.exporter ? `${card.exporter}${card.opset ? `, opset ${card.opset}` : ""}` : "–"],
    ["onnxruntime-web", `${config.ort_web.version} (${where})`],
  ];
}

function showCard() {
  $("model-name").textContent = model.card.source;
  const table = $("card-table");
  for (const [key, value] of cardRows(model.card)) {
    const row = table.insertRow();
    row.insertCell().textContent = key;
    row.insertCell().textContent = value;
  }
  if (model.sidecar) {
    const link = Object.assign(document.createElement("a"), { href: model.sidecar, textContent: model.sidecar });
    const row = table.insertRow();
    row.insertCell().textContent = "sidecar";
    row.insertCell().append(link);
  }
}

function wireControls() {
  const params = new URLSearchParams(location.search);
  const choice = params.get("backend") || "auto";
  $("backend").value = choice;
  $("backend").addEventListener("change", () => {
    params.set("backend", $("backend").value);
    location.search = params;
  });
  $("camera").addEventListener("click", () => startCamera());
  $("flip").addEventListener("click", () => startCamera(state.facing === "user" ? "environment" : "user"));
  $("upload").addEventListener("change", (e) => e.target.files[0] && openUpload(e.target.files[0]));
  $("stop").addEventListener("click", stop);
  return choice;
}

showCard();
await start(wireControls());
