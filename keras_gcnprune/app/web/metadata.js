// The package's metadata in a .tflite file, read without dependencies: the file is a
// flatbuffer (TFLite schema: Model.buffers is field 4, Model.metadata field 6; Metadata.name
// field 0, Metadata.buffer field 1; Buffer.data field 0, or offset/size fields 1/2 for data
// stored after the flatbuffer), and the package stores its JSON under METADATA_NAME.

export const METADATA_NAME = 'keras_gcnprune';

class Flatbuffer {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u16(at) { return this.view.getUint16(at, true); }
  u32(at) { return this.view.getUint32(at, true); }
  root() { return this.u32(0); }
  // Position of a table's field, or 0 where the field is absent.
  field(table, id) {
    const vtable = table - this.view.getInt32(table, true);
    const entry = 4 + 2 * id;
    if (entry >= this.u16(vtable)) return 0;
    const offset = this.u16(vtable + entry);
    return offset ? table + offset : 0;
  }
  vector(table, id) {
    const at = this.field(table, id);
    if (!at) return null;
    const start = at + this.u32(at);
    return {length: this.u32(start), start: start + 4};
  }
  tableAt(vector, index) {
    const at = vector.start + 4 * index;
    return at + this.u32(at);
  }
  string(table, id) {
    const vector = this.vector(table, id);
    if (!vector) return null;
    return new TextDecoder().decode(this.bytes.subarray(vector.start, vector.start + vector.length));
  }
  scalar(table, id, read, fallback) {
    const at = this.field(table, id);
    return at ? read(at) : fallback;
  }
}

// The bytes of the buffer a metadata entry named `name` points to, or null.
export function metadataEntry(bytes, name) {
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== 'TFL3') {
    throw new Error('This is not a TFLite model (no TFL3 file identifier).');
  }
  const fb = new Flatbuffer(bytes);
  const model = fb.root();
  const entries = fb.vector(model, 6);
  const buffers = fb.vector(model, 4);
  if (!entries || !buffers) return null;
  for (let i = 0; i < entries.length; i++) {
    const entry = fb.tableAt(entries, i);
    if (fb.string(entry, 0) !== name) continue;
    const index = fb.scalar(entry, 1, (at) => fb.u32(at), 0);
    if (index >= buffers.length) return null;
    const buffer = fb.tableAt(buffers, index);
    const data = fb.vector(buffer, 0);
    if (data && data.length) return bytes.subarray(data.start, data.start + data.length);
    const offset = Number(fb.scalar(buffer, 1, (at) => fb.view.getBigUint64(at, true), 0n));
    const size = Number(fb.scalar(buffer, 2, (at) => fb.view.getBigUint64(at, true), 0n));
    return offset > 1 ? bytes.subarray(offset, offset + size) : null;
  }
  return null;
}

// What the app needs from an exported model, refusing a file that lacks it.
export function readAppMetadata(bytes) {
  const entry = metadataEntry(bytes, METADATA_NAME);
  if (!entry) {
    throw new Error(`This model carries no ${METADATA_NAME} metadata (labels, frames, ` +
                    'skeleton layout): export it with `gcnprune export RUN --tflite FILE ' +
                    '--raw-input --probabilities`.');
  }
  const metadata = JSON.parse(new TextDecoder().decode(entry));
  if (!metadata.raw_input) {
    throw new Error('This model takes preprocessed inputs; a stream of landmarks needs a ' +
                    'raw-input export: `gcnprune export RUN --tflite FILE --raw-input ' +
                    '--probabilities`.');
  }
  const [, frames, joints, channels] = metadata.input.shape;
  if (!Array.isArray(metadata.labels) || metadata.labels.length !== metadata.output.shape[1]) {
    throw new Error('This model\'s metadata has no label for each of its outputs.');
  }
  return {metadata, frames, joints, channels, labels: metadata.labels,
          layout: metadata.layout ? metadata.layout.name : null,
          returnsProbabilities: metadata.output.name === 'probabilities'};
}
