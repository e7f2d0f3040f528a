//! mapcore's C ABI, declared by hand from include/mapcore.h, and a thin
//! wrapper used by the benchmark. Linked against target/release/libmapcore.so.

#![allow(non_camel_case_types)]

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mc_map {
    pub id: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct mc_options {
    pub flags: u32,
    pub reserved: u32,
    pub seed: u64,
    pub capacity: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct mc_iter {
    pub opaque: [u64; 6],
}

pub const MC_OK: i32 = 0;
pub const MC_ERR_NOT_FOUND: i32 = 1;
pub const MC_DONE: i32 = 14;
pub const MC_MODE_STRICT: u32 = 1;
pub const MC_ABSENT: u32 = u32::MAX;

extern "C" {
    pub fn mc_abi_version() -> u32;
    pub fn mc_status_name(code: i32) -> *const std::ffi::c_char;
    pub fn mc_map_new_with(opts: *const mc_options, out: *mut mc_map) -> i32;
    pub fn mc_map_free(map: mc_map) -> i32;
    pub fn mc_map_set(
        map: mc_map,
        key: *const u8,
        key_len: usize,
        val: *const u8,
        val_len: usize,
        out_inserted: *mut bool,
    ) -> i32;
    pub fn mc_map_get(
        map: mc_map,
        key: *const u8,
        key_len: usize,
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> i32;
    pub fn mc_map_delete(map: mc_map, key: *const u8, key_len: usize) -> i32;
    pub fn mc_map_len(map: mc_map, out: *mut usize) -> i32;
    pub fn mc_map_get_many(
        map: mc_map,
        n: usize,
        keys: *const u8,
        key_lens: *const u32,
        vals: *mut u8,
        vals_cap: usize,
        val_lens: *mut u32,
        out_used: *mut usize,
    ) -> i32;
    pub fn mc_map_set_many(
        map: mc_map,
        n: usize,
        keys: *const u8,
        key_lens: *const u32,
        vals: *const u8,
        val_lens: *const u32,
        out_inserted: *mut usize,
    ) -> i32;
    pub fn mc_iter_init(map: mc_map, mode: u32, out: *mut mc_iter) -> i32;
    pub fn mc_iter_next_batch(
        map: mc_map,
        it: *mut mc_iter,
        buf: *mut u8,
        cap: usize,
        max_entries: usize,
        out_count: *mut usize,
        out_used: *mut usize,
    ) -> i32;
}

pub fn status_name(code: i32) -> String {
    // SAFETY: mc_status_name never returns NULL and the string is static.
    unsafe {
        std::ffi::CStr::from_ptr(mc_status_name(code))
            .to_string_lossy()
            .into_owned()
    }
}

#[track_caller]
pub fn check(code: i32) {
    if code != MC_OK {
        panic!("mapcore call failed: {}", status_name(code));
    }
}
