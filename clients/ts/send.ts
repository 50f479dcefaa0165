// Sending the program's instructions with @solana/kit: one transaction, a fee payer that may be
// another key than the signers, confirmed, then read back with its events; a program error
// comes back as its name and message from the IDL.
import {
  appendTransactionMessageInstructions,
  createTransactionMessage,
  getSignatureFromTransaction,
  isSolanaError,
  pipe,
  sendAndConfirmTransactionFactory,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  SOLANA_ERROR__INSTRUCTION_ERROR__CUSTOM,
  type Instruction,
  type Rpc,
  type RpcSubscriptions,
  type Signature,
  type SolanaRpcApi,
  type SolanaRpcSubscriptionsApi,
  type TransactionSigner,
} from "@solana/kit";
import { eventsOf, type ProgramEvent, type TransactionWithMeta } from "./events";
import { getTensorgridErrorMessage, type TensorgridError } from "./generated";

export type Connection = {
  rpc: Rpc<SolanaRpcApi>;
  rpcSubscriptions: RpcSubscriptions<SolanaRpcSubscriptionsApi>;
};

export type Sent = { signature: Signature; slot: bigint; fee: bigint; events: ProgramEvent[] };

/** A program error: its code, name-bearing message from the IDL, and the original error. */
export class TensorgridProgramError extends Error {
  constructor(readonly code: number, readonly cause: unknown) {
    super(`program error ${code}: ${getTensorgridErrorMessage(code as TensorgridError) ?? "unknown"}`);
  }
}

/** The program's error in `e` (a failed send or simulation), if it is one. */
export function programErrorOf(e: unknown): TensorgridProgramError | null {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 6; depth++) {
    if (isSolanaError(cur, SOLANA_ERROR__INSTRUCTION_ERROR__CUSTOM)) {
      return new TensorgridProgramError(Number(cur.context.code), e);
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

/** Sends `instructions` paid by `feePayer` (signers are taken from the instructions' accounts),
 * waits for `confirmed`, and reads back the fee and the program's events. */
export async function send(
  connection: Connection,
  feePayer: TransactionSigner,
  instructions: readonly Instruction[],
): Promise<Sent> {
  const { rpc, rpcSubscriptions } = connection;
  const { value: blockhash } = await rpc.getLatestBlockhash({ commitment: "confirmed" }).send();
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(feePayer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(blockhash, m),
    (m) => appendTransactionMessageInstructions(instructions, m),
  );
  const signed = await signTransactionMessageWithSigners(message);
  const signature = getSignatureFromTransaction(signed);
  try {
    await sendAndConfirmTransactionFactory({ rpc, rpcSubscriptions })(signed as never, {
      commitment: "confirmed",
    });
  } catch (e) {
    throw programErrorOf(e) ?? e;
  }
  const tx = await rpc
    .getTransaction(signature, { commitment: "confirmed", encoding: "json", maxSupportedTransactionVersion: 0 })
    .send();
  if (!tx) throw new Error(`transaction ${signature} confirmed but not found`);
  return {
    signature,
    slot: tx.slot,
    fee: tx.meta?.fee ?? 0n,
    events: eventsOf(tx as unknown as TransactionWithMeta),
  };
}
