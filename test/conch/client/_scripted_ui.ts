/** A ClientUI for tests: answers from a script and records what it was asked and told. */
import { fail, succeed, type Deferred } from "@twisted-ts/internet/defer";
import type { ClientUI } from "@twisted-ts/conch/client/default";

export class ScriptedUI implements ClientUI {
  readonly asked: Array<[string, boolean]> = [];
  readonly warnings: string[] = [];
  constructor(
    private readonly answers: string[] = [],
    /** The answer to every yes/no question. */
    private readonly yes = true,
  ) {}
  ask(prompt: string, echo: boolean): Deferred<string> {
    this.asked.push([prompt, echo]);
    const a = this.answers.shift();
    return a === undefined ? fail(new Error("no more answers")) : succeed(a);
  }
  prompt(text: string): Deferred<boolean> {
    this.asked.push([text, true]);
    return succeed(this.yes);
  }
  warn(text: string): void {
    this.warnings.push(text);
  }
}
