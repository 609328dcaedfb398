// The demo page: the corr2d tutorial, then the digits CNN trained live, then a drawing pad.
// `?auto=1` runs both on `?device=` (default gpu) without input and ends by setting
// document.title to `done: learned kernel [a, b]; test accuracy XX.XX%`.
import init, { device_name, edge_demo, open_digits } from "./pkg/convshade_web.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const EPOCHS = 8;
const loaded = performance.now();
let digits = null;

const grid = (values, cols, digits = 0) => {
  let html = "<table class=grid>";
  for (let r = 0; r < values.length / cols; r++) {
    html += "<tr>" + values.slice(r * cols, (r + 1) * cols)
      .map((v) => `<td>${v.toFixed(digits)}</td>`).join("") + "</tr>";
  }
  return html + "</table>";
};

async function edge(device) {
  const r = JSON.parse(await edge_demo(device));
  const first = performance.now() - loaded;
  const losses = r.losses.map(([e, l]) => `epoch ${e}: ${l.toFixed(4)}`).join("<br>");
  $("edge").innerHTML =
    `<div>corr2d(arange(9), arange(4))${grid(r.corr2d, 2)}</div>` +
    `<div>edges of a 6x8 image, kernel [1, -1]${grid(r.edges, 7)}</div>` +
    `<div>learning the kernel back (loss)<br>${losses}</div>` +
    `<div>learned kernel<br><b>[${r.kernel.map((v) => v.toFixed(4)).join(", ")}]</b></div>`;
  return { kernel: r.kernel, first };
}

// the loss per step and the accuracy per epoch, drawn on one chart
const history = { loss: [], acc: [] };
function draw() {
  const c = $("chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const line = (pts, max, color) => {
    g.strokeStyle = color; g.beginPath();
    pts.forEach(([x, y], i) => {
      const px = 40 + x / EPOCHS * (c.width - 60), py = c.height - 20 - y / max * (c.height - 40);
      i ? g.lineTo(px, py) : g.moveTo(px, py);
    });
    g.stroke();
  };
  g.fillStyle = "#000"; g.fillText("loss (blue, 0-2.5), test accuracy (green, 0-100%) by epoch", 40, 12);
  line(history.loss, 2.5, "#36c");
  line(history.acc, 100, "#2a2");
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function train(device) {
  const [images, labels] = await Promise.all(
    [fetchBytes("../data/digits/images.npy"), fetchBytes("../data/digits/labels.npy")]);
  digits = await open_digits(device, images, labels);
  history.loss = []; history.acc = [];
  let acc = 0, images_done = 0, stepMs = [];
  const start = performance.now();
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (let step = 0; step < 30; step += 5) {
      const t0 = performance.now();
      images_done += digits.train(5);
      const p = JSON.parse(await digits.progress());
      stepMs.push((performance.now() - t0) / 5);
      history.loss.push([epoch + p.images / 1500, p.loss]);
      const secs = (performance.now() - start) / 1000;
      $("status").textContent = `epoch ${epoch + 1}/${EPOCHS}, loss ${p.loss.toFixed(4)}, ` +
        `${(images_done / secs).toFixed(0)} images/s, ` +
        `${median(stepMs).toFixed(1)} ms per step of 50, test accuracy ${acc.toFixed(2)}%`;
      draw();
    }
    acc = await digits.evaluate();
    history.acc.push([epoch + 1, acc]);
    draw();
  }
  $("status").textContent = `${EPOCHS} epochs, loss ${history.loss.at(-1)[1].toFixed(4)}, ` +
    `${(images_done / ((performance.now() - start) / 1000)).toFixed(0)} images/s, ` +
    `${median(stepMs).toFixed(1)} ms per step of 50, test accuracy ${acc.toFixed(2)}%`;
  return { acc, stepMs: median(stepMs) };
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

// the drawing pad: 192x192 ink, shrunk to 8x8 by averaging 24x24 blocks, as the digits were
function setupPad() {
  const pad = $("pad"), g = pad.getContext("2d");
  let down = false;
  g.lineWidth = 22; g.lineCap = "round"; g.strokeStyle = "#000";
  const at = (e) => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  pad.onpointerdown = (e) => { down = true; g.beginPath(); g.moveTo(...at(e)); };
  pad.onpointermove = (e) => { if (down) { g.lineTo(...at(e)); g.stroke(); } };
  pad.onpointerup = () => { down = false; predict(); };
  $("clear").onclick = () => { g.clearRect(0, 0, pad.width, pad.height); $("probs").textContent = ""; };
}

async function predict() {
  if (!digits) { $("probs").textContent = "train the network first"; return; }
  const ink = $("pad").getContext("2d").getImageData(0, 0, 192, 192).data;
  const px = new Float32Array(64);
  for (let y = 0; y < 192; y++) for (let x = 0; x < 192; x++) {
    px[Math.floor(y / 24) * 8 + Math.floor(x / 24)] += ink[(y * 192 + x) * 4 + 3] / 255 / 576;
  }
  const small = $("small").getContext("2d");
  px.forEach((v, i) => {
    const c = 255 - Math.round(v * 255);
    small.fillStyle = `rgb(${c},${c},${c})`;
    small.fillRect((i % 8) * 12, Math.floor(i / 8) * 12, 12, 12);
  });
  const p = await digits.predict(px);
  const best = p.indexOf(Math.max(...p));
  $("probs").innerHTML = `prediction: <b>${best}</b><br>` + [...p].map((v, d) =>
    `${d} <span class=bar style="width:${(v * 150).toFixed(0)}px"></span> ${(v * 100).toFixed(1)}%`).join("<br>");
}

async function run(device) {
  $("run").disabled = true;
  try {
    $("adapter").textContent = await device_name(device);
    const e = await edge(device);
    const t = await train(device);
    console.log(`first result after ${e.first.toFixed(0)} ms; ${t.stepMs.toFixed(1)} ms per training step`);
    return { kernel: e.kernel, acc: t.acc, first: e.first, stepMs: t.stepMs };
  } finally {
    $("run").disabled = false;
  }
}

async function main() {
  await init();
  setupPad();
  const chosen = () => document.querySelector("input[name=device]:checked").value;
  if (!navigator.gpu) document.querySelector("input[value=cpu]").checked = true;
  $("run").onclick = () => run(chosen()).catch(fail);
  if (params.get("auto") === "1") {
    const device = params.get("device") || "gpu";
    document.querySelector(`input[value=${device}]`).checked = true;
    const r = await run(device);
    $("status").textContent += `; first result ${r.first.toFixed(0)} ms after load`;
    document.title = `done: learned kernel [${r.kernel.map((v) => v.toFixed(4)).join(", ")}]; ` +
      `test accuracy ${r.acc.toFixed(2)}%`;
  }
}

function fail(e) {
  $("status").innerHTML = `<span class=error>${e.message || e}</span>`;
  document.title = `error: ${e.message || e}`;
}

main().catch(fail);
