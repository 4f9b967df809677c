/**
 * A drawing (RGBA pixels, dark or opaque strokes on a light or transparent background) as a
 * digits-model input: the strokes' bounding box, padded to a square and centred, averaged into
 * `size × size` cells, each the ink share scaled to 0–16 and rounded — the format of the
 * bundled model's data (scikit-learn's 8×8 digits: 4×4 blocks of a 32×32 bitmap, 0–16 each).
 */
export function inputFromDrawing(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  { size = 8, max = 16 }: { size?: number; max?: number } = {},
): number[] {
  const ink = new Float64Array(width * height);
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      const lum = (rgba[i] + rgba[i + 1] + rgba[i + 2]) / (3 * 255);
      const v = (rgba[i + 3] / 255) * (1 - lum); // opaque and dark = ink
      ink[y * width + x] = v;
      if (v > 0.1) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  if (x1 < 0) return new Array(size * size).fill(0);
  const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const [left, top] = [x0 - (side - (x1 - x0 + 1)) / 2, y0 - (side - (y1 - y0 + 1)) / 2];
  const out = new Array(size * size).fill(0);
  const counts = new Array(size * size).fill(0);
  for (let y = Math.floor(top); y < top + side; y++) {
    for (let x = Math.floor(left); x < left + side; x++) {
      const cell = Math.min(size - 1, Math.floor(((y - top) / side) * size)) * size +
        Math.min(size - 1, Math.floor(((x - left) / side) * size));
      if (y - top < 0 || x - left < 0) continue;
      const inside = x >= 0 && y >= 0 && x < width && y < height;
      out[cell] += inside ? ink[y * width + x] : 0;
      counts[cell] += 1;
    }
  }
  return out.map((s, i) => Math.round((max * s) / Math.max(1, counts[i])));
}
