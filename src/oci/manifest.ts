// OCI descriptors, image configs, manifests and indexes: their types, and builders that serialise them.
import type { Digest } from "./digest.js";
import { MediaType } from "./media-types.js";

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
}

/** The runtime part of an image config (`config` in the OCI image config). */
export interface RuntimeConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
}

export interface HistoryEntry {
  created_by: string;
  empty_layer?: boolean;
  comment?: string;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  config: RuntimeConfig;
  rootfs: { type: "layers"; diff_ids: Digest[] };
  history: HistoryEntry[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export function emptyImageConfig(): ImageConfig {
  return {
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
}

/** Serialises an image manifest. Key order is fixed so the same image always has the same digest. */
export function serializeManifest(config: Descriptor, layers: Descriptor[], annotations?: Record<string, string>): Buffer {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config,
    layers,
    ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
  };
  return Buffer.from(JSON.stringify(manifest));
}

export function serializeConfig(config: ImageConfig): Buffer {
  return Buffer.from(JSON.stringify(config));
}

/** Reads `KEY=VALUE` env lists as a map, and writes them back in their original order with updates appended. */
export function envToMap(env: readonly string[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of env ?? []) {
    const eq = entry.indexOf("=");
    if (eq > 0) map.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return map;
}

export function mapToEnv(map: ReadonlyMap<string, string>): string[] {
  return [...map].map(([k, v]) => `${k}=${v}`);
}
