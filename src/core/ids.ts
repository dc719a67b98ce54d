// Identifiers: random ids for uploads, containers and invocations; name rules for apps, functions, deployments.
import { nodeCrypto } from "./builtins.js";
import { InvalidError } from "./errors.js";

/** A random id: lowercase letters and digits, safe in paths, URLs and runc container names. */
export function newId(prefix = ""): string {
  return prefix + nodeCrypto().randomBytes(12).toString("hex");
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** App, function and deployment names: lowercase letters, digits and inner dashes, at most 63 characters. */
export function checkName(kind: string, name: string): string {
  if (!NAME_RE.test(name)) {
    throw new InvalidError(
      `${kind} name ${JSON.stringify(name)} is invalid: use lowercase letters, digits and inner dashes (1-63 characters)`,
      { kind, name },
    );
  }
  return name;
}
