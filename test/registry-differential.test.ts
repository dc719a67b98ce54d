// Differential test: the same HTTP exchanges sent to Slipway and to Debian's docker-registry (distribution 2.8.2),
// comparing the status, the error code and the headers clients rely on (Location, Range, Docker-Content-Digest,
// Docker-Upload-UUID, Content-Type, Content-Length, Link). Where Slipway answers differently on purpose, the step
// lists both answers and the spec's reason; everything else must match.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType } from "../src/oci/media-types.js";
import { startDockerRegistry, type StartedRegistry } from "./helpers/docker-registry.js";
import { announceSkip, toolSkipReason } from "./helpers/env.js";
import { content, imageIndex, imageManifest, sampleImage } from "./registry-kit.js";
import { listen, openRegistry, type TestRegistry } from "./registry-support.js";

const skip = toolSkipReason("docker-registry");
announceSkip("registry differential test", skip);

interface Req {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** What a client can observe and rely on, normalised (hosts, upload ids and distribution's _state removed). */
interface Observed {
  status: number;
  code?: string;
  headers: Record<string, string | undefined>;
}

const COMPARED = ["location", "range", "docker-content-digest", "docker-upload-uuid", "content-type", "content-length", "link", "oci-subject"];

interface Step {
  name: string;
  request: (state: State) => Req;
  /** Remember something from the answer for later steps. */
  after?: (state: State, res: Response) => void;
  /** Headers to leave out of the comparison for this step (with the reason in the comment where used). */
  ignore?: string[];
  /** An intended difference: what each side answers, and why (the spec's words). */
  differs?: { reason: string; slipway: Partial<Observed>; distribution: Partial<Observed> };
}

interface State {
  upload?: string;
  upload2?: string;
  blob?: string;
}

const hello = content("helloworld");
const mono = content("monolithic blob");
const image = sampleImage("differential", 2);
const indexChild = sampleImage("differential-child", 1);
const index = imageIndex([indexChild.manifest]);
const missingChildIndex = imageIndex([sampleImage("never pushed", 1).manifest]);
const empty = content("{}");
const referrer = imageManifest(empty, [], { subject: image.manifest, artifactType: "application/vnd.example.sig" });
const octet = { "content-type": "application/octet-stream" };
const oci = { "content-type": MediaType.ociManifest };

const STEPS: Step[] = [
  { name: "API version check", request: () => ({ method: "GET", path: "/v2/" }), ignore: ["content-type", "content-length"] },
  {
    name: "start an upload",
    request: () => ({ method: "POST", path: "/v2/diff/app/blobs/uploads/" }),
    after: (s, res) => (s.upload = res.headers.get("location")!),
  },
  { name: "first chunk", request: (s) => ({ method: "PATCH", path: s.upload!, headers: { ...octet, "content-range": "0-4" }, body: "hello" }), after: (s, res) => (s.upload = res.headers.get("location")!) },
  { name: "start a second upload", request: () => ({ method: "POST", path: "/v2/diff/app/blobs/uploads/" }), after: (s, res) => (s.upload2 = res.headers.get("location")!) },
  { name: "its first chunk", request: (s) => ({ method: "PATCH", path: s.upload2!, headers: { ...octet, "content-range": "0-4" }, body: "hello" }), after: (s, res) => (s.upload2 = res.headers.get("location")!) },
  {
    name: "a chunk with a gap",
    request: (s) => ({ method: "PATCH", path: s.upload2!, headers: { ...octet, "content-range": "10-14" }, body: "xxxxx" }),
    ignore: ["content-type", "content-length", "location", "docker-upload-uuid"],
    differs: {
      reason:
        "the spec (end-5) MUST answer 416 to an out-of-order chunk, with error codes from its closed list; Slipway answers BLOB_UPLOAD_INVALID and the Range the client resumes from, and keeps the session as it was. Distribution 2.8 appends the chunk anyway (answering 202, or 416 without a body, from run to run), so its answer is not pinned here",
      slipway: { status: 416, code: "BLOB_UPLOAD_INVALID", headers: { range: "0-4" } },
      distribution: {},
    },
  },
  { name: "upload status", request: (s) => ({ method: "GET", path: s.upload! }), ignore: ["content-length"] },
  {
    name: "finish with the last chunk",
    request: (s) => ({ method: "PUT", path: `${s.upload!}${s.upload!.includes("?") ? "&" : "?"}digest=${hello.digest}`, headers: { ...octet, "content-range": "5-9" }, body: "world" }),
  },
  { name: "HEAD the blob", request: () => ({ method: "HEAD", path: `/v2/diff/app/blobs/${hello.digest}` }) },
  { name: "a byte range of the blob", request: () => ({ method: "GET", path: `/v2/diff/app/blobs/${hello.digest}`, headers: { range: "bytes=2-5" } }), ignore: ["content-type"] },
  {
    name: "monolithic POST ?digest=",
    request: () => ({ method: "POST", path: `/v2/diff/app/blobs/uploads/?digest=${mono.digest}`, headers: octet, body: mono.bytes }),
    ignore: ["location", "range", "docker-upload-uuid", "docker-content-digest"],
    differs: {
      reason: 'the spec\'s "Single POST": registries MAY take the blob in one request (201); those that do not SHOULD answer 202 and a session, as distribution 2.8 does',
      slipway: { status: 201 },
      distribution: { status: 202 },
    },
  },
  { name: "mount from another repository", request: () => ({ method: "POST", path: `/v2/diff/copy/blobs/uploads/?mount=${hello.digest}&from=diff/app` }) },
  {
    name: "mount of a blob the source lacks starts an upload",
    request: () => ({ method: "POST", path: `/v2/diff/copy/blobs/uploads/?mount=${content("absent").digest}&from=diff/app` }),
    after: (s, res) => (s.upload2 = res.headers.get("location")!),
  },
  { name: "cancel that upload", request: (s) => ({ method: "DELETE", path: s.upload2! }), ignore: ["content-length", "docker-upload-uuid"] },
  { name: "the cancelled upload is unknown", request: (s) => ({ method: "GET", path: s.upload2! }), ignore: ["content-type", "content-length"] },
  ...[image.config, ...image.layers, indexChild.config, ...indexChild.layers, empty].flatMap((blob, i): Step[] => [
    { name: `start upload of blob ${i}`, request: () => ({ method: "POST", path: "/v2/diff/app/blobs/uploads/" }), after: (s, res) => (s.blob = res.headers.get("location")!) },
    {
      name: `PUT blob ${i} whole`,
      request: (s) => ({ method: "PUT", path: `${s.blob!}${s.blob!.includes("?") ? "&" : "?"}digest=${blob.digest}`, headers: octet, body: blob.bytes }),
    },
  ]),
  { name: "PUT a manifest by tag", request: () => ({ method: "PUT", path: "/v2/diff/app/manifests/v1", headers: oci, body: image.manifest.bytes }) },
  { name: "GET it by tag", request: () => ({ method: "GET", path: "/v2/diff/app/manifests/v1", headers: { accept: MediaType.ociManifest } }) },
  { name: "HEAD it by digest", request: () => ({ method: "HEAD", path: `/v2/diff/app/manifests/${image.manifest.digest}`, headers: { accept: MediaType.ociManifest } }) },
  {
    name: "GET an OCI manifest with a Docker-only Accept",
    request: () => ({ method: "GET", path: "/v2/diff/app/manifests/v1", headers: { accept: MediaType.dockerManifest } }),
    ignore: ["content-type", "content-length", "docker-content-digest"],
    differs: {
      reason: "the spec has the registry serve the manifest as pushed (\"MUST provide the expected manifest\"); distribution 2.8 answers 404 when Accept lacks the OCI type",
      slipway: { status: 200 },
      distribution: { status: 404, code: "MANIFEST_UNKNOWN" },
    },
  },
  { name: "PUT a child manifest by digest", request: () => ({ method: "PUT", path: `/v2/diff/app/manifests/${indexChild.manifest.digest}`, headers: oci, body: indexChild.manifest.bytes }) },
  { name: "PUT an index naming it", request: () => ({ method: "PUT", path: "/v2/diff/app/manifests/multi", headers: { "content-type": MediaType.ociIndex }, body: index.bytes }) },
  {
    name: "PUT an index naming a missing child",
    request: () => ({ method: "PUT", path: "/v2/diff/app/manifests/broken", headers: { "content-type": MediaType.ociIndex }, body: missingChildIndex.bytes }),
    ignore: ["content-type", "content-length"],
  },
  {
    name: "PUT a manifest naming a blob the repository lacks",
    request: () => ({ method: "PUT", path: "/v2/diff/other/manifests/v1", headers: oci, body: image.manifest.bytes }),
    ignore: ["content-type", "content-length"],
  },
  {
    name: "PUT a manifest under the wrong digest",
    request: () => ({ method: "PUT", path: `/v2/diff/app/manifests/${hello.digest}`, headers: oci, body: image.manifest.bytes }),
    ignore: ["content-type", "content-length"],
  },
  {
    name: "PUT malformed JSON",
    request: () => ({ method: "PUT", path: "/v2/diff/app/manifests/bad", headers: oci, body: "{not json" }),
    ignore: ["content-type", "content-length"],
  },
  {
    name: "PUT a manifest whose Content-Type and mediaType disagree",
    request: () => ({ method: "PUT", path: "/v2/diff/app/manifests/mixed", headers: { "content-type": MediaType.dockerManifest }, body: image.manifest.bytes }),
    ignore: ["content-type", "content-length"],
  },
  {
    name: "PUT a referrer (a manifest with a subject)",
    request: () => ({ method: "PUT", path: `/v2/diff/app/manifests/${referrer.digest}`, headers: oci, body: referrer.bytes }),
    differs: {
      reason: "distribution-spec 1.1: a registry supporting the referrers API MUST answer OCI-Subject; distribution 2.8 predates it",
      slipway: { status: 201, headers: { "oci-subject": image.manifest.digest } },
      distribution: { status: 201, headers: { "oci-subject": undefined } },
    },
  },
  {
    name: "the referrers API",
    request: () => ({ method: "GET", path: `/v2/diff/app/referrers/${image.manifest.digest}` }),
    ignore: ["content-type", "content-length"],
    differs: {
      reason: "distribution-spec 1.1 end-12a (\"MUST NOT return a 404 Not Found to a referrers API request\"); distribution 2.8 has no referrers API",
      slipway: { status: 200 },
      distribution: { status: 404 },
    },
  },
  ...["/v2/diff/app/tags/list?n=1", "/v2/diff/app/tags/list?n=1&last=mixed"].map(
    (path): Step => ({
      name: `tag list page ${path}`,
      request: () => ({ method: "GET", path }),
      ignore: ["content-type", "content-length"],
      differs: {
        reason: "distribution-spec 1.1 \"Listing Tags\": fewer than n results only with a Link header (rel=\"next\"); distribution 2.8 ignores n for tags and sends every tag",
        slipway: { status: 200, headers: { link: `</v2/diff/app/tags/list?last=multi&n=1>; rel="next"` } },
        distribution: { status: 200, headers: { link: undefined } },
      },
    }),
  ),
  { name: "catalog", request: () => ({ method: "GET", path: "/v2/_catalog?n=1" }), ignore: ["content-type", "content-length"] },
  {
    name: "tag list with n of a billion",
    request: () => ({ method: "GET", path: "/v2/diff/app/tags/list?n=1000000000" }),
    ignore: ["content-type", "content-length"],
  },
  {
    name: "catalog with n of a billion",
    request: () => ({ method: "GET", path: "/v2/_catalog?n=1000000000" }),
    ignore: ["content-type", "content-length", "link"],
    differs: {
      reason: "the spec lets a registry return fewer than n entries when it sends a Link (end-8b), and its error codes are a closed list without distribution's PAGINATION_NUMBER_INVALID",
      slipway: { status: 200 },
      distribution: { status: 400, code: "PAGINATION_NUMBER_INVALID" },
    },
  },
  { name: "unknown blob", request: () => ({ method: "GET", path: `/v2/diff/app/blobs/${content("nope").digest}` }), ignore: ["content-type", "content-length"] },
  { name: "unknown manifest", request: () => ({ method: "GET", path: "/v2/diff/app/manifests/nope" }), ignore: ["content-type", "content-length"] },
  { name: "tags of an unknown repository", request: () => ({ method: "GET", path: "/v2/diff/nothing/tags/list" }), ignore: ["content-type", "content-length"] },
  {
    name: "an upper-case repository name",
    request: () => ({ method: "GET", path: "/v2/Diff/App/tags/list" }),
    ignore: ["content-type", "content-length"],
    differs: {
      reason: "the spec's <name> grammar is lower case; Slipway answers NAME_INVALID (code-8), distribution 2.8's router answers a plain 404 page",
      slipway: { status: 400, code: "NAME_INVALID" },
      distribution: { status: 404 },
    },
  },
  { name: "an unknown digest algorithm", request: () => ({ method: "GET", path: `/v2/diff/app/blobs/md5:${"a".repeat(32)}` }), ignore: ["content-type", "content-length"] },
  {
    name: "delete a tag",
    request: () => ({ method: "DELETE", path: "/v2/diff/app/manifests/multi" }),
    ignore: ["content-type", "content-length"],
    differs: {
      reason: "distribution-spec 1.1 \"Deleting tags\" (end-9 by tag, 202); distribution 2.8 only deletes by digest",
      slipway: { status: 202 },
      distribution: { status: 400, code: "DIGEST_INVALID" },
    },
  },
  { name: "delete a manifest by digest", request: () => ({ method: "DELETE", path: `/v2/diff/app/manifests/${image.manifest.digest}` }), ignore: ["content-length"] },
  { name: "the deleted manifest is gone", request: () => ({ method: "GET", path: `/v2/diff/app/manifests/${image.manifest.digest}` }), ignore: ["content-type", "content-length"] },
  { name: "delete a blob", request: () => ({ method: "DELETE", path: `/v2/diff/copy/blobs/${hello.digest}` }), ignore: ["content-length"] },
  { name: "the deleted blob is gone", request: () => ({ method: "HEAD", path: `/v2/diff/copy/blobs/${hello.digest}` }), ignore: ["content-type", "content-length"] },
];

let slipway: TestRegistry | null = null;
let slipwayUrl = "";
let distribution: StartedRegistry | null = null;
let work = "";

beforeAll(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), "registry-diff-"));
  slipway = await openRegistry();
  slipwayUrl = await listen(slipway);
  distribution = await startDockerRegistry({ storage: join(work, "storage"), configDir: work });
});
afterAll(async () => {
  await slipway?.close();
  await distribution?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function observe(base: string, auth: string | undefined, req: Req): Promise<{ observed: Observed; res: Response }> {
  const res = await fetch(new URL(req.path, base), { method: req.method, headers: { ...(auth ? { authorization: auth } : {}), ...req.headers }, body: req.body as BodyInit | undefined, redirect: "manual" });
  const text = req.method === "HEAD" ? "" : await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  const headers: Record<string, string | undefined> = {};
  for (const name of COMPARED) headers[name] = normalise(name, res.headers.get(name) ?? undefined);
  return { observed: { status: res.status, code, headers }, res };
}

function normalise(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let v = value.replace(/^https?:\/\/[^/]+/, "");
  if (name === "location" || name === "link") v = v.replace(/\?_state=[^&>]*&?/, "?").replace(/\?$/, "").replace(/\?>/, ">");
  // Query parameter order in a Link is the server's choice; clients follow the URL as given.
  if (name === "link") v = v.replace(/\?([^>]*)>/, (_, q: string) => `?${q.split("&").sort().join("&")}>`);
  if (name === "location") v = v.replace(/\/uploads\/[^/?]+/, "/uploads/<id>");
  if (name === "docker-upload-uuid") v = "<id>";
  if (name === "content-type") v = v.split(";")[0]!.trim();
  return v;
}

describe("Slipway and distribution 2.8.2 answer the same exchanges alike", () => {
  it.skipIf(skip)("every step matches, or differs exactly as listed with the spec's reason", async () => {
    const s: State = {};
    const d: State = {};
    const mismatches: string[] = [];
    for (const step of STEPS) {
      const a = await observe(slipwayUrl, slipway!.bearer, step.request(s));
      const b = await observe(`http://${distribution!.host}`, undefined, step.request(d));
      step.after?.(s, a.res);
      step.after?.(d, b.res);
      for (const name of step.ignore ?? []) {
        delete a.observed.headers[name];
        delete b.observed.headers[name];
      }
      if (step.differs) {
        for (const [side, got, want] of [
          ["slipway", a.observed, step.differs.slipway],
          ["distribution", b.observed, step.differs.distribution],
        ] as const) {
          if (want.status !== undefined && got.status !== want.status) mismatches.push(`${step.name}: ${side} answered ${got.status}, listed ${want.status}`);
          if (want.code !== undefined && got.code !== want.code) mismatches.push(`${step.name}: ${side} code ${got.code}, listed ${want.code}`);
          for (const [h, v] of Object.entries(want.headers ?? {})) if (got.headers[h] !== v) mismatches.push(`${step.name}: ${side} ${h}=${got.headers[h]}, listed ${v}`);
        }
        continue;
      }
      if (a.observed.status !== b.observed.status || a.observed.code !== b.observed.code) {
        mismatches.push(`${step.name}: slipway ${a.observed.status} ${a.observed.code ?? ""} vs distribution ${b.observed.status} ${b.observed.code ?? ""}`);
      }
      for (const name of COMPARED) {
        if (a.observed.headers[name] !== b.observed.headers[name]) {
          mismatches.push(`${step.name}: ${name} slipway=${a.observed.headers[name]} distribution=${b.observed.headers[name]}`);
        }
      }
    }
    if (mismatches.length) console.log(mismatches.join("\n"));
    expect(mismatches).toEqual([]);
  });
});
