// Client side of a deploy: load the app file, bundle each handler, hash COPY sources and tarballs, upload what the
// server lacks, and send the deploy request. The server builds, makes the version and flips the pointer.
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { canonicalJson } from "../core/canonical-json.js";
import { isSlipwayError, NotFoundError } from "../core/errors.js";
import type { ImageSpec, Step } from "../core/schemas.js";
import { sha256, type Digest } from "../oci/digest.js";
import type { App } from "./app.js";
import { bundleHandler, fileTree, readVerified, type Blob } from "./bundle.js";
import type { Client, StreamItem } from "./client.js";
import type { Image, RegistryAuth } from "./image.js";
import { parseReference } from "../oci/reference.js";
import { loadAppFile } from "./load-app.js";
import { LocalCache } from "./local-cache.js";

export interface DeployParams {
  deployment?: string;
  promote?: boolean;
  forceBuild?: boolean;
  /** Values for build arguments the images declare with `.arg(name)`. */
  buildArgs?: Record<string, string>;
  /** Call the new version with this input (on `function`, or the app's only one) before the pointer flips. */
  smoke?: { function?: string; input: unknown };
  onEvent?: (event: unknown) => void;
  /** Record the git commit the app directory is at (a deploy does; a build makes no version to record it on). */
  gitSource?: boolean;
  /** Where the client keeps what it hashed and bundled (default ~/.cache/slipway); null keeps nothing. */
  cacheDir?: string | null;
}

export interface PreparedDeploy {
  request: {
    app: string;
    deployment: string;
    promote: boolean;
    forceBuild: boolean;
    smoke?: { function?: string; input: unknown };
    images: Record<string, ImageSpec>;
    functions: Record<string, Record<string, unknown>>;
    code: string;
    source: { gitCommit?: string; dirty?: boolean; file?: string };
    registryAuth: Record<string, RegistryAuth>;
  };
  blobs: Blob[];
}

/** Turns a loaded App into a deploy request plus the blobs it references. */
export async function prepareDeploy(
  app: App,
  appFile: string,
  dir: string,
  params: DeployParams = {},
  cache: LocalCache = LocalCache.open(appFile, { dir: null }),
): Promise<PreparedDeploy> {
  const blobs: Blob[] = [];
  const addBlob = (data: Buffer) => {
    const digest = sha256(data);
    blobs.push({ digest, size: data.length, read: () => data });
    return digest;
  };

  const files: Record<string, string> = {};
  const handlers: Record<string, string> = {};
  const imageNames = new Map<Image, string>();
  const images: Record<string, ImageSpec> = {};
  const functions: PreparedDeploy["request"]["functions"] = {};
  const registryAuth: Record<string, RegistryAuth> = {};

  for (const [name, fn] of app.functions) {
    const code = await bundleHandler(resolve(dir, fn.params.handler), cache, dir);
    const file = `${name}.mjs`;
    blobs.push(code);
    files[file] = code.digest;
    handlers[name] = file;
    let imageName = imageNames.get(fn.params.image);
    if (!imageName) {
      imageName = name;
      imageNames.set(fn.params.image, imageName);
      images[imageName] = await imageSpec(fn.params.image, dir, blobs, params.buildArgs ?? {}, registryAuth, cache);
    }
    const { image: _image, handler: _handler, ...settings } = fn.params;
    functions[name] = { ...settings, image: imageName, handler: fn.params.handler };
  }
  const code = addBlob(Buffer.from(canonicalJson({ files, handlers })));
  return {
    request: {
      app: app.name,
      deployment: params.deployment ?? "main",
      promote: params.promote ?? true,
      forceBuild: params.forceBuild ?? false,
      ...(params.smoke ? { smoke: params.smoke } : {}),
      images,
      functions,
      code,
      source: { ...(params.gitSource === false ? {} : await gitSource(dir)), file: appFile },
      registryAuth,
    },
    blobs,
  };
}

async function imageSpec(
  image: Image,
  dir: string,
  blobs: Blob[],
  buildArgs: Record<string, string>,
  registryAuth: Record<string, RegistryAuth>,
  cache: LocalCache,
): Promise<ImageSpec> {
  const steps: Step[] = [];
  for (const draft of image.steps) {
    if (draft.op === "base" && draft.source.kind === "tarball") {
      const path = resolve(dir, draft.source.path);
      if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
        throw new NotFoundError(`base tarball ${draft.source.path} does not exist or is not a file (looked in ${dir})`, { tarball: draft.source.path });
      }
      const { digest, size } = cache.digest(path);
      blobs.push({ digest, size, read: () => readVerified(path, digest) });
      steps.push({ op: "base", source: { kind: "tarball", digest, name: draft.source.path } });
    } else if (draft.op === "base" && draft.source.kind === "debian") {
      steps.push({
        op: "base",
        source: { kind: "debian", suite: draft.source.suite, variant: "minbase", mirror: draft.source.mirror ?? "http://deb.debian.org/debian" },
      });
    } else if (draft.op === "base" && draft.source.kind === "registry") {
      if (draft.source.auth) registryAuth[parseReference(draft.source.ref).registry] = draft.source.auth;
      steps.push({ op: "base", source: { kind: "registry", ref: draft.source.ref } });
    } else if (draft.op === "copy") {
      const t = await fileTree(dir, draft.src, draft.dest, cache);
      blobs.push(...t.blobs);
      const treeBytes = Buffer.from(canonicalJson(t.tree));
      const tree = sha256(treeBytes);
      blobs.push({ digest: tree, size: treeBytes.length, read: () => treeBytes });
      steps.push({ op: "copy", src: draft.src.join(" "), as: draft.dest, tree, dest: t.dest });
    } else {
      steps.push(draft as Step);
    }
  }
  return { version: 1, steps, buildArgs: { ...image.buildArgs, ...buildArgs } };
}

async function gitSource(dir: string): Promise<{ gitCommit?: string; dirty?: boolean }> {
  // Loaded here, not at the top: `slipway build` runs no git and should not pay for loading child_process.
  const { execFile } = await import("node:child_process");
  const execFileP = (await import("node:util")).promisify(execFile);
  try {
    const { stdout: commit } = await execFileP("git", ["rev-parse", "HEAD"], { cwd: dir });
    const { stdout: status } = await execFileP("git", ["status", "--porcelain", "--", "."], { cwd: dir });
    return { gitCommit: commit.trim(), dirty: status.trim().length > 0 };
  } catch {
    return {};
  }
}

/** Blobs up to this size travel in batches of up to BATCH_BYTES; larger ones alone. */
const SMALL_BLOB = 1 << 20;
const BATCH_BYTES = 16 << 20;
/** Requests in flight at once; each reads its blobs only when it is sent, so memory stays near this many batches. */
const IN_FLIGHT = 2;

/**
 * Uploads the blobs the server does not have yet (content-addressed, so each at most once): `knownMissing` when the
 * caller knows them (new since the last request), otherwise the server is asked. Small ones go many to a request:
 * a deploy's copied files are mostly small, and a request each cost more than the bytes.
 */
export async function uploadBlobs(client: Client, blobs: Blob[], knownMissing?: Digest[]): Promise<number> {
  const unique = new Map(blobs.map((b) => [b.digest, b]));
  const missing = knownMissing ? [...new Set(knownMissing)].filter((d) => unique.has(d)) : await askMissing(client, [...unique.keys()]);
  const sends: Array<() => Promise<void>> = [];
  let batch: Blob[] = [];
  let batchBytes = 0;
  const flush = () => {
    const these = batch;
    sends.push(() => client.putBlobs(these.map((b) => ({ digest: b.digest, data: b.read() }))));
    batch = [];
    batchBytes = 0;
  };
  for (const digest of missing) {
    const blob = unique.get(digest)!;
    if (blob.size > SMALL_BLOB) {
      sends.push(() => client.putBlob(digest, blob.read()));
      continue;
    }
    batch.push(blob);
    batchBytes += blob.size;
    if (batchBytes >= BATCH_BYTES) flush();
  }
  if (batch.length > 0) flush();
  let next = 0;
  const worker = async () => {
    while (next < sends.length) await sends[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, sends.length) }, worker));
  return missing.length;
}

/** Which of these blobs the server lacks, asked in groups: the server takes up to 100,000 digests a request. */
async function askMissing(client: Client, digests: Digest[]): Promise<Digest[]> {
  const missing: Digest[] = [];
  for (let i = 0; i < digests.length; i += 50_000) missing.push(...(await client.missingBlobs(digests.slice(i, i + 50_000))));
  return missing;
}

/** Loads, uploads and deploys an app file; passes the server's progress events on and returns its result. */
export async function deployAppFile(client: Client, file: string, params: DeployParams = {}): Promise<unknown> {
  return sendAppFile(client, file, params, (request) => client.deploy(request));
}

/** Loads and uploads an app file and builds its images without making a version. */
export async function buildAppFile(client: Client, file: string, params: DeployParams = {}): Promise<unknown> {
  return sendAppFile(client, file, { gitSource: false, ...params }, (request) => client.build(request));
}

async function sendAppFile(
  client: Client,
  file: string,
  params: DeployParams,
  send: (request: PreparedDeploy["request"]) => AsyncGenerator<StreamItem>,
): Promise<unknown> {
  const cache = LocalCache.open(resolve(file), { dir: params.cacheDir });
  const { app, path, dir } = await loadAppFile(file, cache);
  const prepared = await prepareDeploy(app, path, dir, params, cache);
  cache.save();
  params.onEvent?.({ type: "client", lines: cache.report() });
  const once = async (): Promise<unknown> => {
    let result: unknown;
    for await (const msg of send(prepared.request)) {
      if (msg.type === "event") params.onEvent?.(msg.event);
      else result = msg.result;
    }
    return result;
  };
  // What the server lacks: the blobs the last successful request did not name (new files, a new tree), uploaded
  // first, since the server had the rest then; and whatever the server names in answer to the request, which it
  // checks before starting anything (it may have collected some since). An unchanged deploy is one round trip.
  const sent = cache.sentBefore(client.url);
  if (sent) {
    const fresh = prepared.blobs.filter((b) => !sent.has(b.digest));
    // Small ones go without asking: sending them costs less than the question.
    const small = fresh.reduce((n, b) => n + b.size, 0) <= SMALL_BLOB;
    if (fresh.length > 0) await uploadBlobs(client, fresh, small ? fresh.map((b) => b.digest) : undefined);
  }
  let result: unknown;
  try {
    result = await once();
  } catch (err) {
    if (!isSlipwayError(err) || err.code !== "not-found" || !Array.isArray(err.details.missing)) throw err;
    // Asked again rather than taken from the answer: the files of a missing tree are named only once it is there.
    await uploadBlobs(client, prepared.blobs);
    result = await once();
  }
  cache.recordSent(client.url, [...new Set(prepared.blobs.map((b) => b.digest))]);
  cache.save();
  return result;
}
