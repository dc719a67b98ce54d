import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SecretBox } from "./secret-box.js";

describe("SecretBox", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it("creates its key file once with mode 0600 and keeps using it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slipway-box-"));
    dirs.push(dir);
    const a = await SecretBox.open(join(dir, "secrets.key"));
    expect((await stat(join(dir, "secrets.key"))).mode & 0o777).toBe(0o600);
    const key = await readFile(join(dir, "secrets.key"), "utf8");
    const sealed = a.seal("hunter2-value", "config:app:PASSWORD");
    const b = await SecretBox.open(join(dir, "secrets.key"));
    expect(await readFile(join(dir, "secrets.key"), "utf8")).toBe(key);
    expect(b.open(sealed, "config:app:PASSWORD")).toBe("hunter2-value");
  });

  it("never shows the plaintext, seals differently each time, and refuses another context, tampering or another key", async () => {
    const box = SecretBox.fromKey(Buffer.alloc(32, 7));
    const one = box.seal("hunter2-value", "config:app:A");
    const two = box.seal("hunter2-value", "config:app:A");
    expect(one).not.toContain("hunter2");
    expect(one).not.toBe(two);
    expect(() => box.open(one, "config:app:B")).toThrow(/does not open/);
    const parts = one.split(":");
    parts[3] = Buffer.from("other-value-xx").toString("base64url");
    expect(() => box.open(parts.join(":"), "config:app:A")).toThrow(/does not open/);
    expect(() => SecretBox.fromKey(Buffer.alloc(32, 8)).open(one, "config:app:A")).toThrow(/does not open/);
  });
});
