/**
 * The connection service's message numbers and names (RFC 4250 §4.1.2, Twisted's
 * `connection.MSG_*`) and its limits: the public constants `connection` re-exports.
 */
import type { MessageTable } from "../service.js";

export const MSG_GLOBAL_REQUEST = 80;
export const MSG_REQUEST_SUCCESS = 81;
export const MSG_REQUEST_FAILURE = 82;
export const MSG_CHANNEL_OPEN = 90;
export const MSG_CHANNEL_OPEN_CONFIRMATION = 91;
export const MSG_CHANNEL_OPEN_FAILURE = 92;
export const MSG_CHANNEL_WINDOW_ADJUST = 93;
export const MSG_CHANNEL_DATA = 94;
export const MSG_CHANNEL_EXTENDED_DATA = 95;
export const MSG_CHANNEL_EOF = 96;
export const MSG_CHANNEL_CLOSE = 97;
export const MSG_CHANNEL_REQUEST = 98;
export const MSG_CHANNEL_SUCCESS = 99;
export const MSG_CHANNEL_FAILURE = 100;

/** The data type code of stderr in CHANNEL_EXTENDED_DATA (RFC 4254 §5.2). */
export const EXTENDED_DATA_STDERR = 1;

/**
 * Channels one connection may have open or opening at once. Past it, CHANNEL_OPEN is refused with
 * OPEN_RESOURCE_SHORTAGE (a flood of opens cannot exhaust the server).
 */
export const MAX_OPEN_CHANNELS = 1024;

/**
 * OpenSSH's `MaxSessions` default: session channels one connection may have open at once on a
 * server. Past it, a session CHANNEL_OPEN is refused with OPEN_ADMINISTRATIVELY_PROHIBITED.
 */
export const DEFAULT_MAX_SESSIONS = 10;

/** Message numbers of the connection service, to Twisted's names. */
export const messages: MessageTable = {
  [MSG_GLOBAL_REQUEST]: "MSG_GLOBAL_REQUEST",
  [MSG_REQUEST_SUCCESS]: "MSG_REQUEST_SUCCESS",
  [MSG_REQUEST_FAILURE]: "MSG_REQUEST_FAILURE",
  [MSG_CHANNEL_OPEN]: "MSG_CHANNEL_OPEN",
  [MSG_CHANNEL_OPEN_CONFIRMATION]: "MSG_CHANNEL_OPEN_CONFIRMATION",
  [MSG_CHANNEL_OPEN_FAILURE]: "MSG_CHANNEL_OPEN_FAILURE",
  [MSG_CHANNEL_WINDOW_ADJUST]: "MSG_CHANNEL_WINDOW_ADJUST",
  [MSG_CHANNEL_DATA]: "MSG_CHANNEL_DATA",
  [MSG_CHANNEL_EXTENDED_DATA]: "MSG_CHANNEL_EXTENDED_DATA",
  [MSG_CHANNEL_EOF]: "MSG_CHANNEL_EOF",
  [MSG_CHANNEL_CLOSE]: "MSG_CHANNEL_CLOSE",
  [MSG_CHANNEL_REQUEST]: "MSG_CHANNEL_REQUEST",
  [MSG_CHANNEL_SUCCESS]: "MSG_CHANNEL_SUCCESS",
  [MSG_CHANNEL_FAILURE]: "MSG_CHANNEL_FAILURE",
};
