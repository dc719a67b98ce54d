// The registry client's HTTP behaviour with small loopback servers standing in for a registry and a storage
// backend: what a real registry cannot be made to do on demand (redirect elsewhere, stall, never answer).
// Pulls from a real registry are tested in test/registry-pull.test.ts.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnavailableError } from "../core/errors.js";
import { sha256 } from "../oci/digest.js";
import { FsBlobStore } from "../store/blob-store.js";
import { RegistryClient } from "./client.js";

const BLOB = Buffer.from("layer bytes ".repeat(1000));
const DESCRIPTOR = { digest: sha256(BLOB), size: BLOB.length };

async function serve(handler: RequestListener): Promise<{ server: Server; host: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, host: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

describe("RegistryClient over HTTP", () => {
  let dir: string;
  let store: FsBlobStore;
  const servers: Server[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "slipway-client-"));
    store = await FsBlobStore.open(dir);
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("follows a blob redirect to storage elsewhere without sending the registry credentials there", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const storage = await serve((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "content-length": String(BLOB.length) }).end(BLOB);
    });
    servers.push(storage.server);
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from("u:p").toString("base64")}`) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="r"' }).end();
        return;
      }
      res.writeHead(307, { location: `http://${storage.host}/bucket/blob?signature=x` }).end();
    });
    servers.push(registry.server);
    const client = new RegistryClient({ auth: { [registry.host]: { username: "u", password: "p" } } });
    const info = await client.fetchBlob(`${registry.host}/a/b:1`, DESCRIPTOR, store);
    expect(info).toEqual(DESCRIPTOR);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.authorization).toBeUndefined();
  });

  it("fails a download that stalls, storing nothing", async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, { "content-length": String(BLOB.length) });
      res.write(BLOB.subarray(0, 100)); // and then nothing more
    });
    servers.push(registry.server);
    const err = await new RegistryClient({ timeoutMs: 300 }).fetchBlob(`${registry.host}/a/b:1`, DESCRIPTOR, store).catch((e: Error) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(new RegExp(`download of blob ${DESCRIPTOR.digest} from ${registry.host} broke off: the download stalled: no data for 300 ms`));
    expect(await store.stat(DESCRIPTOR.digest)).toBeNull();
    expect(await store.listWriters()).toEqual([]);
  });

  it("gives up on a registry that never answers", async () => {
    const registry = await serve(() => undefined);
    servers.push(registry.server);
    const err = await new RegistryClient({ timeoutMs: 300 }).resolve(`${registry.host}/a/b:1`).catch((e: Error) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toBe(`cannot reach registry ${registry.host} (http://${registry.host}): no answer within 300 ms`);
  });

  it("does not download a blob the store already has", async () => {
    let requests = 0;
    const registry = await serve((_req, res) => {
      requests++;
      res.writeHead(200).end(BLOB);
    });
    servers.push(registry.server);
    const client = new RegistryClient();
    await client.fetchBlob(`${registry.host}/a/b:1`, DESCRIPTOR, store);
    await client.fetchBlob(`${registry.host}/a/b:1`, DESCRIPTOR, store);
    expect(requests).toBe(1);
  });

  it("uses http only for loopback and configured insecure hosts, and Docker Hub's API host for docker.io", () => {
    const client = new RegistryClient({ insecureHosts: ["registry.lan:5000", "Mirror.LAN"] });
    expect(client.endpoint("docker.io")).toBe("https://registry-1.docker.io/v2/");
    expect(client.endpoint("ghcr.io")).toBe("https://ghcr.io/v2/");
    expect(client.endpoint("registry.lan")).toBe("https://registry.lan/v2/");
    for (const host of ["127.0.0.1:5000", "127.3.4.5", "localhost", "localhost:5000", "[::1]:5000", "registry.lan:5000", "mirror.lan", "mirror.lan:8080"]) {
      expect(client.endpoint(host), host).toBe(`http://${host}/v2/`);
    }
  });
});
