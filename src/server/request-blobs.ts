// The blobs a build or deploy request names (code bundle and its files, base tarballs, COPY trees and their files)
// that the store lacks. Checked before anything starts, so that a client can send its request and upload only what
// the server names: an unchanged deploy is then one round trip.
import { NotFoundError } from "../core/errors.js";
import { codeBundleSchema, type DeployRequest, type FileTree } from "../core/schemas.js";
import type { Digest } from "../oci/digest.js";
import type { FsBlobStore } from "../store/blob-store.js";

/** Reads a stored COPY file tree (the builder's, which keeps recent ones parsed); throws when it cannot. */
export type TreeLoader = (digest: Digest) => Promise<FileTree>;

export async function missingRequestBlobs(req: DeployRequest, blobs: FsBlobStore, loadTree: TreeLoader): Promise<Digest[]> {
  const missing = new Set<Digest>();
  const need = (d: Digest): boolean => {
    if (blobs.hasSync(d)) return true;
    missing.add(d);
    return false;
  };
  // A listing blob (bundle or tree) that is present but unreadable as one is left to the build, which names it.
  const listed = async (d: Digest, parse: (json: unknown) => Digest[]): Promise<void> => {
    if (!need(d)) return;
    let names: Digest[];
    try {
      names = parse(JSON.parse((await blobs.readBuffer(d)).toString("utf8")));
    } catch {
      return;
    }
    for (const n of names) need(n);
  };
  await listed(req.code, (json) => Object.values(codeBundleSchema.parse(json).files) as Digest[]);
  for (const spec of Object.values(req.images)) {
    for (const step of spec.steps) {
      if (step.op === "base" && step.source.kind === "tarball") need(step.source.digest as Digest);
      if (step.op === "copy" && need(step.tree as Digest)) {
        let tree: FileTree;
        try {
          tree = await loadTree(step.tree as Digest);
        } catch {
          continue;
        }
        for (const e of tree.entries) if (e.type === "file") need(e.digest as Digest);
      }
    }
  }
  return [...missing];
}

/** Refuses a request that names blobs the store lacks, listing them (`details.missing`) for the client to upload. */
export async function requireRequestBlobs(req: DeployRequest, blobs: FsBlobStore, loadTree: TreeLoader): Promise<void> {
  const missing = await missingRequestBlobs(req, blobs, loadTree);
  if (missing.length > 0) {
    throw new NotFoundError(`the request names ${missing.length} blob(s) that were never uploaded, e.g. ${missing[0]}; upload them and send it again`, {
      missing,
    });
  }
}
