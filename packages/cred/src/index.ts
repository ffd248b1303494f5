/** `@twisted-ts/cred`: Twisted's authentication framework. */
export {};
