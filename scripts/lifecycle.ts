// A job's whole life through the generated TypeScript client (clients/ts), with a fee payer
// that is none of the parties: the operator registers a worker, the poster posts (creating its
// poster account), the worker claims with the offer it read, submits, the poster accepts.
// Each step prints one JSON line (signature, fee, the program's events decoded from the
// inner instructions). A test runs it against the embedded chain (crates/cli/tests/ts_client.rs).
//
//   node .tsbuild/scripts/lifecycle.js --url http://127.0.0.1:8899 --ws-url ws://127.0.0.1:8900 \
//     --market ADDRESS --fee-payer payer.json --poster poster.json --operator operator.json
import fs from "node:fs";
import {
  address,
  createKeyPairSignerFromBytes,
  createSolanaRpc,
  createSolanaRpcSubscriptions,
  type Address,
  type KeyPairSigner,
} from "@solana/kit";
import {
  DeviceKind,
  DeviceRequirement,
  fetchJob,
  fetchMarket,
  fetchWorker,
  findEventAuthorityPda,
  findPosterAccountPda,
  findWorkerPda,
  getJobAcceptInstruction,
  getJobClaimInstruction,
  getJobSubmitInstruction,
  getWorkerRegisterInstruction,
  postInstructions,
  programErrorOf,
  send,
  TENSORGRID_PROGRAM_ADDRESS,
  type Connection,
  type Sent,
} from "../clients/ts";

function flag(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) throw new Error(`--${name} is required`);
  return v;
}

async function signer(path: string): Promise<KeyPairSigner> {
  const bytes = Uint8Array.from(JSON.parse(fs.readFileSync(path, "utf8")) as number[]);
  return createKeyPairSignerFromBytes(bytes);
}

function emit(step: string, sent: Sent, extra: Record<string, unknown> = {}) {
  const events = sent.events.map((e) => e.name);
  console.log(
    JSON.stringify({ step, signature: sent.signature, fee: sent.fee.toString(), events, ...extra }),
  );
}

async function main() {
  const connection: Connection = {
    rpc: createSolanaRpc(flag("url")),
    rpcSubscriptions: createSolanaRpcSubscriptions(flag("ws-url")),
  };
  const { rpc } = connection;
  const market: Address = address(flag("market"));
  const [feePayer, poster, operator] = await Promise.all(
    [flag("fee-payer"), flag("poster"), flag("operator")].map(signer),
  );
  const program = TENSORGRID_PROGRAM_ADDRESS;
  const [eventAuthority] = await findEventAuthorityPda();
  const marketAccount = await fetchMarket(rpc, market);
  const p = marketAccount.data.params;

  // The operator registers a CPU worker with the market's minimum stake.
  const [worker] = await findWorkerPda({ market, operator: operator.address });
  const registered = await send(connection, feePayer, [
    getWorkerRegisterInstruction({
      operator,
      market,
      worker,
      eventAuthority,
      program,
      stake: p.minStake,
      hardware: { device: DeviceKind.Cpu, vramMib: 0, label: "ts client" },
    }),
  ]);
  emit("registered", registered, { worker });

  // The poster posts at its next id, agreeing to the market's terms as read.
  const reward = 300_000_000n;
  const { job, jobId, instructions } = await postInstructions(rpc, poster, market, {
    reward,
    specHash: new Uint8Array(32).fill(5),
    specUri: "s3://tensorgrid/specs/ts-client.json",
    requirements: { device: DeviceRequirement.Any, minVramMib: 0 },
    maxDurationS: 3_600n,
  });
  emit("posted", await send(connection, feePayer, instructions), { job, job_id: jobId.toString() });

  // A claim that states the job as read; a changed job is refused with its name.
  const j = (await fetchJob(rpc, job)).data;
  const expected = {
    reward: j.reward,
    specHash: j.specHash,
    requirements: j.requirements,
    maxDurationS: j.maxDurationS,
    terms: j.terms,
  };
  try {
    await send(connection, feePayer, [
      getJobClaimInstruction({
        operator,
        market,
        worker,
        job,
        eventAuthority,
        program,
        expected: { ...expected, reward: expected.reward + 1n },
      }),
    ]);
    throw new Error("a claim of another offer was accepted");
  } catch (e) {
    const err = programErrorOf(e);
    if (!err) throw e;
    console.log(JSON.stringify({ step: "refused", code: err.code, message: err.message }));
  }
  emit(
    "claimed",
    await send(connection, feePayer, [
      getJobClaimInstruction({ operator, market, worker, job, eventAuthority, program, expected }),
    ]),
  );
  emit(
    "submitted",
    await send(connection, feePayer, [
      getJobSubmitInstruction({
        operator,
        worker,
        job,
        eventAuthority,
        program,
        resultHash: new Uint8Array(32).fill(9),
        resultUri: "s3://tensorgrid/results/ts-client/manifest.json",
        reportedMetric: 950_000n,
      }),
    ]),
  );
  emit(
    "accepted",
    await send(connection, feePayer, [
      getJobAcceptInstruction({
        poster,
        market,
        worker,
        job,
        posterAccount: (await findPosterAccountPda({ market, poster: poster.address }))[0],
        eventAuthority,
        program,
      }),
    ]),
  );
  const w = (await fetchWorker(rpc, worker)).data;
  console.log(JSON.stringify({ step: "done", earnings: w.earnings.toString() }));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
