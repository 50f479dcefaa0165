//! surfpool's `surfnet_*` RPC cheatcodes, called over the same async client as everything
//! else (surfpool-sdk's helpers use a blocking client that cannot run on a tokio thread).

use anchor_lang::prelude::Pubkey;
use serde_json::{json, Value};
use tensorgrid_client::rpc::{ChainClient, ChainError};

/// Moves the chain's clock to `unix_s` (surfpool takes milliseconds).
pub async fn time_travel_to(client: &ChainClient, unix_s: i64) -> Result<(), ChainError> {
    let ms = unix_s
        .checked_mul(1000)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| ChainError::Config(format!("cannot travel to {unix_s}")))?;
    let _: Value = client
        .raw("surfnet_timeTravel", json!([{ "absoluteTimestamp": ms }]))
        .await?;
    Ok(())
}

/// Writes an account as given (lamports, owner, data) without a transaction.
pub async fn set_account(
    client: &ChainClient,
    pubkey: &Pubkey,
    lamports: u64,
    owner: &Pubkey,
    data: &[u8],
) -> Result<(), ChainError> {
    let _: Value = client
        .raw(
            "surfnet_setAccount",
            json!([pubkey.to_string(), {
                "lamports": lamports,
                "owner": owner.to_string(),
                "data": hex::encode(data),
            }]),
        )
        .await?;
    Ok(())
}

/// Sets an account's lamports, keeping everything else.
pub async fn set_lamports(
    client: &ChainClient,
    pubkey: &Pubkey,
    lamports: u64,
) -> Result<(), ChainError> {
    let _: Value = client
        .raw(
            "surfnet_setAccount",
            json!([pubkey.to_string(), { "lamports": lamports }]),
        )
        .await?;
    Ok(())
}

/// Loads program bytecode at a fixed address (the upgradeable loader's accounts are created).
pub async fn write_program(
    client: &ChainClient,
    program_id: &Pubkey,
    bytes: &[u8],
) -> Result<(), ChainError> {
    const CHUNK: usize = 256 * 1024;
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        let _: Value = client
            .raw(
                "surfnet_writeProgram",
                json!([program_id.to_string(), hex::encode(chunk), i * CHUNK]),
            )
            .await?;
    }
    Ok(())
}
