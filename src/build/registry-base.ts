// Base images from other registries: a reference resolved (its tag pinned to the top-level digest), the platform's
// config and layers pulled into the blob store, verified, and described as the layer stack a build starts from.
import { InvalidError } from "../core/errors.js";
import type { Digest } from "../oci/digest.js";
import type { Descriptor, ImageConfig } from "../oci/manifest.js";
import { layerMediaType, type Compression } from "../oci/media-types.js";
import { formatReference, type ImageReference } from "../oci/reference.js";
import type { RegistryClient, DocumentStore, ResolvedImage } from "../registry/client.js";
import type { LayerRef } from "../runtime/snapshots.js";

export interface RegistryBaseImage {
  /** The reference as asked for, normalised: `docker.io/library/nginx:1.25`. */
  reference: string;
  /** The reference pinned to the top-level digest: what a version records, so a moved tag never changes it. */
  pinned: string;
  /** Top-level digest (the index for multi-platform images). */
  pinnedDigest: Digest;
  /** Digest of the chosen platform's image manifest (equal to pinnedDigest for single-platform images). */
  platformDigest: Digest;
  configDigest: Digest;
  config: ImageConfig;
  /** Layers bottom first, in OCI media types, each with its diffID from the config (checked when unpacked). */
  layers: LayerRef[];
}

export interface PullBaseOptions {
  client: RegistryClient;
  blobs: DocumentStore;
  log?: (line: string) => void;
  /** Layers downloaded at once. */
  concurrency?: number;
}

/**
 * Resolves (unless given an already resolved image) and pulls a base image into the blob store. Layers already in
 * the store are not fetched again, so a second pull costs one manifest request for a tag and none for a digest.
 */
export async function pullRegistryBase(image: string | ImageReference | ResolvedImage, options: PullBaseOptions): Promise<RegistryBaseImage> {
  const { client, blobs } = options;
  const log = options.log ?? (() => undefined);
  const resolved = isResolved(image) ? image : await client.resolve(image, { store: blobs });
  const where = resolved.pinned;
  log(`base ${resolved.pinned} (${resolved.platform.os}/${resolved.platform.architecture} ${resolved.manifest.descriptor.digest})`);

  const diffIds = resolved.config.parsed.rootfs.diff_ids;
  const layers: LayerRef[] = resolved.manifest.parsed.layers.map((descriptor, i) => ({
    mediaType: layerMediaType(acceptedCompression(descriptor, `${where}: layers[${i}]`)),
    digest: descriptor.digest,
    size: descriptor.size,
    diffId: diffIds[i]!,
  }));

  await inPool(layers, options.concurrency ?? 3, async (layer) => {
    const t0 = performance.now();
    const had = await blobs.stat(layer.digest);
    await client.fetchBlob(resolved.reference, layer, blobs);
    const mb = (layer.size / 1e6).toFixed(1);
    log(had ? `layer ${layer.digest} (${mb} MB) already present` : `layer ${layer.digest} (${mb} MB) pulled in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  });

  const { registry, repository, tag } = resolved.reference;
  return {
    reference: formatReference({ registry, repository, ...(tag !== undefined ? { tag } : {}) }),
    pinned: resolved.pinned,
    pinnedDigest: resolved.digest,
    platformDigest: resolved.manifest.descriptor.digest,
    configDigest: resolved.config.descriptor.digest,
    config: resolved.config.parsed,
    layers,
  };
}

function isResolved(image: string | ImageReference | ResolvedImage): image is ResolvedImage {
  return typeof image === "object" && "manifest" in image && "config" in image;
}

const LAYER_TYPES: Record<string, Compression> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
};

/** The layer's compression; anything that is not a filesystem layer Slipway can unpack is refused by name. */
function acceptedCompression(descriptor: Descriptor & { urls?: unknown }, where: string): Compression {
  const compression = LAYER_TYPES[descriptor.mediaType];
  if (compression === undefined) {
    throw new InvalidError(`${where} has media type ${JSON.stringify(descriptor.mediaType)}, which is not a filesystem layer Slipway can unpack`, {
      where,
      mediaType: descriptor.mediaType,
    });
  }
  if (Array.isArray(descriptor.urls) && descriptor.urls.length > 0) {
    throw new InvalidError(`${where} is a foreign layer (fetched from ${JSON.stringify(descriptor.urls[0])}, not the registry); Slipway does not pull those`, {
      where,
    });
  }
  return compression;
}

/** Runs `work` on the items, `width` at a time; after a failure starts nothing new, waits for the rest, rethrows. */
async function inPool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await work(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(width, items.length) }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
}
