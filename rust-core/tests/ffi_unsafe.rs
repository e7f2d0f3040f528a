//! No safe function takes a raw pointer. The crate is an rlib as well as
//! the C library, so a safe `pub extern "C" fn` that reads or writes
//! through a pointer argument lets safe Rust cause undefined behaviour
//! (a safe call passing the pointer 0x10 once crashed), and a safe helper
//! doing the same hides the obligation from its callers. Clippy's
//! `not_unsafe_ptr_arg_deref` (denied in lib.rs) catches a public function
//! that dereferences its pointer argument in its own body, but not one that
//! hands it to a safe helper; this test parses every source file and
//! refuses any safe function with a raw pointer parameter, whatever it does
//! with it, except the few listed in `NEVER_DEREFERENCE`.

use std::path::{Path, PathBuf};

use syn::{FnArg, ImplItem, Item, Signature, Type};

/// Safe functions (file, name) that take a pointer but never read or write
/// through it.
const NEVER_DEREFERENCE: &[(&str, &str)] = &[
    // Compare it with NULL.
    ("ffi/raw.rs", "out_ptr"),
    ("ffi/raw.rs", "in_ptr"),
    // Pass its address to valgrind.
    ("engine/memcheck.rs", "block_allocated"),
    ("engine/memcheck.rs", "block_freed"),
    // A prefetch hint, which cannot fault whatever the address.
    ("engine/table.rs", "prefetch"),
    // Store it in an atomic (the pointer is the value stored).
    ("sync.rs", "store_seq_cst"),
];

/// True if `ty` is or contains a raw pointer (`*const T`, `Option<*mut T>`,
/// `&[*const u8]`, ...). A function pointer's own parameters do not count:
/// they are the callee's to check.
fn has_raw_pointer(ty: &Type) -> bool {
    match ty {
        Type::Ptr(_) => true,
        Type::Reference(r) => has_raw_pointer(&r.elem),
        Type::Slice(s) => has_raw_pointer(&s.elem),
        Type::Array(a) => has_raw_pointer(&a.elem),
        Type::Tuple(t) => t.elems.iter().any(has_raw_pointer),
        Type::Paren(p) => has_raw_pointer(&p.elem),
        Type::Group(g) => has_raw_pointer(&g.elem),
        Type::Path(p) => p.path.segments.iter().any(|seg| match &seg.arguments {
            syn::PathArguments::AngleBracketed(args) => args.args.iter().any(|a| match a {
                syn::GenericArgument::Type(t) => has_raw_pointer(t),
                _ => false,
            }),
            _ => false,
        }),
        _ => false,
    }
}

/// A function found by `scan`: where, its name, whether it is `unsafe`,
/// whether it is `extern "C"`, and whether it takes a raw pointer.
struct Found {
    place: String,
    name: String,
    unsafe_: bool,
    extern_c: bool,
    takes_pointer: bool,
}

fn record(sig: &Signature, place: &str, out: &mut Vec<Found>) {
    let takes_pointer = sig.inputs.iter().any(|arg| match arg {
        FnArg::Typed(p) => has_raw_pointer(&p.ty),
        FnArg::Receiver(r) => has_raw_pointer(&r.ty),
    });
    // `extern fn` without a name is `extern "C"`.
    let extern_c = match &sig.abi {
        Some(abi) => match &abi.name {
            Some(name) => name.value() == "C",
            None => true,
        },
        None => false,
    };
    out.push(Found {
        place: place.to_string(),
        name: sig.ident.to_string(),
        unsafe_: sig.unsafety.is_some(),
        extern_c,
        takes_pointer,
    });
}

/// Every function of `items`: free functions, methods, and those of inline
/// modules, at any depth.
fn scan(items: &[Item], place: &str, out: &mut Vec<Found>) {
    for item in items {
        match item {
            Item::Fn(f) => record(&f.sig, place, out),
            Item::Impl(i) => {
                for it in &i.items {
                    if let ImplItem::Fn(f) = it {
                        record(&f.sig, place, out);
                    }
                }
            }
            Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    scan(items, &format!("{place}::{}", m.ident), out);
                }
            }
            _ => {}
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The safe functions of `found` that take a raw pointer, as "place: name".
fn offenders(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter(|f| f.takes_pointer && !f.unsafe_)
        .filter(|f| !NEVER_DEREFERENCE.contains(&(f.place.as_str(), f.name.as_str())))
        .map(|f| format!("{}: {}", f.place, f.name))
        .collect()
}

fn scan_source(src: &str, place: &str) -> Vec<Found> {
    let file = syn::parse_file(src).unwrap_or_else(|e| panic!("parsing {place}: {e}"));
    let mut found = Vec::new();
    scan(&file.items, place, &mut found);
    found
}

#[test]
fn no_safe_function_takes_a_raw_pointer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read source");
        let place = path.strip_prefix(&src).unwrap().display().to_string();
        found.extend(scan_source(&text, &place));
    }
    // Guard against a scan that silently sees nothing: the C ABI has dozens
    // of pointer-taking exports, all in ffi/.
    let exports_with_pointers = found
        .iter()
        .filter(|f| f.extern_c && f.takes_pointer && f.place.starts_with("ffi"))
        .count();
    assert!(
        exports_with_pointers >= 30,
        "found only {exports_with_pointers} exported functions taking pointers in src/ffi"
    );
    let bad = offenders(&found);
    assert!(
        bad.is_empty(),
        "safe functions taking a raw pointer (make them `unsafe` with a `# Safety` section, \
         or, if they never read or write through it, list them in NEVER_DEREFERENCE):\n{}",
        bad.join("\n")
    );
}

/// The check itself: a safe export with a pointer, a safe helper with an
/// optional pointer, and a safe method are caught; unsafe ones, functions
/// whose only pointers are a callback's parameters, and the listed ones
/// are not.
#[test]
fn the_check_finds_safe_functions_with_pointers() {
    let src = r#"
        #[no_mangle]
        pub extern "C" fn exported(map: u64, out: *mut u64) -> i32 { 0 }
        #[no_mangle]
        pub unsafe extern "C" fn fine(out: *mut u64) -> i32 { 0 }
        fn helper(x: Option<*const u8>) {}
        mod inner {
            struct S;
            impl S { fn method(&self, p: &[*mut u8]) {} }
        }
        pub extern "C" fn with_callback(cb: Option<unsafe extern "C" fn(*mut u8)>) {}
        pub fn out_ptr<T>(ptr: *mut T, what: &str) -> Option<*mut T> { None }
    "#;
    let found = scan_source(src, "ffi/raw.rs");
    assert_eq!(found.len(), 6);
    assert_eq!(
        offenders(&found),
        [
            "ffi/raw.rs: exported",
            "ffi/raw.rs: helper",
            "ffi/raw.rs::inner: method"
        ]
    );
}
