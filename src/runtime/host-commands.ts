// Short host commands (mount, umount, getfattr, setfattr, mknod, mkfifo) run through one long-lived /bin/sh. Node
// forks its whole process for every child, which costs the server's main thread ~6 ms a command (more the larger
// the heap); the shell forks itself for ~1 ms. A RUN step needs three such commands.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";

export interface HostCommandError extends Error {
  code: number;
  /** stdout and stderr together. */
  output: string;
}

interface Pending {
  marker: string;
  timeoutMs: number;
  resolve: (output: string) => void;
  reject: (err: Error) => void;
  command: string;
}

let shell: ChildProcessWithoutNullStreams | null = null;
let hung: (head: Pending) => void = () => undefined;
let buffered = "";
const queue: Pending[] = [];

/** Quotes an argument for sh: single quotes, with each ' written as '\''. */
function quote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command that has not answered by then is taken as hung: the shell and what it runs are killed, and replaced. */
const COMMAND_TIMEOUT_MS = 60_000;
let timer: NodeJS.Timeout | null = null;

function startShell(): ChildProcessWithoutNullStreams {
  // Its own process group, so that a hung command can be killed with it.
  const sh = spawn("/bin/sh", [], { stdio: ["pipe", "pipe", "pipe"], detached: true });
  sh.stdout.setEncoding("utf8");
  sh.stdout.on("data", (chunk: string) => {
    buffered += chunk;
    for (;;) {
      const head = queue[0];
      if (!head) return;
      const at = buffered.indexOf(`\n${head.marker} `);
      if (at < 0) return;
      const end = buffered.indexOf("\n", at + head.marker.length + 2);
      if (end < 0) return;
      const code = Number(buffered.slice(at + head.marker.length + 2, end));
      const output = buffered.slice(0, at);
      buffered = buffered.slice(end + 1);
      queue.shift();
      armTimer(sh);
      if (code === 0) head.resolve(output);
      else head.reject(Object.assign(new Error(`${head.command} exited with code ${code}: ${output.trim()}`), { code, output }));
      if (queue.length === 0) idle(sh);
    }
  });
  const fail = (why: string) => {
    if (shell !== sh) return;
    shell = null;
    buffered = "";
    if (timer) clearTimeout(timer);
    timer = null;
    for (const p of queue.splice(0)) p.reject(Object.assign(new Error(`${p.command}: the command shell ${why}`), { code: -1, output: "" }));
  };
  hung = (head) => {
    fail(`gave no answer in ${head.timeoutMs / 1000} s`);
    try {
      process.kill(-sh.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  sh.on("error", (err) => fail(`failed: ${err.message}`));
  sh.on("exit", () => fail("exited"));
  return sh;
}

/** Times the command at the head of the queue. */
function armTimer(sh: ChildProcessWithoutNullStreams): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (queue.length === 0 || shell !== sh) return;
  const head = queue[0]!;
  timer = setTimeout(() => hung(head), head.timeoutMs);
  timer.unref();
}

/** An idle shell does not keep the process alive. */
function idle(sh: ChildProcessWithoutNullStreams): void {
  sh.unref();
  (sh.stdout as unknown as { unref(): void }).unref();
  (sh.stdin as unknown as { unref(): void }).unref();
}

function busy(sh: ChildProcessWithoutNullStreams): void {
  sh.ref();
  (sh.stdout as unknown as { ref(): void }).ref();
  (sh.stdin as unknown as { ref(): void }).ref();
}

/**
 * Runs `command args…` (in `cwd`) and resolves with its output; rejects with its exit code and output when it
 * fails, or when it gives no answer within `timeoutMs` (then it is killed, and so is every command queued behind it).
 * Commands run one at a time, in call order.
 */
export function hostCommand(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const words = [command, ...args];
  if (words.some((w) => w.includes("\n") || w.includes("\0")) || (options.cwd ?? "").includes("\n")) {
    return Promise.reject(new Error(`${command}: arguments with newlines are not passed to the command shell`));
  }
  shell ??= startShell();
  busy(shell);
  const marker = `__slipway_${randomBytes(12).toString("hex")}`;
  const cd = options.cwd ? `cd ${quote(options.cwd)} && ` : "";
  return new Promise((resolve, reject) => {
    queue.push({ marker, resolve, reject, command, timeoutMs: options.timeoutMs ?? COMMAND_TIMEOUT_MS });
    if (queue.length === 1) armTimer(shell!);
    // A subshell: `cd` and the command's fate stay inside it. The marker line carries the exit status.
    shell!.stdin.write(`(${cd}exec ${words.map(quote).join(" ")}) </dev/null 2>&1; printf '\\n%s %d\\n' ${marker} $?\n`);
  });
}
