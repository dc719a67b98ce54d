// A small base image for fast tests: a root filesystem with the static busybox and its applets, as a tar file.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, copyFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BUSYBOX = "/bin/busybox";

/** Writes busybox.tar (bin/busybox plus one symlink per applet, /etc/passwd, /tmp) into `dir`. */
export async function busyboxTarball(dir: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "busybox-root-"));
  try {
    await mkdir(join(root, "bin"), { recursive: true });
    await mkdir(join(root, "etc"));
    await mkdir(join(root, "tmp"), { mode: 0o1777 });
    await copyFile(BUSYBOX, join(root, "bin/busybox"));
    const applets = execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const a of applets) if (a !== "busybox") await symlink("busybox", join(root, "bin", a));
    await writeFile(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n");
    await writeFile(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    const out = join(dir, "busybox.tar");
    execFileSync("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-C", root, "-cf", out, "."]);
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
