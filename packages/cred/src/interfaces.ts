/**
 * Interfaces as runtime tokens: TypeScript's interfaces vanish at run time, and cred needs to ask
 * "does this object provide IUsernamePassword?" while it runs, as zope.interface lets Twisted do.
 *
 * One mechanism, used everywhere in cred and Conch:
 * - an interface is an {@link InterfaceToken}, typed by the shape its providers have:
 *   `const IUsernamePassword = new InterfaceToken<UsernamePassword>("IUsernamePassword", [ICredentials])`;
 * - a class declares what its instances provide with the {@link implementer} decorator (Twisted's
 *   `@implementer`), a single object with {@link directlyProvides};
 * - `IUsernamePassword.providedBy(obj)` answers, following interface inheritance.
 *
 * Tokens compare by identity: import the one exported constant, never make a second with the
 * same name.
 */

/** The property under which an object lists the interfaces it provides (own or inherited). */
export const PROVIDES: unique symbol = Symbol.for("twisted-ts.cred.provides");

/** An object that declares the interfaces it provides. */
export interface Provider {
  readonly [PROVIDES]?: readonly InterfaceToken<unknown>[];
}

/**
 * A named interface. `T` is the TypeScript shape of its providers, so `providedBy` narrows and a
 * realm's `requestAvatar` can return a typed avatar for it.
 */
export class InterfaceToken<T = unknown> {
  /** The interface's name, for messages (`"IUsernamePassword"`). */
  readonly name: string;
  /** The interfaces this one extends (`IUsernamePassword` extends `ICredentials`). */
  readonly bases: readonly InterfaceToken<unknown>[];
  /** Never set: carries `T` so tokens of different shapes are not interchangeable. */
  declare readonly __shape?: T;

  constructor(name: string, bases: readonly InterfaceToken<unknown>[] = []) {
    this.name = name;
    this.bases = bases;
  }

  /** True when this interface is `other` or extends it (zope's `isOrExtends`). */
  isOrExtends(other: InterfaceToken<unknown>): boolean {
    if (other === (this as InterfaceToken<unknown>)) return true;
    return this.bases.some((b) => b.isOrExtends(other));
  }

  /** True when `obj` declares this interface or one extending it. */
  providedBy(obj: unknown): obj is T {
    return providedBy(obj).some((i) => i.isOrExtends(this as InterfaceToken<unknown>));
  }

  toString(): string {
    return this.name;
  }
}

/** The interfaces `obj` declares (empty for anything that declares none). */
export function providedBy(obj: unknown): readonly InterfaceToken<unknown>[] {
  if ((typeof obj !== "object" && typeof obj !== "function") || obj === null) return [];
  const list = (obj as Provider)[PROVIDES];
  return Array.isArray(list) ? list : [];
}

/**
 * Class decorator, Twisted's `@implementer(I1, I2)`: instances of the class (and of its
 * subclasses) provide the given interfaces, in addition to those inherited.
 */
export function implementer(...interfaces: InterfaceToken<unknown>[]) {
  return function <C extends abstract new (...args: never[]) => object>(cls: C, _context?: ClassDecoratorContext<C>): C {
    classImplements(cls, ...interfaces);
    return cls;
  };
}

/** Declares that instances of `cls` provide `interfaces` (the function form of {@link implementer}). */
export function classImplements(cls: abstract new (...args: never[]) => object, ...interfaces: InterfaceToken<unknown>[]): void {
  const proto = cls.prototype as Provider;
  const inherited = providedBy(proto);
  Object.defineProperty(proto, PROVIDES, {
    value: Object.freeze([...interfaces, ...inherited.filter((i) => !interfaces.includes(i))]),
    enumerable: false,
    configurable: true,
    writable: false,
  });
}

/** Declares that this one object provides `interfaces` (besides what its class provides). */
export function directlyProvides<O extends object>(obj: O, ...interfaces: InterfaceToken<unknown>[]): O {
  const inherited = providedBy(obj);
  Object.defineProperty(obj, PROVIDES, {
    value: Object.freeze([...interfaces, ...inherited.filter((i) => !interfaces.includes(i))]),
    enumerable: false,
    configurable: true,
    writable: false,
  });
  return obj;
}
