// The registry's URL space: which endpoint a path under /v2 names, with its repository name, digest, tag or upload
// id checked against the spec's grammar, and the Location URLs the registry hands back.
//
//   /                                   base (API version check)
//   /_catalog                           repository list
//   /token                              token endpoint (when an auth provider offers one)
//   /<name>/blobs/<digest>              blob GET / HEAD / DELETE
//   /<name>/blobs/uploads/              POST: start an upload (or monolithic ?digest=, or ?mount=&from=)
//   /<name>/blobs/uploads/<id>          upload session GET / PATCH / PUT / DELETE
//   /<name>/manifests/<tag-or-digest>   manifest GET / HEAD / PUT / DELETE
//   /<name>/tags/list                   tags, paged with n / last
//   /<name>/referrers/<digest>          referrers index, filtered by artifactType
//
// A repository name may itself contain "blobs" or "manifests" components; the endpoint is always the path's suffix.
import type { Digest } from "../oci/digest.js";
import { RegistryError } from "./errors.js";

export type Route =
  | { kind: "base" }
  | { kind: "catalog" }
  | { kind: "token" }
  | { kind: "blob"; name: string; digest: string }
  | { kind: "uploads"; name: string }
  | { kind: "upload"; name: string; id: string }
  | { kind: "manifest"; name: string; reference: string }
  | { kind: "tags"; name: string }
  | { kind: "referrers"; name: string; digest: string };

const ENDPOINT_RE =
  /^\/(?<name>.+)\/(?:blobs\/uploads\/?(?<upload>[^/]*)|blobs\/(?<blob>[^/]+)|manifests\/(?<manifest>[^/]+)|(?<tags>tags\/list)|referrers\/(?<referrers>[^/]+))$/;

/** Maps a path (below the registry's prefix, query removed) to its endpoint; null when it names none. */
export function matchRoute(path: string): Route | null {
  if (path === "/" || path === "") return { kind: "base" };
  if (path === "/_catalog") return { kind: "catalog" };
  if (path === "/token") return { kind: "token" };
  const g = ENDPOINT_RE.exec(path)?.groups;
  if (!g) return null;
  const name = g.name!;
  if (g.upload !== undefined) return g.upload === "" ? { kind: "uploads", name } : { kind: "upload", name, id: g.upload };
  if (g.blob !== undefined) return { kind: "blob", name, digest: g.blob };
  if (g.manifest !== undefined) return { kind: "manifest", name, reference: g.manifest };
  if (g.tags !== undefined) return { kind: "tags", name };
  return { kind: "referrers", name, digest: g.referrers! };
}

const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

/** A repository name as the spec allows it; the error names the rule it broke. */
export function checkRepositoryName(name: string): string {
  if (name.length > MAX_NAME_LENGTH) {
    throw new RegistryError("NAME_INVALID", `repository name is ${name.length} characters; the limit is ${MAX_NAME_LENGTH}`, { detail: { name } });
  }
  if (!NAME_RE.test(name)) {
    throw new RegistryError(
      "NAME_INVALID",
      `invalid repository name ${JSON.stringify(name)}: use lowercase components of letters and digits, separated by . _ __ or dashes, joined by /`,
      { detail: { name } },
    );
  }
  return name;
}

export function isTag(value: string): boolean {
  return TAG_RE.test(value);
}

export function checkTag(tag: string): string {
  if (!isTag(tag)) {
    throw new RegistryError("MANIFEST_INVALID", `invalid tag ${JSON.stringify(tag)}: at most 128 of letters, digits, _ . - and not starting with . or -`, {
      detail: { tag },
    });
  }
  return tag;
}

const DIGEST_SHAPE_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

/**
 * A digest the registry can verify. An unknown algorithm, a wrong length or stray characters is DIGEST_INVALID
 * (the spec's answer to "the client provided digest is invalid or uses an unsupported algorithm").
 */
export function checkDigest(value: string, what = "digest"): Digest {
  const colon = value.indexOf(":");
  const algorithm = colon > 0 ? value.slice(0, colon) : "";
  const hex = value.slice(colon + 1);
  if (!DIGEST_SHAPE_RE.test(value)) {
    throw new RegistryError("DIGEST_INVALID", `${what} ${JSON.stringify(value)} is not a digest (algorithm:hex)`, { detail: { digest: value } });
  }
  const length = HEX_LENGTH[algorithm];
  if (length === undefined) {
    throw new RegistryError("DIGEST_INVALID", `${what} ${JSON.stringify(value)} uses unsupported algorithm ${JSON.stringify(algorithm)}; use sha256 or sha512`, {
      detail: { digest: value },
    });
  }
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError("DIGEST_INVALID", `${what} ${JSON.stringify(value)} is malformed: ${algorithm} needs ${length} lowercase hex digits`, {
      detail: { digest: value },
    });
  }
  return value as Digest;
}

/** Whether a manifest reference is a digest (contains ':') rather than a tag. */
export function isDigestReference(reference: string): boolean {
  return reference.includes(":");
}

export function uploadLocation(prefix: string, name: string, id: string): string {
  return `${prefix}/${name}/blobs/uploads/${id}`;
}

export function blobLocation(prefix: string, name: string, digest: Digest): string {
  return `${prefix}/${name}/blobs/${digest}`;
}

export function manifestLocation(prefix: string, name: string, digest: Digest): string {
  return `${prefix}/${name}/manifests/${digest}`;
}
