/** `@twisted-ts/cred`: Twisted's authentication framework. */
export * as checkers from "./checkers.js";
export * as credentials from "./credentials.js";
export * as error from "./error.js";
export * as interfaces from "./interfaces.js";
export * as portal from "./portal.js";
