// The composition root's wiring: opens the stores in a data directory and builds every service on top of them.
//
//   <data>/slipway.db      metadata (SQLite, WAL)
//   <data>/blobs/, ingest/ the content-addressed store (see store/blob-store.ts)
//   <data>/snapshots/      unpacked layers (see runtime/snapshots.ts)
//   <data>/containers/     per-container and per-build overlay dirs, swept at start
//   <data>/code/           materialised code bundles
//   <data>/runtime/        the Node runtime mounted into containers
//   <data>/runc/           runc's state
//   <data>/admin-token     the admin API token (0600)
//   <data>/server.lock     the pid of the one server using this directory
//   <data>/secrets.key     the key that seals config secrets and webhook secrets (AES-256-GCM, 0600)
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Builder } from "../build/builder.js";
import { DeniedError, UnauthorizedError } from "../core/errors.js";
import { RuntimeConfig } from "../deploy/config.js";
import { Deployments } from "../deploy/deployments.js";
import { EventLog } from "../deploy/events.js";
import { Dispatcher, type DispatcherOptions } from "../deploy/outbox.js";
import { SecretBox } from "../deploy/secret-box.js";
import { Webhooks } from "../deploy/webhooks.js";
import { Versions } from "../deploy/versions.js";
import type { Compression } from "../oci/media-types.js";
import { RuncExecutor } from "../runtime/executor.js";
import { prepareNodeRuntime } from "../runtime/node-runtime.js";
import { SnapshotStore, sweepMounts } from "../runtime/snapshots.js";
import { Worker } from "../runtime/worker.js";
import { AppStore } from "../store/app-store.js";
import { FsBlobStore } from "../store/blob-store.js";
import { CacheIndex } from "../store/cache-index.js";
import { ConfigStore } from "../store/config-store.js";
import { DeployStore } from "../store/deploy-store.js";
import { EventStore } from "../store/event-store.js";
import { MetadataStore } from "../store/metadata-store.js";
import { RepositoryIndex } from "../store/repository-index.js";
import { TokenStore } from "../store/token-store.js";
import { UploadSessions } from "../registry/uploads.js";
import { createAuth, ensureAdminToken, type Auth } from "./auth.js";
import { BuildService } from "./build-service.js";
import { lockDataDir } from "./data-lock.js";
import { DeployService } from "./deploy-service.js";
import type { FaultPlan } from "./faults.js";
import { InvokeService } from "./invoke-service.js";
import { PointerService } from "./pointer-service.js";

export interface ContextOptions {
  dataDir: string;
  compression?: Compression;
  /** How long calls on a version that lost its deployments may run before they are stopped (worker.ts). */
  drainTimeoutMs?: number;
  webhooks?: DispatcherOptions;
  /** Crash-test pauses (faults.ts); only the server's config loader sets them. */
  faults?: FaultPlan;
  /** Registry pulls without credentials (off by default). */
  anonymousPull?: boolean;
  /** How far past 256 MiB a layer may decompress, in uncompressed per compressed bytes (layer-reader.ts; default 100). */
  maxLayerRatio?: number;
}

export interface Slipway {
  dataDir: string;
  meta: MetadataStore;
  blobs: FsBlobStore;
  repos: RepositoryIndex;
  snapshots: SnapshotStore;
  builder: Builder;
  versions: Versions;
  deployments: Deployments;
  worker: Worker;
  buildService: BuildService;
  deployService: DeployService;
  invokeService: InvokeService;
  pointers: PointerService;
  config: RuntimeConfig;
  events: EventLog;
  webhooks: Webhooks;
  dispatcher: Dispatcher;
  deploys: DeployStore;
  adminTokenPath: string;
  /** Whether this start created the admin token (the server says where it is). */
  adminTokenCreated: boolean;
  auth: Auth;
  uploads: UploadSessions;
  /** Checks an `Authorization` header; returns the actor it names. */
  authenticate(header: string | undefined): string;
  close(): Promise<void>;
}

export async function openSlipway(options: ContextOptions): Promise<Slipway> {
  const dataDir = options.dataDir;
  await mkdir(dataDir, { recursive: true });
  // Only root reads the data directory: runc bundles hold each container's environment while it runs.
  await chmod(dataDir, 0o700);
  const unlock = await lockDataDir(dataDir);
  const meta = MetadataStore.open(join(dataDir, "slipway.db"));
  const blobs = await FsBlobStore.open(dataDir);
  const repos = new RepositoryIndex(meta);
  const snapshots = await SnapshotStore.open(join(dataDir, "snapshots"), blobs, { maxRatio: options.maxLayerRatio });
  const containersRoot = join(dataDir, "containers");
  const executor = new RuncExecutor(join(dataDir, "runc"), join(dataDir, "bundles"));
  await executor.sweep();
  await sweepMounts(containersRoot);
  const runtimeDir = await prepareNodeRuntime(join(dataDir, "runtime"));
  const builder = new Builder({
    blobs,
    cache: new CacheIndex(meta),
    repos,
    snapshots,
    executor,
    workRoot: containersRoot,
    compression: options.compression ?? "zstd",
    resolvConf: "/etc/resolv.conf",
  });
  const apps = new AppStore(meta);
  const versions = new Versions(apps);
  const box = await SecretBox.open(join(dataDir, "secrets.key"));
  const eventStore = new EventStore(meta);
  const events = new EventLog(eventStore);
  const webhooks = new Webhooks(eventStore, box);
  const dispatcher = new Dispatcher({ store: eventStore, events, webhooks }, options.webhooks);
  const config = new RuntimeConfig(new ConfigStore(meta), box);
  const deploys = new DeployStore(meta);
  const deployments = new Deployments(apps, versions, events);
  const worker = new Worker({
    blobs,
    snapshots,
    executor,
    containersRoot,
    codeRoot: join(dataDir, "code"),
    runtimeDir,
    drainTimeoutMs: options.drainTimeoutMs,
  });
  const pointers = new PointerService({ versions, deployments, worker, config, events, faults: options.faults });
  const invokeService = new InvokeService({ versions, deployments, worker, config });
  const buildService = new BuildService({ builder });
  const deployService = new DeployService({
    buildService,
    versions,
    deployments,
    blobs,
    deploys,
    events,
    pointers,
    invoke: invokeService,
    faults: options.faults,
  });
  deployService.recoverInterrupted();
  pointers.reconcile(apps.listApps());
  dispatcher.start();
  const tokens = new TokenStore(meta);
  const admin = await ensureAdminToken(tokens, dataDir);
  const auth = createAuth(tokens, { anonymousPull: options.anonymousPull ?? false });
  const uploads = new UploadSessions(blobs, repos);
  return {
    dataDir,
    meta,
    blobs,
    repos,
    snapshots,
    builder,
    versions,
    deployments,
    worker,
    buildService,
    deployService,
    invokeService,
    pointers,
    config,
    events,
    webhooks,
    dispatcher,
    deploys,
    adminTokenPath: admin.path,
    adminTokenCreated: admin.created,
    auth,
    uploads,
    authenticate(header) {
      if (!header) {
        throw new UnauthorizedError(
          "missing API token: set SLIPWAY_TOKEN, or SLIPWAY_DATA to the server's data directory (the CLI reads its admin-token file; default ./.slipway)",
        );
      }
      const principal = auth.verifyBearer(header);
      if (!principal) throw new UnauthorizedError("the API token is not valid (expired, revoked or mistyped)");
      if (!principal.admin) throw new DeniedError(`token ${principal.subject} may use the registry only, not the control-plane API`);
      return principal.subject;
    },
    async close() {
      await uploads.close();
      await dispatcher.stop();
      await worker.close();
      await snapshots.close();
      meta.close();
      await unlock();
    },
  };
}
