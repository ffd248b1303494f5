/** `@twisted-ts/conch/client`: client helpers (known_hosts, endpoints). */
export {};
