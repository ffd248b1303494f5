/**
 * A FIFO of byte chunks: what a channel holds back while the peer's window is shut. Chunks are kept
 * as given (views, not copies) and only joined when one outgoing packet spans several of them.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private size = 0;

  /** Bytes queued. */
  get length(): number {
    return this.size;
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.size += data.length;
  }

  /** Removes and returns up to `n` bytes from the front. */
  take(n: number): Uint8Array {
    if (n <= 0 || this.size === 0) return new Uint8Array(0);
    const first = this.chunks[this.head]!;
    if (first.length >= n) {
      // The common case: one chunk covers the packet, so hand out a view.
      const out = first.length === n ? first : first.subarray(0, n);
      if (first.length === n) this.shift();
      else this.chunks[this.head] = first.subarray(n);
      this.size -= n;
      return out;
    }
    const want = Math.min(n, this.size);
    const out = new Uint8Array(want);
    let o = 0;
    while (o < want) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.length, want - o);
      out.set(k === c.length ? c : c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.shift();
      else this.chunks[this.head] = c.subarray(k);
    }
    this.size -= want;
    return out;
  }

  /** Everything queued, as one array (joined only when there is more than one chunk). */
  takeAll(): Uint8Array {
    return this.take(this.size);
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.size = 0;
  }

  private shift(): void {
    this.chunks[this.head] = EMPTY;
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
