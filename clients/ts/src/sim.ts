/**
 * A local chain that runs CosmWasm contracts' own Wasm in Node or a browser, so a frontend sees
 * the exact on-chain answer before it sends a transaction.
 *
 * The host implements the imports of CosmWasm 2.x (`interface_version_8`): storage (read, write,
 * remove, ordered iteration), addresses, `debug`, `abort`, and contract-info queries of this
 * local chain's contracts. The contract's integer arithmetic runs unchanged in
 * the JavaScript engine's Wasm, so its outputs are the chain's bits. What it does not do: meter
 * gas (per-layer gas comes from `cwnn gas`, measured in cosmwasm-vm), keep bank balances (funds
 * are passed to the contract as sent), dispatch a response's messages (a call that returns any
 * is refused with {@link SimulationError}), smart queries between contracts, or the crypto
 * verification imports.
 *
 * Addresses are strings of 3–90 lowercase letters and digits; their canonical form is their
 * UTF-8 bytes.
 */
import type { Event } from '@cosmjs/stargate';
import { fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from './encoding.js';

export interface Coin {
  denom: string;
  amount: string;
}

/** The contract answered with an error (`{"error": …}`), or trapped (a panic). */
export class ContractError extends Error {
  name = 'ContractError';
}

/** The contract asked for something this local host does not do. */
export class SimulationError extends Error {
  name = 'SimulationError';
}

/** What `execute` and `instantiate` return: cosmjs's `ExecuteResult` plus the response data. */
export interface LocalResult {
  readonly logs: readonly never[];
  readonly height: number;
  readonly transactionHash: string;
  readonly events: readonly Event[];
  readonly gasWanted: bigint;
  readonly gasUsed: bigint;
  /** The response's `data`, undecoded (cosmjs leaves it out; contracts' replies carry it). */
  readonly data: Uint8Array | null;
}

type Storage = Map<string, Uint8Array>; // key: hex of the key bytes (hex keeps byte order)

interface Contract {
  codeId: number;
  creator: string;
  admin: string | null;
  label: string;
  storage: Storage;
}

type Entry = 'instantiate' | 'execute' | 'query';

const ADDRESS = /^[a-z0-9]{3,90}$/;

function addressError(a: string): string | null {
  return ADDRESS.test(a) ? null : `invalid address '${a}': 3–90 lowercase letters and digits`;
}

export class LocalChain {
  readonly chainId = 'cwnn-local';
  height = 1;
  /** Block time in nanoseconds; each transaction moves it 5 s on. */
  timeNanos = 1_700_000_000_000_000_000n;
  /** Receives the contracts' `debug` messages. */
  debug: (message: string) => void = () => {};
  private codes: WebAssembly.Module[] = [];
  private contracts = new Map<string, Contract>();
  private txs = 0;
  private instances = 0;
  /** Calls run one at a time, as in a block: each sees the state the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stores a Wasm code; returns its code id (1, 2, …). */
  async upload(wasm: BufferSource | WebAssembly.Module): Promise<number> {
    const module = wasm instanceof WebAssembly.Module ? wasm : await WebAssembly.compile(wasm);
    this.codes.push(module);
    return this.codes.length;
  }

  async instantiate(
    sender: string,
    codeId: number,
    msg: unknown,
    label: string,
    _fee?: unknown,
    options: { funds?: readonly Coin[]; admin?: string } = {},
  ): Promise<LocalResult & { contractAddress: string }> {
    if (!this.codes[codeId - 1]) throw new SimulationError(`no code with id ${codeId}`);
    this.instances += 1;
    const address = `cwnn1local${codeId}x${this.instances}`;
    const contract = { codeId, creator: sender, admin: options.admin ?? null, label, storage: new Map() };
    this.contracts.set(address, contract);
    try {
      const result = await this.transact('instantiate', sender, address, msg, options.funds ?? []);
      return { ...result, contractAddress: address };
    } catch (e) {
      this.contracts.delete(address);
      throw e;
    }
  }

  /** Runs an execute message; state changes only if it succeeds. cosmjs's argument order. */
  async execute(
    sender: string,
    contractAddress: string,
    msg: unknown,
    _fee?: unknown,
    _memo?: string,
    funds: readonly Coin[] = [],
  ): Promise<LocalResult> {
    return this.transact('execute', sender, contractAddress, msg, funds);
  }

  async queryContractSmart(address: string, query: unknown): Promise<any> {
    const contract = this.contract(address);
    const out = await this.serial(() => this.call(contract, address, 'query', [this.env(address), json(query)]));
    return JSON.parse(fromUtf8(fromBase64(out as string)));
  }

  /** A copy of a contract's storage, keys in hex: for tests and inspection. */
  storage(address: string): Map<string, Uint8Array> {
    return new Map(this.contract(address).storage);
  }

  private contract(address: string): Contract {
    const c = this.contracts.get(address);
    if (!c) throw new SimulationError(`no contract at ${address}`);
    return c;
  }

  private async transact(entry: Entry, sender: string, address: string, msg: unknown, funds: readonly Coin[]) {
    const bad = addressError(sender);
    if (bad) throw new ContractError(`sender: ${bad}`);
    const contract = this.contract(address);
    return this.serial(async () => {
      this.height += 1;
      this.timeNanos += 5_000_000_000n;
      const info = json({ sender, funds });
      const res = (await this.call(contract, address, entry, [this.env(address), info, json(msg)], refuseMessages)) as any;
      return this.result(entry, address, res);
    });
  }

  private result(entry: Entry, address: string, res: any): LocalResult {
    const addr = { key: '_contract_address', value: address };
    const events: Event[] = [{ type: entry, attributes: [addr] }];
    if (res.attributes?.length) events.push({ type: 'wasm', attributes: [addr, ...res.attributes] });
    for (const e of res.events ?? []) events.push({ type: `wasm-${e.type}`, attributes: [addr, ...e.attributes] });
    this.txs += 1;
    return {
      logs: [],
      height: this.height,
      transactionHash: this.txs.toString(16).toUpperCase().padStart(64, '0'),
      events,
      gasWanted: 0n,
      gasUsed: 0n,
      data: res.data ? fromBase64(res.data) : null,
    };
  }

  private env(address: string): Uint8Array {
    return json({
      block: { height: this.height, time: this.timeNanos.toString(), chain_id: this.chainId },
      transaction: { index: 0 },
      contract: { address },
    });
  }

  /**
   * One call in a fresh instance (as the chain does), on a copy of the storage. An execute's
   * copy replaces the contract's once the call succeeded and `accept` took its response; a
   * query may not write.
   */
  private async call(contract: Contract, address: string, entry: Entry, args: Uint8Array[], accept?: (res: any) => void) {
    const storage: Storage = new Map(contract.storage);
    const host = new Host(storage, entry === 'query', this.debug, (req) => this.querier(req));
    const instance = await WebAssembly.instantiate(this.codes[contract.codeId - 1], { env: host.imports() });
    host.bind(instance);
    const out = host.run(entry, args);
    if ('error' in out) throw new ContractError(`${address}: ${out.error}`);
    if (entry !== 'query') {
      accept?.(out.ok);
      contract.storage = storage;
    }
    return out.ok;
  }

  /**
   * `query_chain`: contract info of this chain's contracts. Wasm imports are synchronous and a
   * fresh instance is made asynchronously, so smart queries to other contracts are refused.
   */
  private querier(request: any): unknown {
    const target = request?.wasm?.contract_info?.contract_addr;
    if (target === undefined) {
      return { error: { unsupported_request: { kind: `local chain: ${JSON.stringify(request).slice(0, 80)}` } } };
    }
    const c = this.contracts.get(target);
    if (!c) return { error: { no_such_contract: { addr: target } } };
    const info = { code_id: c.codeId, creator: c.creator, admin: c.admin, pinned: false, ibc_port: null };
    return { ok: { ok: toBase64(json(info)) } };
  }
}

/** The chain does not dispatch messages here, so a response with any is refused whole. */
function refuseMessages(res: any) {
  if (res.messages?.length) {
    throw new SimulationError(
      `the contract returned ${res.messages.length} message(s) (a bank send, a call to another contract): the local chain does not dispatch them`,
    );
  }
}

function json(v: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(v));
}

/**
 * The host side of one instance: regions in its memory, and the imports.
 * Regions are `{ offset: u32, capacity: u32, length: u32 }`, little-endian.
 */
class Host {
  private exports!: any;
  private iterators: [string, Uint8Array][][] = [];

  constructor(
    private storage: Storage,
    private readOnly: boolean,
    private log: (m: string) => void,
    private querier: (request: unknown) => unknown,
  ) {}

  bind(instance: WebAssembly.Instance) {
    this.exports = instance.exports;
  }

  run(entry: Entry, args: Uint8Array[]): { ok: unknown } | { error: string } {
    const fn = this.exports[entry];
    if (typeof fn !== 'function') throw new SimulationError(`the contract has no '${entry}' entry point`);
    try {
      const ptrs = args.map((a) => this.write(a));
      return JSON.parse(fromUtf8(this.read(fn(...ptrs))));
    } catch (e) {
      if (e instanceof SimulationError || e instanceof ContractError) throw e;
      throw new ContractError(`the contract trapped: ${(e as Error).message}`);
    }
  }

  private view(): DataView {
    return new DataView(this.exports.memory.buffer);
  }

  private read(ptr: number): Uint8Array {
    const v = this.view();
    const offset = v.getUint32(ptr, true);
    const length = v.getUint32(ptr + 8, true);
    return new Uint8Array(this.exports.memory.buffer, offset, length).slice();
  }

  /** Copies `bytes` into a region the contract allocates; returns the region's address. */
  private write(bytes: Uint8Array): number {
    const ptr = this.exports.allocate(bytes.length);
    this.fill(ptr, bytes);
    return ptr;
  }

  /** Writes into an existing region (one the contract passed for an answer). */
  private fill(ptr: number, bytes: Uint8Array) {
    const v = this.view();
    if (bytes.length > v.getUint32(ptr + 4, true)) throw new SimulationError('a region is too small for the answer');
    new Uint8Array(this.exports.memory.buffer, v.getUint32(ptr, true), bytes.length).set(bytes);
    v.setUint32(ptr + 8, bytes.length, true);
  }

  private key(ptr: number): string {
    return toHex(this.read(ptr));
  }

  private writable() {
    if (this.readOnly) throw new SimulationError('a query tried to change storage');
  }

  imports(): Record<string, Function> {
    const unsupported = (name: string) => () => {
      throw new SimulationError(`the local chain does not implement ${name}`);
    };
    return {
      db_read: (k: number) => {
        const v = this.storage.get(this.key(k));
        return v ? this.write(v) : 0;
      },
      db_write: (k: number, v: number) => {
        this.writable();
        this.storage.set(this.key(k), this.read(v));
      },
      db_remove: (k: number) => {
        this.writable();
        this.storage.delete(this.key(k));
      },
      db_scan: (start: number, end: number, order: number) => this.scan(start, end, order),
      db_next: (id: number) => {
        const [k, v] = this.next(id) ?? ['', new Uint8Array()];
        return this.write(sections([fromHex(k), v]));
      },
      db_next_key: (id: number) => {
        const e = this.next(id);
        return e ? this.write(fromHex(e[0])) : 0;
      },
      db_next_value: (id: number) => {
        const e = this.next(id);
        return e ? this.write(e[1]) : 0;
      },
      addr_validate: (src: number) => this.errorOr(addressError(fromUtf8(this.read(src)))),
      addr_canonicalize: (src: number, dst: number) => {
        const a = fromUtf8(this.read(src));
        const bad = addressError(a);
        if (!bad) this.fill(dst, utf8.encode(a));
        return this.errorOr(bad);
      },
      addr_humanize: (src: number, dst: number) => {
        const bytes = this.read(src);
        const a = new TextDecoder().decode(bytes);
        const bad = addressError(a);
        if (!bad) this.fill(dst, bytes);
        return this.errorOr(bad);
      },
      query_chain: (req: number) => this.query(JSON.parse(fromUtf8(this.read(req)))),
      debug: (m: number) => this.log(fromUtf8(this.read(m))),
      abort: (m: number) => {
        throw new ContractError(`the contract aborted: ${fromUtf8(this.read(m))}`);
      },
      secp256k1_verify: unsupported('secp256k1_verify'),
      secp256k1_recover_pubkey: unsupported('secp256k1_recover_pubkey'),
      ed25519_verify: unsupported('ed25519_verify'),
      ed25519_batch_verify: unsupported('ed25519_batch_verify'),
    };
  }

  private errorOr(message: string | null): number {
    return message ? this.write(utf8.encode(message)) : 0;
  }

  private scan(start: number, end: number, order: number): number {
    const lo = start ? this.key(start) : null;
    const hi = end ? this.key(end) : null;
    const keys = [...this.storage.keys()].filter((k) => (lo === null || k >= lo) && (hi === null || k < hi)).sort();
    if (order !== 1 && order !== 2) throw new SimulationError(`db_scan: order ${order} is neither 1 nor 2`);
    if (order === 2) keys.reverse();
    this.iterators.push(keys.map((k) => [k, this.storage.get(k)!]));
    return this.iterators.length;
  }

  private next(id: number): [string, Uint8Array] | undefined {
    const it = this.iterators[id - 1];
    if (!it) throw new SimulationError(`no iterator ${id}`);
    return it.shift();
  }

  private query(request: unknown): number {
    return this.write(json(this.querier(request)));
  }
}

/** Sections: each part followed by its length as a big-endian u32 (`db_next`'s encoding). */
function sections(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length + 4, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    new DataView(out.buffer).setUint32(at + p.length, p.length, false);
    at += p.length + 4;
  }
  return out;
}
