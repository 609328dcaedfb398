//! Every WGSL module parses and validates with naga, without an adapter.

#[test]
fn every_shader_parses_and_validates() {
    let sources = convshade::gpu::shader_sources();
    assert!(sources.len() >= 8);
    for (name, src) in sources {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
        // the subgroup modules are compiled only on adapters with subgroup operations
        let subgroups = name.ends_with("_subgroups");
        let caps = naga::valid::Capabilities::default();
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            if subgroups { caps | naga::valid::Capabilities::SUBGROUP } else { caps },
        );
        if subgroups {
            v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
            v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
        }
        v.validate(&module).unwrap_or_else(|e| panic!("{name}.wgsl: validation failed: {e:?}"));
        assert!(!module.entry_points.is_empty(), "{name}.wgsl has no entry point");
    }
}

#[test]
fn every_shader_file_is_registered() {
    let registered: Vec<&str> = convshade::gpu::shader_sources().iter().map(|(n, _)| *n).collect();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if stem == "prelude" {
            continue;
        }
        assert!(
            registered.contains(&stem.as_str()),
            "shaders/{stem}.wgsl is not compiled into the crate"
        );
    }
}

#[test]
fn every_module_includes_the_prelude_once() {
    let prelude = include_str!("../shaders/prelude.wgsl");
    for (name, src) in convshade::gpu::shader_sources() {
        assert!(src.contains(prelude), "{name}.wgsl is compiled without the prelude");
        // the prelude's helpers are defined once, not copied into modules
        let body = src.replace(prelude, "");
        for helper in ["fn is_nan(", "fn tap_source(", "fn thread_index(", "override WG"] {
            assert!(!body.contains(helper), "{name}.wgsl defines {helper} again");
        }
    }
}
