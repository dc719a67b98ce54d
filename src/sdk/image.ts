// The Image builder: immutable (every method returns a new Image) and lazy (nothing builds until deploy). Local
// paths (copy sources, tarballs) are resolved against the app file's directory when the app is deployed.

export type ImageStepDraft =
  | {
      op: "base";
      source:
        | { kind: "scratch" }
        | { kind: "debian"; suite: string; mirror?: string }
        | { kind: "tarball"; path: string }
        | { kind: "registry"; ref: string; auth?: RegistryAuth };
    }
  | { op: "run"; shell: string; forceBuild?: boolean }
  | { op: "copy"; src: string[]; dest: string }
  | { op: "env"; vars: Record<string, string> }
  | { op: "workdir"; path: string }
  | { op: "user"; user: string }
  | { op: "cmd"; args: string[] }
  | { op: "entrypoint"; args: string[] }
  | { op: "label"; labels: Record<string, string> }
  | { op: "arg"; name: string; default?: string };

/** Credentials for a private registry (Basic at the registry, or at its token service). */
export interface RegistryAuth {
  username: string;
  password: string;
}

export class Image {
  private constructor(
    readonly steps: readonly ImageStepDraft[],
    readonly buildArgs: Readonly<Record<string, string>> = {},
  ) {}

  /** A Debian root built with debootstrap (variant minbase) from the Debian archive. */
  static debian(suite = "bookworm", params: { mirror?: string } = {}): Image {
    return new Image([{ op: "base", source: { kind: "debian", suite, ...(params.mirror ? { mirror: params.mirror } : {}) } }]);
  }

  /**
   * An image from any OCI registry: `nginx:1.27`, `ghcr.io/org/img@sha256:…`. A tag is pinned to the digest it names
   * at build time (the version records it); a moved tag is noticed on the next build.
   */
  static fromRegistry(ref: string, params: { auth?: RegistryAuth } = {}): Image {
    return new Image([{ op: "base", source: { kind: "registry", ref, ...(params.auth ? { auth: { ...params.auth } } : {}) } }]);
  }

  /** An empty image. */
  static scratch(): Image {
    return new Image([{ op: "base", source: { kind: "scratch" } }]);
  }

  /** A root filesystem from a tar file (plain or gzip), relative to the app file. */
  static fromTarball(path: string): Image {
    return new Image([{ op: "base", source: { kind: "tarball", path } }]);
  }

  private with(step: ImageStepDraft): Image {
    return new Image([...this.steps, step], this.buildArgs);
  }

  /** Runs a shell command (a string) or a program with arguments (an array, quoted for the shell). */
  run(command: string | string[], params: { forceBuild?: boolean } = {}): Image {
    const shell = Array.isArray(command) ? command.map(shellQuote).join(" ") : command;
    return this.with({ op: "run", shell, ...(params.forceBuild ? { forceBuild: true } : {}) });
  }

  /** Installs Debian packages in one cached layer. */
  aptInstall(packages: string[]): Image {
    const list = [...packages].map(shellQuote).join(" ");
    return this.run(
      `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${list} && rm -rf /var/lib/apt/lists/*`,
    );
  }

  env(vars: Record<string, string>): Image {
    return this.with({ op: "env", vars: { ...vars } });
  }

  workdir(path: string): Image {
    return this.with({ op: "workdir", path });
  }

  user(user: string): Image {
    return this.with({ op: "user", user });
  }

  /**
   * Copies local files or directories (relative to the app file) into the image, as one layer. A directory's
   * contents land in `dest`; with several sources, or a `dest` ending in `/`, files keep their names under `dest`.
   */
  copy(src: string | string[], dest: string): Image {
    return this.with({ op: "copy", src: Array.isArray(src) ? [...src] : [src], dest });
  }

  cmd(args: string[]): Image {
    return this.with({ op: "cmd", args: [...args] });
  }

  entrypoint(args: string[]): Image {
    return this.with({ op: "entrypoint", args: [...args] });
  }

  label(labels: Record<string, string>): Image {
    return this.with({ op: "label", labels: { ...labels } });
  }

  /** Declares a build argument: RUN steps after it see it in their environment. */
  arg(name: string, defaultValue?: string): Image {
    return this.with({ op: "arg", name, ...(defaultValue !== undefined ? { default: defaultValue } : {}) });
  }

  /** Values for declared build arguments. */
  withBuildArgs(args: Record<string, string>): Image {
    return new Image(this.steps, { ...this.buildArgs, ...args });
  }
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
