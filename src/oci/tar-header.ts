// Encodes the tar headers of Slipway's layers: ustar, with a pax header for a name or link target ustar cannot
// hold. The bytes are those tar-stream 3 writes for the same entry (layers written before this encoder existed keep
// their digests); mtime is always the epoch, user and group names are never written.

export type TarEntryType = "file" | "link" | "symlink" | "directory" | "fifo";

export interface TarHeader {
  /** Path inside the layer, written as given (a directory gets no trailing slash, as tar-stream wrote them). */
  name: string;
  type: TarEntryType;
  /** Permission bits (0-07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content that follow: 0 for anything but a file. */
  size: number;
  /** Target of a symlink or hardlink. */
  linkname?: string;
}

export const BLOCK = 512;
const TYPEFLAG: Record<TarEntryType | "pax-header", number> = { file: 0, link: 1, symlink: 2, directory: 5, fifo: 6, "pax-header": 72 };
const ZEROS = "0000000000000000000";
const SEVENS = "7777777777777777777";

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** The header block(s) that precede an entry's content: one ustar block, or a pax block, its records and a block. */
export function encodeTarHeader(header: TarHeader): Buffer {
  const ustar = ustarBlock(header, header.name, header.linkname, header.type, header.size);
  if (ustar) return ustar;
  const records = paxRecords(header.name, header.linkname);
  const linkname = header.linkname ? "PaxHeader" : undefined;
  const pax = ustarBlock(header, "PaxHeader", linkname, "pax-header", records.length)!;
  const main = ustarBlock(header, "PaxHeader", linkname, header.type, header.size)!;
  const out = Buffer.alloc(BLOCK + records.length + padding(records.length) + BLOCK);
  pax.copy(out, 0);
  records.copy(out, BLOCK);
  main.copy(out, out.length - BLOCK);
  return out;
}

/** One ustar block, or null when the name (or link target) does not fit one. */
function ustarBlock(owner: TarHeader, name: string, linkname: string | undefined, type: TarEntryType | "pax-header", size: number): Buffer | null {
  let prefix = "";
  // A name that is not ASCII goes to a pax record, whatever its length.
  if (Buffer.byteLength(name) !== name.length) return null;
  while (name.length > 100) {
    const i = name.indexOf("/");
    if (i === -1) return null;
    prefix += prefix ? "/" + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155) return null;
  if (linkname && Buffer.byteLength(linkname) > 100) return null;

  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, "latin1");
  block.write(octal(owner.mode & 0o7777, 6), 100, "latin1");
  block.write(octal(owner.uid, 6), 108, "latin1");
  block.write(octal(owner.gid, 6), 116, "latin1");
  writeSize(block, size, 124);
  writeSize(block, 0, 136);
  block[156] = 0x30 + TYPEFLAG[type];
  if (linkname) block.write(linkname, 157, "utf8");
  block.write("ustar\u000000", 257, "latin1");
  block.write(octal(0, 6), 329, "latin1");
  block.write(octal(0, 6), 337, "latin1");
  if (prefix) block.write(prefix, 345, "latin1");
  block.write(octal(checksum(block), 6), 148, "latin1");
  return block;
}

/** `<n> path=…` and `<n> linkpath=…` records, where n counts the whole record, its own digits included. */
function paxRecords(name: string, linkname: string | undefined): Buffer {
  let text = "";
  if (name) text += withLength(` path=${name}\n`);
  if (linkname) text += withLength(` linkpath=${linkname}\n`);
  return Buffer.from(text);
}

function withLength(record: string): string {
  const len = Buffer.byteLength(record);
  let digits = Math.floor(Math.log(len) / Math.log(10)) + 1;
  if (len + digits >= Math.pow(10, digits)) digits++;
  return `${len + digits}${record}`;
}

/** `n` digits of octal and a space; a value too large for them is written as all sevens (as tar-stream does). */
function octal(value: number, n: number): string {
  const text = value.toString(8);
  if (text.length > n) return SEVENS.slice(0, n) + " ";
  return ZEROS.slice(0, n - text.length) + text + " ";
}

/** A size or time: 11 octal digits, or base-256 when it needs more (files of 8 GiB and up). */
function writeSize(block: Buffer, value: number, offset: number): void {
  if (value.toString(8).length <= 11) {
    block.write(octal(value, 11), offset, "latin1");
    return;
  }
  block[offset] = 0x80;
  let rest = value;
  for (let i = 11; i > 0; i--) {
    block[offset + i] = rest & 0xff;
    rest = Math.floor(rest / 0x100);
  }
}

/** The header checksum: the sum of its bytes, with the checksum field itself counted as spaces. */
function checksum(block: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  return sum;
}
