// Slipway's public SDK: define images and functions in TypeScript, and talk to a Slipway server.
export { App, FunctionDef, type FunctionParams } from "./sdk/app.js";
export { Image } from "./sdk/image.js";
export { Client, type ClientOptions, type InvokeOptions, type InvokeResponse } from "./sdk/client.js";
export { deployAppFile, type DeployParams } from "./sdk/deploy.js";
export {
  SlipwayError,
  NotFoundError,
  AlreadyExistsError,
  InvalidError,
  ConflictError,
  UnavailableError,
  TimeoutError,
  UnauthorizedError,
  DeniedError,
  FailedError,
  InternalError,
} from "./core/errors.js";
