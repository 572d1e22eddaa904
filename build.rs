//! Compiles the protobuf definitions with a vendored protoc, so a fresh machine needs
//! nothing but cargo. rampart's own services and flagd's evaluation service get a descriptor
//! set each: each listener's reflection lists only what that listener serves.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let include = protoc_bin_vendored::include_path()?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let includes = [std::path::PathBuf::from("proto"), include];
    tonic_build::configure()
        .file_descriptor_set_path(out.join("rampart_descriptor.bin"))
        .compile_protos(
            &[
                "proto/rampart/v1/rampart.proto",
                "proto/rampart/internal/v1/raft.proto",
            ],
            &includes,
        )?;
    tonic_build::configure()
        .file_descriptor_set_path(out.join("flagd_descriptor.bin"))
        .compile_protos(
            &[
                "proto/flagd/evaluation/v1/evaluation.proto",
                "proto/flagd/evaluation/v2/evaluation.proto",
            ],
            &includes,
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
