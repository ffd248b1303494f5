/**
 * Internal: how a session channel honours its login's `AuthOptions` — which requests a forced
 * command replaces, what the client asked for instead (`SSH_ORIGINAL_COMMAND`), and the variables
 * the server sets for the process.
 */
import type { Logger } from "@twisted-ts/internet/log";
import type { ISession } from "../../avatar.js";
import type { AuthOptions } from "../authopt.js";
import { SSHReader } from "../common.js";
import { latin1, utf8 } from "./requests.js";

/** The requests a forced command (`command="…"`) runs instead of, as sshd's do_exec. */
export const FORCED_COMMAND_REPLACES: ReadonlySet<string> = new Set(["exec", "shell", "subsystem"]);

/**
 * What the client asked to run, for `SSH_ORIGINAL_COMMAND`: the exec command line or the
 * subsystem name; undefined for a shell (sshd sets nothing then).
 */
export function originalCommand(requestType: string, data: Uint8Array): string | undefined {
  if (requestType === "exec") return utf8(new SSHReader(data).string());
  if (requestType === "subsystem") return latin1(new SSHReader(data).string());
  return undefined;
}

/**
 * The variables the server sets for the process, after any the client set: the login's
 * `environment=` entries (present only under PermitUserEnvironment), then `SSH_ORIGINAL_COMMAND`.
 */
export function serverEnvironment(options: AuthOptions | undefined, original: string | undefined): Array<readonly [string, string]> {
  const vars: Array<readonly [string, string]> = [...(options?.environment ?? [])];
  if (original !== undefined) vars.push(["SSH_ORIGINAL_COMMAND", original]);
  return vars;
}

/**
 * Gives `session` the server-set variables through its trusted `setServerEnv` (clients may not
 * set SSH_* names, so `setEnv` would refuse them). A session without it gets none, and we say so.
 */
export function applyServerEnvironment(session: ISession, vars: ReadonlyArray<readonly [string, string]>, log: Logger): void {
  if (vars.length === 0) return;
  if (typeof session.setServerEnv !== "function") {
    log.warn("the session has no setServerEnv: {names} not set", { names: vars.map(([n]) => n).join(", ") });
    return;
  }
  for (const [name, value] of vars) session.setServerEnv(name, value);
}
