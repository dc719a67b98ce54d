// A COPY step's layer, written straight from its file tree and the blobs the client uploaded: no directory is filled
// and walked again. The snapshot is unpacked from the layer only when a later step or a container needs it.
import { createReadStream, statSync } from "node:fs";
import { posix } from "node:path";
import { InvalidError, NotFoundError } from "../core/errors.js";
import type { FileTree, FileTreeEntry } from "../core/schemas.js";
import type { Digest } from "../oci/digest.js";
import { sortBytewise, type LayerEntry } from "../oci/layer-writer.js";

interface Node {
  entry?: FileTreeEntry;
  children: Map<string, Node>;
}

/**
 * The layer entries of a COPY of `tree` into `dest`, in the order a directory walk gives (each directory, then its
 * contents, names sorted by bytes), owned by root. Directories named by neither the tree nor `dest` get mode 0755.
 * Paths are checked first: no `..`, and nothing under a symlink the tree itself makes (a link to /etc followed by
 * `link/passwd` would write outside the snapshot when unpacked).
 */
export function copyLayerEntries(tree: FileTree, dest: string, blobPath: (digest: Digest) => string): LayerEntry[] {
  const destParts = posix.normalize(dest).split("/").filter((p) => p !== "" && p !== ".");
  if (destParts.includes("..")) throw new InvalidError(`COPY: destination ${JSON.stringify(dest)} leaves the image's root`, { dest });
  const root: Node = { children: new Map() };
  const child = (node: Node, name: string): Node => {
    let next = node.children.get(name);
    if (!next) node.children.set(name, (next = { children: new Map() }));
    return next;
  };
  let at = root;
  for (const part of destParts) at = child(at, part);

  for (const entry of tree.entries) {
    const parts = entry.path.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.length === 0 || parts.includes("..")) throw new InvalidError(`COPY: path ${JSON.stringify(entry.path)} leaves the destination`, { path: entry.path });
    let node = at;
    for (const part of parts) node = child(node, part);
    node.entry = entry;
  }

  const out: LayerEntry[] = [];
  const walk = (node: Node, path: string): void => {
    for (const name of sortBytewise([...node.children.keys()])) {
      const next = node.children.get(name)!;
      const p = path ? `${path}/${name}` : name;
      const e = next.entry;
      const owned = { path: p, uid: 0, gid: 0 };
      if (!e || e.type === "dir") {
        out.push({ ...owned, type: "dir", mode: e ? e.mode & 0o7777 : 0o755 });
        walk(next, p);
      } else if (next.children.size > 0) {
        const under = [...next.children.keys()].sort()[0]!;
        throw new InvalidError(
          `COPY: ${JSON.stringify(`${e.path}/${under}`)} would be written through the ${e.type === "symlink" ? "symlink" : "file"} ${JSON.stringify(e.path)}`,
          { path: e.path },
        );
      } else if (e.type === "symlink") {
        out.push({ ...owned, type: "symlink", mode: 0o777, target: e.target });
      } else {
        const source = blobPath(e.digest);
        const size = statSync(source, { throwIfNoEntry: false })?.size;
        if (size === undefined) throw new NotFoundError(`COPY: the content of ${e.path} (${e.digest}) was never uploaded`, { path: e.path, digest: e.digest });
        if (size !== e.size) throw new InvalidError(`COPY: ${e.path} says ${e.size} bytes but its content ${e.digest} has ${size}`, { path: e.path });
        out.push({ ...owned, type: "file", mode: e.mode & 0o7777, size, source, open: () => createReadStream(source, { highWaterMark: 1 << 20 }) });
      }
    }
  };
  walk(root, "");
  return out;
}
