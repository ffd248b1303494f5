/** `twisted.internet.error.AlreadyCalled` / `AlreadyCancelled`, raised by IDelayedCall methods. */

/** The delayed call has already run. */
export class AlreadyCalled extends Error {
  constructor(message = "Tried to cancel an already-called event.") {
    super(message);
    this.name = "AlreadyCalled";
  }
}

/** The delayed call has already been cancelled. */
export class AlreadyCancelled extends Error {
  constructor(message = "Tried to cancel an already-cancelled event.") {
    super(message);
    this.name = "AlreadyCancelled";
  }
}
