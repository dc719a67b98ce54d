// Versions: immutable, numbered per app (v1, v2, …). A version's release digest is the hash of its canonical
// content (images, code bundle, config revision, function settings), so equal content has an equal digest.
import { canonicalJson } from "../core/canonical-json.js";
import { NotFoundError } from "../core/errors.js";
import type { Digest, FunctionResources } from "../core/schemas.js";
import { sha256 } from "../oci/digest.js";
import type { AppStore, VersionRow } from "../store/app-store.js";

export interface FunctionRelease extends FunctionResources {
  image: Digest;
  /** The handler's file inside the code bundle. */
  handler: string;
}

export interface VersionContent {
  functions: Record<string, FunctionRelease>;
  code: Digest;
  config: number | null;
}

export interface VersionSource {
  gitCommit?: string;
  dirty?: boolean;
  file?: string;
}

export interface Version {
  app: string;
  number: number;
  releaseDigest: Digest;
  content: VersionContent;
  source: VersionSource;
  createdBy: string;
  createdAt: number;
}

export function releaseDigest(content: VersionContent): Digest {
  return sha256(canonicalJson(content));
}

export class Versions {
  constructor(readonly store: AppStore) {}

  /** Creates the next version of an app. Call inside the transaction that also moves a pointer, if any. */
  create(app: string, content: VersionContent, source: VersionSource, actor: string): Version {
    this.store.ensureApp(app);
    const row = this.store.insertVersion(app, releaseDigest(content), canonicalJson({ content, source }), actor);
    return fromRow(row);
  }

  get(app: string, number: number): Version {
    const row = this.store.version(app, number);
    if (!row) {
      const known = this.store.listVersions(app).map((v) => `v${v.number}`);
      throw new NotFoundError(
        `app ${app} has no version v${number}${known.length ? ` (it has ${known.length > 5 ? `${known[0]}, …, ${known.slice(-3).join(", ")}` : known.join(", ")})` : this.store.appExists(app) ? "" : `: app ${app} does not exist`}`,
        { app, version: number },
      );
    }
    return fromRow(row);
  }

  exists(app: string, number: number): boolean {
    return this.store.version(app, number) !== null;
  }

  /** Numbers of the versions of an app that run this image (or name this digest anywhere in their content). */
  naming(app: string, digest: Digest): number[] {
    return this.store.versionsNaming(app, digest);
  }

  /** The newest version whose content has this release digest: a deploy of equal content reuses it. */
  findByReleaseDigest(app: string, digest: Digest): Version | null {
    const row = this.store.versionByReleaseDigest(app, digest);
    return row ? fromRow(row) : null;
  }

  list(app: string): Version[] {
    this.requireApp(app);
    return this.store.listVersions(app).map(fromRow);
  }

  apps(): string[] {
    return this.store.listApps();
  }

  requireApp(app: string): void {
    if (!this.store.appExists(app)) {
      const apps = this.store.listApps();
      throw new NotFoundError(`app ${app} does not exist${apps.length ? ` (apps: ${apps.join(", ")})` : ""}`, { app });
    }
  }
}

function fromRow(row: VersionRow): Version {
  const parsed = JSON.parse(row.content) as { content: VersionContent; source: VersionSource };
  return {
    app: row.app,
    number: row.number,
    releaseDigest: row.releaseDigest as Digest,
    content: parsed.content,
    source: parsed.source,
    createdBy: row.createdBy,
    createdAt: row.createdAt,
  };
}
