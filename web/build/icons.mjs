// Hearth's icons, drawn from one description: a flame in a fireplace opening on Hearth's green.
// Writes public/icons/ (the SVG and the PNGs the manifest and index.html name); the outputs are
// committed, so run this only after changing the design: `npm run icons`.
//
// The PNGs are rasterised here, with no browser and no image library: every shape is a path of
// lines and cubic Béziers, flattened to polygons and filled with the non-zero rule (16 rows of
// samples per pixel, exact horizontal coverage), then written as RGBA PNG with zlib. Only
// arithmetic, no platform maths, so the same run gives the same pixels everywhere.

import { Buffer } from 'node:buffer';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stdout } from 'node:process';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

/** @typedef {['M', number, number] | ['L', number, number] | ['C', number, number, number, number, number, number] | ['Z']} Command */
/** @typedef {{fill: string, path: Command[]}} Shape */
/** @typedef {{file: string, size: number, fullBleed: boolean, scale: number}} Variant */

const GREEN = '#1f6f5c';
const SIZE = 512; // the design's coordinate space
/** A quarter circle of radius r as a cubic Bézier: control points at k·r. */
const K = 0.5522847498;

/** A rectangle with corners of radius r, clockwise.
 * @param {number} x @param {number} y @param {number} w @param {number} h @param {number} r
 * @returns {Command[]} */
function roundedRect(x, y, w, h, r) {
  const c = r * (1 - K);
  return [
    ['M', x + r, y],
    ['L', x + w - r, y],
    ['C', x + w - c, y, x + w, y + c, x + w, y + r],
    ['L', x + w, y + h - r],
    ['C', x + w, y + h - c, x + w - c, y + h, x + w - r, y + h],
    ['L', x + r, y + h],
    ['C', x + c, y + h, x, y + h - c, x, y + h - r],
    ['L', x, y + r],
    ['C', x, y + c, x + c, y, x + r, y],
    ['Z'],
  ];
}

/** The fireplace opening: straight sides under a semicircular arch centred at (cx, top + r).
 * @param {number} cx @param {number} top @param {number} r @param {number} bottom */
function arch(cx, top, r, bottom) {
  const cy = top + r;
  const k = r * K;
  /** @type {Command[]} */
  const path = [
    ['M', cx - r, bottom],
    ['L', cx - r, cy],
    ['C', cx - r, cy - k, cx - k, top, cx, top],
    ['C', cx + k, top, cx + r, cy - k, cx + r, cy],
    ['L', cx + r, bottom],
    ['Z'],
  ];
  return path;
}

/** A flame: a pointed tip at (cx, tip), a round base of half-width w ending at `base`, its tip
 *  leaning a little (`lean`) to the right.
 * @param {number} cx @param {number} tip @param {number} w @param {number} base @param {number} lean
 * @returns {Command[]} */
function flame(cx, tip, w, base, lean) {
  const h = base - tip;
  const mid = base - w; // where the round base starts
  return [
    ['M', cx + lean, tip],
    ['C', cx + lean + w * 0.25, tip + h * 0.22, cx + w, mid - h * 0.22, cx + w, mid],
    ['C', cx + w, base - w * (1 - K), cx + w * K, base, cx, base],
    ['C', cx - w * K, base, cx - w, base - w * (1 - K), cx - w, mid],
    ['C', cx - w, mid - h * 0.3, cx + lean - w * 0.3, tip + h * 0.3, cx + lean, tip],
    ['Z'],
  ];
}

/** The design inside the background, in the 512 space. @returns {Shape[]} */
function emblem() {
  return [
    { fill: '#17574a', path: arch(256, 104, 124, 392) },
    { fill: '#f29e38', path: flame(256, 136, 92, 380, 14) },
    { fill: '#ffd98a', path: flame(256, 236, 50, 380, -8) },
    { fill: '#f4ecdc', path: roundedRect(96, 376, 320, 40, 20) },
  ];
}

/** The background and the emblem, scaled by `scale` about the centre. @param {Variant} variant */
function shapes(variant) {
  const background = variant.fullBleed
    ? roundedRect(0, 0, SIZE, SIZE, 0)
    : roundedRect(0, 0, SIZE, SIZE, 112);
  const c = SIZE / 2;
  const place = (/** @type {number} */ v) => c + (v - c) * variant.scale;
  return [
    { fill: GREEN, path: background },
    ...emblem().map((shape) => ({
      fill: shape.fill,
      path: shape.path.map(
        (command) =>
          /** @type {Command} */ (
            command[0] === 'Z' ? command : [command[0], ...command.slice(1).map((v) => place(Number(v)))]
          ),
      ),
    })),
  ];
}

// --- SVG --------------------------------------------------------------------------------------

const num = (/** @type {number} */ v) => String(Math.round(v * 100) / 100);

/** @param {Shape[]} list */
function svg(list) {
  const paths = list.map((shape) => {
    const d = shape.path
      .map((command) => command[0] + command.slice(1).map((v) => num(Number(v))).join(' '))
      .join('');
    return `  <path fill="${shape.fill}" d="${d}"/>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${SIZE} ${SIZE}" width="${SIZE}" height="${SIZE}">`,
    '  <title>Hearth</title>',
    ...paths,
    '</svg>',
    '',
  ].join('\n');
}

// --- Rasterising ------------------------------------------------------------------------------

/** @typedef {{x: number, y: number}} Point */
/** @typedef {{x0: number, y0: number, x1: number, y1: number}} Edge */

/** Rows of samples per pixel; horizontally, coverage is exact. */
const ROWS = 16;
/** Straight segments per cubic Bézier. */
const CURVE_STEPS = 32;

/** The path as closed polygons, in pixels of a `size` image.
 * @param {Command[]} path @param {number} size @returns {Point[][]} */
function polygons(path, size) {
  const s = size / SIZE;
  /** @type {Point[][]} */
  const result = [];
  /** @type {Point[]} */
  let current = [];
  let at = { x: 0, y: 0 };
  for (const command of path) {
    if (command[0] === 'M') {
      if (current.length > 0) result.push(current);
      at = { x: command[1] * s, y: command[2] * s };
      current = [at];
    } else if (command[0] === 'L') {
      at = { x: command[1] * s, y: command[2] * s };
      current.push(at);
    } else if (command[0] === 'C') {
      const [, x1, y1, x2, y2, x3, y3] = command;
      const from = at;
      for (let i = 1; i <= CURVE_STEPS; i++) {
        const t = i / CURVE_STEPS;
        const u = 1 - t;
        const [a, b, c, d] = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t];
        current.push({
          x: a * from.x + (b * x1 + c * x2 + d * x3) * s,
          y: a * from.y + (b * y1 + c * y2 + d * y3) * s,
        });
      }
      at = { x: x3 * s, y: y3 * s };
    }
  }
  if (current.length > 0) result.push(current);
  return result;
}

/** How much of each pixel `path` covers (0 to 1), non-zero rule.
 * @param {Command[]} path @param {number} size */
function coverage(path, size) {
  const cover = new Float64Array(size * size);
  /** @type {Edge[]} */
  const edges = [];
  for (const polygon of polygons(path, size)) {
    polygon.forEach((p, i) => {
      const q = polygon[(i + 1) % polygon.length] ?? p;
      if (p.y !== q.y) edges.push({ x0: p.x, y0: p.y, x1: q.x, y1: q.y });
    });
  }
  for (let py = 0; py < size; py++) {
    for (let sub = 0; sub < ROWS; sub++) {
      const sy = py + (sub + 0.5) / ROWS;
      /** @type {{x: number, winding: number}[]} */
      const crossings = [];
      for (const { x0, y0, x1, y1 } of edges) {
        const down = y1 > y0;
        if (down ? sy >= y0 && sy < y1 : sy >= y1 && sy < y0) {
          crossings.push({ x: x0 + ((sy - y0) * (x1 - x0)) / (y1 - y0), winding: down ? 1 : -1 });
        }
      }
      crossings.sort((a, b) => a.x - b.x);
      let winding = 0;
      crossings.forEach((crossing, i) => {
        winding += crossing.winding;
        const next = crossings[i + 1];
        if (winding !== 0 && next) addSpan(cover, py * size, size, crossing.x, next.x);
      });
    }
  }
  return cover;
}

/** Adds 1/ROWS × the overlap of [from, to) with each pixel of the row at `offset`.
 * @param {Float64Array} cover @param {number} offset @param {number} size
 * @param {number} from @param {number} to */
function addSpan(cover, offset, size, from, to) {
  const a = Math.max(0, from);
  const b = Math.min(size, to);
  for (let px = Math.floor(a); px < b; px++) {
    const overlap = Math.min(b, px + 1) - Math.max(a, px);
    if (overlap > 0) cover[offset + px] = (cover[offset + px] ?? 0) + overlap / ROWS;
  }
}

/** `#rrggbb` as three numbers from 0 to 1. @param {string} hex @returns {[number, number, number]} */
function rgb(hex) {
  const channel = (/** @type {number} */ at) => parseInt(hex.slice(at, at + 2), 16) / 255;
  return [channel(1), channel(3), channel(5)];
}

/** RGBA pixels (not premultiplied) of the shapes painted in order over transparency.
 * @param {Shape[]} list @param {number} size */
function render(list, size) {
  const paint = new Float64Array(size * size * 4); // premultiplied, 0..1
  for (const shape of list) {
    const colour = [...rgb(shape.fill), 1];
    const cover = coverage(shape.path, size);
    cover.forEach((value, i) => {
      const a = Math.min(1, value);
      if (a === 0) return;
      colour.forEach((c, k) => {
        paint[4 * i + k] = c * a + (paint[4 * i + k] ?? 0) * (1 - a);
      });
    });
  }
  const bytes = new Uint8Array(size * size * 4);
  for (let i = 0; i < size * size; i++) {
    const a = paint[4 * i + 3] ?? 0;
    for (let k = 0; k < 3; k++) bytes[4 * i + k] = a > 0 ? Math.round(((paint[4 * i + k] ?? 0) / a) * 255) : 0;
    bytes[4 * i + 3] = Math.round(a * 255);
  }
  return bytes;
}

// --- PNG --------------------------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(/** @type {Uint8Array} */ bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(/** @type {string} */ type, /** @type {Uint8Array} */ data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** An 8-bit RGBA PNG. @param {Uint8Array} rgba */
function png(rgba, /** @type {number} */ size) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // depth 8, RGBA, deflate, no filter method, no interlace
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    raw.set(rgba.subarray(y * size * 4, (y + 1) * size * 4), y * (size * 4 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

// --- The files --------------------------------------------------------------------------------

/** `any` icons have rounded corners on transparency; maskable and Apple ones fill the square
 *  (the platform cuts its own shape), the maskable one with the emblem inside the safe circle
 *  (radius 40% of the size). @type {Variant[]} */
const VARIANTS = [
  { file: 'icon-192.png', size: 192, fullBleed: false, scale: 1 },
  { file: 'icon-512.png', size: 512, fullBleed: false, scale: 1 },
  { file: 'icon-maskable-512.png', size: 512, fullBleed: true, scale: 0.8 },
  { file: 'apple-touch-icon.png', size: 180, fullBleed: true, scale: 0.9 },
  { file: 'favicon-32.png', size: 32, fullBleed: false, scale: 1 },
];

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'public', 'icons');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'icon.svg'), svg(shapes({ file: 'icon.svg', size: SIZE, fullBleed: false, scale: 1 })));
for (const variant of VARIANTS) {
  writeFileSync(join(out, variant.file), png(render(shapes(variant), variant.size), variant.size));
}
stdout.write(`wrote ${VARIANTS.length + 1} icons to ${out}\n`);
