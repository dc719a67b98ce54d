// Temporary directories a test file makes, removed when the file's tests are done.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

/** Returns a maker of temporary directories (under `base`, default the system's) that are removed after all tests. */
export function tempDirs(): (prefix: string, base?: string) => Promise<string> {
  const made: string[] = [];
  afterAll(async () => {
    await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
  });
  return async (prefix, base = tmpdir()) => {
    const dir = await mkdtemp(join(base, prefix));
    made.push(dir);
    return dir;
  };
}
