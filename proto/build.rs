use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so a fresh machine needs no system package to build the APIs.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("jinfu_descriptor.bin");
    tonic_prost_build::configure().file_descriptor_set_path(&descriptor).compile_protos(
        &[
            "jinfu/ledger/v1/ledger.proto",
            "jinfu/guarantee/v1/guarantee.proto",
            "jinfu/contract/v1/contract.proto",
            "jinfu/credit/v1/credit.proto",
            "jinfu/notification/v1/notification.proto",
            "jinfu/loan/v1/loan.proto",
        ],
        &["."],
    )?;
    println!("cargo:rerun-if-changed=jinfu");
    Ok(())
}
