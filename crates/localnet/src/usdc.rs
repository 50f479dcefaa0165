//! A test stablecoin for token markets on the local chain: an SPL Token mint with 6 decimals
//! (like USDC) whose mint and freeze authority is the chain's payer, and a token account
//! holding a million of it for the payer and every named account.

use anchor_lang::{
    prelude::Pubkey,
    solana_program::{program_pack::Pack, system_instruction},
};
use anchor_spl::token_2022::spl_token_2022;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tensorgrid_client::{
    currency::{create_token_account_idempotent, TOKEN_PROGRAM_ID},
    rpc::ChainClient,
    Currency,
};

use crate::LocalnetError;

/// The test mint's decimals (USDC's).
pub const DECIMALS: u8 = 6;
/// What each funded account holds: a million tokens, in base units.
pub const EACH: u64 = 1_000_000 * 1_000_000;

/// Creates the mint (authority `payer`) and funds `owners` with [`EACH`]; returns the market
/// currency it makes.
pub(crate) async fn create(
    client: &ChainClient,
    payer: &Keypair,
    owners: &[Pubkey],
) -> Result<Currency, LocalnetError> {
    let mint = Keypair::new();
    let space = spl_token_2022::state::Mint::LEN;
    let rent = client.rent_exempt(space).await?;
    let create = system_instruction::create_account(
        &payer.pubkey(),
        &mint.pubkey(),
        rent,
        space as u64,
        &TOKEN_PROGRAM_ID,
    );
    let init = spl_token_2022::instruction::initialize_mint2(
        &TOKEN_PROGRAM_ID,
        &mint.pubkey(),
        &payer.pubkey(),
        Some(&payer.pubkey()),
        DECIMALS,
    )
    .map_err(|e| LocalnetError::Startup(format!("test mint: {e}")))?;
    client.send(&[create, init], &[payer, &mint]).await?;
    for owner in owners {
        fund(client, payer, &mint.pubkey(), owner, EACH).await?;
    }
    Ok(Currency::Token {
        mint: mint.pubkey(),
        token_program: TOKEN_PROGRAM_ID,
    })
}

/// Mints `amount` of the test mint (authority `payer`) into `owner`'s associated token
/// account, created when missing.
pub(crate) async fn fund(
    client: &ChainClient,
    payer: &Keypair,
    mint: &Pubkey,
    owner: &Pubkey,
    amount: u64,
) -> Result<(), LocalnetError> {
    let account = create_token_account_idempotent(&payer.pubkey(), owner, mint, &TOKEN_PROGRAM_ID);
    let to = account.accounts[1].pubkey;
    let mint_to = spl_token_2022::instruction::mint_to_checked(
        &TOKEN_PROGRAM_ID,
        mint,
        &to,
        &payer.pubkey(),
        &[],
        amount,
        DECIMALS,
    )
    .map_err(|e| LocalnetError::Startup(format!("test mint: {e}")))?;
    client.send(&[account, mint_to], &[payer]).await?;
    Ok(())
}
