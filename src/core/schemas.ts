// The wire's and the image spec's shapes, as zod schemas. Everything that crosses a process boundary is parsed
// with one of these, so a malformed input fails at the edge with a message that names the field.
import { z } from "zod";
import { InvalidError } from "./errors.js";

/** A content digest, `algorithm:hex`. */
export type Digest = `${"sha256" | "sha512"}:${string}`;

export const digestSchema = z
  .string()
  .regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/, "expected a digest such as sha256:<64 hex digits>")
  .transform((s) => s as Digest);

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment variable names are letters, digits and _");

export const baseSourceSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("scratch") }),
  z.object({
    kind: z.literal("debian"),
    suite: z.string().regex(/^[a-z][a-z0-9-]*$/, "a Debian suite name such as bookworm"),
    variant: z.enum(["minbase"]).default("minbase"),
    mirror: z.string().url().default("http://deb.debian.org/debian"),
  }),
  z.object({ kind: z.literal("tarball"), digest: digestSchema, name: z.string() }),
  z.object({ kind: z.literal("registry"), ref: z.string().min(1).max(512) }),
]);
export type BaseSource = z.infer<typeof baseSourceSchema>;

export const stepSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("base"), source: baseSourceSchema }),
  z.object({
    op: z.literal("run"),
    shell: z.string().min(1),
    forceBuild: z.boolean().optional(),
  }),
  z.object({
    op: z.literal("copy"),
    /** As the user wrote them, for build output only. */
    src: z.string(),
    as: z.string().optional(),
    tree: digestSchema,
    /** The directory the tree's entries land in. */
    dest: z.string().min(1),
  }),
  z.object({ op: z.literal("env"), vars: z.record(envName, z.string()) }),
  z.object({ op: z.literal("workdir"), path: z.string().startsWith("/", "workdir must be an absolute path") }),
  z.object({ op: z.literal("user"), user: z.string().min(1) }),
  z.object({ op: z.literal("cmd"), args: z.array(z.string()) }),
  z.object({ op: z.literal("entrypoint"), args: z.array(z.string()) }),
  z.object({ op: z.literal("label"), labels: z.record(z.string(), z.string()) }),
  z.object({ op: z.literal("arg"), name: envName, default: z.string().optional() }),
]);
export type Step = z.infer<typeof stepSchema>;

export const imageSpecSchema = z
  .object({
    version: z.literal(1),
    steps: z.array(stepSchema).min(1),
    buildArgs: z.record(envName, z.string()).default({}),
  })
  .refine((s) => s.steps[0]?.op === "base", { message: "an image spec starts with a base step", path: ["steps", 0] })
  .refine((s) => s.steps.slice(1).every((st) => st.op !== "base"), {
    message: "only the first step may be a base",
    path: ["steps"],
  });
export type ImageSpec = z.infer<typeof imageSpecSchema>;

/** A file tree sent for a COPY step: every entry's path, type, mode and content digest or link target. */
const treePath = z
  .string()
  .min(1)
  .refine((p) => !p.includes("\0"), "a path may not contain a NUL byte")
  .refine((p) => Buffer.byteLength(p) <= 4096, "a path may be at most 4096 bytes")
  .refine((p) => p.split("/").every((part) => Buffer.byteLength(part) <= 255), "a path component may be at most 255 bytes");
const treeMode = z.number().int().min(0).max(0o7777);
export const fileTreeEntrySchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("file"), path: treePath, mode: treeMode, size: z.number().int().nonnegative(), digest: digestSchema }),
  z.object({ type: z.literal("dir"), path: treePath, mode: treeMode }),
  z.object({
    type: z.literal("symlink"),
    path: treePath,
    mode: treeMode,
    target: z
      .string()
      .refine((t) => !t.includes("\0"), "a link target may not contain a NUL byte")
      .refine((t) => Buffer.byteLength(t) <= 4096, "a link target may be at most 4096 bytes"),
  }),
]);
export const fileTreeSchema = z.object({ entries: z.array(fileTreeEntrySchema) });
export type FileTree = z.infer<typeof fileTreeSchema>;
export type FileTreeEntry = z.infer<typeof fileTreeEntrySchema>;

/** A code bundle: content-addressed files, and which file holds each function's handler. */
export const codeBundleSchema = z.object({
  files: z.record(z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/), digestSchema),
  handlers: z.record(z.string(), z.string()),
});
export type CodeBundle = z.infer<typeof codeBundleSchema>;

export const functionSettingsSchema = z.object({
  image: z.string(),
  handler: z.string(),
  cpu: z.number().positive().max(64).default(1),
  memoryMiB: z.number().int().min(16).max(1024 * 1024).default(512),
  timeoutMs: z.number().int().min(1).max(24 * 3600 * 1000).default(60_000),
  minContainers: z.number().int().min(0).max(100).default(0),
  maxContainers: z.number().int().min(1).max(100).default(4),
  idleTimeoutMs: z.number().int().min(0).default(300_000),
});
export type FunctionSettings = z.infer<typeof functionSettingsSchema>;
/** How a function's containers run: resources, timeout, and how many stay warm. */
export type FunctionResources = Omit<FunctionSettings, "image" | "handler">;

export const deployRequestSchema = z.object({
  app: z.string(),
  deployment: z.string().default("main"),
  promote: z.boolean().default(true),
  images: z.record(z.string(), imageSpecSchema),
  functions: z.record(z.string(), functionSettingsSchema),
  code: digestSchema,
  source: z.object({ gitCommit: z.string().optional(), dirty: z.boolean().optional(), file: z.string().optional() }).default({}),
  forceBuild: z.boolean().default(false),
  /** Credentials for private base-image registries, by host. Used for pulls only; never stored. */
  registryAuth: z.record(z.string(), z.object({ username: z.string(), password: z.string() })).default({}),
});
export type DeployRequest = z.infer<typeof deployRequestSchema>;

/** Parses with a schema and turns zod's issues into one InvalidError naming every bad field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`);
  throw new InvalidError(`invalid ${what}: ${problems.join("; ")}`, { what, problems });
}
