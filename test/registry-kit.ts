// Building blocks for the registry's tests (in-process and against real servers): content with its digest, image
// manifests and indexes as exact bytes, and a push over the spec's endpoints. Shared so each test states only what
// it checks.
import { createHash } from "node:crypto";
import type { Digest } from "../src/oci/digest.js";
import { MediaType } from "../src/oci/media-types.js";

export interface Content {
  bytes: Buffer;
  digest: Digest;
  size: number;
}

export function content(data: string | Buffer, algorithm: "sha256" | "sha512" = "sha256"): Content {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  return { bytes, digest: `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`, size: bytes.length };
}

export function descriptorOf(c: Content, mediaType: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType, digest: c.digest, size: c.size, ...extra };
}

export interface ImageParts {
  config: Content;
  layers: Content[];
  manifest: Content;
}

/** An image manifest over a config and layers; `options` add subject, artifactType, annotations or pick Docker's type. */
export function imageManifest(
  config: Content,
  layers: Content[],
  options: { docker?: boolean; subject?: Content; artifactType?: string; annotations?: Record<string, string>; configType?: string } = {},
): Content {
  const mediaType = options.docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: descriptorOf(config, options.configType ?? (options.docker ? MediaType.dockerConfig : MediaType.ociConfig)),
    layers: layers.map((l) => descriptorOf(l, options.docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip)),
    ...(options.subject ? { subject: descriptorOf(options.subject, MediaType.ociManifest) } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  return content(JSON.stringify(doc));
}

export function imageIndex(children: Content[], options: { docker?: boolean; childType?: string } = {}): Content {
  const mediaType = options.docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const childType = options.childType ?? (options.docker ? MediaType.dockerManifest : MediaType.ociManifest);
  const doc = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c, i) => descriptorOf(c, childType, { platform: { architecture: ["amd64", "arm64", "s390x"][i % 3], os: "linux" } })),
  };
  return content(JSON.stringify(doc));
}

/** A small image with distinct content per seed. */
export function sampleImage(seed: string, layerCount = 2, options: { docker?: boolean } = {}): ImageParts {
  const layers = Array.from({ length: layerCount }, (_, i) => content(`layer ${i} of ${seed}\n`.repeat(10 + i)));
  const config = content(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) }, seed }));
  return { config, layers, manifest: imageManifest(config, layers, options) };
}

/** The minimal HTTP a test needs: inject() in-process or fetch() against a socket, behind one shape. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json<T = unknown>(): T;
}

export type Send = (request: { method: string; path: string; headers?: Record<string, string>; body?: Buffer | string }) => Promise<HttpResponse>;

/** Pushes blobs (monolithic POST) and the manifest under `reference`. Throws on any unexpected status. */
export async function pushImage(send: Send, repo: string, reference: string, image: ImageParts): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await pushBlob(send, repo, blob);
  await pushManifest(send, repo, reference, image.manifest);
}

export async function pushBlob(send: Send, repo: string, blob: Content): Promise<void> {
  const res = await send({
    method: "POST",
    path: `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`,
    headers: { "content-type": "application/octet-stream" },
    body: blob.bytes,
  });
  if (res.status !== 201) throw new Error(`blob push to ${repo} answered ${res.status}: ${res.body.toString()}`);
}

export async function pushManifest(send: Send, repo: string, reference: string, manifest: Content, mediaType?: string): Promise<HttpResponse> {
  const type = mediaType ?? (JSON.parse(manifest.bytes.toString()) as { mediaType: string }).mediaType;
  const res = await send({ method: "PUT", path: `/v2/${repo}/manifests/${reference}`, headers: { "content-type": type }, body: manifest.bytes });
  if (res.status !== 201) throw new Error(`manifest push to ${repo}:${reference} answered ${res.status}: ${res.body.toString()}`);
  return res;
}

/**
 * Writes an OCI image layout (oci-layout, index.json, blobs/) holding one image tagged `tag`, for clients such as
 * skopeo to push from. Layers are gzip-compressed tars; the config runs `cmd` by default.
 */
export async function writeOciLayout(dir: string, tag: string, layerTars: Buffer[], cmd: string[] = ["/bin/sh"]): Promise<ImageParts> {
  const { gzipSync } = await import("node:zlib");
  const { mkdir, writeFile } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const diffIds = layerTars.map((t) => content(t).digest);
  const layers = layerTars.map((t) => content(gzipSync(t, { level: 1 })));
  const config = content(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: cmd, Env: ["PATH=/bin"] },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: layers.map(() => ({ created_by: "slipway test" })),
    }),
  );
  const manifest = imageManifest(config, layers);
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  for (const c of [config, manifest, ...layers]) await writeFile(join(dir, "blobs", "sha256", c.digest.slice(7)), c.bytes);
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...descriptorOf(manifest, MediaType.ociManifest), annotations: { "org.opencontainers.image.ref.name": tag } }],
    }),
  );
  return { config, layers, manifest };
}
