/** `@twisted-ts/conch/ssh`: the SSH layers, one module each, named as in `twisted.conch.ssh`. */
export * as common from "./common.js";
export * as service from "./service.js";
export * as transport from "./transport.js";
export * as factory from "./factory.js";
export * as keys from "./keys.js";
export * as connection from "./connection.js";
export * as channel from "./channel.js";
export * as userauth from "./userauth.js";
export * as session from "./session.js";
export * as forwarding from "./forwarding.js";
export * as filetransfer from "./filetransfer.js";
export * as authopt from "./authopt.js";
export * as agent from "./agent.js";
