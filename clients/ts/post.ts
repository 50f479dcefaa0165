// Posting a job as the program wants it: at the poster's next id (ids only grow, so a job
// address is used once), with `poster_init` first on the poster's first post in the market,
// agreeing to the market's terms as read now (the program refuses the post if they change
// before it lands). The TypeScript counterpart of the Rust client's `PostContext`.
import type { Address, Instruction, Rpc, SolanaRpcApi, TransactionSigner } from "@solana/kit";
import {
  fetchMarket,
  fetchMaybePoster,
  findPosterAccountPda,
  findVaultPda,
  getJobPostInstruction,
  getPosterInitInstruction,
  TENSORGRID_PROGRAM_ADDRESS,
  type JobPostInstructionDataArgs,
  type JobTermsArgs,
  type Market,
} from "./generated";
import { findAssociatedTokenPda, findEventAuthorityPda, findJobPda } from "./pdas";

/** A SOL market's `mint`: the system program's address (all zeros). */
export const SOL_MINT = "11111111111111111111111111111111" as Address;

/** The token accounts `owner` pays a token market with (none for a SOL market). */
export async function tokenAccountsOf(
  m: Market,
  market: Address,
  owner: Address,
): Promise<{ mint?: Address; vault?: Address; tokenProgram?: Address; token?: Address }> {
  if (m.mint === SOL_MINT) return {};
  const [vault] = await findVaultPda({ market });
  const [token] = await findAssociatedTokenPda({ owner, mint: m.mint, tokenProgram: m.tokenProgram });
  return { mint: m.mint, vault, tokenProgram: m.tokenProgram, token };
}

/** The terms a post made now agrees to: the market's current parameters, in its mint. */
export function termsOf(m: Market): JobTermsArgs {
  const p = m.params;
  return {
    feeBps: p.feeBps,
    collateralBps: p.collateralBps,
    slashBps: p.slashBps,
    abandonPenaltyBps: p.abandonPenaltyBps,
    crankBountyBps: p.crankBountyBps,
    challengeWindowS: p.challengeWindowS,
    resolveWindowS: p.resolveWindowS,
    dispute: p.dispute,
    mint: m.mint,
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
  const tokens = await tokenAccountsOf(m, market, poster.address);
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
      mint: tokens.mint,
      vault: tokens.vault,
      posterToken: tokens.token,
      tokenProgram: tokens.tokenProgram,
      terms: termsOf(m),
      ...post,
    }),
  );
  return { job, jobId, instructions, paused: m.paused };
}
