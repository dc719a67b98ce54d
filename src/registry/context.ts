// What the registry's handlers depend on: the blob store (only the capabilities they use), the repository index,
// an auth provider and the limits, gathered once by the plugin.
import type { BlobIngest, BlobRead, BlobStore } from "../store/blob-store.js";
import type { Digest } from "../oci/digest.js";
import type { RepositoryIndex } from "../store/repository-index.js";
import type { RegistryAuth } from "./access.js";
import type { UploadSessions } from "./uploads.js";

export type RegistryBlobStore = Pick<BlobRead, "stat" | "openFile" | "readBuffer"> & Pick<BlobIngest, "writer" | "put"> & Pick<BlobStore, "listWriters">;

export interface RegistryLimits {
  /** Largest manifest accepted (the spec asks registries to take at least 4 MiB); larger is 413. */
  manifestBytes: number;
  /** Most entries one page of tags, catalog or referrers holds; a larger `n` is cut to this, with a Link. */
  pageSize: number;
  /** Largest blob body accepted in one request (declared Content-Length above it is 413). */
  blobBytes: number;
}

export const DEFAULT_LIMITS: RegistryLimits = {
  manifestBytes: 4 * 1024 * 1024,
  pageSize: 1000,
  blobBytes: 64 * 1024 ** 3,
};

export interface RegistryDeps {
  blobs: RegistryBlobStore;
  repos: RepositoryIndex;
  auth: RegistryAuth;
  limits?: Partial<RegistryLimits>;
  /** Manifest, tag and blob deletes (on by default; off answers 405 UNSUPPORTED as the spec allows). */
  deletes?: boolean;
  /** Sessions to use; the plugin makes its own (and closes it with the server) when not given. */
  uploads?: UploadSessions;
  /** Who still uses a manifest (e.g. "podcast v3"), so that a DELETE of it is refused; null when nothing does. */
  manifestInUse?: (repo: string, digest: Digest) => string | null;
}

export interface RegistryContext {
  blobs: RegistryBlobStore;
  repos: RepositoryIndex;
  auth: RegistryAuth;
  uploads: UploadSessions;
  limits: RegistryLimits;
  deletes: boolean;
  /** The URL prefix the plugin is registered at ("/v2"), for Location and Link headers. */
  prefix: string;
  manifestInUse?: (repo: string, digest: Digest) => string | null;
}
