// The builder: an image spec becomes a chain of cached steps and then an OCI image in the content-addressed store.
// Each step's key covers its parent's key, its canonical text and the digests of its inputs; a hit executes
// nothing; identical keys building at once run once; a failing step caches nothing.
import { mkdir, rm, rmdir, stat, unlink } from "node:fs/promises";
import { readdirSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { Readable } from "node:stream";
import { FailedError, InvalidError, isSlipwayError, NotFoundError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { fileTreeSchema, parseWith, type FileTree, type ImageSpec, type Step } from "../core/schemas.js";
import { canonicalJson } from "../core/canonical-json.js";
import { sha256, type Digest } from "../oci/digest.js";
import { prestartZstd } from "../oci/compression.js";
import { entriesFromDirectory, packLayer, tarChunks, worthwhileCompression, type LayerEntry } from "../oci/layer-writer.js";
import { layerMediaType, MediaType, type Compression } from "../oci/media-types.js";
import { envToMap, mapToEnv, serializeConfig, serializeManifest, type ImageConfig } from "../oci/manifest.js";
import type { Executor } from "../runtime/executor.js";
import { mountOverlay, opaqueDirs, type LayerRef, type SnapshotStore } from "../runtime/snapshots.js";
import type { FsBlobStore } from "../store/blob-store.js";
import type { CacheIndex } from "../store/cache-index.js";
import type { RepositoryIndex } from "../store/repository-index.js";
import { RegistryClient, type RegistryCredentials, type ResolvedImage } from "../registry/client.js";
import { materializeBase } from "./base-images.js";
import { copyLayerEntries } from "./copy-layer.js";
import { pullRegistryBase } from "./registry-base.js";
import { describeStep, stepKey, type StepInputs } from "./cache-key.js";
import { explainChange, type EarlierChange, type StepRecord } from "./explain.js";

/** A step's cached result: the whole layer stack and the image config after it. */
export interface StepResult {
  layers: LayerRef[];
  config: ImageConfig;
  /** The registry base the stack starts from, pinned (recorded as the image's base annotations). */
  base?: { name: string; digest: Digest };
}

/**
 * A RUN step's layer while it is packed in the background: later steps run on its upper dir meanwhile (as an
 * overlay lower), and it becomes a snapshot once the build is over and nothing has it mounted.
 */
interface PendingLayer {
  readonly pending: true;
  /** The step's upper dir. */
  readonly dir: string;
  readonly packed: Promise<LayerRef>;
}

/**
 * A step's result as the build goes on: its top layers may still be pending, and then the config's diff_ids lack
 * them (`settle` fills them in).
 */
interface Draft extends Omit<StepResult, "layers"> {
  layers: Array<LayerRef | PendingLayer>;
}

const isPending = (l: LayerRef | PendingLayer): l is PendingLayer => "pending" in l;

/** The step's result once every layer is packed: diff_ids always list the layers' diffIDs, in order. */
async function settle(draft: Draft): Promise<StepResult> {
  if (!draft.layers.some(isPending)) return draft as StepResult;
  const layers = await Promise.all(draft.layers.map((l) => (isPending(l) ? l.packed : l)));
  const config = structuredClone(draft.config);
  config.rootfs.diff_ids = layers.map((l) => l.diffId);
  return { ...draft, layers, config };
}

export interface StepReport {
  index: number;
  text: string;
  key: string;
  status: "hit" | "miss";
  durationMs: number;
  /**
   * For a miss: what differs from the last build of this image. For a hit on what a build before the last one cached:
   * that, and what differs from the last build.
   */
  reason?: string;
}

export type BuildEvent =
  | { type: "step-start"; index: number; total: number; text: string }
  | { type: "step-done"; report: StepReport; total: number }
  | { type: "log"; index: number; line: string }
  | { type: "warning"; text: string };

export interface BuildOptions {
  /** Names the image for build records and explanations, e.g. `podcast/render`. */
  image: string;
  /** The registry repository the image lands in. */
  repo: string;
  forceBuild?: boolean;
  /** Credentials for base-image registries, by host (used for this build's pulls only). */
  auth?: Record<string, RegistryCredentials>;
  onEvent?: (event: BuildEvent) => void;
}

export interface BuildResult {
  digest: Digest;
  size: number;
  config: ImageConfig;
  configDigest: Digest;
  layers: LayerRef[];
  steps: StepReport[];
  durationMs: number;
}

export interface BuilderDeps {
  blobs: FsBlobStore;
  cache: CacheIndex;
  repos: RepositoryIndex;
  snapshots: SnapshotStore;
  executor: Executor;
  /** Where RUN steps get their overlay and bundle directories (same filesystem as the snapshots). */
  workRoot: string;
  compression: Compression;
  /** Host files bind-mounted into RUN steps so that they can reach the network (never part of a layer). */
  resolvConf?: string;
  /** Registries reached over plain http besides loopback ones. */
  insecureRegistries?: string[];
}

/** File trees kept parsed: the current and last trees of a few COPY steps. */
const KEPT_TREES = 8;

export class Builder {
  private readonly inflight = new Map<string, Promise<StepResult>>();
  /** Parsed COPY file trees, most recently read last. */
  private readonly trees = new Map<Digest, FileTree>();

  constructor(private readonly deps: BuilderDeps) {}

  async build(spec: ImageSpec, options: BuildOptions): Promise<BuildResult> {
    const started = performance.now();
    const emit = options.onEvent ?? (() => undefined);
    const previous = new Map(this.deps.cache.lastBuild(options.image).map((r) => [r.step, r.inputs as StepRecord]));
    const records: Array<{ key: string; inputs: StepRecord }> = [];
    const reports: StepReport[] = [];
    const declaredArgs = new Map<string, string>();
    // The first step whose key differs from the last build's: what a later step's explanation names as its cause.
    let earlier: EarlierChange | undefined;
    let parentKey: string | null = null;
    // One client per build: its token cache serves the resolve and the pull (credentials never outlive the build).
    let registry: RegistryClient | undefined;
    let state: Draft | null = null;
    // Each missed step's settled result, cached when its layers are packed; the build waits for all of them.
    const settling: Array<Promise<unknown>> = [];
    // Every pending layer this build made that is not yet its snapshot. A forced step's result is settled at once,
    // so its layers (and its parent's pending ones) leave the build's state before the build ends.
    const pending = new Set<PendingLayer>();
    try {
      for (const [index, step] of spec.steps.entries()) {
        const text = describeStep(step);
        emit({ type: "step-start", index, total: spec.steps.length, text });
        const t0 = performance.now();
        if (step.op === "arg") {
          const value = spec.buildArgs[step.name] ?? step.default;
          if (value !== undefined) declaredArgs.set(step.name, value);
          else declaredArgs.delete(step.name);
        }
        const inputs: StepInputs = step.op === "run" ? { buildArgs: Object.fromEntries([...declaredArgs].sort()) } : {};
        let resolvedBase: ResolvedImage | undefined;
        if (step.op === "base" && step.source.kind === "registry") {
          // A tag is pinned to the digest it names now; the key follows the digest, so a moved tag rebuilds.
          registry ??= this.registryClient(options.auth);
          resolvedBase = await registry.resolve(step.source.ref, { store: this.deps.blobs });
          inputs.base = resolvedBase.digest;
          emit({ type: "log", index, line: `resolved ${step.source.ref} to ${resolvedBase.pinned}` });
        }
        const key = stepKey(parentKey, step, inputs);
        const record: StepRecord = { key, parent: parentKey, text, step, inputs };
        const force = options.forceBuild === true || (step.op === "run" && step.forceBuild === true);

        let status: "hit" | "miss" = "hit";
        let reason: string | undefined;
        // A forced rebuild is kept for this image only (under a key scoped to it), so the image stays on it until
        // its inputs change, while other images keep hitting the shared entry.
        const ownKey = sha256(canonicalJson({ image: options.image, key }));
        let own = force ? null : await this.cached(ownKey);
        let result: Draft | null = force ? null : (own ?? (await this.cached(key)));
        const last = previous.get(index);
        const explain = () => explainChange(record, last, (d) => this.loadTree(d), earlier);
        if (result && last && last.key !== key) reason = `cached by an earlier build; since the last build: ${await explain()}`;
        if (!result) {
          status = "miss";
          reason = force ? "forced rebuild" : await explain();
          const parent: Draft | null = state;
          const log = (line: string) => emit({ type: "log", index, line });
          const run = (): Promise<Draft> =>
            resolvedBase && registry ? this.pullBase(resolvedBase, registry, log) : this.execute(step, index, parent, inputs, log);
          if (force) {
            // Later steps key on what a forced step produced: its layers are needed now, and nothing runs on them as
            // pending layers any more, so each upper dir becomes its snapshot here.
            const draft = await run();
            for (const l of draft.layers) if (isPending(l)) pending.add(l);
            const settled = await settle(draft);
            await this.adoptPending(pending);
            this.deps.cache.put(ownKey, settled);
            result = own = settled;
          } else {
            const started = this.once(key, run);
            result = await started.draft;
            for (const l of result.layers) if (isPending(l)) pending.add(l);
            settling.push(started.settled);
          }
        }
        const inherited: StepResult["base"] = (state as Draft | null)?.base;
        state = result.base || !inherited ? result : { ...result, base: inherited };
        // After a forced step, later steps key on what it produced: they rebuild unless it came out identical.
        parentKey = own ? sha256(canonicalJson({ forcedFrom: key, layers: own.layers.map((l) => l.digest), config: own.config })) : key;
        records.push({ key, inputs: record });
        if (!earlier && last?.key !== key) earlier = { index, text };
        const report: StepReport = { index, text, key, status, durationMs: Math.round(performance.now() - t0), ...(reason ? { reason } : {}) };
        reports.push(report);
        emit({ type: "step-done", report, total: spec.steps.length });
      }
      if (!state) throw new InvalidError("an image spec needs at least one step");
      const final = await settle(state);
      await Promise.all(settling);
      const declared = new Set(spec.steps.flatMap((st) => (st.op === "arg" ? [st.name] : [])));
      for (const name of Object.keys(spec.buildArgs)) {
        if (!declared.has(name)) emit({ type: "warning", text: `build argument ${name} is not declared by any .arg() step of ${options.image}; it changes nothing` });
      }
      this.deps.cache.recordBuild(options.image, records);
      const image = await this.writeImage(final, options.repo);
      // After the result is on its way: the next build's first layer finds its compressor started.
      if (this.deps.compression === "zstd") setImmediate(prestartZstd);
      return { ...image, config: final.config, layers: final.layers, steps: reports, durationMs: Math.round(performance.now() - started) };
    } finally {
      // Every step is over (its overlay unmounted), so the pending layers' upper dirs can move: each becomes its
      // layer's snapshot once packed, or goes.
      await Promise.allSettled(settling);
      await this.adoptPending(pending);
    }
  }

  /** Makes each pending layer's upper dir its snapshot once packed (or removes it), and forgets it. */
  private async adoptPending(pending: Set<PendingLayer>): Promise<void> {
    for (const layer of pending) {
      pending.delete(layer);
      const packed = await layer.packed.catch(() => null);
      if (packed) await this.deps.snapshots.adopt(layer.dir, packed.diffId);
      await rm(dirname(layer.dir), { recursive: true, force: true });
    }
  }

  /** A cache entry counts only while every blob it names is still in the store. */
  private async cached(key: string): Promise<StepResult | null> {
    const hit = this.deps.cache.get<StepResult>(key);
    if (!hit) return null;
    for (const layer of hit.layers) if (!this.deps.blobs.hasSync(layer.digest)) return null;
    return hit;
  }

  /**
   * Runs a step unless the same key is running already. The caller that runs it goes on with the draft; every
   * other caller waits for the settled result, which is cached once its layers are packed.
   */
  private once(key: string, fn: () => Promise<Draft>): { draft: Promise<Draft>; settled: Promise<StepResult> } {
    const running = this.inflight.get(key);
    if (running) return { draft: running, settled: running };
    const draft = fn();
    const settled = draft
      .then(settle)
      .then((result) => {
        this.deps.cache.put(key, result);
        return result;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, settled);
    // A failure reaches the build through the draft, or through settle() of a later step's draft.
    settled.catch(() => undefined);
    return { draft, settled };
  }

  private async execute(step: Step, index: number, parent: Draft | null, inputs: StepInputs, log: (line: string) => void): Promise<Draft> {
    if (step.op === "base") {
      const dir = await this.deps.snapshots.tempDir();
      try {
        const config = await materializeBase(step.source, dir, this.deps.blobs, this.deps.snapshots.limits, log);
        config.history.push({ created_by: describeStep(step) });
        const isEmpty = step.source.kind === "scratch";
        if (isEmpty) {
          await rm(dir, { recursive: true, force: true });
          config.history[config.history.length - 1]!.empty_layer = true;
          return { layers: [], config };
        }
        const layer = await this.packDirectory(dir);
        if (!layer) return { layers: [], config };
        config.rootfs.diff_ids.push(layer.diffId);
        return { layers: [layer], config };
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
    if (!parent) throw new InvalidError("an image spec starts with a base step");
    const config = structuredClone(parent.config);
    const runtime = config.config;
    const text = describeStep(step);
    switch (step.op) {
      case "run":
        return this.runStep(step.shell, index, parent, inputs, log);
      case "copy":
        try {
          return await this.copyStep(step.tree, step.dest, parent, text);
        } catch (err) {
          // Name the step: a tree's problems (a bad path, a blob never uploaded) are otherwise hard to place.
          if (isSlipwayError(err)) err.message = `step ${index + 1} (${text}): ${err.message}`;
          throw err;
        }
      case "env": {
        const env = envToMap(runtime.Env);
        for (const [k, v] of Object.entries(step.vars)) env.set(k, v);
        runtime.Env = mapToEnv(env);
        break;
      }
      case "workdir":
        runtime.WorkingDir = step.path;
        break;
      case "user":
        runtime.User = step.user;
        break;
      case "cmd":
        runtime.Cmd = step.args;
        break;
      case "entrypoint":
        runtime.Entrypoint = step.args;
        break;
      case "label":
        runtime.Labels = { ...(runtime.Labels ?? {}), ...step.labels };
        break;
      case "arg":
        break;
    }
    config.history.push({ created_by: text, empty_layer: true });
    return { layers: parent.layers, config };
  }

  /**
   * Runs a RUN step in a container on an overlay of its parent's layers. Its layer is packed in the background
   * while later steps run (they mount its upper dir): a 50 MB output costs its hashing and writing once, in parallel.
   */
  private async runStep(shell: string, index: number, parent: Draft, inputs: StepInputs, log: (line: string) => void): Promise<Draft> {
    const { snapshots, executor } = this.deps;
    const lowers = await Promise.all(parent.layers.map((l) => (isPending(l) ? l.dir : snapshots.ensure(l))));
    const dir = join(this.deps.workRoot, newId("build-"));
    await mkdir(dir, { recursive: true });
    const overlay = await mountOverlay(snapshots, lowers, dir);
    const text = `RUN ${shell}`;
    try {
      const runtime = parent.config.config;
      const env = envToMap(runtime.Env);
      if (!env.has("PATH")) env.set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
      for (const [k, v] of Object.entries(inputs.buildArgs ?? {})) if (!env.has(k)) env.set(k, v);
      const mounts = this.deps.resolvConf ? [{ source: this.deps.resolvConf, destination: "/etc/resolv.conf", readonly: true }] : [];
      const created = await missingPaths(overlay.merged, ["/proc", "/dev", "/sys", ...mounts.map((m) => m.destination)]);
      if (runtime.WorkingDir) await mkdir(join(overlay.merged, runtime.WorkingDir), { recursive: true });
      const container = await executor.start({
        rootfs: overlay.merged,
        args: ["/bin/sh", "-c", shell],
        env: mapToEnv(env),
        cwd: runtime.WorkingDir ?? "/",
        user: runtime.User,
        mounts,
        network: "host",
      });
      // While the container runs, the main thread is free to start the compressor of this step's layer.
      if (this.deps.compression === "zstd") prestartZstd();
      let partial = "";
      container.onOutput((chunk) => {
        const lines = (partial + chunk.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) log(line);
      });
      const status = await container.exited;
      if (partial) log(partial);
      await removeCreated(overlay.upper, created);
      if (status.exitCode !== 0) {
        const output = container.tail(20);
        throw new FailedError(`step ${index + 1} failed: ${text} exited with code ${status.exitCode}${output ? `\n${output}` : ""}`, {
          step: index + 1,
          command: shell,
          exitCode: status.exitCode,
          output,
        });
      }
    } catch (err) {
      await overlay.unmount();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    await overlay.unmount();
    if (readdirSync(overlay.upper).length === 0) {
      await rm(dir, { recursive: true, force: true });
      return withLayer(parent, null, text);
    }
    const packed = this.packUpper(overlay.upper);
    // Seen through the build's settle() or adoption; never left unhandled meanwhile.
    packed.catch(() => undefined);
    return withLayer(parent, { pending: true, dir: overlay.upper, packed }, text);
  }

  private async copyStep(tree: Digest, dest: string, parent: Draft, text: string): Promise<Draft> {
    // A relative destination is under the working directory, as in a Dockerfile.
    const at = dest.startsWith("/") ? dest : posix.join(parent.config.config.WorkingDir || "/", dest);
    const entries = copyLayerEntries(await this.loadTree(tree), at, (d) => this.deps.blobs.localPath(d));
    // Nothing to copy into the root packs to no layer: a step that changes nothing.
    return withLayer(parent, await this.packEntries(entries), text);
  }

  private registryClient(auth: Record<string, RegistryCredentials> | undefined): RegistryClient {
    return new RegistryClient({ auth, insecureHosts: this.deps.insecureRegistries });
  }

  /** Pulls a resolved registry base into the blob store; its layers are used as they are (unpacked when needed). */
  private async pullBase(resolved: ResolvedImage, client: RegistryClient, log: (line: string) => void): Promise<StepResult> {
    const base = await pullRegistryBase(resolved, { client, blobs: this.deps.blobs, log });
    const config = structuredClone(base.config);
    config.config ??= {};
    config.history ??= [];
    return { layers: base.layers, config, base: { name: base.pinned, digest: base.platformDigest } };
  }

  /**
   * A COPY step's file tree. A changed COPY reads its tree three times (explaining the miss reads the last build's
   * too, then the step itself): parsed trees are kept, by digest, so never stale; one counts only while its blob is
   * still in the store, as an unkept one would.
   */
  async loadTree(digest: Digest): Promise<FileTree> {
    let tree = this.trees.get(digest);
    if (!tree || !this.deps.blobs.hasSync(digest)) tree = await this.readTree(digest);
    this.trees.delete(digest);
    this.trees.set(digest, tree);
    for (const oldest of this.trees.keys()) {
      if (this.trees.size <= KEPT_TREES) break;
      this.trees.delete(oldest);
    }
    return tree;
  }

  private async readTree(digest: Digest): Promise<FileTree> {
    const raw = await this.deps.blobs.readBuffer(digest).catch(() => {
      throw new NotFoundError(`the COPY file tree ${digest} was never uploaded`, { tree: digest });
    });
    let json: unknown;
    try {
      json = JSON.parse(raw.toString("utf8"));
    } catch (err) {
      throw new InvalidError(`the COPY file tree ${digest} is not JSON: ${(err as Error).message}`, { tree: digest });
    }
    return parseWith(fileTreeSchema, json, `file tree ${digest}`);
  }

  /**
   * Packs a directory into a layer blob and makes the directory that layer's snapshot. Returns null (and removes
   * the directory) when it is empty.
   */
  private async packDirectory(dir: string): Promise<LayerRef | null> {
    const layer = await this.packEntries(await this.entriesOf(dir, false));
    if (!layer) {
      await rm(dir, { recursive: true, force: true });
      return null;
    }
    await this.deps.snapshots.adopt(dir, layer.diffId);
    return layer;
  }

  /** Packs a RUN step's (non-empty) upper dir into a layer blob, leaving the directory where it is. */
  private async packUpper(upper: string): Promise<LayerRef> {
    const entries = await this.entriesOf(upper, true);
    const layer = await this.packEntries(entries, worthwhileCompression(entries, this.deps.compression));
    if (!layer) throw new Error(`the upper dir ${upper} had no entries to pack`);
    return layer;
  }

  private async entriesOf(dir: string, overlayUpper: boolean): Promise<LayerEntry[]> {
    const opaque = overlayUpper ? await opaqueDirs(dir) : new Set<string>();
    const entries: LayerEntry[] = [];
    for await (const e of entriesFromDirectory(dir, { opaqueDirs: opaque, overlayWhiteouts: overlayUpper })) entries.push(e);
    return entries;
  }

  /** Packs entries into a layer blob in the store; null when there were none. */
  private async packEntries(
    entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
    compression: Compression = this.deps.compression,
  ): Promise<LayerRef | null> {
    let count = 0;
    const counted = (async function* () {
      for await (const e of entries) {
        count++;
        yield e;
      }
    })();
    let blob: { digest: Digest; size: number };
    let diffId: Digest;
    if (compression === "none") {
      // An uncompressed layer's digest is its diffId: hashed once, by the store (50 MB cost ~0.1 s a hash here).
      blob = await this.deps.blobs.putStream(Readable.from(tarChunks(counted)));
      diffId = blob.digest;
    } else {
      const packed = packLayer(counted, { compression });
      blob = await this.deps.blobs.putStream(packed.stream);
      diffId = await packed.diffId;
    }
    if (count === 0) return null;
    return { mediaType: layerMediaType(compression), digest: blob.digest, size: blob.size, diffId };
  }

  private async writeImage(state: StepResult, repo: string): Promise<{ digest: Digest; size: number; configDigest: Digest }> {
    const { blobs, repos } = this.deps;
    const configBytes = serializeConfig(state.config);
    const configRef = { mediaType: MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.length };
    const layers = state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
    const annotations = state.base
      ? { "org.opencontainers.image.base.name": state.base.name, "org.opencontainers.image.base.digest": state.base.digest }
      : undefined;
    const manifestBytes = serializeManifest(configRef, layers, annotations);
    // Both blobs are written (and synced) at once; neither is named by the repository until both are stored.
    const [config, manifest] = await Promise.all([putOnce(blobs, configBytes), putOnce(blobs, manifestBytes)]);
    // An unchanged build ends on an image the repository already holds: nothing to write.
    if (repos.manifest(repo, manifest.digest)) return { digest: manifest.digest, size: manifest.size, configDigest: config.digest };
    repos.putImage([...layers, config], {
      repo,
      digest: manifest.digest,
      mediaType: MediaType.ociManifest,
      size: manifest.size,
      refs: [config.digest, ...layers.map((l) => l.digest)],
    });
    return { digest: manifest.digest, size: manifest.size, configDigest: config.digest };
  }
}

/**
 * The step's result: the parent with `layer` on top, or, without one, a history entry for a step that changed
 * nothing. A pending layer's diffID joins the config when the draft is settled.
 */
function withLayer(parent: Draft, layer: LayerRef | PendingLayer | null, text: string): Draft {
  const config = structuredClone(parent.config);
  if (!layer) {
    config.history.push({ created_by: text, empty_layer: true });
    return { layers: parent.layers, config };
  }
  if (!isPending(layer)) config.rootfs.diff_ids.push(layer.diffId);
  config.history.push({ created_by: text });
  return { layers: [...parent.layers, layer], config };
}

/** Stores small bytes unless the store has them already (the common case for an unchanged build's config). */
async function putOnce(blobs: FsBlobStore, data: Buffer): Promise<{ digest: Digest; size: number }> {
  const digest = sha256(data);
  return blobs.hasSync(digest) ? { digest, size: data.length } : blobs.put(data, digest);
}

async function missingPaths(root: string, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const exists = await stat(join(root, p)).then(
      () => true,
      () => false,
    );
    if (!exists) out.push(p);
  }
  return out;
}

/** Removes from an upper dir the mount points runc created, so they do not become part of the layer. */
async function removeCreated(upper: string, created: string[]): Promise<void> {
  for (const p of created) {
    const abs = join(upper, p);
    const st = await stat(abs).catch(() => null);
    if (!st) continue;
    if (st.isDirectory()) await rmdir(abs).catch(() => undefined);
    else if (st.size === 0) await unlink(abs).catch(() => undefined);
  }
}


