//! The generated bindings for the `opsconductor:addon@0.2.0` world: the only `generate!` in the SDK.
//!
//! The export macro is public (`pub_export_macro`) because it must expand in the addon's crate:
//! that is where the component's exported functions and the custom section describing the world
//! are linked into the final `.wasm`. Addons never call it directly; [`crate::register_addon!`]
//! does.

wit_bindgen::generate!({
    path: "../wit/v0.2.0",
    world: "addon",
    pub_export_macro: true,
    export_macro_name: "export",
    // `PartialEq` lets addon unit tests compare whole alerts and errors.
    additional_derives: [PartialEq, Eq],
    // The SDK re-exports every type, including those only the trap and poll paths use.
    generate_unused_types: true,
});
