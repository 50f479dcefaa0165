use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::{
    prelude::*,
    system_program::{
        allocate, assign, create_account, transfer, Allocate, Assign, CreateAccount, Transfer,
    },
};
use anchor_spl::{
    token_2022::spl_token_2022,
    token_interface::{initialize_account3, InitializeAccount3, Mint, TokenInterface},
};

use crate::{
    constants::{MARKET_SEED, VAULT_SEED},
    errors::TensorgridError,
    events::MarketInitialized,
    state::{check_mint, rent_exempt_minimum, Market, MarketParams},
};

/// Decimals of SOL: amounts in a SOL market are lamports.
const SOL_DECIMALS: u8 = 9;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct MarketInitArgs {
    /// Lets one authority run several markets; part of the market's address.
    pub market_id: u64,
    /// Parameters for the jobs posted in this market (validated against the program's bounds),
    /// in the market's unit (`min_stake` in lamports or in base units of the mint).
    pub params: MarketParams,
}

#[event_cpi]
#[derive(Accounts)]
#[instruction(args: MarketInitArgs)]
pub struct MarketInit<'info> {
    /// Becomes the market's authority; pays the market account's (and the vault's) rent.
    #[account(mut)]
    pub authority: Signer<'info>,
    /// The new market: `["market", authority, market_id LE]`.
    #[account(
        init,
        payer = authority,
        space = Market::SPACE,
        seeds = [MARKET_SEED, authority.key().as_ref(), &args.market_id.to_le_bytes()],
        bump,
    )]
    pub market: Account<'info, Market>,
    /// The mint the market is priced in (SPL Token or Token-2022); omitted for a SOL market.
    /// Token-2022 mints with a transfer fee, a transfer hook, a permanent delegate,
    /// confidential transfers, frozen new accounts, non-transferable tokens or a pause are
    /// refused, each with its own error.
    pub mint: Option<InterfaceAccount<'info, Mint>>,
    /// Token market only: the vault created here, `["vault", market]`, a token account of
    /// `mint` owned by the market PDA.
    /// CHECK: created by this instruction at its seeds.
    #[account(mut, seeds = [VAULT_SEED, market.key().as_ref()], bump)]
    pub vault: Option<UncheckedAccount<'info>>,
    /// Token market only: the mint's token program.
    pub token_program: Option<Interface<'info, TokenInterface>>,
    pub system_program: Program<'info, System>,
}

/// A token market's mint, its decimals and its token program.
struct Priced {
    mint: Pubkey,
    decimals: u8,
    token_program: Pubkey,
    vault: Pubkey,
}

impl<'info> MarketInit<'info> {
    fn validate(&self, args: &MarketInitArgs) -> Result<()> {
        args.params.validate()
    }

    /// For a token market: checks the mint and creates the vault. `None` for a SOL market.
    fn open_vault(&self, vault_bump: Option<u8>) -> Result<Option<Priced>> {
        let (mint, vault, program) = match (&self.mint, &self.vault, &self.token_program) {
            (None, None, None) => return Ok(None),
            (Some(mint), Some(vault), Some(program)) => (mint, vault, program),
            _ => return Err(crate::errors::fail(TensorgridError::TokenAccountsMissing)),
        };
        let mint_info = mint.to_account_info();
        require_keys_eq!(
            *mint_info.owner,
            program.key(),
            TensorgridError::TokenProgramMismatch
        );
        let decimals = check_mint(&mint_info.try_borrow_data()?)?;
        let market = self.market.key();
        let bump = [vault_bump.ok_or(TensorgridError::VaultMismatch)?];
        let seeds: &[&[u8]] = &[VAULT_SEED, market.as_ref(), &bump];
        let space = <spl_token_2022::state::Account as Pack>::LEN;
        self.create_vault(vault, seeds, space, &program.key())?;
        initialize_account3(CpiContext::new(
            program.key(),
            InitializeAccount3 {
                account: vault.to_account_info(),
                mint: mint_info,
                authority: self.market.to_account_info(),
            },
        ))?;
        Ok(Some(Priced {
            mint: mint.key(),
            decimals,
            token_program: program.key(),
            vault: vault.key(),
        }))
    }

    /// Creates the vault's account at its address, owned by the token program. Anyone can send
    /// lamports to that address beforehand (it is known from the authority and the id): then
    /// `create_account` would fail, so the account is topped up to rent, allocated and
    /// assigned instead, and nobody can keep a market id from becoming a token market.
    fn create_vault(
        &self,
        vault: &UncheckedAccount<'info>,
        seeds: &[&[u8]],
        space: usize,
        owner: &Pubkey,
    ) -> Result<()> {
        let system = self.system_program.key();
        let rent = rent_exempt_minimum(space)?;
        let held = vault.lamports();
        if held == 0 {
            return create_account(
                CpiContext::new_with_signer(
                    system,
                    CreateAccount {
                        from: self.authority.to_account_info(),
                        to: vault.to_account_info(),
                    },
                    &[seeds],
                ),
                rent,
                space as u64,
                owner,
            );
        }
        let shortfall = rent.saturating_sub(held);
        if shortfall > 0 {
            transfer(
                CpiContext::new(
                    system,
                    Transfer {
                        from: self.authority.to_account_info(),
                        to: vault.to_account_info(),
                    },
                ),
                shortfall,
            )?;
        }
        allocate(
            CpiContext::new_with_signer(
                system,
                Allocate {
                    account_to_allocate: vault.to_account_info(),
                },
                &[seeds],
            ),
            space as u64,
        )?;
        assign(
            CpiContext::new_with_signer(
                system,
                Assign {
                    account_to_assign: vault.to_account_info(),
                },
                &[seeds],
            ),
            owner,
        )
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn handler(ctx: Context<Self>, args: MarketInitArgs) -> Result<()> {
        let priced = ctx.accounts.open_vault(ctx.bumps.vault)?;
        let (mint, decimals, token_program, vault) = match priced {
            Some(p) => (p.mint, p.decimals, p.token_program, p.vault),
            None => (
                Pubkey::default(),
                SOL_DECIMALS,
                Pubkey::default(),
                Pubkey::default(),
            ),
        };
        let market = &mut ctx.accounts.market;
        market.set_inner(Market {
            authority: ctx.accounts.authority.key(),
            market_id: args.market_id,
            params: args.params,
            fees_unclaimed: 0,
            fees_withdrawn: 0,
            jobs_posted: 0,
            paused: false,
            bump: ctx.bumps.market,
            mint,
            decimals,
            token_program,
            vault,
        });
        market.invariant(&market.to_account_info())?;
        emit_event!(
            ctx,
            MarketInitialized {
                market: market.key(),
                authority: market.authority,
                market_id: market.market_id,
                params: market.params,
                mint,
                decimals,
                vault,
            }
        );
        Ok(())
    }
}
