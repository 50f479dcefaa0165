//! Runs the program natively (as a LiteSVM builtin) with real CPIs.
//!
//! On the host, Anchor's `invoke_signed`, `Clock::get()` and `Rent::get()` go through
//! `solana_sysvar::program_stubs` (v3), whose defaults silently do nothing: a CPI "succeeds"
//! without moving a lamport. This module installs stubs that route them into the running
//! `InvokeContext` (the approach of agave's solana-program-test), and wraps the program's
//! `entry` as a builtin that serialises accounts exactly as the SBF loader does.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    mem::transmute,
    panic::AssertUnwindSafe,
    ptr,
    sync::Once,
};

use anchor_lang::{
    prelude::{AccountInfo, Clock, EpochSchedule, Pubkey, Rent},
    solana_program::sysvar::SysvarId,
    solana_program::{
        entrypoint::ProgramResult, instruction::Instruction, program_error::ProgramError,
    },
};
use solana_instruction_error::InstructionError;
use solana_program_entrypoint::{deserialize, SUCCESS};
use solana_program_runtime::{
    invoke_context::{BuiltinFunctionRegisterer, InvokeContext},
    serialization::serialize_parameters,
    stable_log,
};
use solana_sbpf::{
    error::EbpfError, program::BuiltinFunctionDefinition, vm::ContextObject,
    vm::EncryptedHostAddressToEbpfVm,
};
use solana_svm_log_collector::ic_msg;
use solana_svm_timings::ExecuteTimings;
use solana_sysvar_v3::program_stubs::{set_syscall_stubs, SyscallStubs};
use solana_transaction_context::IndexOfAccount;

/// Returned by the sysvar syscalls when a sysvar is not available.
const UNSUPPORTED_SYSVAR: u64 = 17 << 32;

thread_local! {
    static INVOKE_CONTEXT: RefCell<Option<usize>> = const { RefCell::new(None) };
}

fn set_invoke_context(new: &mut InvokeContext) {
    // The context outlives every stub call made while the builtin runs on this thread.
    INVOKE_CONTEXT
        .with(|ic| unsafe { ic.replace(Some(transmute::<&mut InvokeContext, usize>(new))) });
}

fn invoke_context<'a, 'b>() -> &'a mut InvokeContext<'b, 'b> {
    let addr = INVOKE_CONTEXT.with(|ic| {
        ic.borrow()
            .expect("no invoke context: stub called outside a builtin")
    });
    unsafe { &mut *ptr::with_exposed_provenance_mut(addr) }
}

/// Registerer for `LiteSVM::add_builtin` that runs `tensorgrid::entry` natively.
pub fn tensorgrid_builtin() -> BuiltinFunctionRegisterer {
    install_stubs();
    <Entrypoint as BuiltinFunctionDefinition<InvokeContext>>::register
}

fn install_stubs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        set_syscall_stubs(Box::new(Stubs));
    });
}

fn tensorgrid_entry(program_id: &Pubkey, accounts: &[AccountInfo], data: &[u8]) -> ProgramResult {
    // SAFETY: Anchor's `entry` wants `&'info [AccountInfo<'info>]`; the slice and the accounts
    // it borrows live for the whole call.
    let accounts: &[AccountInfo] = unsafe { transmute(accounts) };
    tensorgrid::entry(program_id, accounts, data)
}

struct Entrypoint;

impl BuiltinFunctionDefinition<InvokeContext<'_, '_>> for Entrypoint {
    type Error = Box<dyn std::error::Error>;

    fn rust(
        _: &mut InvokeContext<'_, '_>,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
    ) -> Result<u64, Self::Error> {
        unreachable!("builtins are entered through `vm`")
    }

    fn vm(
        mut vm: EncryptedHostAddressToEbpfVm<InvokeContext>,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
    ) {
        unsafe {
            vm.with_vm(|vm| {
                vm.program_result = run_builtin(vm.context())
                    .map_err(EbpfError::SyscallError)
                    .into();
            });
        }
    }
}

fn run_builtin(ic: &mut InvokeContext) -> Result<u64, Box<dyn std::error::Error>> {
    set_invoke_context(ic);
    let instruction_context = ic.transaction_context.get_current_instruction_context()?;
    let indices: HashSet<IndexOfAccount> =
        (0..instruction_context.get_number_of_instruction_accounts()).collect();
    ic.compute_meter.consume_checked(1)?;
    let log_collector = ic.get_log_collector();
    let program_id = *instruction_context.get_program_key()?;
    stable_log::program_invoke(&log_collector, &program_id, ic.get_stack_height());

    let direct_pointers = ic
        .get_feature_set()
        .direct_account_pointers_in_program_input;
    let (mut params, _regions, _lengths, _data_offset) =
        serialize_parameters(&instruction_context, false, false, direct_pointers)?;
    let (program_id_ref, account_infos, input) =
        unsafe { deserialize(&mut params.as_slice_mut()[0] as *mut u8) };

    match std::panic::catch_unwind(AssertUnwindSafe(|| {
        tensorgrid_entry(program_id_ref, &account_infos, input)
    })) {
        Ok(Ok(())) => {}
        Ok(Err(program_error)) => {
            let err = InstructionError::from(u64::from(program_error));
            stable_log::program_failure(&log_collector, &program_id, &err);
            return Err(Box::new(err));
        }
        Err(_) => {
            let err = InstructionError::ProgramFailedToComplete;
            stable_log::program_failure(&log_collector, &program_id, &err);
            return Err(Box::new(err));
        }
    }
    stable_log::program_success(&log_collector, &program_id);

    // Write what the program did to its AccountInfos back into the transaction.
    let by_key: HashMap<_, _> = account_infos.into_iter().map(|a| (*a.key, a)).collect();
    let instruction_context = ic.transaction_context.get_current_instruction_context()?;
    for i in indices {
        let mut account = instruction_context.try_borrow_instruction_account(i)?;
        if !account.is_writable() {
            continue;
        }
        let Some(info) = by_key.get(account.get_key()) else {
            continue;
        };
        if account.get_lamports() != info.lamports() {
            account.set_lamports(info.lamports())?;
        }
        if account.can_data_be_resized(info.data_len()).is_ok() {
            account.set_data_from_slice(&info.data.borrow())?;
        }
        if account.get_owner() != info.owner {
            account.set_owner(info.owner.as_ref())?;
        }
    }
    Ok(0)
}

struct Stubs;

impl Stubs {
    /// Copies `len` bytes at `offset` of the sysvar's bincode image (which is also its
    /// in-memory `repr(C)` layout) to `dst`.
    fn copy_sysvar(&self, id: &Pubkey, dst: *mut u8, offset: u64, len: Option<u64>) -> u64 {
        let ic = invoke_context();
        let cost = ic.get_execution_cost().sysvar_base_cost;
        if ic.compute_meter.consume_checked(cost).is_err() {
            panic!("exceeded compute budget");
        }
        let Some(bytes) = ic.environment_config.sysvar_cache().sysvar_id_to_buffer(id) else {
            return UNSUPPORTED_SYSVAR;
        };
        let len = len.unwrap_or(bytes.len() as u64 - offset);
        let Some(end) = offset
            .checked_add(len)
            .filter(|end| *end <= bytes.len() as u64)
        else {
            return UNSUPPORTED_SYSVAR;
        };
        let src = &bytes[offset as usize..end as usize];
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        SUCCESS
    }
}

impl SyscallStubs for Stubs {
    fn sol_log(&self, message: &str) {
        ic_msg!(invoke_context(), "Program log: {}", message);
    }

    fn sol_log_data(&self, fields: &[&[u8]]) {
        use anchor_lang::__private::base64::{engine::general_purpose::STANDARD, Engine};
        let encoded: Vec<String> = fields.iter().map(|f| STANDARD.encode(f)).collect();
        ic_msg!(invoke_context(), "Program data: {}", encoded.join(" "));
    }

    fn sol_invoke_signed(
        &self,
        instruction: &Instruction,
        account_infos: &[AccountInfo],
        signers_seeds: &[&[&[u8]]],
    ) -> ProgramResult {
        let ic = invoke_context();
        let log_collector = ic.get_log_collector();
        let caller = ic
            .transaction_context
            .get_current_instruction_context()
            .and_then(|c| c.get_program_key().copied())
            .map_err(program_error)?;
        stable_log::program_invoke(
            &log_collector,
            &instruction.program_id,
            ic.get_stack_height(),
        );

        let signers = signers_seeds
            .iter()
            .map(|seeds| Pubkey::create_program_address(seeds, &caller))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ProgramError::InvalidSeeds)?;
        ic.prepare_next_cpi_instruction(instruction.clone(), &signers)
            .map_err(program_error)?;

        // Caller's AccountInfo changes → transaction accounts, before the callee runs.
        let tc = &ic.transaction_context;
        let caller_ctx = tc
            .get_current_instruction_context()
            .map_err(program_error)?;
        let callee_ctx = tc.get_next_instruction_context().map_err(program_error)?;
        let mut writable = Vec::new();
        for meta in callee_ctx.instruction_accounts().iter() {
            let key = tc
                .get_key_of_account_at_index(meta.index_in_transaction)
                .map_err(program_error)?;
            let info_index = account_infos
                .iter()
                .position(|info| info.key == key)
                .ok_or(ProgramError::NotEnoughAccountKeys)?;
            let info = &account_infos[info_index];
            let index_in_caller = caller_ctx
                .get_index_of_account_in_instruction(meta.index_in_transaction)
                .map_err(program_error)?;
            let mut account = caller_ctx
                .try_borrow_instruction_account(index_in_caller)
                .map_err(program_error)?;
            if account.get_lamports() != info.lamports() {
                account
                    .set_lamports(info.lamports())
                    .map_err(program_error)?;
            }
            let data = info.try_borrow_data()?;
            match account.can_data_be_resized(data.len()) {
                Ok(()) => account.set_data_from_slice(&data).map_err(program_error)?,
                Err(err) if account.get_data() != *data => return Err(program_error(err)),
                Err(_) => {}
            }
            if account.get_owner() != info.owner {
                account
                    .set_owner(info.owner.as_ref())
                    .map_err(program_error)?;
            }
            if meta.is_writable() {
                writable.push((meta.index_in_transaction, info_index));
            }
        }

        let mut units = 0;
        ic.process_instruction(&mut units, &mut ExecuteTimings::default())
            .map_err(program_error)?;

        // Callee's changes → caller's AccountInfos.
        let tc = &ic.transaction_context;
        let caller_ctx = tc
            .get_current_instruction_context()
            .map_err(program_error)?;
        for (index_in_transaction, info_index) in writable {
            let index_in_caller = caller_ctx
                .get_index_of_account_in_instruction(index_in_transaction)
                .map_err(program_error)?;
            let account = caller_ctx
                .try_borrow_instruction_account(index_in_caller)
                .map_err(program_error)?;
            let info = &account_infos[info_index];
            **info.try_borrow_mut_lamports()? = account.get_lamports();
            if info.owner != account.get_owner() {
                // The system program may assign the account (e.g. `create_account`); AccountInfo
                // exposes the owner only immutably, as in solana-program-test.
                #[allow(mutable_transmutes)]
                let owner: &mut Pubkey = unsafe { transmute::<&Pubkey, &mut Pubkey>(info.owner) };
                *owner = *account.get_owner();
            }
            let new_data = account.get_data();
            if info.data_len() != new_data.len() {
                info.resize(new_data.len())?;
            }
            info.try_borrow_mut_data()?.clone_from_slice(new_data);
        }
        stable_log::program_success(&log_collector, &instruction.program_id);
        Ok(())
    }

    fn sol_get_sysvar(&self, id_addr: *const u8, dst: *mut u8, offset: u64, length: u64) -> u64 {
        let id = unsafe { &*(id_addr as *const Pubkey) };
        self.copy_sysvar(id, dst, offset, Some(length))
    }

    fn sol_get_clock_sysvar(&self, dst: *mut u8) -> u64 {
        self.copy_sysvar(&Clock::id(), dst, 0, None)
    }

    fn sol_get_rent_sysvar(&self, dst: *mut u8) -> u64 {
        self.copy_sysvar(&Rent::id(), dst, 0, None)
    }

    fn sol_get_epoch_schedule_sysvar(&self, dst: *mut u8) -> u64 {
        self.copy_sysvar(&EpochSchedule::id(), dst, 0, None)
    }

    fn sol_get_return_data(&self) -> Option<(Pubkey, Vec<u8>)> {
        let (program_id, data) = invoke_context().transaction_context.get_return_data();
        Some((*program_id, data.to_vec()))
    }

    fn sol_set_return_data(&self, data: &[u8]) {
        let ic = invoke_context();
        let caller = ic
            .transaction_context
            .get_current_instruction_context()
            .and_then(|c| c.get_program_key().copied())
            .expect("return data set outside an instruction");
        ic.transaction_context
            .set_return_data(caller, data.to_vec())
            .expect("return data too large");
    }

    fn sol_get_stack_height(&self) -> u64 {
        invoke_context().get_stack_height() as u64
    }

    fn sol_remaining_compute_units(&self) -> u64 {
        invoke_context().get_remaining()
    }
}

fn program_error(err: InstructionError) -> ProgramError {
    ProgramError::try_from(err).unwrap_or(ProgramError::Custom(u32::MAX))
}
