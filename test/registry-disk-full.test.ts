// A disk that fills up in the middle of an upload. The registry's data directory is a small tmpfs (a real
// filesystem, so the failure is the kernel's ENOSPC), filled with a ballast file before the chunk that cannot fit.
// The client gets 503 UNAVAILABLE in the spec's error body, nothing half-written becomes visible, and a chunked
// session keeps the offset it last acknowledged: GET status reports it and the upload resumes once space is back.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, statfs, writeFile } from "node:fs/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { content } from "./registry-kit.js";
import { listen, openRegistry, type TestRegistry } from "./registry-support.js";

const MiB = 1024 * 1024;

/** Why this machine cannot run the test (it mounts a tmpfs), or null when it can. */
function mountSkipReason(): string | null {
  if (process.getuid?.() !== 0) return "needs root (mounts a small tmpfs to fill up)";
  const probe = mkdtempSync(join(tmpdir(), "slipway-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return null;
  } catch {
    return "needs root with permission to mount a tmpfs";
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const skip = mountSkipReason();
if (skip) console.warn(`registry-disk-full: skipped, ${skip}`);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

describe.skipIf(skip !== null)("a disk that fills up during an upload (needs root: mounts a tmpfs)", () => {
  let mountPoint: string;
  let registry: TestRegistry;
  let base: string;
  const ballast = () => join(mountPoint, "ballast");

  beforeAll(async () => {
    mountPoint = await mkdtemp(join(tmpdir(), "registry-disk-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint]);
    registry = await openRegistry({ dataDir: mountPoint });
    base = await listen(registry);
  });
  afterAll(async () => {
    await registry?.close();
    if (mountPoint) {
      execFileSync("umount", [mountPoint]);
      await rm(mountPoint, { recursive: true, force: true });
    }
  });

  /** Fills the filesystem until `leave` bytes are free. */
  async function fillDisk(leave: number): Promise<void> {
    const fs = await statfs(mountPoint);
    await writeFile(ballast(), Buffer.alloc(Math.max(fs.bavail * fs.bsize - leave, 0), 1));
  }
  const freeDisk = () => rm(ballast(), { force: true });

  /**
   * One request over a real socket. The registry may answer before it has read the whole body (and then close the
   * connection): the answer is what counts, not the failed write after it. `body` as an array is sent chunked.
   */
  function send(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | Buffer[]): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const url = new URL(base + path);
      let answered = false;
      const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: { authorization: registry.bearer, ...headers } }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("error", (err) => {
        if (!answered) reject(err);
      });
      if (Array.isArray(body)) {
        for (const part of body) req.write(part);
        req.end();
      } else req.end(body);
    });
  }

  async function startUpload(repo: string): Promise<string> {
    const post = await send("POST", `/v2/${repo}/blobs/uploads/`);
    expect(post.status).toBe(202);
    return post.headers.location as string;
  }

  function patch(location: string, bytes: Buffer, start: number): Promise<Answer> {
    return send("PATCH", location, { "content-type": "application/octet-stream", "content-range": `${start}-${start + bytes.length - 1}`, "content-length": String(bytes.length) }, bytes);
  }

  function expectUnavailable(answer: Answer): { message: string; detail: Record<string, unknown> } {
    expect(answer.status).toBe(503);
    expect(answer.headers["content-type"]).toMatch(/^application\/json/);
    const error = (JSON.parse(answer.body.toString()) as { errors: Array<{ code: string; message: string; detail: Record<string, unknown> }> }).errors[0]!;
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.message).toMatch(/disk is full \(ENOSPC\)/);
    return error;
  }

  async function expectInvisible(repo: string, digest: string): Promise<void> {
    expect((await send("HEAD", `/v2/${repo}/blobs/${digest}`)).status).toBe(404);
    expect(await registry.blobs.stat(digest as `sha256:${string}`)).toBeNull();
  }

  it("a chunk the disk cannot take is 503; the session keeps its last acknowledged offset and resumes when space is back", async () => {
    const blob = content(randomBytes(6 * MiB));
    const location = await startUpload("full/chunked");
    const first = await patch(location, blob.bytes.subarray(0, 2 * MiB), 0);
    expect(first.status).toBe(202);
    expect(first.headers.range).toBe(`0-${2 * MiB - 1}`);

    await fillDisk(1 * MiB);
    try {
      const failed = expectUnavailable(await patch(location, blob.bytes.subarray(2 * MiB), 2 * MiB));
      expect(failed.detail.offset).toBe(2 * MiB);
      const status = await send("GET", location);
      expect(status.status).toBe(204);
      expect(status.headers.range).toBe(`0-${2 * MiB - 1}`);
      await expectInvisible("full/chunked", blob.digest);
    } finally {
      await freeDisk();
    }

    const rest = await patch(location, blob.bytes.subarray(2 * MiB), 2 * MiB);
    expect(rest.status).toBe(202);
    expect(rest.headers.range).toBe(`0-${6 * MiB - 1}`);
    expect((await send("PUT", `${location}?digest=${blob.digest}`)).status).toBe(201);
    const pulled = await send("GET", `/v2/full/chunked/blobs/${blob.digest}`);
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(blob.bytes)).toBe(true);
  });

  it("a streamed chunk (no Content-Length) that fills the disk leaves the session at its last acknowledged offset", async () => {
    const blob = content(randomBytes(5 * MiB));
    const location = await startUpload("full/streamed");
    const head = blob.bytes.subarray(0, 1 * MiB);
    const first = await send("PATCH", location, { "content-type": "application/octet-stream" }, [head]);
    expect(first.status).toBe(202);

    await fillDisk(1 * MiB);
    try {
      const parts = [];
      for (let at = 1 * MiB; at < blob.size; at += 256 * 1024) parts.push(blob.bytes.subarray(at, at + 256 * 1024));
      expectUnavailable(await send("PATCH", location, { "content-type": "application/octet-stream" }, parts));
      expect((await send("GET", location)).headers.range).toBe(`0-${1 * MiB - 1}`);
      await expectInvisible("full/streamed", blob.digest);
    } finally {
      await freeDisk();
    }

    const rest = await send("PUT", `${location}?digest=${blob.digest}`, { "content-type": "application/octet-stream" }, blob.bytes.subarray(1 * MiB));
    expect(rest.status).toBe(201);
    expect((await send("GET", `/v2/full/streamed/blobs/${blob.digest}`)).body.equals(blob.bytes)).toBe(true);
  });

  it("a single-request upload that fills the disk stores nothing and leaves no upload data behind", async () => {
    const blob = content(randomBytes(4 * MiB));
    const before = (await registry.blobs.listWriters()).length;
    await fillDisk(1 * MiB);
    try {
      const answer = await send("POST", `/v2/full/monolithic/blobs/uploads/?digest=${blob.digest}`, { "content-type": "application/octet-stream", "content-length": String(blob.size) }, blob.bytes);
      expectUnavailable(answer);
      await expectInvisible("full/monolithic", blob.digest);
      expect((await registry.blobs.listWriters()).length).toBe(before);
    } finally {
      await freeDisk();
    }
    const again = await send("POST", `/v2/full/monolithic/blobs/uploads/?digest=${blob.digest}`, { "content-type": "application/octet-stream", "content-length": String(blob.size) }, blob.bytes);
    expect(again.status).toBe(201);
  });
});
