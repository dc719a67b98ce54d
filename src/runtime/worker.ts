// The worker: runs functions in containers. Images come by digest from the blob store and are unpacked once into
// shared snapshots; each container gets an overlay of them, the code bundle and the Node runtime mounted read-only,
// and serves one call at a time over a Unix socket. Warm containers are kept per (version, function) and stopped
// after an idle timeout; a container whose call times out is killed. The control plane tells the worker which
// versions deployments route to: those keep minContainers warm; the others drain (calls they hold finish, idle
// containers stop after a short grace, and whatever still runs at the drain timeout is stopped).
import { chmod, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { FailedError, InvalidError, TimeoutError, UnavailableError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { codeBundleSchema, parseWith, type CodeBundle, type Digest, type FunctionResources } from "../core/schemas.js";
import { envToMap, mapToEnv, type ImageConfig, type ImageManifest } from "../oci/manifest.js";
import type { FsBlobStore } from "../store/blob-store.js";
import type { Container, Executor } from "./executor.js";
import { RUNTIME_MOUNT, runtimeCommand } from "./node-runtime.js";
import { mountOverlay, type LayerRef, type OverlayMount, type SnapshotStore } from "./snapshots.js";

/** One function of one version: everything a worker needs to start its containers. */
export interface FunctionTarget {
  app: string;
  version: number;
  function: string;
  image: Digest;
  code: Digest;
  handler: string;
  settings: FunctionResources;
  /** Runtime configuration, overlaid on the image's environment key by key. */
  env: Record<string, string>;
}

export interface ColdStart {
  unpackMs: number;
  mountMs: number;
  /** From starting the container to the handler being loaded and the socket answering. */
  startMs: number;
  totalMs: number;
}

export interface InvokeResult {
  body: Buffer;
  contentType: string;
  containerId: string;
  durationMs: number;
  coldStart: ColdStart | null;
}

export interface WorkerDeps {
  blobs: FsBlobStore;
  snapshots: SnapshotStore;
  executor: Executor;
  /** Per-container directories (same filesystem as the snapshots). */
  containersRoot: string;
  /** Materialised code bundles. */
  codeRoot: string;
  /** The prepared Node runtime directory (see node-runtime.ts). */
  runtimeDir: string;
  /** How long calls on a version that no deployment routes to any more may run before they are stopped. */
  drainTimeoutMs?: number;
  /** How long an idle container of such a version is kept, in case the pointer comes back. */
  drainGraceMs?: number;
}

export interface PoolStats {
  app: string;
  version: number;
  function: string;
  /** A deployment routes calls to this version; otherwise it drains. */
  active: boolean;
  idle: number;
  busy: number;
  starting: number;
}

const CODE_MOUNT = "/.slipway/code";
const SOCKET_MOUNT = "/.slipway/sock";
const START_TIMEOUT_MS = 60_000;

interface WarmContainer {
  id: string;
  container: Container;
  overlay: OverlayMount;
  dir: string;
  socket: string;
  dead: boolean;
  /** Why the worker stopped this container while it held a call. */
  stopReason: string | null;
  idleTimer: NodeJS.Timeout | null;
  coldStart: ColdStart | null;
}

class Pool {
  readonly idle: WarmContainer[] = [];
  readonly busy = new Set<WarmContainer>();
  starting = 0;
  readonly waiters: Array<() => void> = [];
  active = true;
  drainTimer: NodeJS.Timeout | null = null;
  constructor(readonly target: FunctionTarget) {}
  get size(): number {
    return this.idle.length + this.busy.size + this.starting;
  }
}

export class Worker {
  private readonly pools = new Map<string, Pool>();
  private readonly codeDirs = new Map<Digest, Promise<string>>();
  /** Per app, the versions deployments route to; apps not listed count as wholly active. */
  private readonly activeVersions = new Map<string, Set<number>>();
  private readonly drainTimeoutMs: number;
  private readonly drainGraceMs: number;
  private closed = false;

  constructor(private readonly deps: WorkerDeps) {
    this.drainTimeoutMs = deps.drainTimeoutMs ?? 30_000;
    this.drainGraceMs = Math.min(deps.drainGraceMs ?? 2_000, this.drainTimeoutMs);
  }

  static key(t: { app: string; version: number; function: string }): string {
    return `${t.app}/v${t.version}/${t.function}`;
  }

  async invoke(target: FunctionTarget, input: Buffer, contentType: string, invocationId: string): Promise<InvokeResult> {
    if (this.closed) throw new UnavailableError("the worker is shutting down");
    const pool = this.poolFor(target);
    const started = performance.now();
    const warm = await this.acquire(pool);
    const coldStart = warm.coldStart;
    warm.coldStart = null;
    try {
      const { body, type } = await this.call(warm, target, input, contentType, invocationId);
      return { body, contentType: type, containerId: warm.id, durationMs: Math.round(performance.now() - started), coldStart };
    } finally {
      this.release(pool, warm);
    }
  }

  /** Containers per (version, function), for status pages and tests. */
  stats(app?: string): PoolStats[] {
    return [...this.pools.values()]
      .filter((p) => app === undefined || p.target.app === app)
      .map((p) => ({
        app: p.target.app,
        version: p.target.version,
        function: p.target.function,
        active: p.active,
        idle: p.idle.length,
        busy: p.busy.size,
        starting: p.starting,
      }));
  }

  /**
   * Starts containers up to each target's minContainers and waits until they answer, so that a version is warm
   * before a pointer flips to it. A container that fails to start fails the warm-up with its error.
   */
  async warm(targets: FunctionTarget[]): Promise<void> {
    if (this.closed) throw new UnavailableError("the worker is shutting down");
    await Promise.all(
      targets.map(async (t) => {
        const pool = this.poolFor(t);
        pool.active = true;
        this.cancelDrain(pool);
        const missing = t.settings.minContainers - pool.size;
        await Promise.all(Array.from({ length: Math.max(0, missing) }, () => this.startIdle(pool)));
      }),
    );
  }

  /**
   * Tells the worker which versions of an app deployments now route to. Pools of other versions drain; pools of
   * these stop draining and are topped up to minContainers.
   */
  setActive(app: string, versions: Set<number>): void {
    this.activeVersions.set(app, new Set(versions));
    for (const pool of this.pools.values()) {
      if (pool.target.app !== app) continue;
      const active = versions.has(pool.target.version);
      if (active && !pool.active) {
        pool.active = true;
        this.cancelDrain(pool);
        this.topUp(pool);
      } else if (!active && pool.active) {
        pool.active = false;
        this.drain(pool);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.pools.values()].flatMap((p) => [...p.idle, ...p.busy]);
    await Promise.all(all.map((c) => this.destroy(c)));
    this.pools.clear();
  }

  private poolFor(target: FunctionTarget): Pool {
    const key = Worker.key(target);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(target);
      pool.active = this.activeVersions.get(target.app)?.has(target.version) ?? true;
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** A version left the deployments: idle containers go after the grace, busy ones at the drain timeout. */
  private drain(pool: Pool): void {
    for (const warm of pool.idle) this.armIdleTimer(pool, warm);
    this.cancelDrain(pool);
    pool.drainTimer = setTimeout(() => {
      pool.drainTimer = null;
      if (pool.active) return;
      for (const warm of [...pool.idle]) this.removeIdle(pool, warm);
      for (const warm of pool.busy) {
        warm.stopReason = `${Worker.key(pool.target)} was stopped: the call was still running ${this.drainTimeoutMs} ms after no deployment routed to v${pool.target.version} any more (drain timeout)`;
        warm.dead = true;
        void warm.container.kill("KILL");
      }
    }, this.drainTimeoutMs);
    pool.drainTimer.unref();
  }

  private cancelDrain(pool: Pool): void {
    if (pool.drainTimer) clearTimeout(pool.drainTimer);
    pool.drainTimer = null;
  }

  /** Keeps an active pool at minContainers; a container that fails to start here shows up on the next call. */
  private topUp(pool: Pool): void {
    const missing = pool.target.settings.minContainers - pool.size;
    for (let i = 0; i < missing; i++) void this.startIdle(pool).catch(() => undefined);
  }

  private async startIdle(pool: Pool): Promise<void> {
    pool.starting++;
    let warm: WarmContainer;
    try {
      warm = await this.start(pool.target);
    } finally {
      pool.starting--;
    }
    // Started ahead of any call: no call pays for this start.
    warm.coldStart = null;
    pool.busy.add(warm);
    this.release(pool, warm);
  }

  private removeIdle(pool: Pool, warm: WarmContainer): void {
    const i = pool.idle.indexOf(warm);
    if (i < 0) return;
    pool.idle.splice(i, 1);
    void this.destroy(warm).finally(() => this.forgetIfEmpty(pool));
  }

  /** Drops a drained pool once it has nothing left, so status pages list what runs. */
  private forgetIfEmpty(pool: Pool): void {
    if (!pool.active && pool.size === 0 && pool.waiters.length === 0 && this.pools.get(Worker.key(pool.target)) === pool) {
      this.cancelDrain(pool);
      this.pools.delete(Worker.key(pool.target));
    }
  }

  private armIdleTimer(pool: Pool, warm: WarmContainer): void {
    if (warm.idleTimer) clearTimeout(warm.idleTimer);
    const wait = pool.active ? pool.target.settings.idleTimeoutMs : Math.min(pool.target.settings.idleTimeoutMs, this.drainGraceMs);
    warm.idleTimer = setTimeout(() => {
      warm.idleTimer = null;
      if (!pool.active || pool.size > pool.target.settings.minContainers) this.removeIdle(pool, warm);
    }, wait);
    warm.idleTimer.unref();
  }

  private async acquire(pool: Pool): Promise<WarmContainer> {
    for (;;) {
      const idle = pool.idle.pop();
      if (idle) {
        if (idle.idleTimer) clearTimeout(idle.idleTimer);
        idle.idleTimer = null;
        if (idle.dead) {
          void this.destroy(idle);
          continue;
        }
        pool.busy.add(idle);
        return idle;
      }
      if (pool.size < pool.target.settings.maxContainers) {
        pool.starting++;
        try {
          const warm = await this.start(pool.target);
          pool.busy.add(warm);
          return warm;
        } finally {
          pool.starting--;
        }
      }
      await new Promise<void>((resolve) => pool.waiters.push(resolve));
    }
  }

  private release(pool: Pool, warm: WarmContainer): void {
    pool.busy.delete(warm);
    if (warm.dead || this.closed) {
      void this.destroy(warm).finally(() => {
        this.forgetIfEmpty(pool);
        if (pool.active && !this.closed) this.topUp(pool);
      });
    } else {
      pool.idle.push(warm);
      this.armIdleTimer(pool, warm);
    }
    pool.waiters.shift()?.();
  }

  private async start(target: FunctionTarget): Promise<WarmContainer> {
    const t0 = performance.now();
    const { config, layers } = await this.loadImage(target.image);
    await Promise.all(layers.map((l) => this.deps.snapshots.ensure(l)));
    const codeDir = await this.codeDir(target.code);
    const t1 = performance.now();
    const id = newId("fn-");
    const dir = join(this.deps.containersRoot, id);
    const sockDir = join(dir, "sock");
    await mkdir(sockDir, { recursive: true });
    await chmod(sockDir, 0o777);
    const overlay = await mountOverlay(this.deps.snapshots, layers.map((l) => this.deps.snapshots.pathOf(l.diffId)), dir);
    const t2 = performance.now();
    // The image's environment goes in the container spec; the runtime configuration (secrets among it) goes over
    // the socket at /init, so it is never written to runc's bundle on disk.
    const env = envToMap(config.config.Env);
    env.set("SLIPWAY_SOCKET", `${SOCKET_MOUNT}/rt.sock`);
    env.set("SLIPWAY_HANDLER", `${CODE_MOUNT}/${target.handler}`);
    env.set("SLIPWAY_APP", target.app);
    env.set("SLIPWAY_FUNCTION", target.function);
    env.set("SLIPWAY_VERSION", String(target.version));
    let container: Container;
    try {
      container = await this.deps.executor.start({
        rootfs: overlay.merged,
        args: runtimeCommand(),
        env: mapToEnv(env),
        cwd: config.config.WorkingDir || "/",
        user: config.config.User,
        mounts: [
          { source: this.deps.runtimeDir, destination: RUNTIME_MOUNT, readonly: true },
          { source: codeDir, destination: CODE_MOUNT, readonly: true },
          { source: sockDir, destination: SOCKET_MOUNT, readonly: false },
        ],
        network: "host",
        limits: { memoryBytes: target.settings.memoryMiB * 1024 * 1024, cpus: target.settings.cpu, pids: 4096 },
      });
    } catch (err) {
      await overlay.unmount();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const warm: WarmContainer = { id, container, overlay, dir, socket: join(sockDir, "rt.sock"), dead: false, stopReason: null, idleTimer: null, coldStart: null };
    container.exited.then(
      () => (warm.dead = true),
      () => (warm.dead = true),
    );
    try {
      await this.waitReady(warm, target);
      await this.init(warm, target);
    } catch (err) {
      await this.destroy(warm);
      throw err;
    }
    const t3 = performance.now();
    warm.coldStart = {
      unpackMs: Math.round(t1 - t0),
      mountMs: Math.round(t2 - t1),
      startMs: Math.round(t3 - t2),
      totalMs: Math.round(t3 - t0),
    };
    return warm;
  }

  private async waitReady(warm: WarmContainer, target: FunctionTarget): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (warm.dead) {
        const status = await warm.container.exited;
        const tail = warm.container.tail(30);
        throw new FailedError(
          `${target.app}/${target.function} (v${target.version}) failed to start: the runtime exited with code ${status.exitCode}${tail ? `\n${tail}` : ""}`,
          { exitCode: status.exitCode, output: tail },
        );
      }
      // The socket file appears at bind(), a moment before listen(): only an answer to /ready means ready.
      if ((await stat(warm.socket).catch(() => null)) && (await this.ready(warm.socket))) return;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new TimeoutError(`${target.app}/${target.function} did not become ready within ${START_TIMEOUT_MS} ms`);
  }

  /** Hands the runtime its configuration and has it load the handler; a handler that fails to load says why. */
  private async init(warm: WarmContainer, target: FunctionTarget): Promise<void> {
    const body = Buffer.from(JSON.stringify({ env: target.env }));
    const res = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = request(
        { socketPath: warm.socket, method: "POST", path: "/init", headers: { "content-type": "application/json", "content-length": body.length } },
        (r) => {
          const chunks: Buffer[] = [];
          r.on("data", (c: Buffer) => chunks.push(c));
          r.on("end", () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks) }));
          r.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    }).catch((err: Error) => {
      throw new FailedError(`${target.app}/${target.function} (v${target.version}) failed to start: ${err.message}\n${warm.container.tail(30)}`);
    });
    if (res.status === 200) return;
    let error: { name?: string; message?: string; stack?: string } = {};
    try {
      error = JSON.parse(res.body.toString("utf8")) as typeof error;
    } catch {
      error = { message: res.body.toString("utf8") };
    }
    throw new FailedError(`${target.app}/${target.function} (v${target.version}) failed to start: loading the handler threw ${error.name ?? "Error"}: ${error.message ?? ""}`, {
      name: error.name,
      stack: error.stack,
      version: target.version,
    });
  }

  private ready(socketPath: string): Promise<boolean> {
    return new Promise((resolve) => {
      const req = request({ socketPath, method: "GET", path: "/ready" }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200));
        res.on("error", () => resolve(false));
      });
      req.on("error", () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
      req.end();
    });
  }

  private call(
    warm: WarmContainer,
    target: FunctionTarget,
    input: Buffer,
    contentType: string,
    invocationId: string,
  ): Promise<{ body: Buffer; type: string }> {
    const timeoutMs = target.settings.timeoutMs;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null, value?: { body: Buffer; type: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value!);
      };
      const timer = setTimeout(() => {
        warm.dead = true;
        void warm.container.kill("KILL");
        req.destroy();
        finish(new TimeoutError(`${target.app}/${target.function} exceeded its timeout of ${timeoutMs} ms; its container was stopped`, { timeoutMs }));
      }, timeoutMs);
      void warm.container.exited.then((status) => {
        if (warm.stopReason) return finish(new UnavailableError(warm.stopReason));
        const tail = warm.container.tail(30);
        finish(
          new FailedError(
            `${target.app}/${target.function} (v${target.version}): the container exited during the call with code ${status.exitCode}${
              status.exitCode === 137
                ? ` (killed: most likely out of memory; the function may use ${target.settings.memoryMiB} MiB)`
                : " (the handler's process ended: did it call process.exit?)"
            }${tail ? `\n${tail}` : ""}`,
            { exitCode: status.exitCode, output: tail },
          ),
        );
      });
      const req = request(
        {
          socketPath: warm.socket,
          method: "POST",
          path: "/invoke",
          headers: { "content-type": contentType, "content-length": input.length, "x-slipway-invocation": invocationId },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", (err) => finish(err));
          res.on("end", () => {
            const body = Buffer.concat(chunks);
            const type = String(res.headers["content-type"] ?? "application/octet-stream");
            if (res.statusCode === 200) return finish(null, { body, type });
            let error: { name?: string; message?: string; stack?: string } = {};
            try {
              error = JSON.parse(body.toString("utf8")) as typeof error;
            } catch {
              error = { message: body.toString("utf8") };
            }
            if (res.statusCode === 400) {
              return finish(new InvalidError(`input to ${target.app}/${target.function} is not valid JSON: ${error.message}`));
            }
            finish(
              new FailedError(`${target.app}/${target.function} (v${target.version}) threw ${error.name ?? "Error"}: ${error.message ?? ""}`, {
                name: error.name,
                stack: error.stack,
                version: target.version,
              }),
            );
          });
        },
      );
      req.on("error", (err) => {
        // A runtime that died mid-call (out of memory, process.exit) drops the socket before runc reports the
        // exit: give the exit a moment to arrive, since it says what happened.
        const unreachable = () => finish(new UnavailableError(`cannot reach the runtime of ${target.app}/${target.function}: ${err.message}`));
        const wait = setTimeout(unreachable, 2000);
        void warm.container.exited.then(() => clearTimeout(wait));
      });
      req.end(input);
    });
  }

  private async destroy(warm: WarmContainer): Promise<void> {
    if (warm.idleTimer) clearTimeout(warm.idleTimer);
    warm.dead = true;
    await warm.container.kill("KILL");
    await warm.container.exited.catch(() => undefined);
    await warm.overlay.unmount().catch(() => undefined);
    await rm(warm.dir, { recursive: true, force: true });
  }

  private async loadImage(digest: Digest): Promise<{ config: ImageConfig; layers: LayerRef[] }> {
    const manifest = JSON.parse((await this.deps.blobs.readBuffer(digest)).toString("utf8")) as ImageManifest;
    const config = JSON.parse((await this.deps.blobs.readBuffer(manifest.config.digest)).toString("utf8")) as ImageConfig;
    const layers = manifest.layers.map((l, i) => {
      const diffId = config.rootfs.diff_ids[i];
      if (!diffId) throw new InvalidError(`image ${digest}: layer ${i} has no diffID in its config`);
      return { ...l, diffId };
    });
    return { config, layers };
  }

  /** Materialises a code bundle once: its files hardlinked from the blob store into a read-only directory. */
  private codeDir(digest: Digest): Promise<string> {
    let p = this.codeDirs.get(digest);
    if (!p) {
      p = (async () => {
        const dir = join(this.deps.codeRoot, digest.replace(":", "-"));
        if (await stat(join(dir, ".complete")).catch(() => null)) return dir;
        const bundle: CodeBundle = parseWith(codeBundleSchema, JSON.parse((await this.deps.blobs.readBuffer(digest)).toString("utf8")), "code bundle");
        const tmp = `${dir}.tmp-${newId()}`;
        await mkdir(tmp, { recursive: true });
        for (const [name, fileDigest] of Object.entries(bundle.files)) {
          const target = join(tmp, name);
          await mkdir(join(target, ".."), { recursive: true });
          await this.deps.blobs.linkTo(fileDigest, target);
        }
        await writeFile(join(tmp, ".complete"), "");
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir);
        return dir;
      })();
      p.catch(() => this.codeDirs.delete(digest));
      this.codeDirs.set(digest, p);
    }
    return p;
  }
}
