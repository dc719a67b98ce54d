// App and functions: what a user's app file declares. Settings are validated when the app is deployed.
import { InvalidError } from "../core/errors.js";
import { checkName } from "../core/ids.js";
import type { Image } from "./image.js";

export interface FunctionParams {
  image: Image;
  /** Path of the handler module, relative to the app file; its default export handles each call. */
  handler: string;
  cpu?: number;
  memoryMiB?: number;
  timeoutMs?: number;
  minContainers?: number;
  maxContainers?: number;
  idleTimeoutMs?: number;
}

export class FunctionDef {
  constructor(
    readonly app: App,
    readonly name: string,
    readonly params: Readonly<FunctionParams>,
  ) {}
}

export class App {
  readonly functions = new Map<string, FunctionDef>();

  constructor(readonly name: string) {
    checkName("app", name);
  }

  function(name: string, params: FunctionParams): FunctionDef {
    checkName("function", name);
    // Checked here, not left to the type checker: app files may be plain JavaScript.
    const where = { app: this.name, function: name };
    if (typeof params !== "object" || params === null) throw new InvalidError(`function ${this.name}/${name} needs its settings: { image, handler }`, where);
    if (!Array.isArray((params.image as { steps?: unknown } | undefined)?.steps)) {
      throw new InvalidError(`function ${this.name}/${name} needs an image: Image.debian(…), Image.fromTarball(…) or Image.fromRegistry(…)`, where);
    }
    if (typeof params.handler !== "string" || params.handler === "") {
      throw new InvalidError(`function ${this.name}/${name} needs a handler: the path of its module, relative to the app file`, where);
    }
    if (this.functions.has(name)) throw new InvalidError(`app ${this.name} already has a function named ${name}`, { app: this.name, function: name });
    const fn = new FunctionDef(this, name, { ...params });
    this.functions.set(name, fn);
    return fn;
  }
}
