// The app loop of keras_gcnprune.deploy.StreamingClassifier, step for step, so that the page
// and Python decide alike on the same stream: a ring buffer of the last `window` frames,
// resampled to the model's frames (linear interpolation over the whole span), a model call
// every `every` frames once the buffer is full, an exponential moving average of the
// probabilities in float32, and a threshold.

export function resample(frames, count) {
  // frames: array of Float32Array (one per frame, joints * channels values).
  const length = frames.length;
  const size = frames[0].length;
  const out = new Float32Array(count * size);
  const step = length > 1 ? (length - 1) / (count - 1) : 0;
  for (let i = 0; i < count; i++) {
    let position = count > 1 ? i * step : 0;
    if (i === count - 1 && length > 1) position = length - 1;
    const low = length > 1 ? Math.floor(position) : 0;
    const high = Math.min(low + 1, length - 1);
    const weight = length > 1 ? position - low : 0;
    const a = frames[low], b = frames[high];
    for (let k = 0; k < size; k++) out[i * size + k] = a[k] * (1 - weight) + b[k] * weight;
  }
  return out;
}

export class StreamingClassifier {
  constructor(model, {every = 4, window = null, smoothing = 0.5, threshold = 0.5} = {}) {
    if (!(every >= 1) || !(smoothing >= 0 && smoothing < 1) || !(threshold >= 0 && threshold <= 1)) {
      throw new Error(`Need every >= 1, 0 <= smoothing < 1 and 0 <= threshold <= 1; got ` +
                      `every=${every}, smoothing=${smoothing}, threshold=${threshold}.`);
    }
    this.model = model;
    this.every = every;
    this.window = window || model.frames;
    this.smoothing = smoothing;
    this.threshold = threshold;
    this.reset();
  }

  reset() {
    this.buffer = new Array(this.window);
    this.seen = 0;
    this.smoothed = null;
  }

  orderedWindow() {
    const start = this.seen % this.window;
    return [...this.buffer.slice(start), ...this.buffer.slice(0, start)];
  }

  // frame: Float32Array of joints * channels raw coordinates. Resolves to a decision or null.
  async push(frame) {
    const expected = this.model.joints * this.model.channels;
    if (frame.length !== expected) {
      throw new Error(`A frame must hold ${this.model.joints} joints x ${this.model.channels} ` +
                      `channels = ${expected} values, got ${frame.length}.`);
    }
    if (!frame.every(Number.isFinite)) {
      throw new Error(`Frame ${this.seen} holds NaN or infinite coordinates; it was not added.`);
    }
    this.buffer[this.seen % this.window] = Float32Array.from(frame);
    this.seen += 1;
    if (this.seen < this.window || (this.seen - this.window) % this.every) return null;
    const started = performance.now();
    const scores = await this.model.probabilities(resample(this.orderedWindow(), this.model.frames));
    const latencyMs = performance.now() - started;
    if (this.smoothed === null) {
      this.smoothed = Float32Array.from(scores);
    } else {
      const keep = Math.fround(this.smoothing), take = Math.fround(1 - this.smoothing);
      this.smoothed = this.smoothed.map((previous, i) =>
        Math.fround(Math.fround(keep * previous) + Math.fround(take * scores[i])));
    }
    let top = 0;
    for (let i = 1; i < this.smoothed.length; i++) if (this.smoothed[i] > this.smoothed[top]) top = i;
    const confidence = this.smoothed[top];
    return {frame: this.seen - 1, index: top, confidence, latencyMs,
            label: confidence >= this.threshold ? this.model.labels[top] : null,
            probabilities: Array.from(this.smoothed)};
  }
}

// keras_gcnprune.deploy.OnsetDetector: a labelled class other than the background that tops
// `confirm` decisions in a row is reported once; again only after another class or none.
export class OnsetDetector {
  constructor({background = null, confirm = 2, lag = 0} = {}) {
    if (!(confirm >= 1) || !(lag >= 0)) {
      throw new Error(`Need confirm >= 1 and lag >= 0; got confirm=${confirm}, lag=${lag}.`);
    }
    Object.assign(this, {background, confirm, lag});
    this.reset();
  }

  reset() {
    this.run = [];
    this.active = null;
  }

  push(decision) {
    const label = decision.label !== this.background ? decision.label : null;
    if (label === null || label !== (this.run.length ? this.run[this.run.length - 1].label : null)) {
      this.run = [];
      if (label !== this.active) this.active = null;
    }
    if (label === null) return null;
    this.run.push(decision);
    if (this.run.length < this.confirm || label === this.active) return null;
    this.active = label;
    return {label, index: decision.index, frame: decision.frame,
            start: Math.max(0, this.run[0].frame - this.lag)};
  }
}
