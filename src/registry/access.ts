// What the registry asks of an auth provider: may this request do these actions on this repository, and if not,
// which WWW-Authenticate challenge sends the client to get a token that can. The provider lives in the server
// (server/auth.ts); the registry only names the access each endpoint needs.
import type { FastifyReply, FastifyRequest } from "fastify";

export type RepositoryAction = "pull" | "push" | "delete";

/** One grant in the docker token scope grammar: `repository:<name>:<actions>` or `registry:catalog:*`. */
export type Access = { type: "repository"; name: string; actions: RepositoryAction[] } | { type: "registry"; name: "catalog"; actions: ["*"] };

export type AccessDecision =
  | { allowed: true; subject: string }
  /** `unauthenticated`: no or bad credentials; `insufficient-scope`: a token that lacks a grant it could ask for. */
  | { allowed: false; reason: "unauthenticated" | "insufficient-scope" | "denied"; message: string };

export interface RegistryAuth {
  /** Decides whether a request may have every access listed (an empty list: any authenticated caller). */
  check(request: FastifyRequest, access: Access[]): AccessDecision | Promise<AccessDecision>;
  /**
   * Which repositories the catalog shows this (already authorized) caller: those it may pull, or "all" (admin, or
   * an API token its creator granted `registry:catalog:*`).
   */
  catalogFilter(request: FastifyRequest): "all" | ((repository: string) => boolean);
  /** The WWW-Authenticate header that points the client at the token endpoint for these grants. */
  challenge(request: FastifyRequest, access: Access[], error?: "invalid_token" | "insufficient_scope"): string;
  /**
   * Answers <prefix>/token, the token endpoint the challenge's realm names: GET (the docker token protocol), or POST
   * with its form already read (the OAuth2 flow).
   */
  tokenEndpoint(request: FastifyRequest, reply: FastifyReply, form?: URLSearchParams): Promise<unknown>;
}

export function scopeString(access: Access): string {
  return `${access.type}:${access.name}:${access.actions.join(",")}`;
}
