// Image references (`host/repository:tag@digest`): parsing with the Docker rules for short names, so that `nginx`,
// `docker.io/nginx` and `index.docker.io/library/nginx` all name `docker.io/library/nginx:latest`.
import { InvalidError } from "../core/errors.js";
import { parseDigest, type Digest } from "./digest.js";

export interface ImageReference {
  /** Registry host, lowercase, with its port if any: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository path inside the registry: `library/nginx`. */
  readonly repository: string;
  /** Absent only when the reference has a digest and no tag. */
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DOCKER_HUB = "docker.io";
const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io"]);
const DEFAULT_TAG = "latest";
/** distribution's limit on `host/repository`. */
const MAX_NAME_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST_LABEL = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = new RegExp(`^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?$`);

/**
 * Parses and normalises an image reference. The first path part is a registry host only when it contains `.` or `:`
 * or is `localhost`; otherwise the registry is Docker Hub, where one-part names live under `library/`. `:latest` is
 * implied only when there is neither a tag nor a digest.
 */
export function parseReference(input: string): ImageReference {
  const fail = (problem: string, details: Record<string, unknown> = {}): never => {
    throw new InvalidError(`image reference ${JSON.stringify(input)} is invalid: ${problem}`, { reference: input, ...details });
  };
  if (input === "") fail("it is empty");
  if (/\s/.test(input)) fail("it contains whitespace");

  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const digestText = rest.slice(at + 1);
    try {
      digest = parseDigest(digestText).digest;
    } catch (err) {
      fail(`the digest ${JSON.stringify(digestText)} is malformed (${(err as Error).message})`, { digest: digestText });
    }
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      fail(`the tag ${JSON.stringify(tag)} is invalid (letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-')`, { tag });
    }
  }

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      if (!HOST.test(first)) fail(`the registry host ${JSON.stringify(first)} is not a valid host[:port]`, { registry: first });
      registry = normalizeRegistryHost(first);
      repository = rest.slice(slash + 1);
    }
  }
  if (repository === "") fail("the repository name is empty");
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;

  const components = repository.split("/");
  const bad = components.find((c) => !PATH_COMPONENT.test(c));
  if (bad !== undefined) {
    if (components.every((c) => PATH_COMPONENT.test(c.toLowerCase()))) {
      fail(`the repository name ${JSON.stringify(repository)} must be lowercase`, { repository });
    }
    fail(
      `the repository name ${JSON.stringify(repository)} has an invalid part ${JSON.stringify(bad)} ` +
        "(parts are lowercase letters and digits, separated by '.', '_', '__' or dashes, joined by '/')",
      { repository },
    );
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) fail(`the name is longer than ${MAX_NAME_LENGTH} characters`);

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Lowercases a registry host and folds Docker Hub's aliases into `docker.io` (also used for credential lookups). */
export function normalizeRegistryHost(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

/** The canonical text of a reference: `docker.io/library/nginx:latest`, `host/repo:tag@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** The same reference pinned to a digest (the tag stays as a note for people; pulls use the digest). */
export function pinReference(ref: ImageReference, digest: Digest): ImageReference {
  return { ...ref, digest };
}
