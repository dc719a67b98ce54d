// The executor: run one process in a container. The builder (RUN steps) and the worker (function containers) both
// use it; nothing above this file knows that runc is underneath.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { InvalidError, UnavailableError } from "../core/errors.js";
import { newId } from "../core/ids.js";

const execFileP = promisify(execFile);

export interface BindMount {
  source: string;
  destination: string;
  readonly: boolean;
}

export interface ResourceLimits {
  memoryBytes?: number;
  /** Fractional CPUs, enforced as a CFS quota. */
  cpus?: number;
  pids?: number;
}

export interface ContainerSpec {
  /** A mounted root filesystem (for example an overlay of snapshots). */
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  /** `uid[:gid]` or a user name looked up in the rootfs's /etc/passwd. */
  user?: string;
  mounts?: BindMount[];
  /** `host` shares the host's network (builds); `none` gives a private loopback only. */
  network: "host" | "none";
  limits?: ResourceLimits;
  hostname?: string;
}

export interface ExitStatus {
  exitCode: number;
  signal: string | null;
}

export interface Container {
  readonly id: string;
  /** Resolves when the process ends. */
  readonly exited: Promise<ExitStatus>;
  kill(signal?: "KILL" | "TERM"): Promise<void>;
  /** The last lines of combined stdout and stderr. */
  tail(lines?: number): string;
  onOutput(listener: (chunk: Buffer, stream: "stdout" | "stderr") => void): void;
}

export interface Executor {
  start(spec: ContainerSpec): Promise<Container>;
  /** Removes containers left behind by a previous process (after a crash). */
  sweep(): Promise<number>;
}

const TAIL_BYTES = 64 * 1024;

export class RuncExecutor implements Executor {
  constructor(
    private readonly stateRoot: string,
    private readonly bundlesRoot: string,
    private readonly runc = "runc",
  ) {}

  static async check(runc = "runc"): Promise<string | null> {
    try {
      await execFileP(runc, ["--version"]);
      return null;
    } catch {
      return `${runc} is not installed (apt-get install runc)`;
    }
  }

  async start(spec: ContainerSpec): Promise<Container> {
    const id = newId("sw");
    const bundle = join(this.bundlesRoot, id);
    await mkdir(bundle, { recursive: true });
    const user = await resolveUser(spec.rootfs, spec.user);
    await writeFile(join(bundle, "config.json"), JSON.stringify(runtimeSpec(id, spec, user)));
    const child = spawn(this.runc, ["--root", this.stateRoot, "run", "--bundle", bundle, id], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new RuncContainer(id, child, this, bundle);
  }

  async kill(id: string, signal: string): Promise<void> {
    await execFileP(this.runc, ["--root", this.stateRoot, "kill", id, signal]).catch(() => undefined);
  }

  async forceDelete(id: string): Promise<void> {
    // `runc run` removes its container when the process ends; state is left only when runc itself was stopped.
    if (!existsSync(join(this.stateRoot, id))) return;
    await execFileP(this.runc, ["--root", this.stateRoot, "delete", "--force", id]).catch(() => undefined);
  }

  async sweep(): Promise<number> {
    let list: Array<{ id: string }> = [];
    try {
      const { stdout } = await execFileP(this.runc, ["--root", this.stateRoot, "list", "--format", "json"]);
      list = (JSON.parse(stdout || "[]") as Array<{ id: string }> | null) ?? [];
    } catch {
      return 0;
    }
    for (const c of list) await this.forceDelete(c.id);
    await rm(this.bundlesRoot, { recursive: true, force: true });
    await mkdir(this.bundlesRoot, { recursive: true });
    return list.length;
  }
}

class RuncContainer implements Container {
  readonly exited: Promise<ExitStatus>;
  private output = Buffer.alloc(0);
  private readonly listeners: Array<(chunk: Buffer, stream: "stdout" | "stderr") => void> = [];

  constructor(
    readonly id: string,
    child: ChildProcess,
    private readonly executor: RuncExecutor,
    bundle: string,
  ) {
    const collect = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      this.output = Buffer.concat([this.output, chunk]);
      if (this.output.length > TAIL_BYTES) this.output = this.output.subarray(this.output.length - TAIL_BYTES);
      for (const l of this.listeners) l(chunk, stream);
    };
    child.stdout!.on("data", collect("stdout"));
    child.stderr!.on("data", collect("stderr"));
    this.exited = new Promise<ExitStatus>((resolve, reject) => {
      child.once("error", (err) => reject(new UnavailableError(`cannot start runc: ${err.message}`)));
      child.once("close", (code, signal) => {
        void this.executor.forceDelete(id).finally(() => rm(bundle, { recursive: true, force: true }).catch(() => undefined));
        resolve({ exitCode: code ?? 128, signal: signal ?? null });
      });
    });
    this.exited.catch(() => undefined);
  }

  async kill(signal: "KILL" | "TERM" = "KILL"): Promise<void> {
    await this.executor.kill(this.id, signal);
  }

  tail(lines = 20): string {
    const text = this.output.toString("utf8");
    return text.split("\n").slice(-lines - 1).join("\n").trimEnd();
  }

  onOutput(listener: (chunk: Buffer, stream: "stdout" | "stderr") => void): void {
    this.listeners.push(listener);
  }
}

async function resolveUser(rootfs: string, user: string | undefined): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const [name, group] = user.split(":", 2) as [string, string | undefined];
  const passwd = await readFile(join(rootfs, "etc/passwd"), "utf8").catch(() => "");
  let uid: number | undefined;
  let gid: number | undefined;
  if (/^\d+$/.test(name)) {
    uid = Number(name);
    const line = passwd.split("\n").find((l) => l.split(":")[2] === name);
    gid = line ? Number(line.split(":")[3]) : uid;
  } else {
    const line = passwd.split("\n").find((l) => l.split(":")[0] === name);
    if (!line) throw new InvalidError(`user ${JSON.stringify(name)} is not in the image's /etc/passwd`, { user });
    uid = Number(line.split(":")[2]);
    gid = Number(line.split(":")[3]);
  }
  if (group !== undefined) {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const groups = await readFile(join(rootfs, "etc/group"), "utf8").catch(() => "");
      const line = groups.split("\n").find((l) => l.split(":")[0] === group);
      if (!line) throw new InvalidError(`group ${JSON.stringify(group)} is not in the image's /etc/group`, { user });
      gid = Number(line.split(":")[2]);
    }
  }
  return { uid, gid: gid ?? 0 };
}

/** The OCI runtime spec (config.json) runc runs. */
function runtimeSpec(id: string, spec: ContainerSpec, user: { uid: number; gid: number }): object {
  const namespaces = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  if (spec.network === "none") namespaces.push({ type: "network" });
  const caps = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
  ];
  const resources: Record<string, unknown> = {};
  if (spec.limits?.memoryBytes) resources.memory = { limit: spec.limits.memoryBytes };
  if (spec.limits?.cpus) resources.cpu = { period: 100_000, quota: Math.round(spec.limits.cpus * 100_000) };
  if (spec.limits?.pids) resources.pids = { limit: spec.limits.pids };
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid },
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd || "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: true,
    },
    root: { path: spec.rootfs, readonly: false },
    hostname: spec.hostname ?? "slipway",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      ...(spec.mounts ?? []).map((m) => ({
        destination: m.destination,
        type: "bind",
        source: m.source,
        options: ["rbind", m.readonly ? "ro" : "rw", "nosuid", "nodev"],
      })),
    ],
    linux: {
      namespaces,
      cgroupsPath: `/slipway/${id}`,
      resources,
      maskedPaths: ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
      readonlyPaths: ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}
