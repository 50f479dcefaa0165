// Posts a tensorgrid training job from a wallet and waits until it is paid — the same job
// `tensorgrid job post --spec-uri` posts, for JS/TS developers. Only the committed IDL and
// @anchor-lang/core are used, so it shows exactly what another client needs.
//
//   npm run post-job -- --spec-uri s3://bucket/specs/x.json --spec jobs/x.json \
//       --reward 0.5 --max-duration 7200 [--url http://127.0.0.1:8899] [--keypair FILE] \
//       [--ws-url WS] [--market ADDRESS] [--device any|gpu|cuda|metal] [--min-vram MIB] [--wait] [--timeout S]
//
// --spec is the local copy of what --spec-uri serves: its sha256 is the spec hash committed
// on chain (workers refuse a spec whose bytes hash differently). With --spec-sha256 HEX
// instead, no local file is needed. Prints one JSON line per step on stdout; exit code 0
// when posted (and, with --wait, paid), 1 otherwise.

import { createHash } from "crypto";
import { readFileSync } from "fs";
import { homedir } from "os";
import { join } from "path";

import * as anchor from "@anchor-lang/core";
import idl from "../idl/tensorgrid.json";

const { PublicKey, Keypair, Connection, LAMPORTS_PER_SOL } = anchor.web3;

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

/** SOL as typed ("0.5") to lamports, exactly (no floating point). */
export function solToLamports(text: string): anchor.BN {
  const m = /^(\d*)(?:\.(\d{0,9}))?$/.exec(text.trim());
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) throw new Error(`${text} is not an amount of SOL`);
  const whole = new anchor.BN(m[1] || "0");
  const frac = new anchor.BN((m[2] ?? "").padEnd(9, "0"));
  return whole.mul(new anchor.BN(LAMPORTS_PER_SOL)).add(frac);
}

function readKeypair(path: string): anchor.web3.Keypair {
  let bytes: number[];
  try {
    bytes = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`keypair file ${path}: ${(e as Error).message}`);
  }
  if (!Array.isArray(bytes) || bytes.length !== 64) {
    throw new Error(`keypair file ${path} is not a Solana keypair (a JSON array of 64 bytes)`);
  }
  return Keypair.fromSecretKey(Uint8Array.from(bytes));
}

function emit(step: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ step, ...fields }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The program's events in a confirmed transaction (emitted by self-CPI, as Anchor's emit_cpi!). */
async function eventsOf(
  connection: anchor.web3.Connection,
  program: anchor.Program,
  signature: string,
): Promise<{ name: string; data: Record<string, unknown> }[]> {
  const tx = await connection.getTransaction(signature, {
    commitment: "confirmed",
    maxSupportedTransactionVersion: 0,
  });
  const keys = tx?.transaction.message.staticAccountKeys ?? [];
  const out: { name: string; data: Record<string, unknown> }[] = [];
  for (const inner of tx?.meta?.innerInstructions ?? []) {
    for (const ix of inner.instructions) {
      if (!keys[ix.programIdIndex]?.equals(program.programId)) continue;
      const data = Buffer.from(anchor.utils.bytes.bs58.decode(ix.data));
      // 8-byte event-instruction tag, then discriminator and fields.
      const decoded = program.coder.events.decode(data.subarray(8).toString("base64"));
      if (decoded) out.push({ name: decoded.name, data: decoded.data as Record<string, unknown> });
    }
  }
  return out;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const url = str(args, "url", process.env.ANCHOR_PROVIDER_URL ?? "http://127.0.0.1:8899");
  const keypairPath = str(args, "keypair", process.env.ANCHOR_WALLET ?? join(homedir(), ".config", "solana", "id.json"));
  const specUri = str(args, "spec-uri");
  const reward = solToLamports(str(args, "reward"));
  const maxDuration = Number(str(args, "max-duration"));
  if (!Number.isInteger(maxDuration) || maxDuration <= 0) throw new Error("--max-duration: whole seconds > 0");
  const specHashHex =
    typeof args["spec-sha256"] === "string"
      ? (args["spec-sha256"] as string).toLowerCase()
      : createHash("sha256").update(readFileSync(str(args, "spec"))).digest("hex");
  if (!/^[0-9a-f]{64}$/.test(specHashHex)) throw new Error("--spec-sha256: 64 hex characters");
  const device = str(args, "device", "any");
  const deviceReq = { any: { any: {} }, gpu: { gpu: {} }, cuda: { cuda: {} }, metal: { metal: {} } }[device];
  if (!deviceReq) throw new Error(`--device ${device}: any, gpu, cuda or metal`);

  const poster = readKeypair(keypairPath);
  const wsEndpoint = typeof args["ws-url"] === "string" ? (args["ws-url"] as string) : undefined;
  const connection = new Connection(url, { commitment: "confirmed", wsEndpoint });
  const provider = new anchor.AnchorProvider(connection, new anchor.Wallet(poster), { commitment: "confirmed" });
  const program = new anchor.Program(idl as anchor.Idl, provider);
  // The IDL is loaded untyped (no generated types to keep in sync): accounts are read by name.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const accounts = program.account as any;

  let market: anchor.web3.PublicKey;
  if (typeof args.market === "string") {
    market = new PublicKey(args.market);
  } else {
    const all = await accounts.market.all();
    if (all.length !== 1) throw new Error(`${all.length} markets exist: pass --market`);
    market = all[0].publicKey;
  }
  const m = await accounts.market.fetch(market);
  if (m.paused) throw new Error(`market ${market.toBase58()} is paused`);

  // The poster's account in this market holds its next job id: ids only grow, so a job
  // address is never reused. The first post creates it (`poster_init`, in the same
  // transaction).
  const [posterAccount] = PublicKey.findProgramAddressSync(
    [Buffer.from("poster"), market.toBuffer(), poster.publicKey.toBuffer()],
    program.programId,
  );
  const existing = await accounts.poster.fetchNullable(posterAccount);
  // The next id the poster account allows: ids go 0, 1, 2, … so a person can follow them.
  const jobAddress = (id: anchor.BN) =>
    PublicKey.findProgramAddressSync(
      [Buffer.from("job"), market.toBuffer(), poster.publicKey.toBuffer(), id.toArrayLike(Buffer, "le", 8)],
      program.programId,
    );
  const jobId = new anchor.BN(existing ? existing.nextJobId.toString() : "0");
  const [job] = jobAddress(jobId);
  const [eventAuthority] = PublicKey.findProgramAddressSync([Buffer.from("__event_authority")], program.programId);

  // The terms this post agrees to: the market's parameters as just read. The program refuses
  // the post if the authority changes them before it lands.
  const p = m.params;
  const terms = {
    feeBps: p.feeBps,
    collateralBps: p.collateralBps,
    slashBps: p.slashBps,
    abandonPenaltyBps: p.abandonPenaltyBps,
    crankBountyBps: p.crankBountyBps,
    challengeWindowS: p.challengeWindowS,
    resolveWindowS: p.resolveWindowS,
  };
  const pre = existing
    ? []
    : [
        await program.methods
          .posterInit()
          .accountsPartial({ poster: poster.publicKey, market, posterAccount, eventAuthority, program: program.programId })
          .instruction(),
      ];
  const signature = await program.methods
    .jobPost({
      jobId,
      reward,
      specHash: Array.from(Buffer.from(specHashHex, "hex")),
      specUri,
      requirements: { device: deviceReq, minVramMib: Number(str(args, "min-vram", "0")) },
      maxDurationS: new anchor.BN(maxDuration),
      terms,
    })
    .accountsPartial({
      poster: poster.publicKey,
      market,
      posterAccount,
      job,
      eventAuthority,
      program: program.programId,
    })
    .preInstructions(pre)
    .rpc();
  emit("posted", { job: job.toBase58(), job_id: jobId.toString(), signature, reward: reward.toString(), spec_uri: specUri });

  if (!args.wait) return 0;
  const timeoutMs = Number(str(args, "timeout", "3600")) * 1000;
  const started = Date.now();
  const seen = new Set<string>();
  while (Date.now() - started < timeoutMs) {
    const sigs = (await connection.getSignaturesForAddress(job, { limit: 100 }, "confirmed")).reverse();
    for (const s of sigs) {
      if (seen.has(s.signature) || s.err) continue;
      seen.add(s.signature);
      for (const e of await eventsOf(connection, program, s.signature)) {
        const about = e.data.job as anchor.web3.PublicKey | undefined;
        if (!about || !about.equals(job)) continue;
        emit(e.name, { signature: s.signature, slot: s.slot });
        // The coder names events as the IDL does, first letter lowered (jobPaid).
        const name = e.name.toLowerCase();
        if (name === "jobpaid") return 0;
        if (name === "jobrefunded" || name === "jobcancelled") return 1;
      }
    }
    await sleep(1000);
  }
  emit("timeout", { job: job.toBase58() });
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
