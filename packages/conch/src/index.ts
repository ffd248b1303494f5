/** `@twisted-ts/conch`: Twisted Conch, SSH for Node.js. */
export * as error from "./error.js";
export * as avatar from "./avatar.js";
export * as checkers from "./checkers.js";
export * as unix from "./unix.js";
