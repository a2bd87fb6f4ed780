//! Compiles `proto/cashmatch/v1/*.proto` with protox (pure Rust, so CI needs no `protoc`) into
//! the tonic client and server code that `src/grpc/` includes, and writes the encoded descriptor
//! set that server reflection serves.

use std::path::PathBuf;

const PROTOS: [&str; 1] = ["proto/cashmatch/v1/cashmatch.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    for p in PROTOS {
        compiler.open_file(p.trim_start_matches("proto/"))?;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("cashmatch_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure().compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
