// The build cache index: step cache key → the step's result (layers it added and the image config after it), and
// per image, the keys and inputs of its last build, so that a later miss can say what changed.
import type { MetadataStore } from "./metadata-store.js";

export class CacheIndex {
  constructor(private readonly meta: MetadataStore) {}

  get<T>(key: string): T | null {
    const row = this.meta.statement("SELECT result FROM build_cache WHERE key = ?").get(key) as { result: string } | undefined;
    if (!row) return null;
    this.meta.statement("UPDATE build_cache SET used_at = ? WHERE key = ?").run(Date.now(), key);
    return JSON.parse(row.result) as T;
  }

  put(key: string, result: unknown): void {
    const now = Date.now();
    this.meta
      .statement(
        `INSERT INTO build_cache (key, result, created_at, used_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET result = excluded.result, used_at = excluded.used_at`,
      )
      .run(key, JSON.stringify(result), now, now);
  }

  /** Every layer a cache entry names, so garbage collection keeps what later builds will hit. */
  layerDigests(): string[] {
    const digests = new Set<string>();
    for (const row of this.meta.db.prepare("SELECT result FROM build_cache").iterate() as Iterable<{ result: string }>) {
      for (const layer of (JSON.parse(row.result) as { layers?: Array<{ digest: string }> }).layers ?? []) digests.add(layer.digest);
    }
    return [...digests];
  }

  /** The inputs each step of an image had at its last build. */
  lastBuild(image: string): Array<{ step: number; key: string; inputs: unknown }> {
    const rows = this.meta.statement("SELECT step, key, inputs FROM build_records WHERE image = ? ORDER BY step").all(image) as Array<{
      step: number;
      key: string;
      inputs: string;
    }>;
    return rows.map((r) => ({ step: r.step, key: r.key, inputs: JSON.parse(r.inputs) as unknown }));
  }

  recordBuild(image: string, steps: Array<{ key: string; inputs: unknown }>): void {
    this.meta.tx(() => {
      this.meta.statement("DELETE FROM build_records WHERE image = ?").run(image);
      const insert = this.meta.statement("INSERT INTO build_records (image, step, key, inputs, built_at) VALUES (?, ?, ?, ?, ?)");
      const now = Date.now();
      steps.forEach((s, i) => insert.run(image, i, s.key, JSON.stringify(s.inputs), now));
    });
  }
}
