// Garbage collection of a data directory (`slipway gc`): the registry's collector, told what must stay besides
// tags: every version's images, code bundle and code files, and every layer the build cache names (so that
// collecting never turns a cached step into a rebuild).
import { codeBundleSchema, type Digest } from "../core/schemas.js";
import { runGc, type GcOptions, type GcReport } from "../registry/gc.js";
import type { FsBlobStore } from "../store/blob-store.js";
import { AppStore } from "../store/app-store.js";
import { CacheIndex } from "../store/cache-index.js";
import type { MetadataStore } from "../store/metadata-store.js";

export async function gcRoots(meta: MetadataStore, blobs: FsBlobStore): Promise<Digest[]> {
  const roots = new Set<Digest>();
  for (const raw of new AppStore(meta).allVersionContents()) {
    const { content } = JSON.parse(raw) as { content: { functions: Record<string, { image: Digest }>; code: Digest } };
    for (const fn of Object.values(content.functions)) roots.add(fn.image);
    roots.add(content.code);
    const bytes = await blobs.readBuffer(content.code).catch(() => null);
    const bundle = bytes ? codeBundleSchema.safeParse(JSON.parse(bytes.toString("utf8"))) : null;
    if (bundle?.success) for (const file of Object.values(bundle.data.files)) roots.add(file);
  }
  for (const layer of new CacheIndex(meta).layerDigests()) roots.add(layer as Digest);
  return [...roots];
}

export type { GcReport };

/** One collection over a data directory, safe while a server uses it. */
export function collectGarbage(options: GcOptions & { dataDir: string }): Promise<GcReport> {
  return runGc({ ...options, extraRoots: gcRoots });
}
