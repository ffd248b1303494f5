/**
 * A real Unix account for tests that check what a session runs as: `twts-alice`, with bash as its
 * login shell, a home made from /etc/skel, and the supplementary group `twts-extra`. Made (when
 * root) with groupadd/useradd, idempotently, and left in place for the next run.
 */
import { execFileSync } from "node:child_process";
import type { TestContext } from "node:test";
import { unix } from "@twisted-ts/conch";
import { findProgram, missing } from "./peers.js";

export const TEST_USER = "twts-alice";
export const TEST_GROUP = "twts-extra";

export interface TestAccount extends unix.PasswdEntry {
  /** The gid of {@link TEST_GROUP}. */
  extraGid: number;
}

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
}

function groupGid(name: string): number | undefined {
  try {
    const line = execFileSync("getent", ["group", name], { encoding: "utf8" });
    const gid = Number(line.split(":")[2]);
    return Number.isInteger(gid) ? gid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The fixture account, made if needed; undefined (skipped locally, failed under CI) when the tests
 * do not run as root or the tools are missing.
 */
export function ensureTestUser(t: TestContext): TestAccount | undefined {
  if (process.getuid?.() !== 0) {
    missing(t, `creating the fixture user ${TEST_USER} needs root (CI runs as root)`);
    return undefined;
  }
  const groupadd = findProgram("groupadd");
  const useradd = findProgram("useradd");
  const usermod = findProgram("usermod");
  if (groupadd === undefined || useradd === undefined || usermod === undefined) {
    missing(t, "groupadd/useradd/usermod are missing (apt-get install passwd)");
    return undefined;
  }
  // -f: succeed when the group exists (another test file may have made it meanwhile).
  run(groupadd, ["-f", TEST_GROUP]);
  if (unix.getpwnam(TEST_USER) === undefined) {
    try {
      run(useradd, ["-m", "-s", "/bin/bash", "-G", TEST_GROUP, TEST_USER]);
    } catch (e) {
      // Lost a race with a parallel test file: fine if the account is there now.
      if (unix.getpwnam(TEST_USER) === undefined) throw e;
    }
  }
  // In the group even if an older run made the account without it; and "*" rather than useradd's
  // "!", because sshd (without PAM) refuses a locked account even for a public key.
  run(usermod, ["-a", "-G", TEST_GROUP, "-p", "*", TEST_USER]);
  const entry = unix.getpwnam(TEST_USER);
  const extraGid = groupGid(TEST_GROUP);
  if (entry === undefined || extraGid === undefined) throw new Error(`${TEST_USER} or ${TEST_GROUP} is missing after useradd`);
  return { ...entry, extraGid };
}
