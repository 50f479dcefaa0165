// Posts a tensorgrid training job from a wallet and waits until it is paid — the same job
// `tensorgrid job post --spec-uri` posts, for JS/TS developers. It uses the client generated
// from the committed IDL (clients/ts, @solana/kit), so it shows what another client needs.
//
//   npm run post-job -- --spec-uri s3://bucket/specs/x.json --spec jobs/x.json \
//       --reward 0.5 --max-duration 7200 [--url http://127.0.0.1:8899] [--keypair FILE] \
//       [--fee-payer FILE] [--ws-url WS] [--market ADDRESS] [--device any|gpu|cuda|metal] \
//       [--min-vram MIB] [--wait] [--timeout S]
//
// --reward is in the market's unit: SOL, or the tokens of the mint the market is priced in
// (its decimals; the reward then comes from the poster's associated token account, checked
// before sending).
// --spec is the local copy of what --spec-uri serves: its sha256 is the spec hash committed
// on chain (workers refuse a spec whose bytes hash differently). With --spec-sha256 HEX
// instead, no local file is needed. Prints one JSON line per step on stdout; exit code 0
// when posted (and, with --wait, paid), 1 otherwise.

import { createHash } from "crypto";
import { readFileSync } from "fs";
import { homedir } from "os";
import { join } from "path";

import {
  address,
  createKeyPairSignerFromBytes,
  createSolanaRpc,
  createSolanaRpcSubscriptions,
  getBase58Decoder,
  type Address,
  type KeyPairSigner,
  type Signature,
} from "@solana/kit";
import {
  DeviceRequirement,
  eventsOf,
  fetchMarket,
  getMarketDecoder,
  MARKET_DISCRIMINATOR,
  postInstructions,
  send,
  SOL_MINT,
  TENSORGRID_PROGRAM_ADDRESS,
  tokenAccountsOf,
  type Connection,
  type TransactionWithMeta,
} from "../clients/ts";

type Args = Record<string, string | boolean>;

function parseArgs(argv: string[]): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) {
      out[key] = true;
    } else {
      out[key] = next;
      i++;
    }
  }
  return out;
}

function str(args: Args, key: string, fallback?: string): string {
  const v = args[key];
  if (typeof v === "string") return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`--${key} is required`);
}

/**
 * An amount as typed ("12.5") to base units of a unit with `decimals` decimals (SOL: 9, to
 * lamports; USDC: 6), exactly (no floating point); more decimals than the unit has, a sign or
 * more than a u64 holds is an error.
 */
export function toBaseUnits(text: string, decimals: number): bigint {
  const m = /^(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) throw new Error(`${text} is not an amount (e.g. 0.5)`);
  const frac = (m[2] ?? "").replace(/0+$/, "");
  if (frac.length > decimals) throw new Error(`${text}: this unit has ${decimals} decimals`);
  const units = BigInt(m[1] || "0") * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, "0") || "0");
  if (units > 0xffff_ffff_ffff_ffffn) throw new Error(`${text} is more than an amount can hold`);
  return units;
}

/** Base units as a decimal with `decimals` decimals ("12.5"), trailing zeros trimmed. */
export function fromBaseUnits(units: bigint, decimals: number): string {
  const digits = units.toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const frac = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : whole;
}

const TOKEN_PROGRAMS = [
  "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
  "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
];

/** The amount a token account holds (bytes 64..72 of both token programs' layouts); 0 when it does not exist. */
async function tokenBalance(connection: Connection, account: Address): Promise<bigint> {
  const info = await connection.rpc
    .getAccountInfo(account, { encoding: "base64", commitment: "confirmed" })
    .send();
  if (!info.value) return 0n;
  const data = Buffer.from(info.value.data[0], "base64");
  if (!TOKEN_PROGRAMS.includes(info.value.owner) || data.length < 72) {
    throw new Error(`${account} is not a token account`);
  }
  return data.readBigUInt64LE(64);
}

async function readKeypair(path: string): Promise<KeyPairSigner> {
  let bytes: number[];
  try {
    bytes = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    // Not the parser's message: it quotes the file's text, which may be a key.
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw new Error(`keypair file ${path} ${missing ? "does not exist" : "is not a Solana keypair (a JSON array of 64 bytes)"}`);
  }
  if (!Array.isArray(bytes) || bytes.length !== 64) {
    throw new Error(`keypair file ${path} is not a Solana keypair (a JSON array of 64 bytes)`);
  }
  return createKeyPairSignerFromBytes(Uint8Array.from(bytes));
}

function emit(step: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ step, ...fields }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The program's only market on this cluster (or an error asking for --market). */
async function onlyMarket(connection: Connection): Promise<Address> {
  const found = await connection.rpc
    .getProgramAccounts(TENSORGRID_PROGRAM_ADDRESS, {
      encoding: "base64",
      dataSlice: { offset: 0, length: 0 },
      filters: [
        {
          memcmp: {
            offset: 0n,
            bytes: getBase58Decoder().decode(MARKET_DISCRIMINATOR) as never,
            encoding: "base58",
          },
        },
        { dataSize: BigInt(getMarketDecoder().fixedSize) },
      ],
    })
    .send();
  if (found.length !== 1) throw new Error(`${found.length} markets exist: pass --market`);
  return found[0].pubkey;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const url = str(args, "url", process.env.ANCHOR_PROVIDER_URL ?? "http://127.0.0.1:8899");
  const keypairPath = str(args, "keypair", process.env.ANCHOR_WALLET ?? join(homedir(), ".config", "solana", "id.json"));
  const specUri = str(args, "spec-uri");
  const rewardText = str(args, "reward");
  const maxDuration = Number(str(args, "max-duration"));
  if (!Number.isInteger(maxDuration) || maxDuration <= 0) throw new Error("--max-duration: whole seconds > 0");
  const specHashHex =
    typeof args["spec-sha256"] === "string"
      ? (args["spec-sha256"] as string).toLowerCase()
      : createHash("sha256").update(readFileSync(str(args, "spec"))).digest("hex");
  if (!/^[0-9a-f]{64}$/.test(specHashHex)) throw new Error("--spec-sha256: 64 hex characters");
  const device = str(args, "device", "any");
  const deviceReq = {
    any: DeviceRequirement.Any,
    gpu: DeviceRequirement.Gpu,
    cuda: DeviceRequirement.Cuda,
    metal: DeviceRequirement.Metal,
  }[device];
  if (deviceReq === undefined) throw new Error(`--device ${device}: any, gpu, cuda or metal`);

  const poster = await readKeypair(keypairPath);
  const feePayer = typeof args["fee-payer"] === "string" ? await readKeypair(args["fee-payer"] as string) : poster;
  // The websocket: as the Solana CLI derives it (ws(s), port + 1 when explicit).
  const wsUrl =
    typeof args["ws-url"] === "string"
      ? (args["ws-url"] as string)
      : (() => {
          const u = new URL(url);
          u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
          if (u.port) u.port = String(Number(u.port) + 1);
          return u.toString();
        })();
  const connection: Connection = {
    rpc: createSolanaRpc(url),
    rpcSubscriptions: createSolanaRpcSubscriptions(wsUrl),
  };
  const market = typeof args.market === "string" ? address(args.market) : await onlyMarket(connection);
  // The reward is typed in the market's unit: SOL, or its mint's tokens with their decimals
  // (12.5 USDC is 12_500_000 base units, never 12.5 SOL's worth of base units).
  const m = (await fetchMarket(connection.rpc, market, { commitment: "confirmed" })).data;
  const inToken = m.mint !== SOL_MINT;
  const decimals = inToken ? m.decimals : 9;
  const reward = toBaseUnits(rewardText, decimals);
  if (inToken) {
    // Paid from the poster's token account of the mint: refused here, plainly, when it cannot.
    const { token } = await tokenAccountsOf(m, market, poster.address);
    const held = await tokenBalance(connection, token!);
    if (held < reward) {
      throw new Error(
        `token account ${token} of wallet ${poster.address} (mint ${m.mint}) holds ${fromBaseUnits(held, decimals)} tokens; the reward is ${fromBaseUnits(reward, decimals)}`,
      );
    }
  }
  // At the poster's next id (0, 1, 2, …: a job address is never reused), with the poster
  // account created by the first post, agreeing to the market's terms as just read.
  const { job, jobId, instructions, paused } = await postInstructions(connection.rpc, poster, market, {
    reward,
    specHash: Uint8Array.from(Buffer.from(specHashHex, "hex")),
    specUri,
    requirements: { device: deviceReq, minVramMib: Number(str(args, "min-vram", "0")) },
    maxDurationS: BigInt(maxDuration),
  });
  if (paused) throw new Error(`market ${market} is paused`);
  const sent = await send(connection, feePayer, instructions);
  emit("posted", {
    job,
    job_id: jobId.toString(),
    signature: sent.signature,
    reward: reward.toString(),
    unit: inToken ? m.mint : "SOL",
    decimals,
    spec_uri: specUri,
  });

  if (!args.wait) return 0;
  const timeoutMs = Number(str(args, "timeout", "3600")) * 1000;
  const started = Date.now();
  const seen = new Set<string>();
  while (Date.now() - started < timeoutMs) {
    const newestFirst = await connection.rpc
      .getSignaturesForAddress(job, { limit: 100, commitment: "confirmed" })
      .send();
    const sigs = [...newestFirst].reverse();
    for (const s of sigs) {
      if (seen.has(s.signature) || s.err) continue;
      seen.add(s.signature);
      const tx = await connection.rpc
        .getTransaction(s.signature as Signature, {
          commitment: "confirmed",
          encoding: "json",
          maxSupportedTransactionVersion: 0,
        })
        .send();
      if (!tx) continue;
      for (const e of eventsOf(tx as unknown as TransactionWithMeta)) {
        const about = e.data.job as { toBase58(): string } | undefined;
        if (!about || about.toBase58() !== job) continue;
        // lowerCamel step names (jobPosted, jobPaid), as this script has always printed.
        const step = e.name[0].toLowerCase() + e.name.slice(1);
        emit(step, { signature: s.signature, slot: s.slot.toString() });
        if (step === "jobPaid") return 0;
        if (step === "jobRefunded" || step === "jobCancelled") return 1;
      }
    }
    await sleep(1000);
  }
  emit("timeout", { job });
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
