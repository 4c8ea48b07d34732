/**
 * Decodes well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF) from
 * `bytes[start, end)`; undefined when malformed. Builds the string a code unit at a time, which
 * suits the short strings (tags, media, adapter names) it is used for. Written by hand because
 * TextDecoder is a web and Node API, not ECMAScript, and this directory compiles without either.
 */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string | undefined {
  let text = "";
  let i = start;
  while (i < end) {
    const lead = bytes[i] as number;
    if (lead < 0x80) {
      text += String.fromCharCode(lead);
      i += 1;
      continue;
    }
    let size: number;
    let codePoint: number;
    let min: number;
    if (lead >= 0xc2 && lead <= 0xdf) {
      size = 2;
      codePoint = lead & 0x1f;
      min = 0x80;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      size = 3;
      codePoint = lead & 0x0f;
      min = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      size = 4;
      codePoint = lead & 0x07;
      min = 0x10000;
    } else {
      return undefined;
    }
    if (i + size > end) return undefined;
    for (let k = 1; k < size; k++) {
      const next = bytes[i + k] as number;
      if ((next & 0xc0) !== 0x80) return undefined;
      codePoint = (codePoint << 6) | (next & 0x3f);
    }
    if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
      return undefined;
    }
    text += String.fromCodePoint(codePoint);
    i += size;
  }
  return text;
}
