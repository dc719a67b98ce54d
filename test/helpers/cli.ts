// Runs the real `slipway` command (dist/cli/slipway, the launcher package.json names: client commands on Bun, the
// server on Node) and a real server process on a free loopback port.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(ROOT, "dist/cli/slipway");

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  json<T = Record<string, unknown>>(): T;
}

export function runCli(args: string[], env: Record<string, string>, options: { cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(CLI, args, { env: { ...process.env, ...env }, cwd: options.cwd ?? ROOT });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const stdout = Buffer.concat(out);
      resolvePromise({
        code: code ?? -1,
        stdout,
        stderr: err,
        json<T>() {
          try {
            return JSON.parse(stdout.toString("utf8")) as T;
          } catch {
            throw new Error(`slipway ${args.join(" ")} printed no JSON (exit ${code}):\n${stdout.toString()}\n${err}`);
          }
        },
      });
    });
  });
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
    srv.on("error", rej);
  });
}

export interface ServerProcess {
  url: string;
  dataDir: string;
  env: Record<string, string>;
  child: ChildProcess;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  cli(args: string[], options?: { cwd?: string }): Promise<CliResult>;
}

/**
 * Starts `slipway server` as a child process; resolves when /api/v1/health answers. `args` are extra server flags,
 * `env` extra environment (SLIPWAY_FAULT for crash tests), `port` reuses a port (a restart on the same address).
 */
export async function startServerProcess(
  options: { dataDir?: string; args?: string[]; env?: Record<string, string>; port?: number } = {},
): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "slipway-test-")));
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(CLI, ["server", "--port", String(port), "--data", dataDir, ...(options.args ?? [])], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${log}`);
    try {
      const res = await fetch(`${url}/api/v1/health`);
      const body = (await res.json()) as { ok?: boolean };
      if (body.ok === true) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`server did not answer within 60 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = { SLIPWAY_URL: url, SLIPWAY_DATA: dataDir, SLIPWAY_TOKEN: "" };
  return {
    url,
    dataDir,
    env,
    child,
    log: () => log,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill(signal);
      await exited;
    },
    cli: (args, opts) => runCli(args, env, opts),
  };
}

/** Removes a data directory, first unmounting overlays a killed server left in it. */
export async function removeDataDir(dir: string): Promise<void> {
  const mounts = (await readFile("/proc/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((p) => p.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) execFileSync("umount", ["-l", m]);
  await rm(dir, { recursive: true, force: true });
}
