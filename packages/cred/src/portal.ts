/**
 * `twisted.cred.portal`: the point where an application meets authentication.
 *
 * A {@link Portal} has one realm and any number of checkers. `login(credentials, mind,
 * ...interfaces)` finds the checker registered for an interface the credentials provide, asks it
 * for an avatar id, then asks the realm for an avatar providing one of `interfaces`.
 */
import { Deferred, fail, maybeDeferred } from "@twisted-ts/internet/defer";
import type { AvatarId, ICredentialsChecker } from "./checkers.js";
import { UnhandledCredentials } from "./error.js";
import { type InterfaceToken, providedBy } from "./interfaces.js";

export { InterfaceToken, implementer, directlyProvides, providedBy } from "./interfaces.js";

/** The provider shape an interface token stands for. */
export type ShapeOf<I> = I extends InterfaceToken<infer T> ? T : never;

/** Called once when the user is done with the avatar (the session ended). */
export type Logout = () => void;

/**
 * What a successful login gives: the interface chosen (one of those asked for), the avatar
 * providing it, and the logout function.
 */
export type LoginResult<T = unknown> = readonly [iface: InterfaceToken<T>, avatar: T, logout: Logout];

/**
 * Twisted's `IRealm`: turns an avatar id into an application object (the avatar).
 *
 * `requestAvatar` gets the tokens the protocol asked for and returns (or fires a Deferred with)
 * `[token, avatar, logout]` for one of them it can provide; it throws or errbacks otherwise.
 */
export interface IRealm {
  requestAvatar(
    avatarId: AvatarId,
    mind: unknown,
    ...interfaces: InterfaceToken<unknown>[]
  ): LoginResult<unknown> | Deferred<LoginResult<unknown>>;
}

/**
 * Twisted's `Portal(realm, checkers)`. Not meant to be subclassed: customise the realm and the
 * checkers instead.
 */
export class Portal {
  readonly realm: IRealm;
  /** Credentials interface → the checker for it, in registration order. */
  readonly checkers: Map<InterfaceToken<unknown>, ICredentialsChecker> = new Map();

  constructor(realm: IRealm, checkers: Iterable<ICredentialsChecker> = []) {
    this.realm = realm;
    for (const checker of checkers) this.registerChecker(checker);
  }

  /** The credentials interfaces a login can use (a protocol offers the methods these map to). */
  listCredentialsInterfaces(): InterfaceToken<unknown>[] {
    return [...this.checkers.keys()];
  }

  /**
   * Registers `checker` for `credentialInterfaces`, or for its own `credentialInterfaces` when
   * none are given. A later registration for the same interface replaces the earlier one.
   */
  registerChecker(checker: ICredentialsChecker, ...credentialInterfaces: InterfaceToken<unknown>[]): void {
    const ifaces = credentialInterfaces.length > 0 ? credentialInterfaces : checker.credentialInterfaces;
    for (const iface of ifaces) this.checkers.set(iface, checker);
  }

  /**
   * Logs in: fires with `[interface, avatar, logout]`, or fails with `UnauthorizedLogin` (bad
   * credentials, from the checker), `UnhandledCredentials` (no checker for them) or whatever the
   * realm raised. The first registered interface the credentials provide picks the checker.
   */
  login<I extends InterfaceToken<unknown>[]>(
    credentials: object,
    mind: unknown,
    ...interfaces: I
  ): Deferred<LoginResult<ShapeOf<I[number]>>> {
    for (const [iface, checker] of this.checkers) {
      if (iface.providedBy(credentials)) {
        return maybeDeferred(() => checker.requestAvatarId(credentials)).addCallback(
          (avatarId: AvatarId) =>
            this.realm.requestAvatar(avatarId, mind, ...interfaces) as
              | LoginResult<ShapeOf<I[number]>>
              | Deferred<LoginResult<ShapeOf<I[number]>>>,
        );
      }
    }
    const names = providedBy(credentials).map((i) => i.name);
    return fail(new UnhandledCredentials(`No checker for ${names.length > 0 ? names.join(", ") : "these credentials"}`));
  }
}
