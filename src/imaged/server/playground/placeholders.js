// Decoders of the two placeholders /metadata returns, written for this page: ThumbHash
// (evanw/thumbhash, the format of version 0.1.1) and BlurHash (woltapp/blurhash). Each
// returns {w, h, rgba} (RGBA bytes, 4 per pixel) that `toDataURL` turns into an image.

const { PI, cos, max, min, round, floor, sign, abs } = Math;

/** Standard base64 (with padding) → bytes. */
export function base64Bytes(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The width / height ratio the ThumbHash encodes (from its header alone). */
export function thumbHashRatio(hash) {
  const hasAlpha = hash[2] & 0x80;
  const landscape = hash[4] & 0x80;
  const lx = landscape ? (hasAlpha ? 5 : 7) : hash[3] & 7;
  const ly = landscape ? hash[3] & 7 : hasAlpha ? 5 : 7;
  return lx / ly;
}

/** A ThumbHash (bytes) → about 32 pixels on the longer side. */
export function thumbHashToRGBA(hash) {
  const header24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const header16 = hash[3] | (hash[4] << 8);
  const lDC = (header24 & 63) / 63;
  const pDC = ((header24 >> 6) & 63) / 31.5 - 1;
  const qDC = ((header24 >> 12) & 63) / 31.5 - 1;
  const lScale = ((header24 >> 18) & 31) / 31;
  const hasAlpha = header24 >> 23;
  const pScale = ((header16 >> 3) & 63) / 63;
  const qScale = ((header16 >> 9) & 63) / 63;
  const landscape = header16 >> 15;
  const lx = max(3, landscape ? (hasAlpha ? 5 : 7) : header16 & 7);
  const ly = max(3, landscape ? header16 & 7 : hasAlpha ? 5 : 7);
  const aDC = hasAlpha ? (hash[5] & 15) / 15 : 1;
  const aScale = (hash[5] >> 4) / 15;

  // The AC coefficients, 4 bits each (chroma boosted by 1.25 against quantisation).
  const start = hasAlpha ? 6 : 5;
  let index = 0;
  const channel = (nx, ny, scale) => {
    const ac = [];
    for (let cy = 0; cy < ny; cy++) {
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++, index++) {
        const nibble = (hash[start + (index >> 1)] >> ((index & 1) << 2)) & 15;
        ac.push((nibble / 7.5 - 1) * scale);
      }
    }
    return ac;
  };
  const lAC = channel(lx, ly, lScale);
  const pAC = channel(3, 3, pScale * 1.25);
  const qAC = channel(3, 3, qScale * 1.25);
  const aAC = hasAlpha ? channel(5, 5, aScale) : [];

  const ratio = thumbHashRatio(hash);
  const w = round(ratio > 1 ? 32 : 32 * ratio);
  const h = round(ratio > 1 ? 32 / ratio : 32);
  const rgba = new Uint8Array(w * h * 4); // truncates, as the reference does
  const fx = [];
  const fy = [];
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i += 4) {
      let l = lDC;
      let p = pDC;
      let q = qDC;
      let a = aDC;
      for (let cx = 0, n = max(lx, hasAlpha ? 5 : 3); cx < n; cx++) {
        fx[cx] = cos((PI / w) * (x + 0.5) * cx);
      }
      for (let cy = 0, n = max(ly, hasAlpha ? 5 : 3); cy < n; cy++) {
        fy[cy] = cos((PI / h) * (y + 0.5) * cy);
      }
      for (let cy = 0, j = 0; cy < ly; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx * ly < lx * (ly - cy); cx++, j++) {
          l += lAC[j] * fx[cx] * fy2;
        }
      }
      for (let cy = 0, j = 0; cy < 3; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 3 - cy; cx++, j++) {
          const f = fx[cx] * fy2;
          p += pAC[j] * f;
          q += qAC[j] * f;
        }
      }
      if (hasAlpha) {
        for (let cy = 0, j = 0; cy < 5; cy++) {
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 5 - cy; cx++, j++) {
            a += aAC[j] * fx[cx] * fy2;
          }
        }
      }
      // LPQ → RGB
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      const g = r - q;
      rgba[i] = max(0, 255 * min(1, r));
      rgba[i + 1] = max(0, 255 * min(1, g));
      rgba[i + 2] = max(0, 255 * min(1, b));
      rgba[i + 3] = max(0, 255 * min(1, a));
    }
  }
  return { w, h, rgba };
}

const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function base83(text) {
  let value = 0;
  for (const c of text) {
    const digit = DIGITS.indexOf(c);
    if (digit < 0) throw new Error(`invalid BlurHash character ${c}`);
    value = value * 83 + digit;
  }
  return value;
}

function toLinear(value) {
  const v = value / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function toSRGB(value) {
  const v = max(0, min(1, value));
  return floor(v <= 0.0031308 ? v * 12.92 * 255 + 0.5 : (1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5);
}

/** A BlurHash → w × h pixels (the reference decoder, punch 1). */
export function blurHashToRGBA(hash, w, h) {
  const size = base83(hash[0]);
  const nx = (size % 9) + 1;
  const ny = floor(size / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) throw new Error("BlurHash length does not match its size");
  const maxAC = (base83(hash[1]) + 1) / 166;
  const colours = [];
  for (let i = 0; i < nx * ny; i++) {
    if (i === 0) {
      const dc = base83(hash.slice(2, 6));
      colours.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
    } else {
      const ac = base83(hash.slice(4 + i * 2, 6 + i * 2));
      const component = (quantised) => {
        const v = (quantised - 9) / 9;
        return sign(v) * abs(v) ** 2 * maxAC;
      };
      colours.push([component(floor(ac / 361)), component(floor(ac / 19) % 19), component(ac % 19)]);
    }
  }
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0, o = 0; y < h; y++) {
    for (let x = 0; x < w; x++, o += 4) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < ny; j++) {
        const fy = cos((PI * y * j) / h);
        for (let i = 0; i < nx; i++) {
          const basis = cos((PI * x * i) / w) * fy;
          const colour = colours[i + j * nx];
          r += colour[0] * basis;
          g += colour[1] * basis;
          b += colour[2] * basis;
        }
      }
      rgba[o] = toSRGB(r);
      rgba[o + 1] = toSRGB(g);
      rgba[o + 2] = toSRGB(b);
      rgba[o + 3] = 255;
    }
  }
  return { w, h, rgba };
}

/** RGBA pixels → a PNG data: URL (allowed by the page's img-src). */
export function toDataURL({ w, h, rgba }) {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer), w, h), 0, 0);
  return canvas.toDataURL("image/png");
}
