// Posting a job as the program wants it: at the poster's next id (ids only grow, so a job
// address is used once), with `poster_init` first on the poster's first post in the market,
// agreeing to the market's terms as read now (the program refuses the post if they change
// before it lands). The TypeScript counterpart of the Rust client's `PostContext`.
import type { Address, Instruction, Rpc, SolanaRpcApi, TransactionSigner } from "@solana/kit";
import {
  fetchMarket,
  fetchMaybePoster,
  findPosterAccountPda,
  getJobPostInstruction,
  getPosterInitInstruction,
  TENSORGRID_PROGRAM_ADDRESS,
  type JobPostInstructionDataArgs,
  type JobTermsArgs,
  type MarketParams,
} from "./generated";
import { findEventAuthorityPda, findJobPda } from "./pdas";

/** The terms a post made now agrees to: the market's current parameters. */
export function termsOf(p: MarketParams): JobTermsArgs {
  return {
    feeBps: p.feeBps,
    collateralBps: p.collateralBps,
    slashBps: p.slashBps,
    abandonPenaltyBps: p.abandonPenaltyBps,
    crankBountyBps: p.crankBountyBps,
    challengeWindowS: p.challengeWindowS,
    resolveWindowS: p.resolveWindowS,
    dispute: p.dispute,
  };
}

export type Post = Omit<JobPostInstructionDataArgs, "jobId" | "terms" | "jobBump">;

/** The instructions that post `post` from `poster` in `market`, and the job they create. */
export async function postInstructions(
  rpc: Rpc<SolanaRpcApi>,
  poster: TransactionSigner,
  market: Address,
  post: Post,
): Promise<{ job: Address; jobId: bigint; instructions: Instruction[]; paused: boolean }> {
  // Read at `confirmed`, as `send` confirms: a post right after another sees its id used.
  const m = (await fetchMarket(rpc, market, { commitment: "confirmed" })).data;
  const [posterAccount] = await findPosterAccountPda({ market, poster: poster.address });
  const existing = await fetchMaybePoster(rpc, posterAccount, { commitment: "confirmed" });
  const jobId = existing.exists ? existing.data.nextJobId : 0n;
  const [job, jobBump] = await findJobPda({ market, poster: poster.address, jobId });
  const [eventAuthority] = await findEventAuthorityPda();
  const program = TENSORGRID_PROGRAM_ADDRESS;
  const instructions: Instruction[] = [];
  if (!existing.exists) {
    instructions.push(getPosterInitInstruction({ poster, market, posterAccount, eventAuthority, program }));
  }
  instructions.push(
    getJobPostInstruction({
      poster,
      market,
      posterAccount,
      job,
      eventAuthority,
      program,
      jobId,
      jobBump,
      terms: termsOf(m.params),
      ...post,
    }),
  );
  return { job, jobId, instructions, paused: m.paused };
}
