//! The committed IDL must match what the program builds to, and say everything a client needs:
//! clients generated from it (Anchor's TypeScript client, other languages) must produce the
//! same signer and writable flags as our own builders, and every item carries its docs.

use anchor_lang::prelude::Pubkey;
use serde_json::Value;
use tensorgrid::instructions::*;
use tensorgrid_client::{
    instructions::{self as ix, Instruction, SettleKeys, WorkerKeys},
    state::{DeviceKind, Hardware, JobOffer, MarketParams},
};
use tensorgrid_harness::{
    fixtures::{default_params, job_args, submit_args},
    idl::{build_idl_json, idl_path},
};

fn committed() -> Value {
    let text = std::fs::read_to_string(idl_path()).expect("idl/tensorgrid.json is committed");
    serde_json::from_str(&text).expect("the IDL is JSON")
}

#[test]
fn committed_idl_is_fresh() {
    let fresh = build_idl_json().expect("IDL builds");
    let committed = std::fs::read_to_string(idl_path()).expect("idl/tensorgrid.json is committed");
    assert!(
        committed == fresh,
        "idl/tensorgrid.json is stale: run `cargo run -p tensorgrid-harness --bin idl` and commit it"
    );
    // The IDL names every instruction and every error the program has.
    let idl: Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!(
        idl["instructions"].as_array().unwrap().len(),
        builders().len()
    );
    assert_eq!(
        idl["errors"].as_array().unwrap().len(),
        tensorgrid_client::error_code(tensorgrid_client::TensorgridError::NotTokenMarket) as usize
            - 6000
            + 1
    );
}

/// One instruction per IDL instruction, built by the client with distinct keys.
fn builders() -> Vec<(&'static str, Instruction)> {
    let k = Pubkey::new_unique;
    // A token market's builders name every optional account (a SOL market's leave them out).
    let t = || tensorgrid_client::Currency::Token {
        mint: k(),
        token_program: tensorgrid_client::currency::TOKEN_PROGRAM_ID,
    };
    let w = || WorkerKeys {
        operator: k(),
        market: k(),
        worker: k(),
    };
    let s = || SettleKeys {
        market: k(),
        worker: k(),
        job: k(),
        poster: k(),
    };
    let params: MarketParams = default_params();
    let a = job_args(1);
    let offer = JobOffer {
        reward: a.reward,
        spec_hash: a.spec_hash,
        requirements: a.requirements,
        max_duration_s: a.max_duration_s,
        terms: a.terms,
    };
    let hardware = Hardware {
        device: DeviceKind::Cpu,
        vram_mib: 0,
        label: String::new(),
    };
    vec![
        (
            "market_init",
            ix::market_init_in(
                &t(),
                k(),
                MarketInitArgs {
                    market_id: 0,
                    params,
                },
            ),
        ),
        (
            "market_update",
            ix::market_update(k(), k(), MarketUpdateArgs::default()),
        ),
        (
            "market_withdraw_fees",
            ix::market_withdraw_fees_in(&t(), k(), k(), k(), 1),
        ),
        (
            "worker_register",
            ix::worker_register_in(&t(), k(), k(), WorkerRegisterArgs { stake: 1, hardware }),
        ),
        (
            "worker_update",
            ix::worker_update_in(&t(), k(), k(), k(), WorkerUpdateArgs::default()),
        ),
        (
            "worker_deregister",
            ix::worker_deregister_in(&t(), k(), k(), k()),
        ),
        ("poster_init", ix::poster_init(k(), k())),
        ("job_post", ix::job_post_in(&t(), k(), k(), job_args(1))),
        ("job_cancel", ix::job_cancel_in(&t(), k(), k(), k())),
        ("job_claim", ix::job_claim(w(), k(), offer)),
        ("job_abandon", ix::job_abandon(w(), k())),
        ("job_submit", ix::job_submit(w(), k(), submit_args())),
        ("job_accept", ix::job_accept(s())),
        ("job_finalize", ix::job_finalize(s())),
        (
            "job_dispute",
            ix::job_dispute_in(
                &t(),
                s(),
                JobDisputeArgs {
                    segment: 0,
                    start_hash: [1; 32],
                    end_hash: [2; 32],
                    bond: 1,
                },
            ),
        ),
        ("dispute_draw", ix::dispute_draw(k(), k(), &[])),
        (
            "dispute_vote",
            ix::dispute_vote(
                w(),
                k(),
                DisputeVoteArgs::Commit {
                    commitment: [3; 32],
                },
            ),
        ),
        ("dispute_settle", ix::dispute_settle(s(), [k(), k(), k()])),
        ("job_resolve", ix::job_resolve(k(), s(), true)),
        ("job_dispute_timeout", ix::job_dispute_timeout(s())),
        ("job_reclaim", ix::job_reclaim_in(&t(), k(), k(), k(), k())),
        ("verifier_join", ix::verifier_join(w(), 1)),
        ("verifier_leave", ix::verifier_leave(w())),
        ("poster_withdraw", ix::poster_withdraw(&t(), k(), k(), 1)),
    ]
}

/// Review finding: a client built from the IDL left the poster's signature off `job_accept`,
/// because the program checked it at run time instead of declaring it. Every account's flags
/// in the IDL must equal what our builders send (which is what the program requires).
#[test]
fn idl_account_flags_match_the_client_builders() {
    let idl = committed();
    let instructions = idl["instructions"].as_array().unwrap();
    let built = builders();
    assert_eq!(instructions.len(), built.len(), "a builder per instruction");
    for (name, instruction) in built {
        let entry = instructions
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from the IDL"));
        let accounts = entry["accounts"].as_array().unwrap();
        assert_eq!(
            accounts.len(),
            instruction.accounts.len(),
            "{name}: account count"
        );
        for (acc, meta) in accounts.iter().zip(&instruction.accounts) {
            assert!(
                acc.get("accounts").is_none(),
                "{name}: nested account group"
            );
            let flag = |f: &str| acc.get(f).and_then(Value::as_bool).unwrap_or(false);
            assert_eq!(
                (flag("signer"), flag("writable")),
                (meta.is_signer, meta.is_writable),
                "{name}.{}: IDL (signer, writable) vs builder",
                acc["name"]
            );
        }
    }
}

fn has_docs(v: &Value) -> bool {
    v.get("docs").and_then(Value::as_array).is_some_and(|d| {
        d.iter()
            .any(|l| !l.as_str().unwrap_or("").trim().is_empty())
    })
}

/// Every instruction, every account it takes (but the framework's own), every type, every
/// argument and event field carries a doc comment into the IDL; every error a message.
/// (The IDL format has no docs for enum variants; they are documented in the source.)
#[test]
fn idl_documents_everything_a_client_sees() {
    let idl = committed();
    let framework = ["system_program", "event_authority", "program"];
    let mut missing = Vec::new();
    for i in idl["instructions"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap();
        if !has_docs(i) {
            missing.push(format!("instruction {name}"));
        }
        for a in i["accounts"].as_array().unwrap() {
            let acc = a["name"].as_str().unwrap();
            if !framework.contains(&acc) && !has_docs(a) {
                missing.push(format!("account {name}.{acc}"));
            }
        }
    }
    for t in idl["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let ty = &t["type"];
        if ty["kind"] == "struct" {
            for f in ty["fields"].as_array().into_iter().flatten() {
                if !has_docs(f) {
                    missing.push(format!("field {name}.{}", f["name"]));
                }
            }
        }
        if !has_docs(t) && !name.ends_with("Args") {
            missing.push(format!("type {name}"));
        }
    }
    for e in idl["errors"].as_array().unwrap() {
        if e["msg"].as_str().unwrap_or("").is_empty() {
            missing.push(format!("error {}", e["name"]));
        }
    }
    assert!(missing.is_empty(), "undocumented in the IDL: {missing:#?}");
}
