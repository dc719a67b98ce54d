// Step cache keys: sha256(previous key, canonical step, digests of the step's inputs). Descriptions and flags that
// do not change the result (forceBuild) stay outside the key.
import { canonicalJson } from "../core/canonical-json.js";
import type { Step } from "../core/schemas.js";
import { sha256 } from "../oci/digest.js";

/** What a step's result depends on besides the step text: resolved base digests, build args in scope. */
export interface StepInputs {
  base?: string;
  buildArgs?: Record<string, string>;
}

/** The part of a step its result depends on: display names (a copy's source paths) and flags stay outside. */
export function canonicalStep(step: Step): Record<string, unknown> {
  if (step.op === "run") return { op: "run", shell: step.shell };
  if (step.op === "copy") return { op: "copy", tree: step.tree, dest: step.dest };
  return step as unknown as Record<string, unknown>;
}

export function stepKey(parent: string | null, step: Step, inputs: StepInputs): string {
  return sha256(canonicalJson({ parent, step: canonicalStep(step), inputs }));
}

/** One line that names a step, as build output shows it. */
export function describeStep(step: Step): string {
  switch (step.op) {
    case "base": {
      const s = step.source;
      if (s.kind === "debian") return `FROM debian:${s.suite} (debootstrap ${s.variant})`;
      if (s.kind === "scratch") return "FROM scratch";
      if (s.kind === "tarball") return `FROM tarball ${s.name}`;
      return `FROM ${s.ref}`;
    }
    case "run":
      return `RUN ${step.shell}`;
    case "copy":
      return `COPY ${step.src} ${step.as ?? step.dest}`;
    case "env":
      return `ENV ${Object.entries(step.vars).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}`;
    case "workdir":
      return `WORKDIR ${step.path}`;
    case "user":
      return `USER ${step.user}`;
    case "cmd":
      return `CMD ${JSON.stringify(step.args)}`;
    case "entrypoint":
      return `ENTRYPOINT ${JSON.stringify(step.args)}`;
    case "label":
      return `LABEL ${Object.entries(step.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}`;
    case "arg":
      return `ARG ${step.name}${step.default !== undefined ? `=${step.default}` : ""}`;
  }
}
