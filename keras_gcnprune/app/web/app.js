// The page: an exported raw-input model in LiteRT.js (WebGPU, or wasm, said so), fed by the
// camera or a video through MediaPipe hand landmarks, or by a recorded landmark stream, through
// the loop of keras_gcnprune.deploy.StreamingClassifier; and a record mode that saves labelled
// clips as the package's archive. `window.gcnpruneApp` is the same code, for tests and scripts.

import {loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

import {readAppMetadata} from './metadata.js';
import {readArchive, writeArchive} from './npz.js';
import {OnsetDetector, StreamingClassifier} from './stream.js';

const $ = (id) => document.getElementById(id);
const runtime = loadLiteRt('/vendor/@litertjs/core/wasm/');

class LiteRtModel {
  // One raw-input model compiled on an accelerator; `probabilities(window)` runs one window.
  static async load(bytes, accelerator) {
    await runtime;
    const app = readAppMetadata(bytes);
    const model = new LiteRtModel();
    Object.assign(model, app);
    model.compiled = await loadAndCompile(bytes, {accelerator});
    model.accelerator = model.compiled.options.accelerator;
    model.fullyAccelerated = model.compiled.isFullyAccelerated;
    return model;
  }

  async outputs(window) {
    const input = new Tensor(window, [1, this.frames, this.joints, this.channels]);
    const results = await this.compiled.run(input);
    input.delete();
    const onCpu = await results[0].moveTo('wasm');
    const values = Float32Array.from(onCpu.toTypedArray());
    onCpu.delete();
    return values;
  }

  async probabilities(window) {
    const values = await this.outputs(window);
    if (this.returnsProbabilities) return values;
    const top = Math.max(...values);
    const exps = values.map((v) => Math.exp(v - top));
    const sum = exps.reduce((a, b) => a + b, 0);
    return exps.map((v) => v / sum);
  }
}

// Loads on WebGPU where the browser has it and the whole model runs there; else on wasm, with
// the reason shown: never a silent fallback.
async function loadModel(bytes) {
  let reason = null;
  if (new URLSearchParams(location.search).get('accelerator') === 'wasm') {
    reason = 'asked for by the address (?accelerator=wasm)';
  } else if ('gpu' in navigator) {
    try {
      const model = await LiteRtModel.load(bytes, 'webgpu');
      if (model.accelerator === 'webgpu' && model.fullyAccelerated) return {model, reason};
      reason = 'WebGPU could not run the whole model (some operators are not delegated)';
      model.compiled.delete();
    } catch (error) {
      if (/metadata|raw-input|label|TFLite/.test(error.message)) throw error;
      reason = `WebGPU failed: ${error.message}`;
    }
  } else {
    reason = 'this browser has no WebGPU';
  }
  return {model: await LiteRtModel.load(bytes, 'wasm'), reason};
}

const state = {model: null, stream: null, recording: null, clips: [], source: null};

function settings() {
  const value = (id) => ($(id).value === '' ? null : Number($(id).value));
  return {every: value('every'), window: value('window'), smoothing: value('smoothing'),
          threshold: value('threshold')};
}

function newStream() {
  state.stream = new StreamingClassifier(state.model, settings());
  // A model trained with a background class (`none`, as on SHREC'21) never reports it.
  const background = state.model.labels.includes('none') ? 'none' : null;
  state.onsets = new OnsetDetector({background, confirm: Number($('confirm').value),
                                    lag: Math.floor(state.stream.window / 2)});
  state.found = [];
  $('onsets').textContent = '';
  return state.stream;
}

async function useModel(bytes) {
  $('model-status').className = '';
  $('model-status').textContent = 'Loading the model...';
  $('fallback').hidden = true;
  try {
    const {model, reason} = await loadModel(bytes);
    state.model = model;
    $('model-status').textContent = `${model.metadata.model}: ${model.labels.length} classes ` +
      `(${model.labels.join(', ')})`;
    $('accelerator').textContent = model.accelerator;
    $('fully-accelerated').textContent = model.accelerator === 'wasm' ? 'no: CPU (wasm)' :
      (model.fullyAccelerated ? 'yes' : 'no');
    $('contract').textContent = `${model.frames} frames x ${model.joints} joints ` +
      `(${model.layout || 'no layout'}) x ${model.channels} axes ` +
      `(${model.metadata.raw_input.axes}), layout batch, frames, joints, channels`;
    if (reason) {
      $('fallback').textContent = `Running on wasm (CPU): ${reason}.`;
      $('fallback').hidden = false;
    }
    newStream();
    document.body.dataset.ready = 'true';
  } catch (error) {
    state.model = null;
    $('model-status').className = 'error';
    $('model-status').textContent = error.message;
    document.body.dataset.ready = 'refused';
  }
}

function drawLandmarks(frame) {
  const canvas = $('landmarks');
  const context = canvas.getContext('2d');
  context.clearRect(0, 0, canvas.width, canvas.height);
  const {joints, channels, metadata} = state.model;
  const xs = [], ys = [];
  for (let j = 0; j < joints; j++) { xs.push(frame[j * channels]); ys.push(frame[j * channels + 1]); }
  const normalised = state.source === 'camera' || state.source === 'video';
  const [minX, maxX, minY, maxY] = normalised ? [0, 1, 0, 1] :
    [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = Math.min(canvas.width / (maxX - minX || 1), canvas.height / (maxY - minY || 1)) *
    (normalised ? 1 : 0.9);
  const point = (j) => [(xs[j] - minX) * scale + (normalised ? 0 : canvas.width * 0.05),
                        normalised ? (ys[j] - minY) * scale : canvas.height - (ys[j] - minY) * scale - canvas.height * 0.05];
  context.strokeStyle = '#4a7bd0';
  for (const [a, b] of (metadata.layout ? metadata.layout.edges : [])) {
    context.beginPath(); context.moveTo(...point(a)); context.lineTo(...point(b)); context.stroke();
  }
  context.fillStyle = '#d0704a';
  for (let j = 0; j < joints; j++) {
    const [x, y] = point(j);
    context.beginPath(); context.arc(x, y, 3, 0, 2 * Math.PI); context.fill();
  }
}

function showDecision(decision) {
  $('label').textContent = decision.label ?? '(below threshold)';
  $('latency').textContent = `${decision.latencyMs.toFixed(1)} ms per window on ` +
    `${state.model.accelerator}, frame ${decision.frame}`;
  $('bars').replaceChildren(...decision.probabilities.map((p, i) => {
    const row = document.createElement('div');
    row.className = i === decision.index ? 'bar top' : 'bar';
    row.innerHTML = '<span class="name"></span><span><span class="fill"></span></span><span></span>';
    row.children[0].textContent = state.model.labels[i];
    row.children[1].firstChild.style.width = `${(100 * p).toFixed(1)}%`;
    row.children[2].textContent = p.toFixed(2);
    return row;
  }));
}

// One frame from any source: drawn, recorded when recording, classified.
async function onFrame(frame) {
  drawLandmarks(frame);
  if (state.recording) state.recording.frames.push(Float32Array.from(frame));
  const decision = await state.stream.push(frame);
  if (decision) {
    showDecision(decision);
    const onset = state.onsets.push(decision);
    if (onset) {
      state.found.push(onset);
      $('onsets').textContent = state.found.slice(-8).reverse()
        .map((o) => `${o.label} (from frame ${o.start})`).join('\n');
    }
  }
  return decision;
}

async function playFrames(frames, fps) {
  newStream();
  const decisions = [];
  for (const frame of frames) {
    const started = performance.now();
    const decision = await onFrame(frame);
    if (decision) decisions.push(decision);
    if (fps) await new Promise((r) => setTimeout(r, Math.max(0, 1000 / fps - (performance.now() - started))));
  }
  return decisions;
}

async function streamFrames(file) {
  const name = file.name || '';
  const buffer = await file.arrayBuffer();
  if (name.endsWith('.json')) {
    const {frames} = JSON.parse(new TextDecoder().decode(buffer));
    return frames.map((frame) => Float32Array.from(frame.flat()));
  }
  const archive = await readArchive(buffer);
  return archive.sequences.flat();
}

// MediaPipe hand landmarks (image coordinates: x, y in [0, 1], z relative depth) as frames.
function handTracker(onLandmarks) {
  if (typeof window.Hands !== 'function') throw new Error('MediaPipe Hands is not installed: run `gcnprune app --install`.');
  const hands = new window.Hands({locateFile: (file) => `/vendor/@mediapipe/hands/${file}`});
  hands.setOptions({maxNumHands: 1, modelComplexity: 1, minDetectionConfidence: 0.5,
                    minTrackingConfidence: 0.5});
  hands.onResults((results) => {
    const hand = results.multiHandLandmarks && results.multiHandLandmarks[0];
    if (hand) onLandmarks(Float32Array.from(hand.flatMap((p) => [p.x, p.y, p.z])));
  });
  return hands;
}

async function trackVideo(video) {
  if (state.model.layout !== 'mediapipe_hand') {
    throw new Error(`The camera and videos give MediaPipe hand landmarks; this model's layout ` +
                    `is ${state.model.layout}. Play a recorded stream of its layout instead.`);
  }
  const hands = handTracker((frame) => onFrame(frame));
  newStream();
  $('video').hidden = false;
  const step = async () => {
    if (video.paused || video.ended) return;
    await hands.send({image: video});
    video.requestVideoFrameCallback ? video.requestVideoFrameCallback(step) : requestAnimationFrame(step);
  };
  await video.play();
  step();
}

function recordToggle() {
  if (state.recording) {
    if (state.recording.frames.length) state.clips.push(state.recording);
    state.recording = null;
    $('record-toggle').textContent = 'Record';
  } else {
    const label = $('record-label').value.trim();
    if (!label || /[\u0000-\u001f]/.test(label)) {
      $('record-status').textContent = 'Give the clip a label (one line of text) first.';
      return;
    }
    state.recording = {label, frames: []};
    $('record-toggle').textContent = 'Stop';
  }
  const counts = {};
  for (const clip of state.clips) counts[clip.label] = (counts[clip.label] || 0) + 1;
  $('record-status').textContent = state.clips.length ? `${state.clips.length} clips: ` +
    Object.entries(counts).map(([l, n]) => `${l} ${n}`).join(', ') : 'No clips yet.';
  $('record-save').disabled = !state.clips.length;
}

function archive() {
  return writeArchive(state.clips, {joints: state.model.joints, channels: state.model.channels,
                                    layout: state.model.layout});
}

function saveArchive() {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(archive());
  link.download = 'clips.npz';
  link.click();
}

$('model-file').addEventListener('change', async (event) => {
  const [file] = event.target.files;
  if (file) await useModel(new Uint8Array(await file.arrayBuffer()));
});
$('stream-file').addEventListener('change', async (event) => {
  const [file] = event.target.files;
  if (!file || !state.model) return;
  state.source = 'stream';
  $('video').hidden = true;
  try {
    const frames = await streamFrames(file);
    $('source-status').textContent = `Playing ${frames.length} frames of ${file.name}...`;
    const decisions = await playFrames(frames, Number($('fps').value));
    $('source-status').textContent = `Played ${frames.length} frames: ${decisions.length} decisions.`;
    document.body.dataset.played = String(decisions.length);
  } catch (error) {
    $('source-status').textContent = error.message;
  }
});
$('video-file').addEventListener('change', async (event) => {
  const [file] = event.target.files;
  if (!file || !state.model) return;
  state.source = 'video';
  $('video').srcObject = null;
  $('video').src = URL.createObjectURL(file);
  try { await trackVideo($('video')); } catch (error) { $('source-status').textContent = error.message; }
});
$('camera').addEventListener('click', async () => {
  if (!state.model) return;
  state.source = 'camera';
  try {
    $('video').srcObject = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'user'}});
    await trackVideo($('video'));
  } catch (error) {
    $('source-status').textContent = `Camera: ${error.message} (a phone needs https or ` +
      'localhost: see docs/guide/export.md)';
  }
});
for (const id of ['every', 'window', 'smoothing', 'threshold', 'confirm']) {
  $(id).addEventListener('change', () => { if (state.model) newStream(); });
}
$('record-toggle').addEventListener('click', recordToggle);
$('record-save').addEventListener('click', saveArchive);

window.gcnpruneApp = {
  state,
  // Raw outputs of one window (a Float32Array of frames x joints x channels).
  outputs: (window) => state.model.outputs(window),
  // Decisions over frames, with the page's loop and settings, as fast as they come.
  play: async (frames) => ({
    decisions: (await playFrames(frames.map((f) => Float32Array.from(f.flat())), 0))
      .map(({frame, index, label, confidence}) => ({frame, index, label, confidence})),
    onsets: state.found,
  }),
  archiveBytes: async () => Array.from(new Uint8Array(await archive().arrayBuffer())),
  // The landmarks the camera's and videos' tracker finds in one image (a canvas or video).
  handLandmarks: async (image) => {
    const found = [];
    const hands = handTracker((frame) => found.push(Array.from(frame)));
    await hands.send({image});
    await hands.close();
    return found;
  },
};

const response = await fetch('/model.tflite');
if (response.ok) await useModel(new Uint8Array(await response.arrayBuffer()));
else $('model-status').textContent = 'No model served: open one.';
