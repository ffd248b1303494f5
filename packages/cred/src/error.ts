/**
 * `twisted.cred.error`: why a login failed. Each class has a stable `code`.
 *
 * As in Twisted, {@link UnauthorizedLogin} is both a {@link LoginFailed} and an
 * {@link Unauthorized}; JavaScript has single inheritance, so `Unauthorized` is recognised with
 * {@link isUnauthorized} (and `instanceof Unauthorized` works for UnauthorizedLogin through
 * `Symbol.hasInstance`).
 */

/** The user's request to log in failed for some reason. */
export class LoginFailed extends Error {
  readonly code: string = "ERR_CRED_LOGIN_FAILED";
  constructor(message = "login failed") {
    super(message);
    this.name = "LoginFailed";
  }
}

const UNAUTHORIZED: unique symbol = Symbol.for("twisted-ts.cred.unauthorized");

/** Standard unauthorized error. */
export class Unauthorized extends Error {
  readonly code: string = "ERR_CRED_UNAUTHORIZED";
  readonly [UNAUTHORIZED] = true;
  constructor(message = "unauthorized") {
    super(message);
    this.name = "Unauthorized";
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as { [UNAUTHORIZED]?: boolean })[UNAUTHORIZED] === true;
  }
}

/** True for an {@link Unauthorized} or an {@link UnauthorizedLogin}. */
export function isUnauthorized(value: unknown): boolean {
  return value instanceof Unauthorized;
}

/** The user was not authorized to log in: wrong password, unknown user, key not authorized. */
export class UnauthorizedLogin extends LoginFailed {
  override readonly code: string = "ERR_CRED_UNAUTHORIZED_LOGIN";
  readonly [UNAUTHORIZED] = true;
  constructor(message = "unauthorized login") {
    super(message);
    this.name = "UnauthorizedLogin";
  }
}

/**
 * No checker handles this kind of credentials: a server configuration error (a protocol was given
 * a portal without a checker for one of its authentication methods).
 */
export class UnhandledCredentials extends LoginFailed {
  override readonly code: string = "ERR_CRED_UNHANDLED_CREDENTIALS";
  constructor(message = "unhandled credentials") {
    super(message);
    this.name = "UnhandledCredentials";
  }
}

/** The realm refused this login (too many logins, quota used up, server too busy, …). */
export class LoginDenied extends LoginFailed {
  override readonly code: string = "ERR_CRED_LOGIN_DENIED";
  constructor(message = "login denied") {
    super(message);
    this.name = "LoginDenied";
  }
}
