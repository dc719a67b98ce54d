// A registry-only Slipway for tests and the registry bench: fastify + the registry plugin + the real blob store,
// metadata store and auth, in a data directory. Run as a program (bundled by esbuild, see bundleRegistryMain) it
// listens on 127.0.0.1 and prints one JSON line {url, adminToken}, so tests can SIGKILL it mid-request.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { build } from "esbuild";
import { registryPlugin } from "../src/registry/routes.js";
import type { RegistryLimits } from "../src/registry/context.js";
import { UploadSessions } from "../src/registry/uploads.js";
import { GarbageCollector } from "../src/registry/gc.js";
import { Auth, createAuth, ensureAdminToken } from "../src/server/auth.js";
import { FsBlobStore } from "../src/store/blob-store.js";
import { MetadataStore } from "../src/store/metadata-store.js";
import { RepositoryIndex } from "../src/store/repository-index.js";
import { TokenStore } from "../src/store/token-store.js";

/** The repository root: found by walking up, since this file also runs bundled from node_modules/.cache. */
export const ROOT = findRoot(import.meta.dirname);

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "test/registry-support.ts"))) return dir;
    if (dirname(dir) === dir) return resolve(from, "..");
  }
}

export interface RegistryOptions {
  dataDir?: string;
  anonymousPull?: boolean;
  limits?: Partial<RegistryLimits>;
  uploadIdleCloseMs?: number;
}

export interface TestRegistry {
  app: FastifyInstance;
  dataDir: string;
  meta: MetadataStore;
  blobs: FsBlobStore;
  repos: RepositoryIndex;
  tokens: TokenStore;
  auth: Auth;
  uploads: UploadSessions;
  gc: GarbageCollector;
  adminToken: string;
  /** `Authorization` header value for the admin token. */
  bearer: string;
  close(): Promise<void>;
}

export async function openRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "slipway-registry-")));
  await mkdir(dataDir, { recursive: true });
  const meta = MetadataStore.open(join(dataDir, "slipway.db"));
  const blobs = await FsBlobStore.open(dataDir);
  const repos = new RepositoryIndex(meta);
  const tokens = new TokenStore(meta);
  const auth = createAuth(tokens, { anonymousPull: options.anonymousPull ?? false });
  const { token } = await ensureAdminToken(tokens, dataDir);
  const uploads = new UploadSessions(blobs, repos, { idleCloseMs: options.uploadIdleCloseMs });
  const app = Fastify({ logger: false });
  await app.register(registryPlugin({ blobs, repos, auth: auth.registry, uploads, limits: options.limits }), { prefix: "/v2" });
  await app.ready();
  return {
    app,
    dataDir,
    meta,
    blobs,
    repos,
    tokens,
    auth,
    uploads,
    gc: new GarbageCollector({ blobs, repos, uploads }),
    adminToken: token,
    bearer: `Bearer ${token}`,
    async close() {
      await app.close();
      await uploads.close();
      meta.close();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Listens on 127.0.0.1 at a random port; returns the base URL. */
export async function listen(registry: TestRegistry): Promise<string> {
  const address = await registry.app.listen({ host: "127.0.0.1", port: 0 });
  return address.replace("localhost", "127.0.0.1");
}

/** Bundles this file as a runnable program (fastify and better-sqlite3 stay as packages) and returns its path. */
export async function bundleRegistryMain(): Promise<string> {
  const outfile = join(ROOT, "node_modules/.cache/slipway-test/registry-main.mjs");
  await build({
    entryPoints: [join(ROOT, "test/registry-support.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    outfile,
    define: { "process.env.SLIPWAY_REGISTRY_MAIN": '"1"' },
    logLevel: "error",
  });
  return outfile;
}

export interface RegistryProcess {
  child: ChildProcess;
  url: string;
  adminToken: string;
  /** The process's resident memory now, in bytes (from /proc). */
  rss(): number;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the first stdout line containing `marker` (rejects if the process exits first). */
  waitForLine(marker: string): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the bundled registry as a child process over `dataDir` and waits for its address. */
export async function spawnRegistry(main: string, dataDir: string, env: Record<string, string> = {}): Promise<RegistryProcess> {
  const child = spawn(process.execPath, [main, dataDir], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const line = await new Promise<string>((resolveLine, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        child.stdout!.off("data", onData);
        resolveLine(out.slice(0, nl));
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`registry process exited with ${code}: ${stderr}`)));
  });
  const { url, adminToken } = JSON.parse(line) as { url: string; adminToken: string };
  return {
    child,
    url,
    adminToken,
    rss: () => readRss(child.pid!),
    stderr: () => stderr,
    waitForLine: (marker) =>
      new Promise((resolveLine, reject) => {
        let buffered = "";
        const onData = (d: Buffer) => {
          buffered += d.toString();
          const line = buffered.split("\n").find((l) => l.includes(marker));
          if (line) {
            child.stdout!.off("data", onData);
            resolveLine(line);
          }
        };
        child.stdout!.on("data", onData);
        child.once("exit", (code, signal) => reject(new Error(`registry process ended (${code ?? signal}) before printing ${marker}: ${stderr}`)));
      }),
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

function readRss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error("usage: registry-main <data dir>");
  const registry = await openRegistry({ dataDir, anonymousPull: process.env.SLIPWAY_ANONYMOUS_PULL === "1" });
  const url = await listen(registry);
  // SIGUSR2 runs a collection (grace period and upload lifetime from the environment) and prints its report.
  process.on("SIGUSR2", () => {
    const gracePeriodMs = Number(process.env.SLIPWAY_GC_GRACE_MS ?? 3_600_000);
    const uploadTtlMs = Number(process.env.SLIPWAY_GC_UPLOAD_TTL_MS ?? 86_400_000);
    void registry.gc.collect({ gracePeriodMs, uploadTtlMs }).then((report) => {
      process.stdout.write(JSON.stringify({ gc: { blobs: report.blobs.length, bytes: report.bytes } }) + "\n");
    });
  });
  const stop = () => void registry.close().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  // Printed last: the parent may signal as soon as it reads this line.
  process.stdout.write(JSON.stringify({ url, adminToken: registry.adminToken }) + "\n");
}

if (process.env.SLIPWAY_REGISTRY_MAIN === "1") {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
