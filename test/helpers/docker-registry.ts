// A real registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 at a free port, over a
// storage directory the caller owns (so several servers, with and without auth, can serve the same content).
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";

export type RegistryAuthConfig =
  | { htpasswd: { realm: string; path: string } }
  | { token: { realm: string; service: string; issuer: string; rootCertBundle: string } };

export interface StartedRegistry {
  /** `127.0.0.1:<port>`, as written in image references. */
  readonly host: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Starts `docker-registry serve` and waits until it answers /v2/ as a registry (not just anything on the port). */
export async function startDockerRegistry(options: { storage: string; configDir: string; auth?: RegistryAuthConfig }): Promise<StartedRegistry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    "version: 0.1",
    "log:",
    "  level: error",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${options.storage}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${host}`,
    "  secret: slipway-test",
  ];
  const auth = options.auth;
  if (auth && "htpasswd" in auth) {
    lines.push("auth:", "  htpasswd:", `    realm: ${JSON.stringify(auth.htpasswd.realm)}`, `    path: ${auth.htpasswd.path}`);
  } else if (auth && "token" in auth) {
    const t = auth.token;
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${JSON.stringify(t.realm)}`,
      `    service: ${JSON.stringify(t.service)}`,
      `    issuer: ${JSON.stringify(t.issuer)}`,
      `    rootcertbundle: ${t.rootCertBundle}`,
    );
  }
  const config = join(options.configDir, `registry-${port}.yml`);
  await writeFile(config, lines.join("\n") + "\n");
  const child: ChildProcess = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr.trim()}`);
    const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
    // Only a registry answers with this header; a 404 from something else on the network is not a live server.
    if (res && (res.status === 200 || res.status === 401) && res.headers.get("docker-distribution-api-version") === "registry/2.0") break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`docker-registry on ${host} did not come up: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
