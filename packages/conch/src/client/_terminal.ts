/**
 * Reading a line from the user's terminal (internal): shared by the bins (ckeygen's passphrase
 * prompts) and the default client (passwords, passphrases, keyboard-interactive answers).
 */

/** The end of the input or ^C while a line was being read. */
export class TerminalInputEnded extends Error {
  readonly code = "ERR_TERMINAL_INPUT_ENDED";
  constructor(message = "no answer: the input ended") {
    super(message);
    this.name = "TerminalInputEnded";
  }
}

/** Where a line is read from and its prompt written to (standard input and standard error by default). */
export interface TerminalStreams {
  input: NodeJS.ReadStream;
  output: NodeJS.WritableStream;
}

const defaultStreams = (): TerminalStreams => ({ input: process.stdin, output: process.stderr });

/**
 * Writes `question` and reads one line; with `hidden` on a terminal, in raw mode without echoing
 * it (backspace edits, ^C rejects with {@link TerminalInputEnded}). The end of the input gives
 * what was typed so far, or rejects when `rejectOnEnd` and nothing was.
 */
export function readTerminalLine(question: string, hidden: boolean, streams: TerminalStreams = defaultStreams(), rejectOnEnd = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const { input, output } = streams;
    output.write(question);
    const tty = hidden && input.isTTY === true;
    if (tty) input.setRawMode(true);
    let buf = "";
    let got = false;
    const finish = (error?: Error): void => {
      input.removeListener("data", onData);
      input.removeListener("end", onEnd);
      if (tty) {
        input.setRawMode(false);
        output.write("\n");
      }
      input.pause();
      if (error !== undefined) reject(error);
      else resolve(buf);
    };
    const onEnd = (): void => finish(rejectOnEnd && !got ? new TerminalInputEnded() : undefined);
    const onData = (chunk: Buffer): void => {
      got = true;
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\n" || ch === "\r") return finish();
        if (ch === "\u0003") return finish(new TerminalInputEnded("interrupted"));
        if (ch === "\u0004" && buf === "") return finish(new TerminalInputEnded());
        if (ch === "\u007f" || ch === "\b") buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    input.on("data", onData);
    input.on("end", onEnd);
    input.resume();
  });
}
