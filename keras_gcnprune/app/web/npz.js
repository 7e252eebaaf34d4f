// The package's `.npz` archive (keras_gcnprune.data.dataset) in the browser: reading one
// (a zip of `.npy` arrays, stored or deflated, as numpy writes them) to play its sequences back,
// and writing one (stored) from recorded clips for `gcnprune train --dataset clips.npz`.

const DTYPES = {'<f4': Float32Array, '<f8': Float64Array, '<i4': Int32Array,
                '<i8': BigInt64Array, '|u1': Uint8Array, '<u2': Uint16Array};

function parseNpy(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim())
    .map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error('Fortran-ordered arrays are not read.');
  const data = bytes.slice(start + headerLength);
  const count = shape.reduce((a, b) => a * b, 1);
  if (descr.startsWith('<U')) {
    const width = Number(descr.slice(2));
    const codes = new Uint32Array(data.buffer, 0, count * width);
    const values = [];
    for (let i = 0; i < count; i++) {
      values.push(String.fromCodePoint(...codes.slice(i * width, (i + 1) * width).filter((c) => c)));
    }
    return {shape, values};
  }
  const type = DTYPES[descr];
  if (!type) throw new Error(`Arrays of dtype ${descr} are not read.`);
  return {shape, values: new type(data.buffer, 0, count)};
}

async function inflateRaw(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Every array of an .npz file, by name (without `.npy`).
export async function readNpz(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  let end = bytes.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error('This is not an .npz archive (no zip directory).');
  let entry = view.getUint32(end + 16, true);
  const count = view.getUint16(end + 10, true);
  const arrays = {};
  for (let i = 0; i < count; i++) {
    const method = view.getUint16(entry + 10, true);
    const size = view.getUint32(entry + 20, true);
    const nameLength = view.getUint16(entry + 28, true);
    const extra = view.getUint16(entry + 30, true);
    const comment = view.getUint16(entry + 32, true);
    const local = view.getUint32(entry + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(entry + 46, entry + 46 + nameLength));
    const dataStart = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const raw = bytes.subarray(dataStart, dataStart + size);
    const data = method === 8 ? await inflateRaw(raw) : raw.slice();
    arrays[name.replace(/\.npy$/, '')] = parseNpy(data);
    entry += 46 + nameLength + extra + comment;
  }
  return arrays;
}

// The sequences of an archive, each an array of Float32Array frames, and their labels.
export async function readArchive(buffer) {
  const arrays = await readNpz(buffer);
  const [frames, joints, channels] = arrays.poses.shape;
  const poses = Float32Array.from(arrays.poses.values, Number);
  const lengths = Array.from(arrays.lengths.values, Number);
  if (lengths.reduce((a, b) => a + b, 0) !== frames) throw new Error('lengths do not sum to the poses.');
  const size = joints * channels;
  const sequences = [];
  let at = 0;
  for (const length of lengths) {
    const sequence = [];
    for (let t = 0; t < length; t++, at++) sequence.push(poses.slice(at * size, (at + 1) * size));
    sequences.push(sequence);
  }
  return {sequences, joints, channels,
          labels: arrays.labels ? Array.from(arrays.labels.values, (v) => String(v)) : [],
          classNames: arrays.class_names ? arrays.class_names.values : null};
}

function npy(descr, shape, payload) {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + payload.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), 10 + header.length);
  return out;
}

function strings(values, shape) {
  const width = Math.max(1, ...values.map((v) => [...v].length));
  const codes = new Uint32Array(values.length * width);
  values.forEach((v, i) => [...v].forEach((c, k) => { codes[i * width + k] = c.codePointAt(0); }));
  return npy(`<U${width}`, shape, codes);
}

const CRC_TABLE = Array.from({length: 256}, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function zipStored(files) {
  const parts = [], directory = [];
  let offset = 0;
  for (const [name, data] of Object.entries(files)) {
    const nameBytes = new TextEncoder().encode(name);
    const header = new DataView(new ArrayBuffer(30));
    const crc = crc32(data);
    header.setUint32(0, 0x04034b50, true); header.setUint16(4, 20, true);
    header.setUint32(14, crc, true); header.setUint32(18, data.length, true);
    header.setUint32(22, data.length, true); header.setUint16(26, nameBytes.length, true);
    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, 0x02014b50, true); central.setUint16(4, 20, true);
    central.setUint16(6, 20, true); central.setUint32(16, crc, true);
    central.setUint32(20, data.length, true); central.setUint32(24, data.length, true);
    central.setUint16(28, nameBytes.length, true); central.setUint32(42, offset, true);
    parts.push(new Uint8Array(header.buffer), nameBytes, data);
    directory.push(new Uint8Array(central.buffer), nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const size = directory.reduce((a, b) => a + b.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, Object.keys(files).length, true);
  end.setUint16(10, Object.keys(files).length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...directory, new Uint8Array(end.buffer)],
                  {type: 'application/octet-stream'});
}

// Recorded clips as the package's archive. Every fifth clip of a class is its test part
// (meta_partition), so that `gcnprune train --dataset clips.npz` has a split to report.
export function writeArchive(clips, {joints, channels, layout, dataset = 'recorded'}) {
  const classNames = [...new Set(clips.map((clip) => clip.label))];
  const frames = clips.reduce((a, clip) => a + clip.frames.length, 0);
  const poses = new Float32Array(frames * joints * channels);
  let at = 0;
  for (const clip of clips) for (const frame of clip.frames) { poses.set(frame, at); at += frame.length; }
  const seen = {};
  const partition = clips.map((clip) => {
    seen[clip.label] = (seen[clip.label] || 0) + 1;
    return seen[clip.label] % 5 === 0 ? 'test' : 'train';
  });
  const files = {
    'poses.npy': npy('<f4', [frames, joints, channels], poses),
    'lengths.npy': npy('<i4', [clips.length], Int32Array.from(clips, (c) => c.frames.length)),
    'labels.npy': npy('<i4', [clips.length], Int32Array.from(clips, (c) => classNames.indexOf(c.label))),
    'class_names.npy': strings(classNames, [classNames.length]),
    'meta_partition.npy': strings(partition, [clips.length]),
    'meta_group.npy': npy('<i4', [clips.length], Int32Array.from(clips, (_, i) => i)),
    'dataset.npy': strings([dataset], []),
  };
  if (layout) files['layout.npy'] = strings([layout], []);
  return zipStored(files);
}
