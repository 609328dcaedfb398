//! The `convshade` command.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "convshade",
    version,
    about = "A tensor engine for conv nets on wgpu"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the adapters wgpu finds, the one chosen, and the limits that matter.
    Info,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Info => info(),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn info() -> convshade::Result<()> {
    let adapters = convshade::gpu::enumerate_adapters();
    if adapters.is_empty() {
        println!("no adapters found");
    }
    for a in &adapters {
        println!(
            "adapter: {} | backend {} | type {}{} | driver {}",
            a.name,
            a.backend,
            a.device_type,
            if a.is_software { " (software)" } else { "" },
            a.driver
        );
    }
    match convshade::Device::gpu() {
        Ok(convshade::Device::Gpu(ctx)) => {
            let a = ctx.adapter();
            let l = ctx.limits();
            println!("chosen for Device::gpu(): {} ({})", a.name, a.backend);
            println!("  max buffer size:                  {}", l.max_buffer_size);
            println!(
                "  max storage buffer binding size:  {}",
                l.max_storage_buffer_binding_size
            );
            println!(
                "  max workgroups per dimension:     {}",
                l.max_workgroups_per_dimension
            );
            println!(
                "  storage buffers per shader stage: {}",
                l.max_storage_buffers_per_shader_stage
            );
            println!(
                "  max invocations per workgroup:    {}",
                l.max_compute_invocations_per_workgroup
            );
            println!(
                "  workgroup storage size:           {}",
                l.max_compute_workgroup_storage_size
            );
        }
        Ok(_) => {}
        Err(e) => println!("Device::gpu(): {e}"),
    }
    let auto = convshade::Device::auto();
    println!("Device::auto(): {}", auto.name());
    Ok(())
}
