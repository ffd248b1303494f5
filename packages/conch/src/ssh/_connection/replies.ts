/**
 * Replies in request order. RFC 4254 §4 and §5.4 require SUCCESS/FAILURE replies in the order the
 * requests came, even when a handler answers later (a Deferred) than one after it.
 */
export class OrderedReplies {
  private readonly queue: Array<{ send: (() => void) | undefined }> = [];

  /** Reserves the next reply slot; call the returned function with the sender once known. */
  reserve(): (send: () => void) => void {
    const slot: { send: (() => void) | undefined } = { send: undefined };
    this.queue.push(slot);
    return (send) => {
      slot.send = send;
      this.flush();
    };
  }

  /** Number of requests still waiting for their reply to go out. */
  get pending(): number {
    return this.queue.length;
  }

  private flush(): void {
    while (this.queue.length > 0 && this.queue[0]!.send !== undefined) {
      const { send } = this.queue.shift()!;
      send!();
    }
  }
}
