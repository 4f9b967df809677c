/** Base64, hex and sha256 that work alike in Node (≥ 20) and browsers. */

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Padded standard base64, as cosmwasm's `Binary` accepts it (`atob` alone is more lenient). */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error(`'${text.slice(0, 20)}' is not base64`);
  const s = atob(text);
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`'${hex}' is not hex`);
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

export const utf8 = new TextEncoder();
export const fromUtf8 = (b: Uint8Array) => new TextDecoder('utf-8', { fatal: true }).decode(b);

/** sha256 of `data` (several parts are hashed as one concatenation), as hex. */
export async function sha256Hex(...data: Uint8Array[]): Promise<string> {
  const all = new Uint8Array(data.reduce((n, d) => n + d.length, 0));
  let at = 0;
  for (const d of data) {
    all.set(d, at);
    at += d.length;
  }
  return toHex(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', all)));
}
