// Small OCI images made by hand for registry tests: layers in any compression, configs, manifests and indexes, written
// as an OCI layout for skopeo or pushed straight to a registry over HTTP (for what skopeo would rewrite).
import { execFile, execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { pack, type Header } from "tar-stream";
import { sha256, type Digest } from "../../src/oci/digest.js";
import { BLOCK, encodeTarHeader } from "../../src/oci/tar-header.js";
import type { Descriptor, Platform } from "../../src/oci/manifest.js";
import { layerMediaType, MediaType, type Compression } from "../../src/oci/media-types.js";

const execFileP = promisify(execFile);

export type TarEntry = Partial<Header> & Pick<Header, "name"> & { content?: string | Buffer };

/** A tar built entry by entry; tar-stream writes names as given, `..` and absolute paths included. */
export async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    p.on("end", () => resolve());
    p.on("error", reject);
  });
  for (const { content, ...header } of entries) {
    const isFile = header.type === undefined || header.type === "file";
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (isFile) p.entry({ mtime: new Date(0), ...header }, Buffer.from(content ?? ""), done);
      else p.entry({ mtime: new Date(0), ...header }, done);
    });
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/**
 * A compressed tar of one file `zeros` of `size` zero bytes (a multiple of 16 MiB), shaped as the bombs users meet:
 * one member of 16 MiB of zeros repeated (gzip and zstd both read concatenated members as one stream): 1030:1 with
 * gzip -9, 31 900:1 with zstd -3; 2 GiB of zeros is 2 MiB of gzip.
 */
export function zerosLayer(compression: "gzip" | "zstd", size: number): Buffer {
  const compress = (bytes: Buffer) => (compression === "gzip" ? gzipSync(bytes, { level: 9 }) : execFileSync("zstd", ["-q", "-c", "-3"], { input: bytes }));
  const member = 16 << 20;
  if (size % member !== 0) throw new Error(`zerosLayer: ${size} is not a multiple of 16 MiB`);
  const header = encodeTarHeader({ name: "zeros", type: "file", mode: 0o644, uid: 0, gid: 0, size });
  const zeros = compress(Buffer.alloc(member));
  return Buffer.concat([compress(header), ...Array<Buffer>(size / member).fill(zeros), compress(Buffer.alloc(2 * BLOCK))]);
}

/** `bytes` in 64 KiB chunks, as a read stream gives them: the compressed bytes read so far grow with each. */
export function chunksOf(bytes: Buffer): Buffer[] {
  return Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
}

export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}
export interface BuiltLayer extends Blob {
  diffId: Digest;
}

export function layerOf(tar: Buffer, compression: Compression): BuiltLayer {
  const bytes = compression === "gzip" ? gzipSync(tar) : compression === "zstd" ? execFileSync("zstd", ["-q", "-c", "-3"], { input: tar }) : tar;
  return { bytes, diffId: sha256(tar), descriptor: { mediaType: layerMediaType(compression), digest: sha256(bytes), size: bytes.length } };
}

export interface BuiltImage {
  manifest: Blob;
  config: Blob;
  layers: BuiltLayer[];
}

export function imageOf(layers: BuiltLayer[], options: { platform?: Platform; cmd?: string[]; configMediaType?: string; manifestMediaType?: string } = {}): BuiltImage {
  const platform = options.platform ?? { os: "linux", architecture: "amd64" };
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ["PATH=/bin"], Cmd: options.cmd ?? ["sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created_by: `test layer ${i}` })),
    }),
  );
  const config: Blob = {
    bytes: configBytes,
    descriptor: { mediaType: options.configMediaType ?? MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.length },
  };
  const mediaType = options.manifestMediaType ?? MediaType.ociManifest;
  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, config: config.descriptor, layers: layers.map((l) => l.descriptor) }, null, 2),
  );
  return { config, layers, manifest: { bytes: manifestBytes, descriptor: { mediaType, digest: sha256(manifestBytes), size: manifestBytes.length } } };
}

export function indexOf(entries: Array<{ descriptor: Descriptor; platform: Platform; annotations?: Record<string, string> }>): Blob {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: entries.map((e) => ({ ...e.descriptor, platform: e.platform, ...(e.annotations ? { annotations: e.annotations } : {}) })),
    }),
  );
  return { bytes, descriptor: { mediaType: MediaType.ociIndex, digest: sha256(bytes), size: bytes.length } };
}

export function blobsOf(image: BuiltImage): Blob[] {
  return [image.config, ...image.layers, image.manifest];
}

/** An OCI image layout whose index.json names `top` under the tag `tag`. */
export async function writeOciLayout(dir: string, blobs: Blob[], top: Descriptor, tag: string): Promise<void> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const b of blobs) await writeFile(join(dir, "blobs", "sha256", b.descriptor.digest.slice(7)), b.bytes);
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { "org.opencontainers.image.ref.name": tag } }] }),
  );
}

/** Asynchronous, so that a registry served by this same process can answer while skopeo runs. */
export async function skopeoCopy(layoutDir: string, tag: string, dest: string, extra: string[] = []): Promise<void> {
  await execFileP("skopeo", ["--insecure-policy", "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false", ...extra, `oci:${layoutDir}:${tag}`, `docker://${dest}`]);
}

/** Pushes blobs and then manifests (children before indexes, as given) to an anonymous registry over HTTP. */
export async function pushDirect(host: string, repository: string, blobs: Blob[], manifests: Array<{ blob: Blob; tag?: string }>): Promise<void> {
  for (const b of blobs) {
    const start = await fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    if (start.status !== 202) throw new Error(`upload start for ${b.descriptor.digest}: HTTP ${start.status}`);
    const location = new URL(start.headers.get("location")!, `http://${host}/`);
    location.searchParams.set("digest", b.descriptor.digest);
    const put = await fetch(location, { method: "PUT", body: new Uint8Array(b.bytes), headers: { "content-type": "application/octet-stream" } });
    if (put.status !== 201) throw new Error(`upload of ${b.descriptor.digest}: HTTP ${put.status} ${await put.text()}`);
  }
  for (const { blob, tag } of manifests) {
    const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag ?? blob.descriptor.digest}`, {
      method: "PUT",
      body: new Uint8Array(blob.bytes),
      headers: { "content-type": blob.descriptor.mediaType },
    });
    if (res.status !== 201) throw new Error(`manifest ${tag ?? blob.descriptor.digest}: HTTP ${res.status} ${await res.text()}`);
  }
}
