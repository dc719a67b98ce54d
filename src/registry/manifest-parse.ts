// Reads a pushed manifest for what the registry must check and record: its media type, the blobs and child
// manifests it names, its subject and artifact type. The bytes themselves are stored untouched; this never
// re-serialises anything.
import type { Digest } from "../oci/digest.js";
import { INDEX_MEDIA_TYPES, MediaType } from "../oci/media-types.js";
import { RegistryError } from "./errors.js";
import { checkDigest } from "./paths.js";

export interface BlobRef {
  digest: Digest;
  size: number;
}

export interface ParsedManifest {
  mediaType: string;
  /** Config and layers: blobs the repository must hold. */
  blobs: BlobRef[];
  /** An index's entries: manifests the repository must hold. */
  children: BlobRef[];
  subject: Digest | null;
  /** What the referrers API reports: the manifest's artifactType, else (for an image manifest) its config's type. */
  artifactType: string | null;
  annotations: Record<string, string> | null;
}

const IMAGE_MEDIA_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];
/** Layers that registries never hold (Windows base layers and the like): named by URL, not pushed. */
const FOREIGN_LAYER_TYPES: readonly string[] = [
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError("MANIFEST_INVALID", message, { detail });
}

/** The media type from a Content-Type header, without parameters. */
export function bareMediaType(contentType: string | undefined): string | undefined {
  const bare = contentType?.split(";")[0]?.trim().toLowerCase();
  return bare ? bare : undefined;
}

export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw invalid(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw invalid("manifest must be a JSON object");
  if (doc.schemaVersion !== 2) throw invalid(`manifest schemaVersion is ${JSON.stringify(doc.schemaVersion)}; only schema 2 is supported`);
  const declared = bareMediaType(contentType);
  const field = doc.mediaType;
  if (field !== undefined && typeof field !== "string") throw invalid("manifest mediaType must be a string");
  // The spec has clients set Content-Type to the manifest's mediaType; a disagreement means one of them is wrong.
  if (field !== undefined && declared !== undefined && declared !== field) {
    throw invalid(`Content-Type ${declared} does not match the manifest's mediaType ${field}`, { contentType: declared, mediaType: field });
  }
  const mediaType = field ?? declared;
  if (mediaType === undefined) throw invalid("manifest has no mediaType and the request no Content-Type");
  const annotations = stringMap(doc.annotations, "annotations");
  const subject = doc.subject === undefined ? null : descriptor(doc.subject, "subject").digest;
  const artifactType = optionalString(doc.artifactType, "artifactType");

  if (IMAGE_MEDIA_TYPES.includes(mediaType)) {
    if ("manifests" in doc) throw invalid(`an image manifest (${mediaType}) has no manifests field`);
    const config = descriptor(doc.config, "config");
    if (!Array.isArray(doc.layers)) throw invalid("manifest layers must be an array");
    const layers = doc.layers.map((l, i) => ({ ...descriptor(l, `layers[${i}]`), foreign: isForeign(l) }));
    return {
      mediaType,
      blobs: [config, ...layers.filter((l) => !l.foreign)].map(({ digest, size }) => ({ digest, size })),
      children: [],
      subject,
      artifactType: artifactType ?? config.mediaType,
      annotations,
    };
  }
  if (INDEX_MEDIA_TYPES.includes(mediaType)) {
    if ("layers" in doc || "config" in doc) throw invalid(`an index (${mediaType}) has no config or layers`);
    if (!Array.isArray(doc.manifests)) throw invalid("index manifests must be an array");
    const children = doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
    return { mediaType, blobs: [], children: children.map(({ digest, size }) => ({ digest, size })), subject, artifactType, annotations };
  }
  throw invalid(`unsupported manifest media type ${JSON.stringify(mediaType)}`, { mediaType });
}

function descriptor(value: unknown, where: string): { mediaType: string; digest: Digest; size: number } {
  if (!isObject(value)) throw invalid(`${where} must be a descriptor object`);
  if (typeof value.mediaType !== "string" || value.mediaType === "") throw invalid(`${where}.mediaType must be a non-empty string`);
  if (typeof value.digest !== "string") throw invalid(`${where}.digest must be a string`);
  let digest: Digest;
  try {
    digest = checkDigest(value.digest, `${where}.digest`);
  } catch (err) {
    throw invalid((err as Error).message, { where });
  }
  if (typeof value.size !== "number" || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw invalid(`${where}.size must be a non-negative integer`);
  }
  return { mediaType: value.mediaType, digest, size: value.size };
}

function isForeign(layer: unknown): boolean {
  return isObject(layer) && FOREIGN_LAYER_TYPES.includes(String(layer.mediaType)) && Array.isArray(layer.urls) && layer.urls.length > 0;
}

function optionalString(value: unknown, where: string): string | null {
  if (value === undefined) return null;
  if (typeof value !== "string") throw invalid(`${where} must be a string`);
  return value === "" ? null : value;
}

function stringMap(value: unknown, where: string): Record<string, string> | null {
  if (value === undefined) return null;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) throw invalid(`${where} must map strings to strings`);
  return value as Record<string, string>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
