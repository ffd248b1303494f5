/**
 * A minimal WebAssembly assembler for the transport's kernels (Poly1305, sntrup761): modules are
 * built at run time (Poly1305's at load, sntrup761's on first use) from named instructions, so there is no build step and no binary blob, and
 * a reviewer can check every opcode against the WebAssembly core specification (release 2.0,
 * chapter 5 "Binary Format"; the sections are named below). Internal to `ssh/_transport`.
 *
 * Only what the kernels use is here: one memory, functions with their own types, exports, and
 * structured control flow. Every byte goes straight into a growing Uint8Array (`ByteWriter`), with
 * no spreads, temporary arrays or boxed elements per instruction, because assembling runs in a
 * cold process, where V8 interprets this code.
 */

// ---- value types ("Number Types", "Vector Types") ----
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F64 = 0x7c;
export const V128 = 0x7b;

// ---- instructions without immediates ("Instructions"), by their specification names ----
export const SELECT = 0x1b; // select ("Parametric Instructions")
export const I32_EQZ = 0x45; // i32.eqz
export const I32_NE = 0x47; // i32.ne
export const I32_LT_S = 0x48; // i32.lt_s
export const I32_GT_S = 0x4a; // i32.gt_s
export const I32_LE_S = 0x4c; // i32.le_s
export const I32_GE_S = 0x4e; // i32.ge_s
export const I32_ADD = 0x6a; // i32.add
export const I32_SUB = 0x6b; // i32.sub
export const I32_MUL = 0x6c; // i32.mul
export const I32_AND = 0x71; // i32.and
export const I32_OR = 0x72; // i32.or
export const I32_XOR = 0x73; // i32.xor
export const I32_SHL = 0x74; // i32.shl
export const I32_SHR_S = 0x75; // i32.shr_s
export const I32_SHR_U = 0x76; // i32.shr_u
export const I64_ADD = 0x7c; // i64.add
export const I64_SUB = 0x7d; // i64.sub
export const I64_MUL = 0x7e; // i64.mul
export const I64_AND = 0x83; // i64.and
export const I64_OR = 0x84; // i64.or
export const I64_SHR_S = 0x87; // i64.shr_s
export const I64_SHR_U = 0x88; // i64.shr_u
export const F64_FLOOR = 0x9c; // f64.floor
export const F64_ADD = 0xa0; // f64.add
export const F64_SUB = 0xa1; // f64.sub
export const F64_MUL = 0xa2; // f64.mul
export const I32_WRAP_I64 = 0xa7; // i32.wrap_i64
export const I32_TRUNC_F64_S = 0xaa; // i32.trunc_f64_s
export const I64_EXTEND_I32_U = 0xad; // i64.extend_i32_u
export const F64_CONVERT_I32_S = 0xb7; // f64.convert_i32_s

// ---- "Vector Instructions", after the 0xfd prefix (`Code.simd`) ----
export const F64X2_SPLAT = 0x14; // f64x2.splat
export const F64X2_ADD = 0xf0; // f64x2.add
export const F64X2_SUB = 0xf1; // f64x2.sub
export const F64X2_MUL = 0xf2; // f64x2.mul

/**
 * Bytes appended one at a time into a Uint8Array that doubles when full: no boxed array elements
 * and no copies but the doubling (native), which keeps assembling cheap in a cold process.
 */
export class ByteWriter {
  private buf = new Uint8Array(1024);
  /** The number of bytes written. */
  length = 0;

  /** Appends one byte. */
  byte(b: number): void {
    if (this.length === this.buf.length) {
      const bigger = new Uint8Array(2 * this.buf.length);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.length++] = b;
  }

  /** Appends `bytes`. */
  append(bytes: Uint8Array): void {
    while (this.length + bytes.length > this.buf.length) {
      const bigger = new Uint8Array(2 * this.buf.length);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** The bytes written so far (a view, valid until the next write). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Appends n (0 <= n < 2^32) as unsigned LEB128 ("Integers"). */
export function uleb(out: ByteWriter, n: number): void {
  n >>>= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>>= 7;
    if (n === 0) {
      out.byte(b);
      return;
    }
    out.byte(b | 0x80);
  }
}

/** Appends n (an int32) as signed LEB128 ("Integers"). */
export function sleb(out: ByteWriter, n: number): void {
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.byte(b);
      return;
    }
    out.byte(b | 0x80);
  }
}

const f64Scratch = new Float64Array(1);
const f64Bytes = new Uint8Array(f64Scratch.buffer);

/**
 * A function body under construction: each method appends one instruction and returns
 * `this`, so that a listing reads top to bottom in stack order.
 */
export class Code extends ByteWriter {

  /** An instruction without immediates (the constants above). */
  op(opcode: number): this {
    this.byte(opcode);
    return this;
  }

  /** A vector instruction without immediates: the prefix 0xfd, then its opcode as LEB128. */
  simd(opcode: number): this {
    this.byte(0xfd);
    uleb(this, opcode);
    return this;
  }

  // -- "Control Instructions"; blocks and loops have the empty block type 0x40 --
  /** block */
  block(): this {
    this.byte(0x02);
    this.byte(0x40);
    return this;
  }
  /** loop */
  loop(): this {
    this.byte(0x03);
    this.byte(0x40);
    return this;
  }
  /** if (on a public condition only, wherever it is used) */
  if(): this {
    this.byte(0x04);
    this.byte(0x40);
    return this;
  }
  /** else */
  else(): this {
    this.byte(0x05);
    return this;
  }
  /** end */
  end(): this {
    this.byte(0x0b);
    return this;
  }
  /** br depth */
  br(depth: number): this {
    return this.indexed(0x0c, depth);
  }
  /** br_if depth */
  brIf(depth: number): this {
    return this.indexed(0x0d, depth);
  }
  /** call funcidx */
  call(index: number): this {
    return this.indexed(0x10, index);
  }

  // -- "Variable Instructions" --
  /** local.get */
  get(local: number): this {
    return this.indexed(0x20, local);
  }
  /** local.set */
  set(local: number): this {
    return this.indexed(0x21, local);
  }
  /** local.tee */
  tee(local: number): this {
    return this.indexed(0x22, local);
  }

  /** An instruction whose one immediate is an index (a label depth, function or local), LEB128. */
  private indexed(opcode: number, index: number): this {
    this.byte(opcode);
    uleb(this, index);
    return this;
  }

  // -- "Memory Instructions": memarg is the alignment exponent, then the offset --
  private mem(opcode: number, align: number, offset: number): this {
    this.byte(opcode);
    return this.memarg(align, offset);
  }
  private memarg(align: number, offset: number): this {
    uleb(this, align);
    uleb(this, offset);
    return this;
  }
  /** i32.load */
  i32Load(offset = 0): this {
    return this.mem(0x28, 2, offset);
  }
  /** i64.load */
  i64Load(offset = 0): this {
    return this.mem(0x29, 3, offset);
  }
  /** f64.load */
  f64Load(offset = 0): this {
    return this.mem(0x2b, 3, offset);
  }
  /** i32.load8_s */
  i32Load8S(offset = 0): this {
    return this.mem(0x2c, 0, offset);
  }
  /** i64.load32_u; `align` 0 for the unaligned loads of Poly1305's message limbs */
  i64Load32U(offset = 0, align = 2): this {
    return this.mem(0x35, align, offset);
  }
  /** i32.store */
  i32Store(offset = 0): this {
    return this.mem(0x36, 2, offset);
  }
  /** i64.store */
  i64Store(offset = 0): this {
    return this.mem(0x37, 3, offset);
  }
  /** f64.store */
  f64Store(offset = 0): this {
    return this.mem(0x39, 3, offset);
  }
  /** v128.load (0xfd 0), 8-byte aligned here */
  v128Load(offset = 0): this {
    this.byte(0xfd);
    uleb(this, 0x00);
    return this.memarg(3, offset);
  }
  /** v128.store (0xfd 11), 8-byte aligned here */
  v128Store(offset = 0): this {
    this.byte(0xfd);
    uleb(this, 0x0b);
    return this.memarg(3, offset);
  }
  /** i32.store8 */
  i32Store8(offset = 0): this {
    return this.mem(0x3a, 0, offset);
  }

  // -- constants ("Numeric Instructions") --
  /** i32.const */
  i32(value: number): this {
    this.byte(0x41);
    sleb(this, value);
    return this;
  }
  /** i64.const, for values in the int32 range */
  i64(value: number): this {
    this.byte(0x42);
    sleb(this, value);
    return this;
  }
  /** f64.const: the IEEE 754 bits, little-endian */
  f64(value: number): this {
    this.byte(0x44);
    f64Scratch[0] = value;
    for (let i = 0; i < 8; i++) this.byte(f64Bytes[i]!);
    return this;
  }
}

/** A function of a module: its signature, locals (one value type each) and body. */
export interface WasmFunction {
  /** The export name, if the function is exported. */
  readonly name?: string;
  readonly params: readonly number[];
  readonly results: readonly number[];
  /** Local value types after the parameters, grouped as [count, type] runs. */
  readonly locals: ReadonlyArray<readonly [number, number]>;
  readonly code: Code;
}

/** Appends a section ("Sections"): its id, its size, then the body. */
function section(out: ByteWriter, id: number, body: ByteWriter): void {
  out.byte(id);
  uleb(out, body.length);
  out.append(body.bytes());
  body.length = 0;
}

function pushName(out: ByteWriter, name: string): void {
  uleb(out, name.length);
  for (let i = 0; i < name.length; i++) out.byte(name.charCodeAt(i)); // ASCII names only
}

function pushTypes(out: ByteWriter, types: readonly number[]): void {
  uleb(out, types.length);
  for (let i = 0; i < types.length; i++) out.byte(types[i]!);
}

/**
 * A module ("Modules") of `functions`, each with its own type (index i is type i and function i), one
 * memory of `pages` 64 KiB pages exported as "mem" after the exported functions.
 */
export function assemble(functions: readonly WasmFunction[], pages: number): Uint8Array {
  const out = new ByteWriter();
  out.append(MAGIC_AND_VERSION);
  const body = new ByteWriter();
  // "Type Section": functype 0x60, parameter and result vectors
  uleb(body, functions.length);
  for (const f of functions) {
    body.byte(0x60);
    pushTypes(body, f.params);
    pushTypes(body, f.results);
  }
  section(out, 1, body);
  // "Function Section": function i has type i
  uleb(body, functions.length);
  for (let i = 0; i < functions.length; i++) uleb(body, i);
  section(out, 3, body);
  // "Memory Section": one memory, limits with a minimum only (0x00)
  body.byte(1);
  body.byte(0x00);
  uleb(body, pages);
  section(out, 5, body);
  // "Export Section": kind 0x00 a function, 0x02 a memory
  let exported = 1;
  for (const f of functions) if (f.name !== undefined) exported++;
  uleb(body, exported);
  for (let i = 0; i < functions.length; i++) {
    const name = functions[i]!.name;
    if (name === undefined) continue;
    pushName(body, name);
    body.byte(0x00);
    uleb(body, i);
  }
  pushName(body, "mem");
  body.byte(0x02);
  body.byte(0);
  section(out, 7, body);
  // "Code Section": each body is its size, the local runs, the code and a final end
  uleb(body, functions.length);
  const head = new ByteWriter();
  for (const f of functions) {
    head.length = 0;
    uleb(head, f.locals.length);
    for (const [count, type] of f.locals) {
      uleb(head, count);
      head.byte(type);
    }
    uleb(body, head.length + f.code.length + 1);
    body.append(head.bytes());
    body.append(f.code.bytes());
    body.byte(0x0b);
  }
  section(out, 10, body);
  return out.bytes().slice();
}

const MAGIC_AND_VERSION = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00); // "Modules": magic, version 1

/** The memory of an instance: its buffer is replaced when it grows. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** The little of the WebAssembly API used here (the project's `lib` setting leaves out its types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
  validate(bytes: Uint8Array): boolean;
}

/** WebAssembly is missing, as under `node --jitless`: the transport's kernels cannot run. */
export class WebAssemblyUnavailableError extends Error {
  readonly code = "ERR_WEBASSEMBLY_UNAVAILABLE";
  constructor(what: string) {
    super(`${what} needs WebAssembly, which this runtime lacks (node --jitless?)`);
    this.name = "WebAssemblyUnavailableError";
  }
}

/** The runtime's WebAssembly API, or undefined without one. */
export function webAssembly(): WasmApi | undefined {
  return (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
}

/**
 * Compiles and instantiates `bytes` synchronously (fine for modules of a few KiB: V8's baseline
 * compiler, Liftoff, compiles them at once) and returns its exports; `what` names the user in
 * the error thrown when the runtime has no WebAssembly.
 */
export function instantiate<E>(bytes: Uint8Array, what: string): E {
  const wa = webAssembly();
  if (wa === undefined) throw new WebAssemblyUnavailableError(what);
  return new wa.Instance(new wa.Module(bytes)).exports as E;
}
