//! The committed IDL must match what the program builds to: clients are generated from it.

use tensorgrid_harness::idl::{build_idl_json, idl_path};

#[test]
fn committed_idl_is_fresh() {
    let fresh = build_idl_json().expect("IDL builds");
    let committed = std::fs::read_to_string(idl_path()).expect("idl/tensorgrid.json is committed");
    assert!(
        committed == fresh,
        "idl/tensorgrid.json is stale: run `cargo run -p tensorgrid-harness --bin idl` and commit it"
    );
    // The IDL names every instruction and every error the program has.
    let idl: serde_json::Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!(idl["instructions"].as_array().unwrap().len(), 15);
    assert_eq!(
        idl["errors"].as_array().unwrap().len(),
        tensorgrid_client::error_code(tensorgrid_client::TensorgridError::InvariantViolated)
            as usize
            - 6000
            + 1
    );
}
